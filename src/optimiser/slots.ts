import { DateTime } from 'luxon';
import { partitionPoint, type EpochMs, type PriceSeries, type PriceSlot, type TimeWindow } from '../api/index.js';
import { averageOf, MINUTE, sliceSeries } from '../tariff/series.js';

/**
 * Slots by time and by threshold (DESIGN.md §4), and the switched-system settings built on them.
 * Pure: series and settings in, periods out.
 */

export type Segment = 'LOW' | 'HIGH';

/** A period of one or more touching slots, with its time-weighted mean rate and lowest confidence. */
export interface PricePeriod {
  start: EpochMs;
  end: EpochMs;
  rateAvg: number;
  confidence: number;
}

/** The window does not hold enough priced time for the request. */
export class NotEnoughPricesError extends Error {
  constructor(
    readonly requestedMinutes: number,
    readonly availableMinutes: number,
    readonly continuous: boolean,
  ) {
    super(
      continuous
        ? `no unbroken run of ${requestedMinutes} priced minutes in the window (the longest is ${availableMinutes} minutes)`
        : `the window holds ${availableMinutes} priced minutes, fewer than the ${requestedMinutes} requested`,
    );
    this.name = 'NotEnoughPricesError';
  }
}

/** Joins touching pieces into periods. */
export function toPeriods(pieces: readonly PriceSlot[]): PricePeriod[] {
  const periods: PricePeriod[] = [];
  let run: PriceSlot[] = [];
  const flush = () => {
    if (!run.length) return;
    const avg = averageOf(run);
    periods.push({ start: run[0].start, end: run[run.length - 1].end, rateAvg: avg.rate, confidence: avg.confidence });
    run = [];
  };
  for (const p of pieces) {
    if (run.length && run[run.length - 1].end !== p.start) flush();
    run.push(p);
  }
  flush();
  return periods;
}

export interface SlotsByTimeRequest {
  window: TimeWindow;
  segment: Segment;
  /** Minutes wanted; may be fractional. */
  durationMinutes: number;
  /** One unbroken period instead of the best slots wherever they are. */
  continuous?: boolean;
}

/**
 * The cheapest (LOW) or dearest (HIGH) `durationMinutes` of the window. Split: the best slots,
 * ties to the earlier slot, and when the duration is not a whole number of slots the last slot
 * taken is shortened (to the side that touches another chosen slot, else its start). Continuous:
 * the one unbroken stretch with the lowest (highest) mean rate, ties to the earlier start.
 */
export function slotsByTime(series: PriceSeries, req: SlotsByTimeRequest): PricePeriod[] {
  const wanted = req.durationMinutes * MINUTE;
  if (!(wanted > 0)) return [];
  const pieces = sliceSeries(series, req.window);
  return req.continuous ? continuousBest(pieces, wanted, req.segment) : splitBest(pieces, wanted, req.segment);
}

function splitBest(pieces: PriceSlot[], wanted: number, segment: Segment): PricePeriod[] {
  const available = pieces.reduce((a, p) => a + p.end - p.start, 0);
  if (available < wanted) throw new NotEnoughPricesError(wanted / MINUTE, available / MINUTE, false);
  const sign = segment === 'LOW' ? 1 : -1;
  const n = pieces.length;
  const key = new Float64Array(n);
  for (let i = 0; i < n; i++) key[i] = sign * pieces[i].rate;
  // the cut-off key: the smallest value v with (time of slots keyed ≤ v) ≥ wanted; a native numeric
  // sort and a binary search replace sorting the slots themselves (this runs on 90-day windows)
  const sorted = key.slice().sort();
  const timeAtOrBelow = (v: number) => {
    let t = 0;
    for (let i = 0; i < n; i++) if (key[i] <= v) t += pieces[i].end - pieces[i].start;
    return t;
  };
  const cut = sorted[partitionPoint(n - 1, (i) => timeAtOrBelow(sorted[i]) < wanted)];
  // every slot under the cut-off fits whole; slots at it are taken earliest first, the last one shortened
  const taken = new Array<boolean>(n).fill(false);
  let left = wanted;
  for (let i = 0; i < n; i++) {
    if (key[i] < cut) {
      taken[i] = true;
      left -= pieces[i].end - pieces[i].start;
    }
  }
  let partial = -1;
  for (let i = 0; i < n && left > 0; i++) {
    if (key[i] !== cut) continue;
    const len = pieces[i].end - pieces[i].start;
    if (len <= left) {
      taken[i] = true;
      left -= len;
    } else {
      partial = i;
      break;
    }
  }
  const chosen: PriceSlot[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    if (taken[i]) chosen.push(p);
    else if (i === partial) {
      const touchesPrev = i > 0 && taken[i - 1] && pieces[i - 1].end === p.start;
      const touchesNext = i + 1 < pieces.length && taken[i + 1] && pieces[i + 1].start === p.end;
      chosen.push(!touchesPrev && touchesNext ? { ...p, start: p.end - left } : { ...p, end: p.start + left });
    }
  }
  return toPeriods(chosen);
}

function continuousBest(pieces: PriceSlot[], wanted: number, segment: Segment): PricePeriod[] {
  const sign = segment === 'LOW' ? 1 : -1;
  let bestStart = NaN;
  let bestValue = Infinity;
  let longest = 0;
  let maxAbsRate = 0;
  for (const p of pieces) maxAbsRate = Math.max(maxAbsRate, Math.abs(p.rate));
  // sums are in rate·minutes; two candidates within this tolerance are a tie (the earlier wins)
  const tolerance = 1e-9 * Math.max(1, maxAbsRate) * (wanted / MINUTE);
  const n = pieces.length;
  // cumulative integral of the rate at each piece's start, in rate·minutes
  const cum = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) cum[i + 1] = cum[i] + (pieces[i].rate * (pieces[i].end - pieces[i].start)) / MINUTE;
  /** The integral up to t, where piece k holds t. */
  const integral = (t: number, k: number) => cum[k] + (pieces[k].rate * (t - pieces[k].start)) / MINUTE;
  for (let r0 = 0; r0 < n; ) {
    let r1 = r0 + 1;
    while (r1 < n && pieces[r1].start === pieces[r1 - 1].end) r1++;
    const t0 = pieces[r0].start;
    const t1 = pieces[r1 - 1].end;
    longest = Math.max(longest, t1 - t0);
    // boundary i of this run: a piece's start, or the run's end
    const bound = (i: number) => (i < r1 ? pieces[i].start : t1);
    if (t1 - t0 >= wanted) {
      // the mean over [t, t+wanted] is piecewise linear in t: its optimum has t or t+wanted on a
      // boundary, so the candidates are two sorted lists (b and b − wanted), merged as we go
      let a = r0; // next boundary index for "t = b"
      let c = r0; // next boundary index for "t = b − wanted"
      while (c <= r1 && bound(c) - wanted < t0) c++;
      let ks = r0;
      let ke = r0;
      for (;;) {
        const ta = a <= r1 && bound(a) + wanted <= t1 ? bound(a) : Infinity;
        const tc = c <= r1 ? bound(c) - wanted : Infinity;
        const t = Math.min(ta, tc);
        if (t === Infinity) break;
        if (ta === t) a++;
        if (tc === t) c++;
        while (ks + 1 < r1 && pieces[ks + 1].start <= t) ks++;
        const te = t + wanted;
        while (ke + 1 < r1 && pieces[ke + 1].start <= te) ke++;
        const value = sign * ((te >= t1 ? cum[r1] : integral(te, ke)) - integral(t, ks));
        if (value < bestValue - tolerance) {
          bestValue = value;
          bestStart = t;
        }
      }
    }
    r0 = r1;
  }
  if (Number.isNaN(bestStart)) throw new NotEnoughPricesError(wanted / MINUTE, longest / MINUTE, true);
  return toPeriods(sliceSeries(pieces, { start: bestStart, end: bestStart + wanted }));
}

export interface SlotsByThresholdRequest {
  window: TimeWindow;
  segment: Segment;
  /** A rate in the site currency per kWh; wins over `relative`. */
  absolute?: number;
  /** r in (0, 1]: the threshold is min + r·(max − min) over the window's rates. */
  relative?: number;
}

export interface ThresholdResult {
  periods: PricePeriod[];
  /** The rate the slots were compared with (undefined for an empty window). */
  threshold?: number;
  durationMinutes: number;
}

/** a ≤ b, forgiving float noise: rates are currency decimals, and 0.1 + 0.2 must not miss 0.3. */
const atOrBelow = (a: number, b: number) => a <= b + 1e-12 * Math.max(1, Math.abs(b));

/** Slots at or below (LOW) or at or above (HIGH) a threshold, touching slots merged. */
export function slotsByThreshold(series: PriceSeries, req: SlotsByThresholdRequest): ThresholdResult {
  const pieces = sliceSeries(series, req.window);
  if (!pieces.length) return { periods: [], durationMinutes: 0 };
  let threshold: number;
  if (req.absolute !== undefined) threshold = req.absolute;
  else if (req.relative !== undefined) {
    let min = Infinity;
    let max = -Infinity;
    for (const p of pieces) {
      min = Math.min(min, p.rate);
      max = Math.max(max, p.rate);
    }
    threshold = req.relative >= 1 ? max : min + req.relative * (max - min);
  } else throw new RangeError('give an absolute or a relative threshold');
  const keep = req.segment === 'LOW' ? (r: number) => atOrBelow(r, threshold) : (r: number) => atOrBelow(threshold, r);
  const chosen = pieces.filter((p) => keep(p.rate));
  const durationMinutes = chosen.reduce((a, p) => a + (p.end - p.start), 0) / MINUTE;
  return { periods: toPeriods(chosen), threshold, durationMinutes };
}

/** A local time of day, "HH:MM" (24:00 allowed as an end). */
export type ClockTime = string;

export interface SwitchedSettings {
  /** Daily "on" hours: one number, or separate weekday and weekend numbers. */
  hours?: number | { weekday: number; weekend: number };
  /** The daily window the "on" time must fall in; default the whole day (00:00 to 00:00). */
  window?: { from: ClockTime; to: ClockTime };
  /** The "on" period must end by this local time (overrides window.to). */
  mustEndBy?: ClockTime;
  /** "On" only when the rate is at or below this (site currency per kWh). */
  absolute?: number;
  /** "On" only when the rate is at or below min + r·(max − min) of that day's window. */
  relative?: number;
  /** The daily hours in one unbroken run. */
  continuous?: boolean;
}

export interface SwitchedDay {
  /** Local date the daily window starts on. */
  date: string;
  window: TimeWindow;
  periods: PricePeriod[];
  /** Minutes asked for but not found (too few priced or cheap-enough slots). */
  shortMinutes: number;
}

const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$|^24:00$/;

/** Minutes after local midnight of "HH:MM"; throws on a malformed time. */
export function clockMinutes(t: ClockTime): number {
  if (!CLOCK.test(t)) throw new RangeError(`"${t}" is not a time of day HH:MM`);
  const [h, m] = t.split(':').map(Number);
  return h * 60 + m;
}

/** The instant of local clock time `minutes` after midnight of `date` in `zone` (DST gaps move forward). */
export function localInstant(date: DateTime, minutes: number): EpochMs {
  const day = date.startOf('day');
  if (minutes >= 24 * 60) return day.plus({ days: 1 }).toMillis();
  return day.set({ hour: Math.floor(minutes / 60), minute: minutes % 60 }).toMillis();
}

/**
 * The switched-system schedule (FlatPeak "switched system" guide): for each local day whose daily
 * window starts inside `range`, the "on" periods chosen by the settings. With `hours`, the cheapest
 * hours of the daily window (only among slots under the threshold when one is set); without, every
 * slot under the threshold. Weekend = Saturday and Sunday of the day the window starts.
 */
export function switchedSchedule(series: PriceSeries, settings: SwitchedSettings, range: TimeWindow, zone: string): SwitchedDay[] {
  const from = clockMinutes(settings.window?.from ?? '00:00');
  const to = clockMinutes(settings.mustEndBy ?? settings.window?.to ?? '00:00');
  if (settings.hours === undefined && settings.absolute === undefined && settings.relative === undefined) {
    throw new RangeError('give the daily hours, a threshold, or both');
  }
  const days: SwitchedDay[] = [];
  let date = DateTime.fromMillis(range.start, { zone }).startOf('day').minus({ days: 1 });
  if (!date.isValid) throw new RangeError(`unknown time zone "${zone}"`);
  for (; date.toMillis() < range.end; date = date.plus({ days: 1 })) {
    const start = localInstant(date, from);
    const end = to > from ? localInstant(date, to) : localInstant(date.plus({ days: 1 }), to);
    if (start < range.start || start >= range.end) continue;
    const window = { start, end };
    const weekend = date.weekday >= 6;
    const hours = typeof settings.hours === 'object' ? (weekend ? settings.hours.weekend : settings.hours.weekday) : settings.hours;
    let pool = sliceSeries(series, window);
    if (settings.absolute !== undefined || settings.relative !== undefined) {
      const { threshold } = slotsByThreshold(pool, { window, segment: 'LOW', absolute: settings.absolute, relative: settings.relative });
      pool = threshold === undefined ? [] : pool.filter((p) => atOrBelow(p.rate, threshold));
    }
    let periods: PricePeriod[];
    let shortMinutes = 0;
    if (hours === undefined) periods = toPeriods(pool);
    else {
      const wanted = hours * 60;
      try {
        periods = slotsByTime(pool, { window, segment: 'LOW', durationMinutes: wanted, continuous: settings.continuous });
      } catch (err) {
        if (!(err instanceof NotEnoughPricesError)) throw err;
        // not enough cheap-enough time: take what there is rather than nothing
        periods = settings.continuous ? slotsByTime(pool, { window, segment: 'LOW', durationMinutes: err.availableMinutes, continuous: true }) : toPeriods(pool);
        shortMinutes = wanted - err.availableMinutes;
      }
    }
    days.push({ date: date.toISODate()!, window, periods, shortMinutes });
  }
  return days;
}
