import { ApiError, type Direction, type MeterReading, type TimeWindow } from '../api/index.js';
import type { DeviceKind } from '../api/device-kind.js';
import { resolveSubject, type MeteringContext } from './context.js';
import { CostQueries, type CostQuery } from './cost-queries.js';
import { AGGREGATIONS, type Aggregation } from './costs.js';
import { savingsOf } from './device-savings.js';
import { MeterIngest, type MeterBatch } from './ingest.js';
import { DAY, FieldError, parseTime } from './records.js';
import { ReadingStreams } from './readings.js';
import { siteSavings, type SiteBaseline } from './site-savings.js';
import type { MeterRecordStore } from './store-api.js';

export { isDeviceKind } from '../api/device-kind.js';
export type { DeviceInfo, MeteringContext } from './context.js';
export { MAX_COST_ROWS, type CostQuery } from './cost-queries.js';
export type { MeterBatch } from './ingest.js';
export { IDLE_INTERVAL_MS, READING_INTERVAL_MS } from './readings.js';
export { SITE_BASELINES, type SiteBaseline } from './site-savings.js';

/**
 * Metering: takes records (API, cumulative registers, adapters' readings) into the store and
 * answers cost and savings questions about them with the tariff in force at the time. Each job is
 * its own module (ingest, readings, cost-queries, device-savings, site-savings); this is the one
 * object the routes and the other parts hold.
 */
export class MeteringService {
  readonly store: MeterRecordStore;
  private readonly ingest: MeterIngest;
  private readonly readings: ReadingStreams;
  private readonly costQueries: CostQueries;

  constructor(private readonly ctx: MeteringContext) {
    this.store = ctx.store;
    this.ingest = new MeterIngest(ctx);
    this.readings = new ReadingStreams(ctx);
    this.costQueries = new CostQueries(ctx);
  }

  get site() {
    return this.ctx.site;
  }

  // ------------------------------------------------------------------ records in

  /** `PUT /meters/interval`: every valid record is stored; each invalid one is listed with its index and reason. */
  ingestIntervals(body: unknown): Promise<MeterBatch> {
    return this.ingest.intervals(body);
  }

  /** `PUT /meters/cumulative/epoch`: register readings become intervals, resets and late readings included. */
  ingestCumulative(body: unknown): Promise<MeterBatch> {
    return this.ingest.cumulative(body);
  }

  /** An adapter's meter reading (bus event), into its register stream. */
  onReading(deviceId: string, reading: MeterReading, kind: DeviceKind) {
    this.readings.onReading(deviceId, reading, kind);
  }

  /** A charging session ended: its readings still held back are stored now. */
  onSessionEnded(deviceId: string, sessionId: string) {
    this.readings.onSessionEnded(deviceId, sessionId);
  }

  /** Stores the readings waiting in the outbox. */
  flushReadings(): Promise<void> {
    return this.readings.flushReadings();
  }

  /** Resolves when every reading handed over so far is stored. */
  settled(): Promise<void> {
    return this.readings.settled();
  }

  /** Stores every reading still held back (at shutdown), then waits for the store. */
  drain(): Promise<void> {
    return this.readings.drain();
  }

  // ------------------------------------------------------------------ questions

  /** The store subject behind a path id: the site's location id, a device id, or `device:channel`. */
  resolve(objectId: string): string {
    return resolveSubject(this.ctx, objectId);
  }

  /** `POST /costs/interval/{id}`. */
  costs(objectId: string, q: CostQuery & { window: TimeWindow }) {
    return this.costQueries.costs(objectId, q);
  }

  /** `POST /costs/session/{session_reference_id}`: every record of the session, whichever device it came from. */
  sessionCosts(session: string, q: CostQuery) {
    return this.costQueries.sessionCosts(session, q);
  }

  /** `GET /savings/{id}`: one device, or the sum over every device of the location. */
  savings(objectId: string, window: TimeWindow, kind?: DeviceKind) {
    return savingsOf(this.ctx, objectId, window, kind);
  }

  /** `GET /savings/{location_id}?baseline=self_consumption|none`: the site against a replay without (or with a self-consuming) battery. */
  siteSavings(window: TimeWindow, baseline: SiteBaseline) {
    return siteSavings(this.ctx, window, baseline);
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
