/**
 * Typed errors. `permanent` means retrying will not help (bad config, auth refused, not supported);
 * `retryable` means try again later with backoff (timeout, connection lost).
 */
export type ErrorKind = 'permanent' | 'retryable';

/**
 * Brands that make `instanceof` work across copies of the SDK: a plugin installed with its own
 * copy of homeflex (node_modules/homeflex) throws errors the hub must still recognise.
 */
const HOMEFLEX_ERROR = Symbol.for('homeflex.HomeflexError');
const API_ERROR = Symbol.for('homeflex.ApiError');
const branded = (value: unknown, brand: symbol) => typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;

export class HomeflexError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  constructor(kind: ErrorKind, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HomeflexError';
    this.kind = kind;
    this.code = code;
    Object.defineProperty(this, HOMEFLEX_ERROR, { value: true });
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return this === HomeflexError ? branded(value, HOMEFLEX_ERROR) : Function.prototype[Symbol.hasInstance].call(this, value);
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
    Object.defineProperty(this, API_ERROR, { value: true });
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return this === ApiError ? branded(value, API_ERROR) : Function.prototype[Symbol.hasInstance].call(this, value);
  }
  get type(): 'invalid_request' | 'api_error' {
    return this.status >= 500 ? 'api_error' : 'invalid_request';
  }
}

/** 400 naming the field that was wrong. */
export const badRequest = (field: string, message: string) =>
  new ApiError(400, 'invalid_parameter', `${field}: ${message}`, { field });
