import { emptyColumns, FLAG_DELETE, grownColumn, type BucketColumns, type RowColumns } from './codec.js';
import { BUCKET_MS, flowOf, isRegister, type RowOp } from './records.js';

/** What became of one operation: stored (new or replacing), same as already stored, ignored (a forecast where an actual is kept), absent (delete of nothing). */
export type Outcome = 'stored' | 'same' | 'ignored' | 'absent';

const KEY_FLAGS = 15;

/** Index key of a start time: whole seconds, folded into the small-integer range V8 hashes fastest (rows are compared in full). */
const slotKey = (start: number) => Math.floor(start / 1000) % 1_000_000_000;

/**
 * The rows of one partition (a subject's UTC month) in memory: growable columns, a `live` mark
 * (replaced rows stay until the next compaction) and an index from start time to the newest row
 * with that start, chained to older ones with the same start.
 */
export class PartitionTable {
  n = 0;
  liveRows = 0;
  /** Bumps on every change, so derived data (buckets) can be cached. */
  version = 0;
  start: Float64Array;
  end: Float64Array;
  value: Float64Array;
  confidence: Float32Array;
  flags: Uint8Array;
  session: Int32Array;
  ref: Int32Array;
  live: Uint8Array;
  strings: string[] = [];
  private stringIds = new Map<string, number>();
  private index?: Map<number, number>;
  private chain?: Int32Array;
  private bucketCache?: { version: number; buckets: BucketColumns };

  constructor(capacity = 256) {
    this.start = new Float64Array(capacity);
    this.end = new Float64Array(capacity);
    this.value = new Float64Array(capacity);
    this.confidence = new Float32Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.session = new Int32Array(capacity);
    this.ref = new Int32Array(capacity);
    this.live = new Uint8Array(capacity);
  }

  /** A table holding the rows of a segment (all live, keys distinct). */
  static fromColumns(cols: RowColumns): PartitionTable {
    const t = new PartitionTable(Math.max(256, cols.n));
    t.start.set(cols.start.subarray(0, cols.n));
    t.end.set(cols.end.subarray(0, cols.n));
    t.value.set(cols.value.subarray(0, cols.n));
    t.confidence.set(cols.confidence.subarray(0, cols.n));
    t.flags.set(cols.flags.subarray(0, cols.n));
    t.session.set(cols.session.subarray(0, cols.n));
    t.ref.set(cols.ref.subarray(0, cols.n));
    t.live.fill(1, 0, cols.n);
    t.n = cols.n;
    t.liveRows = cols.n;
    t.strings = [...cols.strings];
    t.strings.forEach((s, i) => t.stringIds.set(s, i));
    return t;
  }

  get deadRows() {
    return this.n - this.liveRows;
  }

  /** Bytes held by the columns (for the memory budget). */
  get bytes() {
    return this.start.length * 46;
  }

  private grow(min: number) {
    let cap = this.start.length;
    while (cap < min) cap *= 2;
    if (cap === this.start.length) return;
    const g = <T extends Float64Array | Float32Array | Uint8Array | Int32Array>(a: T, Type: { new (n: number): T }) => grownColumn(a, Type, cap);
    this.start = g(this.start, Float64Array);
    this.end = g(this.end, Float64Array);
    this.value = g(this.value, Float64Array);
    this.confidence = g(this.confidence, Float32Array);
    this.flags = g(this.flags, Uint8Array);
    this.session = g(this.session, Int32Array);
    this.ref = g(this.ref, Int32Array);
    this.live = g(this.live, Uint8Array);
    if (this.chain) this.chain = g(this.chain, Int32Array);
  }

  intern(s: string | null): number {
    if (s === null) return -1;
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.stringIds.set(s, id);
    }
    return id;
  }

  str(id: number): string | null {
    return id < 0 ? null : this.strings[id];
  }

  private ensureIndex() {
    if (this.index) return;
    const index = new Map<number, number>();
    const chain = new Int32Array(this.start.length);
    for (let i = 0; i < this.n; i++) {
      const k = slotKey(this.start[i]);
      chain[i] = index.get(k) ?? -1;
      index.set(k, i);
    }
    this.index = index;
    this.chain = chain;
  }

  /** The live row with this key, or -1. */
  find(start: number, end: number, flags: number): number {
    this.ensureIndex();
    const key = flags & KEY_FLAGS;
    let row = this.index!.get(slotKey(start)) ?? -1;
    while (row >= 0) {
      if (this.live[row] && this.start[row] === start && this.end[row] === end && (this.flags[row] & KEY_FLAGS) === key) return row;
      row = this.chain![row];
    }
    return -1;
  }

  private kill(row: number) {
    this.live[row] = 0;
    this.liveRows--;
  }

  private append(start: number, end: number, flags: number, value: number, confidence: number, session: number, ref: number) {
    this.ensureIndex();
    if (this.n === this.start.length) this.grow(this.n + 1);
    const i = this.n++;
    this.start[i] = start;
    this.end[i] = end;
    this.value[i] = value;
    this.confidence[i] = confidence;
    this.flags[i] = flags & KEY_FLAGS;
    this.session[i] = session;
    this.ref[i] = ref;
    this.live[i] = 1;
    const k = slotKey(start);
    this.chain![i] = this.index!.get(k) ?? -1;
    this.index!.set(k, i);
    this.liveRows++;
  }

  /**
   * Decides, without changing anything, what each operation would do: a forecast (confidence < 1)
   * never replaces an actual, a row equal to the stored one changes nothing, later operations in
   * the batch see earlier ones. Returns the outcomes and the operations worth writing.
   */
  plan(ops: readonly RowOp[]): { outcomes: Outcome[]; effective: RowOp[] } {
    const outcomes: Outcome[] = new Array(ops.length);
    const effective: RowOp[] = [];
    // operations of this batch that change the key they name, by start key, chained (later ones first)
    const staged = new Map<number, number>();
    const stagedNext = new Int32Array(ops.length);
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k];
      const sk = slotKey(op.start);
      let st: RowOp | undefined;
      for (let j = staged.get(sk) ?? -1; j >= 0; j = stagedNext[j]) {
        const o = ops[j];
        if (o.start === op.start && o.end === op.end && (o.flags & KEY_FLAGS) === (op.flags & KEY_FLAGS)) {
          st = o;
          break;
        }
      }
      let exists: boolean;
      let conf = 0;
      let same = false;
      if (st) {
        exists = st.op === 'put';
        conf = st.confidence;
        same = exists && op.op === 'put' && st.value === op.value && st.confidence === op.confidence && st.session === op.session && st.ref === op.ref;
      } else {
        const row = this.find(op.start, op.end, op.flags);
        exists = row >= 0;
        if (exists) {
          conf = this.confidence[row];
          same = op.op === 'put' && this.value[row] === op.value && this.confidence[row] === Math.fround(op.confidence) && this.str(this.session[row]) === op.session && this.str(this.ref[row]) === op.ref;
        }
      }
      if (op.op === 'del') {
        outcomes[k] = exists ? 'stored' : 'absent';
        if (!exists) continue;
      } else if (exists && conf >= 1 && op.confidence < 1) {
        outcomes[k] = 'ignored';
        continue;
      } else if (same) {
        outcomes[k] = 'same';
        continue;
      } else {
        outcomes[k] = 'stored';
      }
      stagedNext[k] = staged.get(sk) ?? -1;
      staged.set(sk, k);
      effective.push(op);
    }
    return { outcomes, effective };
  }

  /** Applies operations that were written to the log (unconditionally: the rules were applied when they were planned). */
  apply(ops: readonly RowOp[]) {
    for (const op of ops) {
      const row = this.find(op.start, op.end, op.flags);
      if (row >= 0) this.kill(row);
      if (op.op === 'put') this.append(op.start, op.end, op.flags, op.value, op.confidence, this.intern(op.session), this.intern(op.ref));
    }
    this.version++;
  }

  /** Replays a decoded log frame. */
  applyColumns(cols: RowColumns) {
    const ids = cols.strings.map((s) => this.intern(s));
    for (let i = 0; i < cols.n; i++) {
      const row = this.find(cols.start[i], cols.end[i], cols.flags[i]);
      if (row >= 0) this.kill(row);
      if (!(cols.flags[i] & FLAG_DELETE)) {
        const s = cols.session[i];
        const r = cols.ref[i];
        this.append(cols.start[i], cols.end[i], cols.flags[i], cols.value[i], cols.confidence[i], s < 0 ? -1 : ids[s], r < 0 ? -1 : ids[r]);
      }
    }
    this.version++;
  }

  /** The live rows sorted by start, flags and end, with only the strings they use: a segment's content. */
  liveColumns(): RowColumns {
    const order: number[] = [];
    for (let i = 0; i < this.n; i++) if (this.live[i]) order.push(i);
    order.sort((a, b) => this.start[a] - this.start[b] || this.flags[a] - this.flags[b] || this.end[a] - this.end[b]);
    const n = order.length;
    const out: RowColumns = emptyColumns(n);
    const remap = new Map<number, number>();
    const keep = (id: number) => {
      if (id < 0) return -1;
      let m = remap.get(id);
      if (m === undefined) {
        m = out.strings.length;
        out.strings.push(this.strings[id]);
        remap.set(id, m);
      }
      return m;
    };
    for (let k = 0; k < n; k++) {
      const i = order[k];
      out.start[k] = this.start[i];
      out.end[k] = this.end[i];
      out.value[k] = this.value[i];
      out.confidence[k] = this.confidence[i];
      out.flags[k] = this.flags[i];
      out.session[k] = keep(this.session[i]);
      out.ref[k] = keep(this.ref[i]);
    }
    return out;
  }

  /** Sessions named by live rows. */
  sessions(): Set<string> {
    const out = new Set<string>();
    for (let i = 0; i < this.n; i++) if (this.live[i] && this.session[i] >= 0) out.add(this.strings[this.session[i]]);
    return out;
  }

  /** Energy of the live interval rows per 15-minute bucket and flow, each row spread pro rata in time. */
  buckets(): BucketColumns {
    if (this.bucketCache?.version === this.version) return this.bucketCache.buckets;
    const buckets = bucketize(this);
    this.bucketCache = { version: this.version, buckets };
    return buckets;
  }
}

/** Pro-rata 15-minute bucket energies of the live interval rows of a table. */
export function bucketize(t: PartitionTable): BucketColumns {
  let qMin = Infinity;
  let qMax = -Infinity;
  for (let i = 0; i < t.n; i++) {
    if (!t.live[i] || isRegister(t.flags[i])) continue;
    const a = Math.floor(t.start[i] / BUCKET_MS);
    const b = Math.ceil(t.end[i] / BUCKET_MS);
    if (a < qMin) qMin = a;
    if (b > qMax) qMax = b;
  }
  if (qMin === Infinity) return { n: 0, quarter: new Uint32Array(0), flow: new Uint8Array(0), energy: new Float64Array(0), confidence: new Float32Array(0) };
  const span = qMax - qMin;
  const energy = new Float64Array(span * 6);
  const conf = new Float32Array(span * 6).fill(2);
  for (let i = 0; i < t.n; i++) {
    const f = t.flags[i];
    if (!t.live[i] || isRegister(f)) continue;
    const s = t.start[i];
    const e = t.end[i];
    const flow = flowOf(f);
    const c = t.confidence[i];
    const q0 = Math.floor(s / BUCKET_MS);
    const q1 = Math.ceil(e / BUCKET_MS);
    if (q1 - q0 <= 1) {
      const k = (q0 - qMin) * 6 + flow;
      energy[k] += t.value[i];
      if (c < conf[k]) conf[k] = c;
      continue;
    }
    const perMs = t.value[i] / (e - s);
    for (let q = q0; q < q1; q++) {
      const a = Math.max(s, q * BUCKET_MS);
      const b = Math.min(e, (q + 1) * BUCKET_MS);
      const k = (q - qMin) * 6 + flow;
      energy[k] += perMs * (b - a);
      if (c < conf[k]) conf[k] = c;
    }
  }
  let n = 0;
  for (let k = 0; k < conf.length; k++) if (conf[k] <= 1) n++;
  const out: BucketColumns = { n, quarter: new Uint32Array(n), flow: new Uint8Array(n), energy: new Float64Array(n), confidence: new Float32Array(n) };
  let j = 0;
  for (let k = 0; k < conf.length; k++) {
    if (conf[k] > 1) continue;
    out.quarter[j] = qMin + Math.floor(k / 6);
    out.flow[j] = k % 6;
    out.energy[j] = energy[k];
    out.confidence[j] = conf[k];
    j++;
  }
  return out;
}
