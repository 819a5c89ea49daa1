import pg from 'pg';
import type { Logger } from '../api/index.js';
import { WriteTimes } from '../core/store/write-times.js';
import type { RowColumns } from './codec.js';
import type { RegisterPoint } from './cumulative.js';
import { PartitionTable } from './partition.js';
import { BUCKET_MS, MAX_RECORD_MS, flowOf, isRegister, monthOf, monthStart, monthsFor, nextMonth, type RowOp } from './records.js';
import { rollUpColumns } from './retention.js';
import { monthsIn, pushBuckets, pushIntervals } from './table-query.js';
import { IntervalBuilder, MeterStoreError, type DamageReport, type IntervalSet, type MeterStoreHealth, type WriteOutcome } from './store.js';
import type { MeterRecordStore, SubjectSummary } from './store-api.js';

/**
 * Schema migrations of the PostgreSQL meter store, in order; `homeflex_schema` notes how many ran.
 * Every table has the site id as its first key column: several hubs share one database.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meter_records (
     site_id text NOT NULL,
     subject text NOT NULL,
     start_ms double precision NOT NULL,
     end_ms double precision NOT NULL,
     flags smallint NOT NULL,
     value double precision NOT NULL,
     confidence real NOT NULL,
     session text,
     ref text,
     PRIMARY KEY (site_id, subject, start_ms, end_ms, flags)
   );
   CREATE INDEX meter_records_session ON meter_records (site_id, session) WHERE session IS NOT NULL;
   CREATE TABLE meter_buckets (
     site_id text NOT NULL,
     subject text NOT NULL,
     quarter bigint NOT NULL,
     flow smallint NOT NULL,
     energy double precision NOT NULL,
     confidence real NOT NULL,
     PRIMARY KEY (site_id, subject, quarter, flow)
   );
   CREATE TABLE meter_months (
     site_id text NOT NULL,
     subject text NOT NULL,
     month text NOT NULL,
     rolled_up timestamptz,
     PRIMARY KEY (site_id, subject, month)
   );`,
];

/** The schema version this homeflex writes. */
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

export interface PgMeterStoreOptions {
  /** postgres://user:password@host:port/database (a unix socket directory as ?host=/run/postgresql). */
  url: string;
  /** The site whose records this store reads and writes (every row carries it). */
  siteId: string;
  /** How long a write waits for an unreachable server before it is refused (ms, default 10 s). */
  writeWaitMs?: number;
  /** Months that ended longer ago than this are rolled up to 15-minute records (storage.minute_records_days). */
  rollUpAfterMs?: number;
  /** Opens without writing (no migrations; writes are refused). */
  readOnly?: boolean;
  log?: Logger;
  now?: () => number;
}

const KEY_FLAGS = 15;
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENOENT', '57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004']);

/** A failure that says the server is not reachable (worth waiting for), not that the data is wrong. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && CONNECTION_CODES.has(e.code)) return true;
  return /Connection terminated|connect ECONN|terminating connection|the database system is (starting|shutting) up|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(e.message ?? '');
}

/** Where the url points, without its password (for messages). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(a url that does not parse)';
  }
}

interface Month {
  table: PartitionTable;
  rolledUp: number | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The meter store in PostgreSQL (`storage.meters.postgres`): raw records in `meter_records`, their
 * 15-minute buckets in `meter_buckets` (kept in the same transaction as the records), months rolled
 * up in `meter_months`. A write batch is one transaction and is acknowledged once it committed;
 * a record with the key of a stored one (subject, start, end, direction, rate) replaces it.
 *
 * The site's rows are also held in memory (loaded at open, updated after each commit), and every
 * read of the hub answers from there with the file store's code, so costs and savings are the same
 * for both stores. Other sites in the database are read with `PgMeterStore.open` of their site id.
 */
export class PgMeterStore implements MeterRecordStore {
  readonly problems: string[] = [];
  readonly damage: DamageReport[] = [];
  private readonly months = new Map<string, Map<string, Month>>();
  private readonly sessionIndex = new Map<string, Set<string>>();
  private readonly lastPoint = new Map<string, RegisterPoint>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private writeFailure?: { error: string; since: number };
  private readonly now: () => number;
  private readonly writeWaitMs: number;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: PgMeterStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.writeWaitMs = options.writeWaitMs ?? 10_000;
  }

  get siteId() {
    return this.options.siteId;
  }

  /** Whether the database holds records of a site. */
  async siteExists(siteId: string): Promise<boolean> {
    const r = await this.pool.query<{ ok: boolean }>('SELECT EXISTS (SELECT 1 FROM meter_records WHERE site_id = $1) AS ok', [siteId]);
    return r.rows[0].ok;
  }

  /** Another site's records in the same database, read-only (close it after use). */
  openSite(siteId: string): Promise<PgMeterStore> {
    return PgMeterStore.open({ ...this.options, siteId, readOnly: true, log: undefined });
  }

  /** Connects, runs the schema migrations and loads the site's rows. Fails with the server's answer when it cannot. */
  static async open(options: PgMeterStoreOptions): Promise<PgMeterStore> {
    const pool = new pg.Pool({ connectionString: options.url, max: 4, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000, allowExitOnIdle: true, application_name: `homeflex ${options.siteId}` });
    // a server going away later is a failed query, not an uncaught error
    pool.on('error', (err) => options.log?.debug({ err }, 'idle PostgreSQL connection lost'));
    const store = new PgMeterStore(pool, options);
    try {
      if (!options.readOnly) await migrate(pool);
      else await checkVersion(pool);
      await store.load();
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof MeterStoreError) throw err;
      throw new MeterStoreError(`PostgreSQL meter store at ${redactUrl(options.url)}: ${(err as Error).message}`);
    }
    return store;
  }

  private async load() {
    const res = await this.pool.query({
      text: 'SELECT subject, start_ms, end_ms, flags, value, confidence, session, ref FROM meter_records WHERE site_id = $1 ORDER BY subject, start_ms',
      values: [this.options.siteId],
      rowMode: 'array',
    });
    const groups = new Map<string, RowOp[]>();
    for (const [subject, start, end, flags, value, confidence, session, ref] of res.rows as [string, number, number, number, number, number, string | null, string | null][]) {
      const key = `${subject}\n${monthOf(start)}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push({ op: 'put', subject, start, end, flags, value, confidence, session, ref });
    }
    for (const [key, ops] of groups) {
      const [subject, month] = key.split('\n');
      const m = this.month(subject, month, true)!;
      m.table.apply(ops);
      this.note(subject, ops);
    }
    const rolled = await this.pool.query<{ subject: string; month: string; at: number }>('SELECT subject, month, (extract(epoch FROM rolled_up) * 1000)::float8 AS at FROM meter_months WHERE site_id = $1 AND rolled_up IS NOT NULL', [this.options.siteId]);
    for (const r of rolled.rows) {
      const m = this.month(r.subject, r.month, true)!;
      m.rolledUp = r.at;
    }
  }

  private month(subject: string, month: string, create: boolean): Month | undefined {
    let bySubject = this.months.get(subject);
    let m = bySubject?.get(month);
    if (m || !create) return m;
    if (!bySubject) this.months.set(subject, (bySubject = new Map()));
    m = { table: new PartitionTable(), rolledUp: null };
    bySubject.set(month, m);
    return m;
  }

  /** Keeps the session index and the last register point of each stream up to date. */
  private note(subject: string, ops: readonly RowOp[]) {
    for (const op of ops) {
      if (op.op !== 'put') continue;
      if (op.session !== null) {
        let set = this.sessionIndex.get(op.session);
        if (!set) this.sessionIndex.set(op.session, (set = new Set()));
        set.add(subject);
      }
      if (isRegister(op.flags)) {
        const key = `${subject}|${flowOf(op.flags)}`;
        const last = this.lastPoint.get(key);
        if (!last || op.start >= last.time) this.lastPoint.set(key, { time: op.start, valueWh: op.value, session: op.session, ref: op.ref });
      }
    }
  }

  get health(): MeterStoreHealth {
    const writeError = this.writeFailure ? { error: this.writeFailure.error, since: new Date(this.writeFailure.since).toISOString() } : null;
    return { ok: !writeError, writeError, damaged: [] };
  }

  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new MeterStoreError('the meter store is closed');
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  write(ops: readonly RowOp[]): Promise<WriteOutcome[]> {
    return this.exclusive(() => this.writeTimes.time(() => this.writeNow(ops)));
  }

  /** How long writes took, waiting for an unreachable server included (GET /metrics). */
  readonly writeTimes = new WriteTimes();

  async writeNow(ops: readonly RowOp[]): Promise<WriteOutcome[]> {
    if (this.options.readOnly) throw new MeterStoreError('the meter store was opened read-only');
    const outcomes: WriteOutcome[] = new Array(ops.length);
    const groups = new Map<string, { subject: string; month: string; idx: number[] }>();
    for (let i = 0; i < ops.length; i++) {
      const month = monthOf(ops[i].start);
      const key = `${ops[i].subject}\n${month}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { subject: ops[i].subject, month, idx: [] }));
      g.idx.push(i);
    }
    // what each operation would do, decided against the rows in memory (which mirror the database)
    const planned: { subject: string; month: string; effective: RowOp[] }[] = [];
    for (const g of groups.values()) {
      const m = this.month(g.subject, g.month, false);
      if (m?.rolledUp) {
        const error = `not stored: ${g.month} of ${g.subject} is past storage.minute_records_days and was rolled up to 15-minute records on ${new Date(m.rolledUp).toISOString()}; records of it are no longer taken`;
        g.idx.forEach((i) => (outcomes[i] = { error, refused: true }));
        continue;
      }
      const mine = g.idx.map((i) => ops[i]);
      const { outcomes: o, effective } = (m?.table ?? new PartitionTable()).plan(mine);
      g.idx.forEach((i, k) => (outcomes[i] = o[k]));
      if (effective.length) planned.push({ subject: g.subject, month: g.month, effective });
    }
    if (!planned.length) return outcomes;
    try {
      await this.withRetry((client) => this.commit(client, planned.flatMap((p) => p.effective)));
    } catch (err) {
      const error = `not stored: ${this.failureText(err)}`;
      for (let i = 0; i < outcomes.length; i++) if (outcomes[i] === 'stored') outcomes[i] = { error };
      // outcomes 'same', 'ignored' and 'absent' changed nothing: they stand
      return outcomes;
    }
    for (const p of planned) {
      this.month(p.subject, p.month, true)!.table.apply(p.effective);
      this.note(p.subject, p.effective);
    }
    return outcomes;
  }

  private failureText(err: unknown) {
    return isConnectionError(err) ? `PostgreSQL at ${redactUrl(this.options.url)} is not reachable (${(err as Error).message})` : `PostgreSQL refused the write (${(err as Error).message})`;
  }

  /**
   * Runs `fn` in a transaction; while the server is unreachable it is tried again until
   * `writeWaitMs` has passed, then the last error is thrown. The first failure is logged (once
   * until a transaction succeeds again) and shown in health.
   */
  private async withRetry<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const deadline = this.now() + this.writeWaitMs;
    let delay = 100;
    for (;;) {
      let client: pg.PoolClient | undefined;
      // a server dying under a checked-out connection is also emitted on it: the query's rejection tells
      const onError = () => undefined;
      try {
        client = await this.pool.connect();
        client.on('error', onError);
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        client.off('error', onError);
        client.release();
        this.succeeded();
        return out;
      } catch (err) {
        if (client) {
          await client.query('ROLLBACK').catch(() => undefined);
          client.off('error', onError);
          // a connection that failed is thrown away, not handed to the next write
          client.release(isConnectionError(err) ? (err as Error) : undefined);
        }
        this.failed(err);
        if (!isConnectionError(err) || this.closed || this.now() + delay > deadline) throw err;
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  private failed(err: unknown) {
    const error = this.failureText(err);
    if (!this.writeFailure) {
      this.writeFailure = { error, since: this.now() };
      this.options.log?.error({ err }, `meter records cannot be stored: ${error}; writes wait up to ${Math.round(this.writeWaitMs / 1000)} s and are then refused with store_unavailable until the server answers again`);
    } else this.writeFailure.error = error;
  }

  private succeeded() {
    if (!this.writeFailure) return;
    this.options.log?.info({ failing_for_s: Math.round((this.now() - this.writeFailure.since) / 1000) }, 'meter records are stored in PostgreSQL again');
    this.writeFailure = undefined;
  }

  /** Writes operations (in order) and recomputes the 15-minute buckets they touch. */
  private async commit(client: pg.PoolClient, effective: readonly RowOp[]) {
    // the last operation on a key is what stays
    const last = new Map<string, RowOp>();
    for (const op of effective) last.set(`${op.subject}\n${op.start}\n${op.end}\n${op.flags & KEY_FLAGS}`, op);
    const puts = [...last.values()].filter((o) => o.op === 'put');
    const dels = [...last.values()].filter((o) => o.op === 'del');
    const site = this.options.siteId;
    if (dels.length) {
      await client.query(
        `DELETE FROM meter_records r USING unnest($2::text[], $3::float8[], $4::float8[], $5::smallint[]) AS d(subject, start_ms, end_ms, flags)
         WHERE r.site_id = $1 AND r.subject = d.subject AND r.start_ms = d.start_ms AND r.end_ms = d.end_ms AND r.flags = d.flags`,
        [site, dels.map((o) => o.subject), dels.map((o) => o.start), dels.map((o) => o.end), dels.map((o) => o.flags & KEY_FLAGS)],
      );
    }
    if (puts.length) await upsertRecords(client, site, puts);
    const spans = new Map<string, { lo: number; hi: number }>();
    for (const op of last.values()) {
      if (isRegister(op.flags)) continue;
      const lo = Math.floor(op.start / BUCKET_MS);
      const hi = Math.max(lo + 1, Math.ceil(op.end / BUCKET_MS));
      const s = spans.get(op.subject);
      if (!s) spans.set(op.subject, { lo, hi });
      else {
        s.lo = Math.min(s.lo, lo);
        s.hi = Math.max(s.hi, hi);
      }
    }
    for (const [subject, { lo, hi }] of spans) await rebucket(client, site, subject, lo, hi);
  }

  maintain(): Promise<void> {
    return this.exclusive(() => this.rollUpOld());
  }

  compactAll(): Promise<void> {
    return Promise.resolve();
  }

  rollUpNow(): Promise<void> {
    return this.exclusive(() => this.rollUpOld());
  }

  /** Months past storage.minute_records_days become 15-minute records, in one transaction each. */
  private async rollUpOld() {
    const after = this.options.rollUpAfterMs;
    if (after === undefined || this.options.readOnly) return;
    const now = this.now();
    for (const [subject, months] of this.months) {
      for (const [month, m] of months) {
        if (m.rolledUp || monthStart(nextMonth(month)) + after > now) continue;
        try {
          const before = m.table.liveColumns();
          const rolled = rollUpColumns(before);
          const ops = columnsToOps(subject, rolled);
          await this.withRetry(async (client) => {
            const from = monthStart(month);
            await client.query('DELETE FROM meter_records WHERE site_id = $1 AND subject = $2 AND start_ms >= $3 AND start_ms < $4', [this.options.siteId, subject, from, monthStart(nextMonth(month))]);
            if (ops.length) await upsertRecords(client, this.options.siteId, ops);
            await client.query(
              'INSERT INTO meter_months (site_id, subject, month, rolled_up) VALUES ($1, $2, $3, to_timestamp($4 / 1000.0)) ON CONFLICT (site_id, subject, month) DO UPDATE SET rolled_up = excluded.rolled_up',
              [this.options.siteId, subject, month, now],
            );
            let lo = Math.floor(from / BUCKET_MS);
            let hi = Math.ceil(monthStart(nextMonth(month)) / BUCKET_MS);
            for (let i = 0; i < before.n; i++) hi = Math.max(hi, Math.ceil(before.end[i] / BUCKET_MS));
            lo = Math.min(lo, hi - 1);
            await rebucket(client, this.options.siteId, subject, lo, hi);
          });
          m.table = PartitionTable.fromColumns(rolled);
          m.rolledUp = now;
          this.options.log?.info({ subject, month, rows_before: before.n, rows_after: rolled.n }, `meter records of ${subject} in ${month} rolled up to 15 minutes (storage.minute_records_days)`);
        } catch (err) {
          this.options.log?.error({ err, subject, month }, 'rolling up old meter records failed; they stay as they are');
        }
      }
    }
  }

  async close(): Promise<void> {
    await this.exclusive(() => undefined).catch(() => undefined);
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }

  // ------------------------------------------------------------------ reading (from memory)

  subjects(): SubjectSummary[] {
    return [...this.months].map(([subject, months]) => {
      let rows = 0;
      let firstTime: number | null = null;
      let lastTime: number | null = null;
      for (const { table: t } of months.values()) {
        for (let i = 0; i < t.n; i++) {
          if (!t.live[i] || isRegister(t.flags[i])) continue;
          rows++;
          if (firstTime === null || t.start[i] < firstTime) firstTime = t.start[i];
          if (lastTime === null || t.end[i] > lastTime) lastTime = t.end[i];
        }
      }
      return { subject, months: months.size, rows, firstTime, lastTime };
    });
  }

  has(subject: string): boolean {
    return this.months.has(subject);
  }

  subjectIds(): string[] {
    return [...this.months.keys()];
  }

  private tablesFor(subject: string, start: number, end: number): PartitionTable[] {
    return monthsIn(this.months.get(subject), start, end).map((m) => m.table);
  }

  intervals(subject: string, start: number, end: number, opts: { flows?: ReadonlySet<number>; labels?: boolean; session?: string } = {}): IntervalSet {
    const out = new IntervalBuilder(opts.labels ?? opts.session !== undefined);
    let tables: PartitionTable[];
    if (opts.session !== undefined) tables = this.sessionIndex.get(opts.session)?.has(subject) ? [...(this.months.get(subject)?.values() ?? [])].map((m) => m.table) : [];
    else tables = this.tablesFor(subject, start, end);
    for (const t of tables) pushIntervals(out, t, start, end, opts);
    return out.build();
  }

  estimateRows(subject: string, start: number, end: number): number {
    let rows = 0;
    const months = this.months.get(subject);
    if (!months) return 0;
    for (const [month, m] of months) {
      const from = monthStart(month);
      const to = monthStart(nextMonth(month));
      if (Number.isFinite(start) && Number.isFinite(end) && !monthsFor(start, end).includes(month)) continue;
      const share = Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, Math.min(end, to) - Math.max(start, from)) / (to - from) : 1;
      rows += share * m.table.liveRows;
    }
    return rows;
  }

  sessionSubjects(session: string): string[] {
    return [...(this.sessionIndex.get(session) ?? [])];
  }

  buckets(subject: string, start: number, end: number, flows?: ReadonlySet<number>): IntervalSet {
    if (start % BUCKET_MS !== 0 || end % BUCKET_MS !== 0) throw new Error('bucket windows must lie on the 15-minute grid');
    const out = new IntervalBuilder(false);
    for (const t of this.tablesFor(subject, start, end)) pushBuckets(out, t.buckets(), start, end, flows);
    return out.build();
  }

  pointsAround(subject: string, flags: number, from: number, to: number): RegisterPoint[] {
    const flow = flowOf(flags);
    const last = this.lastPoint.get(`${subject}|${flow}`);
    if (!last) return [];
    if (from > last.time) return [last];
    const pts: RegisterPoint[] = [];
    for (const { table: t } of this.months.get(subject)?.values() ?? []) {
      for (let i = 0; i < t.n; i++) {
        if (t.live[i] && isRegister(t.flags[i]) && flowOf(t.flags[i]) === flow) pts.push({ time: t.start[i], valueWh: t.value[i], session: t.str(t.session[i]), ref: t.str(t.ref[i]) });
      }
    }
    pts.sort((a, b) => a.time - b.time);
    const out: RegisterPoint[] = [];
    let k = 0;
    while (k < pts.length && pts[k].time < from) k++;
    if (k > 0) out.push(pts[k - 1]);
    while (k < pts.length && pts[k].time <= to) out.push(pts[k++]);
    if (k < pts.length) out.push(pts[k]);
    return out;
  }
}

function columnsToOps(subject: string, cols: RowColumns): RowOp[] {
  const ops: RowOp[] = [];
  const str = (i: number) => (i < 0 ? null : cols.strings[i]);
  for (let i = 0; i < cols.n; i++) ops.push({ op: 'put', subject, start: cols.start[i], end: cols.end[i], flags: cols.flags[i], value: cols.value[i], confidence: cols.confidence[i], session: str(cols.session[i]), ref: str(cols.ref[i]) });
  return ops;
}

async function upsertRecords(client: pg.PoolClient, site: string, puts: readonly RowOp[]) {
  const CHUNK = 20_000;
  for (let k = 0; k < puts.length; k += CHUNK) {
    const part = puts.slice(k, k + CHUNK);
    await client.query(
      `INSERT INTO meter_records (site_id, subject, start_ms, end_ms, flags, value, confidence, session, ref)
       SELECT $1, * FROM unnest($2::text[], $3::float8[], $4::float8[], $5::smallint[], $6::float8[], $7::real[], $8::text[], $9::text[])
       ON CONFLICT (site_id, subject, start_ms, end_ms, flags) DO UPDATE SET value = excluded.value, confidence = excluded.confidence, session = excluded.session, ref = excluded.ref`,
      [site, part.map((o) => o.subject), part.map((o) => o.start), part.map((o) => o.end), part.map((o) => o.flags & KEY_FLAGS), part.map((o) => o.value), part.map((o) => o.confidence), part.map((o) => o.session), part.map((o) => o.ref)],
    );
  }
}

/**
 * Recomputes the 15-minute buckets of a subject in quarters [lo, hi): each interval row's energy
 * spread pro rata in time over the quarters it covers, the lowest confidence kept (as the file
 * store's segments do).
 */
export async function rebucket(client: pg.ClientBase, site: string, subject: string, lo: number, hi: number) {
  await client.query('DELETE FROM meter_buckets WHERE site_id = $1 AND subject = $2 AND quarter >= $3 AND quarter < $4', [site, subject, lo, hi]);
  await client.query(
    `INSERT INTO meter_buckets (site_id, subject, quarter, flow, energy, confidence)
     SELECT $1, $2, q, r.flags & 7,
            sum(CASE WHEN ceil(r.end_ms / ${BUCKET_MS}) - floor(r.start_ms / ${BUCKET_MS}) <= 1 THEN r.value
                     ELSE r.value / (r.end_ms - r.start_ms) * (least(r.end_ms, (q + 1) * ${BUCKET_MS}::float8) - greatest(r.start_ms, q * ${BUCKET_MS}::float8)) END),
            min(r.confidence)
     FROM meter_records r,
          generate_series(floor(r.start_ms / ${BUCKET_MS})::bigint, greatest(floor(r.start_ms / ${BUCKET_MS}), ceil(r.end_ms / ${BUCKET_MS}) - 1)::bigint) AS q
     WHERE r.site_id = $1 AND r.subject = $2 AND r.flags & 8 = 0
       AND r.start_ms >= $5 AND r.start_ms < $4 * ${BUCKET_MS}::float8 AND r.end_ms >= $3 * ${BUCKET_MS}::float8
       AND q >= $3 AND q < $4
     GROUP BY q, r.flags & 7`,
    [site, subject, lo, hi, lo * BUCKET_MS - MAX_RECORD_MS],
  );
}

async function checkVersion(pool: pg.Pool) {
  const exists = await pool.query("SELECT to_regclass('homeflex_schema') IS NOT NULL AS ok");
  if (!exists.rows[0].ok) throw new MeterStoreError('the database holds no homeflex meter store yet (no homeflex_schema table); open it once with a hub or `homeflex migrate-store`');
  const v = await pool.query<{ version: number }>("SELECT version FROM homeflex_schema WHERE component = 'meters'");
  const version = v.rows[0]?.version ?? 0;
  if (version > PG_SCHEMA_VERSION) throw new MeterStoreError(`the database's meter store is schema version ${version}, this homeflex reads ${PG_SCHEMA_VERSION}; upgrade homeflex`);
}

/** Brings the schema to PG_SCHEMA_VERSION, one transaction per step, under an advisory lock (hubs may start at once). */
async function migrate(pool: pg.Pool) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('homeflex_schema'))");
    await client.query('CREATE TABLE IF NOT EXISTS homeflex_schema (component text PRIMARY KEY, version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())');
    const v = await client.query<{ version: number }>("SELECT version FROM homeflex_schema WHERE component = 'meters'");
    const version = v.rows[0]?.version ?? 0;
    if (version > PG_SCHEMA_VERSION) throw new MeterStoreError(`the database's meter store is schema version ${version}, this homeflex knows up to ${PG_SCHEMA_VERSION}; upgrade homeflex`);
    for (let k = version; k < PG_SCHEMA_VERSION; k++) await client.query(MIGRATIONS[k]);
    if (version < PG_SCHEMA_VERSION) {
      await client.query(
        "INSERT INTO homeflex_schema (component, version) VALUES ('meters', $1) ON CONFLICT (component) DO UPDATE SET version = excluded.version, migrated_at = now()",
        [PG_SCHEMA_VERSION],
      );
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
