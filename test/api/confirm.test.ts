import { describe, expect, it } from 'vitest';
import { Confirmations, retryableError } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';

const timeout = () => retryableError('no_confirmation', 'the device did not confirm');

describe('Confirmations (command confirmation waits on ctx.clock)', () => {
  it('resolves with the first report that matches, and not with one that does not', async () => {
    const clock = new ManualClock();
    const c = new Confirmations<number>(clock);
    const seen: number[] = [];
    const waiting = c.expect((v) => v === 21, 10_000, timeout).then((v) => seen.push(v));
    c.report(20);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([]);
    expect(c.pending).toBe(1);
    c.report(21);
    await waiting;
    expect(seen).toEqual([21]);
    expect(c.pending).toBe(0);
  });

  it('times out on the manual clock: not before the time has passed, exactly when it has', async () => {
    const clock = new ManualClock();
    const c = new Confirmations<boolean>(clock);
    let outcome: string | undefined;
    c.expect((on) => on, 5_000, timeout).then(
      () => (outcome = 'confirmed'),
      (err: Error) => (outcome = err.message),
    );
    await clock.advance(4_999);
    expect(outcome).toBeUndefined();
    await clock.advance(1);
    expect(outcome).toBe('the device did not confirm');
    expect(c.pending).toBe(0);
    // a report after the timeout confirms nothing and throws nothing
    c.report(true);
    expect(outcome).toBe('the device did not confirm');
  });

  it('a confirmation cancels its timer, so a later advance rejects nothing', async () => {
    const clock = new ManualClock();
    const c = new Confirmations(clock);
    const outcomes: string[] = [];
    c.expect(() => true, 1_000, timeout).then(() => outcomes.push('confirmed'), () => outcomes.push('timed out'));
    c.report();
    await clock.advance(2_000);
    expect(outcomes).toEqual(['confirmed']);
  });

  it('cancel rejects every waiter with the reason given', async () => {
    const clock = new ManualClock();
    const c = new Confirmations<string>(clock);
    const a = c.expect((v) => v === 'a', 1_000, timeout);
    const b = c.expect((v) => v === 'b', 1_000, timeout);
    c.cancel(retryableError('stopped', 'adapter stopping'));
    await expect(a).rejects.toThrow('adapter stopping');
    await expect(b).rejects.toThrow('adapter stopping');
    expect(c.pending).toBe(0);
  });
});
