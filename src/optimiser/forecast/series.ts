import type { ForecastQuantiles, ForecastSlot, PowerForecast } from './types.js';

import type { ForecastPoint } from '../../api/forecast.js';
import { firstEndingAfter } from '../../api/series.js';

export type { ForecastPoint };

/** Mean of a per-point value over a slot, and the share of the slot the points cover. */
function overlapMean(points: readonly ForecastPoint[], slot: ForecastSlot, pick: (p: ForecastPoint) => number): { value: number; coverage: number } {
  let acc = 0;
  let covered = 0;
  for (let i = firstEndingAfter(points, slot.start); i < points.length && points[i].start < slot.end; i++) {
    const p = points[i];
    const overlap = Math.min(slot.end, p.end) - Math.max(slot.start, p.start);
    if (overlap <= 0) continue;
    acc += pick(p) * overlap;
    covered += overlap;
  }
  return { value: covered > 0 ? acc / covered : 0, coverage: covered / (slot.end - slot.start) };
}

/** Share of `slots` (by time) that `points` cover. */
export function seriesCoverage(points: readonly ForecastPoint[], slots: readonly ForecastSlot[]): number {
  let covered = 0;
  let total = 0;
  for (const s of slots) {
    covered += overlapMean(points, s, () => 0).coverage * (s.end - s.start);
    total += s.end - s.start;
  }
  return total > 0 ? covered / total : 0;
}

/**
 * A forecast from a series of points (a weather service's answer, a file): mean power per slot by
 * overlap; slots the series covers less than half take `fallback` (0 W without one).
 */
export function seriesForecast(points: readonly ForecastPoint[], name: string, fallback?: PowerForecast): PowerForecast {
  const sorted = [...points].sort((a, b) => a.start - b.start);
  const hasQuantiles = sorted.some((p) => p.p10W !== undefined || p.p90W !== undefined);
  const fill = (slots: readonly ForecastSlot[], pick: (p: ForecastPoint) => number, fb: (missing: ForecastSlot[]) => number[]) => {
    const out = new Array<number>(slots.length);
    const missing: number[] = [];
    slots.forEach((s, i) => {
      const m = overlapMean(sorted, s, pick);
      if (m.coverage >= 0.5) out[i] = m.value;
      else missing.push(i);
    });
    if (missing.length) {
      const values = fb(missing.map((i) => slots[i]));
      missing.forEach((i, k) => (out[i] = values[k]));
    }
    return out;
  };
  const fbPower = (missing: ForecastSlot[]) => (fallback ? fallback.powerW(missing) : missing.map(() => 0));
  const forecast: PowerForecast = {
    name: fallback ? `${name} (else ${fallback.name})` : name,
    powerW: (slots) => fill(slots, (p) => p.powerW, fbPower),
  };
  if (hasQuantiles || fallback?.quantilesW) {
    forecast.quantilesW = (slots): ForecastQuantiles => {
      const fbq = fallback?.quantilesW?.(slots);
      const fbPick = (key: keyof ForecastQuantiles) => (missing: ForecastSlot[]) => {
        if (!fbq) return fbPower(missing);
        return missing.map((m) => fbq[key][slots.indexOf(m)]);
      };
      const p50 = fill(slots, (p) => p.powerW, fbPick('p50'));
      const p10 = fill(slots, (p) => Math.min(p.p10W ?? p.powerW, p.powerW), fbPick('p10'));
      const p90 = fill(slots, (p) => Math.max(p.p90W ?? p.powerW, p.powerW), fbPick('p90'));
      return { p10, p50, p90 };
    };
  }
  return forecast;
}

/** The sum of several forecasts (the arrays of a site, the site's PV devices). */
export function sumForecasts(parts: readonly PowerForecast[], name?: string): PowerForecast {
  const sum = (arrays: number[][], n: number) => Array.from({ length: n }, (_, i) => arrays.reduce((a, xs) => a + xs[i], 0));
  const forecast: PowerForecast = {
    name: name ?? parts.map((p) => p.name).join(' + '),
    powerW: (slots) => sum(parts.map((p) => p.powerW(slots)), slots.length),
  };
  if (parts.some((p) => p.quantilesW)) {
    forecast.quantilesW = (slots) => {
      const qs = parts.map((p) => p.quantilesW?.(slots) ?? (() => {
        const w = p.powerW(slots);
        return { p10: w, p50: w, p90: w };
      })());
      // quantiles of a sum are not the sum of quantiles; adding them is the cautious (fully correlated) reading, right for one weather
      return { p10: sum(qs.map((q) => q.p10), slots.length), p50: sum(qs.map((q) => q.p50), slots.length), p90: sum(qs.map((q) => q.p90), slots.length) };
    };
  }
  return forecast;
}
