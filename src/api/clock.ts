import type { EpochMs } from './series.js';

/** Time source. Tests and simulations use a clock that runs faster than real time. */
export interface Clock {
  now(): EpochMs;
  /** Resolves after `ms` of this clock's time; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` every `ms` of this clock's time until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
}
