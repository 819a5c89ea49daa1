import { randomBytes } from 'node:crypto';
import { ApiError, type Device, type Direction, type EpochMs, type Logger, type MeterReading, type PriceSeries, type SiteInfo, type TimeWindow } from '../api/index.js';
import type { PriceLookup } from '../core/services.js';
import {
  AGGREGATIONS,
  CostAccumulator,
  averageRate,
  emptyCell,
  localIso,
  mergeCell,
  onBucketGrid,
  periodGrid,
  recordCosts,
  round,
  totalCost,
  type Aggregation,
  type CostCell,
  type PricesByRate,
} from './costs.js';
import { implausibleReadings, sortReadings, spliceReadings, type RegisterPoint } from './cumulative.js';
import {
  BUCKET_MS,
  DAY,
  FLAG_EXPORT,
  FLAG_REGISTER,
  FieldError,
  HOUR,
  MAX_BATCH,
  MAX_RECORD_WH,
  deviceSubject,
  flagsOf,
  locationSubject,
  parseCumulative,
  parseIntervalRecord,
  parseTime,
  subjectId,
  subjectKind,
  type RowOp,
} from './records.js';
import { DEVICE_KINDS, dailyWindows, evBaseline, localIntakeAsExport, figures, hvacBaseline, localTimeOn, storageSavings, switchedBaseline, HVAC_SMOOTHING_BUCKETS, type DeviceKind, type SavingsFigures } from './savings.js';
import { IntervalBuilder, type IntervalSet, type WriteOutcome } from './store.js';
import type { MeterRecordStore } from './store-api.js';
import { replaySelfConsumption, type SelfConsumptionBattery } from '../optimiser/self-consumption.js';
import { capacityCost, flowsFromNet } from './bill.js';
import type { ApiMeterCap } from './meter-cap.js';

/** A device as metering sees it: the running device (capabilities) and its YAML entry, either may be missing. */
export interface DeviceInfo {
  id: string;
  device?: Device;
  config?: Record<string, unknown>;
}

export interface MeteringContext {
  store: MeterRecordStore;
  site: SiteInfo;
  /** The tariff part's price lookup, once there is one. */
  prices: () => PriceLookup | undefined;
  devices: () => DeviceInfo[];
  /** Charging sessions the hub knows (plug-in times for the EV baseline). */
  sessions?: () => Record<string, { device_id: string; start: string; plug_in?: string }>;
  log?: Logger;
  /** Caps the meters that only the API feeds (storage.max_api_meters). */
  apiMeters?: ApiMeterCap;
  /** The device whose `grid` channel is the site's meter; other grid channels are sub-meters (`device:grid`). */
  gridMeter?: () => string | undefined;
}

export interface MeterBatch {
  id: string;
  object: 'meter_batch';
  records_submitted: number;
  records_accepted: number;
  records_processed: number;
  failed_records: { record_num: number; record_reference_id: string | null; error: string }[];
  /** Forecasts (confidence < 1) not stored because an actual is kept for the same period. */
  ignored_records: { record_num: number; record_reference_id: string | null; reason: string }[];
  intervals_created?: number;
}

export interface CostQuery {
  direction: Direction;
  aggregation: Aggregation;
  includeTariff: boolean;
  window?: TimeWindow;
}

/** Most rows one NONE-aggregated answer may hold; beyond that the client is asked to aggregate. */
export const MAX_COST_ROWS = 100_000;
/** Adapter readings become a stored interval at most this often per counter (sessions starting or ending cut one short). */
export const READING_INTERVAL_MS = 60_000;
/** A counter that stands still is stored this often (one zero-energy record per idle hour). */
export const IDLE_INTERVAL_MS = 3_600_000;

const FLOWS: Record<Direction, ReadonlySet<number>> = { IMPORT: new Set([0, 2, 4]), EXPORT: new Set([1, 3, 5]) };
const ALL_FLOWS: ReadonlySet<number> = new Set([0, 1, 2, 3, 4, 5]);
const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

/** Interval columns of several sets in one. */
function concatSets(sets: IntervalSet[], labels: boolean): IntervalSet {
  const b = new IntervalBuilder(labels);
  for (const s of sets) for (let i = 0; i < s.n; i++) b.push(s.start[i], s.end[i], s.energy[i], s.flags[i], s.confidence[i], s.session?.[i] ?? null, s.ref?.[i] ?? null);
  return b.build();
}

type DeviceSavings = SavingsFigures & { device_id: string; kind: DeviceKind; baseline: string; warnings?: string[] } & Record<string, unknown>;
type Done = <T extends SavingsFigures>(figs: T, baseline: string) => DeviceSavings;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * Metering: takes records (API, cumulative registers, adapters' readings) into the store and
 * answers cost and savings questions about them with the tariff in force at the time.
 */
export class MeteringService {
  readonly store: MeterRecordStore;
  private readonly streams = new Map<string, { subject: string; flags: number; committed?: RegisterPoint; pending?: RegisterPoint }>();
  private readonly outbox: { subject: string; flags: number; point: RegisterPoint }[] = [];
  private flushLoop?: Promise<void>;
  private flushScheduled = false;
  private readonly refusedSubjects = new Set<string>();

  constructor(private readonly ctx: MeteringContext) {
    this.store = ctx.store;
  }

  get site() {
    return this.ctx.site;
  }

  // ------------------------------------------------------------------ records in

  /** `PUT /meters/interval`: every valid record is stored; each invalid one is listed with its index and reason. */
  async ingestIntervals(body: unknown): Promise<MeterBatch> {
    const records = Array.isArray(body) ? body : body && typeof body === 'object' ? [body] : undefined;
    if (!records) throw new ApiError(400, 'invalid_parameter', 'body: must be an array of meter records (or one record object)', { field: 'body' });
    if (records.length > MAX_BATCH) {
      throw new ApiError(413, 'too_many_records', `body: ${records.length} records in one request; at most ${MAX_BATCH.toLocaleString('en')} are accepted. Split them into several requests.`, { field: 'body', max_records: MAX_BATCH, records_submitted: records.length });
    }
    const batch: MeterBatch = { id: newId('bat'), object: 'meter_batch', records_submitted: records.length, records_accepted: 0, records_processed: 0, failed_records: [], ignored_records: [] };
    const ops: RowOp[] = [];
    const nums: number[] = [];
    const scope = { locationId: this.site.id };
    for (let i = 0; i < records.length; i++) {
      try {
        ops.push(parseIntervalRecord(records[i], scope));
        nums.push(i);
      } catch (err) {
        const r = records[i] as Record<string, unknown> | null;
        const ref = r && typeof r === 'object' && (typeof r.record_reference_id === 'string' || typeof r.record_reference_id === 'number') ? String(r.record_reference_id) : null;
        batch.failed_records.push({ record_num: i, record_reference_id: ref, error: err instanceof FieldError ? err.message : String(err) });
      }
    }
    const capped = this.capApiMeters(ops, nums, batch);
    batch.records_accepted = ops.length;
    if (!ops.length && capped) throw capped;
    if (!ops.length) return batch;
    const outcomes = await this.store.write(ops);
    this.tally(batch, outcomes, ops, nums);
    // records refused for what they are (a rolled-up month) are listed; only a store that cannot write is 503
    if (batch.records_processed === 0 && outcomes.some((o) => typeof o === 'object' && !o.refused)) {
      throw new ApiError(503, 'store_unavailable', `no record could be stored: ${(outcomes.find((o) => typeof o === 'object') as { error: string }).error}`);
    }
    return batch;
  }

  /** Takes the records of API meters past storage.max_api_meters out of `ops` into the batch's failures; the error to answer when none is left. */
  private capApiMeters(ops: RowOp[], nums: number[], batch: MeterBatch): ApiError | null {
    const refused = this.ctx.apiMeters?.check(ops.map((o) => o.subject));
    if (!refused?.size) return null;
    let k = 0;
    for (let i = 0; i < ops.length; i++) {
      const why = refused.get(ops[i].subject);
      if (why) {
        batch.failed_records.push({ record_num: nums[i], record_reference_id: ops[i].ref, error: why });
        continue;
      }
      ops[k] = ops[i];
      nums[k++] = nums[i];
    }
    ops.length = nums.length = k;
    batch.failed_records.sort((a, b) => a.record_num - b.record_num);
    const first = refused.values().next().value as string;
    return new ApiError(422, 'too_many_meters', first, { field: 'device_id', max_api_meters: this.ctx.apiMeters!.limit });
  }

  private tally(batch: MeterBatch, outcomes: WriteOutcome[], ops: RowOp[], nums: number[]) {
    outcomes.forEach((o, k) => {
      if (o === 'stored' || o === 'same') batch.records_processed++;
      else if (o === 'ignored') batch.ignored_records.push({ record_num: nums[k], record_reference_id: ops[k].ref, reason: 'a measured record (confidence 1) is already stored for this period; a forecast does not replace it' });
      else if (typeof o === 'object') batch.failed_records.push({ record_num: nums[k], record_reference_id: ops[k].ref, error: o.error });
    });
    batch.failed_records.sort((a, b) => a.record_num - b.record_num);
  }

  /** `PUT /meters/cumulative/epoch`: register readings become intervals, resets and late readings included. */
  async ingestCumulative(body: unknown): Promise<MeterBatch> {
    const data = (body as { data?: unknown } | null)?.data;
    if (Array.isArray(data) && data.length > MAX_BATCH) {
      throw new ApiError(413, 'too_many_records', `data: ${data.length} readings in one request; at most ${MAX_BATCH.toLocaleString('en')} are accepted. Split them into several requests.`, { field: 'data', max_records: MAX_BATCH, records_submitted: data.length });
    }
    let req;
    try {
      req = parseCumulative(body, { locationId: this.site.id });
    } catch (err) {
      if (err instanceof FieldError) throw new ApiError(400, 'invalid_parameter', err.message, { field: err.field });
      throw err;
    }
    const batch: MeterBatch = { id: newId('bat'), object: 'meter_batch', records_submitted: req.submitted, records_accepted: req.readings.length, records_processed: 0, failed_records: [...req.failed], ignored_records: [], intervals_created: 0 };
    if (!req.readings.length) return batch;
    const capped = this.ctx.apiMeters?.check([req.subject]).get(req.subject);
    if (capped) throw new ApiError(422, 'too_many_meters', capped, { field: 'device_id', max_api_meters: this.ctx.apiMeters!.limit });
    const flags = flagsOf(req.direction, req.tariffRate);
    const points = req.readings.map((r) => ({ time: r.time, valueWh: r.valueWh, session: req.session, ref: r.ref }));
    const indexByTime = new Map(req.readings.map((r) => [r.time, r.index]));
    const result = await this.store.exclusive(async () => {
      const { ops, refused } = this.registerOps(req.subject, flags, points);
      return { ops, refused, outcomes: ops.length ? await this.store.writeNow(ops) : [] };
    });
    const failedAt = new Map<number, string>(result.refused);
    result.ops.forEach((op, k) => {
      const o = result.outcomes[k];
      if (typeof o === 'object') failedAt.set(op.end, o.error);
      else if (op.op === 'put' && op.start !== op.end && o === 'stored') batch.intervals_created!++;
    });
    for (const r of req.readings) {
      if (indexByTime.get(r.time) !== r.index) {
        batch.ignored_records.push({ record_num: r.index, record_reference_id: r.ref, reason: 'a later reading in this request has the same time; that one was kept' });
        continue;
      }
      const error = failedAt.get(r.time);
      if (error) batch.failed_records.push({ record_num: r.index, record_reference_id: r.ref, error });
      else batch.records_processed++;
    }
    batch.failed_records.sort((a, b) => a.record_num - b.record_num);
    if (batch.records_processed === 0 && batch.failed_records.length && !req.failed.length && !result.refused.size && !result.outcomes.some((o) => typeof o === 'object' && o.refused)) throw new ApiError(503, 'store_unavailable', `no reading could be stored: ${batch.failed_records[0].error}`);
    return batch;
  }

  /**
   * Operations that store register points and (re)derive the intervals around them, and the
   * readings refused as implausible (by time, with the reason). Call inside `store.exclusive`.
   */
  private registerOps(subject: string, flags: number, incoming: RegisterPoint[]): { ops: RowOp[]; refused: Map<number, string> } {
    const all = sortReadings(incoming);
    const existing = this.store.pointsAround(subject, flags, all[0].time, all[all.length - 1].time);
    const refused = implausibleReadings(existing, all, MAX_RECORD_WH);
    const sorted = all.filter((p) => !refused.has(p.time));
    if (!sorted.length) return { ops: [], refused };
    const { removed, added } = spliceReadings(existing, sorted);
    const ops: RowOp[] = [];
    for (const p of sorted) ops.push({ op: 'put', subject, start: p.time, end: p.time, flags: flags | FLAG_REGISTER, value: p.valueWh, confidence: 1, session: p.session, ref: p.ref });
    for (const r of removed) ops.push({ op: 'del', subject, start: r.start, end: r.end, flags, value: 0, confidence: 1, session: null, ref: null });
    for (const a of added) ops.push({ op: 'put', subject, start: a.start, end: a.end, flags, value: a.energyWh, confidence: 1, session: a.session, ref: a.ref });
    return { ops, refused };
  }

  /**
   * An adapter's meter reading (bus event). Each cumulative counter becomes a register stream:
   * a point is stored at most once a minute, and at once when a charging session starts or ends,
   * so intervals never mix two sessions. Channel `grid` of the site's grid meter is the location;
   * any other device's grid channel is a sub-meter of its own (`device:grid`).
   */
  onReading(deviceId: string, reading: MeterReading, kind: DeviceKind) {
    const channel = reading.channel ?? 'device';
    const siteMeter = channel === 'grid' && (this.ctx.gridMeter?.() ?? deviceId) === deviceId;
    const subject = siteMeter ? locationSubject(this.site.id) : channel === 'device' ? deviceSubject(deviceId) : deviceSubject(`${deviceId}:${channel}`);
    const flowKind: DeviceKind = channel === 'battery' ? 'storage' : channel === 'pv' ? 'pv' : channel === 'device' ? kind : 'meter';
    for (const [value, direction] of [[reading.importWh, 'IMPORT'], [reading.exportWh, 'EXPORT']] as const) {
      if (value === undefined || !Number.isFinite(value) || value < 0) continue;
      // energy out of a battery goes to the premises (valued at the import rate); out of PV it is local and free
      const rate = direction === 'IMPORT' ? 'IMPORT' : flowKind === 'storage' ? 'IMPORT' : flowKind === 'pv' ? 'LOCAL' : 'EXPORT';
      const key = `${subject}|${direction}`;
      let st = this.streams.get(key);
      if (!st) this.streams.set(key, (st = { subject, flags: flagsOf(direction, rate) }));
      const point: RegisterPoint = { time: reading.time, valueWh: value, session: reading.sessionId ?? null, ref: null };
      this.offer(st, point);
    }
  }

  /**
   * A charging session ended: the readings of it still held back (the once-a-minute rule) are stored
   * now, so its energy and cost are complete when the stop is answered, not when the device speaks again.
   */
  onSessionEnded(deviceId: string, sessionId: string) {
    const prefixes = [`${deviceSubject(deviceId)}|`, `${deviceSubject(`${deviceId}:`)}`];
    for (const [key, st] of this.streams) {
      if (st.pending?.session === sessionId && prefixes.some((p) => key.startsWith(p))) this.commit(st, st.pending);
    }
  }

  /**
   * Decides whether a reading becomes a stored register point: once a minute while energy flows,
   * once an hour while the counter stands still (an idle device makes one record per hour, not 60),
   * and at once when the session changes. The last reading of an idle span is stored when energy
   * starts to flow again, so the energy lands in the minute it flowed.
   */
  private offer(st: { subject: string; flags: number; committed?: RegisterPoint; pending?: RegisterPoint }, point: RegisterPoint) {
    const c = st.committed;
    if (!c || point.time < c.time) {
      st.pending = undefined;
      return this.commit(st, point);
    }
    if (point.session !== c.session) {
      if (st.pending) this.commit(st, st.pending);
      return this.commit(st, point);
    }
    if (point.valueWh === c.valueWh) {
      if (point.time - c.time >= IDLE_INTERVAL_MS) this.commit(st, point);
      else st.pending = point;
      return;
    }
    if (st.pending && st.pending.valueWh === c.valueWh && st.pending.time > c.time) this.commit(st, st.pending);
    if (point.time - st.committed!.time >= READING_INTERVAL_MS) this.commit(st, point);
    else st.pending = point;
  }

  private commit(st: { subject: string; flags: number; committed?: RegisterPoint; pending?: RegisterPoint }, point: RegisterPoint) {
    st.committed = point;
    st.pending = undefined;
    this.outbox.push({ subject: st.subject, flags: st.flags, point });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => void this.flushReadings());
    }
  }

  /**
   * Stores the readings waiting in the outbox, one write for all streams. While a write is under
   * way new readings wait and go together in the next one, so a slow disk (or a test clock racing
   * ahead) makes batches bigger instead of a queue longer.
   */
  flushReadings(): Promise<void> {
    this.flushScheduled = false;
    this.flushLoop ??= this.runFlushes();
    return this.flushLoop;
  }

  private async runFlushes() {
    try {
      while (this.outbox.length) {
        const items = this.outbox.splice(0);
        await this.store
          .exclusive(async () => {
            const byStream = new Map<string, { subject: string; flags: number; points: RegisterPoint[] }>();
            for (const it of items) {
              const key = `${it.subject}|${it.flags}`;
              let g = byStream.get(key);
              if (!g) byStream.set(key, (g = { subject: it.subject, flags: it.flags, points: [] }));
              g.points.push(it.point);
            }
            const ops = [...byStream.values()].flatMap((g) => {
              const { ops: streamOps, refused } = this.registerOps(g.subject, g.flags, g.points);
              // a device sending garbage is said once per meter, not with every reading
              if (refused.size && !this.refusedSubjects.has(g.subject)) {
                this.refusedSubjects.add(g.subject);
                this.ctx.log?.warn({ subject: g.subject, refused: refused.size }, `meter ${subjectId(g.subject)}: readings left out, ${[...refused.values()][0]}`);
              }
              return streamOps;
            });
            const outcomes = ops.length ? await this.store.writeNow(ops) : [];
            const failed = outcomes.filter((o) => typeof o === 'object');
            if (failed.length) this.ctx.log?.error({ failed: failed.length, error: (failed[0] as { error: string }).error }, 'adapter meter readings could not be stored; the next reading covers the energy');
          })
          .catch((err: unknown) => this.ctx.log?.error({ err }, 'adapter meter readings could not be stored'));
      }
    } finally {
      // cleared in the same turn as the last empty-outbox check, so no reading can be left behind
      this.flushLoop = undefined;
    }
  }

  /** Resolves when every reading handed over so far is stored. */
  async settled(): Promise<void> {
    await this.flushReadings();
    await this.store.exclusive(() => undefined).catch(() => undefined);
  }

  /** Stores every reading still held back (at shutdown), then waits for the store. */
  async drain(): Promise<void> {
    for (const st of this.streams.values()) if (st.pending) this.commit(st, st.pending);
    await this.settled();
  }

  // ------------------------------------------------------------------ resolving ids

  /** The store subject behind a path id: the site's location id, a device id, or `device:channel`. */
  resolve(objectId: string): string {
    if (objectId === this.site.id) return locationSubject(objectId);
    const subject = deviceSubject(objectId);
    if (this.store.has(subject) || this.ctx.devices().some((d) => d.id === objectId)) return subject;
    const known = [this.site.id, ...new Set([...this.ctx.devices().map((d) => d.id), ...this.store.subjects().filter((s) => subjectKind(s.subject) === 'device').map((s) => subjectId(s.subject))])];
    throw new ApiError(404, 'not_found', `no location or device "${objectId}" (known: ${known.join(', ')})`, { field: 'id' });
  }

  /** Price series for the tariffs `flows` name, over `window`. */
  private prices(window: TimeWindow, flows: ReadonlySet<number>, warnings: string[]): PricesByRate {
    const needs = (code: number) => [...flows].some((f) => f >> 1 === code);
    const out: PricesByRate = { IMPORT: [], EXPORT: [] };
    const lookup = this.ctx.prices();
    for (const [code, dir] of [[0, 'IMPORT'], [1, 'EXPORT']] as const) {
      if (!needs(code)) continue;
      if (!lookup) throw new ApiError(503, 'tariffs_unavailable', 'no tariff is loaded yet, so energy cannot be priced; check the tariffs section of the site file and the hub log');
      try {
        out[dir] = lookup.series(dir, window) as PriceSeries;
      } catch (err) {
        warnings.push(`no ${dir} prices: ${(err as Error).message}`);
      }
    }
    return out;
  }

  /**
   * Energy and cost of a subject per period of `grid`. The middle of the window is read from the
   * 15-minute buckets when every period and tariff boundary lies on their grid (exact, and fast
   * for years of records); ragged edges and other cases use the records themselves.
   */
  private priceSubject(subject: string, window: TimeWindow, grid: EpochMs[], flows: ReadonlySet<number>, byFlow: boolean, warnings: string[]): CostAccumulator {
    const prices = this.prices(window, flows, warnings);
    const acc = new CostAccumulator(grid, byFlow);
    const a = Math.ceil(window.start / BUCKET_MS) * BUCKET_MS;
    const b = Math.floor(window.end / BUCKET_MS) * BUCKET_MS;
    if (a < b && onBucketGrid(grid, [prices.IMPORT, prices.EXPORT], a, b)) {
      acc.add(this.store.buckets(subject, a, b, flows), prices, { start: a, end: b });
      if (window.start < a) acc.add(this.store.intervals(subject, window.start, a, { flows }), prices, { start: window.start, end: a });
      if (b < window.end) acc.add(this.store.intervals(subject, b, window.end, { flows }), prices, { start: b, end: window.end });
    } else {
      acc.add(this.store.intervals(subject, window.start, window.end, { flows }), prices, window);
    }
    return acc;
  }

  // ------------------------------------------------------------------ costs

  private tariffView(cell: CostCell, includeTariff: boolean) {
    const rate = averageRate(cell);
    return { value: round(cell.cost, 5), confidence: round(cell.confidence, 3), ...(includeTariff ? { rate: rate === null ? null : round(rate, 5) } : {}) };
  }

  private costEnvelope(objectId: string, q: CostQuery, window: TimeWindow) {
    return {
      id: newId('ecs'),
      object: 'energy_cost' as const,
      object_id: objectId,
      location_id: this.site.id,
      direction: q.direction,
      aggregation: q.aggregation,
      location_timezone: this.site.timezone,
      currency_code: this.site.currency,
      energy_units: 'WH' as const,
      start_time: localIso(window.start, this.site.timezone),
      end_time: localIso(window.end, this.site.timezone),
    };
  }

  private unpricedWarning(total: CostCell, warnings: string[]) {
    if (total.unpricedWh > 0) warnings.push(`${round(total.unpricedWh, 3)} Wh fell in time no tariff slot covers; that energy is shown but not costed (confidence 0)`);
  }

  /** `POST /costs/interval/{id}`. */
  costs(objectId: string, q: CostQuery & { window: TimeWindow }) {
    const subject = this.resolve(objectId);
    const { window } = q;
    const flows = FLOWS[q.direction];
    const tz = this.site.timezone;
    const warnings: string[] = [];
    const total = emptyCell();
    let data;
    if (q.aggregation === 'NONE') {
      const estimate = this.store.estimateRows(subject, window.start, window.end);
      if (estimate > 2 * MAX_COST_ROWS) throw new ApiError(400, 'too_many_rows', `aggregation: NONE would return about ${Math.round(estimate)} records (at most ${MAX_COST_ROWS}); use DAY, WEEK, MONTH or YEAR, or a shorter window`, { field: 'aggregation' });
      const set = this.store.intervals(subject, window.start, window.end, { flows, labels: true });
      if (set.n > MAX_COST_ROWS) throw new ApiError(400, 'too_many_rows', `aggregation: NONE would return ${set.n} records (at most ${MAX_COST_ROWS}); use DAY, WEEK, MONTH or YEAR, or a shorter window`, { field: 'aggregation' });
      const prices = this.prices(window, flows, warnings);
      data = recordCosts(set, prices, window)
        .sort((x, y) => x.start - y.start)
        .map((r) => {
          mergeCell(total, r.cell);
          return { start_time: localIso(r.start, tz), end_time: localIso(r.end, tz), session_reference_id: set.session![r.index], record_reference_id: set.ref![r.index], energy: { value: round(r.cell.energyWh, 3) }, tariff: this.tariffView(r.cell, q.includeTariff) };
        });
    } else {
      const grid = periodGrid(window, q.aggregation, tz);
      const acc = this.priceSubject(subject, window, grid, flows, false, warnings);
      data = acc.periods().map((p) => {
        mergeCell(total, p.cell);
        return { start_time: localIso(p.start, tz), end_time: localIso(p.end, tz), session_reference_id: null, record_reference_id: null, energy: { value: round(p.cell.energyWh, 3) }, tariff: this.tariffView(p.cell, q.includeTariff) };
      });
    }
    this.unpricedWarning(total, warnings);
    return { ...this.costEnvelope(objectId, q, window), data, total: { energy: { value: round(total.energyWh, 3) }, tariff: this.tariffView(total, q.includeTariff) }, ...(warnings.length ? { warnings } : {}) };
  }

  /** `POST /costs/session/{session_reference_id}`: every record of the session, whichever device it came from. */
  sessionCosts(session: string, q: CostQuery) {
    const subjects = this.store.sessionSubjects(session);
    if (!subjects.length) throw new ApiError(404, 'session_not_found', `no meter records carry session_reference_id "${session}"`, { field: 'session_reference_id' });
    const flows = FLOWS[q.direction];
    const set = concatSets(subjects.map((s) => this.store.intervals(s, -Infinity, Infinity, { flows, session })), true);
    let window = q.window;
    if (!window) {
      let start = Infinity;
      let end = -Infinity;
      for (let i = 0; i < set.n; i++) {
        start = Math.min(start, set.start[i]);
        end = Math.max(end, set.end[i]);
      }
      window = set.n ? { start, end } : { start: 0, end: 1 };
    }
    const tz = this.site.timezone;
    const warnings: string[] = [];
    const prices = this.prices(window, flows, warnings);
    const total = emptyCell();
    let data;
    if (q.aggregation === 'NONE') {
      data = recordCosts(set, prices, window)
        .sort((x, y) => x.start - y.start)
        .map((r) => {
          mergeCell(total, r.cell);
          return { start_time: localIso(r.start, tz), end_time: localIso(r.end, tz), session_reference_id: session, record_reference_id: set.ref![r.index], energy: { value: round(r.cell.energyWh, 3) }, tariff: this.tariffView(r.cell, q.includeTariff) };
        });
    } else {
      const acc = new CostAccumulator(periodGrid(window, q.aggregation, tz));
      acc.add(set, prices, window);
      data = acc.periods().map((p) => {
        mergeCell(total, p.cell);
        return { start_time: localIso(p.start, tz), end_time: localIso(p.end, tz), session_reference_id: session, record_reference_id: null, energy: { value: round(p.cell.energyWh, 3) }, tariff: this.tariffView(p.cell, q.includeTariff) };
      });
    }
    this.unpricedWarning(total, warnings);
    const devices = subjects.map(subjectId);
    return { ...this.costEnvelope(session, q, window), session_reference_id: session, device_ids: devices, data, total: { energy: { value: round(total.energyWh, 3) }, tariff: this.tariffView(total, q.includeTariff) }, ...(warnings.length ? { warnings } : {}) };
  }

  // ------------------------------------------------------------------ savings

  /** What kind of load a device is, for its savings: from its capabilities, else its YAML keys, else its records. */
  kindOf(info: DeviceInfo | undefined, subject: string): DeviceKind {
    const caps = info?.device?.caps;
    if (caps) {
      if (caps.storage) return 'storage';
      if (caps.charger) return 'ev';
      if (caps.thermostat) return 'hvac';
      if (caps.switch) return info?.config?.schedule ? 'switched_load' : 'meter';
      if (caps.pv) return 'pv';
      return 'meter';
    }
    const c = info?.config;
    if (c) {
      if (c.schedule) return 'switched_load';
      if (c.comfort) return 'hvac';
      if (c.target || c.max_current_a) return 'ev';
      if (c.capacity_wh) return 'storage';
      if (c.kwp) return 'pv';
    }
    // a device known only from its records: storage if it ever supplied energy valued at the import rate
    return this.store.intervals(subject, -Infinity, Infinity, { flows: new Set([1]) }).n > 0 ? 'storage' : 'meter';
  }

  /** `GET /savings/{id}`: one device, or the sum over every device of the location. */
  savings(objectId: string, window: TimeWindow, kind?: DeviceKind) {
    const subject = this.resolve(objectId);
    const tz = this.site.timezone;
    const envelope = { id: newId('sav'), object: 'savings' as const, object_id: objectId, location_id: this.site.id, location_timezone: tz, currency_code: this.site.currency, start_time: localIso(window.start, tz), end_time: localIso(window.end, tz) };
    if (subjectKind(subject) === 'location') {
      const ids = new Set(this.ctx.devices().map((d) => d.id));
      for (const s of this.store.subjects()) if (subjectKind(s.subject) === 'device' && !subjectId(s.subject).includes(':')) ids.add(subjectId(s.subject));
      const devices = [...ids].map((id) => this.deviceSavings(id, window));
      let base = 0;
      let actual = 0;
      let baseWh = 0;
      let actualWh = 0;
      let forgone = 0;
      for (const d of devices) {
        base += d.baseline_cost;
        actual += d.actual_cost;
        baseWh += d.baseline_energy.value;
        actualWh += d.actual_energy.value;
        forgone += num(d.forgone_export_value) ?? 0;
      }
      const sum = figures(base, actual, baseWh, actualWh);
      return {
        ...envelope,
        kind: 'location' as const,
        ...sum,
        forgone_export_value: round(forgone, 5),
        net_savings: round(sum.savings - forgone, 5),
        devices: devices.map((d) => ({ device_id: d.device_id, kind: d.kind, baseline_cost: d.baseline_cost, actual_cost: d.actual_cost, savings: d.savings, savings_percentage: d.savings_percentage, ...(d.net_savings !== undefined ? { net_savings: d.net_savings } : {}) })),
      };
    }
    const { device_id: _id, ...rest } = this.deviceSavings(subjectId(subject), window, kind);
    return { ...envelope, ...rest };
  }

  /**
   * `GET /savings/{location_id}?baseline=self_consumption|none`: what the site paid, against the
   * same measured load and PV replayed with the battery in its own self-consumption mode, and with
   * no battery at all; shifted loads (EV, switched loads, HVAC) undo their shift in both, as their
   * own baselines say. The site's grid meter (records of the location) is what it paid where there is
   * one; else the device meters' net flow, priced per 15 minutes.
   */
  siteSavings(window: TimeWindow, baseline: SiteBaseline) {
    const tz = this.site.timezone;
    const warnings: string[] = [];
    const a = Math.floor(window.start / BUCKET_MS) * BUCKET_MS;
    const b = Math.ceil(window.end / BUCKET_MS) * BUCKET_MS;
    const n = (b - a) / BUCKET_MS;
    const span = { start: a, end: b };
    const prices = this.prices(span, ALL_FLOWS, warnings);
    const importRate = bucketRates(prices.IMPORT, a, n);
    const exportRate = bucketRates(prices.EXPORT, a, n);
    /** Net energy per bucket of one subject (+ = into it). */
    const netOf = (subject: string) => {
      const out = new Float64Array(n);
      const set = this.store.buckets(subject, a, b);
      for (let i = 0; i < set.n; i++) out[(set.start[i] - a) / BUCKET_MS] += set.flags[i] & FLAG_EXPORT ? -set.energy[i] : set.energy[i];
      return out;
    };
    // the battery: its own meter (a hybrid inverter's battery channel where there is one)
    const infos = this.ctx.devices();
    const deviceIds = new Set(infos.map((d) => d.id));
    for (const sub of this.store.subjects()) if (subjectKind(sub.subject) === 'device') deviceIds.add(subjectId(sub.subject).split(':')[0]);
    const kinds = new Map([...deviceIds].map((id) => [id, this.kindOf(infos.find((d) => d.id === id), deviceSubject(id))]));
    const batteries = [...kinds].filter(([, k]) => k === 'storage').map(([id]) => id);
    const batteryNet = new Float64Array(n);
    for (const id of batteries) {
      const sub = this.store.has(deviceSubject(`${id}:battery`)) ? deviceSubject(`${id}:battery`) : deviceSubject(id);
      netOf(sub).forEach((wh, k) => (batteryNet[k] += wh));
    }
    // what the site drew from the grid: its meter, else the sum of the device meters
    const gridMetered = this.store.has(locationSubject(this.site.id));
    let gridNet: Float64Array;
    let actual: { cost: number; importWh: number; exportWh: number };
    if (gridMetered) {
      gridNet = netOf(locationSubject(this.site.id));
      const acc = this.priceSubject(locationSubject(this.site.id), span, [a, b], ALL_FLOWS, true, warnings);
      const imp = [0, 2, 4].map((f) => acc.flowTotal(f));
      const exp = [1, 3, 5].map((f) => acc.flowTotal(f));
      actual = { cost: imp.reduce((x, c) => x + c.cost, 0) - exp.reduce((x, c) => x + c.cost, 0), importWh: imp.reduce((x, c) => x + c.energyWh, 0), exportWh: exp.reduce((x, c) => x + c.energyWh, 0) };
    } else {
      gridNet = new Float64Array(n);
      // a sub-meter's grid channel measures flows the other meters already hold
      const subjects = this.store.subjects().map((x) => x.subject).filter((x) => subjectKind(x) === 'device' && !subjectId(x).endsWith(':grid'));
      // a device metered by channels (a hybrid inverter's pv and battery) counts by its channels alone
      const channelled = new Set(subjects.filter((x) => subjectId(x).includes(':')).map((x) => subjectId(x).split(':')[0]));
      for (const sub of subjects) if (subjectId(sub).includes(':') || !channelled.has(subjectId(sub))) netOf(sub).forEach((wh, k) => (gridNet[k] += wh));
      actual = settleBuckets(gridNet, importRate, exportRate);
      warnings.push('the site has no grid meter (records of the location): what it paid is the device meters\' net flow, priced per 15 minutes');
    }
    const hours = Array.from({ length: n }, () => BUCKET_MS / HOUR);
    const house = Array.from(gridNet, (wh, k) => wh - batteryNet[k]);
    const battery = this.batteryForReplay(batteries, infos);
    // the same bill as GET /bill: the composed per-kWh rates above, and the capacity charge of each scenario's own peaks (with VAT)
    const terms = this.ctx.prices()?.terms?.();
    const withCapacity = <T extends { cost: number }>(c: T, net: ArrayLike<number>): T => (terms?.capacity ? { ...c, cost: c.cost + capacityCost(terms, flowsFromNet(a, net), span) * (1 + terms.vatPercent / 100) } : c);
    actual = withCapacity(actual, gridNet);
    const none = withCapacity(settleBuckets(house, importRate, exportRate), house);
    const ownGrid = battery ? replaySelfConsumption(battery, house, hours).gridWh : undefined;
    const own = ownGrid ? withCapacity(settleBuckets(ownGrid, importRate, exportRate), ownGrid) : none;
    if (batteries.length && !battery) warnings.push('the battery\'s size is not known (configure capacity_wh): the self-consumption baseline is the same as none');
    // shifted loads count in both baselines as their own baselines say
    const shifted = [...kinds].filter(([, k]) => k === 'ev' || k === 'switched_load' || k === 'hvac').map(([id]) => this.deviceSavings(id, window));
    const shift = shifted.reduce((x, d) => x + d.savings, 0);
    const scenario = (c: { cost: number; importWh: number; exportWh: number }) => ({ cost: round(c.cost + shift, 5), import_wh: round(c.importWh, 3), export_wh: round(c.exportWh, 3) });
    const base = baseline === 'none' ? none : own;
    return {
      id: newId('sav'),
      object: 'savings' as const,
      object_id: this.site.id,
      location_id: this.site.id,
      location_timezone: tz,
      currency_code: this.site.currency,
      start_time: localIso(a, tz),
      end_time: localIso(b, tz),
      kind: 'location' as const,
      baseline,
      ...figures(base.cost + shift, actual.cost, base.importWh, actual.importWh),
      baselines: { none: scenario(none), self_consumption: scenario(own) },
      actual: { cost: round(actual.cost, 5), import_wh: round(actual.importWh, 3), export_wh: round(actual.exportWh, 3) },
      savings_vs_none: round(none.cost + shift - actual.cost, 5),
      savings_vs_self_consumption: round(own.cost + shift - actual.cost, 5),
      measured_by: gridMetered ? ('grid_meter' as const) : ('device_meters' as const),
      battery: battery ? { device_ids: batteries, capacity_wh: battery.socMaxWh, start_wh: battery.initialWh, max_charge_w: battery.maxChargeW, max_discharge_w: battery.maxDischargeW } : null,
      shifted_loads: shifted.map((d) => ({ device_id: d.device_id, kind: d.kind, savings: d.savings })),
      explanation: `${baseline === 'none' ? 'no battery' : 'the battery in its own self-consumption mode (charging from surplus, covering deficits, starting at its minimum charge)'}, replayed on the measured load and PV per 15 minutes at the prices of the time; shifted loads as their own baselines say`,
      ...(warnings.length ? { warnings } : {}),
    };
  }

  /** One battery standing for the site's batteries in the replay: their sizes and powers added, from the running device else its YAML. */
  private batteryForReplay(ids: string[], infos: DeviceInfo[]): SelfConsumptionBattery | undefined {
    let out: SelfConsumptionBattery | undefined;
    for (const id of ids) {
      const info = infos.find((d) => d.id === id);
      const p = info?.device?.caps.storage?.params;
      const c = info?.config ?? {};
      const cap = p?.capacityWh ?? num(c.capacity_wh);
      if (!cap) return undefined;
      const one = {
        socMinWh: p?.socMinWh ?? (cap * (num(c.soc_min_pct) ?? 5)) / 100,
        socMaxWh: p?.socMaxWh ?? cap,
        maxChargeW: p?.maxChargeW ?? num(c.max_charge_w) ?? cap / 2,
        maxDischargeW: p?.maxDischargeW ?? num(c.max_discharge_w) ?? cap / 2,
        chargeEfficiency: p?.chargeEfficiency ?? num(c.charge_efficiency) ?? 0.95,
        dischargeEfficiency: p?.dischargeEfficiency ?? num(c.discharge_efficiency) ?? 0.95,
      };
      out = out
        ? { ...out, socMinWh: out.socMinWh + one.socMinWh, socMaxWh: out.socMaxWh + one.socMaxWh, maxChargeW: out.maxChargeW + one.maxChargeW, maxDischargeW: out.maxDischargeW + one.maxDischargeW, initialWh: out.initialWh + one.socMinWh }
        : { ...one, initialWh: one.socMinWh };
    }
    return out;
  }

  private deviceSavings(id: string, window: TimeWindow, forced?: DeviceKind): DeviceSavings {
    const info = this.ctx.devices().find((d) => d.id === id);
    let subject = deviceSubject(id);
    const kind = forced ?? this.kindOf(info, subject);
    const warnings: string[] = [];
    const done: Done = (figs, baseline) => ({ device_id: id, kind, baseline, ...figs, ...(warnings.length ? { warnings } : {}) }) as DeviceSavings;
    const whole = [window.start, window.end];
    if (kind === 'storage') {
      if (this.store.has(deviceSubject(`${id}:battery`))) subject = deviceSubject(`${id}:battery`);
      const acc = this.priceSubject(subject, window, whole, ALL_FLOWS, true, warnings);
      const cells = [0, 1, 2, 3, 4, 5].map((f) => acc.flowTotal(f));
      const local = localIntakeAsExport(this.store.intervals(subject, window.start, window.end, { flows: new Set([4]) }));
      const forgone = local.n ? totalCost(local, this.prices(window, new Set([2]), warnings), window) : emptyCell();
      return done(
        storageSavings(cells, forgone),
        'no battery: the energy it supplied to the premises bought at the import rate, no export earnings (the FlatPeak storage guide: `savings`, also as `flatpeak_savings`); `net_savings` also counts the export income given up by storing local energy, at the export rate of its time',
      );
    }
    const actualAcc = this.priceSubject(subject, window, whole, FLOWS.IMPORT, false, warnings);
    const actual = actualAcc.total();
    const same = (why: string) => done(figures(actual.cost, actual.cost, actual.energyWh, actual.energyWh), why);
    if (kind === 'ev') return this.evSavings(subject, window, info, warnings, done, same);
    if (kind === 'switched_load') return this.switchedSavings(subject, window, info, warnings, done, same);
    if (kind === 'hvac') {
      const a = Math.floor(window.start / BUCKET_MS) * BUCKET_MS;
      const b = Math.ceil(window.end / BUCKET_MS) * BUCKET_MS;
      const pad = HVAC_SMOOTHING_BUCKETS * BUCKET_MS;
      const buckets = this.store.buckets(subject, a - pad, b + pad, FLOWS.IMPORT);
      const firstQuarter = (a - pad) / BUCKET_MS;
      const energy = new Float64Array((b - a + 2 * pad) / BUCKET_MS);
      for (let i = 0; i < buckets.n; i++) energy[buckets.start[i] / BUCKET_MS - firstQuarter] += buckets.energy[i];
      const baselineSet = hvacBaseline(energy, firstQuarter, { start: a, end: b });
      const acc = new CostAccumulator(whole);
      acc.add(baselineSet, this.prices(window, new Set([0]), warnings), window);
      return done(figures(acc.total().cost, actual.cost, acc.total().energyWh, actual.energyWh), 'thermostat holding its setpoint: the metered energy per 15 minutes averaged over ±3 hours (undoing pre-cooling and coasting), bought at the import rate');
    }
    return same(kind === 'pv' ? 'PV generation is not shifted: baseline = actual' : 'not a shifted load: baseline = actual');
  }

  private evSavings(subject: string, window: TimeWindow, info: DeviceInfo | undefined, warnings: string[], done: Done, same: (why: string) => DeviceSavings): DeviceSavings {
    const rows = this.store.intervals(subject, window.start, window.end, { flows: FLOWS.IMPORT, labels: true });
    const known = this.ctx.sessions?.() ?? {};
    const sessions: { id: string; plugIn: number; energyWh: number; set: IntervalSet }[] = [];
    for (const s of new Set(rows.session!.filter((x): x is string => x !== null))) {
      const set = this.store.intervals(subject, -Infinity, Infinity, { flows: FLOWS.IMPORT, session: s });
      let plugIn = Infinity;
      let energy = 0;
      for (let i = 0; i < set.n; i++) {
        plugIn = Math.min(plugIn, set.start[i]);
        energy += set.energy[i];
      }
      const stored = known[s] ? Date.parse(known[s].plug_in ?? known[s].start) : NaN;
      // the hub's record of the plug-in wins; records alone start with the session's first reading interval
      if (Number.isFinite(stored)) plugIn = stored;
      if (plugIn >= window.start && plugIn < window.end) sessions.push({ id: s, plugIn, energyWh: energy, set });
    }
    const loose = new IntervalBuilder(false);
    for (let i = 0; i < rows.n; i++) if (rows.session![i] === null) loose.push(rows.start[i], rows.end[i], rows.energy[i], rows.flags[i], rows.confidence[i], null, null);
    const looseSet = loose.build();
    let maxW = this.evPowerW(info);
    if (!maxW) {
      // no rated power known: the highest mean power seen over a minute or more in these sessions
      for (const s of sessions) for (let i = 0; i < s.set.n; i++) if (s.set.end[i] - s.set.start[i] >= 60_000) maxW = Math.max(maxW ?? 0, (s.set.energy[i] / (s.set.end[i] - s.set.start[i])) * HOUR);
      if (maxW) warnings.push(`the charger's full power is not configured; the highest metered power (${Math.round(maxW)} W) was used`);
    }
    if (!sessions.length || !maxW) return same(sessions.length ? 'the charger’s full power is unknown: baseline = actual' : 'no charging session started in this window: baseline = actual');
    const baselineSet = evBaseline(sessions, maxW);
    let end = window.end;
    for (const s of sessions) for (let i = 0; i < s.set.n; i++) end = Math.max(end, s.set.end[i]);
    for (let i = 0; i < baselineSet.n; i++) end = Math.max(end, baselineSet.end[i]);
    const span = { start: Math.min(window.start, ...sessions.map((s) => s.plugIn)), end };
    const prices = this.prices(span, ALL_FLOWS, warnings);
    const actual = new CostAccumulator([span.start, span.end]);
    for (const s of sessions) actual.add(s.set, prices, span);
    actual.add(looseSet, prices, window);
    const baseline = new CostAccumulator([span.start, span.end]);
    baseline.add(baselineSet, prices, span);
    baseline.add(looseSet, prices, window);
    const a = actual.total();
    const b = baseline.total();
    return done(
      { ...figures(b.cost, a.cost, b.energyWh, a.energyWh), sessions: sessions.map((s) => ({ session_reference_id: s.id, plug_in_time: localIso(s.plugIn, this.site.timezone), energy: round(s.energyWh, 3) })), full_power_w: Math.round(maxW) },
      `each session charged at full power (${Math.round(maxW)} W) from plug-in, bought at the import rate; sessions are counted in the window of their plug-in`,
    );
  }

  private evPowerW(info: DeviceInfo | undefined): number | undefined {
    const ch = info?.device?.caps.charger;
    if (ch) return ch.maxCurrentA * ch.voltage * ch.phases;
    const c = info?.config ?? {};
    if (num(c.max_power_w)) return num(c.max_power_w);
    const amps = num(c.max_current_a);
    return amps ? amps * (num(c.voltage) ?? 230) * (num(c.phases) ?? 1) : undefined;
  }

  private switchedSavings(subject: string, window: TimeWindow, info: DeviceInfo | undefined, warnings: string[], done: Done, same: (why: string) => DeviceSavings): DeviceSavings {
    const schedule = (info?.config?.schedule ?? {}) as { window?: { from?: string; to?: string }; default_start?: string };
    const from = schedule.window?.from;
    const to = schedule.window?.to;
    if (!from || !to) return same('no schedule window configured: baseline = actual');
    const tz = this.site.timezone;
    // runs are counted whole in the window they start in
    const runs = dailyWindows(window, from, to, tz).filter((w) => w.start >= window.start && w.start < window.end);
    const span = { start: window.start, end: Math.max(window.end, ...runs.map((r) => r.end)) };
    const rows = this.store.intervals(subject, span.start, span.end, { flows: FLOWS.IMPORT });
    let ratedW = info?.device?.caps.switch?.ratedPowerW || num(info?.config?.rated_power_w);
    if (!ratedW) {
      for (let i = 0; i < rows.n; i++) if (rows.end[i] - rows.start[i] >= 60_000) ratedW = Math.max(ratedW ?? 0, (rows.energy[i] / (rows.end[i] - rows.start[i])) * HOUR);
      if (ratedW) warnings.push(`the load's rated power is not configured; the highest metered power (${Math.round(ratedW)} W) was used`);
    }
    if (!ratedW) return same('the load’s rated power is unknown: baseline = actual');
    const prices = this.prices({ start: span.start, end: span.end + DAY }, ALL_FLOWS, warnings);
    const actual = totalCost(rows, prices, span);
    const inRuns = emptyCell();
    const blocks = runs.map((r) => {
      const cell = totalCost(rows, prices, r);
      mergeCell(inRuns, cell);
      let start = schedule.default_start ? localTimeOn(r.start, schedule.default_start, tz) : r.start;
      // a default start after midnight belongs to the part of the window after midnight
      if (start < r.start && start + DAY < r.end) start += DAY;
      return { defaultStart: start, energyWh: cell.energyWh };
    });
    const shifted = totalCost(switchedBaseline(blocks, ratedW), prices, { start: span.start - DAY, end: span.end + DAY });
    // energy outside the runs was not shifted: it counts the same in baseline and actual
    const baselineCost = actual.cost - inRuns.cost + shifted.cost;
    const baselineWh = actual.energyWh - inRuns.energyWh + shifted.energyWh;
    return done(figures(baselineCost, actual.cost, baselineWh, actual.energyWh), `each run of the ${from}–${to} window at rated power (${Math.round(ratedW)} W) from its default start (${schedule.default_start ?? from}), bought at the import rate; runs are counted in the window they start in`);
  }
}

/** Parses the query and body of a cost request into a `CostQuery`, naming the field at fault. */
export function parseCostQuery(query: Record<string, unknown>, body: unknown, needWindow: boolean): CostQuery {
  const q = query ?? {};
  const known = new Set(['direction', 'aggregation', 'include_tariff', 'include_carbon']);
  for (const k of Object.keys(q)) if (!known.has(k)) throw new ApiError(400, 'invalid_parameter', `querystring.${k}: unknown parameter (known: ${[...known].join(', ')})`, { field: `querystring.${k}` });
  const direction = String(q.direction ?? 'IMPORT').toUpperCase();
  if (direction !== 'IMPORT' && direction !== 'EXPORT') throw new ApiError(400, 'invalid_parameter', `querystring.direction: must be IMPORT or EXPORT (got "${q.direction}")`, { field: 'querystring.direction' });
  const aggregation = String(q.aggregation ?? 'NONE').toUpperCase();
  if (!AGGREGATIONS.includes(aggregation as Aggregation)) throw new ApiError(400, 'invalid_parameter', `querystring.aggregation: must be one of ${AGGREGATIONS.join(', ')} (got "${q.aggregation}")`, { field: 'querystring.aggregation' });
  const bool = (name: string): boolean => {
    const v = q[name];
    if (v === undefined || v === 'false' || v === false) return false;
    if (v === 'true' || v === true || v === '') return true;
    throw new ApiError(400, 'invalid_parameter', `querystring.${name}: must be true or false (got "${v}")`, { field: `querystring.${name}` });
  };
  const includeTariff = bool('include_tariff');
  if (bool('include_carbon')) throw new ApiError(400, 'not_supported', 'querystring.include_carbon: carbon intensity is not tracked by this hub; leave include_carbon out', { field: 'querystring.include_carbon' });
  const window = parseWindow(body, needWindow);
  return { direction: direction as Direction, aggregation: aggregation as Aggregation, includeTariff, window };
}

/** `{start_time, end_time}` of a request body (or query), checked. */
export function parseWindow(source: unknown, required: boolean, where = 'body'): TimeWindow | undefined {
  const b = (source && typeof source === 'object' ? source : {}) as Record<string, unknown>;
  if (source !== undefined && source !== null && (typeof source !== 'object' || Array.isArray(source))) throw new ApiError(400, 'invalid_parameter', `${where}: must be a JSON object {start_time, end_time}`, { field: where });
  if (where === 'body') for (const k of Object.keys(b)) if (k !== 'start_time' && k !== 'end_time') throw new ApiError(400, 'invalid_parameter', `body.${k}: unknown field (known: start_time, end_time)`, { field: `body.${k}` });
  if (!required && b.start_time === undefined && b.end_time === undefined) return undefined;
  try {
    const start = parseTime(b.start_time, `${where}.start_time`);
    const end = parseTime(b.end_time, `${where}.end_time`);
    if (end <= start) throw new FieldError(`${where}.end_time`, `must be after ${where}.start_time`);
    if (end - start > 10 * 366 * DAY) throw new FieldError(`${where}.end_time`, 'the window may span at most 10 years');
    return { start, end };
  } catch (err) {
    if (err instanceof FieldError) throw new ApiError(400, 'invalid_parameter', err.message, { field: err.field });
    throw err;
  }
}

export const isDeviceKind = (k: string): k is DeviceKind => (DEVICE_KINDS as readonly string[]).includes(k);

export const SITE_BASELINES = ['self_consumption', 'none'] as const;
export type SiteBaseline = (typeof SITE_BASELINES)[number];

/** Mean rate of each 15-minute bucket from `a` (NaN where no price covers it all). */
function bucketRates(series: PriceSeries, a: EpochMs, n: number): number[] {
  const out = new Array<number>(n).fill(NaN);
  let j = 0;
  for (let k = 0; k < n; k++) {
    const s = a + k * BUCKET_MS;
    const e = s + BUCKET_MS;
    while (j < series.length && series[j].end <= s) j++;
    let acc = 0;
    let covered = 0;
    for (let i = j; i < series.length && series[i].start < e; i++) {
      const o = Math.min(e, series[i].end) - Math.max(s, series[i].start);
      if (o > 0) {
        acc += series[i].rate * o;
        covered += o;
      }
    }
    if (covered >= BUCKET_MS - 1) out[k] = acc / covered;
  }
  return out;
}

/** Cost of a net grid flow per bucket (+ = import): imports at the import rate less exports at the export rate. */
function settleBuckets(netWh: ArrayLike<number>, importRate: number[], exportRate: number[]) {
  let cost = 0;
  let importWh = 0;
  let exportWh = 0;
  for (let k = 0; k < netWh.length; k++) {
    const wh = netWh[k];
    if (wh > 0) {
      importWh += wh;
      if (Number.isFinite(importRate[k])) cost += (wh / 1000) * importRate[k];
    } else if (wh < 0) {
      exportWh -= wh;
      if (Number.isFinite(exportRate[k])) cost += (wh / 1000) * exportRate[k];
    }
  }
  return { cost, importWh, exportWh };
}
