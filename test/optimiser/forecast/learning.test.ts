import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { homes, loadForecastErrors } from '../../../bench/forecast.js';
import {
  arrayAcPowerW,
  asMadeSeries,
  calibratedForecast,
  errorsByHorizon,
  fitPvCalibration,
  fitTemperatureEffect,
  learnedLoadForecast,
  planeOfArrayIrradiance,
  weightedQuantile,
  seriesForecast,
  standardProfileLoad,
  withLearnedQuantiles,
  type CalibrationPair,
  type EnergyInterval,
  type ForecastSnapshot,
  type PvPlane,
} from '../../../src/optimiser/forecast/index.js';

const tz = 'Europe/Berlin';
const H = 3_600_000;
const at = (iso: string) => DateTime.fromISO(iso, { zone: tz }).toMillis();
const hourSlots = (fromIso: string, n: number) => Array.from({ length: n }, (_, k) => ({ start: at(fromIso) + k * H, end: at(fromIso) + (k + 1) * H }));

describe('PV model: irradiance to AC power (Hay–Davies, cell temperature, clipping)', () => {
  const south: PvPlane = { id: 's', kWp: 5, tilt: 30, azimuth: 180, latitude: 52.52, longitude: 13.41 };
  // clear June noon in Berlin: GHI 850, DNI 840, DHI 130 (W/m², mean over the hour)
  const noon = { start: Date.parse('2026-06-21T10:30:00Z'), end: Date.parse('2026-06-21T11:30:00Z'), ghi: 850, dni: 840, dhi: 130, tempC: 25 };

  it.each([
    // [case, plane, what holds]
    ['a south roof at 30° catches more than the horizontal', { ...south }, (poa: number) => poa > 850 && poa < 1000],
    ['a flat array catches the horizontal', { ...south, tilt: 0 }, (poa: number) => Math.abs(poa - 850) < 5],
    ['a vertical north wall sees only sky and ground', { ...south, tilt: 90, azimuth: 0 }, (poa: number) => poa > 20 && poa < 150],
    ['an east roof at noon catches less than a south one', { ...south, azimuth: 90 }, (poa: number) => poa < 800],
  ] as const)('%s', (_name, plane, holds) => {
    expect(holds(planeOfArrayIrradiance(noon, plane).poa)).toBe(true);
  });

  it('night, or the sun below the horizon, gives nothing; heat costs power; the inverter clips', () => {
    expect(arrayAcPowerW({ ...noon, start: Date.parse('2026-06-21T22:00:00Z'), end: Date.parse('2026-06-21T23:00:00Z') }, south)).toBe(0);
    const mild = arrayAcPowerW({ ...noon, tempC: 10 }, south);
    const hot = arrayAcPowerW({ ...noon, tempC: 35 }, south);
    expect(mild).toBeGreaterThan(hot * 1.08);
    expect(mild).toBeLessThan(5000);
    expect(arrayAcPowerW({ ...noon, tempC: 10 }, { ...south, inverterKw: 3 })).toBe(3000);
  });

  it('without DHI, the diffuse share comes from the clearness index (Erbs): an overcast hour is mostly diffuse', () => {
    const overcast = planeOfArrayIrradiance({ start: noon.start, end: noon.end, ghi: 150 }, south);
    expect(overcast.beam).toBeLessThan(0.1 * overcast.poa);
  });
});

describe('PV calibration against measured production (by hour of day and season)', () => {
  // 30 June days: the forecast says 1000 W at every daylight hour; the roof is shaded before 10:00 (half) and right otherwise
  const pairs: CalibrationPair[] = [];
  for (let d = 0; d < 30; d++) {
    for (let h = 6; h < 20; h++) {
      const start = at('2026-06-01T00:00') + d * 24 * H + h * H;
      const actual = h < 10 ? 500 : d === 7 ? 50 /* snow on the panels */ : 1000;
      pairs.push({ start, end: start + H, forecastW: 1000, actualW: actual });
    }
  }
  const cal = fitPvCalibration(pairs, { timezone: tz });

  it('learns the steady ratio per local hour and ignores an outlying day', () => {
    expect(cal.factorAt(at('2026-07-01T08:30'))).toBeCloseTo(0.5, 1);
    expect(cal.factorAt(at('2026-07-01T13:30'))).toBeCloseTo(1, 1);
    // the snowy day (ratio 0.05) would pull the 13:00 factor to 0.97 if it counted
    expect(cal.factorAt(at('2026-07-01T13:30'))).toBeGreaterThan(0.975);
  });

  it('is bounded, and in another season (months away) it knows nothing and stays near 1', () => {
    const dark = fitPvCalibration(pairs.map((p) => ({ ...p, actualW: p.actualW * 0.05 })), { timezone: tz });
    expect(dark.factorAt(at('2026-07-01T13:30'))).toBe(0.5);
    expect(cal.factorAt(at('2026-12-15T12:30'))).toBe(1);
  });

  it('scales the forecast and its quantiles alike', () => {
    const base = seriesForecast([{ start: at('2026-07-01T08:00'), end: at('2026-07-01T09:00'), powerW: 1200, p10W: 600, p90W: 1500 }], 'test');
    const c = calibratedForecast(base, cal);
    const slots = hourSlots('2026-07-01T08:00', 1);
    const f = cal.factorAt(at('2026-07-01T08:30'));
    expect(f).toBeLessThan(0.6);
    expect(c.powerW(slots)[0]).toBeCloseTo(1200 * f, 6);
    expect(c.quantilesW!(slots).p90[0]).toBeCloseTo(1500 * f, 6);
  });

  it('quantiles from past errors bracket the point forecast', () => {
    const spread: CalibrationPair[] = pairs.map((p, i) => ({ ...p, actualW: p.forecastW * (0.4 + (i % 10) / 10) }));
    const q = withLearnedQuantiles(seriesForecast([{ start: at('2026-07-01T12:00'), end: at('2026-07-01T13:00'), powerW: 1000 }], 't'), spread, { timezone: tz, mode: 'ratio' }).quantilesW!(hourSlots('2026-07-01T12:00', 1));
    expect(q.p10[0]).toBeLessThan(600);
    expect(q.p90[0]).toBeGreaterThan(1100);
    expect(q.p10[0] <= q.p50[0] && q.p50[0] <= q.p90[0]).toBe(true);
  });
});

describe('errors by lead time, from forecasts as made', () => {
  const t0 = Date.parse('2026-06-01T00:00:00Z');
  // two forecasts: made at 00:00 (too high by 100 W), made at 06:00 (too high by 20 W); actual 1000 W
  const snaps: ForecastSnapshot[] = [
    { madeAt: t0, start: t0, stepMs: H, valuesW: new Array(24).fill(1100), source: 'a' },
    { madeAt: t0 + 6 * H, start: t0 + 6 * H, stepMs: H, valuesW: new Array(24).fill(1020), source: 'b' },
  ];
  const actual = () => 1000;

  it('buckets each slot by the time between making the forecast and the slot', () => {
    const e = errorsByHorizon(snaps, actual, t0, t0 + 48 * H);
    const by = Object.fromEntries(e.map((x) => [x.horizon, x]));
    expect(by['0–1 h']).toMatchObject({ slots: 2, maeW: 60, biasW: 60 });
    expect(by['12–24 h'].slots).toBe(12 + 12);
    expect(by['6–12 h']).toMatchObject({ slots: 12, maeW: 60, biasW: 60 });
    expect(by['24–48 h'].slots).toBe(0);
    // only slots inside the window count
    expect(errorsByHorizon(snaps, actual, t0 + 24 * H, t0 + 48 * H).reduce((a, x) => a + x.slots, 0)).toBe(6);
  });

  it('the series the hub acted on takes the newest forecast made before each slot', () => {
    const s = asMadeSeries(snaps, t0 + 5 * H, t0 + 9 * H, H);
    expect(s.map((x) => [x.forecastW, x.source])).toEqual([[1100, 'a'], [1020, 'b'], [1020, 'b'], [1020, 'b']]);
  });
});

describe('learned base load', () => {
  it('weighs recent days more: a step change in the load shows in tomorrow’s forecast sooner than in the same-weekday mean', () => {
    const history: EnergyInterval[] = [];
    for (let t = at('2026-02-01T00:00'); t < at('2026-03-01T00:00'); t += 900_000) history.push({ start: t, end: t + 900_000, wh: (t >= at('2026-02-22T00:00') ? 1000 : 400) / 4 });
    const f = learnedLoadForecast({ history, timezone: tz, fallback: standardProfileLoad({ annualKwh: 4000, timezone: tz }), halfLifeDays: 5 });
    const w = f.powerW(hourSlots('2026-03-01T12:00', 1))[0];
    expect(w).toBeGreaterThan(750);
    expect(w).toBeLessThan(1000);
  });

  it('weighted quantile: the smallest value whose cumulative weight reaches q of the total', () => {
    expect(weightedQuantile([5, 1, 3], [1, 1, 1], 0.5)).toBe(3);
    // the heavy weight on 1 pulls the median down to it
    expect(weightedQuantile([5, 1, 3], [1, 4, 1], 0.5)).toBe(1);
    expect(weightedQuantile([5, 1, 3], [1, 1, 1], 0.9)).toBe(5);
    expect(weightedQuantile([5, 1, 3], [1, 1, 1], 0.1)).toBe(1);
  });

  it('quantile: a few days with a big evening load move the weighted mean, not the weighted median', () => {
    // 28 days at 400 W, every fourth evening (18:00–19:00) a 4 kW appliance
    const history: EnergyInterval[] = [];
    for (let t = at('2026-02-01T00:00'); t < at('2026-03-01T00:00'); t += 900_000) {
      const d = DateTime.fromMillis(t, { zone: tz });
      const spike = d.day % 4 === 0 && d.hour === 18;
      history.push({ start: t, end: t + 900_000, wh: (spike ? 4400 : 400) / 4 });
    }
    const fallback = standardProfileLoad({ annualKwh: 4000, timezone: tz });
    const evening = hourSlots('2026-03-01T18:00', 1);
    const mean = learnedLoadForecast({ history, timezone: tz, fallback }).powerW(evening)[0];
    const median = learnedLoadForecast({ history, timezone: tz, fallback, quantile: 0.5 });
    expect(mean).toBeGreaterThan(700);
    expect(median.powerW(evening)[0]).toBeCloseTo(400, 6);
    expect(median.name).toMatch(/median/);
    // a high quantile sees the spike days
    expect(learnedLoadForecast({ history, timezone: tz, fallback, quantile: 0.95 }).powerW(evening)[0]).toBeCloseTo(4400, 6);
  });

  it('uses the outdoor temperature only where it explains the daily load', () => {
    const pts = Array.from({ length: 28 }, (_, i) => ({ tempC: i % 14, loadW: 800 - 20 * (i % 14) + (i % 3) * 5 }));
    expect(fitTemperatureEffect(pts)!.wPerK).toBeCloseTo(-20, 0);
    expect(fitTemperatureEffect(pts.map((p, i) => ({ ...p, loadW: 500 + ((i * 37) % 11) * 30 })))).toBeUndefined();
  });

  const dataThere = existsSync(join(import.meta.dirname, '..', '..', '..', '..', 'shared', 'data', 'load_pv')) || existsSync('/work/shared/data/load_pv');
  // real homes: CityLearn 2022 (MIT) and the Ausgrid solar home data (analysis CC BY 4.0, P. Haessig; data © Ausgrid)
  const table = [
    { home: 'CityLearn Building 1', from: '2025-02-01', to: '2025-04-01' },
    { home: 'CityLearn Building 8', from: '2025-06-01', to: '2025-08-01' },
    { home: 'Ausgrid customer 12', from: '2011-09-01', to: '2011-11-01' },
  ];
  // Building 1 ships with the repository (samples/backtest, MIT): this row runs on every machine
  it('CityLearn Building 1 from the shipped sample, 2025-02-01 to 2025-04-01: day-ahead MAE below the same-weekday forecast', () => {
    const h = { ...homes().find((x) => x.name === 'CityLearn Building 1')!, load: join(import.meta.dirname, '..', '..', '..', 'samples', 'backtest', 'citylearn', 'Building_1.csv'), weather: undefined };
    const r = loadForecastErrors({ ...h, from: '2025-02-01', to: '2025-04-01' } as never, { same_weekday: { sameWeekday: true }, learned: {} });
    expect(r.learned.maeW).toBeLessThan(r.same_weekday.maeW);
    expect(Math.abs(r.learned.biasW)).toBeLessThan(0.1 * r.learned.meanActualW);
  }, 300_000);
  it.skipIf(!dataThere).each(table)('$home, $from to $to: day-ahead MAE below the same-weekday forecast', ({ home, from, to }) => {
    const h = homes().find((x) => x.name === home)!;
    const r = loadForecastErrors({ ...h, from, to }, { same_weekday: { sameWeekday: true }, learned: {} });
    expect(r.learned.maeW).toBeLessThan(r.same_weekday.maeW);
    expect(Math.abs(r.learned.biasW)).toBeLessThan(0.1 * r.learned.meanActualW);
  }, 300_000);
});
