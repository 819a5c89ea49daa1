import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import { runBacktest, type BacktestData, type BacktestOptions, type StrategyName } from '../src/backtest/engine.js';
import { fixedRate, readSeries } from '../src/backtest/read.js';
import { pvNrmse, sigmaForNrmse, syntheticPvForecast } from '../src/backtest/weather.js';
import { packageRoot } from '../src/cli.js';
import { loadSolver } from '../src/control/solver.js';

/**
 * The long comparison of issue 15: every CityLearn building and the Ausgrid home, each strategy,
 * homeflex re-planning every 15 minutes with perfect, history and weather forecasts. One results
 * file per home, written after each part, so a run that is stopped resumes where it stopped:
 *
 *   node dist/bench/homes.js [--out DIR] [--homes 1,2,ausgrid] [--modes perfect,history,weather]   (`baselines`: only none, self-consumption, thresholds, optimum)
 *   node dist/bench/homes.js --curve 1 --levels 0,0.05,0.1,0.14,0.2,0.3     (share of optimum vs PV forecast error)
 *   node dist/bench/homes.js --table                                          (markdown from the results files)
 */

const dataDir = process.env.HOMEFLEX_DATA ?? [join(packageRoot, '..', 'shared', 'data'), '/work/shared/data'].find((d) => existsSync(d)) ?? '';
/** Day-ahead hourly PV forecast error of Larson, Nonnenmacher & Coimbra (Renewable Energy 91, 2016): nRMSE 10.3–14.0 % of capacity; the worse site's. */
export const PUBLISHED_NRMSE = 0.14;

interface Home {
  id: string;
  label: string;
  file: string;
  kWp: number;
  year: number;
  battery: NonNullable<BacktestOptions['battery']>;
  pvArray: NonNullable<BacktestOptions['pvArray']>;
}

const bigBattery = { capacityWh: 10000, chargeW: 5000, dischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95, socMinWh: 500, socMaxWh: 10000, initialWh: 5000 };

function homes(): Home[] {
  const schema = JSON.parse(readFileSync(join(dataDir, 'load_pv', 'citylearn_2022', 'schema.json'), 'utf8')) as { buildings: Record<string, { pv?: { attributes?: { nominal_power?: number } } }> };
  const out: Home[] = [];
  for (let b = 1; b <= 17; b++) {
    const kWp = schema.buildings[`Building_${b}`]?.pv?.attributes?.nominal_power ?? 4;
    out.push({ id: String(b), label: `CityLearn Building ${b}`, file: join(dataDir, 'load_pv', 'citylearn_2022', `Building_${b}.csv`), kWp, year: 2025, battery: bigBattery, pvArray: { kWp, latitude: 34.1, longitude: 17.6, tilt: 30, azimuth: 180 } });
  }
  out.push({
    id: 'ausgrid',
    label: 'Ausgrid customer 12 (5 kWh / 2.5 kW, DE-LU 2024)',
    file: join(dataDir, 'load_pv', 'ausgrid_customer12', 'data_2011-2012.csv'),
    kWp: 1,
    year: 2024,
    battery: { ...bigBattery, capacityWh: 5000, chargeW: 2500, dischargeW: 2500, socMinWh: 250, socMaxWh: 5000, initialWh: 2500 },
    pvArray: { kWp: 1, latitude: -33.9, longitude: 15, tilt: 30, azimuth: 0 },
  });
  return out;
}

const tz = 'Europe/Berlin';

function loadData(home: Home) {
  const from = DateTime.fromObject({ year: home.year }, { zone: tz }).toMillis();
  const to = DateTime.fromObject({ year: home.year + 1 }, { zone: tz }).toMillis();
  const span = { a: from - 36 * 864e5, b: to + 72 * 36e5 };
  const data: BacktestData = {
    importRate: readSeries(join(dataDir, 'prices', 'de-lu_energy-charts'), 'import', { timezone: tz }).over(span.a, span.b).map((r) => ({ ...r, value: (r.value + 0.17) * 1.19 })),
    exportRate: fixedRate(0.08).over(span.a, span.b),
    load: readSeries(home.file, 'load', { timezone: tz }).over(span.a, span.b),
    pv: readSeries(home.file, 'pv', { timezone: tz, pvKwp: home.kWp }).over(span.a, span.b),
  };
  return { from, to, data };
}

interface Part {
  cost: Record<string, number>;
  plans?: number;
  seconds: number;
  /** CPU time of this process (user + system): what the part costs on a machine that is not shared. */
  cpuSeconds?: number;
  nrmse?: number;
  /** How the plan's battery slot was executed (see BacktestOptions.execution). */
  execution?: string;
  /** Base-load forecaster of the forecast modes. */
  loadModel?: string;
  robustQuantile?: number;
  /** Learned base-load model: the quantile of the past days' load it forecasts, where not their weighted mean (an experiment). */
  loadQuantile?: number;
}
interface HomeResult {
  home: string;
  label: string;
  parts: Record<string, Part>;
}

async function runPart(home: Home, part: string, strategies: StrategyName[], extra: Partial<BacktestOptions>, cache: Map<number, number>): Promise<Part> {
  const { from, to, data } = loadData(home);
  const solver = await loadSolver();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const r = await runBacktest(data, { from, to, timezone: tz, battery: home.battery, forecast: 'perfect', replanMinutes: 15, slotMinutes: 15, horizonHours: 48, pvArray: home.pvArray, strategies, loadForecastCache: cache, ...extra }, solver);
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  const cpuSeconds = (used.user + used.system) / 1e6;
  const hf = r.strategies.find((s) => s.name === 'homeflex');
  process.stderr.write(`  ${home.id} ${part}: ${seconds.toFixed(1)} s wall, ${cpuSeconds.toFixed(1)} s CPU${hf ? `, ${hf.plans} plans` : ''}\n`);
  return { cost: Object.fromEntries(r.strategies.map((s) => [s.name, s.cost])), plans: hf?.plans, seconds, cpuSeconds, ...(hf ? { execution: extra.execution ?? 'rule', ...(extra.forecast !== 'perfect' ? { loadModel: extra.loadModel ?? 'learned', robustQuantile: extra.robustQuantile ?? 0.9, ...(extra.loadQuantile !== undefined ? { loadQuantile: extra.loadQuantile } : {}) } : {}) } : {}) };
}

function weatherFor(home: Home, nrmse: number) {
  const { from, to, data } = loadData(home);
  const base = { pv: data.pv, timezone: tz, phi: 0.6, seed: 1 };
  const sigma = sigmaForNrmse(base, home.kWp, nrmse, from, to);
  const archive = syntheticPvForecast({ ...base, sigma });
  return { archive, nrmse: pvNrmse(data.pv, archive, home.kWp, from, to) };
}

/**
 * The forecast modes of the table run with the settings its first homes were measured with (the
 * same-weekday base-load model, robust PV at the 80th percentile), so that a resumed run stays
 * comparable; `--settings defaults` runs the backtest's current defaults (learned base load, 90th
 * percentile) instead, best into another `--out`.
 */
let pinned: Partial<BacktestOptions> = { loadModel: 'same_weekday', robustQuantile: 0.8 };
async function runHome(home: Home, outDir: string, modes: string[]) {
  const file = join(outDir, `${home.id}.json`);
  const result: HomeResult = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { home: home.id, label: home.label, parts: {} };
  const save = () => writeFileSync(file, JSON.stringify(result, null, 1) + '\n');
  const cache = new Map<number, number>();
  if (!result.parts.baselines) {
    result.parts.baselines = await runPart(home, 'baselines', ['none', 'self_consumption', 'price_threshold', 'optimum'], {}, cache);
    save();
  }
  for (const mode of modes) {
    if (mode === 'baselines' || result.parts[mode]) continue;
    if (mode === 'weather') {
      const w = weatherFor(home, PUBLISHED_NRMSE);
      result.parts[mode] = { ...(await runPart(home, mode, ['homeflex'], { forecast: 'weather', pvForecastArchive: w.archive, ...pinned }, cache)), nrmse: w.nrmse };
    } else result.parts[mode] = await runPart(home, mode, ['homeflex'], { forecast: mode as 'perfect' | 'history', ...(mode === 'history' ? pinned : {}) }, cache);
    save();
  }
}

async function runCurve(home: Home, outDir: string, levels: number[]) {
  const file = join(outDir, `curve-${home.id}.json`);
  const result: Record<string, Part> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const cache = new Map<number, number>();
  for (const level of levels) {
    const key = level.toFixed(3);
    if (result[key]) continue;
    const w = weatherFor(home, level);
    result[key] = { ...(await runPart(home, `weather ${key}`, ['homeflex'], { forecast: 'weather', pvForecastArchive: w.archive, ...pinned }, cache)), nrmse: w.nrmse };
    writeFileSync(file, JSON.stringify(result, null, 1) + '\n');
  }
}

const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'not run' : `${(x * 100).toFixed(1)} %`);

function table(outDir: string): string {
  const rows: string[] = [];
  rows.push('| home | none (€) | optimum (€) | self-consumption | price thresholds | homeflex, perfect | homeflex, history | homeflex, weather | history − self-consumption (points) |');
  rows.push('|---|---|---|---|---|---|---|---|---|');
  const means: Record<string, number[]> = {};
  const add = (k: string, v: number | undefined) => v !== undefined && Number.isFinite(v) && (means[k] ??= []).push(v);
  for (const home of homes()) {
    const file = join(outDir, `${home.id}.json`);
    if (!existsSync(file)) continue;
    const r = JSON.parse(readFileSync(file, 'utf8')) as HomeResult;
    const base = r.parts.baselines?.cost;
    if (!base) continue;
    const share = (cost: number | undefined) => (cost === undefined ? undefined : (base.none - cost) / (base.none - base.optimum));
    const sc = share(base.self_consumption);
    const th = share(base.price_threshold);
    const pf = share(r.parts.perfect?.cost.homeflex);
    const hi = share(r.parts.history?.cost.homeflex);
    const we = share(r.parts.weather?.cost.homeflex);
    const cl = home.id === 'ausgrid' ? undefined : 'cl';
    if (cl) {
      add('sc', sc);
      add('th', th);
      add('pf', pf);
      add('hi', hi);
      add('we', we);
      if (hi !== undefined && sc !== undefined) add('gap', hi - sc);
    }
    rows.push(`| ${r.label} | ${base.none.toFixed(0)} | ${base.optimum.toFixed(0)} | ${pct(sc)} | ${pct(th)} | ${pct(pf)} | ${pct(hi)} | ${pct(we)} | ${hi !== undefined && sc !== undefined ? ((hi - sc) * 100).toFixed(1) : '—'} |`);
  }
  const mean = (k: string) => (means[k]?.length ? means[k].reduce((a, b) => a + b, 0) / means[k].length : undefined);
  rows.push(`| **mean of the CityLearn buildings with results** (baselines ${means.sc?.length ?? 0}, perfect ${means.pf?.length ?? 0}, history ${means.hi?.length ?? 0}, weather ${means.we?.length ?? 0}) | | | ${pct(mean('sc'))} | ${pct(mean('th'))} | ${pct(mean('pf'))} | ${pct(mean('hi'))} | ${pct(mean('we'))} | ${mean('gap') !== undefined ? (mean('gap')! * 100).toFixed(1) : '—'} |`);
  return rows.join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: { out: { type: 'string', default: join(packageRoot, 'results', 'homes') }, homes: { type: 'string' }, modes: { type: 'string', default: 'perfect,history,weather' }, curve: { type: 'string' }, settings: { type: 'string', default: 'table' }, levels: { type: 'string', default: '0,0.05,0.1,0.14,0.2,0.3' }, table: { type: 'boolean' } },
  });
  const outDir = values.out!;
  if (values.settings === 'defaults') pinned = {};
  else if (values.settings !== 'table') throw new Error('--settings must be table or defaults');
  mkdirSync(outDir, { recursive: true });
  if (values.table) {
    process.stdout.write(table(outDir) + '\n');
    return;
  }
  const all = homes();
  if (values.curve) {
    const home = all.find((h) => h.id === values.curve);
    if (!home) throw new Error(`--curve: no home "${values.curve}"`);
    await runCurve(home, outDir, values.levels!.split(',').map(Number));
    return;
  }
  const ids = values.homes ? values.homes.split(',') : all.map((h) => h.id);
  // mode by mode across the homes, so the most telling column fills first
  for (const mode of values.modes!.split(',')) {
    for (const id of ids) {
      const home = all.find((h) => h.id === id);
      if (!home) throw new Error(`--homes: no home "${id}" (1–17, ausgrid)`);
      process.stderr.write(`${home.label}: ${mode}\n`);
      await runHome(home, outDir, [mode]);
    }
  }
}

await main();
