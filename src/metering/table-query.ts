import type { BucketColumns } from './codec.js';
import type { PartitionTable } from './partition.js';
import { BUCKET_MS, MAX_RECORD_MS, flowOf, isRegister, monthOf, monthsFor } from './records.js';
import type { IntervalBuilder } from './store.js';

/**
 * What both meter stores (files, PostgreSQL) do alike once rows are in memory as month tables:
 * which months a window reaches, and the rows and 15-minute buckets inside it.
 */

/** The months of a subject (keyed "YYYY-MM") that can hold rows of `[start, end)`; an open end reaches every month on that side. */
export function monthsIn<T>(months: ReadonlyMap<string, T> | undefined, start: number, end: number): T[] {
  if (!months) return [];
  if (!Number.isFinite(start) || !Number.isFinite(end)) {
    const lo = Number.isFinite(start) ? monthOf(start - MAX_RECORD_MS) : '';
    const hi = Number.isFinite(end) ? monthOf(end - 1) : '~';
    return [...months].filter(([m]) => m >= lo && m <= hi).map(([, v]) => v);
  }
  return monthsFor(start, end).flatMap((m) => {
    const v = months.get(m);
    return v ? [v] : [];
  });
}

/** Appends a month table's live interval rows overlapping `[start, end)`, of the given flows and session. */
export function pushIntervals(out: IntervalBuilder, t: PartitionTable, start: number, end: number, opts: { flows?: ReadonlySet<number>; session?: string }): void {
  const sid = opts.session !== undefined ? t.strings.indexOf(opts.session) : -2;
  if (sid === -1) return;
  for (let i = 0; i < t.n; i++) {
    const f = t.flags[i];
    if (!t.live[i] || isRegister(f) || t.end[i] <= start || t.start[i] >= end) continue;
    if (opts.flows && !opts.flows.has(flowOf(f))) continue;
    if (sid >= 0 && t.session[i] !== sid) continue;
    out.push(t.start[i], t.end[i], t.value[i], f, t.confidence[i], t.str(t.session[i]), t.str(t.ref[i]));
  }
}

/** Appends the 15-minute buckets inside `[start, end)` (on the grid) of the given flows. */
export function pushBuckets(out: IntervalBuilder, b: BucketColumns, start: number, end: number, flows?: ReadonlySet<number>): void {
  const q0 = start / BUCKET_MS;
  const q1 = end / BUCKET_MS;
  for (let i = 0; i < b.n; i++) {
    const q = b.quarter[i];
    if (q < q0 || q >= q1 || (flows && !flows.has(b.flow[i]))) continue;
    out.push(q * BUCKET_MS, (q + 1) * BUCKET_MS, b.energy[i], b.flow[i], b.confidence[i], null, null);
  }
}
