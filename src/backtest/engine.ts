import { DateTime } from 'luxon';
import { entryAt, firstEndingAfter, HOUR, proratedSum } from '../api/index.js';
import { ratesForSlots, slotGrid } from '../control/model.js';
import { clearSkyPvForecast, historyLoadForecast, learnedLoadForecast, standardProfileLoad, withRecentError, dailyPvRatio, ratioQuantile, robustPvFactor, ROBUST_DAYS, ROBUST_MIN_DAYS, type EnergyInterval, type PvArray } from '../optimiser/forecast/index.js';
import { firstSlotResponse } from '../optimiser/site/battery.js';
import { batteryCommand, commandPowerW, type SelfConsumptionBattery } from '../optimiser/self-consumption.js';
import { planSite, powerToReach, roomStep, type EvSession, type LpSolver, type PlanSlot, type SitePlan, type SiteProblem } from '../optimiser/site/index.js';
import type { Interval } from './read.js';
import type { PvForecastArchive } from './weather.js';

/**
 * Replays a period step by step under several strategies and settles each at the data's
 * resolution. No I/O: the data and the solver are handed in; progress is reported by callback.
 */

export interface BatterySpec {
  capacityWh: number;
  chargeW: number;
  dischargeW: number;
  chargeEfficiency: number;
  dischargeEfficiency: number;
  socMinWh: number;
  socMaxWh: number;
  initialWh: number;
  cycleCostPerKwh?: number;
}

export interface EvSpec {
  minW: number;
  maxW: number;
  /** Local "HH:MM" the car plugs in and leaves, every day (or weekdays only). */
  arrive: string;
  leave: string;
  /** Energy each stay must deliver (Wh). */
  energyWh: number;
  /** Most energy a stay can take (Wh); default 3 × energyWh. */
  roomWh?: number;
  weekdaysOnly?: boolean;
}

export interface HvacSpec {
  mode: 'cool' | 'heat';
  rKPerKw: number;
  cKwhPerK: number;
  cop: number;
  maxElectricW: number;
  gainsW: number;
  minC: number;
  maxC: number;
  initialC: number;
  /** Outdoor temperature when no file is given: a daily sinusoid between these. */
  outdoorMinC?: number;
  outdoorMaxC?: number;
}

export interface BacktestData {
  importRate: Interval[];
  exportRate: Interval[];
  /** kWh per interval. */
  load: Interval[];
  pv: Interval[];
  outdoor?: Interval[];
}

export type StrategyName = 'none' | 'self_consumption' | 'price_threshold' | 'homeflex' | 'optimum';
export const STRATEGIES: StrategyName[] = ['none', 'self_consumption', 'price_threshold', 'homeflex', 'optimum'];

export interface BacktestOptions {
  from: number;
  to: number;
  timezone: string;
  battery?: BatterySpec;
  ev?: EvSpec;
  hvac?: HvacSpec;
  forecast: 'perfect' | 'history' | 'weather';
  /** Weather mode: the PV forecast as it was known at each instant (an archive or a synthetic one, see weather.ts). */
  pvForecastArchive?: PvForecastArchive;
  /** What a kWh left in the battery at the plan horizon's end is worth (default: the site LP's, the horizon's median import rate × discharge efficiency). */
  terminalValuePerKwh?: number;
  /**
   * Forecast modes other than perfect: `robust` (default) plans with the PV that the recent sunnier
   * days would bring (the forecast × a high quantile of the last 28 days' actual ÷ forecast ratios),
   * so grid charging buys only what such a day would leave short; `scenarios` hedges each plan's
   * first slot over PV scenarios drawn from those ratios; `point` plans with the forecast alone.
   */
  uncertainty?: 'point' | 'scenarios' | 'robust';
  /** Robust mode: the quantile of the recent actual ÷ forecast PV ratios the plan assumes (default 0.9). */
  robustQuantile?: number;
  /**
   * Base-load forecaster in the history and weather modes: `learned` (default, as the hub's
   * forecasts.load default: recent days weighted, by day type; re-made every local midnight) or
   * `same_weekday` (the same weekday of the last four weeks).
   */
  loadModel?: 'learned' | 'same_weekday';
  /**
   * Experiment (not the hub's behaviour): the learned model forecasts this weighted quantile of the
   * past days' load instead of their weighted mean (the hub's). The median was measured in issue 15
   * and not kept (docs/backtest.md, "Where it still loses").
   */
  loadQuantile?: number;
  /**
   * Hours over which the base-load forecast's error of the last hour fades out of the next slots
   * (the hub knows what the house drew a moment ago); 0 = no correction.
   */
  loadCorrectionHours?: number;
  /** Base-load forecasts by quarter-hour start, shared between runs over the same data (same_weekday model). */
  loadForecastCache?: Map<number, number>;
  /** Planner for the homeflex strategy: `dp` (default) or `auto` (as the hub: HiGHS where a slot is not convex), see SiteOptions.method. */
  planner?: 'dp' | 'auto' | 'lp';
  /** Diagnostics: parts of the forecast taken from the actual data in forecast modes (to tell which part costs what). */
  perfectParts?: ('load' | 'pv' | 'prices')[];
  /** Experimental: how the plan's battery slot is executed against the actual house. */
  execution?: 'rule' | 'modes' | 'value';
  /** Re-plan every this many minutes (homeflex strategy). */
  replanMinutes: number;
  slotMinutes: number;
  horizonHours: number;
  /** For the PV forecast in history mode. */
  pvArray?: PvArray;
  /** Local hour at which the next day's prices become known (history mode; day-ahead auctions publish ~13:00). */
  pricesKnownAtHour?: number;
  strategies?: StrategyName[];
  onProgress?: (done: number, total: number, at: number, strategy: StrategyName) => void;
}

export interface StrategyTotals {
  importKwh: number;
  exportKwh: number;
  cost: number;
  /** Value of the energy left in the battery at the end versus the start (already in `cost`). */
  endEnergyValue: number;
  evShortfallKwh: number;
  discomfortKh: number;
}

export interface StrategyResult extends StrategyTotals {
  name: StrategyName;
  months: ({ month: string } & StrategyTotals)[];
  /** Per settlement interval: net grid energy (kWh, + import), battery SoC at the end (kWh). */
  netKwh: Float64Array;
  socKwh: Float64Array;
  plans?: number;
  solveMs?: number;
}

export interface BacktestResult {
  settlement: { start: number; end: number; importRate: number; exportRate: number; loadKwh: number; pvKwh: number }[];
  strategies: StrategyResult[];
  /** Value per kWh given to energy left in the battery at the end: mean import rate × discharge efficiency. */
  endValuePerKwh: number;
  stepMinutes: { min: number; max: number };
}

interface Step {
  start: number;
  end: number;
  h: number;
  importRate: number;
  exportRate: number;
  loadKwh: number;
  pvKwh: number;
  outdoorC: number;
  settle: number;
  /** The EV stay this step lies in, or −1. */
  session: number;
}

/** Value of an interval series at instant t (the interval containing it), by binary search. */
const valueAt = (series: readonly Interval[], t: number): Interval | undefined => entryAt(series, t);

/** kWh of an energy series inside [a, b), prorated. */
const energyIn = (series: readonly Interval[], a: number, b: number): number => proratedSum(series, a, b, (r) => r.value);

/** The EV's stays over [from, to): daily from `arrive` to `leave` local time. */
export function evSessions(ev: EvSpec, from: number, to: number, timezone: string): { from: number; until: number }[] {
  const [ah, am] = ev.arrive.split(':').map(Number);
  const [lh, lm] = ev.leave.split(':').map(Number);
  const crosses = lh * 60 + lm <= ah * 60 + am;
  const out: { from: number; until: number }[] = [];
  for (let d = DateTime.fromMillis(from, { zone: timezone }).startOf('day').minus({ days: 1 }); d.toMillis() < to; d = d.plus({ days: 1 })) {
    if (ev.weekdaysOnly && d.weekday > 5) continue;
    const a = d.set({ hour: ah, minute: am }).toMillis();
    const l = (crosses ? d.plus({ days: 1 }) : d).set({ hour: lh, minute: lm }).toMillis();
    if (l > from && a < to) out.push({ from: a, until: l });
  }
  return out;
}

const sinusoidC = (t: number, timezone: string, lo: number, hi: number) => {
  const d = DateTime.fromMillis(t, { zone: timezone });
  return (lo + hi) / 2 + ((hi - lo) / 2) * Math.cos(((d.hour + d.minute / 60 - 15) / 24) * 2 * Math.PI);
};

/** Builds the replay's step grid: every settlement boundary, the plan slots, and the EV's arrivals and departures. */
function buildSteps(data: BacktestData, o: BacktestOptions, sessions: { from: number; until: number }[]): { steps: Step[]; settle: BacktestResult['settlement'] } {
  const inRange = (t: number) => t > o.from && t < o.to;
  const settleB = new Set<number>([o.from, o.to]);
  for (const s of [data.importRate, data.exportRate, data.load, data.pv]) for (const r of s) {
    if (inRange(r.start)) settleB.add(r.start);
    if (inRange(r.end)) settleB.add(r.end);
  }
  const settleList = [...settleB].sort((a, b) => a - b);
  const stepB = new Set(settleList);
  const len = o.slotMinutes * 60_000;
  for (let t = Math.ceil(o.from / len) * len; t < o.to; t += len) stepB.add(t);
  for (const s of sessions) for (const t of [s.from, s.until]) if (inRange(t)) stepB.add(t);
  const stepList = [...stepB].sort((a, b) => a - b);
  const rate = (series: Interval[], t: number, what: string) => {
    const r = valueAt(series, t);
    if (!r) throw new Error(`no ${what} price for ${new Date(t).toISOString()}`);
    return r.value;
  };
  const settle = settleList.slice(0, -1).map((start, i) => {
    const end = settleList[i + 1];
    return { start, end, importRate: rate(data.importRate, start, 'import'), exportRate: rate(data.exportRate, start, 'export'), loadKwh: energyIn(data.load, start, end), pvKwh: energyIn(data.pv, start, end) };
  });
  const steps: Step[] = [];
  let si = 0;
  let sess = 0;
  for (let i = 0; i + 1 < stepList.length; i++) {
    const start = stepList[i];
    const end = stepList[i + 1];
    while (si + 1 < settle.length && settle[si].end <= start) si++;
    while (sess < sessions.length && sessions[sess].until <= start) sess++;
    const outdoor = data.outdoor ? valueAt(data.outdoor, start)?.value : undefined;
    steps.push({
      start,
      end,
      h: (end - start) / HOUR,
      importRate: settle[si].importRate,
      exportRate: settle[si].exportRate,
      loadKwh: energyIn(data.load, start, end),
      pvKwh: energyIn(data.pv, start, end),
      outdoorC: outdoor ?? (o.hvac ? sinusoidC(start, o.timezone, o.hvac.outdoorMinC ?? 20, o.hvac.outdoorMaxC ?? 32) : 0),
      settle: si,
      session: sess < sessions.length && sessions[sess].from <= start && start < sessions[sess].until ? sess : -1,
    });
  }
  return { steps, settle };
}

/** The state every strategy carries from step to step. */
interface DeviceState {
  socKwh: number;
  tempC: number;
  evDeliveredKwh: number[];
}

interface Actions {
  batteryKw: number;
  evKw: number;
  hvacKw: number;
}

/** Battery power clipped to its limits and the energy it has (kW, + = charge). */
function clipBattery(b: BatterySpec | undefined, socKwh: number, kw: number, h: number): number {
  if (!b) return 0;
  if (kw > 0) return Math.max(0, Math.min(kw, b.chargeW / 1000, (b.socMaxWh / 1000 - socKwh) / (b.chargeEfficiency * h)));
  if (kw < 0) return -Math.max(0, Math.min(-kw, b.dischargeW / 1000, ((socKwh - b.socMinWh / 1000) * b.dischargeEfficiency) / h));
  return 0;
}

const asSelfConsumption = (b: BatterySpec): SelfConsumptionBattery => ({ socMinWh: b.socMinWh, socMaxWh: b.socMaxWh, initialWh: b.initialWh, maxChargeW: b.chargeW, maxDischargeW: b.dischargeW, chargeEfficiency: b.chargeEfficiency, dischargeEfficiency: b.dischargeEfficiency });

/** The battery covering the house's net flow by itself (an inverter in self-consumption mode). */
const followHouse = (b: BatterySpec | undefined, s: DeviceState, netKw: number, h: number) => clipBattery(b, s.socKwh, -netKw, h);

export async function runBacktest(data: BacktestData, o: BacktestOptions, solver: LpSolver): Promise<BacktestResult> {
  const sessions = o.ev ? evSessions(o.ev, o.from - 2 * 24 * HOUR, o.to + (o.horizonHours + 24) * HOUR, o.timezone) : [];
  const { steps, settle } = buildSteps(data, o, sessions);
  const room = o.ev ? (o.ev.roomWh ?? 3 * o.ev.energyWh) / 1000 : 0;
  const need = o.ev ? o.ev.energyWh / 1000 : 0;
  const names = o.strategies ?? STRATEGIES;
  const meanImport = settle.reduce((a, s) => a + s.importRate * (s.end - s.start), 0) / (o.to - o.from);
  const endValuePerKwh = meanImport * (o.battery?.dischargeEfficiency ?? 1);
  const thermostatKw = (s: DeviceState, st: Step) => {
    const hv = o.hvac!;
    const room = { rKPerKw: hv.rKPerKw, cKwhPerK: hv.cKwhPerK, cop: hv.cop, sign: hv.mode === 'cool' ? (1 as const) : (-1 as const) };
    const edge = hv.mode === 'cool' ? hv.maxC : hv.minC;
    return Math.min(hv.maxElectricW / 1000, Math.max(0, powerToReach(room, s.tempC, edge, st.outdoorC, hv.gainsW / 1000, st.h)));
  };
  /** EV at full power from plug-in until the stay's energy is in (the baseline of DESIGN.md §4). */
  const evAtOnce = (s: DeviceState, st: Step) => (st.session >= 0 ? Math.max(0, Math.min(o.ev!.maxW / 1000, (need - s.evDeliveredKwh[st.session]) / st.h)) : 0);

  // the price-threshold rule looks at each local day's rates
  const dayOf = steps.map((st) => DateTime.fromMillis(st.start, { zone: o.timezone }).toISODate()!);
  const dayThresholds = new Map<string, { low: number; median: number }>();
  {
    const byDay = new Map<string, number[]>();
    steps.forEach((st, j) => (byDay.get(dayOf[j]) ?? byDay.set(dayOf[j], []).get(dayOf[j])!).push(st.importRate));
    for (const [d, rates] of byDay) {
      rates.sort((p, q) => p - q);
      dayThresholds.set(d, { low: rates[Math.floor(rates.length * 0.15)], median: rates[Math.floor(rates.length / 2)] });
    }
  }

  const ctx = planningContext(data, o, sessions);
  const scBattery = o.battery ? asSelfConsumption(o.battery) : undefined;
  const results: StrategyResult[] = [];
  const totalSteps = steps.length * names.filter((n) => n !== 'optimum').length + (names.includes('optimum') ? steps.length : 0);
  let done = 0;
  let current: StrategyName = names[0];
  const progress = (at: number) => o.onProgress?.(done, totalSteps, at, current);

  for (const name of names) {
    current = name;
    if (name === 'optimum') {
      results.push(optimum(data, o, steps, settle, sessions, solver, endValuePerKwh));
      done += steps.length;
      progress(o.to);
      continue;
    }
    const state: DeviceState = { socKwh: (o.battery?.initialWh ?? 0) / 1000, tempC: o.hvac?.initialC ?? 0, evDeliveredKwh: sessions.map(() => 0) };
    const netKwh = new Float64Array(settle.length);
    const socKwh = new Float64Array(settle.length);
    let evShortKwh = 0;
    let discomfort = 0;
    let plan: SitePlan | undefined;
    let nextReplan = o.from;
    let plans = 0;
    let solveMs = 0;
    for (let j = 0; j < steps.length; j++) {
      const st = steps[j];
      const houseKw = (st.loadKwh - st.pvKwh) / st.h;
      const a: Actions = { batteryKw: 0, evKw: 0, hvacKw: 0 };
      if (name === 'homeflex') {
        const newPrices = o.forecast !== 'perfect' && ctx.isPriceRelease(st.start);
        if (!plan || st.start >= nextReplan || newPrices) {
          const t0 = performance.now();
          plan = planSite(ctx.problemAt(st.start, state, need, room), solver);
          solveMs += performance.now() - t0;
          plans++;
          while (nextReplan <= st.start) nextReplan += o.replanMinutes * 60_000;
        }
        const k = plan.slots.findIndex((s) => s.start <= st.start && st.start < s.end);
        const bat = plan.devices.find((d) => d.kind === 'battery');
        const ev = plan.devices.find((d) => d.kind === 'ev');
        const hv = plan.devices.find((d) => d.kind === 'hvac');
        a.evKw = st.session >= 0 && ev ? Math.min(ev.powerW[k] / 1000, Math.max(0, (room - state.evDeliveredKwh[st.session]) / st.h)) : 0;
        // the thermostat keeps the band edge if the plan's power would let the room leave it
        if (hv) a.hvacKw = Math.max(hv.powerW[k] / 1000, thermostatKw(state, st));
        if (bat) {
          const house = houseKw + a.evKw + a.hvacKw;
          const exec = o.execution ?? 'rule';
          const respond = exec !== 'modes' ? firstSlotResponse(plan) : undefined;
          if (exec === 'value' && respond) a.batteryKw = clipBattery(o.battery, state.socKwh, respond(k, house, state.socKwh), st.h);
          else {
            // the hub's execution rule: a command from the plan, the inverter's own response to the actual house
            const cmd = batteryCommand(scBattery!, bat, k, state.socKwh * 1000, respond);
            a.batteryKw = commandPowerW(scBattery!, cmd, state.socKwh * 1000, house * 1000, st.h) / 1000;
          }
        }
      } else {
        a.evKw = o.ev ? evAtOnce(state, st) : 0;
        a.hvacKw = o.hvac ? thermostatKw(state, st) : 0;
        const net = houseKw + a.evKw + a.hvacKw;
        if (name === 'self_consumption') a.batteryKw = followHouse(o.battery, state, net, st.h);
        else if (name === 'price_threshold' && o.battery) {
          const { low: dayLow, median: dayMedian } = dayThresholds.get(dayOf[j])!;
          // grid-charge in the day's cheapest 15 %, cover the house only at or above the median, always soak up surplus
          if (st.importRate <= dayLow) a.batteryKw = clipBattery(o.battery, state.socKwh, o.battery.chargeW / 1000, st.h);
          else if (st.importRate >= dayMedian) a.batteryKw = followHouse(o.battery, state, net, st.h);
          else a.batteryKw = Math.max(0, followHouse(o.battery, state, net, st.h));
        }
      }
      // apply
      if (a.batteryKw > 0) state.socKwh += a.batteryKw * st.h * o.battery!.chargeEfficiency;
      else if (a.batteryKw < 0) state.socKwh += (a.batteryKw * st.h) / o.battery!.dischargeEfficiency;
      if (st.session >= 0) state.evDeliveredKwh[st.session] += a.evKw * st.h;
      if (o.hvac) {
        const hv = o.hvac;
        state.tempC = roomStep({ rKPerKw: hv.rKPerKw, cKwhPerK: hv.cKwhPerK, cop: hv.cop, sign: hv.mode === 'cool' ? 1 : -1 }, state.tempC, st.outdoorC, hv.gainsW / 1000, a.hvacKw, st.h);
        discomfort += (Math.max(0, state.tempC - hv.maxC - 0.01) + Math.max(0, hv.minC - state.tempC - 0.01)) * st.h;
      }
      netKwh[st.settle] += (houseKw + a.batteryKw + a.evKw + a.hvacKw) * st.h;
      socKwh[st.settle] = state.socKwh;
      // a stay that ends here without its energy is short
      if (st.session >= 0 && (j + 1 === steps.length || steps[j + 1].session !== st.session) && sessions[st.session].until <= o.to) evShortKwh += Math.max(0, need - state.evDeliveredKwh[st.session] - 1e-6);
      done++;
      if ((done & 1023) === 0) progress(st.start);
    }
    results.push({ name, ...totals(settle, netKwh, o.timezone, state.socKwh - (o.battery?.initialWh ?? 0) / 1000, endValuePerKwh, evShortKwh, discomfort), netKwh, socKwh, ...(name === 'homeflex' ? { plans, solveMs } : {}) });
  }
  progress(o.to);
  const lens = settle.map((s) => (s.end - s.start) / 60_000);
  return { settlement: settle, strategies: results, endValuePerKwh, stepMinutes: { min: Math.min(...lens), max: Math.max(...lens) } };
}


/**
 * What homeflex knows at each plan: prices up to the last published auction, and load and PV
 * forecasts. Forecasts from history are refreshed once a local day (at midnight, for the next
 * three days) — the history forecasters look only at whole past weeks and days, so this gives the
 * values a per-plan call would — and every plan reads its slots from the latest refresh.
 */
function planningContext(data: BacktestData, o: BacktestOptions, sessions: { from: number; until: number }[]) {
  const perfect = o.forecast === 'perfect';
  const asPrices = (xs: Interval[]) => xs.map((r) => ({ start: r.start, end: r.end, rate: r.value, confidence: 1 }));
  const importSeries = asPrices(data.importRate);
  const exportSeries = asPrices(data.exportRate);
  const toEnergy = (xs: Interval[]): EnergyInterval[] => xs.map((r) => ({ start: r.start, end: r.end, wh: r.value * 1000 }));
  const loadEnergy = toEnergy(data.load);
  const pvEnergy = toEnergy(data.pv);
  /** Intervals of a sorted list that end after `from` and start before `to`, clipped to end at `to`. */
  const window = <T extends { start: number; end: number }>(xs: readonly T[], from: number, to: number, clip: (x: T, end: number) => T): T[] => {
    const out: T[] = [];
    for (let i = firstEndingAfter(xs, from); i < xs.length && xs[i].start < to; i++) out.push(xs[i].end > to ? clip(xs[i], to) : xs[i]);
    return out;
  };
  const meanW = (series: Interval[], sl: PlanSlot) => (energyIn(series, sl.start, sl.end) * 1000) / ((sl.end - sl.start) / HOUR);

  // forecasts by quarter-hour start, from the latest refresh
  const QUARTER = 900_000;
  const loadCache = o.loadForecastCache ?? new Map<number, number>();
  const pvCache = new Map<number, number>();
  const learnedCache = new Map<number, number>();
  let refreshedDay = '';
  let refreshes = 0;
  /** Actual ÷ forecast PV energy of each of the last 28 days. */
  const pvRatios: number[] = [];
  /** PV scale factors of the scenarios: quantiles of the recent ratios, equally likely. */
  const scenarioScales = () => {
    if ((o.uncertainty ?? 'robust') !== 'scenarios' || pvRatios.length < ROBUST_MIN_DAYS) return [];
    return [0.1, 0.3, 0.5, 0.7, 0.9].map((q) => ratioQuantile(pvRatios, q));
  };
  /** The local day last refreshed, as instants (most plans fall inside it: no time-zone arithmetic then). */
  let refreshedSpan = { from: 0, to: -1 };
  const refresh = (t: number) => {
    if (t >= refreshedSpan.from && t < refreshedSpan.to) return;
    const local = DateTime.fromMillis(t, { zone: o.timezone });
    const day = local.toISODate()!;
    refreshedSpan = { from: local.startOf('day').toMillis(), to: local.startOf('day').plus({ days: 1 }).toMillis() };
    if (day === refreshedDay) return;
    refreshedDay = day;
    const refreshedOnce = refreshes++ > 0;
    const midnight = local.startOf('day').toMillis();
    const grid = slotGrid(midnight, 15, o.horizonHours + 26);
    const history = window(loadEnergy, midnight - 36 * 24 * HOUR, midnight, (x, end) => ({ ...x, end }));
    const days = history.length ? (history[history.length - 1].end - history[0].start) / (24 * HOUR) : 0;
    const annualKwh = days >= 1 ? (history.reduce((a, r) => a + r.wh, 0) / 1000 / days) * 365 : 4000;
    // how wrong yesterday's PV forecast (made at yesterday's midnight) was, for the scenarios
    const yesterday = local.minus({ days: 1 }).startOf('day').toMillis();
    if (pvCache.size || (o.forecast === 'weather' && o.pvForecastArchive && refreshedOnce)) {
      let forecastKwh = 0;
      if (o.forecast === 'weather' && o.pvForecastArchive) {
        const quarters = slotGrid(yesterday, 15, 24).filter((sl) => sl.end <= midnight);
        forecastKwh = o.pvForecastArchive.powerW(yesterday, quarters).reduce((a, w) => a + (w * QUARTER) / HOUR / 1000, 0);
      } else for (let q = yesterday; q < midnight; q += QUARTER) forecastKwh += ((pvCache.get(q) ?? 0) * QUARTER) / HOUR / 1000;
      const actualKwh = energyIn(data.pv, yesterday, midnight);
      const ratio = dailyPvRatio(actualKwh, forecastKwh);
      if (ratio !== undefined) pvRatios.push(ratio);
      if (pvRatios.length > ROBUST_DAYS) pvRatios.shift();
    }
    // the base load of a slot is forecast once, at the first midnight that sees it inside the horizon
    // (the history forecaster looks at the same weekday of past weeks only, so later calls would agree)
    const fallback = standardProfileLoad({ annualKwh, timezone: o.timezone });
    if ((o.loadModel ?? 'learned') === 'learned') {
      // recent days weigh more: every midnight re-forecasts the whole horizon, as the hub would
      const loadW = learnedLoadForecast({ history: window(loadEnergy, midnight - 29 * 24 * HOUR, midnight, (x, end) => ({ ...x, end })), timezone: o.timezone, fallback, quantile: o.loadQuantile }).powerW(grid);
      grid.forEach((sl, i) => learnedCache.set(sl.start, loadW[i]));
    } else {
      const fresh = grid.filter((sl) => !loadCache.has(sl.start));
      const loadW = fresh.length ? historyLoadForecast({ history, timezone: o.timezone, fallback }).powerW(fresh) : [];
      fresh.forEach((sl, i) => loadCache.set(sl.start, loadW[i]));
    }
    if (o.forecast === 'history') {
      const pvHistory = window(pvEnergy, midnight - 4 * 24 * HOUR, midnight, (x, end) => ({ ...x, end }));
      const pvW = o.pvArray ? clearSkyPvForecast({ array: o.pvArray, timezone: o.timezone, history: pvHistory }).powerW(grid) : grid.map(() => 0);
      pvCache.clear();
      grid.forEach((sl, i) => pvCache.set(sl.start, pvW[i]));
    }
  };
  const cached = (cache: Map<number, number>, sl: PlanSlot) => cache.get(Math.floor(sl.start / QUARTER) * QUARTER) ?? 0;

  /** The local day around t: its price release instant and the ends of it and the next day (cached per day). */
  let dayCache = { start: 0, end1: -1, end2: 0, release: 0 };
  const dayAt = (t: number) => {
    if (t >= dayCache.start && t < dayCache.end1) return dayCache;
    const d = DateTime.fromMillis(t, { zone: o.timezone }).startOf('day');
    dayCache = { start: d.toMillis(), end1: d.plus({ days: 1 }).toMillis(), end2: d.plus({ days: 2 }).toMillis(), release: d.set({ hour: o.pricesKnownAtHour ?? 13 }).toMillis() };
    return dayCache;
  };
  return {
    /** True at the instant the next day's day-ahead prices arrive. */
    isPriceRelease: (t: number) => t === dayAt(t).release,
    /** The site problem homeflex solves at `t`, from what it knows then. */
    problemAt(t: number, s: DeviceState, needKwh: number, roomKwh: number): SiteProblem {
      // prices: known to the horizon (perfect) or up to the end of the last published day-ahead auction
      let knownUntil = o.to + o.horizonHours * HOUR;
      if (!perfect && !o.perfectParts?.includes('prices')) {
        const day = dayAt(t);
        knownUntil = t >= day.release ? day.end2 : day.end1;
      }
      const slots = slotGrid(t, o.slotMinutes, o.horizonHours);
      const clipRate = (x: (typeof importSeries)[number], end: number) => ({ ...x, end });
      const importRate = ratesForSlots(window(importSeries, t - 8 * 24 * HOUR, knownUntil, clipRate), slots).rates;
      const exportRate = ratesForSlots(window(exportSeries, t - 8 * 24 * HOUR, knownUntil, clipRate), slots).rates;
      let baseLoadW: number[];
      let pvW: number[];
      if (perfect) {
        baseLoadW = slots.map((sl) => meanW(data.load, sl));
        pvW = slots.map((sl) => meanW(data.pv, sl));
      } else {
        refresh(t);
        const lc = (o.loadModel ?? 'learned') === 'learned' ? learnedCache : loadCache;
        baseLoadW = slots.map((sl) => cached(lc, sl));
        const tau = o.loadCorrectionHours ?? 0;
        if (tau > 0) {
          // what the house drew in the last hour against what was forecast for it
          let fWh = 0;
          for (let q = t - HOUR; q < t; q += QUARTER) fWh += (cached(lc, { start: q, end: q + QUARTER }) * QUARTER) / HOUR;
          baseLoadW = withRecentError(baseLoadW, slots, t, { actualW: energyIn(data.load, t - HOUR, t) * 1000, forecastW: fWh }, tau);
        }
        pvW = o.forecast === 'weather' && o.pvForecastArchive ? o.pvForecastArchive.powerW(t, slots) : slots.map((sl) => cached(pvCache, sl));
        if (o.perfectParts?.includes('load')) baseLoadW = slots.map((sl) => meanW(data.load, sl));
        if (o.perfectParts?.includes('pv')) pvW = slots.map((sl) => meanW(data.pv, sl));
      }
      const horizonEnd = slots[slots.length - 1].end;
      const evSess: EvSession[] = [];
      sessions.forEach((ss, k) => {
        if (ss.until <= t || ss.from >= horizonEnd) return;
        const delivered = s.evDeliveredKwh[k];
        evSess.push({ from: Math.max(ss.from, t), until: ss.until, energyNeededWh: Math.max(0, needKwh - delivered) * 1000, roomWh: Math.max(0, roomKwh - delivered) * 1000 });
      });
      const hv = o.hvac;
      const inf = slots.map(() => Infinity);
      const outdoor = (sl: PlanSlot) => (data.outdoor ? valueAt(data.outdoor, sl.start)?.value : undefined) ?? sinusoidC(sl.start, o.timezone, hv!.outdoorMinC ?? 20, hv!.outdoorMaxC ?? 32);
      const scales = perfect ? [] : scenarioScales();
      if (!perfect && (o.uncertainty ?? 'robust') === 'robust' && pvRatios.length >= ROBUST_MIN_DAYS) {
        // plan with the PV that the sunnier days of the recent past would bring: grid charging then
        // buys only what even such a day would leave short (the hub does the same: src/control/model.ts)
        const k = robustPvFactor(pvRatios, o.robustQuantile ?? 0.9);
        pvW = pvW.map((w) => w * k);
      }
      return {
        slots,
        importRate,
        exportRate,
        baseLoadW,
        flows: [{ id: 'pv', powerW: pvW.map((w) => -w) }],
        scenarios: scales.map((k) => ({ weight: 1, flows: [{ id: 'pv', powerW: pvW.map((w) => -w * k) }] })),
        grid: { maxImportW: inf, maxExportW: inf },
        circuits: [],
        batteries: o.battery
          ? [{ id: 'battery', capacityWh: o.battery.capacityWh, socMinWh: o.battery.socMinWh, socMaxWh: o.battery.socMaxWh, initialWh: s.socKwh * 1000, maxChargeW: o.battery.chargeW, maxDischargeW: o.battery.dischargeW, chargeEfficiency: o.battery.chargeEfficiency, dischargeEfficiency: o.battery.dischargeEfficiency, cycleCostPerKwh: o.battery.cycleCostPerKwh, terminalValuePerKwh: o.terminalValuePerKwh }]
          : [],
        evs: o.ev && evSess.length ? [{ id: 'ev', minPowerW: o.ev.minW, maxPowerW: o.ev.maxW, sessions: evSess }] : [],
        // a battery-only site is planned by the battery DP throughout, also on horizons with a slot
        // where export pays more than import (the hub hands those to HiGHS; the DP is near-optimal there)
        options: { method: o.planner ?? 'dp' },
        hvacs: hv
          ? [{ id: 'hvac', mode: hv.mode, rKPerKw: hv.rKPerKw, cKwhPerK: hv.cKwhPerK, cop: hv.cop, maxElectricW: hv.maxElectricW, initialC: s.tempC, outdoorC: slots.map(outdoor), gainsW: slots.map(() => hv.gainsW), minC: slots.map(() => hv.minC), maxC: slots.map(() => hv.maxC) }]
          : [],
        loads: [],
      };
    },
  };
}

/**
 * The perfect-foresight optimum: one linear programme over the whole period, minimising exactly
 * what the replay reports (settled cost minus the value of the energy left in the battery). A
 * bound: EV minimum power is relaxed.
 */
function optimum(data: BacktestData, o: BacktestOptions, steps: Step[], settle: BacktestResult['settlement'], sessions: { from: number; until: number }[], solver: LpSolver, endValue: number): StrategyResult {
  // merge steps that share a settlement interval, an EV stay and (for HVAC) an outdoor value: constant inputs need no finer grid
  const groups: { start: number; end: number; members: number[] }[] = [];
  for (let j = 0; j < steps.length; j++) {
    const st = steps[j];
    const g = groups[groups.length - 1];
    const prev = j > 0 ? steps[j - 1] : undefined;
    if (g && prev && prev.settle === st.settle && prev.session === st.session && !o.hvac) {
      g.end = st.end;
      g.members.push(j);
    } else groups.push({ start: st.start, end: st.end, members: [j] });
  }
  const slots = groups.map((g) => ({ start: g.start, end: g.end }));
  const h = (i: number) => (slots[i].end - slots[i].start) / HOUR;
  const sum = (i: number, f: (s: Step) => number) => groups[i].members.reduce((a, j) => a + f(steps[j]), 0);
  const inf = slots.map(() => Infinity);
  const need = o.ev ? o.ev.energyWh : 0;
  const room = o.ev ? (o.ev.roomWh ?? 3 * o.ev.energyWh) : 0;
  const problem: SiteProblem = {
    slots,
    importRate: groups.map((g) => steps[g.members[0]].importRate),
    exportRate: groups.map((g) => steps[g.members[0]].exportRate),
    baseLoadW: groups.map((_, i) => (sum(i, (s) => s.loadKwh) * 1000) / h(i)),
    flows: [{ id: 'pv', powerW: groups.map((_, i) => (-sum(i, (s) => s.pvKwh) * 1000) / h(i)) }],
    grid: { maxImportW: inf, maxExportW: inf },
    circuits: [],
    batteries: o.battery
      ? [{ id: 'battery', capacityWh: o.battery.capacityWh, socMinWh: o.battery.socMinWh, socMaxWh: o.battery.socMaxWh, initialWh: o.battery.initialWh, terminalValuePerKwh: endValue, maxChargeW: o.battery.chargeW, maxDischargeW: o.battery.dischargeW, chargeEfficiency: o.battery.chargeEfficiency, dischargeEfficiency: o.battery.dischargeEfficiency, cycleCostPerKwh: o.battery.cycleCostPerKwh }]
      : [],
    evs: o.ev ? [{ id: 'ev', minPowerW: o.ev.minW, maxPowerW: o.ev.maxW, sessions: sessions.filter((s) => s.until > o.from && s.from < o.to).map((s) => ({ from: Math.max(s.from, o.from), until: Math.min(s.until, o.to), energyNeededWh: s.until <= o.to && s.from >= o.from ? need : 0, roomWh: room })) }] : [],
    hvacs: o.hvac
      ? [{ id: 'hvac', mode: o.hvac.mode, rKPerKw: o.hvac.rKPerKw, cKwhPerK: o.hvac.cKwhPerK, cop: o.hvac.cop, maxElectricW: o.hvac.maxElectricW, initialC: o.hvac.initialC, outdoorC: groups.map((g) => steps[g.members[0]].outdoorC), gainsW: slots.map(() => o.hvac!.gainsW), minC: slots.map(() => o.hvac!.minC), maxC: slots.map(() => o.hvac!.maxC) }]
      : [],
    loads: [],
    options: { relaxIntegers: true, tieBreak: false },
  };
  const t0 = performance.now();
  const plan = planSite(problem, solver);
  const solveMs = performance.now() - t0;
  if (plan.status !== 'optimal') throw new Error(`the perfect-foresight optimum could not be solved (${plan.status}: ${plan.warnings.join('; ')})`);
  const netKwh = new Float64Array(settle.length);
  const socKwh = new Float64Array(settle.length);
  const bat = plan.devices.find((d) => d.kind === 'battery');
  const ev = plan.devices.find((d) => d.kind === 'ev');
  const hv = plan.devices.find((d) => d.kind === 'hvac');
  groups.forEach((g, i) => {
    const devicesKw = ((bat?.powerW[i] ?? 0) + (ev?.powerW[i] ?? 0) + (hv?.powerW[i] ?? 0)) / 1000;
    for (const j of g.members) {
      const st = steps[j];
      netKwh[st.settle] += st.loadKwh - st.pvKwh + devicesKw * st.h;
      socKwh[st.settle] = (bat?.socWh?.[i] ?? 0) / 1000;
    }
  });
  const endDelta = bat ? (bat.socWh![bat.socWh!.length - 1] - o.battery!.initialWh) / 1000 : 0;
  return { name: 'optimum', ...totals(settle, netKwh, o.timezone, endDelta, endValue, ev?.shortfallWh ? ev.shortfallWh / 1000 : 0, hv?.discomfortKh ?? 0), netKwh, socKwh, plans: 1, solveMs };
}

/** Settles net energy per interval and sums it, in total and per local month. */
function totals(settle: BacktestResult['settlement'], netKwh: Float64Array, timezone: string, endDeltaKwh: number, endValue: number, evShortfallKwh: number, discomfortKh: number): StrategyTotals & { months: ({ month: string } & StrategyTotals)[] } {
  const byMonth = new Map<string, StrategyTotals>();
  const all: StrategyTotals = { importKwh: 0, exportKwh: 0, cost: 0, endEnergyValue: 0, evShortfallKwh, discomfortKh };
  settle.forEach((s, i) => {
    const n = netKwh[i];
    const imp = Math.max(0, n);
    const exp = Math.max(0, -n);
    const cost = imp * s.importRate - exp * s.exportRate;
    const month = DateTime.fromMillis(s.start, { zone: timezone }).toFormat('yyyy-MM');
    let m = byMonth.get(month);
    if (!m) byMonth.set(month, (m = { importKwh: 0, exportKwh: 0, cost: 0, endEnergyValue: 0, evShortfallKwh: 0, discomfortKh: 0 }));
    for (const t of [m, all]) {
      t.importKwh += imp;
      t.exportKwh += exp;
      t.cost += cost;
    }
  });
  // energy left over (or missing) at the end is worth what it saves later
  all.endEnergyValue = endDeltaKwh * endValue;
  all.cost -= all.endEnergyValue;
  return { ...all, months: [...byMonth].map(([month, m]) => ({ month, ...m })) };
}
