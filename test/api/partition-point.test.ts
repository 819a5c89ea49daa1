import { describe, expect, it } from 'vitest';
import { firstEndingAfter, partitionPoint } from '../../src/api/index.js';

describe('partitionPoint (the one binary search of sorted lookups)', () => {
  it.each([
    { xs: [], t: 5, want: 0 },
    { xs: [1, 3, 5, 7], t: 0, want: 0 },
    { xs: [1, 3, 5, 7], t: 5, want: 3 },
    { xs: [1, 3, 5, 7], t: 4, want: 2 },
    { xs: [1, 3, 5, 7], t: 9, want: 4 },
    { xs: [2, 2, 2, 3], t: 2, want: 3 },
  ])('first index of $xs not ≤ $t is $want, as a linear scan finds it', ({ xs, t, want }) => {
    expect(partitionPoint(xs.length, (i) => xs[i] <= t)).toBe(want);
    const linear = xs.findIndex((x) => !(x <= t));
    expect(want).toBe(linear < 0 ? xs.length : linear);
  });

  it('firstEndingAfter is it over interval ends: the first interval still running after t', () => {
    const list = [{ end: 10 }, { end: 20 }, { end: 30 }];
    expect(firstEndingAfter(list, 9)).toBe(0);
    expect(firstEndingAfter(list, 10)).toBe(1);
    expect(firstEndingAfter(list, 30)).toBe(3);
  });
});
