import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { runBacktest, type BacktestData, type BacktestOptions } from '../src/backtest/engine.js';
import { fixedRate, readSeries } from '../src/backtest/read.js';
import { loadSolver } from '../src/control/solver.js';
/**
 * Where a home's perfect-forecast plans lose against the optimum (development aid, not a benchmark):
 * the year replayed with perfect forecasts for each variant of the backtest options (VARIANTS, JSON
 * separated by ';', e.g. {"terminalValuePerKwh":0.29} or {"horizonHours":96}), the share of the
 * optimum's savings and the gap to the optimum per month.
 *   HOME_ID=12 REPLAN=60 VARIANTS='{};{"horizonHours":96}' node --import tsx bench/horizon.ts
 */
const dataDir = '/work/shared/data';
const tz = 'Europe/Berlin';
const id = process.env.HOME_ID ?? '12';
const replan = Number(process.env.REPLAN ?? 60);
const variants = (process.env.VARIANTS ?? '{}').split(';').map((v) => JSON.parse(v) as Partial<BacktestOptions>);
const schema = JSON.parse(readFileSync(join(dataDir, 'load_pv', 'citylearn_2022', 'schema.json'), 'utf8'));
const solver = await loadSolver();
const battery = { capacityWh: 10000, chargeW: 5000, dischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95, socMinWh: 500, socMaxWh: 10000, initialWh: 5000 };
const kWp = schema.buildings[`Building_${id}`]?.pv?.attributes?.nominal_power ?? 4;
const file = join(dataDir, 'load_pv', 'citylearn_2022', `Building_${id}.csv`);
const from = DateTime.fromObject({ year: 2025 }, { zone: tz }).toMillis();
const to = DateTime.fromObject({ year: 2026 }, { zone: tz }).toMillis();
const span = { a: from - 36 * 864e5, b: to + 72 * 36e5 };
const data: BacktestData = {
  importRate: readSeries(join(dataDir, 'prices', 'de-lu_energy-charts'), 'import', { timezone: tz }).over(span.a, span.b).map((r) => ({ ...r, value: (r.value + 0.17) * 1.19 })),
  exportRate: fixedRate(0.08).over(span.a, span.b),
  load: readSeries(file, 'load', { timezone: tz }).over(span.a, span.b),
  pv: readSeries(file, 'pv', { timezone: tz, pvKwp: kWp }).over(span.a, span.b),
};
const base: BacktestOptions = { from, to, timezone: tz, battery, forecast: 'perfect', replanMinutes: replan, slotMinutes: 15, horizonHours: 48, pvArray: { kWp, latitude: 34.1, longitude: 17.6, tilt: 30, azimuth: 180 }, loadForecastCache: new Map() };
const b = await runBacktest(data, { ...base, strategies: ['none', 'optimum'] }, solver);
const none = b.strategies.find((s) => s.name === 'none')!;
const opt = b.strategies.find((s) => s.name === 'optimum')!;
console.log('endValuePerKwh', b.endValuePerKwh.toFixed(4), 'none', none.cost.toFixed(2), 'optimum', opt.cost.toFixed(2));
for (const v of variants) {
  const c0 = process.cpuUsage();
  const r = await runBacktest(data, { ...base, ...v, strategies: ['homeflex'] }, solver);
  const hf = r.strategies[0];
  const u = process.cpuUsage(c0);
  const share = ((none.cost - hf.cost) / (none.cost - opt.cost)) * 100;
  const gap = hf.months.map((m, i) => `${m.month.slice(5)} ${(m.cost - opt.months[i].cost).toFixed(2)}`).join(', ');
  console.log(JSON.stringify(v), share.toFixed(2), '%', `cost ${hf.cost.toFixed(2)} endEnergy ${hf.endEnergyValue.toFixed(2)}`, `(${((u.user + u.system) / 1e6).toFixed(0)} s CPU)`, '\n  gap per month €:', gap);
}
