import type { Clock } from '../api/index.js';

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
  every: (ms, fn) => {
    const t = setInterval(fn, ms);
    t.unref?.();
    return () => clearInterval(t);
  },
};

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
}

/** A clock that runs `speed` times faster than real time from `start` (simulations, `start --speed`). */
export function scaledClock(speed: number, start: number = Date.now()): Clock {
  if (!(speed > 0)) throw new Error(`clock speed must be above 0, got ${speed}`);
  const realStart = Date.now();
  return {
    now: () => start + (Date.now() - realStart) * speed,
    sleep: (ms, signal) => systemClock.sleep(ms / speed, signal),
    every: (ms, fn) => systemClock.every(Math.max(1, ms / speed), fn),
  };
}

/**
 * A clock for tests: time moves only when `advance` is called, and timers fire in order of their
 * due time.
 */
export class ManualClock implements Clock {
  private t: number;
  private timers: Timer[] = [];
  private seq = 0;
  constructor(start: number | string = Date.UTC(2026, 0, 1)) {
    this.t = typeof start === 'string' ? Date.parse(start) : start;
  }
  now() {
    return this.t;
  }
  private schedule(due: number, fn: () => void): Timer {
    const timer = { due, seq: this.seq++, fn };
    this.timers.push(timer);
    return timer;
  }
  private cancel(timer: Timer) {
    this.timers = this.timers.filter((x) => x !== timer);
  }
  sleep(ms: number, signal?: AbortSignal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.cancel(timer);
        reject(signal!.reason);
      };
      const timer = this.schedule(this.t + Math.max(0, ms), () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  every(ms: number, fn: () => void) {
    let timer: Timer;
    const arm = (from: number) => {
      timer = this.schedule(from + ms, () => {
        // a late interval (after a jump) goes on from now, as setInterval does, instead of replaying what it missed
        arm(Math.max(timer.due, this.t));
        fn();
      });
    };
    arm(this.t);
    return () => this.cancel(timer);
  }
  /** Moves time forward by `ms`, firing every timer due on the way (awaiting microtasks between them). */
  async advance(ms: number) {
    const target = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.due - b.due || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.due > target) break;
      this.timers.shift();
      // a timer overdue after set() fires now: time never runs backwards
      this.t = Math.max(this.t, next.due);
      next.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.t = target;
  }
  /** Jumps the clock without firing timers in between; timers due before `t` fire at the next `advance`. */
  set(t: number | string) {
    this.t = typeof t === 'string' ? Date.parse(t) : t;
  }

  /**
   * A wall-clock jump (NTP correction, an RTC reset) as the system clock makes it: `now()` moves to
   * `t`, while every timer keeps the time it had left, as setTimeout and setInterval (monotonic) do.
   */
  jump(t: number | string) {
    const to = typeof t === 'string' ? Date.parse(t) : t;
    const delta = to - this.t;
    for (const timer of this.timers) timer.due += delta;
    this.t = to;
  }
}
