import type { Clock } from '../../src/api/index.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** One JSON request: the body (if any) sent as JSON, the answer's status and parsed body. */
export async function jsonRequest<T = Json>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const r = await fetch(url, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as T };
}

/** A JSON client of a hub's /api/v1 at `url()` (a function: the hub may not be listening yet). */
export function hubApi(url: () => string) {
  return (method: string, path: string, body?: unknown) => jsonRequest<Record<string, unknown>>(method, `${url()}/api/v1${path}`, body);
}

/** Moves a manual hub clock forward a minute at a time, letting the simulators tick and the control loop re-plan. */
export function minuteStepper(clock: Clock & { advance(ms: number): Promise<unknown> }, control: { settled(): Promise<unknown> }) {
  return async (ms: number) => {
    for (let left = ms; left > 0; left -= 60_000) {
      await clock.advance(Math.min(60_000, left));
      await control.settled();
    }
  };
}
