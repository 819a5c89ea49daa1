import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { beforeAll, describe, expect, it } from 'vitest';
import { backtestCommand, parseBattery } from '../../src/backtest/cli.js';
import { runBacktest, type BacktestData, type BacktestOptions } from '../../src/backtest/engine.js';
import { InputError, readSeries, type Interval } from '../../src/backtest/read.js';
import { loadSolver } from '../../src/control/solver.js';
import type { LpSolver } from '../../src/optimiser/site/index.js';

const FIX = new URL('../fixtures/backtest/', import.meta.url).pathname;
const tz = 'Europe/Berlin';
const at = (iso: string) => DateTime.fromISO(iso, { zone: tz }).toMillis();
const H = 3_600_000;

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadSolver();
});

describe('backtest readers', () => {
  it('reads Energy-Charts days, including both DST changes, in €/kWh', () => {
    const src = readSeries(join(FIX, 'energy-charts'), 'import', { timezone: tz });
    const spring = src.over(at('2025-03-30T00:00'), at('2025-03-31T00:00'));
    expect(spring).toHaveLength(23);
    expect(spring[0]).toMatchObject({ start: at('2025-03-30T00:00'), end: at('2025-03-30T01:00') });
    expect(spring[0].value).toBeCloseTo(0.04631, 12);
    expect(spring.every((r, i) => i === 0 || r.start === spring[i - 1].end)).toBe(true);
    const autumn = src.over(at('2025-10-26T00:00'), at('2025-10-27T00:00'));
    expect(autumn).toHaveLength(100);
    expect(autumn[99].end - autumn[0].start).toBe(25 * H);
    expect(autumn[0].end - autumn[0].start).toBe(15 * 60_000);
  });

  it('reads Ausgrid half hours (kW → kWh) and replays them on the same date of another year', () => {
    const load = readSeries(join(FIX, 'ausgrid_customer12_2days.csv'), 'load', { timezone: 'Australia/Sydney' });
    const own = load.over(Date.parse('2011-06-30T14:00:00Z'), Date.parse('2011-06-30T15:00:00Z'));
    expect(own.map((r) => r.value)).toEqual([0.392 * 0.5, 0.578 * 0.5]);
    const replayed = load.over(DateTime.fromISO('2025-07-01T00:00', { zone: 'Australia/Sydney' }).toMillis(), DateTime.fromISO('2025-07-01T01:00', { zone: 'Australia/Sydney' }).toMillis());
    expect(replayed.map((r) => r.value)).toEqual([0.196, 0.289]);
  });

  it('reads a CityLearn building: row 0 is 1 August 00:00 local, PV scaled by its kWp', () => {
    const file = join(FIX, 'citylearn_Building_1_2days.csv');
    const load = readSeries(file, 'load', { timezone: tz }).over(at('2025-08-01T00:00'), at('2025-08-01T02:00'));
    expect(load.map((r) => r.value)).toEqual([2.2758, 0.85116667]);
    const pv = readSeries(file, 'pv', { timezone: tz, pvKwp: 4 }).over(at('2025-08-01T00:00'), at('2025-08-02T00:00'));
    expect(Math.max(...pv.map((r) => r.value))).toBeGreaterThan(2);
    expect(() => readSeries(file, 'pv', { timezone: tz })).toThrow(/PV size unknown .* give --pv-kwp/);
  });

  it('reads Energinet Elspotprices and plain time,value CSV; bad rows say where', () => {
    const dk = readSeries(join(FIX, 'elspot_3rows.csv'), 'import', { timezone: 'Europe/Copenhagen' }).over(Date.parse('2022-10-19T20:00:00Z'), Date.parse('2022-10-19T22:00:00Z'));
    expect(dk.map((r) => Math.round(r.value * 1e9) / 1e9)).toEqual([0.148149994, 0.131570007]);
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-bt-'));
    writeFileSync(join(dir, 'p.csv'), 'time,value\n2025-01-01T00:00,0.25\n2025-01-01T01:00,0.30\n');
    expect(readSeries(join(dir, 'p.csv'), 'import', { timezone: tz }).over(at('2025-01-01T00:00'), at('2025-01-01T02:00'))).toEqual([
      { start: at('2025-01-01T00:00'), end: at('2025-01-01T01:00'), value: 0.25 },
      { start: at('2025-01-01T01:00'), end: at('2025-01-01T02:00'), value: 0.3 },
    ]);
    writeFileSync(join(dir, 'bad.csv'), 'time,value\n2025-01-01T00:00,0.25\n2025-01-01T01:00,abc\n');
    expect(() => readSeries(join(dir, 'bad.csv'), 'load', { timezone: tz })).toThrow(/bad\.csv:3: value "abc" is not a number/);
    expect(() => readSeries(join(dir, 'missing.csv'), 'load', { timezone: tz })).toThrow(InputError);
    expect(() => parseBattery('capacity_wh=10000,power=5000')).toThrow(/unknown key "power" \(valid: capacity_wh, power_w/);
  });
});

/** Two synthetic days: hourly prices with a dear evening, a house with an evening peak and midday PV. */
function twoDays(): { data: BacktestData; from: number; to: number } {
  const from = at('2025-06-02T00:00');
  const to = at('2025-06-04T00:00');
  const importRate: Interval[] = [];
  const load: Interval[] = [];
  const pv: Interval[] = [];
  for (let t = from - 40 * 24 * H; t < to + 4 * 24 * H; t += H) {
    const h = DateTime.fromMillis(t, { zone: tz }).hour;
    importRate.push({ start: t, end: t + H, value: h >= 17 && h < 21 ? 0.45 : h < 6 ? 0.2 : 0.3 });
    load.push({ start: t, end: t + H, value: h >= 17 && h < 22 ? 1.5 : 0.4 });
    pv.push({ start: t, end: t + H, value: h >= 9 && h < 16 ? 2.5 : 0 });
  }
  return { data: { importRate, exportRate: [{ start: from - 40 * 24 * H, end: to + 4 * 24 * H, value: 0.08 }], load, pv }, from, to };
}

const baseOptions = (from: number, to: number): BacktestOptions => ({
  from,
  to,
  timezone: tz,
  battery: { capacityWh: 8000, chargeW: 3000, dischargeW: 3000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95, socMinWh: 500, socMaxWh: 8000, initialWh: 4000 },
  forecast: 'perfect',
  replanMinutes: 1440,
  slotMinutes: 15,
  horizonHours: 48,
});

describe('backtest replay', () => {
  it('settles every strategy at the data’s resolution; the optimum bounds them all and homeflex reaches it with perfect forecasts', async () => {
    const { data, from, to } = twoDays();
    const r = await runBacktest(data, baseOptions(from, to), solver);
    const cost = Object.fromEntries(r.strategies.map((s) => [s.name, s.cost]));
    // no battery: exactly the settled net load
    let none = 0;
    for (const s of r.settlement) {
      const n = s.loadKwh - s.pvKwh;
      none += n > 0 ? n * s.importRate : n * s.exportRate;
    }
    expect(cost.none).toBeCloseTo(none, 6);
    expect(r.settlement).toHaveLength(48);
    for (const name of ['self_consumption', 'price_threshold', 'homeflex']) expect(cost[name]).toBeGreaterThanOrEqual(cost.optimum - 1e-6);
    expect(cost.self_consumption).toBeLessThan(cost.none);
    const share = (cost.none - cost.homeflex) / (cost.none - cost.optimum);
    expect(share).toBeGreaterThanOrEqual(0.99);
    // energy balance: imports − exports = load − PV + battery losses and stored energy
    const hf = r.strategies.find((s) => s.name === 'homeflex')!;
    expect(hf.importKwh - hf.exportKwh).toBeGreaterThan(r.settlement.reduce((a, s) => a + s.loadKwh - s.pvKwh, 0) - 8);
    expect(hf.months.map((m) => m.month)).toEqual(['2025-06']);
  });

  it('an EV gets its energy in the cheap night under homeflex, at once in the baseline; an AC keeps its band', async () => {
    const { data, from, to } = twoDays();
    const o = { ...baseOptions(from, to), battery: undefined, ev: { minW: 4140, maxW: 11040, arrive: '18:00', leave: '07:30', energyWh: 15000 }, hvac: { mode: 'cool' as const, rKPerKw: 5, cKwhPerK: 3, cop: 3, maxElectricW: 1500, gainsW: 600, minC: 22, maxC: 25, initialC: 24, outdoorMinC: 22, outdoorMaxC: 34 } };
    const r = await runBacktest(data, o, solver);
    const by = Object.fromEntries(r.strategies.map((s) => [s.name, s]));
    expect(by.none.evShortfallKwh).toBe(0);
    expect(by.homeflex.evShortfallKwh).toBe(0);
    expect(by.homeflex.discomfortKh).toBe(0);
    expect(by.none.discomfortKh).toBe(0);
    expect(by.homeflex.cost).toBeLessThan(by.none.cost - 2);
    expect(by.homeflex.cost).toBeGreaterThanOrEqual(by.optimum.cost - 1e-6);
  });

  it('with history forecasts, knows tomorrow’s prices only from 13:00 and still saves', async () => {
    const { data, from, to } = twoDays();
    const r = await runBacktest(data, { ...baseOptions(from, to), forecast: 'history', pvArray: { kWp: 3, latitude: 50, longitude: 10 } }, solver);
    const by = Object.fromEntries(r.strategies.map((s) => [s.name, s]));
    expect(by.homeflex.cost).toBeLessThan(by.none.cost);
    expect(by.homeflex.plans).toBeGreaterThanOrEqual(4); // midnight and 13:00 each day
  });
});

describe('homeflex backtest command', () => {
  it('writes summary.json, slots.csv and chart.html for real prices and a real home', async () => {
    const out = mkdtempSync(join(tmpdir(), 'homeflex-bt-out-'));
    const load = join(FIX, 'citylearn_Building_1_2days.csv');
    const code = await backtestCommand(['--prices', join(FIX, 'energy-charts'), '--export-prices', '0.08', '--load', load, '--pv', load, '--pv-kwp', '4', '--battery', 'capacity_wh=10000,power_w=5000,soc_min_wh=500,initial_wh=5000', '--import-add', '0.17', '--import-vat', '0.19', '--forecast', 'perfect', '--from', '2025-03-30', '--to', '2025-04-01', '--out', out, '--no-progress']);
    expect(code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(Object.keys(summary.strategies)).toEqual(['none', 'self_consumption', 'price_threshold', 'homeflex', 'optimum']);
    expect(summary.strategies.optimum.share_of_optimum_savings).toBe(1);
    expect(summary.strategies.homeflex.share_of_optimum_savings).toBeGreaterThan(0.95);
    expect(summary.settlement_minutes).toEqual({ min: 60, max: 60 });
    const csv = readFileSync(join(out, 'slots.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(1 + 47); // 23 h on the DST day + 24 h
    expect(csv[0]).toMatch(/^start,end,import_rate,export_rate,load_kwh,pv_kwh,none_grid_kwh/);
    expect(readFileSync(join(out, 'chart.html'), 'utf8')).toMatch(/<svg/);
  });

  it('refuses a period the prices do not cover, and a bad battery spec, saying what is wrong', async () => {
    const out = mkdtempSync(join(tmpdir(), 'homeflex-bt-out-'));
    const load = join(FIX, 'citylearn_Building_1_2days.csv');
    const errs: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await backtestCommand(['--prices', join(FIX, 'energy-charts'), '--load', load, '--pv', load, '--pv-kwp', '4', '--from', '2025-04-01', '--to', '2025-04-03', '--out', out])).toBe(2);
      expect(await backtestCommand(['--prices', join(FIX, 'energy-charts'), '--load', load, '--pv', load, '--battery', 'capacity_wh=10000,efficiency=0.9', '--from', '2025-03-30', '--to', '2025-03-31', '--out', out])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(errs.join('')).toMatch(/--prices: no price for 2025-03-31T22:00:00.000Z/);
    expect(errs.join('')).toMatch(/--battery: unknown key "efficiency"/);
  });
});

describe('forecasts as wrong as real ones (issue 15)', () => {
  it('a synthetic day-ahead PV forecast has the asked nRMSE, whole-day errors that persist, day totals as rarely wrong as published, and no error at nRMSE 0', async () => {
    const { pvNrmse, sigmasForNrmse, syntheticPvForecast, PUBLISHED_DAILY_SIGMA } = await import('../../src/backtest/weather.js');
    const from = at('2025-04-01T00:00');
    const to = at('2025-07-01T00:00');
    const pv: Interval[] = [];
    for (let t = from; t < to; t += H) {
      const h = DateTime.fromMillis(t, { zone: tz }).hour;
      pv.push({ start: t, end: t + H, value: h >= 7 && h < 19 ? 3 * Math.sin(((h - 6.5) / 12) * Math.PI) : 0 });
    }
    const base = { pv, timezone: tz, phi: 0.6, rho: 0.8, seed: 3 };
    const sigmas = sigmasForNrmse(base, 4, 0.14, from, to);
    expect(sigmas.sigma).toBeCloseTo(PUBLISHED_DAILY_SIGMA, 6);
    expect(sigmas.hourSigma).toBeGreaterThan(0.1);
    const f = syntheticPvForecast({ ...base, ...sigmas });
    expect(pvNrmse(pv, f, 4, from, to)).toBeCloseTo(0.14, 2);
    // the hours of a day differ (clouds at the wrong hour), but the day's total is measured × the day's factor
    expect(f.factorOf(at('2025-05-03T10:00'))).not.toBe(f.factorOf(at('2025-05-03T15:00')));
    let over40 = 0;
    for (let d = from; d < to; d += 24 * H) {
      let actual = 0;
      let forecast = 0;
      for (let t = d; t < d + 24 * H; t += H) {
        const a = pv.find((r) => r.start === t)!.value;
        actual += a;
        forecast += a * f.factorOf(t);
      }
      expect(forecast / actual).toBeCloseTo(f.dayFactorOf(d + 12 * H), 9);
      if (forecast > 1.4 * actual) over40++;
    }
    // the paper's day totals: over-forecast by more than 40 % on 2 days in 3 years; allow 2 in these 91 days
    expect(over40).toBeLessThanOrEqual(2);
    // hour-to-hour persistence within a day: neighbouring hours' factors correlate
    const hx: number[] = [];
    const hy: number[] = [];
    for (let d = from; d < to; d += 24 * H) for (let h = 8; h < 17; h++) {
      hx.push(Math.log(f.factorOf(d + h * H) / f.dayFactorOf(d + 12 * H)));
      hy.push(Math.log(f.factorOf(d + (h + 1) * H) / f.dayFactorOf(d + 12 * H)));
    }
    const mx = hx.reduce((a, b) => a + b, 0) / hx.length;
    const my = hy.reduce((a, b) => a + b, 0) / hy.length;
    let cxy = 0;
    let cxx = 0;
    let cyy = 0;
    for (let i = 0; i < hx.length; i++) {
      cxy += (hx[i] - mx) * (hy[i] - my);
      cxx += (hx[i] - mx) ** 2;
      cyy += (hy[i] - my) ** 2;
    }
    expect(cxy / Math.sqrt(cxx * cyy)).toBeGreaterThan(0.5);
    // day-to-day persistence: the log factors of consecutive days correlate
    const logs: number[] = [];
    for (let d = from; d < to; d += 24 * H) logs.push(Math.log(f.dayFactorOf(d + 12 * H)));
    const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
    let num = 0;
    let den = 0;
    for (let i = 0; i < logs.length; i++) {
      den += (logs[i] - mean) ** 2;
      if (i) num += (logs[i] - mean) * (logs[i - 1] - mean);
    }
    expect(num / den).toBeGreaterThan(0.3);
    expect(pvNrmse(pv, syntheticPvForecast({ ...base, ...sigmasForNrmse(base, 4, 0, from, to) }), 4, from, to)).toBe(0);
  });

  it('reads a recorded PV forecast archive as it was known at each instant, and says where a row is bad', async () => {
    const { readPvForecastArchive } = await import('../../src/backtest/weather.js');
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-wx-'));
    writeFileSync(join(dir, 'wx.csv'), 'issued,time,value\n2025-06-01T00:00,2025-06-01T12:00,1\n2025-06-01T00:00,2025-06-01T13:00,2\n2025-06-01T06:00,2025-06-01T12:00,3\n2025-06-01T06:00,2025-06-01T13:00,4\n');
    const a = readPvForecastArchive(join(dir, 'wx.csv'), tz);
    const slot = [{ start: at('2025-06-01T12:00'), end: at('2025-06-01T13:00') }];
    expect(a.powerW(at('2025-05-31T23:00'), slot)).toEqual([0]);
    expect(a.powerW(at('2025-06-01T05:59'), slot)[0]).toBeCloseTo(1000, 6);
    expect(a.powerW(at('2025-06-01T06:00'), slot)[0]).toBeCloseTo(3000, 6);
    writeFileSync(join(dir, 'bad.csv'), 'issued,time,value\n2025-06-01T00:00,2025-06-01T12:00,x\n');
    expect(() => readPvForecastArchive(join(dir, 'bad.csv'), tz)).toThrow(/bad\.csv:2: value "x" is not a number/);
  });

  it('with a PV forecast that sees half the sun, robust plans learn it and stay above the self-consumption rule; point plans do not', async () => {
    const { data, to } = twoDays();
    const from = to - 20 * 24 * H;
    // every day's forecast is half the measured production: a point plan grid-charges at night for sun that then comes
    const byHour = new Map(data.pv.map((r) => [r.start, r.value]));
    const dull = { describe: 'half the sun', powerW: (_t: number, slots: readonly { start: number; end: number }[]) => slots.map((s) => (byHour.get(Math.floor(s.start / H) * H) ?? 0) * 500) };
    const run = async (uncertainty: 'robust' | 'point') => {
      const r = await runBacktest(data, { ...baseOptions(from, to), forecast: 'weather', pvForecastArchive: dull, uncertainty, replanMinutes: 15, strategies: ['none', 'self_consumption', 'homeflex', 'optimum'] }, solver);
      const by = Object.fromEntries(r.strategies.map((s) => [s.name, s.cost]));
      return (by.homeflex - by.self_consumption) / (by.none - by.optimum);
    };
    // points of the optimum's savings that homeflex loses against the rule
    expect(await run('robust')).toBeLessThanOrEqual(0.005);
    expect(await run('point')).toBeGreaterThan(0.005);
  }, 120_000);

  it('the weather mode needs its archive, and says so', async () => {
    const out = mkdtempSync(join(tmpdir(), 'homeflex-bt-out-'));
    const load = join(FIX, 'citylearn_Building_1_2days.csv');
    const errs: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await backtestCommand(['--prices', join(FIX, 'energy-charts'), '--load', load, '--pv', load, '--pv-kwp', '4', '--forecast', 'weather', '--from', '2025-03-30', '--to', '2025-03-31', '--out', out])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(errs.join('')).toMatch(/--forecast weather needs --weather FILE or --weather synthetic:nrmse=0.14/);
  });
});
