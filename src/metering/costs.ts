import { DateTime, IANAZone } from 'luxon';
import { firstEndingAfter, type EpochMs, type PriceSeries, type TimeWindow } from '../api/index.js';
import { BUCKET_MS, flowOf } from './records.js';
import type { IntervalSet } from './store.js';

/**
 * Pure cost arithmetic: energy × the rate of the tariff a record names, split pro rata in time
 * across tariff slots and aggregation periods. LOCAL energy costs nothing. No I/O, no clock.
 */

export type Aggregation = 'NONE' | 'DAY' | 'WEEK' | 'MONTH' | 'YEAR';
export const AGGREGATIONS: readonly Aggregation[] = ['NONE', 'DAY', 'WEEK', 'MONTH', 'YEAR'];

/** The price series for the two tariffs records can name (LOCAL needs none). */
export interface PricesByRate {
  IMPORT: PriceSeries;
  EXPORT: PriceSeries;
}

/** Energy and money of one period (or one record). */
export interface CostCell {
  energyWh: number;
  /** Major currency units. */
  cost: number;
  /** Energy for which a price was known (LOCAL energy counts, at 0). */
  pricedWh: number;
  /** Energy in time no tariff slot covers: it is in `energyWh` but not in `cost`. */
  unpricedWh: number;
  /** Lowest of the records' and the price slots' confidence; 0 when some energy had no price. */
  confidence: number;
}

export const emptyCell = (): CostCell => ({ energyWh: 0, cost: 0, pricedWh: 0, unpricedWh: 0, confidence: 1 });

/** Rate in currency per kWh that the cell's energy was priced at on average. */
export const averageRate = (c: CostCell): number | null => (c.pricedWh > 0 ? c.cost / (c.pricedWh / 1000) : null);

/** Aggregation period boundaries in the site's time zone: `[window.start, …local period starts…, window.end]`. */
export function periodGrid(window: TimeWindow, aggregation: Exclude<Aggregation, 'NONE'>, timezone: string): EpochMs[] {
  const unit = ({ DAY: 'day', WEEK: 'week', MONTH: 'month', YEAR: 'year' } as const)[aggregation];
  let d = DateTime.fromMillis(window.start, { zone: timezone }).startOf(unit);
  if (!d.isValid) throw new Error(`time zone ${timezone} is not valid`);
  const out = [window.start];
  for (;;) {
    d = d.plus({ [unit]: 1 });
    const t = d.toMillis();
    if (t >= window.end) break;
    if (t > out[out.length - 1]) out.push(t);
  }
  out.push(window.end);
  return out;
}

/** True when every boundary inside `(from, to)` of the grid and of the series lies on the 15-minute grid (so buckets price exactly). */
export function onBucketGrid(grid: readonly EpochMs[], series: readonly PriceSeries[], from: EpochMs, to: EpochMs): boolean {
  for (const t of grid) if (t > from && t < to && t % BUCKET_MS !== 0) return false;
  for (const s of series) {
    for (const slot of s) {
      if (slot.end <= from || slot.start >= to) continue;
      if ((slot.start > from && slot.start % BUCKET_MS !== 0) || (slot.end < to && slot.end % BUCKET_MS !== 0)) return false;
    }
  }
  return true;
}

/** Index of the first slot that ends after `t`. */
const firstSlotEndingAfter = (series: PriceSeries, t: EpochMs): number => firstEndingAfter(series, t);

/** Index of the period of `grid` holding `t` (the last boundary at or before it). */
function periodAt(grid: readonly EpochMs[], t: EpochMs): number {
  let lo = 0;
  let hi = grid.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (grid[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

type Sink = (period: number, flow: number, energyWh: number, rate: number, confidence: number) => void;

/**
 * Walks every interval of `set`, clipped to `clip`, through the tariff slots of the tariff it names
 * and the periods of `grid`, handing each piece to `sink` (rate NaN where no slot covers it).
 */
function walk(set: IntervalSet, prices: PricesByRate, clip: TimeWindow, grid: readonly EpochMs[], sink: Sink, only?: number) {
  const from = only ?? 0;
  const to = only === undefined ? set.n : only + 1;
  // cursors into the grid and each series, kept from one interval to the next: sorted input walks them once
  let lastA = Infinity;
  let pCursor = 0;
  const sCursor = [0, 0];
  for (let i = from; i < to; i++) {
    const s = set.start[i];
    const e = set.end[i];
    const a = s > clip.start ? s : clip.start;
    const b = e < clip.end ? e : clip.end;
    if (a >= b) continue;
    const flow = flowOf(set.flags[i]);
    const rateCode = flow >> 1;
    const series = rateCode === 0 ? prices.IMPORT : rateCode === 1 ? prices.EXPORT : undefined;
    const perMs = set.energy[i] / (e - s);
    const rc = set.confidence[i];
    let t = a;
    if (a < lastA) {
      pCursor = periodAt(grid, a);
      sCursor[0] = firstSlotEndingAfter(prices.IMPORT, a);
      sCursor[1] = firstSlotEndingAfter(prices.EXPORT, a);
    } else {
      while (pCursor < grid.length - 2 && grid[pCursor + 1] <= a) pCursor++;
    }
    lastA = a;
    let pi = pCursor;
    let si = 0;
    if (series) {
      si = sCursor[rateCode];
      while (si < series.length && series[si].end <= t) si++;
      sCursor[rateCode] = si;
    }
    while (t < b) {
      const periodEnd = grid[pi + 1];
      let segEnd = b < periodEnd ? b : periodEnd;
      let rate = 0;
      let conf = rc;
      if (series) {
        while (si < series.length && series[si].end <= t) si++;
        const slot = series[si];
        if (slot && slot.start <= t) {
          if (slot.end < segEnd) segEnd = slot.end;
          rate = slot.rate;
          if (slot.confidence < conf) conf = slot.confidence;
        } else {
          if (slot && slot.start < segEnd) segEnd = slot.start;
          rate = NaN;
        }
      }
      sink(pi, flow, perMs * (segEnd - t), rate, conf);
      t = segEnd;
      if (t >= periodEnd && pi < grid.length - 2) pi++;
    }
  }
}

const addTo = (c: CostCell, energyWh: number, rate: number, confidence: number) => {
  c.energyWh += energyWh;
  if (Number.isNaN(rate)) {
    c.unpricedWh += energyWh;
    c.confidence = 0;
    return;
  }
  c.pricedWh += energyWh;
  c.cost += (energyWh / 1000) * rate;
  if (confidence < c.confidence) c.confidence = confidence;
};

/**
 * Sums energy and cost per aggregation period (and per flow, direction × tariff rate, when
 * `byFlow`). Intervals may be added in several calls, each clipped to its own window (buckets for
 * the middle of a query, raw records for its ragged edges).
 */
export class CostAccumulator {
  readonly cells: CostCell[];
  readonly touched: Uint8Array;
  constructor(readonly grid: readonly EpochMs[], readonly byFlow = false) {
    const n = (grid.length - 1) * (byFlow ? 6 : 1);
    this.cells = Array.from({ length: n }, emptyCell);
    this.touched = new Uint8Array(n);
  }

  add(set: IntervalSet, prices: PricesByRate, clip: TimeWindow = { start: this.grid[0], end: this.grid[this.grid.length - 1] }) {
    const c = { start: Math.max(clip.start, this.grid[0]), end: Math.min(clip.end, this.grid[this.grid.length - 1]) };
    walk(set, prices, c, this.grid, (period, flow, energyWh, rate, confidence) => {
      const k = this.byFlow ? period * 6 + flow : period;
      this.touched[k] = 1;
      addTo(this.cells[k], energyWh, rate, confidence);
    });
  }

  /** One row per period: its bounds and its cell (all flows summed). */
  periods(): { start: EpochMs; end: EpochMs; cell: CostCell; touched: boolean }[] {
    const out = [];
    for (let p = 0; p < this.grid.length - 1; p++) {
      let cell: CostCell;
      let touched = false;
      if (!this.byFlow) {
        cell = this.cells[p];
        touched = this.touched[p] === 1;
      } else {
        cell = emptyCell();
        for (let f = 0; f < 6; f++) {
          if (!this.touched[p * 6 + f]) continue;
          touched = true;
          mergeCell(cell, this.cells[p * 6 + f]);
        }
      }
      out.push({ start: this.grid[p], end: this.grid[p + 1], cell, touched });
    }
    return out;
  }

  /** The whole window for one flow (needs `byFlow`). */
  flowTotal(flow: number): CostCell {
    const cell = emptyCell();
    for (let p = 0; p < this.grid.length - 1; p++) if (this.touched[p * 6 + flow]) mergeCell(cell, this.cells[p * 6 + flow]);
    return cell;
  }

  total(): CostCell {
    const cell = emptyCell();
    for (let k = 0; k < this.cells.length; k++) if (this.touched[k]) mergeCell(cell, this.cells[k]);
    return cell;
  }
}

export function mergeCell(into: CostCell, c: CostCell) {
  into.energyWh += c.energyWh;
  into.cost += c.cost;
  into.pricedWh += c.pricedWh;
  into.unpricedWh += c.unpricedWh;
  if (c.confidence < into.confidence) into.confidence = c.confidence;
}

/** Cost of each interval on its own (aggregation NONE), clipped to `clip`. */
export function recordCosts(set: IntervalSet, prices: PricesByRate, clip: TimeWindow): { index: number; start: EpochMs; end: EpochMs; cell: CostCell }[] {
  const out = [];
  for (let i = 0; i < set.n; i++) {
    const start = Math.max(set.start[i], clip.start);
    const end = Math.min(set.end[i], clip.end);
    if (start >= end) continue;
    const cell = emptyCell();
    walk(set, prices, { start, end }, [start, end], (_p, _f, energyWh, rate, confidence) => addTo(cell, energyWh, rate, confidence), i);
    out.push({ index: i, start, end, cell });
  }
  return out;
}

/** Total energy and cost of a set of intervals inside a window. */
export function totalCost(set: IntervalSet, prices: PricesByRate, window: TimeWindow): CostCell {
  const acc = new CostAccumulator([window.start, window.end]);
  acc.add(set, prices, window);
  return acc.total();
}

/** Interval columns from plain objects (tests, baselines). */
export function intervalSet(items: readonly { start: EpochMs; end: EpochMs; energyWh: number; flags: number; confidence?: number; session?: string | null; ref?: string | null }[]): IntervalSet {
  const n = items.length;
  const set: IntervalSet = {
    n,
    start: new Float64Array(n),
    end: new Float64Array(n),
    energy: new Float64Array(n),
    flags: new Uint8Array(n),
    confidence: new Float32Array(n),
    session: [],
    ref: [],
  };
  items.forEach((x, i) => {
    set.start[i] = x.start;
    set.end[i] = x.end;
    set.energy[i] = x.energyWh;
    set.flags[i] = x.flags;
    set.confidence[i] = x.confidence ?? 1;
    set.session!.push(x.session ?? null);
    set.ref!.push(x.ref ?? null);
  });
  return set;
}

const zones = new Map<string, { zone: IANAZone; offsets: Map<number, number> }>();

/** UTC offset (minutes) of a zone at `t`, cached per quarter hour: offsets only change on such boundaries, and asking Intl is slow. */
export function offsetAt(t: EpochMs, timezone: string): number {
  let z = zones.get(timezone);
  if (!z) zones.set(timezone, (z = { zone: IANAZone.create(timezone), offsets: new Map() }));
  const q = Math.floor(t / BUCKET_MS);
  let offset = z.offsets.get(q);
  if (offset === undefined) {
    if (z.offsets.size > 200_000) z.offsets.clear();
    offset = z.zone.offset(q * BUCKET_MS);
    z.offsets.set(q, offset);
  }
  return offset;
}

/** RFC 3339 time with the site's UTC offset at that instant (so a day's row reads as local midnight). */
export function localIso(t: EpochMs, timezone: string): string {
  const offset = offsetAt(t, timezone);
  const base = new Date(t + offset * 60_000).toISOString();
  const ms = t % 1000 !== 0 ? base.slice(19, 23) : '';
  if (offset === 0) return `${base.slice(0, 19)}${ms}Z`;
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${base.slice(0, 19)}${ms}${sign}${hh}:${mm}`;
}

export const round = (x: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
