import { describe, expect, it } from 'vitest';
import type { PriceSeries } from '../../src/api/index.js';
import { CostAccumulator, averageRate, intervalSet, localIso, onBucketGrid, periodGrid, recordCosts, totalCost } from '../../src/metering/costs.js';
import { flagsOf } from '../../src/metering/records.js';

const H = 3_600_000;
const IMP = flagsOf('IMPORT', 'IMPORT');
const LOCAL = flagsOf('IMPORT', 'LOCAL');
const EXP = flagsOf('EXPORT', 'EXPORT');
const flat = (rate: number, start: number, end: number, step = H): PriceSeries => {
  const out: PriceSeries = [];
  for (let t = start; t < end; t += step) out.push({ start: t, end: t + step, rate, confidence: 1 });
  return out;
};
const at = (iso: string) => Date.parse(iso);

describe('cost arithmetic', () => {
  it('splits a record crossing a tariff boundary pro rata in time', () => {
    const prices = {
      IMPORT: [
        { start: at('2024-08-01T10:00:00Z'), end: at('2024-08-01T11:00:00Z'), rate: 0.2, confidence: 1 },
        { start: at('2024-08-01T11:00:00Z'), end: at('2024-08-01T12:00:00Z'), rate: 0.4, confidence: 1 },
      ],
      EXPORT: [],
    };
    const set = intervalSet([{ start: at('2024-08-01T10:30:00Z'), end: at('2024-08-01T11:30:00Z'), energyWh: 1000, flags: IMP }]);
    const c = totalCost(set, prices, { start: at('2024-08-01T00:00:00Z'), end: at('2024-08-02T00:00:00Z') });
    expect(c.energyWh).toBe(1000);
    expect(c.cost).toBeCloseTo(0.5 * 0.2 + 0.5 * 0.4, 12);
    expect(averageRate(c)).toBeCloseTo(0.3, 12);
    // clipped to a window that takes only its first 15 minutes
    const part = totalCost(set, prices, { start: at('2024-08-01T10:30:00Z'), end: at('2024-08-01T10:45:00Z') });
    expect(part.energyWh).toBeCloseTo(250, 9);
    expect(part.cost).toBeCloseTo(0.25 * 0.2, 12);
  });

  it('prices the tariff the record names, LOCAL at zero', () => {
    const w = { start: at('2024-08-01T00:00:00Z'), end: at('2024-08-02T00:00:00Z') };
    const prices = { IMPORT: flat(0.3, w.start, w.end), EXPORT: flat(0.08, w.start, w.end) };
    const set = intervalSet([
      { start: at('2024-08-01T12:00:00Z'), end: at('2024-08-01T13:00:00Z'), energyWh: 2000, flags: LOCAL },
      { start: at('2024-08-01T12:00:00Z'), end: at('2024-08-01T13:00:00Z'), energyWh: 1000, flags: IMP },
      { start: at('2024-08-01T14:00:00Z'), end: at('2024-08-01T15:00:00Z'), energyWh: 1000, flags: EXP },
    ]);
    const acc = new CostAccumulator([w.start, w.end], true);
    acc.add(set, prices, w);
    expect(acc.flowTotal(LOCAL & 7)).toMatchObject({ energyWh: 2000, cost: 0, pricedWh: 2000, confidence: 1 });
    expect(acc.flowTotal(IMP).cost).toBeCloseTo(0.3, 12);
    expect(acc.flowTotal(EXP & 7).cost).toBeCloseTo(0.08, 12);
    expect(averageRate(acc.flowTotal(LOCAL & 7))).toBe(0);
  });

  it('aggregates by local day on DST days: 23 and 25 hours in Europe/Berlin', () => {
    const tz = 'Europe/Berlin';
    for (const [day, hours] of [['2024-03-31', 23], ['2024-10-27', 25]] as const) {
      const start = at(`${day}T00:00:00+01:00`) - 24 * H; // the local day before
      const end = start + 72 * H;
      const items = [];
      for (let t = start; t < end; t += H) items.push({ start: t, end: t + H, energyWh: 1000, flags: IMP });
      const grid = periodGrid({ start, end }, 'DAY', tz);
      const acc = new CostAccumulator(grid);
      acc.add(intervalSet(items), { IMPORT: flat(0.25, start, end), EXPORT: [] });
      const rows = acc.periods();
      const row = rows.find((r) => localIso(r.start, tz).startsWith(day))!;
      expect(row.cell.energyWh).toBe(hours * 1000);
      expect(row.end - row.start).toBe(hours * H);
      expect(localIso(row.end, tz).slice(11)).toBe(day === '2024-03-31' ? '00:00:00+02:00' : '00:00:00+01:00');
    }
  });

  it('splits a record across a month end in the site time zone', () => {
    const tz = 'Europe/Berlin';
    // 22:30–23:30 UTC on 31 January is 23:30–00:30 in Berlin
    const set = intervalSet([{ start: at('2024-01-31T22:30:00Z'), end: at('2024-01-31T23:30:00Z'), energyWh: 1000, flags: IMP }]);
    const w = { start: at('2024-01-01T00:00:00+01:00'), end: at('2024-03-01T00:00:00+01:00') };
    const acc = new CostAccumulator(periodGrid(w, 'MONTH', tz));
    acc.add(set, { IMPORT: flat(0.3, w.start, w.end), EXPORT: [] });
    const [jan, feb] = acc.periods();
    expect(localIso(jan.start, tz)).toBe('2024-01-01T00:00:00+01:00');
    expect(localIso(feb.start, tz)).toBe('2024-02-01T00:00:00+01:00');
    expect(jan.cell.energyWh).toBeCloseTo(500, 9);
    expect(feb.cell.energyWh).toBeCloseTo(500, 9);
    expect(feb.cell.cost).toBeCloseTo(0.15, 12);
  });

  it('starts weeks on Monday and years on 1 January, local time', () => {
    const tz = 'America/New_York';
    const w = { start: at('2024-12-25T00:00:00-05:00'), end: at('2025-01-10T00:00:00-05:00') };
    expect(periodGrid(w, 'WEEK', tz).map((t) => localIso(t, tz))).toEqual([
      '2024-12-25T00:00:00-05:00',
      '2024-12-30T00:00:00-05:00',
      '2025-01-06T00:00:00-05:00',
      '2025-01-10T00:00:00-05:00',
    ]);
    expect(periodGrid(w, 'YEAR', tz).map((t) => localIso(t, tz))).toEqual(['2024-12-25T00:00:00-05:00', '2025-01-01T00:00:00-05:00', '2025-01-10T00:00:00-05:00']);
  });

  it('shows energy in time no price covers, without a cost and with confidence 0', () => {
    const w = { start: at('2024-08-01T00:00:00Z'), end: at('2024-08-01T04:00:00Z') };
    const prices = { IMPORT: [{ start: w.start, end: w.start + 2 * H, rate: 0.5, confidence: 0.8 }], EXPORT: [] };
    const set = intervalSet([{ start: w.start + H, end: w.start + 3 * H, energyWh: 2000, flags: IMP }]);
    const c = totalCost(set, prices, w);
    expect(c).toMatchObject({ energyWh: 2000, pricedWh: 1000, unpricedWh: 1000, confidence: 0 });
    expect(c.cost).toBeCloseTo(0.5, 12);
    // priced part alone carries the slot's confidence
    expect(totalCost(set, prices, { start: w.start, end: w.start + 2 * H }).confidence).toBeCloseTo(0.8, 6);
  });

  it('costs each record on its own for aggregation NONE, clipped to the window', () => {
    const w = { start: at('2024-08-01T00:30:00Z'), end: at('2024-08-01T03:00:00Z') };
    const prices = { IMPORT: flat(0.2, at('2024-08-01T00:00:00Z'), w.end), EXPORT: [] };
    const set = intervalSet([
      { start: at('2024-08-01T00:00:00Z'), end: at('2024-08-01T01:00:00Z'), energyWh: 1000, flags: IMP },
      { start: at('2024-08-01T01:00:00Z'), end: at('2024-08-01T02:00:00Z'), energyWh: 3000, flags: IMP, confidence: 0.5 },
    ]);
    const rows = recordCosts(set, prices, w);
    expect(rows.map((r) => [r.start, r.cell.energyWh, r.cell.confidence])).toEqual([
      [w.start, 500, 1],
      [at('2024-08-01T01:00:00Z'), 3000, 0.5],
    ]);
    expect(rows[1].cell.cost).toBeCloseTo(0.6, 12);
  });

  it('gives the same totals whatever the order and overlap of the records', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const day = at('2024-08-01T00:00:00Z');
    const prices = { IMPORT: Array.from({ length: 96 }, (_, k) => ({ start: day + k * 900_000, end: day + (k + 1) * 900_000, rate: Math.round(rnd() * 100) / 100, confidence: 1 })), EXPORT: flat(0.05, day, day + 24 * H) };
    const items = Array.from({ length: 300 }, () => {
      const start = day + Math.floor(rnd() * 23 * 60) * 60_000;
      return { start, end: start + Math.ceil(rnd() * 120) * 60_000, energyWh: Math.round(rnd() * 5000), flags: rnd() < 0.7 ? IMP : rnd() < 0.5 ? EXP : LOCAL };
    });
    const w = { start: day, end: day + 24 * H };
    const grid = periodGrid(w, 'DAY', 'UTC');
    const one = (list: typeof items) => {
      const acc = new CostAccumulator([w.start, day + 6 * H, day + 12 * H, w.end]);
      acc.add(intervalSet(list), prices, w);
      return acc.total();
    };
    const each = recordCosts(intervalSet(items), prices, w).reduce((sum, r) => sum + r.cell.cost, 0);
    expect(one(items).cost).toBeCloseTo(each, 9);
    expect(one([...items].sort((x, y) => x.start - y.start)).cost).toBeCloseTo(each, 9);
    expect(one([...items].reverse()).cost).toBeCloseTo(each, 9);
    expect(grid).toEqual([w.start, w.end]);
  });

  it('knows when 15-minute buckets price exactly', () => {
    const grid = [at('2024-08-01T00:00:00Z'), at('2024-08-02T00:00:00Z')];
    const quarter = flat(0.2, grid[0], grid[1], 15 * 60_000);
    expect(onBucketGrid(grid, [quarter], grid[0], grid[1])).toBe(true);
    const odd = [{ start: grid[0], end: grid[0] + 7 * H + 10 * 60_000, rate: 0.2, confidence: 1 }, { start: grid[0] + 7 * H + 10 * 60_000, end: grid[1], rate: 0.3, confidence: 1 }];
    expect(onBucketGrid(grid, [odd], grid[0], grid[1])).toBe(false);
    // local midnights of half-hour zones are on the grid too
    expect(onBucketGrid(periodGrid({ start: grid[0], end: grid[0] + 5 * 24 * H }, 'DAY', 'Asia/Kathmandu'), [], grid[0], grid[0] + 5 * 24 * H)).toBe(true);
  });

  it('writes local times with the offset in force', () => {
    expect(localIso(at('2024-07-01T10:00:00Z'), 'Europe/Berlin')).toBe('2024-07-01T12:00:00+02:00');
    expect(localIso(at('2024-01-01T10:00:00.250Z'), 'Europe/London')).toBe('2024-01-01T10:00:00.250Z');
    expect(localIso(at('2024-01-01T10:00:00Z'), 'Asia/Kolkata')).toBe('2024-01-01T15:30:00+05:30');
    expect(localIso(at('2024-01-01T10:00:00Z'), 'America/St_Johns')).toBe('2024-01-01T06:30:00-03:30');
  });
});
