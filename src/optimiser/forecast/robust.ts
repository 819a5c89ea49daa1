/**
 * Robust PV planning, shared by the backtest and the hub: plan with the PV forecast scaled by a
 * high quantile of how far recent days' forecasts fell short of (or beyond) what was measured, so
 * grid charging is bought only for what even one of the sunnier recent days would leave short.
 */

/** Days of ratios kept: the most recent ones. */
export const ROBUST_DAYS = 28;
/** Fewer known days than this: the forecast is used as it is (factor 1). */
export const ROBUST_MIN_DAYS = 3;
/** A day's ratio is capped here (a near-zero forecast makes wild ratios). */
export const ROBUST_RATIO_CAP = 3;
/** A day whose forecast is below this (kWh) tells nothing about the forecast's error. */
export const ROBUST_MIN_FORECAST_KWH = 0.2;

/** Measured ÷ forecast PV energy of one day, capped; undefined when the forecast was too small to judge. */
export function dailyPvRatio(actualKwh: number, forecastKwh: number): number | undefined {
  if (!(forecastKwh > ROBUST_MIN_FORECAST_KWH) || !Number.isFinite(actualKwh)) return undefined;
  return Math.min(ROBUST_RATIO_CAP, actualKwh / forecastKwh);
}

/** The q-quantile of the ratios (the sorted value at floor(q·n), the last for q near 1); NaN when empty. */
export function ratioQuantile(ratios: readonly number[], q: number): number {
  if (!ratios.length) return NaN;
  const sorted = [...ratios].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * sorted.length)))];
}

/**
 * The factor the PV forecast is planned with: the `quantile` of the last {@link ROBUST_DAYS} daily
 * ratios (oldest first), at least 1; 1 while fewer than {@link ROBUST_MIN_DAYS} days are known.
 */
export function robustPvFactor(ratios: readonly number[], quantile = 0.9): number {
  const recent = ratios.slice(-ROBUST_DAYS);
  if (recent.length < ROBUST_MIN_DAYS) return 1;
  return Math.max(1, ratioQuantile(recent, quantile));
}
