import type { Clock } from './clock.js';

interface Waiter<T> {
  match: (value: T) => boolean;
  resolve: (value: T) => void;
  reject: (err: Error) => void;
  stop: AbortController;
}

/**
 * Waits for a device to confirm a command, timed on the hub's clock (`ctx.clock`), so a test's
 * manual clock drives the timeout and a sped-up simulation scales it: the adapter registers what
 * it expects before sending the command, then feeds every state the device reports to `report`.
 *
 * ```ts
 * const confirmed = this.confirmations.expect((on) => on === want, config.confirm_timeout_s * SECOND, () => retryableError('no_confirmation', '…'));
 * await send(want);
 * await confirmed;
 * ```
 */
export class Confirmations<T = void> {
  private waiters: Waiter<T>[] = [];

  constructor(private readonly clock: Clock) {}

  /**
   * Resolves with the first reported value that `match` accepts; rejects with `timeout()` when
   * none came within `ms` of the clock's time. A rejection nobody awaits is not an unhandled one.
   */
  expect(match: (value: T) => boolean, ms: number, timeout: () => Error): Promise<T> {
    const stop = new AbortController();
    const promise = new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { match, resolve, reject, stop };
      this.waiters.push(waiter);
      this.clock.sleep(ms, stop.signal).then(
        () => {
          if (!this.remove(waiter)) return;
          reject(timeout());
        },
        () => undefined,
      );
    });
    promise.catch(() => undefined);
    return promise;
  }

  /** A state the device reported: every waiter it satisfies is resolved (and its timer cancelled). */
  report(value: T): void {
    for (const w of [...this.waiters]) {
      if (!w.match(value)) continue;
      this.remove(w);
      w.stop.abort();
      w.resolve(value);
    }
  }

  /** Rejects every waiter with `reason` (the adapter stopping, the connection lost). */
  cancel(reason: Error): void {
    for (const w of this.waiters.splice(0)) {
      w.stop.abort();
      w.reject(reason);
    }
  }

  /** Commands still waiting for their confirmation. */
  get pending(): number {
    return this.waiters.length;
  }

  private remove(waiter: Waiter<T>): boolean {
    const i = this.waiters.indexOf(waiter);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    return true;
  }
}
