import type { EpochMs, PriceSeries, PriceSlot, TimeWindow } from '../api/index.js';
import { firstEndingAfter } from '../api/series.js';
/** Index of the first slot whose end is after `t` (binary search, in src/api for plugins too). */
export { firstEndingAfter };
export { DAY, HOUR, MINUTE } from '../api/time.js';

/**
 * Pure utilities on price series (sorted, non-overlapping `[start, end)` slots). No I/O, no clock:
 * the optimiser and the tariff service share them.
 */

/** The slots inside the window, the first and last cut to its edges. */
export function sliceSeries(series: PriceSeries, window: TimeWindow): PriceSeries {
  const out: PriceSeries = [];
  if (window.end <= window.start) return out;
  for (let i = firstEndingAfter(series, window.start); i < series.length; i++) {
    const s = series[i];
    if (s.start >= window.end) break;
    if (s.start >= window.start && s.end <= window.end) out.push(s);
    else out.push({ ...s, start: Math.max(s.start, window.start), end: Math.min(s.end, window.end) });
  }
  return out;
}

/** The slot in force at instant `t`, if the series covers it. */
export function slotAt(series: PriceSeries, t: EpochMs): PriceSlot | undefined {
  const i = firstEndingAfter(series, t);
  const s = series[i];
  return s && s.start <= t ? s : undefined;
}

/** The rate in force at instant `t`, if the series covers it. */
export const rateAt = (series: PriceSeries, t: EpochMs): number | undefined => slotAt(series, t)?.rate;

/** The parts of the window the series does not cover. */
export function gapsIn(series: PriceSeries, window: TimeWindow): TimeWindow[] {
  const gaps: TimeWindow[] = [];
  let t = window.start;
  for (const s of sliceSeries(series, window)) {
    if (s.start > t) gaps.push({ start: t, end: s.start });
    t = Math.max(t, s.end);
  }
  if (t < window.end) gaps.push({ start: t, end: window.end });
  return gaps;
}

/**
 * Overlays `primary` on `fallback`: wherever `primary` has a slot it wins, and `fallback` fills the
 * gaps (cut where the primary begins or ends).
 */
export function overlaySeries(primary: PriceSeries, fallback: PriceSeries): PriceSeries {
  if (!primary.length) return fallback;
  if (!fallback.length) return primary;
  const out: PriceSeries = [];
  let p = 0;
  for (const f of fallback) {
    let t = f.start;
    while (t < f.end) {
      while (p < primary.length && primary[p].end <= t) p++;
      const cur = primary[p];
      if (cur && cur.start <= t) {
        // covered by the primary from t until the primary slot ends
        t = Math.min(f.end, cur.end);
        continue;
      }
      const until = cur ? Math.min(f.end, cur.start) : f.end;
      out.push(t === f.start && until === f.end ? f : { ...f, start: t, end: until });
      t = until;
    }
  }
  return mergeSorted(out, primary);
}

/** Merges two sorted, mutually non-overlapping series. */
function mergeSorted(a: PriceSeries, b: PriceSeries): PriceSeries {
  const out: PriceSeries = new Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i].start <= b[j].start ? a[i++] : b[j++];
  while (i < a.length) out[k++] = a[i++];
  while (j < b.length) out[k++] = b[j++];
  return out;
}

/**
 * Replaces the part of `base` covered by `[from, to)` with `replacement` (which must lie inside it),
 * keeping the rest of `base`; slots straddling the edges are cut.
 */
export function replaceRange(base: PriceSeries, replacement: PriceSeries, from: EpochMs, to: EpochMs): PriceSeries {
  const before = sliceSeries(base, { start: -Infinity, end: from });
  const after = sliceSeries(base, { start: to, end: Infinity });
  return [...before, ...replacement, ...after];
}

/**
 * Resamples to fixed steps of `stepMs` aligned to the epoch (UTC; 15/30/60 minutes align with every
 * whole-hour or half-hour offset): each step's rate is the time-weighted mean of the slots inside it,
 * its confidence the lowest. Steps the series covers only in part keep just the covered part.
 */
export function resampleSeries(series: PriceSeries, stepMs: number): PriceSeries {
  if (!(stepMs > 0)) throw new RangeError(`step must be positive, got ${stepMs}`);
  const out: PriceSeries = [];
  if (!series.length) return out;
  const end = series[series.length - 1].end;
  let i = 0;
  let t = Math.floor(series[0].start / stepMs) * stepMs;
  while (t < end) {
    while (i < series.length && series[i].end <= t) i++;
    if (i >= series.length) break;
    if (series[i].start >= t + stepMs) {
      t = Math.floor(series[i].start / stepMs) * stepMs; // skip a gap of whole steps
      continue;
    }
    const stepEnd = t + stepMs;
    const pieces: PriceSlot[] = [];
    for (let j = i; j < series.length && series[j].start < stepEnd; j++) {
      const s = series[j];
      pieces.push(s.start >= t && s.end <= stepEnd ? s : { ...s, start: Math.max(s.start, t), end: Math.min(s.end, stepEnd) });
    }
    const contiguous = pieces.every((p, k) => k === 0 || p.start === pieces[k - 1].end);
    if (contiguous) {
      const avg = averageOf(pieces);
      out.push({ start: pieces[0].start, end: pieces[pieces.length - 1].end, rate: avg.rate, confidence: avg.confidence });
    } else {
      out.push(...pieces); // a gap inside the step: keep the pieces rather than invent prices for the gap
    }
    t = stepEnd;
  }
  return out;
}

/** Time-weighted mean rate and lowest confidence of a list of slots. */
export function averageOf(slots: readonly PriceSlot[]): { rate: number; confidence: number; durationMs: number } {
  let weighted = 0;
  let duration = 0;
  let confidence = 1;
  for (const s of slots) {
    weighted += s.rate * (s.end - s.start);
    duration += s.end - s.start;
    confidence = Math.min(confidence, s.confidence);
  }
  return { rate: duration ? weighted / duration : NaN, confidence: slots.length ? confidence : 0, durationMs: duration };
}

/** Problems with a series (unsorted, overlapping, empty slots, non-finite rates), first one per slot. */
export function seriesProblems(series: PriceSeries): { index: number; message: string }[] {
  const problems: { index: number; message: string }[] = [];
  series.forEach((s, i) => {
    if (!Number.isFinite(s.start) || !Number.isFinite(s.end)) problems.push({ index: i, message: 'start and end must be valid instants' });
    else if (s.end <= s.start) problems.push({ index: i, message: `ends (${iso(s.end)}) before or when it starts (${iso(s.start)})` });
    else if (!Number.isFinite(s.rate)) problems.push({ index: i, message: `rate must be a finite number, got ${s.rate}` });
    else if (i > 0 && s.start < series[i - 1].end) problems.push({ index: i, message: `starts at ${iso(s.start)}, before the previous slot ends (${iso(series[i - 1].end)}): slots must be sorted and must not overlap` });
  });
  return problems;
}

export const iso = (t: EpochMs) => new Date(t).toISOString();

/** Joins touching slots with the same rate and confidence (fewer, longer slots for storage). */
export function compactSeries(series: PriceSeries): PriceSeries {
  const out: PriceSeries = [];
  for (const s of series) {
    const prev = out[out.length - 1];
    if (prev && prev.end === s.start && prev.rate === s.rate && prev.confidence === s.confidence) out[out.length - 1] = { ...prev, end: s.end };
    else out.push(s);
  }
  return out;
}
