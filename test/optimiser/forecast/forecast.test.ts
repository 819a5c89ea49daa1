import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { H25 } from '../../../src/optimiser/forecast/h25.js';
import { clearSkyMeanW, clearSkyPvForecast, clearSkyPvW, historyLoadForecast, standardProfileLoad, sunPosition, type EnergyInterval } from '../../../src/optimiser/forecast/index.js';

const tz = 'Europe/Berlin';
const at = (iso: string) => DateTime.fromISO(iso, { zone: tz }).toMillis();
const quarterSlots = (fromIso: string, n: number) => Array.from({ length: n }, (_, k) => ({ start: at(fromIso) + k * 900_000, end: at(fromIso) + (k + 1) * 900_000 }));

describe('standard load profile (BDEW H25)', () => {
  it('the TypeScript table holds exactly the numbers of the copied CSV', () => {
    const rows = readFileSync(new URL('../../../src/optimiser/forecast/data/h25.csv', import.meta.url), 'utf8').trim().split(/\r?\n/).slice(2);
    expect(rows).toHaveLength(96);
    rows.forEach((row, q) => {
      const cells = row.split(',').slice(1).map(Number);
      cells.forEach((v, c) => expect(H25[Math.floor(c / 3)][c % 3][q]).toBe(v));
    });
  });

  it('scaled to 4000 kWh/yr sums to 4000 kWh over a year, with an evening peak and a night trough', () => {
    const f = standardProfileLoad({ annualKwh: 4000, timezone: tz });
    const slots = [];
    for (let t = at('2025-01-01T00:00'); t < at('2026-01-01T00:00'); t += 3_600_000) slots.push({ start: t, end: t + 3_600_000 });
    const w = f.powerW(slots);
    expect(w.reduce((a, b) => a + b, 0) / 1000).toBeCloseTo(4000 * 0.9986, 0);
    const day = f.powerW(quarterSlots('2025-01-15T00:00', 96));
    expect(Math.max(...day.slice(68, 84))).toBeGreaterThan(2 * Math.min(...day.slice(8, 20)));
  });
});

describe('base load from the house’s own history', () => {
  // four weeks of history: 2000 W on Tuesdays 18:00–19:00 local, 500 W otherwise
  const history: EnergyInterval[] = [];
  for (let t = at('2026-02-24T00:00'); t < at('2026-03-31T00:00'); t += 900_000) {
    const d = DateTime.fromMillis(t, { zone: tz });
    history.push({ start: t, end: t + 900_000, wh: (d.weekday === 2 && d.hour === 18 ? 2000 : 500) / 4 });
  }
  const f = historyLoadForecast({ history, timezone: tz, fallback: standardProfileLoad({ annualKwh: 4000, timezone: tz }) });

  it('repeats the same weekday and local time, across the change to summer time', () => {
    // 2026-03-29 is the DST change: the Tuesday after it still peaks at 18:00 local time
    const w = f.powerW(quarterSlots('2026-03-31T17:00', 12));
    expect(w.slice(0, 4)).toEqual([500, 500, 500, 500]);
    expect(w.slice(4, 8)).toEqual([2000, 2000, 2000, 2000]);
    expect(w.slice(8, 12)).toEqual([500, 500, 500, 500]);
  });

  it('falls back to the standard profile where it has no history', () => {
    const slots = quarterSlots('2026-01-05T08:00', 4);
    expect(f.powerW(slots)).toEqual(standardProfileLoad({ annualKwh: 4000, timezone: tz }).powerW(slots));
    expect(f.name).toMatch(/BDEW H25/);
  });
});

describe('PV: clear sky scaled by recent production', () => {
  const array = { kWp: 5, tilt: 30, azimuth: 180, latitude: 50.1, longitude: 8.7 };

  it('puts the sun where astronomy says', () => {
    // June solstice, solar noon at 8.7°E ≈ 11:27 UTC: zenith = latitude − 23.44°
    const noon = sunPosition(Date.UTC(2026, 5, 21, 11, 27), 50.1, 8.7);
    expect(noon.zenith).toBeCloseTo(50.1 - 23.44, 0);
    expect(noon.azimuth).toBeGreaterThan(175);
    expect(noon.azimuth).toBeLessThan(185);
    expect(sunPosition(Date.UTC(2026, 5, 21, 6, 0), 50.1, 8.7).azimuth).toBeLessThan(90);
    expect(clearSkyPvW(Date.UTC(2026, 5, 21, 23, 0), array)).toBe(0);
    const peak = clearSkyPvW(Date.UTC(2026, 5, 21, 11, 27), array);
    expect(peak).toBeGreaterThan(3500);
    expect(peak).toBeLessThanOrEqual(5000);
  });

  it('learns the share of clear sky the array produced in the last days', () => {
    const history: EnergyInterval[] = [];
    for (let t = at('2026-06-18T00:00'); t < at('2026-06-21T00:00'); t += 3_600_000) history.push({ start: t, end: t + 3_600_000, wh: 0.4 * clearSkyMeanW(t, t + 3_600_000, array) });
    const f = clearSkyPvForecast({ array, timezone: tz, history });
    const slots = quarterSlots('2026-06-21T06:00', 48);
    const w = f.powerW(slots);
    slots.forEach((s, k) => expect(w[k]).toBeCloseTo(0.4 * clearSkyMeanW(s.start, s.end, array), -1));
    // with no history it assumes a yearly mean clearness
    const blind = clearSkyPvForecast({ array, timezone: tz }).powerW(slots);
    expect(blind[24]).toBeCloseTo(0.6 * clearSkyMeanW(slots[24].start, slots[24].end, array), 3);
  });
});
