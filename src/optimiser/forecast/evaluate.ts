import { localClockOf } from './local-time.js';
import type { EnergyInterval, ForecastSlot, PowerForecast } from './types.js';
import { DAY, HOUR } from '../../api/time.js';


/** Mean absolute error, bias (forecast − actual) and mean actual over a set of slots, in W. */
export interface ErrorSummary {
  maeW: number;
  biasW: number;
  meanActualW: number;
  /** MAE as a share of the mean actual power. */
  nmae: number;
  slots: number;
}

/** Accumulates forecast errors slot by slot. */
export class ErrorAccumulator {
  private abs = 0;
  private signed = 0;
  private actual = 0;
  private n = 0;

  add(forecastW: number, actualW: number): void {
    if (!Number.isFinite(forecastW) || !Number.isFinite(actualW)) return;
    this.abs += Math.abs(forecastW - actualW);
    this.signed += forecastW - actualW;
    this.actual += actualW;
    this.n++;
  }

  summary(): ErrorSummary {
    const n = Math.max(1, this.n);
    const meanActualW = this.actual / n;
    return { maeW: this.abs / n, biasW: this.signed / n, meanActualW, nmae: meanActualW > 0 ? this.abs / n / meanActualW : 0, slots: this.n };
  }
}

export interface DayAheadOptions {
  /** The measured series, sorted; also the history each forecaster learns from. */
  actual: readonly EnergyInterval[];
  timezone: string;
  /** First and last local midnight to forecast from. */
  from: number;
  to: number;
  /** Slot length of the evaluation (default one hour). */
  slotMs?: number;
  /** Days of history handed to each forecaster (default 36). */
  historyDays?: number;
  /** Forecast from every n-th local midnight only (default 1: every day). */
  strideDays?: number;
  /** Builds a forecaster from the history known at `now`. */
  forecasters: Record<string, (history: readonly EnergyInterval[], now: number) => PowerForecast>;
}

/**
 * Replays day-ahead forecasting: at every local midnight in `[from, to)` each forecaster sees only
 * the history before it and forecasts the next 24 hours; errors are taken against the measured
 * mean power of every slot that is fully measured.
 */
export function dayAheadErrors(o: DayAheadOptions): Record<string, ErrorSummary> {
  const slotMs = o.slotMs ?? HOUR;
  const clock = localClockOf(o.timezone);
  const acc = Object.fromEntries(Object.keys(o.forecasters).map((k) => [k, new ErrorAccumulator()]));
  let lo = 0;
  for (let t = o.from; t < o.to; ) {
    const slots: ForecastSlot[] = [];
    for (let s = t; s < t + DAY; s += slotMs) slots.push({ start: s, end: s + slotMs });
    const since = t - (o.historyDays ?? 36) * DAY;
    while (lo < o.actual.length && o.actual[lo].end <= since) lo++;
    let hi = lo;
    while (hi < o.actual.length && o.actual[hi].end <= t) hi++;
    const history = o.actual.slice(lo, hi);
    const measured = slots.map((s) => measuredW(o.actual, hi, s));
    for (const [name, make] of Object.entries(o.forecasters)) {
      const f = make(history, t).powerW(slots);
      measured.forEach((m, i) => m !== undefined && acc[name].add(f[i], m));
    }
    // the next local midnight (23, 24 or 25 hours later), `strideDays` days on
    const target = clock(t).day + (o.strideDays ?? 1);
    let next = t + (o.strideDays ?? 1) * DAY;
    while (clock(next).day > target) next -= HOUR;
    while (clock(next).day < target) next += HOUR;
    t = next;
  }
  return Object.fromEntries(Object.entries(acc).map(([k, a]) => [k, a.summary()]));
}

/** Mean measured power over a slot when intervals cover all of it, starting the search at `from`. */
function measuredW(actual: readonly EnergyInterval[], from: number, slot: ForecastSlot): number | undefined {
  let wh = 0;
  let covered = 0;
  for (let i = from; i < actual.length && actual[i].start < slot.end; i++) {
    const r = actual[i];
    const overlap = Math.min(slot.end, r.end) - Math.max(slot.start, r.start);
    if (overlap <= 0) continue;
    wh += (r.wh * overlap) / (r.end - r.start);
    covered += overlap;
  }
  return covered >= slot.end - slot.start - 1 ? (wh * HOUR) / covered : undefined;
}
