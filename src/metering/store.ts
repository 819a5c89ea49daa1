import { chmodSync, closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../api/index.js';
import { DIR_MODE, FILE_MODE, fsyncDirSync, writeFileAtomicSync } from '../core/store/atomic.js';
import { WriteTimes } from '../core/store/write-times.js';
import {
  CorruptDataError,
  FLAG_DELETE,
  decodeBuckets,
  decodeRows,
  decodeSegmentHeader,
  describeDamage,
  emptyColumns,
  encodeRows,
  encodeSegment,
  frame,
  grownColumn,
  readSection,
  scanLog,
  type LogScan,
  type BucketColumns,
  type RowColumns,
  type SegmentHeader,
  type StreamSummary,
} from './codec.js';
import type { RegisterPoint } from './cumulative.js';
import { PartitionTable, type Outcome } from './partition.js';
import { rollUpColumns } from './retention.js';
import { monthsIn, pushBuckets, pushIntervals } from './table-query.js';
import { BUCKET_MS, FLAG_REGISTER, flowOf, isRegister, monthOf, monthStart, nextMonth, type RowOp } from './records.js';

/**
 * Energy intervals handed to the cost functions: columns, optionally with session and record
 * references. Store rows and 15-minute buckets both come out in this shape.
 */
export interface IntervalSet {
  n: number;
  start: Float64Array;
  end: Float64Array;
  energy: Float64Array;
  flags: Uint8Array;
  confidence: Float32Array;
  session?: (string | null)[];
  ref?: (string | null)[];
}

export class MeterStoreError extends Error {
  constructor(message: string, readonly file?: string) {
    super(message);
    this.name = 'MeterStoreError';
  }
}

/** `refused`: the records were refused for what they are (not a store failure). */
export type WriteOutcome = Outcome | { error: string; refused?: boolean };

/** Files of the store as they were at one moment (see `MeterStore.snapshot`): read `size` bytes of each `fd`. */
export interface MeterStoreSnapshot {
  /** The store's format version. */
  version: number;
  /** Paths relative to the store's directory. */
  files: { name: string; fd: number; size: number }[];
  /** Closes the files and lets compaction run again. */
  release(): void;
}

/** The meter store format version this homeflex writes (FORMAT in the store's directory). */
export const METER_STORE_VERSION = 1;

/** Acknowledged data the store found damaged: where it was, what it held, where its bytes are kept. */
export interface DamageReport {
  kind: 'log' | 'segment';
  /** The log or segment the damaged bytes were found in. */
  file: string;
  /** Byte offset and length of the damaged range in that file. */
  offset: number;
  length: number;
  /** Records the damaged range held, where its frame header still tells (null: unknown). */
  records: number | null;
  /** Time range the lost records cover (from the damaged frame, else the good frames around it). */
  firstTime: string | null;
  lastTime: string | null;
  /** Where the damaged bytes are kept (null: still in place, e.g. a read-only check). */
  aside: string | null;
  detectedAt: string;
}

/** How the meter store is doing, for /health. */
export interface MeterStoreHealth {
  ok: boolean;
  /** The last write failed (full disk, no file descriptors) and none succeeded since. */
  writeError: { error: string; since: string } | null;
  damaged: DamageReport[];
}

const iso = (t: number | null | undefined) => (t === null || t === undefined || !Number.isFinite(t) ? null : new Date(t).toISOString());
const DAMAGED_ASIDE = /^(\d{4}-\d{2})\.(seg|log)\.damaged-(\d+)(?:-\d+)?$/;

/** `<file>.damaged-<offset>`, or with `-2`, `-3` … when damage at that offset was set aside before (never overwritten). */
function asideName(file: string, offset: number): string {
  let name = `${file}.damaged-${offset}`;
  for (let n = 2; existsSync(name); n++) name = `${file}.damaged-${offset}-${n}`;
  return name;
}

export interface MeterStoreOptions {
  /** Opens without changing any file (a torn log tail is skipped, not truncated); writes are refused. */
  readOnly?: boolean;
  /** Rows kept in memory over all loaded partitions before the least recently used are dropped. */
  maxLoadedRows?: number;
  /** Months that ended longer ago than this are rolled up from minute-level to 15-minute records (unset: kept as recorded). */
  rollUpAfterMs?: number;
  /** A partition whose log grows past this many bytes is compacted into its segment. */
  compactLogBytes?: number;
  log?: Logger;
  /** Wall-clock time for maintenance decisions (tests pass their own). */
  now?: () => number;
}

interface Partition {
  subject: string;
  month: string;
  dir: string;
  seg: SegmentHeader | null;
  logSize: number;
  /** Operations in the log (not yet compacted). */
  logOps: number;
  table?: PartitionTable;
  fh?: FileHandle;
  lastUsed: number;
  lastWrite: number;
  /**
   * Set while the partition must not be appended to (a failed write not yet rolled back, damage not
   * yet moved aside); `retry` is tried again before the next write, so it heals by itself.
   */
  broken?: { reason: string; retry?: () => Promise<void> | void };
  sessions: Set<string>;
}

interface StreamState {
  first: number;
  last: RegisterPoint;
}

const FORMAT_FILE = 'FORMAT';
const FORMAT = { format: 'homeflex-meter-store', version: METER_STORE_VERSION };
const PART_FILE = /^(\d{4}-\d{2})\.(seg|log)$/;

const streamKey = (subject: string, flags: number) => `${subject}|${flowOf(flags)}`;

/**
 * The durable meter record store. Layout under its directory:
 *
 *     FORMAT                      format name and version
 *     <subject>/<YYYY-MM>.seg     compacted rows of one subject and UTC month + 15-minute buckets (atomic rewrite)
 *     <subject>/<YYYY-MM>.log     append-only frames written since the segment (fsync'd before acknowledging)
 *
 * A write appends one CRC-framed batch per partition and fsyncs it; only then are the rows applied
 * in memory and the write acknowledged. Opening truncates a torn log tail (kept aside in a
 * `.torn-<time>` file). Compaction writes a new segment atomically and then empties the log; a
 * crash between the two replays the log over the new segment, which gives the same rows.
 */
export class MeterStore {
  private readonly parts = new Map<string, Map<string, Partition>>();
  private readonly sessionIndex = new Map<string, Set<Partition>>();
  private readonly streams = new Map<string, StreamState>();
  private queue: Promise<unknown> = Promise.resolve();
  private loadedRows = 0;
  private bucketCache = new Map<string, BucketColumns>();
  private closed = false;
  readonly problems: string[] = [];
  /** Damage found since opening (and damaged ranges kept aside by earlier runs). */
  readonly damage: DamageReport[] = [];
  private writeFailure?: { error: string; since: number };
  private formatPending = false;
  private readonly readOnly: boolean;
  private readonly maxLoadedRows: number;
  private readonly compactLogBytes: number;
  private readonly rollUpAfterMs?: number;
  private readonly now: () => number;

  private constructor(readonly dir: string, private readonly options: MeterStoreOptions) {
    this.readOnly = options.readOnly ?? false;
    this.maxLoadedRows = options.maxLoadedRows ?? 1_000_000;
    this.compactLogBytes = options.compactLogBytes ?? 4 * 1024 * 1024;
    this.rollUpAfterMs = options.rollUpAfterMs;
    this.now = options.now ?? Date.now;
  }

  static async open(dir: string, options: MeterStoreOptions = {}): Promise<MeterStore> {
    const store = new MeterStore(dir, options);
    store.openSync();
    return store;
  }

  private openSync() {
    const formatFile = join(this.dir, FORMAT_FILE);
    if (!existsSync(this.dir)) {
      if (this.readOnly) return;
      mkdirSync(this.dir, { recursive: true, mode: DIR_MODE });
    }
    this.tighten(this.dir, DIR_MODE);
    if (existsSync(formatFile)) {
      let format: { format?: string; version?: number };
      try {
        format = JSON.parse(readFileSync(formatFile, 'utf8'));
      } catch (err) {
        throw new MeterStoreError(`${formatFile} is not readable JSON (${(err as Error).message}); the meter store was not opened`, formatFile);
      }
      if (format.format !== FORMAT.format) throw new MeterStoreError(`${this.dir} is not a homeflex meter store (${formatFile} says ${JSON.stringify(format.format)})`, formatFile);
      if ((format.version ?? 0) > FORMAT.version) throw new MeterStoreError(`${this.dir} was written by a newer homeflex (meter store version ${format.version}, this one reads ${FORMAT.version}); upgrade homeflex`, formatFile);
    } else if (!this.readOnly) {
      try {
        writeFileAtomicSync(formatFile, JSON.stringify(FORMAT) + '\n');
      } catch (err) {
        // a full disk must not keep the hub from starting: the file is written with the first record
        this.formatPending = true;
        this.options.log?.warn({ file: formatFile, err }, 'cannot write the meter store FORMAT file yet; retrying with the first write');
      }
    }
    for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      let subject: string;
      try {
        subject = decodeURIComponent(entry.name);
      } catch {
        continue;
      }
      const sdir = join(this.dir, entry.name);
      this.tighten(sdir, DIR_MODE);
      for (const name of readdirSync(sdir).sort()) {
        if (name.endsWith('.tmp')) {
          if (!this.readOnly) unlinkSync(join(sdir, name)); // an unfinished compaction; the log still holds its rows
          continue;
        }
        this.tighten(join(sdir, name), FILE_MODE);
        const aside = DAMAGED_ASIDE.exec(name);
        if (aside) {
          this.damage.push(this.asideReport(join(sdir, name), aside[2] as 'log' | 'seg', Number(aside[3])));
          continue;
        }
        const m = PART_FILE.exec(name);
        if (!m) continue;
        const p = this.partition(subject, m[1], true)!;
        if (m[2] === 'seg') this.openSegment(p);
        else this.openLog(p);
      }
    }
  }

  private segFile(p: Partition) {
    return join(p.dir, `${p.month}.seg`);
  }

  private logFile(p: Partition) {
    return join(p.dir, `${p.month}.log`);
  }

  private partition(subject: string, month: string, create: boolean): Partition | undefined {
    let bySubject = this.parts.get(subject);
    let p = bySubject?.get(month);
    if (p || !create) return p;
    if (!bySubject) this.parts.set(subject, (bySubject = new Map()));
    p = { subject, month, dir: join(this.dir, encodeURIComponent(subject)), seg: null, logSize: 0, logOps: 0, lastUsed: 0, lastWrite: 0, sessions: new Set() };
    bySubject.set(month, p);
    return p;
  }

  private openSegment(p: Partition) {
    const file = this.segFile(p);
    try {
      p.seg = withFile(file, (read) => decodeSegmentHeader(read));
    } catch (err) {
      if (!(err instanceof CorruptDataError)) throw err;
      this.segmentDamaged(p, 0, err);
      return;
    }
    for (const s of p.seg.sessions) this.indexSession(s, p);
    for (const st of p.seg.streams) {
      this.noteStream(p.subject, st.flags, st.first, { time: st.last[0], valueWh: st.last[1], session: st.last[2], ref: null });
    }
  }

  private openLog(p: Partition) {
    const file = this.logFile(p);
    const buf = readFileSync(file);
    const scan = scanLog(buf);
    p.logSize = buf.length;
    if (scan.damaged.length || scan.tail) this.logDamaged(p, buf, scan);
    for (const { payload } of scan.frames) {
      const cols = decodeRows(payload);
      p.logOps += cols.n;
      this.noteColumns(p, cols);
    }
  }

  /**
   * A log with bytes that are no valid frame. A torn tail (an incomplete last frame: a write the
   * crash interrupted, never acknowledged) is cut off and kept in `<log>.torn-<time>`. Any other
   * bad range held acknowledged records: it is kept in `<log>.damaged-<offset>`, reported at error
   * level and in health, and the log is rewritten with every valid frame, those after it included.
   * Nothing is deleted; on a full disk the partition stays as it is (read from its valid frames,
   * writes refused) and the move is tried again before its next write.
   */
  private logDamaged(p: Partition, buf: Buffer, scan: LogScan) {
    const file = this.logFile(p);
    const ranges = [...scan.damaged];
    let torn: { offset: number; length: number } | null = null;
    if (scan.tail) {
      const t = scan.tail;
      const len = t.length >= 4 ? buf.readUInt32LE(t.offset) : 0;
      // a frame that says it is longer than what is there was cut short by a crash; a whole frame that fails its CRC was damaged
      if (t.length < 8 || len === 0 || len > t.length - 8) torn = t;
      else ranges.push(t);
    }
    const reports = ranges.map((r): DamageReport => {
      const guess = describeDamage(buf.subarray(r.offset, r.offset + r.length));
      const before = scan.frames.filter((f) => f.offset < r.offset).pop();
      const after = scan.frames.find((f) => f.offset > r.offset);
      const span = (payload: Buffer | undefined, which: 'first' | 'last') => {
        if (!payload) return null;
        const c = decodeRows(payload);
        return which === 'last' ? Math.max(...c.end.subarray(0, c.n)) : Math.min(...c.start.subarray(0, c.n));
      };
      return {
        kind: 'log',
        file,
        offset: r.offset,
        length: r.length,
        records: guess.records,
        firstTime: iso(guess.firstTime ?? span(before?.payload, 'last')),
        lastTime: iso(guess.lastTime ?? span(after?.payload, 'first')),
        aside: null,
        detectedAt: new Date(this.now()).toISOString(),
      };
    });
    for (const r of reports) {
      this.damage.push(r);
      this.options.log?.error(
        { file, offset: r.offset, bytes: r.length, records: r.records, first_time: r.firstTime, last_time: r.lastTime },
        `meter log damaged: ${r.length} bytes at offset ${r.offset} of ${file} (${r.records ?? 'an unknown number of'} records, ${r.firstTime ?? '?'} to ${r.lastTime ?? '?'}) are unreadable; the records after them are kept`,
      );
      this.problems.push(`${file}: ${r.length} damaged bytes at offset ${r.offset} (${r.records ?? '?'} records, ${r.firstTime ?? '?'} to ${r.lastTime ?? '?'})`);
    }
    if (this.readOnly) {
      if (torn) this.problems.push(`${file}: the last ${torn.length} bytes are an incomplete write (skipped)`);
      return;
    }
    const repair = () => {
      // keep every bad byte first, then rewrite the log from its valid frames
      for (const r of reports) {
        const aside = asideName(file, r.offset);
        writeDurable(aside, buf.subarray(r.offset, r.offset + r.length));
        writeDurable(`${aside}.json`, Buffer.from(JSON.stringify({ ...r, aside }, null, 1) + '\n'));
        r.aside = aside;
      }
      let tornAside: string | undefined;
      if (torn) {
        tornAside = `${file}.torn-${this.now()}`;
        writeDurable(tornAside, buf.subarray(torn.offset, torn.offset + torn.length));
      }
      const good = scan.frames.reduce((n, f) => n + 8 + f.payload.length, 0);
      if (reports.length) {
        const frames = Buffer.concat(scan.frames.map((f) => buf.subarray(f.offset, f.offset + 8 + f.payload.length)));
        writeFileAtomicSync(file, frames);
      } else {
        const fd = openSync(file, 'r+');
        try {
          ftruncateSync(fd, good);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
      p.logSize = good;
      if (torn) {
        this.problems.push(`${file}: removed an incomplete write of ${torn.length} bytes at its end (never acknowledged; kept in ${tornAside})`);
        this.options.log?.warn({ file, bytes: torn.length, aside: tornAside }, 'meter log had a torn tail from an interrupted write; truncated');
      }
      for (const r of reports) this.options.log?.error({ file, aside: r.aside }, `damaged bytes of ${file} kept in ${r.aside}; delete that file once you have dealt with it (see homeflex store check)`);
    };
    try {
      repair();
    } catch (err) {
      const reason = `${file} holds damaged or torn bytes that could not be moved aside yet (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); writes to it wait until they are`;
      this.options.log?.error({ file, err }, reason);
      p.broken = {
        reason,
        retry: async () => {
          await p.fh?.close().catch(() => undefined);
          p.fh = undefined;
          repair();
        },
      };
    }
  }

  /** A damaged segment (or one of its sections): moved aside whole, reported; the partition goes on with its log. */
  private segmentDamaged(p: Partition, offset: number, err: unknown) {
    const file = this.segFile(p);
    const seg = p.seg;
    const report: DamageReport = {
      kind: 'segment',
      file,
      offset,
      length: existsSync(file) ? statSync(file).size - offset : 0,
      records: seg?.rows ?? null,
      firstTime: iso(seg?.firstTime ?? monthStart(p.month)),
      lastTime: iso(seg?.lastTime ?? monthStart(nextMonth(p.month))),
      aside: null,
      detectedAt: new Date(this.now()).toISOString(),
    };
    if (!this.readOnly) {
      const aside = asideName(file, offset);
      try {
        renameSync(file, aside);
        fsyncDirSync(p.dir);
        report.aside = aside;
        try {
          writeDurable(`${aside}.json`, Buffer.from(JSON.stringify(report, null, 1) + '\n'));
        } catch {
          // the damaged bytes are kept; the description is a convenience
        }
      } catch (e) {
        this.options.log?.error({ file, err: e }, `could not move the damaged segment ${file} aside`);
      }
    }
    p.seg = null;
    this.bucketCache.delete(file);
    this.damage.push(report);
    const message = `${file}: ${(err as Error).message}${report.aside ? `; moved to ${report.aside}` : ''}`;
    this.problems.push(message);
    this.options.log?.error(
      { file, offset, records: report.records, first_time: report.firstTime, last_time: report.lastTime, aside: report.aside },
      `meter segment damaged (${(err as Error).message}): ${report.records ?? 'an unknown number of'} records of ${p.subject}, ${report.firstTime} to ${report.lastTime}, are not readable${report.aside ? `; the file is kept in ${report.aside}` : ''}`,
    );
  }

  /** A damaged range an earlier run set aside: described by its sidecar, else by its name. */
  private asideReport(file: string, kind: 'log' | 'seg', offset: number): DamageReport {
    try {
      const r = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as DamageReport;
      return { ...r, aside: file };
    } catch {
      return { kind: kind === 'seg' ? 'segment' : 'log', file: file.replace(/\.damaged-\d+(-\d+)?$/, ''), offset, length: statSync(file).size, records: null, firstTime: null, lastTime: null, aside: file, detectedAt: statSync(file).mtime.toISOString() };
    }
  }

  /** Makes a file or directory private to the hub's user (older versions left logs world-readable). */
  private tighten(path: string, mode: number) {
    if (this.readOnly) return;
    try {
      if (statSync(path).mode & 0o077) chmodSync(path, mode);
    } catch {
      // not ours to change; the hub still works
    }
  }

  /** How the store is doing: damage found, and whether writes currently fail. */
  get health(): MeterStoreHealth {
    const writeError = this.writeFailure ? { error: this.writeFailure.error, since: new Date(this.writeFailure.since).toISOString() } : null;
    return { ok: !writeError && this.damage.length === 0, writeError, damaged: [...this.damage] };
  }

  /** Keeps the session index and the register streams up to date with rows written to a partition. */
  private noteColumns(p: Partition, cols: RowColumns) {
    for (let i = 0; i < cols.n; i++) {
      if (cols.flags[i] & FLAG_DELETE) continue;
      if (cols.session[i] >= 0) this.indexSession(cols.strings[cols.session[i]], p);
      if (isRegister(cols.flags[i])) {
        this.noteStream(p.subject, cols.flags[i], cols.start[i], {
          time: cols.start[i],
          valueWh: cols.value[i],
          session: cols.session[i] >= 0 ? cols.strings[cols.session[i]] : null,
          ref: cols.ref[i] >= 0 ? cols.strings[cols.ref[i]] : null,
        });
      }
    }
  }

  private indexSession(session: string, p: Partition) {
    p.sessions.add(session);
    let set = this.sessionIndex.get(session);
    if (!set) this.sessionIndex.set(session, (set = new Set()));
    set.add(p);
  }

  private noteStream(subject: string, flags: number, first: number, last: RegisterPoint) {
    const key = streamKey(subject, flags);
    const st = this.streams.get(key);
    if (!st) this.streams.set(key, { first, last });
    else {
      if (first < st.first) st.first = first;
      if (last.time >= st.last.time) st.last = last;
    }
  }

  // ------------------------------------------------------------------ loading

  /** The partition's rows in memory: its segment, then its log replayed over it. */
  private load(p: Partition): PartitionTable {
    p.lastUsed = this.now();
    if (p.table) return p.table;
    let table: PartitionTable;
    table = new PartitionTable();
    if (p.seg) {
      const seg = p.seg;
      try {
        table = PartitionTable.fromColumns(withFile(this.segFile(p), (read) => decodeRows(readSection(read, seg.sections.rows, 'rows'))));
      } catch (err) {
        if (!(err instanceof CorruptDataError)) throw err;
        this.segmentDamaged(p, seg.sections.rows.offset, err);
      }
    }
    if (p.logSize > 0) {
      const frames = this.guard(p, () => {
        const fd = openSync(this.logFile(p), 'r');
        try {
          const buf = Buffer.allocUnsafe(p.logSize);
          let got = 0;
          while (got < p.logSize) {
            const n = readSync(fd, buf, got, p.logSize - got, got);
            if (n === 0) break;
            got += n;
          }
          // damage was reported when the log was opened; its valid frames are all read
          return scanLog(buf.subarray(0, got)).frames;
        } finally {
          closeSync(fd);
        }
      });
      for (const { payload } of frames) table.applyColumns(decodeRows(payload));
    }
    p.table = table;
    this.loadedRows += table.n;
    return table;
  }

  private guard<T>(p: Partition, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof CorruptDataError) throw new MeterStoreError(`meter partition ${p.subject} ${p.month} is damaged: ${err.message} (${p.dir})`, p.dir);
      throw err;
    }
  }

  private unload(p: Partition) {
    if (!p.table) return;
    this.loadedRows -= p.table.n;
    p.table = undefined;
  }

  // ------------------------------------------------------------------ writing

  /** Runs `fn` alone: no other write, compaction or exclusive task runs meanwhile. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new MeterStoreError('the meter store is closed');
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stores rows durably; resolves once they are fsync'd, with what became of each. */
  write(ops: readonly RowOp[]): Promise<WriteOutcome[]> {
    return this.exclusive(() => this.writeTimes.time(() => this.writeNow(ops)));
  }

  /** How long acknowledged writes took, from the append to the fsync (GET /metrics). */
  readonly writeTimes = new WriteTimes();

  /** `write` for code already running inside `exclusive`. */
  async writeNow(ops: readonly RowOp[]): Promise<WriteOutcome[]> {
    if (this.readOnly) throw new MeterStoreError('the meter store was opened read-only');
    const outcomes: WriteOutcome[] = new Array(ops.length);
    const groups = new Map<Partition, number[]>();
    // consecutive operations mostly share a subject and month: look the partition up only when that changes
    let last: { subject: string; from: number; to: number; group: number[] } | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (!last || op.subject !== last.subject || op.start < last.from || op.start >= last.to) {
        const month = monthOf(op.start);
        const p = this.partition(op.subject, month, true)!;
        let g = groups.get(p);
        if (!g) groups.set(p, (g = []));
        last = { subject: op.subject, from: monthStart(month), to: monthStart(nextMonth(month)), group: g };
      }
      last.group.push(i);
    }
    await Promise.all(
      [...groups].map(async ([p, idx]) => {
        const mine = idx.map((i) => ops[i]);
        if (p.seg?.rolled_up) {
          // minute-level records of this month were rolled up (storage.minute_records_days): a late
          // record would be counted twice beside the quarter-hour rows that already hold it
          const error = `not stored: ${p.month} of ${p.subject} is past storage.minute_records_days and was rolled up to 15-minute records on ${new Date(p.seg.rolled_up).toISOString()}; records of it are no longer taken`;
          idx.forEach((i) => (outcomes[i] = { error, refused: true }));
          return;
        }
        try {
          if (this.formatPending) {
            writeFileAtomicSync(join(this.dir, FORMAT_FILE), JSON.stringify(FORMAT) + '\n');
            this.formatPending = false;
          }
          if (p.broken?.retry) {
            await p.broken.retry();
            p.broken = undefined;
          }
          if (p.broken) throw new MeterStoreError(p.broken.reason);
          const table = this.load(p);
          const { outcomes: planned, effective } = table.plan(mine);
          if (effective.length) {
            await this.append(p, frame(encodeRows(opsToColumns(effective))));
            const before = table.n;
            table.apply(effective);
            this.loadedRows += table.n - before;
            p.logOps += effective.length;
            p.lastWrite = this.now();
            this.noteColumns(p, opsToColumns(effective.filter((o) => o.op === 'put' && (o.session !== null || isRegister(o.flags)))));
          }
          idx.forEach((i, k) => (outcomes[i] = planned[k]));
        } catch (err) {
          const error = `not stored: ${(err as Error).message}`;
          idx.forEach((i) => (outcomes[i] = { error }));
          this.writeFailed(err, p);
        }
      }),
    );
    await this.maintainNow(false);
    return outcomes;
  }

  private async append(p: Partition, bytes: Buffer) {
    if (!p.fh) {
      const fresh = !existsSync(p.dir);
      if (fresh) {
        mkdirSync(p.dir, { recursive: true, mode: DIR_MODE });
        fsyncDirSync(this.dir);
      }
      const file = this.logFile(p);
      if (!existsSync(file)) {
        closeSync(openSync(file, 'a', FILE_MODE));
        fsyncDirSync(p.dir);
      }
      p.fh = await open(file, 'r+');
    }
    try {
      // written at the known end, not appended, so a failed write can be cut off again
      // a short write must not leave a gap: frames after it would be cut off as a torn tail on reopen
      for (let off = 0; off < bytes.length; ) {
        const { bytesWritten } = await p.fh.write(bytes, off, bytes.length - off, p.logSize + off);
        if (bytesWritten <= 0) throw new Error('write made no progress');
        off += bytesWritten;
      }
      await p.fh.datasync();
      p.logSize += bytes.length;
      this.writeSucceeded();
    } catch (err) {
      const rollback = async () => {
        await p.fh!.truncate(p.logSize);
        await p.fh!.datasync();
      };
      try {
        await rollback();
      } catch (err2) {
        // tried again before the next write to this partition, so it heals once the disk does
        p.broken = { reason: `${this.logFile(p)} could not be written (${(err as Error).message}) nor rolled back yet (${(err2 as Error).message})`, retry: rollback };
      }
      throw err;
    }
  }

  private writeFailed(err: unknown, p: Partition) {
    const error = `${(err as NodeJS.ErrnoException).code ?? 'error'}: ${(err as Error).message}`;
    if (!this.writeFailure) {
      this.writeFailure = { error, since: this.now() };
      this.options.log?.error({ err, subject: p.subject, month: p.month }, 'meter records could not be stored; writes are refused with store_unavailable until the disk accepts them again');
    } else this.writeFailure.error = error;
  }

  private writeSucceeded() {
    if (!this.writeFailure) return;
    this.options.log?.info({ failing_for_s: Math.round((this.now() - this.writeFailure.since) / 1000) }, 'meter records are stored again');
    this.writeFailure = undefined;
  }

  /** Rewrites a partition as one segment and empties its log (`force`: also without a log; `rolledUp`: marks the segment rolled up then). */
  private async compact(p: Partition, opts: { force?: boolean; rolledUp?: number } = {}) {
    if (p.broken || (p.logSize === 0 && p.seg && !opts.force)) return;
    // a backup is reading the logs up to the sizes it noted: emptying one now would lose its rows
    if (this.snapshotsOpen > 0) return;
    const table = this.load(p);
    const rows = table.liveColumns();
    const buckets = table.buckets();
    const streams = new Map<number, StreamSummary>();
    let firstTime: number | null = null;
    let lastTime: number | null = null;
    let intervals = 0;
    for (let i = 0; i < rows.n; i++) {
      const f = rows.flags[i];
      if (isRegister(f)) {
        const flow = flowOf(f) | FLAG_REGISTER;
        const st = streams.get(flow);
        const last: StreamSummary['last'] = [rows.start[i], rows.value[i], rows.session[i] >= 0 ? rows.strings[rows.session[i]] : null];
        if (!st) streams.set(flow, { flags: flow, first: rows.start[i], last });
        else st.last = last; // rows are sorted by start
        continue;
      }
      intervals++;
      if (firstTime === null || rows.start[i] < firstTime) firstTime = rows.start[i];
      if (lastTime === null || rows.end[i] > lastTime) lastTime = rows.end[i];
    }
    const sessions = new Set<string>();
    for (let i = 0; i < rows.n; i++) if (rows.session[i] >= 0) sessions.add(rows.strings[rows.session[i]]);
    const rolledUp = opts.rolledUp ?? p.seg?.rolled_up;
    const header = { subject: p.subject, month: p.month, generation: (p.seg?.generation ?? 0) + 1, rows: rows.n, intervals, firstTime, lastTime, sessions: [...sessions], streams: [...streams.values()], ...(rolledUp ? { rolled_up: rolledUp } : {}) };
    const bytes = encodeSegment(header, rows, buckets);
    // temp file, fsync, rename, fsync of the directory; a failed write leaves no temp file (the log still holds the rows)
    const file = this.segFile(p);
    writeFileAtomicSync(file, bytes);
    // only now may the log go: until the rename is durable it is the only copy of its rows
    if (p.logSize > 0) {
      if (p.fh) {
        await p.fh.truncate(0);
        await p.fh.datasync();
      } else {
        const lfd = openSync(this.logFile(p), 'r+');
        try {
          ftruncateSync(lfd, 0);
          fsyncSync(lfd);
        } finally {
          closeSync(lfd);
        }
      }
    }
    p.seg = withFile(file, (read) => decodeSegmentHeader(read));
    p.logSize = 0;
    p.logOps = 0;
    this.bucketCache.delete(file);
    this.unload(p);
    p.table = PartitionTable.fromColumns(rows);
    this.loadedRows += p.table.n;
  }

  /**
   * Compacts partitions whose log is large, full of replaced rows, or quiet for an hour, and drops
   * the least recently used partitions from memory while over the row budget.
   */
  maintain(): Promise<void> {
    return this.exclusive(() => this.maintainNow(true));
  }

  private async maintainNow(thorough: boolean) {
    if (this.readOnly) return;
    const now = this.now();
    const all = [...this.parts.values()].flatMap((m) => [...m.values()]);
    for (const p of all) {
      const t = p.table;
      const big = p.logSize >= this.compactLogBytes;
      const wasteful = t !== undefined && t.deadRows > 4096 && t.deadRows > t.liveRows / 4;
      const quiet = thorough && p.logSize > 0 && now - p.lastWrite > 3_600_000;
      if (big || wasteful || quiet) {
        try {
          await this.compact(p);
        } catch (err) {
          this.options.log?.error({ err, subject: p.subject, month: p.month }, 'meter partition compaction failed; its log keeps the rows');
        }
      }
    }
    if (thorough && this.rollUpAfterMs !== undefined) await this.rollUpOld(now);
    if (this.loadedRows <= this.maxLoadedRows) return;
    const loaded = all.filter((p) => p.table).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const p of loaded) {
      if (this.loadedRows <= this.maxLoadedRows * 0.8) break;
      if (p.logSize > 0) {
        try {
          await this.compact(p);
        } catch (err) {
          this.options.log?.error({ err, subject: p.subject, month: p.month }, 'meter partition compaction failed');
        }
      }
      this.unload(p);
      await p.fh?.close().catch(() => undefined);
      p.fh = undefined;
    }
  }

  /**
   * Reads every segment in full (both sections, against their checksums) so that damage that
   * opening does not see is found too; logs were read whole when the store opened. Returns all
   * damage known.
   */
  verify(): DamageReport[] {
    for (const m of this.parts.values()) {
      for (const p of m.values()) {
        const seg = p.seg;
        if (!seg) continue;
        const file = this.segFile(p);
        for (const [ref, what] of [[seg.sections.buckets, 'buckets'], [seg.sections.rows, 'rows']] as const) {
          try {
            withFile(file, (read) => (what === 'rows' ? decodeRows(readSection(read, ref, what)) : decodeBuckets(readSection(read, ref, what))));
          } catch (err) {
            if (!(err instanceof CorruptDataError)) throw err;
            this.segmentDamaged(p, ref.offset, err);
            this.unload(p);
            break;
          }
        }
      }
    }
    return [...this.damage];
  }

  private snapshotsOpen = 0;

  /**
   * A consistent view of the store's files for a backup, taken between writes: every write
   * acknowledged before the call is in it, none that starts after. Segments are held open (a
   * compaction that replaces one leaves the open file as it was) and logs are read only up to their
   * size at this moment; until `release`, no log is emptied by compaction (writes go on).
   */
  snapshot(): Promise<MeterStoreSnapshot> {
    return this.exclusive(() => {
      const files: MeterStoreSnapshot['files'] = [];
      const opened: number[] = [];
      let released = false;
      this.snapshotsOpen++;
      const release = () => {
        if (released) return;
        released = true;
        this.snapshotsOpen--;
        for (const fd of opened) {
          try {
            closeSync(fd);
          } catch {
            // already closed
          }
        }
      };
      try {
        const formatFile = join(this.dir, FORMAT_FILE);
        if (existsSync(formatFile)) {
          const fd = openSync(formatFile, 'r');
          opened.push(fd);
          files.push({ name: FORMAT_FILE, fd, size: fstatSync(fd).size });
        }
        for (const months of this.parts.values()) {
          for (const p of months.values()) {
            const sub = p.dir.slice(this.dir.length + 1);
            if (p.seg && existsSync(this.segFile(p))) {
              const fd = openSync(this.segFile(p), 'r');
              opened.push(fd);
              files.push({ name: `${sub}/${p.month}.seg`, fd, size: fstatSync(fd).size });
            }
            if (p.logSize > 0) {
              const fd = openSync(this.logFile(p), 'r');
              opened.push(fd);
              files.push({ name: `${sub}/${p.month}.log`, fd, size: p.logSize });
            }
          }
        }
      } catch (err) {
        release();
        throw err;
      }
      return { version: FORMAT.version, files, release };
    });
  }

  /**
   * Rolls up the months that ended more than `rollUpAfterMs` ago and are not rolled up yet: their
   * minute-level records become 15-minute records (see rollUpColumns); energy and costs stay the
   * same. A month is looked at once: its segment then says it was rolled up.
   */
  private async rollUpOld(now: number) {
    if (this.snapshotsOpen > 0 || this.rollUpAfterMs === undefined) return;
    for (const months of this.parts.values()) {
      for (const p of months.values()) {
        if (p.broken || p.seg?.rolled_up || monthStart(nextMonth(p.month)) + this.rollUpAfterMs > now) continue;
        try {
          const wasLoaded = p.table !== undefined;
          const before = this.load(p);
          const n = before.liveRows;
          const rolled = rollUpColumns(before.liveColumns());
          this.unload(p);
          p.table = PartitionTable.fromColumns(rolled);
          this.loadedRows += p.table.n;
          await this.compact(p, { force: true, rolledUp: now });
          this.options.log?.info({ subject: p.subject, month: p.month, rows_before: n, rows_after: rolled.n }, `meter records of ${p.subject} in ${p.month} rolled up to 15 minutes (storage.minute_records_days)`);
          if (!wasLoaded) this.unload(p);
        } catch (err) {
          this.options.log?.error({ err, subject: p.subject, month: p.month }, 'rolling up old meter records failed; they stay as they are');
        }
      }
    }
  }

  /** Runs the roll-up of old months now (tests; the hub does it with its maintenance). */
  rollUpNow(): Promise<void> {
    return this.exclusive(() => this.rollUpOld(this.now()));
  }

  /** Compacts every partition that has a log (tests and benchmarks; the hub does it in the background). */
  compactAll(): Promise<void> {
    return this.exclusive(async () => {
      for (const m of this.parts.values()) for (const p of m.values()) if (p.logSize > 0) await this.compact(p);
    });
  }

  async close(): Promise<void> {
    await this.exclusive(async () => {
      for (const m of this.parts.values()) {
        for (const p of m.values()) {
          await p.fh?.close().catch(() => undefined);
          p.fh = undefined;
        }
      }
    }).catch(() => undefined);
    this.closed = true;
  }

  // ------------------------------------------------------------------ reading

  /** Subjects that have records, with how many rows and the time they cover. */
  subjects(): { subject: string; months: number; rows: number; firstTime: number | null; lastTime: number | null }[] {
    return [...this.parts].map(([subject, months]) => {
      let rows = 0;
      let firstTime: number | null = null;
      let lastTime: number | null = null;
      const span = (a: number | null | undefined, b: number | null | undefined) => {
        if (a != null && (firstTime === null || a < firstTime)) firstTime = a;
        if (b != null && (lastTime === null || b > lastTime)) lastTime = b;
      };
      for (const p of months.values()) {
        if (!p.table && p.logSize === 0) {
          rows += p.seg?.intervals ?? 0;
          span(p.seg?.firstTime, p.seg?.lastTime);
          continue;
        }
        const t = this.load(p);
        for (let i = 0; i < t.n; i++) {
          if (!t.live[i] || isRegister(t.flags[i])) continue;
          rows++;
          span(t.start[i], t.end[i]);
        }
      }
      return { subject, months: months.size, rows, firstTime, lastTime };
    });
  }

  has(subject: string): boolean {
    return this.parts.has(subject);
  }

  /** Every subject with a partition. */
  subjectIds(): string[] {
    return [...this.parts.keys()];
  }

  private partitionsFor(subject: string, start: number, end: number): Partition[] {
    return monthsIn(this.parts.get(subject), start, end);
  }

  /**
   * Stored interval rows of a subject overlapping `[start, end)` whose flow (direction × tariff
   * rate, 0..5) is in `flows` (all when omitted), with their references when `labels` is set.
   */
  intervals(subject: string, start: number, end: number, opts: { flows?: ReadonlySet<number>; labels?: boolean; session?: string } = {}): IntervalSet {
    const out = new IntervalBuilder(opts.labels ?? opts.session !== undefined);
    const parts = opts.session !== undefined ? [...(this.sessionIndex.get(opts.session) ?? [])].filter((p) => p.subject === subject) : this.partitionsFor(subject, start, end);
    for (const p of parts) pushIntervals(out, this.load(p), start, end, opts);
    return out.build();
  }

  /** About how many rows of a subject fall in `[start, end)`, from partition sizes alone (nothing is loaded). */
  estimateRows(subject: string, start: number, end: number): number {
    let rows = 0;
    for (const p of this.partitionsFor(subject, start, end)) {
      const from = monthStart(p.month);
      const to = monthStart(nextMonth(p.month));
      const share = Math.max(0, Math.min(end, to) - Math.max(start, from)) / (to - from);
      rows += share * (p.table ? p.table.liveRows : (p.seg?.rows ?? 0) + p.logOps);
    }
    return rows;
  }

  /** Subjects holding rows of a session. */
  sessionSubjects(session: string): string[] {
    return [...new Set([...(this.sessionIndex.get(session) ?? [])].map((p) => p.subject))];
  }

  /**
   * 15-minute buckets of a subject lying inside `[start, end)` (both on the 15-minute grid), as
   * intervals. Partitions not in memory are read from their segment's bucket section alone.
   */
  buckets(subject: string, start: number, end: number, flows?: ReadonlySet<number>): IntervalSet {
    if (start % BUCKET_MS !== 0 || end % BUCKET_MS !== 0) throw new Error('bucket windows must lie on the 15-minute grid');
    const out = new IntervalBuilder(false);
    for (const p of this.partitionsFor(subject, start, end)) {
      let b: BucketColumns;
      if (p.table || p.logSize > 0 || !p.seg) b = this.load(p).buckets();
      else {
        const file = this.segFile(p);
        const seg = p.seg;
        const cached = this.bucketCache.get(file);
        if (cached) b = cached;
        else {
          try {
            b = withFile(file, (read) => decodeBuckets(readSection(read, seg.sections.buckets, 'buckets')));
            if (this.bucketCache.size > 256) this.bucketCache.clear();
            this.bucketCache.set(file, b);
          } catch (err) {
            if (!(err instanceof CorruptDataError)) throw err;
            this.segmentDamaged(p, seg.sections.buckets.offset, err);
            b = this.load(p).buckets();
          }
        }
      }
      pushBuckets(out, b, start, end, flows);
    }
    return out.build();
  }

  /**
   * Register points of a stream around `[from, to]`: the last one before, every one inside and the
   * first one after (what splicing late readings needs). In-order readings touch no partition.
   */
  pointsAround(subject: string, flags: number, from: number, to: number): RegisterPoint[] {
    const st = this.streams.get(streamKey(subject, flags));
    if (!st) return [];
    if (from > st.last.time) return [st.last];
    const flow = flowOf(flags);
    const months = this.parts.get(subject);
    if (!months) return [];
    const sorted = [...months.keys()].sort();
    const pointsIn = (month: string) => {
      const p = months.get(month);
      if (!p) return [];
      const t = this.load(p);
      const pts: RegisterPoint[] = [];
      for (let i = 0; i < t.n; i++) {
        if (t.live[i] && isRegister(t.flags[i]) && flowOf(t.flags[i]) === flow) pts.push({ time: t.start[i], valueWh: t.value[i], session: t.str(t.session[i]), ref: t.str(t.ref[i]) });
      }
      return pts.sort((a, b) => a.time - b.time);
    };
    const out: RegisterPoint[] = [];
    let before: RegisterPoint | undefined;
    for (let k = sorted.length - 1; k >= 0 && !before; k--) {
      if (sorted[k] > monthOf(from)) continue;
      if (monthOf(st.first) > sorted[k]) break;
      const pts = pointsIn(sorted[k]).filter((x) => x.time < from);
      before = pts[pts.length - 1];
    }
    if (before) out.push(before);
    for (const m of sorted) if (m >= monthOf(from) && m <= monthOf(to)) out.push(...pointsIn(m).filter((x) => x.time >= from && x.time <= to));
    let after: RegisterPoint | undefined;
    for (const m of sorted) {
      if (m < monthOf(to) || after) continue;
      after = pointsIn(m).find((x) => x.time > to);
    }
    if (after) out.push(after);
    return out;
  }

  /** Memory held by loaded partitions (rows). */
  get rowsInMemory() {
    return this.loadedRows;
  }
}

/** Collects intervals into growable columns. */
export class IntervalBuilder {
  private n = 0;
  private start = new Float64Array(1024);
  private end = new Float64Array(1024);
  private energy = new Float64Array(1024);
  private flags = new Uint8Array(1024);
  private confidence = new Float32Array(1024);
  private session?: (string | null)[];
  private ref?: (string | null)[];
  constructor(labels: boolean) {
    if (labels) {
      this.session = [];
      this.ref = [];
    }
  }
  push(start: number, end: number, energy: number, flags: number, confidence: number, session: string | null, ref: string | null) {
    if (this.n === this.start.length) {
      const cap = this.n * 2;
      const g = <T extends Float64Array | Float32Array | Uint8Array>(a: T, Type: { new (n: number): T }) => grownColumn(a, Type, cap);
      this.start = g(this.start, Float64Array);
      this.end = g(this.end, Float64Array);
      this.energy = g(this.energy, Float64Array);
      this.flags = g(this.flags, Uint8Array);
      this.confidence = g(this.confidence, Float32Array);
    }
    const i = this.n++;
    this.start[i] = start;
    this.end[i] = end;
    this.energy[i] = energy;
    this.flags[i] = flags;
    this.confidence[i] = confidence;
    this.session?.push(session);
    this.ref?.push(ref);
  }
  build(): IntervalSet {
    const n = this.n;
    return {
      n,
      start: this.start.subarray(0, n),
      end: this.end.subarray(0, n),
      energy: this.energy.subarray(0, n),
      flags: this.flags.subarray(0, n),
      confidence: this.confidence.subarray(0, n),
      session: this.session,
      ref: this.ref,
    };
  }
}

/** Encodes operations as row columns (a delete carries FLAG_DELETE). */
export function opsToColumns(ops: readonly RowOp[]): RowColumns {
  const cols = emptyColumns(ops.length);
  const ids = new Map<string, number>();
  const intern = (s: string | null) => {
    if (s === null) return -1;
    let id = ids.get(s);
    if (id === undefined) {
      id = cols.strings.length;
      cols.strings.push(s);
      ids.set(s, id);
    }
    return id;
  };
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i];
    cols.start[i] = o.start;
    cols.end[i] = o.end;
    cols.value[i] = o.value;
    cols.confidence[i] = o.confidence;
    cols.flags[i] = (o.flags & 15) | (o.op === 'del' ? FLAG_DELETE : 0);
    cols.session[i] = intern(o.session);
    cols.ref[i] = intern(o.ref);
  }
  return cols;
}

function writeSyncAll(fd: number, bytes: Buffer, off: number): number {
  const n = writeSync(fd, bytes, off, bytes.length - off);
  if (n <= 0) throw new Error('write made no progress');
  return n;
}

/** Runs `fn` with a positional reader over a file opened once (a concurrent rename cannot mix two versions). */
function withFile<T>(file: string, fn: (read: (offset: number, length: number) => Buffer) => T): T {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    return fn((offset, length) => {
      const len = Math.max(0, Math.min(length, size - offset));
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    });
  } finally {
    closeSync(fd);
  }
}

/** Writes a new file and makes it durable (damaged bytes kept aside must survive a crash). */
function writeDurable(file: string, bytes: Buffer) {
  // never over an existing file: what is kept aside stays as it was
  const fd = openSync(file, 'wx', FILE_MODE);
  try {
    for (let off = 0; off < bytes.length; ) off += writeSyncAll(fd, bytes, off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(file);
    } catch {
      // gone
    }
    throw err;
  }
  closeSync(fd);
}
