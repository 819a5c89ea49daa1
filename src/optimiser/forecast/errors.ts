import { ErrorAccumulator, type ErrorSummary } from './evaluate.js';
import { HOUR } from '../../api/time.js';


/** A forecast as it was made: equal slots of `stepMs` from `start`, mean power (W) per slot. */
export interface ForecastSnapshot {
  madeAt: number;
  start: number;
  stepMs: number;
  valuesW: readonly number[];
  /** What made it (the source's description, or the fallback standing in). */
  source: string;
}

/** Lead-time buckets of the error table: [from, to) hours between making the forecast and the slot's start. */
export const HORIZONS: readonly { label: string; fromH: number; toH: number }[] = [
  { label: '0–1 h', fromH: 0, toH: 1 },
  { label: '1–3 h', fromH: 1, toH: 3 },
  { label: '3–6 h', fromH: 3, toH: 6 },
  { label: '6–12 h', fromH: 6, toH: 12 },
  { label: '12–24 h', fromH: 12, toH: 24 },
  { label: '24–48 h', fromH: 24, toH: 48 },
];

export interface HorizonError extends ErrorSummary {
  horizon: string;
}

/**
 * Forecast error by lead time: every slot of every snapshot inside `[from, to)` whose measurement
 * is known is compared with it, and counted in the bucket of its lead time (slot start − made at).
 */
export function errorsByHorizon(snapshots: readonly ForecastSnapshot[], actualW: (start: number, end: number) => number | undefined, from: number, to: number): HorizonError[] {
  const acc = HORIZONS.map(() => new ErrorAccumulator());
  const measured = new Map<number, number | undefined>();
  for (const s of snapshots) {
    s.valuesW.forEach((w, i) => {
      const start = s.start + i * s.stepMs;
      const end = start + s.stepMs;
      if (start < from || end > to) return;
      const leadH = (start - s.madeAt) / HOUR;
      const b = HORIZONS.findIndex((h) => leadH >= h.fromH && leadH < h.toH);
      if (b < 0) return;
      const key = start * 100 + s.stepMs / 60_000;
      if (!measured.has(key)) measured.set(key, actualW(start, end));
      const a = measured.get(key);
      if (a !== undefined) acc[b].add(w, a);
    });
  }
  return HORIZONS.map((h, b) => ({ horizon: h.label, ...acc[b].summary() }));
}

/**
 * The forecast the hub acted on, slot by slot over `[from, to)` in steps of `stepMs`: for each slot,
 * the newest snapshot made at or before the slot's start (and at least `leadMs` before it) that covers it.
 */
export function asMadeSeries(snapshots: readonly ForecastSnapshot[], from: number, to: number, stepMs: number, leadMs = 0): { start: number; end: number; forecastW: number | null; madeAt: number | null; source: string | null }[] {
  const sorted = [...snapshots].sort((a, b) => a.madeAt - b.madeAt);
  const out = [];
  for (let t = from; t < to; t += stepMs) {
    let best: { w: number; madeAt: number; source: string } | undefined;
    for (let k = sorted.length - 1; k >= 0; k--) {
      const s = sorted[k];
      if (s.madeAt > t - leadMs) continue;
      const w = meanOver(s, t, t + stepMs);
      if (w === undefined) continue;
      best = { w, madeAt: s.madeAt, source: s.source };
      break;
    }
    out.push({ start: t, end: t + stepMs, forecastW: best ? best.w : null, madeAt: best ? best.madeAt : null, source: best ? best.source : null });
  }
  return out;
}

/** Mean of a snapshot over `[start, end)` when it covers all of it. */
function meanOver(s: ForecastSnapshot, start: number, end: number): number | undefined {
  const last = s.start + s.valuesW.length * s.stepMs;
  if (start < s.start || end > last) return undefined;
  let acc = 0;
  for (let t = start; t < end; ) {
    const i = Math.floor((t - s.start) / s.stepMs);
    const next = Math.min(end, s.start + (i + 1) * s.stepMs);
    acc += s.valuesW[i] * (next - t);
    t = next;
  }
  return acc / (end - start);
}
