/** Time is carried as Unix epoch milliseconds (UTC instants) everywhere inside the hub. */
export type EpochMs = number;

/** One slot of a price series: `[start, end)` half-open, rate in major currency units per kWh. */
export interface PriceSlot {
  start: EpochMs;
  end: EpochMs;
  rate: number;
  /** 1 = a published price; < 1 = a forecast or a fallback. */
  confidence: number;
}

/** A sorted, non-overlapping list of price slots. Slots may differ in length. */
export type PriceSeries = PriceSlot[];

export type Direction = 'IMPORT' | 'EXPORT';
export type TariffRate = 'IMPORT' | 'EXPORT' | 'LOCAL';

/** A value that holds from `start` until the next entry (EVerest ScheduleReqEntry style). */
export interface TimedValue {
  time: EpochMs;
  value: number;
}

export interface TimeWindow {
  start: EpochMs;
  end: EpochMs;
}

/** Anything that covers `[start, end)`: price slots, meter intervals, forecast points. */
export interface Span {
  start: EpochMs;
  end: EpochMs;
}

/**
 * The binary search every sorted lookup shares: the first index in `[0, n)` for which `before(i)`
 * is false, given that `before` is true up to some index and false from there on; `n` if it never is.
 */
export function partitionPoint(n: number, before: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Index of the first entry of a sorted, non-overlapping list that ends after `t` (binary search);
 * `list.length` if none does.
 */
export function firstEndingAfter(list: readonly { end: EpochMs }[], t: EpochMs): number {
  return partitionPoint(list.length, (i) => list[i].end <= t);
}

/** The entry of a sorted, non-overlapping list that holds the instant `t`, if any. */
export function entryAt<T extends Span>(list: readonly T[], t: EpochMs): T | undefined {
  const i = firstEndingAfter(list, t);
  return i < list.length && list[i].start <= t ? list[i] : undefined;
}

/**
 * The sum over `[a, b)` of a per-interval quantity (energy of an interval, say), each interval
 * counted pro rata by how much of it lies inside the window.
 */
export function proratedSum<T extends Span>(list: readonly T[], a: EpochMs, b: EpochMs, value: (x: T) => number): number {
  let sum = 0;
  for (let i = firstEndingAfter(list, a); i < list.length && list[i].start < b; i++) {
    const x = list[i];
    const overlap = Math.min(b, x.end) - Math.max(a, x.start);
    if (overlap > 0) sum += (value(x) * overlap) / (x.end - x.start);
  }
  return sum;
}
