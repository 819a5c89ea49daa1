import { HomeflexError, permanentError, retryableError, type Clock } from '../../src/api/index.js';

/**
 * Fetching from a provider's HTTP API with a timeout per attempt and retries with doubling waits,
 * shared by the tariff providers and the forecast sources. Refusals (401/403, other 4xx) are
 * permanent; 429, 5xx, timeouts and lost connections are retried, then reported as retryable.
 */

export interface FetchRequest {
  url: string;
  init?: RequestInit;
  /** A 204 or 404 here means "nothing published yet", not an error. */
  optional?: boolean;
}

export interface RetryOptions {
  timeout_ms?: number;
  retries?: number;
  retry_delay_ms?: number;
}

/** Where the request went, without its query (which may carry a token). */
export const where = (url: string) => {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return 'the provider';
  }
};

/**
 * The body of a successful answer, or undefined for an optional request with nothing yet.
 * `codes` prefixes the error codes ("tariff" → tariff_auth_refused, tariff_provider_down, …).
 */
export async function fetchWithRetry(
  ctx: { fetch: typeof globalThis.fetch; clock: Clock },
  req: FetchRequest,
  config: RetryOptions,
  codes: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const attempts = (config.retries ?? 3) + 1;
  const timeoutMs = config.timeout_ms ?? 10_000;
  let delay = config.retry_delay_ms ?? 2000;
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const res = await ctx.fetch(req.url, { ...req.init, signal: combined });
      const body = await res.text();
      if (res.status === 204 || (req.optional && res.status === 404)) return undefined;
      if (res.status === 401 || res.status === 403) throw permanentError(`${codes}_auth_refused`, `${where(req.url)} refused the credentials (HTTP ${res.status}): check the token`);
      if (res.status === 429 || res.status >= 500) throw retryableError(`${codes}_provider_down`, `${where(req.url)} answered HTTP ${res.status}`);
      if (res.status >= 400) throw permanentError(`${codes}_request_refused`, `${where(req.url)} refused the request (HTTP ${res.status}): ${body.slice(0, 200)}`);
      return body;
    } catch (err) {
      if (err instanceof HomeflexError && err.kind === 'permanent') throw err;
      if (signal?.aborted) throw err;
      last = err instanceof HomeflexError ? err : retryableError(`${codes}_provider_unreachable`, `${where(req.url)}: ${timeout.aborted ? `no answer within ${timeoutMs} ms` : (err as Error).message}`, err);
      if (attempt < attempts) {
        await ctx.clock.sleep(delay, signal);
        delay *= 2;
      }
    }
  }
  const e = last as HomeflexError;
  throw retryableError(e.code, `${e.message} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`, e);
}
