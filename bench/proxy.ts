import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { runBacktest, type BacktestData, type BacktestOptions } from '../src/backtest/engine.js';
import { fixedRate, readSeries } from '../src/backtest/read.js';
import { loadSolver } from '../src/control/solver.js';
import { sigmasForNrmse, syntheticPvForecast } from '../src/backtest/weather.js';

/** Quick comparison of execution variants on a few homes (development aid, not a benchmark). */
const dataDir = '/work/shared/data';
const tz = 'Europe/Berlin';
const ids = (process.env.HOMES ?? '1,3,8').split(',');
const variants = (process.env.VARIANTS ?? '{}').split(';').map((v) => JSON.parse(v) as Partial<BacktestOptions>);
const replan = Number(process.env.REPLAN ?? 60);
const months = Number(process.env.MONTHS ?? 12);
const startMonth = Number(process.env.START ?? 1);
const schema = JSON.parse(readFileSync(join(dataDir, 'load_pv', 'citylearn_2022', 'schema.json'), 'utf8'));
const solver = await loadSolver();
const battery = { capacityWh: 10000, chargeW: 5000, dischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95, socMinWh: 500, socMaxWh: 10000, initialWh: 5000 };
for (const id of ids) {
  const kWp = schema.buildings[`Building_${id}`]?.pv?.attributes?.nominal_power ?? 4;
  const file = join(dataDir, 'load_pv', 'citylearn_2022', `Building_${id}.csv`);
  const from = DateTime.fromObject({ year: 2025, month: startMonth }, { zone: tz }).toMillis();
  const to = DateTime.fromObject({ year: 2025, month: startMonth }, { zone: tz }).plus({ months }).toMillis();
  const span = { a: from - 36 * 864e5, b: to + 72 * 36e5 };
  const data: BacktestData = {
    importRate: readSeries(join(dataDir, 'prices', 'de-lu_energy-charts'), 'import', { timezone: tz }).over(span.a, span.b).map((r) => ({ ...r, value: (r.value + 0.17) * 1.19 })),
    exportRate: fixedRate(0.08).over(span.a, span.b),
    load: readSeries(file, 'load', { timezone: tz }).over(span.a, span.b),
    pv: readSeries(file, 'pv', { timezone: tz, pvKwp: kWp }).over(span.a, span.b),
  };
  const base: BacktestOptions = { from, to, timezone: tz, battery, forecast: 'history', replanMinutes: replan, slotMinutes: 15, horizonHours: 48, pvArray: { kWp, latitude: 34.1, longitude: 17.6, tilt: 30, azimuth: 180 }, loadForecastCache: new Map() };
  const b = await runBacktest(data, { ...base, strategies: ['none', 'self_consumption', 'optimum'] }, solver);
  const cost = (n: string) => b.strategies.find((s) => s.name === n)!.cost;
  const share = (c: number) => ((cost('none') - c) / (cost('none') - cost('optimum'))) * 100;
  const line = [`B${id}`, `sc ${share(cost('self_consumption')).toFixed(1)}`];
  for (const v of variants) {
    const extra: Partial<BacktestOptions> = { ...v };
    if ((v as { nrmse?: number }).nrmse !== undefined) {
      const wb = { pv: data.pv, timezone: tz, phi: 0.6, seed: 1 };
      extra.pvForecastArchive = syntheticPvForecast({ ...wb, ...sigmasForNrmse(wb, kWp, (v as { nrmse: number }).nrmse, from, to) });
      extra.forecast = 'weather';
    }
    const c0 = process.cpuUsage();
    const r = await runBacktest(data, { ...base, ...extra, strategies: ['homeflex'] }, solver);
    const u = process.cpuUsage(c0);
    line.push(`${JSON.stringify(v)} ${share(r.strategies[0].cost).toFixed(2)} (${((u.user + u.system) / 1e6).toFixed(0)}s)`);
  }
  console.log(line.join(' | '));
}
void existsSync;
