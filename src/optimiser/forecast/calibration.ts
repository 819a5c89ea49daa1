import { localClockOf } from './local-time.js';
import { meanPowerW, type EnergyInterval, type ForecastQuantiles, type ForecastSlot, type PowerForecast } from './types.js';
import { HOUR } from '../../api/time.js';


/** A forecast as it was made for a slot, and what was measured in it (mean W). */
export interface CalibrationPair {
  start: number;
  end: number;
  forecastW: number;
  actualW: number;
}

export interface CalibrationOptions {
  timezone: string;
  /** Pairs within this many days of the target's day of year (any year) describe its season (default 45). */
  seasonDays?: number;
  /** Bounds of the correction factor (defaults 0.5 and 1.5). */
  minFactor?: number;
  maxFactor?: number;
  /** Pairs whose forecast is below this (W) say nothing about the ratio (default 2 % of the largest forecast). */
  minForecastW?: number;
  /** Weight of the prior (the season's all-hours factor, itself drawn to 1), in pairs (default 5). */
  priorPairs?: number;
}

/** Correction factors of a PV forecast, by local hour of day and season. */
export interface PvCalibration {
  /** Multiplier for a slot starting at `t`. */
  factorAt(t: number): number;
  /** How many pairs it learned from. */
  pairs: number;
}

/** Quantile of a sorted list (linear interpolation). */
function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  const x = q * (sorted.length - 1);
  const i = Math.floor(x);
  return i + 1 < sorted.length ? sorted[i] + (x - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
}

/**
 * Learns how far a PV forecast is off at this site: for a target hour, the pairs of the same local
 * hour within `seasonDays` of its day of year; the ratio of measured to forecast energy after
 * dropping outlying days (outside 1.5 interquartile ranges of the per-pair ratios: snow, an
 * outage), drawn towards the season's all-hours ratio when pairs are few, and bounded. Shading at
 * some hours, a wrong orientation or a dirty array show up as a steady ratio; weather does not.
 */
export function fitPvCalibration(pairs: readonly CalibrationPair[], options: CalibrationOptions): PvCalibration {
  const clock = localClockOf(options.timezone);
  const season = options.seasonDays ?? 45;
  const lo = options.minFactor ?? 0.5;
  const hi = options.maxFactor ?? 1.5;
  const k = options.priorPairs ?? 5;
  const peak = pairs.reduce((m, p) => Math.max(m, p.forecastW), 0);
  const floor = options.minForecastW ?? 0.02 * peak;
  const usable = pairs
    .filter((p) => p.forecastW >= floor && p.forecastW > 0 && Number.isFinite(p.actualW) && p.actualW >= 0)
    .map((p) => {
      const c = clock(p.start);
      return { ...p, hour: Math.floor(c.minute / 60), doy: c.dayOfYear };
    });
  const near = (a: number, b: number) => {
    const d = Math.abs(a - b);
    return Math.min(d, 366 - d) <= season;
  };
  /** Robust ratio of sums over a set of pairs, drawn towards `prior` by `k` pairs of mean forecast. */
  const ratio = (set: typeof usable, prior: number) => {
    if (!set.length) return prior;
    const rs = set.map((p) => p.actualW / p.forecastW).sort((a, b) => a - b);
    const q1 = quantile(rs, 0.25);
    const q3 = quantile(rs, 0.75);
    const fence = 1.5 * (q3 - q1);
    const kept = set.filter((p) => {
      const r = p.actualW / p.forecastW;
      return r >= q1 - fence && r <= q3 + fence;
    });
    const f = kept.reduce((a, p) => a + p.forecastW, 0);
    const a = kept.reduce((s, p) => s + p.actualW, 0);
    const meanF = f / Math.max(1, kept.length);
    return (a + k * meanF * prior) / (f + k * meanF);
  };
  const cache = new Map<number, number>();
  return {
    pairs: usable.length,
    factorAt(t) {
      const c = clock(t);
      const hour = Math.floor(c.minute / 60);
      const key = c.dayOfYear * 24 + hour;
      let f = cache.get(key);
      if (f === undefined) {
        const inSeason = usable.filter((p) => near(p.doy, c.dayOfYear));
        const all = ratio(inSeason, 1);
        f = Math.min(hi, Math.max(lo, ratio(inSeason.filter((p) => p.hour === hour), Math.min(hi, Math.max(lo, all)))));
        cache.set(key, f);
      }
      return f;
    },
  };
}

/** A forecast multiplied by a calibration (power and quantiles alike). */
export function calibratedForecast(base: PowerForecast, calibration: PvCalibration): PowerForecast {
  const scale = (slots: readonly ForecastSlot[], ws: number[]) => ws.map((w, i) => w * calibration.factorAt((slots[i].start + slots[i].end) / 2));
  const out: PowerForecast = {
    name: calibration.pairs ? `${base.name}, calibrated on ${calibration.pairs} measured slots` : base.name,
    powerW: (slots) => scale(slots, base.powerW(slots)),
  };
  if (base.quantilesW) {
    out.quantilesW = (slots): ForecastQuantiles => {
      const q = base.quantilesW!(slots);
      return { p10: scale(slots, q.p10), p50: scale(slots, q.p50), p90: scale(slots, q.p90) };
    };
  }
  return out;
}

/**
 * Pairs from a forecaster that can be evaluated for past slots (a clear-sky or irradiance model over
 * a weather archive) and the measured production: hour by hour over `[from, to)`, where the
 * measurement covers at least half the hour.
 */
export function pairsFromHistory(forecast: PowerForecast, actual: readonly EnergyInterval[], from: number, to: number): CalibrationPair[] {
  const slots: ForecastSlot[] = [];
  for (let t = Math.floor(from / HOUR) * HOUR; t < to; t += HOUR) slots.push({ start: t, end: t + HOUR });
  const f = forecast.powerW(slots);
  const out: CalibrationPair[] = [];
  slots.forEach((s, i) => {
    const m = meanPowerW(actual, s.start, s.end);
    if (m.coverage >= 0.5) out.push({ start: s.start, end: s.end, forecastW: f[i], actualW: m.powerW });
  });
  return out;
}

/**
 * Quantiles learned from a forecast's own past errors: per local hour of day, the 10 % and 90 %
 * quantiles of measured / forecast (PV: `ratio`) or measured − forecast (load: `additive`), applied
 * around the point forecast. Without enough pairs for an hour, the all-hours spread is used.
 */
export function withLearnedQuantiles(base: PowerForecast, pairs: readonly CalibrationPair[], options: { timezone: string; mode: 'ratio' | 'additive'; minPairs?: number }): PowerForecast {
  const clock = localClockOf(options.timezone);
  const minPairs = options.minPairs ?? 10;
  const peak = pairs.reduce((m, p) => Math.max(m, p.forecastW), 0);
  const byHour: number[][] = Array.from({ length: 24 }, () => []);
  const all: number[] = [];
  for (const p of pairs) {
    if (options.mode === 'ratio' && p.forecastW < 0.02 * peak) continue;
    const e = options.mode === 'ratio' ? p.actualW / Math.max(1e-9, p.forecastW) : p.actualW - p.forecastW;
    if (!Number.isFinite(e)) continue;
    byHour[Math.floor(clock(p.start).minute / 60)].push(e);
    all.push(e);
  }
  for (const xs of byHour) xs.sort((a, b) => a - b);
  all.sort((a, b) => a - b);
  const spread = (hour: number): [number, number, number] => {
    const xs = byHour[hour].length >= minPairs ? byHour[hour] : all;
    if (!xs.length) return options.mode === 'ratio' ? [1, 1, 1] : [0, 0, 0];
    return [quantile(xs, 0.1), quantile(xs, 0.5), quantile(xs, 0.9)];
  };
  return {
    name: `${base.name}, 10–90 % from ${all.length} past errors`,
    powerW: (slots) => base.powerW(slots),
    quantilesW(slots) {
      const w = base.powerW(slots);
      const p10: number[] = [];
      const p50: number[] = [];
      const p90: number[] = [];
      w.forEach((x, i) => {
        const [a, b, c] = spread(Math.floor(clock(slots[i].start).minute / 60));
        const apply = (e: number) => Math.max(0, options.mode === 'ratio' ? x * e : x + e);
        p10.push(Math.min(apply(a), x));
        p50.push(apply(b));
        p90.push(Math.max(apply(c), x));
      });
      return { p10, p50, p90 };
    },
  };
}
