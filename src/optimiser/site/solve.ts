import { planBatteryOnly } from './battery.js';
import { buildSiteLp, NONE, type BuiltSite } from './build.js';
import { explain } from './explain.js';
import { sgReadyPlan } from './heatpump.js';
import type { LpResult, LpSession, LpSolver } from './lp.js';
import type { DevicePlan, PlanStatus, SitePlan, SiteProblem } from './types.js';

const TOL = 1e-6;

interface Fix {
  col: number;
  lower: number;
  upper: number;
  /** The other way to make this column integral, tried when the first makes the model infeasible. */
  alt: [number, number];
}

/**
 * Columns whose relaxed value breaks an integer requirement, each with a fix. An EV below its
 * minimum is switched on at the minimum (the others give way), a load half on is rounded, and a
 * battery or grid connection going both ways is given the direction of its larger flow.
 */
function violations(b: BuiltSite, x: Float64Array): Fix[] {
  const { model } = b;
  const fixes: Fix[] = [];
  const isBinary = new Uint8Array(model.numCols);
  for (const bat of b.batteries) {
    for (let t = 0; t < bat.z.length; t++) {
      if (bat.z[t] === NONE) continue;
      isBinary[bat.z[t]] = 1;
      if (x[bat.c[t]] > TOL && x[bat.d[t]] > TOL) {
        const charge = x[bat.c[t]] >= x[bat.d[t]];
        fixes.push({ col: bat.z[t], lower: charge ? 1 : 0, upper: charge ? 1 : 0, alt: charge ? [0, 0] : [1, 1] });
      }
    }
  }
  for (let t = 0; t < b.w.length; t++) {
    if (b.w[t] === NONE) continue;
    isBinary[b.w[t]] = 1;
    if (x[b.g[t]] > TOL && x[b.x[t]] > TOL) {
      const imp = x[b.g[t]] >= x[b.x[t]];
      fixes.push({ col: b.w[t], lower: imp ? 1 : 0, upper: imp ? 1 : 0, alt: imp ? [0, 0] : [1, 1] });
    }
  }
  for (const block of b.blocks) {
    for (const j of [...block.starts, ...block.members]) isBinary[j] = 1;
    // a block split over several starts: keep the start whose block overlaps the relaxed run most
    if (!block.starts.some((j) => x[j] > TOL && x[j] < 1 - TOL)) continue;
    let best = -1;
    let bestScore = -Infinity;
    block.starts.forEach((j, i) => {
      const score = block.cover[i].reduce((a, col) => a + x[col], 0);
      if (score > bestScore + TOL) [best, bestScore] = [j, score];
    });
    fixes.push({ col: best, lower: 1, upper: 1, alt: [0, 0] });
  }
  for (let j = 0; j < model.numCols; j++) {
    const v = x[j];
    if (model.kinds[j] === 'semicontinuous') {
      const min = model.semiMin[j];
      if (v > TOL && v < min - TOL) fixes.push({ col: j, lower: min, upper: model.colUpper[j], alt: [0, 0] });
    } else if (model.kinds[j] === 'binary' && !isBinary[j]) {
      if (v > TOL && v < 1 - TOL) {
        const up = v >= 0.5;
        fixes.push({ col: j, lower: up ? 1 : 0, upper: up ? 1 : 0, alt: up ? [0, 0] : [1, 1] });
      }
    }
  }
  return fixes;
}

/** Makes the direction binaries of a solution integral where its flows already are one-way. */
function integralStart(b: BuiltSite, x: Float64Array): Float64Array {
  const out = Float64Array.from(x);
  for (const bat of b.batteries) for (let t = 0; t < bat.z.length; t++) if (bat.z[t] !== NONE) out[bat.z[t]] = x[bat.c[t]] > TOL ? 1 : 0;
  for (let t = 0; t < b.w.length; t++) if (b.w[t] !== NONE) out[b.w[t]] = x[b.g[t]] > TOL ? 1 : 0;
  for (let j = 0; j < b.model.numCols; j++) if (b.model.kinds[j] === 'binary' && !(out[j] === 0 || out[j] === 1)) out[j] = Math.round(out[j]);
  return out;
}

const MAX_ROUNDS = 12;

/** Solves the relaxation, then rounds and re-solves from the last basis until integral. */
function dive(session: LpSession, b: BuiltSite, root: LpResult): { result: LpResult; solves: number } {
  let current = root;
  let solves = 0;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const fixes = violations(b, current.x!);
    if (!fixes.length) return { result: current, solves };
    for (const f of fixes) session.setBounds(f.col, f.lower, f.upper);
    let next = session.solve();
    solves++;
    if (next.status !== 'optimal') {
      // the roundings clash: take the other side of each and try once more
      for (const f of fixes) session.setBounds(f.col, f.alt[0], f.alt[1]);
      next = session.solve();
      solves++;
      if (next.status !== 'optimal') return { result: next, solves };
    }
    current = next;
  }
  return { result: violations(b, current.x!).length ? { status: 'error' } : current, solves };
}

/** The full objective value of a solution (costs, penalties and tie-breaks), as the solver sees it. */
function objectiveOf(b: BuiltSite, x: Float64Array): number {
  let z = b.model.offset;
  for (let j = 0; j < b.model.numCols; j++) z += b.model.colCost[j] * x[j];
  return z;
}

/**
 * Whether the problem has what only the LP models: a capacity charge, unpaid-export slots, or
 * curtailable production in a horizon where curtailing can pay (a negative rate or an export limit).
 */
function needsLp(p: SiteProblem): boolean {
  if (p.peakCharge !== undefined || p.peakTiers !== undefined || p.avoidExport?.some(Boolean)) return true;
  if (!p.flows.some((f) => f.curtailable)) return false;
  return p.exportRate.some((r) => r < 0) || p.importRate.some((r) => r < 0) || p.grid.maxExportW.some((w) => Number.isFinite(w));
}

/**
 * Plans the site: what each controllable device does in every slot so that the house pays
 * least, within every limit. Pure: the solver is handed in.
 */
export function planSite(problem: SiteProblem, solver: LpSolver): SitePlan {
  // the battery DP knows neither capacity charges nor curtailable production: those go to HiGHS
  if (problem.options?.method !== 'lp' && !needsLp(problem)) {
    const fast = planBatteryOnly(problem);
    // the DP is exact where every slot's cost is convex; elsewhere the MILP proves its plan
    if (fast && (fast.status === 'optimal' || problem.options?.method === 'dp')) return fast;
  }
  const built = buildSiteLp(problem);
  const opts = problem.options ?? {};
  const relGap = opts.relGap ?? 0.005;
  const timeLimitS = opts.timeLimitS ?? 2;
  const session = solver.open(built.model);
  const integerColumns = built.model.kinds.filter((k) => k !== 'continuous').length;
  let lpSolves = 1;
  let iterations: number;
  let usedMip = false;
  let status: PlanStatus = 'optimal';
  let gap: number;
  let x: Float64Array | undefined;
  try {
    const root = session.solve();
    iterations = root.iterations ?? 0;
    if (root.status !== 'optimal' || !root.x) {
      return emptyPlan(problem, built, solver.name, root.status === 'infeasible' ? 'infeasible' : 'error', `the solver returned ${root.status} for the relaxation`);
    }
    const bound = root.objective!;
    if (opts.relaxIntegers) {
      x = root.x;
      gap = 0;
      return extract(problem, built, x, { name: solver.name, lpSolves, iterations, usedMip, gap, integerColumns }, 'optimal');
    }
    const { result, solves } = dive(session, built, root);
    lpSolves += solves;
    let incumbent = result.status === 'optimal' && result.x ? integralStart(built, result.x) : undefined;
    let value = incumbent ? objectiveOf(built, incumbent) : Infinity;
    // relative to the objective, with a floor so a house that nets to zero is not held to a zero gap
    const scale = (z: number) => Math.max(Math.abs(z), 0.1 * built.costScale);
    gap = incumbent ? Math.max(0, (value - bound) / scale(value)) : Infinity;
    if (gap > relGap) {
      usedMip = true;
      const mip = session.solveMip({ relGap, timeLimitS, start: incumbent });
      if ((mip.status === 'optimal' || mip.status === 'time_limit') && mip.x && mip.objective! < value) {
        incumbent = mip.x;
        value = mip.objective!;
        status = mip.status === 'time_limit' ? 'time_limit' : 'optimal';
      } else if (mip.status === 'time_limit' && incumbent) status = 'time_limit';
      else if (!incumbent) {
        return emptyPlan(problem, built, solver.name, 'error', `no integer solution (MILP status ${mip.status})`);
      }
      const mipBound = mip.bound !== undefined && Number.isFinite(mip.bound) ? Math.max(mip.bound, bound) : bound;
      gap = Math.max(0, (value - mipBound) / scale(value));
    }
    if (status === 'optimal' && gap > 1e-9) status = 'within_gap';
    x = incumbent!;
  } finally {
    session.dispose();
  }
  return extract(problem, built, x, { name: solver.name, lpSolves, iterations, usedMip, gap, integerColumns }, status);
}

function emptyPlan(problem: SiteProblem, built: BuiltSite, name: string, status: PlanStatus, warning: string): SitePlan {
  const T = problem.slots.length;
  const zeros = () => new Array(T).fill(0);
  return {
    status,
    slots: problem.slots,
    importRate: problem.importRate,
    exportRate: problem.exportRate,
    importW: zeros(),
    exportW: zeros(),
    cost: 0,
    importWh: 0,
    exportWh: 0,
    devices: [],
    nodes: [],
    warnings: [warning],
    solver: { name, columns: built.model.numCols, rows: built.model.numRows, integerColumns: 0, lpSolves: 1, rootIterations: 0, usedMip: false, gap: Infinity },
  };
}

/** Rounded to 0.1 (W, Wh); never −0, so plans compare and print cleanly. */
const round1 = (v: number) => Math.round(v * 10) / 10 || 0;
const kw = (w: number) => w / 1000;

function extract(
  problem: SiteProblem,
  b: BuiltSite,
  x: Float64Array,
  solver: { name: string; lpSolves: number; iterations: number; usedMip: boolean; gap: number; integerColumns: number },
  status: PlanStatus,
): SitePlan {
  const T = problem.slots.length;
  const val = (j: number) => (j === NONE ? 0 : x[j]);
  const W = (kwValue: number) => round1(kwValue * 1000);
  const warnings: string[] = [];
  const importW: number[] = [];
  const exportW: number[] = [];
  let cost = 0;
  let importWh = 0;
  let exportWh = 0;
  for (let t = 0; t < T; t++) {
    const net = val(b.g[t]) + val(b.gOver[t]) - val(b.x[t]) - val(b.xOver[t]);
    importW.push(W(Math.max(0, net)));
    exportW.push(W(Math.max(0, -net)));
    cost += (problem.importRate[t] * Math.max(0, net) - problem.exportRate[t] * Math.max(0, -net)) * b.dtH[t];
    importWh += Math.max(0, net) * b.dtH[t] * 1000;
    exportWh += Math.max(0, -net) * b.dtH[t] * 1000;
    if (val(b.gOver[t]) > 1e-4) warnings.push(`slot ${new Date(problem.slots[t].start).toISOString()}: the house needs ${W(val(b.gOver[t]))} W more than the grid import limit`);
    if (val(b.xOver[t]) > 1e-4) warnings.push(`slot ${new Date(problem.slots[t].start).toISOString()}: ${W(val(b.xOver[t]))} W more than the grid export limit must be exported`);
  }

  const devices: DevicePlan[] = [];
  problem.batteries.forEach((bat, i) => {
    const cols = b.batteries[i];
    const powerW = cols.c.map((c, t) => W(val(c) - val(cols.d[t])));
    const socWh = cols.s.map((s) => round1(val(s) * 1000));
    devices.push({ id: bat.id, kind: 'battery', powerW, socWh, reasons: [], energyWh: powerW.reduce((a, p, t) => a + Math.abs(p) * b.dtH[t], 0) });
  });
  problem.evs.forEach((ev, i) => {
    const cols = b.evs[i];
    const powerW = cols.p.map((p) => W(val(p)));
    const shortfallWh = cols.shortfall.reduce((a, u) => a + val(u) * 1000, 0);
    if (shortfallWh > 1) warnings.push(`EV "${ev.id}": ${Math.round(shortfallWh)} Wh of its target cannot be delivered in time`);
    devices.push({ id: ev.id, kind: 'ev', powerW, reasons: [], shortfallWh: Math.round(shortfallWh), energyWh: powerW.reduce((a, p, t) => a + p * cols.dtEff[t], 0) });
  });
  problem.hvacs.forEach((h, i) => {
    const cols = b.hvacs[i];
    const powerW = cols.P.map((p) => W(val(p)));
    const temperatureC = cols.T.map((c) => Math.round(val(c) * 100) / 100);
    const discomfortKh = cols.T.reduce((a, c, t) => a + (Math.max(0, h.minC[t] - val(c)) + Math.max(0, val(c) - h.maxC[t])) * b.dtH[t], 0);
    if (discomfortKh > 0.01) warnings.push(`HVAC "${h.id}": the room leaves the comfort band by ${discomfortKh.toFixed(2)} K·h`);
    devices.push({ id: h.id, kind: 'hvac', powerW, temperatureC, reasons: [], discomfortKh: Math.round(discomfortKh * 100) / 100, energyWh: powerW.reduce((a, p, t) => a + p * b.dtH[t], 0) });
  });
  (problem.heatPumps ?? []).forEach((hp, i) => {
    const cols = b.heatPumps[i];
    const spaceW = cols.space ? cols.space.P.map((p) => W(val(p))) : undefined;
    const tankW = cols.tank ? cols.tank.P.map((p) => W(val(p))) : undefined;
    const powerW = problem.slots.map((_, t) => round1((spaceW?.[t] ?? 0) + (tankW?.[t] ?? 0)));
    const temperatureC = cols.space?.T.map((c) => Math.round(val(c) * 100) / 100);
    const tankC = cols.tank?.T.map((c) => Math.round(val(c) * 100) / 100);
    const discomfortKh = hp.space && cols.space ? cols.space.T.reduce((a, c, t) => a + Math.max(0, hp.space!.minC[t] - val(c)) * b.dtH[t], 0) : 0;
    const tankShortKh = cols.tank ? cols.tank.short.reduce((a, c, t) => a + val(c) * b.dtH[t], 0) : 0;
    if (discomfortKh > 0.01) warnings.push(`heat pump "${hp.id}": the rooms fall below the comfort band by ${discomfortKh.toFixed(2)} K·h`);
    if (tankShortKh > 0.01) warnings.push(`heat pump "${hp.id}": the hot-water tank falls below its minimum by ${tankShortKh.toFixed(2)} K·h (draw-offs beyond what it can heat)`);
    devices.push({
      id: hp.id,
      kind: 'heatpump',
      powerW,
      reasons: [],
      ...(temperatureC ? { temperatureC, spaceW, discomfortKh: Math.round(discomfortKh * 100) / 100 } : {}),
      ...(tankC ? { tankC, tankW, tankShortKh: Math.round(tankShortKh * 100) / 100 } : {}),
      energyWh: powerW.reduce((a, p, t) => a + p * b.dtH[t], 0),
    });
  });
  for (const d of devices) {
    const hp = d.kind === 'heatpump' ? problem.heatPumps?.find((x) => x.id === d.id) : undefined;
    if (hp?.sgReady) d.sgReady = sgReadyPlan(d, hp, problem.importRate, hp.sgReady);
  }
  problem.loads.forEach((l, i) => {
    const cols = b.loads[i];
    const on = cols.on.map((c) => val(c) > 0.5);
    const powerW = on.map((o) => (o ? l.ratedPowerW : 0));
    const shortfallHours = cols.shortfall.reduce((a, u, k) => a + val(u) * (l.runs[k].continuous ? l.runs[k].hours : 1), 0);
    if (shortfallHours > 0.01) warnings.push(`load "${l.id}": ${shortfallHours.toFixed(2)} h of its run cannot fit in its window`);
    devices.push({ id: l.id, kind: 'load', powerW, on, reasons: [], shortfallHours: Math.round(shortfallHours * 100) / 100, energyWh: powerW.reduce((a, p, t) => a + p * b.dtH[t], 0) });
  });

  const nodes = problem.circuits.map((c) => {
    const netW: number[] = [];
    for (let t = 0; t < T; t++) {
      let kwSum = 0;
      for (const [id, arr] of b.deviceTerms) {
        if (!isBelow(problem, id, c.id)) continue;
        kwSum += arr[t].constKw + arr[t].terms.reduce((a, [col, coef]) => a + coef * x[col], 0);
      }
      netW.push(W(kwSum));
    }
    return { id: c.id, netW, maxImportW: c.maxImportW, maxExportW: c.maxExportW };
  });
  const curtailment = b.curtail.map((c) => {
    const flow = problem.flows.find((f) => f.id === c.id)!;
    const curtailW = c.cols.map((col, t) => (col === NONE ? 0 : W(c.off ? val(col) * -kw(flow.powerW[t]) : val(col))));
    // the limit to command: what is left of the forecast, or no limit where nothing is cut
    const limitW = curtailW.map((cw, t) => (cw > 1 ? Math.max(0, round1(-flow.powerW[t] - cw)) : Infinity));
    return { id: c.id, curtailW, limitW };
  });
  let peak: SitePlan['peak'];
  if (b.peak.month !== NONE || b.peak.next !== NONE) {
    const price = problem.peakCharge!.pricePerKwMonth;
    const pMonth = b.peak.month !== NONE ? val(b.peak.month) : 0;
    const pNext = b.peak.next !== NONE ? val(b.peak.next) : undefined;
    const added = (b.peak.month !== NONE ? pMonth - b.peak.floorKw[0] : 0) + (pNext !== undefined ? pNext - b.peak.floorKw[1] : 0);
    peak = { peakW: W(pMonth), nextMonthPeakW: pNext !== undefined ? W(pNext) : undefined, cost: Math.round(price * added * 1e6) / 1e6 };
  }
  let tiers: SitePlan['tiers'];
  if (b.tiers) {
    const tier = b.tiers.base + b.tiers.steps.filter((y) => val(y) > 0.5).length;
    tiers = { meanTopW: W(val(b.tiers.mean)), feePerMonth: problem.peakTiers!.tiers[tier].feePerMonth, tier };
  }
  const plan: SitePlan = {
    status,
    slots: problem.slots,
    importRate: problem.importRate,
    exportRate: problem.exportRate,
    importW,
    exportW,
    cost: Math.round(cost * 1e6) / 1e6,
    importWh: Math.round(importWh),
    exportWh: Math.round(exportWh),
    devices,
    nodes,
    ...(curtailment.length ? { curtailment } : {}),
    ...(peak ? { peak } : {}),
    ...(tiers ? { tiers } : {}),
    warnings,
    solver: { name: solver.name, columns: b.model.numCols, rows: b.model.numRows, integerColumns: solver.integerColumns, lpSolves: solver.lpSolves, rootIterations: solver.iterations, usedMip: solver.usedMip, gap: solver.gap },
  };
  explain(problem, plan);
  return plan;
}

function isBelow(problem: SiteProblem, deviceId: string, circuitId: string): boolean {
  const all = [...problem.batteries, ...problem.evs, ...problem.hvacs, ...(problem.heatPumps ?? []), ...problem.loads, ...problem.flows];
  const byId = new Map(problem.circuits.map((c) => [c.id, c]));
  let cur = all.find((d) => d.id === deviceId)?.circuit;
  while (cur !== undefined) {
    if (cur === circuitId) return true;
    cur = byId.get(cur)?.parent;
  }
  return false;
}
