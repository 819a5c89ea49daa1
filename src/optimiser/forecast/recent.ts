import type { ForecastSlot } from './types.js';
import { HOUR } from '../../api/time.js';


/**
 * A base-load forecast corrected by what the house drew a moment ago: the error of the last hour
 * (measured mean power minus forecast mean power) is added to the next slots, fading with time
 * constant `tauHours` (the load an hour from now resembles the load now more than a week-old
 * profile says; a day from now it does not). Power never goes below zero. Pure.
 */
export function withRecentError(forecastW: readonly number[], slots: readonly ForecastSlot[], now: number, recent: { actualW: number; forecastW: number } | undefined, tauHours: number): number[] {
  if (!recent || !(tauHours > 0) || !Number.isFinite(recent.actualW) || !Number.isFinite(recent.forecastW)) return [...forecastW];
  const errW = recent.actualW - recent.forecastW;
  return forecastW.map((w, i) => Math.max(0, w + errW * Math.exp(-Math.max(0, slots[i].start - now) / (tauHours * HOUR))));
}
