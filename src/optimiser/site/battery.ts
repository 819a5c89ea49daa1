import { partitionPoint } from '../../api/index.js';
import { explain } from './explain.js';
import { checkSiteProblem, EPS_CYCLE, EPS_TIME } from './build.js';
import type { SitePlan, SiteProblem } from './types.js';

/**
 * An exact planner for the commonest site: one battery, the house's fixed flows, a grid
 * connection. It minimises the same objective as the site LP (prices, tie-break ramps, wear cost,
 * terminal value) by dynamic programming over the state of charge, with the value function kept
 * exactly as a convex piecewise-linear curve: each slot's cost as a function of the change of
 * charge is convex wherever import costs at least what export earns and rates are not negative,
 * and the infimal convolution of two convex curves merges their slopes. A plan costs well under a
 * millisecond, so the hub can re-plan every slot and a year can be replayed at that cadence.
 *
 * Where a slot's cost is not convex (export earning more than import costs, negative rates: there
 * the LP needs binaries), the value function takes the slot at its lower convex hull and the move
 * in it is chosen on its true cost: then the plan is near-optimal (status `within_gap`), not
 * proven optimal. A site with anything else gets undefined, and the caller uses the LP.
 */

const TOL = 1e-9;

interface Curve {
  /** Domain [lo, hi] (kWh) and the value at lo. */
  lo: number;
  hi: number;
  v0: number;
  /** Segments left to right: length (kWh) and slope (currency/kWh), slopes non-decreasing. */
  len: number[];
  slope: number[];
  /** Breakpoint positions and values, filled on first use. */
  xs?: Float64Array;
  vs?: Float64Array;
}

interface Stage {
  /** Change of stored energy (kWh) at the curve's breakpoints, ascending, and the slot's cost there. */
  d: number[];
  cost: number[];
  /**
   * Where the cost is not convex (export earning more than import costs, negative rates): its lower
   * convex hull, which the value function is built from (a bound for the slots before it).
   */
  hull?: { d: number[]; cost: number[] };
}

const kw = (w: number) => w / 1000;

/** Why a problem cannot take the fast path (for tests and the plan's solver note), or undefined. */
export function batteryOnlyObstacle(problem: SiteProblem): string | undefined {
  if (problem.batteries.length !== 1) return 'not exactly one battery';
  if (problem.evs.length || problem.hvacs.length || problem.loads.length || problem.heatPumps?.length) return 'other controllable devices';
  if (problem.circuits.length) return 'circuits';
  const b = problem.batteries[0];
  if (b.limits?.setpointW?.some((v) => v !== undefined && Number.isFinite(v))) return 'battery setpoints';
  if (problem.options?.relaxIntegers) return 'relaxation asked for';
  return undefined;
}

/** The slot's cost as a function of the change of stored energy, or undefined where it is not convex or not feasible. */
function stage(problem: SiteProblem, t: number, e: number, dtH: number, T: number, tieBreak: boolean): Stage | undefined {
  const b = problem.batteries[0];
  const pImp = problem.importRate[t];
  const pExp = problem.exportRate[t];
  const lim = (max: number, l: number | undefined) => Math.max(0, kw(l === undefined || Number.isNaN(l) ? max : Math.min(max, l)));
  const cMax = lim(b.maxChargeW, b.limits?.maxImportW?.[t]);
  const dMax = lim(b.maxDischargeW, b.limits?.maxExportW?.[t]);
  const alpha = tieBreak ? (EPS_TIME * (t + 1)) / T + EPS_CYCLE : 0;
  const beta = (b.cycleCostPerKwh ?? 0) + (tieBreak ? EPS_CYCLE + (EPS_TIME * (T - t)) / T : 0);
  const gMax = kw(problem.grid.maxImportW[t]);
  const xMax = kw(problem.grid.maxExportW[t]);
  // battery power p (kW, + charge) with the grid inside its limits: n = e + p ∈ [−xMax, gMax]
  const pLo = Math.max(-dMax, -xMax - e);
  const pHi = Math.min(cMax, gMax - e);
  if (pLo > pHi + TOL) return undefined;
  const grid = (n: number) => (n >= 0 ? pImp * n : pExp * n);
  const costAt = (p: number) => dtH * (grid(e + p) + (p >= 0 ? alpha * p : -beta * p));
  const powers = [pLo, pHi, 0, -e].filter((p) => p >= pLo - TOL && p <= pHi + TOL).map((p) => Math.min(pHi, Math.max(pLo, p)));
  powers.sort((x, y) => x - y);
  const d: number[] = [];
  const cost: number[] = [];
  for (const p of powers) {
    const delta = p >= 0 ? p * b.chargeEfficiency * dtH : (p * dtH) / b.dischargeEfficiency;
    if (d.length && delta - d[d.length - 1] < 1e-12) continue;
    d.push(delta);
    cost.push(costAt(p));
  }
  // the lower convex hull carries the slot into the value function; the true curve picks the move
  const hd: number[] = [];
  const hc: number[] = [];
  for (let i = 0; i < d.length; i++) {
    while (hd.length >= 2) {
      const k = hd.length;
      const s1 = (hc[k - 1] - hc[k - 2]) / (hd[k - 1] - hd[k - 2]);
      const s2 = (cost[i] - hc[k - 1]) / (d[i] - hd[k - 1]);
      if (s2 < s1 - 1e-12) {
        hd.pop();
        hc.pop();
      } else break;
    }
    hd.push(d[i]);
    hc.push(cost[i]);
  }
  return { d, cost, hull: hd.length === d.length ? undefined : { d: hd, cost: hc } };
}

/** W_prev(s) = min over Δ of stage(Δ) + W(s + Δ), restricted to [lo, hi]; undefined if empty. */
function convolve(w: Curve, stageCurve: Stage, lo: number, hi: number): Curve | undefined {
  const g = stageCurve.hull ?? stageCurve;
  const n = g.d.length;
  // h(y) = g(−y): segments of g reversed with slopes negated (still non-decreasing)
  const hLen: number[] = [];
  const hSlope: number[] = [];
  for (let i = n - 1; i > 0; i--) {
    hLen.push(g.d[i] - g.d[i - 1]);
    hSlope.push(-(g.cost[i] - g.cost[i - 1]) / (g.d[i] - g.d[i - 1]));
  }
  const len: number[] = [];
  const slope: number[] = [];
  let i = 0;
  let j = 0;
  while (i < w.len.length || j < hLen.length) {
    if (j >= hLen.length || (i < w.len.length && w.slope[i] <= hSlope[j])) {
      len.push(w.len[i]);
      slope.push(w.slope[i++]);
    } else {
      len.push(hLen[j]);
      slope.push(hSlope[j++]);
    }
  }
  let start = w.lo - g.d[n - 1];
  let v0 = w.v0 + g.cost[n - 1];
  const end = w.hi - g.d[0];
  if (start > hi + 1e-9 || end < lo - 1e-9) return undefined;
  // cut what lies left of lo
  let k = 0;
  while (start < lo - 1e-12 && k < len.length) {
    const take = Math.min(len[k], lo - start);
    v0 += take * slope[k];
    start += take;
    len[k] -= take;
    if (len[k] <= 1e-12) k++;
  }
  const outLen: number[] = [];
  const outSlope: number[] = [];
  const from = Math.max(start, lo);
  let at = from;
  for (; k < len.length && at < hi - 1e-12; k++) {
    if (len[k] <= 1e-12) continue;
    const take = Math.min(len[k], hi - at);
    // neighbours with the same slope are one segment
    if (outSlope.length && Math.abs(outSlope[outSlope.length - 1] - slope[k]) < 1e-12) outLen[outLen.length - 1] += take;
    else {
      outLen.push(take);
      outSlope.push(slope[k]);
    }
    at += take;
  }
  return { lo: from, hi: at, v0, len: outLen, slope: outSlope };
}

/** The stage's cost at Δ (linear between its breakpoints). */
function stageAt(g: Stage, delta: number): number {
  const n = g.d.length;
  if (n === 1 || delta <= g.d[0]) return g.cost[0];
  for (let i = 1; i < n; i++) if (delta <= g.d[i]) return g.cost[i - 1] + ((g.cost[i] - g.cost[i - 1]) * (delta - g.d[i - 1])) / (g.d[i] - g.d[i - 1]);
  return g.cost[n - 1];
}

/** Breakpoint positions and values of a curve (computed once per curve). */
function prefix(w: Curve): { xs: Float64Array; vs: Float64Array } {
  if (!w.xs || !w.vs) {
    const n = w.len.length;
    const xs = new Float64Array(n + 1);
    const vs = new Float64Array(n + 1);
    xs[0] = w.lo;
    vs[0] = w.v0;
    for (let k = 0; k < n; k++) {
      xs[k + 1] = xs[k] + w.len[k];
      vs[k + 1] = vs[k] + w.len[k] * w.slope[k];
    }
    w.xs = xs;
    w.vs = vs;
  }
  return { xs: w.xs, vs: w.vs };
}

/** A curve's value at s inside its domain, by binary search over its breakpoints. */
function curveAt(w: Curve, s: number): number {
  const { xs, vs } = prefix(w);
  // the segment k with xs[k] ≤ s < xs[k + 1]
  const lo = partitionPoint(w.len.length, (k) => xs[k + 1] <= s);
  return lo < w.len.length ? vs[lo] + (s - xs[lo]) * w.slope[lo] : vs[w.len.length];
}

/**
 * The best next state of charge from s: the minimum of stage(s' − s) + W(s') over the reachable s'.
 * On each linear piece of the stage cost (slope σ) the sum is convex, least where W's slope reaches −σ.
 */
function bestNext(w: Curve, g: Stage, s: number): number {
  const a = Math.max(w.lo, s + g.d[0]);
  const z = Math.min(w.hi, s + g.d[g.d.length - 1]);
  if (z <= a + 1e-12) return Math.max(w.lo, Math.min(w.hi, a));
  const { xs } = prefix(w);
  let best = a;
  let bestV = Infinity;
  const consider = (x: number) => {
    const v = stageAt(g, x - s) + curveAt(w, x);
    // the earliest of equal values: less charge now when nothing is gained by it
    if (v < bestV - 1e-12 || (v < bestV + 1e-12 && x < best)) [best, bestV] = [x, v];
  };
  for (let i = 0; i + 1 < g.d.length; i++) {
    const u = Math.max(a, s + g.d[i]);
    const v = Math.min(z, s + g.d[i + 1]);
    if (v < u - 1e-12) continue;
    const sigma = (g.cost[i + 1] - g.cost[i]) / (g.d[i + 1] - g.d[i]);
    // first segment whose slope is at least −σ: the sum stops falling at its start
    const lo = partitionPoint(w.slope.length, (k) => w.slope[k] < -sigma - 1e-12);
    consider(Math.min(v, Math.max(u, xs[lo])));
  }
  if (g.d.length === 1) consider(a);
  return best;
}

/** The house's net power per slot (kW, + = draw) from a base load and fixed flows. */
const houseKw = (baseLoadW: readonly number[], flows: readonly { powerW: number[] }[]) => baseLoadW.map((w, t) => kw(w) + flows.reduce((a, f) => a + kw(f.powerW[t]), 0));

/** Stages and value curves (curves[t]: cost from slot t on, by stored energy) for one forecast of the house. */
function valueCurves(problem: SiteProblem, e: number[], dtH: number[], bounds: { lo: number; hi: number; loEnd: number; value: number }, from = 0): { stages: Stage[]; curves: Curve[] } | undefined {
  const T = problem.slots.length;
  const tieBreak = problem.options?.tieBreak ?? true;
  const { lo, hi, loEnd, value } = bounds;
  const stages: Stage[] = new Array(T);
  for (let t = from; t < T; t++) {
    const g = stage(problem, t, e[t], dtH[t], T, tieBreak);
    if (!g) return undefined;
    stages[t] = g;
  }
  const curves: Curve[] = new Array(T + 1);
  curves[T] = { lo: loEnd, hi, v0: -value * loEnd, len: hi > loEnd ? [hi - loEnd] : [], slope: hi > loEnd ? [-value] : [] };
  for (let t = T - 1; t >= from; t--) {
    const c = convolve(curves[t + 1], stages[t], lo, hi);
    if (!c) return undefined;
    curves[t] = c;
  }
  return { stages, curves };
}

/**
 * The first slot's change of stored energy that is best in expectation over the scenarios: each
 * scenario's later slots are planned with its own forecast, the first slot is shared (two-stage).
 */
function hedgedFirst(options: { stages: Stage[]; curves: Curve[]; weight: number }[], s: number): number | undefined {
  let a = -Infinity;
  let z = Infinity;
  for (const o of options) {
    a = Math.max(a, o.curves[1].lo - s, o.stages[0].d[0]);
    z = Math.min(z, o.curves[1].hi - s, o.stages[0].d[o.stages[0].d.length - 1]);
  }
  if (a > z + 1e-9) return undefined;
  const cand = new Set<number>([a, z]);
  for (const o of options) {
    for (const d of o.stages[0].d) if (d > a && d < z) cand.add(d);
    let at = o.curves[1].lo;
    for (const l of o.curves[1].len) {
      at += l;
      if (at - s > a && at - s < z) cand.add(at - s);
    }
  }
  const xs = [...cand].sort((p, q) => p - q);
  const f = (d: number) => options.reduce((acc, o) => acc + o.weight * (stageAt(o.stages[0], d) + curveAt(o.curves[1], s + d)), 0);
  // the first slot's own cost may not be convex: look at every candidate
  let best = xs[0];
  let bestV = Infinity;
  for (const x of xs) {
    const v = f(x);
    if (v < bestV - 1e-12) [best, bestV] = [x, v];
  }
  return best;
}

/**
 * For plans made by the DP: the battery's best power (kW, + = charge) in the first slot for the
 * house's actual net power there (kW, + = draw), from the plan's own value of the energy left
 * after the slot. What the plan would have done had it known the slot's load and PV. NaN where
 * that flow is not feasible in the slot (a grid limit).
 */
const firstSlotResponses = new WeakMap<SitePlan, (k: number, houseKw: number, socKwh: number) => number>();
export function firstSlotResponse(plan: SitePlan): ((k: number, houseKw: number, socKwh: number) => number) | undefined {
  return firstSlotResponses.get(plan);
}

/** The plan of a battery-only site by exact dynamic programming, or undefined where the LP must do it. */
export function planBatteryOnly(problem: SiteProblem): SitePlan | undefined {
  if (batteryOnlyObstacle(problem)) return undefined;
  checkSiteProblem(problem);
  const T = problem.slots.length;
  const b = problem.batteries[0];
  const dtH = problem.slots.map((s) => (s.end - s.start) / 3_600_000);
  const lo = kw(Math.min(b.socMinWh, b.initialWh));
  const hi = kw(Math.max(b.socMaxWh, b.initialWh));
  const sortedImport = [...problem.importRate].sort((p, q) => p - q);
  const value = b.terminalValuePerKwh ?? Math.max(0, sortedImport[Math.floor(T / 2)] * b.dischargeEfficiency);
  const loEnd = b.finalMinWh !== undefined ? Math.min(hi, Math.max(lo, kw(b.finalMinWh))) : lo;
  const bounds = { lo, hi, loEnd, value };

  const central = houseKw(problem.baseLoadW, problem.flows);
  const main = valueCurves(problem, central, dtH, bounds);
  if (!main) return undefined;
  const { stages, curves } = main;
  const convexified = stages.filter((g) => g.hull).length;
  let s = kw(b.initialWh);
  if (s < curves[0].lo - 1e-6 || s > curves[0].hi + 1e-6) return undefined;

  // the first slot hedged over the scenarios, if any
  let firstDelta: number | undefined;
  const scenarios = problem.scenarios?.filter((sc) => sc.weight > 0) ?? [];
  if (scenarios.length && T > 1) {
    const total = scenarios.reduce((a, sc) => a + sc.weight, 0);
    const options: { stages: Stage[]; curves: Curve[]; weight: number }[] = [];
    for (const sc of scenarios) {
      const vc = valueCurves(problem, houseKw(sc.baseLoadW ?? problem.baseLoadW, sc.flows ?? problem.flows), dtH, bounds);
      if (!vc) return undefined;
      options.push({ ...vc, weight: sc.weight / total });
    }
    firstDelta = hedgedFirst(options, s);
  }

  const powerW: number[] = [];
  const socWh: number[] = [];
  const importW: number[] = [];
  const exportW: number[] = [];
  let cost = 0;
  let importWh = 0;
  let exportWh = 0;
  const round1 = (v: number) => Math.round(v * 10) / 10 || 0;
  for (let t = 0; t < T; t++) {
    const next = t === 0 && firstDelta !== undefined ? Math.max(curves[1].lo, Math.min(curves[1].hi, s + firstDelta)) : bestNext(curves[t + 1], stages[t], s);
    const delta = next - s;
    const p = delta >= 0 ? delta / (b.chargeEfficiency * dtH[t]) : (delta * b.dischargeEfficiency) / dtH[t];
    const n = central[t] + p;
    powerW.push(round1(p * 1000));
    socWh.push(round1(next * 1000));
    importW.push(round1(Math.max(0, n) * 1000));
    exportW.push(round1(Math.max(0, -n) * 1000));
    cost += (problem.importRate[t] * Math.max(0, n) - problem.exportRate[t] * Math.max(0, -n)) * dtH[t];
    importWh += Math.max(0, n) * dtH[t] * 1000;
    exportWh += Math.max(0, -n) * dtH[t] * 1000;
    s = next;
  }
  const plan: SitePlan = {
    status: convexified ? 'within_gap' : 'optimal',
    slots: problem.slots,
    importRate: problem.importRate,
    exportRate: problem.exportRate,
    importW,
    exportW,
    cost: Math.round(cost * 1e6) / 1e6,
    importWh: Math.round(importWh),
    exportWh: Math.round(exportWh),
    devices: [{ id: b.id, kind: 'battery', powerW, socWh, reasons: [], energyWh: powerW.reduce((a, p, t) => a + Math.abs(p) * dtH[t], 0) }],
    nodes: [],
    warnings: [],
    solver: { name: convexified ? `battery DP (piecewise-linear value; ${convexified} slots where export pays more than import taken at their convex hull)` : 'battery DP (exact, piecewise-linear value)', columns: 0, rows: 0, integerColumns: 0, lpSolves: 0, rootIterations: 0, usedMip: false, gap: 0 },
  };
  explain(problem, plan);
  if (!scenarios.length) {
    const tieBreak = problem.options?.tieBreak ?? true;
    firstSlotResponses.set(plan, (k: number, houseKwNow: number, s0: number) => {
      const g = stage(problem, k, houseKwNow, dtH[k], T, tieBreak);
      if (!g || !curves[k + 1]) return NaN;
      const delta = bestNext(curves[k + 1], g, s0) - s0;
      return delta >= 0 ? delta / (b.chargeEfficiency * dtH[k]) : (delta * b.dischargeEfficiency) / dtH[k];
    });
  }
  return plan;
}
