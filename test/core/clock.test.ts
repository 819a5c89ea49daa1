import { describe, expect, it } from 'vitest';
import { ManualClock, scaledClock } from '../../src/core/clock.js';

describe('clocks', () => {
  it('a manual clock fires timers in due order as time advances, and not after cancelling', async () => {
    const clock = new ManualClock('2026-03-29T00:00:00Z');
    const fired: string[] = [];
    const stop = clock.every(60_000, () => fired.push(`tick ${(clock.now() - Date.parse('2026-03-29T00:00:00Z')) / 60_000}`));
    void clock.sleep(90_000).then(() => fired.push('slept'));
    await clock.advance(180_000);
    expect(fired).toEqual(['tick 1', 'slept', 'tick 2', 'tick 3']);
    stop();
    await clock.advance(180_000);
    expect(fired).toHaveLength(4);
    expect(clock.now()).toBe(Date.parse('2026-03-29T00:06:00Z'));
  });

  it('a manual clock can jump without firing the timers in between; sleeping honours abort', async () => {
    const clock = new ManualClock(0);
    let n = 0;
    clock.every(1000, () => n++);
    clock.set(1_000_000);
    expect(n).toBe(0);
    const ac = new AbortController();
    const p = clock.sleep(5000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });

  it('after set() overdue timers fire at the new time, once, and time never runs backwards; jump() keeps what timers had left', async () => {
    const clock = new ManualClock(0);
    const seen: number[] = [];
    clock.every(1000, () => seen.push(clock.now()));
    clock.set(1_000_000);
    await clock.advance(1500);
    // one late tick at the new time, then on from there (no burst replaying the missed 999)
    expect(seen).toEqual([1_000_000, 1_001_000]);
    expect(clock.now()).toBe(1_001_500);
    const woke: number[] = [];
    void clock.sleep(10_000).then(() => woke.push(clock.now()));
    clock.jump(-3_600_000); // the wall clock goes back an hour
    await clock.advance(10_000);
    expect(woke).toEqual([-3_590_000]);
  });

  it('a scaled clock runs faster than real time', async () => {
    const clock = scaledClock(1000, 0);
    await clock.sleep(20_000); // 20 s of clock time = 20 ms real
    expect(clock.now()).toBeGreaterThanOrEqual(20_000);
    expect(() => scaledClock(0)).toThrow(/above 0/);
  });
});
