import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import { runBacktest, type BacktestData, type BacktestOptions, type StrategyName } from '../src/backtest/engine.js';
import { fixedRate, readSeries } from '../src/backtest/read.js';
import { PUBLISHED_NRMSE, pvNrmse, sigmasForNrmse, syntheticPvForecast } from '../src/backtest/weather.js';
import { packageRoot } from '../src/cli.js';
import { loadSolver } from '../src/control/solver.js';

/**
 * The long comparison of issue 15: every CityLearn building and the Ausgrid home, each strategy,
 * homeflex re-planning every 15 minutes with perfect, history and weather forecasts. One results
 * file per home, written after each part, so a run that is stopped resumes where it stopped:
 *
 *   node dist/bench/homes.js [--out DIR] [--homes 1,2,ausgrid] [--modes perfect,history,weather]   (`baselines`: only none, self-consumption, thresholds, optimum)
 *   node dist/bench/homes.js --curve 1[,3] --levels 0,0.1,0.14,0.2,0.3,0.4   (share of optimum vs PV forecast error)
 *   node dist/bench/homes.js --table                                          (markdown from the results files, and the curves)
 *
 * The forecast modes run with the backtest's defaults (learned base load, robust PV at the 90th
 * percentile); `--settings table` pins the settings the first history column was measured with
 * (same-weekday base load, 80th percentile). Each part records its settings and the table marks
 * the cells measured with other settings than the defaults.
 */

const dataDir = process.env.HOMEFLEX_DATA ?? [join(packageRoot, '..', 'shared', 'data'), '/work/shared/data'].find((d) => existsSync(d)) ?? '';

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
  /** Weather mode: the PV forecast used (the synthetic model and its σ's, or the archive). */
  pvForecast?: string;
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
  const base = { pv: data.pv, timezone: tz, phi: 0.6, rho: 0.8, seed: 1 };
  const archive = syntheticPvForecast({ ...base, ...sigmasForNrmse(base, home.kWp, nrmse, from, to) });
  return { archive, nrmse: pvNrmse(data.pv, archive, home.kWp, from, to), pvForecast: archive.describe };
}

/** Settings of the forecast modes: the backtest's defaults, or (`--settings table`) those of the first history column. */
let pinned: Partial<BacktestOptions> = {};
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
      result.parts[mode] = { ...(await runPart(home, mode, ['homeflex'], { forecast: 'weather', pvForecastArchive: w.archive, ...pinned }, cache)), nrmse: w.nrmse, pvForecast: w.pvForecast };
    } else result.parts[mode] = await runPart(home, mode, ['homeflex'], { forecast: mode as 'perfect' | 'history', ...(mode === 'history' ? pinned : {}) }, cache);
    save();
  }
}


async function runCurve(home: Home, outDir: string, levels: number[]) {
  const file = join(outDir, `curve-${home.id}.json`);
  const result: Record<string, Part> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const save = () => writeFileSync(file, JSON.stringify(result, null, 1) + '\n');
  const homeFile = join(outDir, `${home.id}.json`);
  const homeResult = existsSync(homeFile) ? (JSON.parse(readFileSync(homeFile, 'utf8')) as HomeResult) : undefined;
  const cache = new Map<number, number>();
  if (!homeResult?.parts.baselines) await runHome(home, outDir, []);
  for (const level of levels) {
    const key = level.toFixed(3);
    if (result[key]) continue;
    const w = weatherFor(home, level);
    // the table's weather run is the curve's point at the published level when it was made the same way
    const same = homeResult?.parts.weather;
    if (same && same.pvForecast === w.pvForecast && (same.loadModel ?? 'learned') === (pinned.loadModel ?? 'learned') && (same.robustQuantile ?? 0.9) === (pinned.robustQuantile ?? 0.9)) result[key] = same;
    else result[key] = { ...(await runPart(home, `weather ${key}`, ['homeflex'], { forecast: 'weather', pvForecastArchive: w.archive, ...pinned }, cache)), nrmse: w.nrmse, pvForecast: w.pvForecast };
    save();
  }
}

/** The curves found in `outDir`: share of the optimum's savings against the PV forecast's nRMSE. */
function curves(outDir: string): string {
  const rows: string[] = [];
  for (const home of homes()) {
    const file = join(outDir, `curve-${home.id}.json`);
    const homeFile = join(outDir, `${home.id}.json`);
    if (!existsSync(file) || !existsSync(homeFile)) continue;
    const hr = JSON.parse(readFileSync(homeFile, 'utf8')) as HomeResult;
    const base = hr.parts.baselines?.cost;
    if (!base) continue;
    const share = (cost: number) => (base.none - cost) / (base.none - base.optimum);
    const c = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Part>;
    // the table's weather run is the point at the published level (same model, seed and settings)
    const w = hr.parts.weather;
    const key14 = PUBLISHED_NRMSE.toFixed(3);
    if (!c[key14] && w && w.loadModel === c[Object.keys(c)[0]]?.loadModel && w.robustQuantile === c[Object.keys(c)[0]]?.robustQuantile) c[key14] = w;
    if (!rows.length) rows.push('| home | PV forecast nRMSE (asked → measured, share of kWp over daylight hours) | homeflex, share of the optimum\'s savings | self-consumption rule |', '|---|---|---|---|');
    for (const key of Object.keys(c).sort((a, b) => Number(a) - Number(b))) {
      const p = c[key];
      const mark = Math.abs(Number(key) - PUBLISHED_NRMSE) < 1e-9 ? ' (published level)' : '';
      rows.push(`| ${home.label} | ${Number(key).toFixed(2)} → ${(p.nrmse ?? 0).toFixed(3)}${mark} | ${pct(share(p.cost.homeflex))} | ${pct(share(base.self_consumption))} |`);
    }
  }
  return rows.join('\n');
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
    // a forecast cell measured with other settings than the defaults is marked
    const mark = (p: Part | undefined) => (p && (p.loadModel !== 'learned' || p.robustQuantile !== 0.9) ? ` ¹` : '');
    const cl = home.id === 'ausgrid' ? undefined : 'cl';
    if (cl) {
      add('sc', sc);
      add('th', th);
      add('pf', pf);
      add('hi', hi);
      add('we', we);
      if (hi !== undefined && sc !== undefined) add('gap', hi - sc);
    }
    rows.push(`| ${r.label} | ${base.none.toFixed(0)} | ${base.optimum.toFixed(0)} | ${pct(sc)} | ${pct(th)} | ${pct(pf)} | ${pct(hi)}${mark(r.parts.history)} | ${pct(we)}${mark(r.parts.weather)} | ${hi !== undefined && sc !== undefined ? ((hi - sc) * 100).toFixed(1) : '—'} |`);
  }
  const mean = (k: string) => (means[k]?.length ? means[k].reduce((a, b) => a + b, 0) / means[k].length : undefined);
  rows.push(`| **mean of the CityLearn buildings with results** (baselines ${means.sc?.length ?? 0}, perfect ${means.pf?.length ?? 0}, history ${means.hi?.length ?? 0}, weather ${means.we?.length ?? 0}) | | | ${pct(mean('sc'))} | ${pct(mean('th'))} | ${pct(mean('pf'))} | ${pct(mean('hi'))} | ${pct(mean('we'))} | ${mean('gap') !== undefined ? (mean('gap')! * 100).toFixed(1) : '—'} |`);
  rows.push('', '¹ measured with the same-weekday base-load model and robust PV at the 80th percentile (`--settings table`), not the defaults.');
  return rows.join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: { out: { type: 'string', default: join(packageRoot, 'results', 'homes') }, homes: { type: 'string' }, modes: { type: 'string', default: 'perfect,history,weather' }, curve: { type: 'string' }, settings: { type: 'string', default: 'defaults' }, levels: { type: 'string', default: '0,0.1,0.14,0.2,0.3,0.4' }, table: { type: 'boolean' } },
  });
  const outDir = values.out!;
  if (values.settings === 'table') pinned = { loadModel: 'same_weekday', robustQuantile: 0.8 };
  else if (values.settings !== 'defaults') throw new Error('--settings must be defaults or table');
  mkdirSync(outDir, { recursive: true });
  if (values.table) {
    process.stdout.write(table(outDir) + '\n\n' + curves(outDir) + '\n');
    return;
  }
  const all = homes();
  if (values.curve) {
    for (const id of values.curve.split(',')) {
      const home = all.find((h) => h.id === id);
      if (!home) throw new Error(`--curve: no home "${id}" (1–17, ausgrid)`);
      await runCurve(home, outDir, values.levels!.split(',').map(Number));
    }
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
