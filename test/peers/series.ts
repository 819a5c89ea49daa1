import type { PriceSeries } from '../../src/api/index.js';

/** Joins touching slots of equal rate, so expected tables in tests stay short. */
export const joined = (s: PriceSeries) =>
  s.reduce<PriceSeries>((out, x) => {
    const prev = out[out.length - 1];
    if (prev && prev.end === x.start && prev.rate === x.rate) out[out.length - 1] = { ...prev, end: x.end };
    else out.push(x);
    return out;
  }, []);
