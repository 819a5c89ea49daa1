import { DateTime } from 'luxon';
import { ratesForSlots, slotGrid } from '../control/model.js';
import { clearSkyPvForecast, historyLoadForecast, standardProfileLoad, type EnergyInterval, type PvArray } from '../optimiser/forecast/index.js';
import { planSite, type LpSolver, type PlanSlot, type SitePlan, type SiteProblem } from '../optimiser/site/index.js';
import type { BatterySpec } from './engine.js';
import type { Interval } from './read.js';
import { HOUR } from '../api/time.js';

/**
 * Backtests on whole-bill tariffs (issue 17 item 4): a spot price shaped into an import rate with
 * grid-fee windows (§14a EnWG module 3), levies and VAT; an export rate that is the spot price
 * (direct marketing) or a fixed feed-in, unpaid at a negative spot price; and a Belgian-style
 * capacity charge on the month's highest 15-minute import. A battery and a PV array; strategies:
 *
 * - `self_consumption`: the battery covers the house and soaks up surplus (an inverter's own mode);
 * - `peak_rule`: as self-consumption while the battery is above a reserve, below it the battery
 *   discharges only to keep import under the capacity target (the minimum billed peak, or the month's
 *   peak so far when that is higher) and charges from PV surplus, and from the grid at night below
 *   the reserve as long as that keeps import under the target;
 * - `plan_energy`: homeflex's plan on the per-kWh rates alone (the planner before issue 17);
 * - `plan_peak`: the plan with the capacity charge (the month's running peak carried);
 * - `plan_full`: the plan with the capacity charge and curtailable PV, unpaid export avoided.
 *
 * Everything is settled on the same 15-minute grid: energy, grid fees, capacity per local month,
 * and the energy left in the battery at the end valued at the mean import rate.
 * Kept apart from engine.ts (issue 15's replay) on purpose: this one shapes tariffs and settles
 * peaks; it reuses the forecasters and the site planner.
 */

export type TariffStrategy = 'self_consumption' | 'peak_rule' | 'plan_energy' | 'plan_peak' | 'plan_full';
export const TARIFF_STRATEGIES: TariffStrategy[] = ['self_consumption', 'peak_rule', 'plan_energy', 'plan_peak', 'plan_full'];

/** A daily local window of a grid-fee schedule ("HH:MM"–"HH:MM", crossing midnight when to ≤ from). */
export interface FeeWindow {
  name: string;
  from: string;
  to: string;
  /** Currency per kWh (net). */
  rate: number;
}

export interface TariffShape {
  /** Grid fee windows; the first that contains a time applies, else `otherFee`. */
  feeWindows?: FeeWindow[];
  otherFee?: number;
  /** Levies and taxes per kWh imported (net). */
  levies: number;
  /** VAT share on import, e.g. 0.19. */
  vat: number;
  /** Export: the spot price (direct marketing) or a fixed rate. */
  export: { kind: 'spot' } | { kind: 'fixed'; rate: number };
  /** No feed-in pay while the spot price is negative (Germany 2025 for new PV). */
  noPayAtNegative: boolean;
  /** Capacity charge on the month's highest 15-minute mean import. */
  capacity?: { pricePerKwMonth: number; minimumW: number };
}

export interface TariffBacktestOptions {
  from: number;
  to: number;
  timezone: string;
  battery: BatterySpec;
  shape: TariffShape;
  forecast: 'perfect' | 'history';
  pvArray: PvArray;
  replanMinutes: number;
  horizonHours: number;
  strategies?: TariffStrategy[];
  /** Battery share kept for peaks by the peak rule (default 0.5). */
  reserveShare?: number;
}

export interface TariffResult {
  name: TariffStrategy;
  energyCost: number;
  capacityCost: number;
  endEnergyValue: number;
  /** energy + capacity − the value of the energy left in the battery. */
  total: number;
  importKwh: number;
  exportKwh: number;
  /** Export in slots whose spot price is negative (kWh). */
  exportAtNegativeKwh: number;
  curtailedKwh: number;
  /** Per local month: the billed peak (kW). */
  peaksKw: Record<string, number>;
  plans: number;
  solveMs: number;
}

const Q = 900_000;

/** The shaped rates on a grid of 15-minute steps: import all-in, export after the rules, and the spot. */
export function shapeRates(spot: readonly Interval[], from: number, to: number, shape: TariffShape, timezone: string) {
  const steps: { start: number; end: number; spot: number; importRate: number; exportRate: number; window: string }[] = [];
  let i = 0;
  const windows = (shape.feeWindows ?? []).map((w) => ({ ...w, a: minutes(w.from), b: minutes(w.to) }));
  for (let t = from; t < to; t += Q) {
    while (i < spot.length && spot[i].end <= t) i++;
    if (i >= spot.length || spot[i].start > t) throw new Error(`no spot price for ${new Date(t).toISOString()}`);
    const s = spot[i].value;
    const local = DateTime.fromMillis(t, { zone: timezone });
    const m = local.hour * 60 + local.minute;
    const w = windows.find((x) => (x.a < x.b ? m >= x.a && m < x.b : m >= x.a || m < x.b));
    const fee = w ? w.rate : (shape.otherFee ?? 0);
    const importRate = (s + fee + shape.levies) * (1 + shape.vat);
    let exportRate = shape.export.kind === 'spot' ? s : shape.export.rate;
    if (shape.noPayAtNegative && s < 0) exportRate = Math.min(exportRate, 0);
    steps.push({ start: t, end: t + Q, spot: s, importRate, exportRate, window: w?.name ?? 'other' });
  }
  return steps;
}

const minutes = (hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return h * 60 + m;
};

/** kWh of an energy series inside [a, b), prorated. */
function energyIn(series: readonly Interval[], a: number, b: number, hint: { i: number }): number {
  while (hint.i > 0 && series[hint.i].start > a) hint.i--;
  while (hint.i < series.length && series[hint.i].end <= a) hint.i++;
  let e = 0;
  for (let k = hint.i; k < series.length && series[k].start < b; k++) {
    const r = series[k];
    const overlap = Math.min(b, r.end) - Math.max(a, r.start);
    if (overlap > 0) e += (r.value * overlap) / (r.end - r.start);
  }
  return e;
}

export async function runTariffBacktest(data: { spot: Interval[]; load: Interval[]; pv: Interval[] }, o: TariffBacktestOptions, solver: LpSolver): Promise<TariffResult[]> {
  const tz = o.timezone;
  const horizonEnd = o.to + (o.horizonHours + 48) * HOUR;
  if (!data.spot.length || data.spot[0].start > o.from || data.spot[data.spot.length - 1].end < o.to) throw new Error('the spot prices do not cover the period');
  // the plans look back a week (price fallbacks) and ahead a horizon: shape what the data covers of that
  const shapeFrom = Math.max(o.from - 8 * 24 * HOUR, Math.ceil(data.spot[0].start / Q) * Q);
  const shapeTo = Math.min(horizonEnd, Math.floor(data.spot[data.spot.length - 1].end / Q) * Q);
  const rates = shapeRates(data.spot, shapeFrom, shapeTo, o.shape, tz);
  const first = rates.findIndex((r) => r.start >= o.from);
  const steps = rates.slice(first, first + Math.round((o.to - o.from) / Q));
  const lh = { i: 0 };
  const ph = { i: 0 };
  const loadKwh = steps.map((s) => energyIn(data.load, s.start, s.end, lh));
  const pvKwh = steps.map((s) => energyIn(data.pv, s.start, s.end, ph));
  const meanImport = steps.reduce((a, s) => a + s.importRate, 0) / steps.length;
  const endValue = meanImport * o.battery.dischargeEfficiency;
  const monthOf = steps.map((s) => DateTime.fromMillis(s.start, { zone: tz }).toFormat('yyyy-MM'));
  const cap = o.shape.capacity;
  const b = o.battery;
  const importSeries = rates.map((r) => ({ start: r.start, end: r.end, rate: r.importRate, confidence: 1 }));
  const exportSeries = rates.map((r) => ({ start: r.start, end: r.end, rate: r.exportRate, confidence: 1 }));
  const forecasts = forecaster(data, o);

  const clip = (soc: number, kw: number) =>
    kw > 0 ? Math.max(0, Math.min(kw, b.chargeW / 1000, (b.socMaxWh / 1000 - soc) / (b.chargeEfficiency * 0.25))) : -Math.max(0, Math.min(-kw, b.dischargeW / 1000, ((soc - b.socMinWh / 1000) * b.dischargeEfficiency) / 0.25));

  const results: TariffResult[] = [];
  for (const name of o.strategies ?? TARIFF_STRATEGIES) {
    let soc = b.initialWh / 1000;
    let plan: SitePlan | undefined;
    let nextPlan = o.from;
    let plans = 0;
    let solveMs = 0;
    const peaks: Record<string, number> = {};
    const r: TariffResult = { name, energyCost: 0, capacityCost: 0, endEnergyValue: 0, total: 0, importKwh: 0, exportKwh: 0, exportAtNegativeKwh: 0, curtailedKwh: 0, peaksKw: peaks, plans: 0, solveMs: 0 };
    for (let j = 0; j < steps.length; j++) {
      const st = steps[j];
      const month = monthOf[j];
      const houseKw = loadKwh[j] / 0.25;
      let pvKw = pvKwh[j] / 0.25;
      const target = Math.max(cap?.minimumW ?? 0, (peaks[month] ?? 0) * 1000) / 1000;
      let batKw = 0;
      if (name === 'self_consumption') batKw = clip(soc, pvKw - houseKw);
      else if (name === 'peak_rule') {
        const reserve = (o.reserveShare ?? 0.5) * b.socMaxWh / 1000;
        const net = houseKw - pvKw;
        if (net < 0) batKw = clip(soc, -net);
        else if (soc > reserve) batKw = clip(soc, -net);
        else if (net > target) batKw = clip(soc, target - net);
        else {
          const hour = DateTime.fromMillis(st.start, { zone: tz }).hour;
          // refill the reserve at night, never above the target
          if (hour < 6) batKw = clip(soc, Math.min(target - net, reserve - soc > 0 ? b.chargeW / 1000 : 0));
        }
      } else {
        if (!plan || st.start >= nextPlan) {
          const t0 = performance.now();
          plan = planSite(problemAt(st.start, soc, name, peaks[month] ?? 0), solver);
          solveMs += performance.now() - t0;
          plans++;
          while (nextPlan <= st.start) nextPlan += o.replanMinutes * 60_000;
        }
        const k = plan.slots.findIndex((s) => s.start <= st.start && st.start < s.end);
        // where the plan curtails, the inverter is limited to the plan's limit; but where the house
        // then imports (its load was forecast too low, or the PV too high), the limit gives back what
        // the house needs, as the hub's next 15-minute re-plan would from the measured flows
        const limit = plan.curtailment?.[0]?.limitW[k];
        const cut = limit !== undefined && Number.isFinite(limit) ? Math.max(0, pvKw - limit / 1000) : 0;
        pvKw -= cut;
        const bat = plan.devices.find((d) => d.kind === 'battery')!;
        const mode = bat.modes![k];
        const follow = clip(soc, pvKw - houseKw);
        const planned = clip(soc, bat.powerW[k] / 1000);
        batKw = mode === 'auto' ? follow : mode === 'hold' ? Math.max(0, follow) : mode === 'charge' ? Math.max(Math.max(0, follow), planned) : planned;
        const back = Math.min(cut, Math.max(0, houseKw - pvKw + batKw));
        pvKw += back;
        r.curtailedKwh += (cut - back) * 0.25;
      }
      soc += batKw > 0 ? batKw * 0.25 * b.chargeEfficiency : (batKw * 0.25) / b.dischargeEfficiency;
      const net = houseKw - pvKw + batKw;
      const imp = Math.max(0, net) * 0.25;
      const exp = Math.max(0, -net) * 0.25;
      r.importKwh += imp;
      r.exportKwh += exp;
      if (st.spot < 0) r.exportAtNegativeKwh += exp;
      r.energyCost += imp * st.importRate - exp * st.exportRate;
      peaks[month] = Math.max(peaks[month] ?? 0, Math.max(0, net));
    }
    if (cap) for (const m of Object.keys(peaks)) r.capacityCost += (cap.pricePerKwMonth * Math.max(cap.minimumW / 1000, peaks[m]));
    r.endEnergyValue = (soc - b.initialWh / 1000) * endValue;
    r.total = r.energyCost + r.capacityCost - r.endEnergyValue;
    r.plans = plans;
    r.solveMs = solveMs;
    results.push(r);
  }
  return results;

  function problemAt(t: number, socKwh: number, name: TariffStrategy, runningPeakKw: number): SiteProblem {
    const slots = slotGrid(t, 15, o.horizonHours);
    const perfect = o.forecast === 'perfect';
    // prices as published: the next day's from 13:00 local (history mode), else to the horizon
    const day = DateTime.fromMillis(t, { zone: tz }).startOf('day');
    const knownUntil = perfect ? horizonEnd : (t >= day.set({ hour: 13 }).toMillis() ? day.plus({ days: 2 }) : day.plus({ days: 1 })).toMillis();
    const known = <T extends { start: number; end: number }>(xs: T[]) => xs.filter((x) => x.end <= knownUntil && x.end > t - 8 * 24 * HOUR);
    const importRate = ratesForSlots(known(importSeries), slots).rates;
    const exportRate = ratesForSlots(known(exportSeries), slots).rates;
    const { loadW, pvW } = forecasts(t, slots);
    const inf = slots.map(() => Infinity);
    const monthEnd = DateTime.fromMillis(t, { zone: tz }).startOf('month').plus({ months: 1 }).toMillis();
    const full = name === 'plan_full';
    const spotKnown = known(rates.map((x) => ({ start: x.start, end: x.end, rate: x.spot, confidence: 1 })));
    const spotRate = ratesForSlots(spotKnown, slots).rates;
    return {
      slots,
      importRate,
      exportRate,
      baseLoadW: loadW,
      flows: [{ id: 'pv', powerW: pvW.map((w) => -w), ...(full ? { curtailable: true } : {}) }],
      grid: { maxImportW: inf, maxExportW: inf },
      circuits: [],
      batteries: [{ id: 'battery', capacityWh: b.capacityWh, socMinWh: b.socMinWh, socMaxWh: b.socMaxWh, initialWh: socKwh * 1000, maxChargeW: b.chargeW, maxDischargeW: b.dischargeW, chargeEfficiency: b.chargeEfficiency, dischargeEfficiency: b.dischargeEfficiency, terminalValuePerKwh: endValue }],
      evs: [],
      hvacs: [],
      loads: [],
      ...(cap && name !== 'plan_energy' ? { peakCharge: { pricePerKwMonth: cap.pricePerKwMonth, minimumW: cap.minimumW, runningPeakW: runningPeakKw * 1000, monthEnd } } : {}),
      ...(full && o.shape.noPayAtNegative ? { avoidExport: spotRate.map((s) => s < 0) } : {}),
      options: { method: 'auto', timeLimitS: 2 },
    };
  }
}

/** Load and PV forecasts per 15-minute slot: the data itself (perfect) or from history, refreshed each local midnight. */
function forecaster(data: { load: Interval[]; pv: Interval[] }, o: TariffBacktestOptions) {
  const toEnergy = (xs: Interval[]): EnergyInterval[] => xs.map((r) => ({ start: r.start, end: r.end, wh: r.value * 1000 }));
  const load = toEnergy(data.load);
  const pv = toEnergy(data.pv);
  const cache = new Map<number, [number, number]>();
  let day = '';
  const meanW = (xs: Interval[], sl: PlanSlot) => (energyIn(xs, sl.start, sl.end, { i: 0 }) * 1000) / ((sl.end - sl.start) / HOUR);
  return (t: number, slots: PlanSlot[]) => {
    if (o.forecast === 'perfect') return { loadW: slots.map((s) => meanW(data.load, s)), pvW: slots.map((s) => meanW(data.pv, s)) };
    const local = DateTime.fromMillis(t, { zone: o.timezone });
    if (local.toISODate() !== day) {
      day = local.toISODate()!;
      const midnight = local.startOf('day').toMillis();
      const grid = slotGrid(midnight, 15, o.horizonHours + 26);
      const history = load.filter((x) => x.end <= midnight && x.start >= midnight - 36 * 24 * HOUR);
      const annualKwh = (history.reduce((a, x) => a + x.wh, 0) / 1000 / 36) * 365 || 4000;
      const loadW = historyLoadForecast({ history, timezone: o.timezone, fallback: standardProfileLoad({ annualKwh, timezone: o.timezone }) }).powerW(grid);
      const pvHistory = pv.filter((x) => x.end <= midnight && x.start >= midnight - 4 * 24 * HOUR);
      const pvW = clearSkyPvForecast({ array: o.pvArray, timezone: o.timezone, history: pvHistory }).powerW(grid);
      cache.clear();
      grid.forEach((sl, i) => cache.set(sl.start, [loadW[i], pvW[i]]));
    }
    const at = (sl: PlanSlot) => cache.get(Math.floor(sl.start / Q) * Q) ?? [0, 0];
    return { loadW: slots.map((s) => at(s)[0]), pvW: slots.map((s) => at(s)[1]) };
  };
}
