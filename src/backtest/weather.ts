import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { decodeText, HOUR, partitionPoint, proratedSum } from '../api/index.js';
import type { PlanSlot } from '../optimiser/site/index.js';
import { prng } from '../optimiser/thermal-history.js';
import { csvRows, InputError, type Interval } from './read.js';

/** A PV forecast as it was known at each instant: what a weather service would have answered then. */
export interface PvForecastArchive {
  describe: string;
  /** Mean PV power (W) per slot, as forecast by the last issue at or before `issuedBy`. */
  powerW(issuedBy: number, slots: readonly PlanSlot[]): number[];
}

/** Mean power (W) of kWh-per-interval values over a slot, prorated. */
function meanW(series: readonly { start: number; end: number; value: number }[], a: number, b: number): number {
  return (proratedSum(series, a, b, (r) => r.value) * 1000 * HOUR) / (b - a);
}

export interface SyntheticPvOptions {
  /** Measured PV (kWh per interval), sorted. */
  pv: readonly Interval[];
  timezone: string;
  /** Standard deviation of the log of each day's forecast ÷ actual ratio (the whole day misjudged). */
  sigma: number;
  /** Day-to-day persistence of the daily error (AR(1) coefficient): cloudy spells missed for several days. */
  phi?: number;
  /** Standard deviation of the log of each hour's further factor (clouds forecast at the wrong hours); 0 = none. */
  hourSigma?: number;
  /** Hour-to-hour persistence of the hourly factor (AR(1) coefficient). */
  rho?: number;
  seed?: number;
}

/**
 * The published error level the synthetic forecast is set to by default: the day-ahead hourly PV
 * power forecasts of Larson, Nonnenmacher & Coimbra, "Day-ahead forecasting of solar power output
 * from photovoltaic plants in the American Southwest", Renewable Energy 91 (2016) 11–20: RMSE
 * 10.3–14.0 % of nameplate capacity on two 1 MWp plants in California (the worse plant's 14.0 %;
 * a single rooftop in the same climate is not forecast better). The same paper: the day's energy
 * over-forecast by more than 40 % on only two days in three years at one plant (none at the other).
 */
export const PUBLISHED_NRMSE = 0.14;
/**
 * σ of the daily factor at the published level: exp(σz − σ²/2) > 1.4 on 2 days in 1,095 needs
 * z > 2.91, so σ ≈ 0.12 (other levels scale it in proportion).
 */
export const PUBLISHED_DAILY_SIGMA = 0.12;

/**
 * A synthetic day-ahead PV forecast: the measured production times a factor per local day,
 * exp(σ·z − σ²/2) with z an AR(1) series over days (whole days too sunny or too dull, spells of
 * them), times a factor per hour, exp(σh·u − σh²/2) with u an AR(1) series over hours (clouds
 * forecast a few hours early or late), rescaled within each day so that it moves energy between the
 * day's hours without changing the day's total — not white noise. Every slot carries its day's and hour's
 * factor whatever the lead time (a day-ahead forecast, not updated within the day).
 */
export function syntheticPvForecast(o: SyntheticPvOptions): PvForecastArchive & { factorOf(t: number): number; dayFactorOf(t: number): number } {
  const phi = o.phi ?? 0.6;
  const rho = o.rho ?? 0.8;
  const hs = o.hourSigma ?? 0;
  const rnd = prng(o.seed ?? 1).next;
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const factors = new Map<string, number>();
  let firstHour = 0;
  const hourly: number[] = [];
  if (o.pv.length) {
    const first = DateTime.fromMillis(o.pv[0].start, { zone: o.timezone }).startOf('day');
    const last = DateTime.fromMillis(o.pv[o.pv.length - 1].end, { zone: o.timezone });
    let z = gauss();
    for (let d = first; d <= last; d = d.plus({ days: 1 })) {
      factors.set(d.toISODate()!, Math.exp(o.sigma * z - (o.sigma * o.sigma) / 2));
      z = phi * z + Math.sqrt(1 - phi * phi) * gauss();
    }
    // the hourly series is drawn after the daily one, so the days do not change with σh
    firstHour = Math.floor(first.toMillis() / HOUR);
    let u = gauss();
    for (let h = firstHour; h <= Math.ceil(last.toMillis() / HOUR); h++) {
      hourly.push(Math.exp(hs * u - (hs * hs) / 2));
      u = rho * u + Math.sqrt(1 - rho * rho) * gauss();
    }
    // the hourly factors only move the day's energy between its hours: rescaled per day so that the
    // day's forecast energy is the measured × the daily factor (the day's error is the daily factor's)
    if (hs > 0) {
      const sums = new Map<string, { a: number; ah: number; hours: number[] }>();
      for (let k = 0; k < hourly.length; k++) {
        const t = (firstHour + k) * HOUR;
        const d = DateTime.fromMillis(t, { zone: o.timezone }).toISODate()!;
        const a = meanW(o.pv, t, t + HOUR);
        const s = sums.get(d) ?? sums.set(d, { a: 0, ah: 0, hours: [] }).get(d)!;
        s.a += a;
        s.ah += a * hourly[k];
        s.hours.push(k);
      }
      for (const s of sums.values()) if (s.ah > 0) for (const k of s.hours) hourly[k] *= s.a / s.ah;
    }
  }
  // the day of a slot, by its local date, cached per hour
  const dayOf = new Map<number, string>();
  const dayFactorOf = (t: number) => {
    const h = Math.floor(t / HOUR);
    let d = dayOf.get(h);
    if (d === undefined) dayOf.set(h, (d = DateTime.fromMillis(h * HOUR, { zone: o.timezone }).toISODate()!));
    return factors.get(d) ?? 1;
  };
  const factorOf = (t: number) => dayFactorOf(t) * (hourly[Math.floor(t / HOUR) - firstHour] ?? 1);
  return {
    describe: `synthetic day-ahead PV forecast: measured × daily lognormal factor (σ ${o.sigma.toFixed(3)}, AR(1) φ ${phi}) × hourly lognormal factor (σ ${hs.toFixed(3)}, AR(1) ρ ${rho}), seed ${o.seed ?? 1}`,
    factorOf,
    dayFactorOf,
    powerW(_issuedBy, slots) {
      return slots.map((s) => meanW(o.pv, s.start, s.end) * factorOf(s.start));
    },
  };
}

/**
 * nRMSE of an hourly PV forecast against the measured production, normalised by the array's kWp,
 * over daylight hours (hours where either is above zero): the usual figure of forecast papers.
 */
export function pvNrmse(pv: readonly Interval[], forecast: PvForecastArchive, kWp: number, from: number, to: number): number {
  let sum = 0;
  let n = 0;
  for (let t = Math.ceil(from / HOUR) * HOUR; t + HOUR <= to; t += HOUR) {
    const actual = meanW(pv, t, t + HOUR);
    const f = forecast.powerW(t, [{ start: t, end: t + HOUR }])[0];
    if (actual <= 1 && f <= 1) continue;
    sum += ((f - actual) / (kWp * 1000)) ** 2;
    n++;
  }
  return n ? Math.sqrt(sum / n) : 0;
}

/** The σ in [0, 3] at which `nrmseOf(σ)` reaches `target` (bisection; the error grows with σ). */
function bisect(nrmseOf: (s: number) => number, target: number): number {
  let lo = 0;
  let hi = 3;
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if (nrmseOf(mid) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * The σ's of a synthetic forecast with the given hourly nRMSE over [from, to): the daily factor's σ
 * is the published one scaled with the level (PUBLISHED_DAILY_SIGMA × target ÷ PUBLISHED_NRMSE),
 * the hourly factor makes up the rest; where the daily factor alone is already too wrong, it is
 * reduced and there is no hourly factor.
 */
export function sigmasForNrmse(o: Omit<SyntheticPvOptions, 'sigma' | 'hourSigma'>, kWp: number, target: number, from: number, to: number): { sigma: number; hourSigma: number } {
  if (target <= 0) return { sigma: 0, hourSigma: 0 };
  const err = (sigma: number, hourSigma: number) => pvNrmse(o.pv, syntheticPvForecast({ ...o, sigma, hourSigma }), kWp, from, to);
  const sigma = (PUBLISHED_DAILY_SIGMA * target) / PUBLISHED_NRMSE;
  if (err(sigma, 0) >= target) return { sigma: bisect((s) => err(s, 0), target), hourSigma: 0 };
  return { sigma, hourSigma: bisect((h) => err(sigma, h), target) };
}

/**
 * A recorded forecast archive, CSV `issued,time,value`: the forecast issued at `issued` (ISO 8601)
 * for the interval starting at `time`, `value` kWh in the interval (like --pv); each issue's
 * intervals last until the next time of the same issue. A plan at t uses the latest issue ≤ t.
 */
export function readPvForecastArchive(file: string, timezone: string): PvForecastArchive {
  let text: string;
  try {
    text = decodeText(readFileSync(file));
  } catch (err) {
    throw new InputError(`--weather ${file}: cannot read (${(err as Error).message})`);
  }
  const [head, ...rows] = csvRows(file, text, ',');
  const header = head?.line === 1 ? head.cells.map((h) => h.toLowerCase()) : undefined;
  if (!header || header[0] !== 'issued' || header[1] !== 'time' || header[2] !== 'value') throw new InputError(`${file}:1: expected the header "issued,time,value"`);
  const parse = (s: string, line: number, what: string) => {
    const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(s);
    const d = zoned ? DateTime.fromISO(s, { setZone: true }) : DateTime.fromISO(s, { zone: timezone });
    if (!d.isValid) throw new InputError(`${file}:${line}: ${what} "${s}" is not an ISO 8601 time`);
    return d.toMillis();
  };
  const byIssue = new Map<number, { start: number; value: number }[]>();
  for (const { cells, line } of rows) {
    const [issued, time, value] = cells;
    const v = Number(value);
    if (value === undefined || value === '' || !Number.isFinite(v)) throw new InputError(`${file}:${line}: value "${value ?? ''}" is not a number`);
    const at = parse(issued, line, 'issued');
    const list = byIssue.get(at) ?? byIssue.set(at, []).get(at)!;
    list.push({ start: parse(time ?? '', line, 'time'), value: v });
  }
  if (!byIssue.size) throw new InputError(`${file}: no forecasts`);
  const issues = [...byIssue.keys()].sort((a, b) => a - b);
  const series = new Map<number, Interval[]>();
  for (const at of issues) {
    const rows = byIssue.get(at)!.sort((a, b) => a.start - b.start);
    series.set(
      at,
      rows.map((r, k) => ({ start: r.start, end: k + 1 < rows.length ? rows[k + 1].start : r.start + (k > 0 ? r.start - rows[k - 1].start : HOUR), value: r.value })),
    );
  }
  return {
    describe: `PV forecast archive ${file} (${issues.length} issues)`,
    powerW(issuedBy, slots) {
      const lo = partitionPoint(issues.length, (i) => issues[i] <= issuedBy);
      // before the first issue nothing was known: no PV expected
      if (lo === 0) return slots.map(() => 0);
      const s = series.get(issues[lo - 1])!;
      return slots.map((sl) => meanW(s, sl.start, sl.end));
    },
  };
}
