import { ApiError, type Direction, type TimeWindow } from '../api/index.js';
import { newId, resolveSubject, type MeteringContext } from './context.js';
import { CostAccumulator, averageRate, emptyCell, localIso, mergeCell, periodGrid, recordCosts, round, type Aggregation, type CostCell } from './costs.js';
import { pricesFor, priceSubject } from './pricing.js';
import { FLOWS_OF, subjectId } from './records.js';
import { IntervalBuilder, type IntervalSet } from './store.js';

export interface CostQuery {
  direction: Direction;
  aggregation: Aggregation;
  includeTariff: boolean;
  window?: TimeWindow;
}

/** Most rows one NONE-aggregated answer may hold; beyond that the client is asked to aggregate. */
export const MAX_COST_ROWS = 100_000;

/** Interval columns of several sets in one. */
function concatSets(sets: IntervalSet[], labels: boolean): IntervalSet {
  const b = new IntervalBuilder(labels);
  for (const s of sets) for (let i = 0; i < s.n; i++) b.push(s.start[i], s.end[i], s.energy[i], s.flags[i], s.confidence[i], s.session?.[i] ?? null, s.ref?.[i] ?? null);
  return b.build();
}

/** Cost queries: the energy and cost of a device, the site or a charging session, per record or per period, at the tariff of the time. */
export class CostQueries {
  constructor(private readonly ctx: MeteringContext) {}

  private tariffView(cell: CostCell, includeTariff: boolean) {
    const rate = averageRate(cell);
    return { value: round(cell.cost, 5), confidence: round(cell.confidence, 3), ...(includeTariff ? { rate: rate === null ? null : round(rate, 5) } : {}) };
  }

  private costEnvelope(objectId: string, q: CostQuery, window: TimeWindow) {
    return {
      id: newId('ecs'),
      object: 'energy_cost' as const,
      object_id: objectId,
      location_id: this.ctx.site.id,
      direction: q.direction,
      aggregation: q.aggregation,
      location_timezone: this.ctx.site.timezone,
      currency_code: this.ctx.site.currency,
      energy_units: 'WH' as const,
      start_time: localIso(window.start, this.ctx.site.timezone),
      end_time: localIso(window.end, this.ctx.site.timezone),
    };
  }

  private unpricedWarning(total: CostCell, warnings: string[]) {
    if (total.unpricedWh > 0) warnings.push(`${round(total.unpricedWh, 3)} Wh fell in time no tariff slot covers; that energy is shown but not costed (confidence 0)`);
  }

  /** `POST /costs/interval/{id}`. */
  costs(objectId: string, q: CostQuery & { window: TimeWindow }) {
    const subject = resolveSubject(this.ctx, objectId);
    const { window } = q;
    const flows = FLOWS_OF[q.direction];
    const tz = this.ctx.site.timezone;
    const warnings: string[] = [];
    const total = emptyCell();
    let data;
    if (q.aggregation === 'NONE') {
      const estimate = this.ctx.store.estimateRows(subject, window.start, window.end);
      if (estimate > 2 * MAX_COST_ROWS) throw new ApiError(400, 'too_many_rows', `aggregation: NONE would return about ${Math.round(estimate)} records (at most ${MAX_COST_ROWS}); use DAY, WEEK, MONTH or YEAR, or a shorter window`, { field: 'aggregation' });
      const set = this.ctx.store.intervals(subject, window.start, window.end, { flows, labels: true });
      if (set.n > MAX_COST_ROWS) throw new ApiError(400, 'too_many_rows', `aggregation: NONE would return ${set.n} records (at most ${MAX_COST_ROWS}); use DAY, WEEK, MONTH or YEAR, or a shorter window`, { field: 'aggregation' });
      const prices = pricesFor(this.ctx, window, flows, warnings);
      data = recordCosts(set, prices, window)
        .sort((x, y) => x.start - y.start)
        .map((r) => {
          mergeCell(total, r.cell);
          return { start_time: localIso(r.start, tz), end_time: localIso(r.end, tz), session_reference_id: set.session![r.index], record_reference_id: set.ref![r.index], energy: { value: round(r.cell.energyWh, 3) }, tariff: this.tariffView(r.cell, q.includeTariff) };
        });
    } else {
      const grid = periodGrid(window, q.aggregation, tz);
      const acc = priceSubject(this.ctx, subject, window, grid, flows, false, warnings);
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
    const subjects = this.ctx.store.sessionSubjects(session);
    if (!subjects.length) throw new ApiError(404, 'session_not_found', `no meter records carry session_reference_id "${session}"`, { field: 'session_reference_id' });
    const flows = FLOWS_OF[q.direction];
    const set = concatSets(subjects.map((s) => this.ctx.store.intervals(s, -Infinity, Infinity, { flows, session })), true);
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
    const tz = this.ctx.site.timezone;
    const warnings: string[] = [];
    const prices = pricesFor(this.ctx, window, flows, warnings);
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
}
