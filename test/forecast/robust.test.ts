import { describe, expect, it } from 'vitest';
import { dailyPvRatio, ratioQuantile, robustPvFactor } from '../../src/optimiser/forecast/robust.js';

describe('robust PV factor (shared by the backtest and the hub)', () => {
  it('takes the q-quantile of the daily ratios as the sorted value at floor(q·n)', () => {
    // sorted: 0.7 0.9 1.1 1.3 1.6 → q 0.5: index 2; q 0.9: index 4; q 0.2: index 1
    const ratios = [1.3, 0.7, 1.1, 1.6, 0.9];
    expect(ratioQuantile(ratios, 0.5)).toBe(1.1);
    expect(ratioQuantile(ratios, 0.9)).toBe(1.6);
    expect(ratioQuantile(ratios, 0.2)).toBe(0.9);
    expect(robustPvFactor(ratios, 0.9)).toBe(1.6);
    expect(robustPvFactor(ratios, 0.5)).toBe(1.1);
    // ten days: q 0.9 → index 9, the largest; q 0.85 → index 8
    const ten = [1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.35, 1.4, 1.45].reverse();
    expect(robustPvFactor(ten)).toBe(1.45);
    expect(robustPvFactor(ten, 0.85)).toBe(1.4);
  });

  it('is 1 with fewer than 3 known days, and never below 1', () => {
    expect(robustPvFactor([])).toBe(1);
    expect(robustPvFactor([2.5, 2.8])).toBe(1);
    expect(robustPvFactor([2.5, 2.8, 2.9])).toBe(2.9);
    // a forecast that was always too high: plan with it as it is, not less
    expect(robustPvFactor([0.5, 0.6, 0.7, 0.8])).toBe(1);
  });

  it('looks at the last 28 days only', () => {
    const old = Array.from({ length: 10 }, () => 2.5);
    const recent = Array.from({ length: 28 }, (_, i) => 1 + i / 100); // 1.00 … 1.27
    // floor(0.9·28) = 25 → 1.25; with the old sunny days counted it would be 2.5
    expect(robustPvFactor([...old, ...recent], 0.9)).toBeCloseTo(1.25, 10);
  });

  it('caps a day at 3 and ignores days with a forecast under 0.2 kWh', () => {
    expect(dailyPvRatio(12, 2)).toBe(3);
    expect(dailyPvRatio(6, 4)).toBe(1.5);
    expect(dailyPvRatio(1, 0.2)).toBeUndefined();
    expect(dailyPvRatio(0.1, 0.21)).toBeCloseTo(0.1 / 0.21, 12);
    expect(robustPvFactor([dailyPvRatio(30, 1)!, dailyPvRatio(40, 1)!, dailyPvRatio(5, 1)!])).toBe(3);
  });
});
