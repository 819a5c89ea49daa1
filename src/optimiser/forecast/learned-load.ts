import type { EpochMs } from '../../api/series.js';
import { isoDateOfDay, localClockOf } from './local-time.js';
import { fillFromFallback, type EnergyInterval, type ForecastSlot, type PowerForecast } from './types.js';

const QUARTER = 900_000;
const QUARTERS = 96;

export interface LearnedLoadOptions {
  /** Metered base load of the house, sorted by start. */
  history: readonly EnergyInterval[];
  timezone: string;
  /** Public holidays ("YYYY-MM-DD"), counted as Sundays. */
  holidays?: readonly string[];
  /** How many past days to learn from (default 28). */
  days?: number;
  /** A past day's weight halves every this many days (default 5). */
  halfLifeDays?: number;
  /** Weight of a past day of the other kind, working day against weekend or holiday (default 0.2). */
  otherDayTypeWeight?: number;
  /** Outdoor temperature (°C) at an instant, past and forecast; used only where it explains the daily load. */
  outdoorC?: (t: EpochMs) => number | undefined;
  /**
   * Forecast this weighted quantile of the past days' load at each clock time instead of their
   * weighted mean (0–1; undefined: the mean). The weights are the same (age, day type); the
   * temperature shift, where there is one, is added as to the mean.
   */
  quantile?: number;
  /** Used for slots with no matching history. */
  fallback: PowerForecast;
}

/** The weighted q-quantile of values (the smallest value whose cumulative weight reaches q of the total). */
export function weightedQuantile(values: readonly number[], weights: readonly number[], q: number): number {
  const idx = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const total = weights.reduce((a, w) => a + w, 0);
  let acc = 0;
  for (const i of idx) {
    acc += weights[i];
    if (acc >= q * total - 1e-12) return values[i];
  }
  return values[idx[idx.length - 1]];
}

/** Energy and covered time per quarter of the local clock, per local day. */
interface DayRow {
  wh: Float64Array;
  ms: Float64Array;
}

/** 0 = working day, 1 = Saturday, 2 = Sunday or holiday. */
function dayKind(weekday: number, day: number, holidays: ReadonlySet<string>): 0 | 1 | 2 {
  if (weekday === 7 || (holidays.size > 0 && holidays.has(isoDateOfDay(day)))) return 2;
  return weekday === 6 ? 1 : 0;
}

/** The fitted effect of the outdoor temperature on the daily mean load, when it explains enough of it. */
export interface TemperatureEffect {
  /** W of daily mean load per K of daily mean outdoor temperature. */
  wPerK: number;
  r2: number;
  days: number;
}

/** Least squares of daily mean load on daily mean temperature; undefined when it explains under `minR2` of the variance. */
export function fitTemperatureEffect(points: readonly { tempC: number; loadW: number }[], minR2 = 0.3): TemperatureEffect | undefined {
  const n = points.length;
  if (n < 14) return undefined;
  const mx = points.reduce((a, p) => a + p.tempC, 0) / n;
  const my = points.reduce((a, p) => a + p.loadW, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const p of points) {
    sxx += (p.tempC - mx) ** 2;
    sxy += (p.tempC - mx) * (p.loadW - my);
    syy += (p.loadW - my) ** 2;
  }
  if (sxx < 1e-9 || syy < 1e-9) return undefined;
  const r2 = (sxy * sxy) / (sxx * syy);
  return r2 >= minR2 ? { wPerK: sxy / sxx, r2, days: n } : undefined;
}

/**
 * Base load learned from the house's own meter: each slot is the weighted mean of the same local
 * clock time on the past `days` days, recent days weighing more (half-life `halfLifeDays`) and
 * days of the other kind (working day against weekend or holiday) less; where the outdoor
 * temperature explains the daily load over those days (R² ≥ 0.3), the forecast moves with the
 * forecast temperature. Slots with no history take `fallback`.
 */
export function learnedLoadForecast(options: LearnedLoadOptions): PowerForecast {
  const days = options.days ?? 28;
  const halfLife = options.halfLifeDays ?? 5;
  const other = options.otherDayTypeWeight ?? 0.2;
  const quantile = options.quantile;
  const holidays = new Set(options.holidays ?? []);
  const clock = localClockOf(options.timezone);
  let rows: Map<number, DayRow> | undefined;
  let kinds: Map<number, 0 | 1 | 2> | undefined;
  const tempCache = new Map<number, number | undefined>();

  const build = () => {
    rows = new Map();
    kinds = new Map();
    for (const r of options.history) {
      const len = r.end - r.start;
      if (len <= 0 || !Number.isFinite(r.wh)) continue;
      for (let t = r.start; t < r.end; ) {
        const next = Math.min(r.end, Math.floor(t / QUARTER) * QUARTER + QUARTER);
        const c = clock(t);
        let row = rows.get(c.day);
        if (!row) {
          rows.set(c.day, (row = { wh: new Float64Array(QUARTERS), ms: new Float64Array(QUARTERS) }));
          kinds.set(c.day, dayKind(c.weekday, c.day, holidays));
        }
        const q = Math.min(QUARTERS - 1, Math.floor(c.minute / 15));
        row.wh[q] += (r.wh * (next - t)) / len;
        row.ms[q] += next - t;
        t = next;
      }
    }
  };

  const name = `recent days weighted (${days} days, half-life ${halfLife} d, by day type${quantile !== undefined ? `, ${quantile === 0.5 ? 'median' : `${Math.round(quantile * 100)}th percentile`}` : ''}${options.outdoorC ? ', outdoor temperature' : ''}; else ${options.fallback.name})`;
  return {
    name,
    powerW(slots: readonly ForecastSlot[]) {
      if (!rows) build();
      const out = new Array<number>(slots.length);
      if (!slots.length) return out;
      const weightOf = (k: number, same: boolean, nearKind: boolean) => Math.pow(0.5, k / halfLife) * (same ? 1 : nearKind ? 0.6 : other);
      const effect = options.outdoorC ? temperatureEffect(slots[0].start) : undefined;
      const missing: number[] = [];
      slots.forEach(({ start, end }, i) => {
        let acc = 0;
        let wsum = 0;
        let tempShift = 0;
        for (let t = start; t < end; ) {
          const next = Math.min(end, Math.floor(t / QUARTER) * QUARTER + QUARTER);
          const c = clock(t);
          const kind = dayKind(c.weekday, c.day, holidays);
          const q = Math.min(QUARTERS - 1, Math.floor(c.minute / 15));
          let pAcc = 0;
          let pW = 0;
          let refTemp = 0;
          const qv: number[] = [];
          const qw: number[] = [];
          for (let k = 1; k <= days; k++) {
            const row = rows!.get(c.day - k);
            if (!row || row.ms[q] < QUARTER / 2) continue;
            const pk = kinds!.get(c.day - k)!;
            const w = weightOf(k, pk === kind, pk !== 0 && kind !== 0);
            const v = (row.wh[q] * 3_600_000) / row.ms[q];
            pAcc += w * v;
            pW += w;
            if (quantile !== undefined) {
              qv.push(v);
              qw.push(w);
            }
            if (effect) refTemp += w * (dailyTemp(c.day - k) ?? 0);
          }
          if (pW > 0) {
            const share = next - t;
            acc += (quantile !== undefined ? weightedQuantile(qv, qw, quantile) : pAcc / pW) * share;
            wsum += share;
            if (effect) {
              const target = dailyTemp(c.day);
              if (target !== undefined) tempShift += effect.wPerK * (target - refTemp / pW) * share;
            }
          }
          t = next;
        }
        if (wsum > 0) out[i] = Math.max(0, (acc + tempShift) / wsum);
        else missing.push(i);
      });
      return fillFromFallback(out, missing, slots, options.fallback);
    },
  };

  /** Mean outdoor temperature of a local day, from hourly samples (cached). */
  function dailyTemp(day: number): number | undefined {
    const cached = tempCache.get(day);
    if (cached !== undefined || tempCache.has(day)) return cached;
    // local midnight is within ±14 h of UTC midnight of the same date; sample the UTC day shifted by the zone's offset
    const probe = day * 86_400_000 + 12 * 3_600_000;
    const offset = clock(probe).minute - 12 * 60;
    const from = day * 86_400_000 - offset * 60_000;
    let acc = 0;
    let n = 0;
    for (let h = 0; h < 24; h++) {
      const v = options.outdoorC!(from + h * 3_600_000 + 1_800_000);
      if (v !== undefined && Number.isFinite(v)) {
        acc += v;
        n++;
      }
    }
    const mean = n >= 12 ? acc / n : undefined;
    tempCache.set(day, mean);
    return mean;
  }

  /** The temperature effect fitted on the learning days before `from` (daily means, days fully metered). */
  function temperatureEffect(from: EpochMs): TemperatureEffect | undefined {
    const today = clock(from).day;
    const points: { tempC: number; loadW: number }[] = [];
    for (let k = 1; k <= days; k++) {
      const row = rows!.get(today - k);
      if (!row) continue;
      let wh = 0;
      let ms = 0;
      for (let q = 0; q < QUARTERS; q++) {
        wh += row.wh[q];
        ms += row.ms[q];
      }
      const temp = dailyTemp(today - k);
      if (ms < 20 * 3_600_000 || temp === undefined) continue;
      points.push({ tempC: temp, loadW: (wh * 3_600_000) / ms });
    }
    return fitTemperatureEffect(points);
  }
}
