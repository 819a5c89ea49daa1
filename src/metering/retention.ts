import { emptyColumns, type RowColumns } from './codec.js';
import { BUCKET_MS, flowOf, isRegister } from './records.js';

/**
 * Rolls a month's rows up to 15-minute rows (retention of minute-level records): interval records
 * shorter than 15 minutes become one row per quarter hour, flow (direction × rate) and charging
 * session, with the energy summed (a record crossing a quarter's edge is split by time, as the
 * 15-minute buckets do) and the lowest confidence; record references are dropped. Records of 15
 * minutes or longer are kept as they are. Of the register readings (cumulative meters) only the last
 * of each quarter and flow is kept. Energy per quarter, and so every cost, stays the same.
 */
export function rollUpColumns(rows: RowColumns): RowColumns {
  const strings: string[] = [];
  const stringIds = new Map<string, number>();
  const intern = (id: number) => {
    if (id < 0) return -1;
    const s = rows.strings[id];
    let m = stringIds.get(s);
    if (m === undefined) {
      m = strings.length;
      strings.push(s);
      stringIds.set(s, m);
    }
    return m;
  };
  type Out = { start: number; end: number; value: number; confidence: number; flags: number; session: number; ref: number };
  const kept: Out[] = [];
  const quarters = new Map<string, Out>();
  const registers = new Map<string, Out>();
  for (let i = 0; i < rows.n; i++) {
    const s = rows.start[i];
    const e = rows.end[i];
    const f = rows.flags[i];
    const session = intern(rows.session[i]);
    if (isRegister(f)) {
      const key = `${Math.floor(s / BUCKET_MS)}|${f}`;
      const prev = registers.get(key);
      if (!prev || s >= prev.start) registers.set(key, { start: s, end: e, value: rows.value[i], confidence: rows.confidence[i], flags: f, session, ref: -1 });
      continue;
    }
    if (e - s >= BUCKET_MS) {
      kept.push({ start: s, end: e, value: rows.value[i], confidence: rows.confidence[i], flags: f, session, ref: intern(rows.ref[i]) });
      continue;
    }
    const flags = flowOf(f);
    const perMs = rows.value[i] / (e - s);
    for (let q = Math.floor(s / BUCKET_MS); q * BUCKET_MS < e; q++) {
      const a = Math.max(s, q * BUCKET_MS);
      const b = Math.min(e, (q + 1) * BUCKET_MS);
      if (b <= a) continue;
      const key = `${q}|${flags}|${session}`;
      let o = quarters.get(key);
      if (!o) quarters.set(key, (o = { start: q * BUCKET_MS, end: (q + 1) * BUCKET_MS, value: 0, confidence: 1, flags, session, ref: -1 }));
      o.value += e - s === b - a ? rows.value[i] : perMs * (b - a);
      o.confidence = Math.min(o.confidence, rows.confidence[i]);
    }
  }
  const all = [...kept, ...quarters.values(), ...registers.values()].sort((a, b) => a.start - b.start || a.flags - b.flags || a.end - b.end);
  const n = all.length;
  const out: RowColumns = { ...emptyColumns(n), strings };
  all.forEach((o, i) => {
    out.start[i] = o.start;
    out.end[i] = o.end;
    out.value[i] = o.value;
    out.confidence[i] = o.confidence;
    out.flags[i] = o.flags;
    out.session[i] = o.session;
    out.ref[i] = o.ref;
  });
  return out;
}
