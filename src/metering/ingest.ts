import { ApiError } from '../api/index.js';
import { newId, type MeteringContext } from './context.js';
import { FieldError, MAX_BATCH, flagsOf, parseCumulative, parseIntervalRecord, type RowOp } from './records.js';
import { registerOps } from './readings.js';
import type { WriteOutcome } from './store.js';

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

/** Ingest: records sent to the meter API (intervals, cumulative register readings) into the store, each refusal listed. */
export class MeterIngest {
  constructor(private readonly ctx: MeteringContext) {}

  /** `PUT /meters/interval`: every valid record is stored; each invalid one is listed with its index and reason. */
  async intervals(body: unknown): Promise<MeterBatch> {
    const records = Array.isArray(body) ? body : body && typeof body === 'object' ? [body] : undefined;
    if (!records) throw new ApiError(400, 'invalid_parameter', 'body: must be an array of meter records (or one record object)', { field: 'body' });
    if (records.length > MAX_BATCH) {
      throw new ApiError(413, 'too_many_records', `body: ${records.length} records in one request; at most ${MAX_BATCH.toLocaleString('en')} are accepted. Split them into several requests.`, { field: 'body', max_records: MAX_BATCH, records_submitted: records.length });
    }
    const batch: MeterBatch = { id: newId('bat'), object: 'meter_batch', records_submitted: records.length, records_accepted: 0, records_processed: 0, failed_records: [], ignored_records: [] };
    const ops: RowOp[] = [];
    const nums: number[] = [];
    const scope = { locationId: this.ctx.site.id };
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
    const outcomes = await this.ctx.store.write(ops);
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
  async cumulative(body: unknown): Promise<MeterBatch> {
    const data = (body as { data?: unknown } | null)?.data;
    if (Array.isArray(data) && data.length > MAX_BATCH) {
      throw new ApiError(413, 'too_many_records', `data: ${data.length} readings in one request; at most ${MAX_BATCH.toLocaleString('en')} are accepted. Split them into several requests.`, { field: 'data', max_records: MAX_BATCH, records_submitted: data.length });
    }
    let req;
    try {
      req = parseCumulative(body, { locationId: this.ctx.site.id });
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
    const result = await this.ctx.store.exclusive(async () => {
      const { ops, refused } = registerOps(this.ctx.store, req.subject, flags, points);
      return { ops, refused, outcomes: ops.length ? await this.ctx.store.writeNow(ops) : [] };
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
}
