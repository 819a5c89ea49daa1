import { firstEndingAfter, type EpochMs } from '../../api/series.js';

/** A planning slot `[start, end)`. */
export interface ForecastSlot {
  start: EpochMs;
  end: EpochMs;
}

/**
 * A forecast of mean power per slot (W). Forecasts are built from data handed in (pure), so a
 * better one (a weather service, a learned model) plugs in by implementing this.
 */
export interface PowerForecast {
  /** What it is, for logs and the plan view ("BDEW H25 × 4000 kWh/yr", "same weekday, 4 weeks"). */
  readonly name: string;
  /** The expected mean power per slot (W): what a point-forecast planner plans with. */
  powerW(slots: readonly ForecastSlot[]): number[];
  /**
   * Optional: the 10 %, 50 % and 90 % quantiles of the mean power per slot (W), where the source
   * knows its uncertainty (Solcast's pv_estimate10/90, or spreads learned from past errors).
   * Each array has one value per slot and p10 ≤ p50 ≤ p90 holds slot by slot.
   */
  quantilesW?(slots: readonly ForecastSlot[]): ForecastQuantiles;
}

/** Quantiles of a forecast per slot (W). */
export interface ForecastQuantiles {
  p10: number[];
  p50: number[];
  p90: number[];
}

/** Energy measured over an interval (a meter record): `wh` over `[start, end)`. */
export interface EnergyInterval {
  start: EpochMs;
  end: EpochMs;
  wh: number;
}

/** Mean power (W) of `history` over `[start, end)` and the share of that window it covers. */
export function meanPowerW(history: readonly EnergyInterval[], start: EpochMs, end: EpochMs): { powerW: number; coverage: number } {
  let wh = 0;
  let covered = 0;
  for (let i = firstEndingAfter(history, start); i < history.length && history[i].start < end; i++) {
    const r = history[i];
    const overlap = Math.min(end, r.end) - Math.max(start, r.start);
    if (overlap <= 0) continue;
    wh += (r.wh * overlap) / (r.end - r.start);
    covered += overlap;
  }
  return { powerW: covered > 0 ? (wh * 3_600_000) / covered : 0, coverage: covered / (end - start) };
}

/** Fills the slots a forecast had no value for (indices `missing` of `out`) from `fallback`, asked once; returns `out`. */
export function fillFromFallback(out: number[], missing: readonly number[], slots: readonly ForecastSlot[], fallback: PowerForecast): number[] {
  if (missing.length) {
    const fb = fallback.powerW(missing.map((i) => slots[i]));
    missing.forEach((i, k) => (out[i] = fb[k]));
  }
  return out;
}
