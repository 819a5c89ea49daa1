import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { entryAt } from '../src/api/index.js';
import { readSeries, type Interval } from '../src/backtest/read.js';
import { packageRoot } from '../src/cli.js';
import { dayAheadErrors, historyLoadForecast, learnedLoadForecast, standardProfileLoad, type EnergyInterval, type ErrorSummary, type LearnedLoadOptions, type PowerForecast } from '../src/optimiser/forecast/index.js';
import type { BenchSection } from './types.js';

/** Where the shared evaluation data lives (CityLearn homes, the Ausgrid home); HOMEFLEX_DATA overrides. */
const dataDir = process.env.HOMEFLEX_DATA ?? [join(packageRoot, '..', 'shared', 'data'), '/work/shared/data'].find((d) => existsSync(d)) ?? '';

export interface Home {
  name: string;
  load: string;
  timezone: string;
  from: string;
  to: string;
  weather?: string;
}

/** The 17 CityLearn buildings replayed on 2025 (as the backtests), and the Ausgrid home's own year. */
export function homes(dir = dataDir): Home[] {
  const cl = join(dir, 'load_pv', 'citylearn_2022');
  return [
    ...Array.from({ length: 17 }, (_, i) => ({ name: `CityLearn Building ${i + 1}`, load: join(cl, `Building_${i + 1}.csv`), timezone: 'Europe/Berlin', from: '2025-01-01', to: '2026-01-01', weather: join(cl, 'weather.csv') })),
    { name: 'Ausgrid customer 12', load: join(dir, 'load_pv', 'ausgrid_customer12', 'data_2011-2012.csv'), timezone: 'Australia/Sydney', from: '2011-08-01', to: '2012-07-01' },
  ];
}

/** The value of a series of intervals at an instant. */
function valueAt(series: Interval[]): (t: number) => number | undefined {
  return (t) => entryAt(series, t)?.value;
}

export type LoadModels = Record<string, Partial<LearnedLoadOptions> & { sameWeekday?: boolean; temperature?: boolean }>;

/**
 * Day-ahead base-load forecasts replayed over a home's year: at every local midnight each model
 * sees only the 36 days of meter history before it and forecasts the next 24 hours (hourly).
 */
export function loadForecastErrors(home: Home, models: LoadModels, strideDays = 1): Record<string, ErrorSummary> {
  const tz = home.timezone;
  const from = DateTime.fromISO(home.from, { zone: tz }).toMillis();
  const to = DateTime.fromISO(home.to, { zone: tz }).toMillis();
  const span = { a: from - 40 * 86_400_000, b: to + 2 * 86_400_000 };
  const actual: EnergyInterval[] = readSeries(home.load, 'load', { timezone: tz }).over(span.a, span.b).map((r) => ({ start: r.start, end: r.end, wh: r.value * 1000 }));
  const outdoor = home.weather ? valueAt(readSeries(home.weather, 'outdoor', { timezone: tz }).over(span.a, span.b)) : undefined;
  const fallback = standardProfileLoad({ annualKwh: 4000, timezone: tz });
  const forecasters: Record<string, (history: readonly EnergyInterval[]) => PowerForecast> = {};
  for (const [name, m] of Object.entries(models)) {
    forecasters[name] = m.sameWeekday
      ? (history) => historyLoadForecast({ history, timezone: tz, fallback })
      : (history) => learnedLoadForecast({ ...m, history, timezone: tz, fallback, outdoorC: m.temperature ? outdoor : undefined });
  }
  return dayAheadErrors({ actual, timezone: tz, from, to, forecasters, strideDays });
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

export async function run(): Promise<BenchSection> {
  const rows: BenchSection['rows'] = [];
  if (!dataDir) return { title: 'Base-load forecasts on real homes (issue 15)', rows: [{ name: 'skipped', value: 'the shared data folder was not found (set HOMEFLEX_DATA)' }] };
  const models: LoadModels = { same_weekday: { sameWeekday: true }, learned: {}, learned_temperature: { temperature: true } };
  const mean: Record<string, number[]> = {};
  // every day of the year by default; BENCH_FORECAST_STRIDE_DAYS=7 forecasts from every 7th midnight only (a quicker run)
  const stride = Number(process.env.BENCH_FORECAST_STRIDE_DAYS ?? 1);
  for (const home of homes()) {
    const r = loadForecastErrors(home, models, stride);
    for (const [k, s] of Object.entries(r)) (mean[k] ??= []).push(s.nmae);
    const gain = 1 - r.learned.maeW / r.same_weekday.maeW;
    rows.push({
      name: `${home.name}: day-ahead hourly MAE, same weekday (4 weeks) → learned${home.weather ? ' → learned + temperature' : ''}`,
      value: `${r.same_weekday.maeW.toFixed(0)} W (${pct(r.same_weekday.nmae)}) → ${r.learned.maeW.toFixed(0)} W (${pct(r.learned.nmae)})${home.weather ? ` → ${r.learned_temperature.maeW.toFixed(0)} W` : ''}; ${gain >= 0 ? '−' : '+'}${pct(Math.abs(gain))}; bias ${r.learned.biasW.toFixed(0)} W`,
      ok: r.learned.maeW <= r.same_weekday.maeW,
    });
  }
  const avg = (k: string) => mean[k].reduce((a, b) => a + b, 0) / mean[k].length;
  rows.push({ name: `mean over the ${homes().length} homes: MAE as a share of the mean load`, value: `same weekday ${pct(avg('same_weekday'))}, learned ${pct(avg('learned'))}, learned + temperature ${pct(avg('learned_temperature'))}`, target: 'learned below same weekday', ok: avg('learned') < avg('same_weekday') });
  return {
    title: 'Base-load forecasts on real homes (issue 15)',
    rows,
    notes: [
      `${stride === 1 ? 'At every local midnight' : `At every ${stride}th local midnight (BENCH_FORECAST_STRIDE_DAYS)`} each model sees only the 36 days before it and forecasts the next 24 hours; errors are against the hourly metered load (CityLearn 2022 non_shiftable_load replayed on 2025, Europe/Berlin; Ausgrid solar home data, customer 12, GC, Aug 2011–Jun 2012, Australia/Sydney).`,
      'learned = the defaults of forecasts.load (model learned): the same clock time on the last 28 days, a day’s weight halving every 5 days, days of the other kind (working day against weekend) at 0.2; + temperature = the CityLearn outdoor temperature as if forecast perfectly (only where it explains the daily load over the learning days, R² ≥ 0.3).',
    ],
  };
}
