/**
 * Typed errors. `permanent` means retrying will not help (bad config, auth refused, not supported);
 * `retryable` means try again later with backoff (timeout, connection lost).
 */
export type ErrorKind = 'permanent' | 'retryable';

export class HomeflexError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  constructor(kind: ErrorKind, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HomeflexError';
    this.kind = kind;
    this.code = code;
  }
}

export const permanentError = (code: string, message: string, cause?: unknown) =>
  new HomeflexError('permanent', code, message, { cause });
export const retryableError = (code: string, message: string, cause?: unknown) =>
  new HomeflexError('retryable', code, message, { cause });

export const isRetryable = (err: unknown): boolean => err instanceof HomeflexError && err.kind === 'retryable';

/**
 * An error meant for an HTTP client: becomes `{object:"error", type, code, message}` with `status`.
 * `type` follows the FlatPeak API: `invalid_request` for 4xx, `api_error` for 5xx.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details?: Record<string, unknown>;
  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
  get type(): 'invalid_request' | 'api_error' {
    return this.status >= 500 ? 'api_error' : 'invalid_request';
  }
}

/** 400 naming the field that was wrong. */
export const badRequest = (field: string, message: string) =>
  new ApiError(400, 'invalid_parameter', `${field}: ${message}`, { field });
