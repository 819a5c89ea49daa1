import { DateTime } from 'luxon';
import { LpBuilder, type LpModel } from './lp.js';
import { decay } from './thermal.js';
import { cheapEnough, type HvacModel, type SiteProblem, type TankModel } from './types.js';

/**
 * Builds the site's linear programme. Variables are kW (power) and kWh (energy); the objective
 * is in the site currency. Soft constraints (EV energy, run hours, comfort, limits, setpoints)
 * carry penalties far above any price, so the model is always feasible and the plan says what
 * it could not keep.
 */

const NONE = -1;
/** Tie-break weights (currency/kWh): far below any real price step, above solver tolerances. */
export const EPS_TIME = 1e-3;
export const EPS_CYCLE = 1e-4;

export interface BatteryCols {
  c: number[];
  d: number[];
  s: number[];
  /** Exclusivity binary per slot (1 = may charge, 0 = may discharge), NONE where not needed. */
  z: number[];
  setDev: number[][];
}
export interface EvCols {
  p: number[];
  /** Energy of each slot that counts (h of the slot inside a session). */
  dtEff: number[];
  sessionOf: number[];
  shortfall: number[];
  /** Per session, the energy a fill session leaves unfilled (kWh), NONE for sessions without fill. */
  unfilled: number[];
  setDev: number[][];
}
export interface HvacCols {
  P: number[];
  T: number[];
  /** The comfort band as planned: the configured band, widened only where it cannot be kept. */
  bandLo: number[];
  bandHi: number[];
  setDev: number[][];
}
export interface TankCols {
  P: number[];
  T: number[];
  /** Kelvin below the tank's minimum per slot (soft). */
  short: number[];
}
export interface HeatPumpCols {
  space?: Omit<HvacCols, 'setDev'>;
  tank?: TankCols;
  setDev: number[][];
}
export interface LoadCols {
  on: number[];
  /** Start binaries of continuous runs, per run (slot → column or NONE). */
  starts: number[][];
  shortfall: number[];
  runOf: number[];
  forcedOn: boolean[];
  setDev: number[][];
}

export interface BuiltSite {
  model: LpModel;
  dtH: number[];
  g: number[];
  x: number[];
  gOver: number[];
  xOver: number[];
  w: number[];
  batteries: BatteryCols[];
  evs: EvCols[];
  hvacs: HvacCols[];
  heatPumps: HeatPumpCols[];
  loads: LoadCols[];
  nodes: { id: string; over: number[]; under: number[] }[];
  /** Start binaries of each one-block run; its on/off columns follow them and are not rounded alone. */
  blocks: { starts: number[]; members: number[]; cover: number[][] }[];
  /** Per slot, the terms (col, kW coefficient) and constant (kW) of each device's power. */
  deviceTerms: Map<string, { terms: [number, number][]; constKw: number }[]>;
  /** Currency per kWh that makes the gap relative (sum of |price|·energy over the horizon). */
  costScale: number;
  penalties: { limit: number; shortfall: number; setpoint: number; fill: number };
  terminalValue: number[];
  /** Curtailable flows: per slot the column of production given up (kW, or a binary for all-or-nothing), NONE where nothing to cut. */
  curtail: { id: string; cols: number[]; off: boolean }[];
  /** Peak charge: the billed peak of this month and of the next (kW columns), NONE when absent. */
  peak: { month: number; next: number; floorKw: number[] };
  /** Tiered peak fee: the mean of the top days (kW), the step binaries and the tier they start from. */
  tiers?: { mean: number; steps: number[]; base: number };
}

const finite = (v: number | undefined) => v !== undefined && Number.isFinite(v);
const kw = (w: number) => w / 1000;
/** The smaller of a device maximum and an optional external limit. */
const minDefined = (max: number, limit: number | undefined) => (limit === undefined || Number.isNaN(limit) ? max : Math.min(max, limit));

export function checkSiteProblem(problem: SiteProblem) {
  const T = problem.slots.length;
  if (T === 0) throw new Error('site problem: no slots');
  const perSlot: [string, unknown[]][] = [
    ['importRate', problem.importRate],
    ['exportRate', problem.exportRate],
    ['baseLoadW', problem.baseLoadW],
    ['grid.maxImportW', problem.grid.maxImportW],
    ['grid.maxExportW', problem.grid.maxExportW],
    ...problem.flows.map((f) => [`flows[${f.id}].powerW`, f.powerW] as [string, unknown[]]),
    ...problem.hvacs.flatMap((h) => (['outdoorC', 'gainsW', 'minC', 'maxC'] as const).map((k) => [`hvacs[${h.id}].${k}`, h[k]] as [string, unknown[]])),
    ...problem.circuits.flatMap((c) => [[`circuits[${c.id}].maxImportW`, c.maxImportW], [`circuits[${c.id}].maxExportW`, c.maxExportW]] as [string, unknown[]][]),
  ];
  for (const [name, arr] of perSlot) {
    if (arr.length !== T) throw new Error(`site problem: ${name} has ${arr.length} entries for ${T} slots`);
  }
  for (let t = 0; t < T; t++) {
    const s = problem.slots[t];
    if (!(s.end > s.start)) throw new Error(`site problem: slot ${t} ends before it starts`);
    if (t > 0 && s.start !== problem.slots[t - 1].end) throw new Error(`site problem: slot ${t} does not start where slot ${t - 1} ends`);
    if (!Number.isFinite(problem.importRate[t]) || !Number.isFinite(problem.exportRate[t])) throw new Error(`site problem: slot ${t} has no price`);
  }
  const circuits = new Set(problem.circuits.map((c) => c.id));
  const ids = new Set<string>();
  for (const d of [...problem.batteries, ...problem.evs, ...problem.hvacs, ...(problem.heatPumps ?? []), ...problem.loads, ...problem.flows]) {
    if (ids.has(d.id)) throw new Error(`site problem: device id "${d.id}" appears twice`);
    ids.add(d.id);
    if (d.circuit !== undefined && !circuits.has(d.circuit)) throw new Error(`site problem: device "${d.id}" hangs from unknown circuit "${d.circuit}"`);
  }
  for (const e of problem.evs) {
    if (e.sessions.some((s) => s.fill && !(s.roomWh !== undefined && Number.isFinite(s.roomWh)))) throw new Error(`ev "${e.id}": a fill session needs roomWh (the car's capacity left)`);
  }
  for (const b of problem.batteries) {
    if (!(b.chargeEfficiency > 0 && b.chargeEfficiency <= 1 && b.dischargeEfficiency > 0 && b.dischargeEfficiency <= 1)) throw new Error(`battery "${b.id}": efficiencies must be in (0, 1]`);
    if (b.socMinWh > b.socMaxWh) throw new Error(`battery "${b.id}": socMinWh above socMaxWh`);
  }
  for (const h of problem.hvacs) {
    if (!(h.rKPerKw > 0 && h.cKwhPerK > 0 && h.cop > 0)) throw new Error(`hvac "${h.id}": R, C and COP must be positive`);
    if (h.copPerSlot && (h.copPerSlot.length !== T || h.copPerSlot.some((c) => !(c > 0)))) throw new Error(`hvac "${h.id}": copPerSlot needs a positive COP for each of the ${T} slots`);
  }
  for (const hp of problem.heatPumps ?? []) {
    const s = hp.space;
    if (s) {
      if (!(s.rKPerKw > 0 && s.cKwhPerK > 0)) throw new Error(`heat pump "${hp.id}": room R and C must be positive`);
      for (const k of ['outdoorC', 'gainsW', 'minC', 'maxC', 'copPerSlot'] as const) if ((s[k]?.length ?? T) !== T) throw new Error(`site problem: heatPumps[${hp.id}].space.${k} has ${s[k]!.length} entries for ${T} slots`);
      if ((s.copPerSlot ?? [s.cop]).some((c) => !(c > 0))) throw new Error(`heat pump "${hp.id}": COP must be positive`);
    }
    const k = hp.tank;
    if (k) {
      if (!(k.volumeL > 0)) throw new Error(`heat pump "${hp.id}": tank volume must be positive`);
      if (!(k.lossWPerK >= 0)) throw new Error(`heat pump "${hp.id}": tank losses must not be negative`);
      for (const key of ['minC', 'drawWh', 'cop'] as const) if (k[key].length !== T) throw new Error(`site problem: heatPumps[${hp.id}].tank.${key} has ${k[key].length} entries for ${T} slots`);
      if (k.cop.some((c) => !(c > 0))) throw new Error(`heat pump "${hp.id}": tank COP must be positive`);
    }
  }
}

/** The chain of circuits a device's power flows through, nearest first. */
function chainOf(problem: SiteProblem, circuit: string | undefined): string[] {
  const byId = new Map(problem.circuits.map((c) => [c.id, c]));
  const chain: string[] = [];
  for (let cur = circuit; cur !== undefined; cur = byId.get(cur)?.parent) {
    if (chain.includes(cur)) throw new Error(`site problem: circuit "${cur}" is part of a loop of parents`);
    chain.push(cur);
  }
  return chain;
}

export function buildSiteLp(problem: SiteProblem): BuiltSite {
  checkSiteProblem(problem);
  const T = problem.slots.length;
  const opts = problem.options ?? {};
  const tieBreak = opts.tieBreak ?? true;
  const lp = new LpBuilder();
  const dtH = problem.slots.map((s) => (s.end - s.start) / 3_600_000);
  const horizonStart = problem.slots[0].start;
  const horizonEnd = problem.slots[T - 1].end;
  const { importRate, exportRate } = problem;

  const priceScale = Math.max(0.05, ...importRate.map(Math.abs), ...exportRate.map(Math.abs), ...problem.evs.map((e) => Math.abs(e.priceLimit ?? 0)), ...problem.loads.map((l) => Math.abs(l.onAtOrBelowRate ?? 0)));
  const penalties = {
    limit: 200 * priceScale,
    shortfall: 50 * priceScale,
    setpoint: 100 * priceScale,
    // Fill energy (a car with no target) is wanted, but below every deadline: each unfilled kWh costs
    // more than any import rate of the horizon (priceScale bounds them all), so the car fills up in
    // the cheapest slots rather than not at all, yet 25 times less than a kWh of a deadline's
    // shortfall, so where a circuit cannot carry both, every deadline is met first; it stays below
    // the limit and setpoint penalties too, so filling never breaks a limit or an override.
    fill: 2 * priceScale,
  };
  const earlier = (t: number) => (tieBreak ? (EPS_TIME * (t + 1)) / T : 0);
  const later = (t: number) => (tieBreak ? (EPS_TIME * (T - t)) / T : 0);
  const cycleEps = tieBreak ? EPS_CYCLE : 0;

  const deviceTerms = new Map<string, { terms: [number, number][]; constKw: number }[]>();
  const termsOf = (id: string) => {
    let arr = deviceTerms.get(id);
    if (!arr) deviceTerms.set(id, (arr = Array.from({ length: T }, () => ({ terms: [], constKw: 0 }))));
    return arr;
  };

  /** A soft setpoint: (device power − setpoint) is split into ± deviations that cost a penalty. */
  const setpointRows = (id: string, setpointW: (number | undefined)[] | undefined, powerTerms: (t: number) => [number, number][]) => {
    const dev: number[][] = [];
    if (!setpointW) return dev;
    for (let t = 0; t < T; t++) {
      const sp = setpointW[t];
      if (sp === undefined || !Number.isFinite(sp)) continue;
      // where a setpoint cannot be kept throughout (a car that fills up), the earlier slots keep it
      const weight = penalties.setpoint * (2 - t / T) * dtH[t];
      const up = lp.addCol(weight, 0, Infinity);
      const down = lp.addCol(weight, 0, Infinity);
      lp.addRow(kw(sp), kw(sp), [...powerTerms(t), [up, -1], [down, 1]]);
      dev[t] = [up, down];
    }
    void id;
    return dev;
  };

  // ---------------------------------------------------------------- batteries
  const terminalValue: number[] = [];
  const batteries: BatteryCols[] = problem.batteries.map((b) => {
    const c: number[] = [];
    const d: number[] = [];
    const s: number[] = [];
    const z: number[] = [];
    const lo = kw(Math.min(b.socMinWh, b.initialWh));
    const hi = kw(Math.max(b.socMaxWh, b.initialWh));
    const sortedImport = [...importRate].sort((p, q) => p - q);
    const medianImport = sortedImport[Math.floor(T / 2)];
    // a kWh left in the battery is worth what it saves later: a typical import rate, after losses
    const value = b.terminalValuePerKwh ?? Math.max(0, medianImport * b.dischargeEfficiency);
    terminalValue.push(value);
    for (let t = 0; t < T; t++) {
      const cMax = kw(minDefined(b.maxChargeW, b.limits?.maxImportW?.[t]));
      const dMax = kw(minDefined(b.maxDischargeW, b.limits?.maxExportW?.[t]));
      c.push(lp.addCol((earlier(t) + cycleEps) * dtH[t], 0, Math.max(0, cMax)));
      d.push(lp.addCol(((b.cycleCostPerKwh ?? 0) + cycleEps + later(t)) * dtH[t], 0, Math.max(0, dMax)));
      const sLo = t === T - 1 && b.finalMinWh !== undefined ? Math.min(hi, Math.max(lo, kw(b.finalMinWh))) : lo;
      s.push(lp.addCol(t === T - 1 ? -value : 0, sLo, hi));
      const socRow = lp.addRow(t === 0 ? kw(b.initialWh) : 0, t === 0 ? kw(b.initialWh) : 0, [
        [s[t], 1],
        ...(t > 0 ? [[s[t - 1], -1] as [number, number]] : []),
        [c[t], -b.chargeEfficiency * dtH[t]],
        [d[t], dtH[t] / b.dischargeEfficiency],
      ]);
      lp.startBasic(s[t], socRow);
      // wasting energy through the battery's losses pays only when energy has a negative value
      if ((importRate[t] < 0 || exportRate[t] < 0) && cMax > 0 && dMax > 0) {
        z[t] = lp.addCol(0, 0, 1, 'binary');
        lp.addRow(-Infinity, 0, [[c[t], 1], [z[t], -cMax]]);
        lp.addRow(-Infinity, dMax, [[d[t], 1], [z[t], dMax]]);
      } else z[t] = NONE;
      termsOf(b.id)[t].terms.push([c[t], 1], [d[t], -1]);
    }
    const setDev = setpointRows(b.id, b.limits?.setpointW, (t) => [[c[t], 1], [d[t], -1]]);
    return { c, d, s, z, setDev };
  });

  // ---------------------------------------------------------------- EVs
  const surplusKw = (t: number) => Math.max(0, -(kw(problem.baseLoadW[t]) + problem.flows.reduce((a, f) => a + kw(f.powerW[t]), 0)));
  const evs: EvCols[] = problem.evs.map((e) => {
    const p: number[] = new Array(T).fill(NONE);
    const dtEff: number[] = new Array(T).fill(0);
    const sessionOf: number[] = new Array(T).fill(NONE);
    e.sessions.forEach((sess, k) => {
      const from = sess.from ?? horizonStart;
      const until = sess.until ?? horizonEnd;
      for (let t = 0; t < T; t++) {
        const overlap = Math.min(until, problem.slots[t].end) - Math.max(from, problem.slots[t].start);
        if (overlap <= 0 || sessionOf[t] !== NONE) continue;
        sessionOf[t] = k;
        dtEff[t] = overlap / 3_600_000;
      }
    });
    const minKw = kw(e.minPowerW);
    for (let t = 0; t < T; t++) {
      if (sessionOf[t] === NONE) continue;
      let up = kw(minDefined(e.maxPowerW, e.limits?.maxImportW?.[t]));
      if (e.solarOnly) up = Math.min(up, surplusKw(t));
      if (up < minKw - 1e-9) up = 0;
      // energy is worth price_limit to the car, plus a crumb so a rate equal to the limit also charges
      const valueToCar = e.priceLimit !== undefined ? (e.priceLimit + 2 * EPS_TIME) * dtEff[t] : 0;
      p[t] = lp.addCol(earlier(t) * dtH[t] - valueToCar, 0, Math.max(0, up), minKw > 0 && up > 0 ? 'semicontinuous' : 'continuous', minKw > 0 ? minKw : undefined);
      termsOf(e.id)[t].terms.push([p[t], 1]);
    }
    const unfilled: number[] = [];
    const shortfall = e.sessions.map((sess, k) => {
      const entries: [number, number][] = [];
      for (let t = 0; t < T; t++) if (sessionOf[t] === k && p[t] !== NONE) entries.push([p[t], dtEff[t]]);
      const need = Math.max(0, kw(sess.energyNeededWh));
      const room = sess.roomWh !== undefined ? Math.max(0, kw(sess.roomWh)) : Infinity;
      const u = lp.addCol(penalties.shortfall, 0, Infinity);
      lp.addRow(Math.min(need, room), Infinity, [...entries, [u, 1]]);
      if (Number.isFinite(room) && entries.length) lp.addRow(-Infinity, room, entries);
      // a kWh short of the deadline is also short of the fill: it is charged once, at the deadline's penalty
      if (sess.fill && room > need) {
        const f = lp.addCol(penalties.fill, 0, Infinity);
        lp.addRow(room, Infinity, [...entries, [u, 1], [f, 1]]);
        unfilled.push(f);
      } else unfilled.push(NONE);
      return u;
    });
    const setDev = setpointRows(e.id, e.limits?.setpointW, (t) => (p[t] !== NONE ? [[p[t], 1]] : []));
    return { p, dtEff, sessionOf, shortfall, unfilled, setDev };
  });

  // ---------------------------------------------------------------- HVAC
  const hvacs: HvacCols[] = problem.hvacs.map((h) => {
    const room = addRoom(lp, h, h.mode === 'cool' ? 1 : -1, dtH, (t) => Math.max(0, kw(minDefined(h.maxElectricW, h.limits?.maxImportW?.[t]))));
    for (let t = 0; t < T; t++) termsOf(h.id)[t].terms.push([room.P[t], 1]);
    const setDev = setpointRows(h.id, h.limits?.setpointW, (t) => [[room.P[t], 1]]);
    return { ...room, setDev };
  });

  // ---------------------------------------------------------------- heat pumps and hot-water tanks
  const heatPumps: HeatPumpCols[] = (problem.heatPumps ?? []).map((hp) => {
    const maxKw = (t: number) => Math.max(0, kw(minDefined(hp.maxElectricW, hp.limits?.maxImportW?.[t])));
    const space = hp.space ? addRoom(lp, hp.space, -1, dtH, maxKw) : undefined;
    const tank = hp.tank ? addTank(lp, hp.tank, dtH, maxKw, penalties.shortfall) : undefined;
    for (let t = 0; t < T; t++) {
      const parts: [number, number][] = [];
      if (space) parts.push([space.P[t], 1]);
      if (tank) parts.push([tank.P[t], 1]);
      // one compressor: tank and rooms share its power
      if (parts.length > 1) lp.addRow(-Infinity, maxKw(t), parts);
      // heating earlier rather than later at equal prices (less time for standing losses is not worth a tie)
      for (const [col] of parts) lp.addCost(col, earlier(t) * dtH[t]);
      termsOf(hp.id)[t].terms.push(...parts);
    }
    const setDev = setpointRows(hp.id, hp.limits?.setpointW, (t) => [...(space ? [[space.P[t], 1] as [number, number]] : []), ...(tank ? [[tank.P[t], 1] as [number, number]] : [])]);
    return { space, tank, setDev };
  });

  // ---------------------------------------------------------------- switched loads
  const blocks: BuiltSite['blocks'] = [];
  const loads: LoadCols[] = problem.loads.map((l) => {
    const rated = kw(l.ratedPowerW);
    const on: number[] = new Array(T).fill(NONE);
    const runOf: number[] = new Array(T).fill(NONE);
    const forcedOn: boolean[] = new Array(T).fill(false);
    const inside = (t: number, r: { start: number; end: number }) => problem.slots[t].start >= r.start - 1 && problem.slots[t].end <= r.end + 1;
    l.runs.forEach((r, k) => {
      for (let t = 0; t < T; t++) if (runOf[t] === NONE && inside(t, r)) runOf[t] = k;
    });
    for (let t = 0; t < T; t++) {
      const cap = minDefined(l.ratedPowerW, l.limits?.maxImportW?.[t]) >= l.ratedPowerW - 1e-9;
      const cheap = cheapEnough(l, problem.slots[t], importRate[t]) && !(runOf[t] !== NONE && l.runs[runOf[t]].continuous);
      if (runOf[t] === NONE && !cheap) continue;
      forcedOn[t] = cheap && cap;
      on[t] = lp.addCol(earlier(t) * dtH[t] * rated, forcedOn[t] ? 1 : 0, cap ? 1 : 0, 'binary');
      termsOf(l.id)[t].terms.push([on[t], rated]);
    }
    const maxDt = Math.max(...dtH);
    const starts: number[][] = [];
    const shortfall = l.runs.map((r, k) => {
      const slotsIn = [...Array(T).keys()].filter((t) => runOf[t] === k && on[t] !== NONE);
      const u = lp.addCol(penalties.shortfall * rated, 0, Infinity);
      if (!r.continuous) {
        const forcedH = slotsIn.filter((t) => forcedOn[t]).reduce((a, t) => a + dtH[t], 0);
        lp.addRow(r.hours, Infinity, [...slotsIn.map((t) => [on[t], dtH[t]] as [number, number]), [u, 1]]);
        if (slotsIn.length) lp.addRow(-Infinity, Math.max(r.hours + maxDt - 1e-6, forcedH), slotsIn.map((t) => [on[t], dtH[t]] as [number, number]));
        starts.push([]);
        return u;
      }
      // one block: pick its first slot; the block covers slots until `hours` are reached
      const ys: number[] = new Array(T).fill(NONE);
      const covering: [number, number][][] = Array.from({ length: T }, () => []);
      const cover: number[][] = [];
      for (const s of slotsIn) {
        if (r.mustStartNow && s !== slotsIn[0]) break;
        let acc = 0;
        const coverSlots: number[] = [];
        for (let t = s; t < T && runOf[t] === k && on[t] !== NONE && acc < r.hours - 1e-9; t++) {
          coverSlots.push(t);
          acc += dtH[t];
        }
        if (acc < r.hours - 1e-9) continue;
        ys[s] = lp.addCol(0, 0, 1, 'binary');
        for (const t of coverSlots) covering[t].push([ys[s], 1]);
        cover.push(coverSlots.map((t) => on[t]));
      }
      for (const t of slotsIn) lp.addRow(0, 0, [[on[t], 1], ...covering[t].map(([y]) => [y, -1] as [number, number])]);
      blocks.push({ starts: ys.filter((y) => y !== NONE), members: slotsIn.map((t) => on[t]), cover });
      // u here is in "blocks": a missing block costs its hours of shortfall
      lp.addCost(u, penalties.shortfall * rated * (r.hours - 1));
      lp.addRow(1, 1, [...ys.filter((y) => y !== NONE).map((y) => [y, 1] as [number, number]), [u, 1]]);
      starts.push(ys);
      return u;
    });
    const setDev = setpointRows(l.id, l.limits?.setpointW, (t) => (on[t] !== NONE ? [[on[t], rated]] : []));
    return { on, starts, shortfall, runOf, forcedOn, setDev };
  });

  // ---------------------------------------------------------------- fixed flows
  // Curtailable production: a column per slot for the part of the forecast given up. It costs a
  // tie-break (so production is cut only where that pays: exporting would cost money, a limit or an
  // unpaid export slot), and the lost export earnings follow from the balance by themselves.
  const curtailCost = tieBreak ? EPS_TIME : 1e-7;
  const curtail: BuiltSite['curtail'] = [];
  for (const f of problem.flows) {
    for (let t = 0; t < T; t++) termsOf(f.id)[t].constKw += kw(f.powerW[t]);
    if (!f.curtailable) continue;
    const off = typeof f.curtailable === 'object' && f.curtailable.steps === 'off';
    const cols: number[] = new Array(T).fill(NONE);
    for (let t = 0; t < T; t++) {
      const prodKw = -kw(f.powerW[t]);
      if (!(prodKw > 1e-6)) continue;
      // where a rate is negative, cutting is free: exporting even at −0.01 ct/kWh loses to it
      const cost = exportRate[t] < 0 || importRate[t] < 0 ? 0 : curtailCost;
      if (off) {
        cols[t] = lp.addCol(cost * prodKw * dtH[t], 0, 1, 'binary');
        termsOf(f.id)[t].terms.push([cols[t], prodKw]);
      } else {
        cols[t] = lp.addCol(cost * dtH[t], 0, prodKw);
        termsOf(f.id)[t].terms.push([cols[t], 1]);
      }
    }
    curtail.push({ id: f.id, cols, off });
  }

  // ---------------------------------------------------------------- grid connection and balance
  const g: number[] = [];
  const x: number[] = [];
  const gOver: number[] = [];
  const xOver: number[] = [];
  const w: number[] = [];
  const maxDraw = (t: number) =>
    Math.max(0, kw(problem.baseLoadW[t])) +
    problem.flows.reduce((a, f) => a + Math.max(0, kw(f.powerW[t])), 0) +
    batteries.reduce((a, b) => a + lp.col(b.c[t]).upper, 0) +
    evs.reduce((a, e) => a + (e.p[t] !== NONE ? lp.col(e.p[t]).upper : 0), 0) +
    hvacs.reduce((a, h) => a + lp.col(h.P[t]).upper, 0) +
    heatPumps.reduce((a, h) => a + (h.space ? lp.col(h.space.P[t]).upper : 0) + (h.tank ? lp.col(h.tank.P[t]).upper : 0), 0) +
    problem.loads.reduce((a, l, i) => a + (loads[i].on[t] !== NONE ? kw(l.ratedPowerW) : 0), 0);
  const maxFeed = (t: number) =>
    Math.max(0, -kw(problem.baseLoadW[t])) + problem.flows.reduce((a, f) => a + Math.max(0, -kw(f.powerW[t])), 0) + batteries.reduce((a, b) => a + lp.col(b.d[t]).upper, 0);
  const chains = new Map<string, string[]>();
  for (const d of [...problem.batteries, ...problem.evs, ...problem.hvacs, ...(problem.heatPumps ?? []), ...problem.loads, ...problem.flows]) chains.set(d.id, chainOf(problem, d.circuit));
  const below = (node: string | null, id: string) => node === null || chains.get(id)!.includes(node);
  /** Net power below a node (null = the grid) that the plan cannot avoid: fixed flows, forced loads, and HVAC at full power. */
  const mustFlowKw = (node: string | null, t: number) =>
    (node === null ? kw(problem.baseLoadW[t]) : 0) +
    problem.flows.reduce((a, f) => a + (below(node, f.id) ? kw(f.powerW[t]) : 0), 0) +
    problem.loads.reduce((a, l, i) => a + (below(node, l.id) && loads[i].forcedOn[t] ? kw(l.ratedPowerW) : 0), 0) +
    problem.hvacs.reduce((a, h, i) => a + (below(node, h.id) ? lp.col(hvacs[i].P[t]).upper : 0), 0) +
    (problem.heatPumps ?? []).reduce((a, h, i) => a + (below(node, h.id) && heatPumps[i].space ? lp.col(heatPumps[i].space!.P[t]).upper : 0), 0);
  let costScale = 0;
  for (let t = 0; t < T; t++) {
    const draw = maxDraw(t);
    const feed = maxFeed(t);
    const gMax = Math.max(0, Math.min(draw, kw(problem.grid.maxImportW[t])));
    const xMax = Math.max(0, Math.min(feed, kw(problem.grid.maxExportW[t])));
    g.push(lp.addCol(importRate[t] * dtH[t], 0, Math.max(0, gMax)));
    // an unpaid or unwanted export slot: a kWh exported costs more than a kWh curtailed (tie-break)
    const avoid = problem.avoidExport?.[t] ? 2 * curtailCost : 0;
    x.push(lp.addCol((avoid - exportRate[t]) * dtH[t], 0, Math.max(0, xMax)));
    // overflow beyond a limit (penalised) exists only where what cannot be moved could break it
    const fixedKw = mustFlowKw(null, t);
    gOver.push(fixedKw > kw(problem.grid.maxImportW[t]) + 1e-9 ? lp.addCol((importRate[t] + penalties.limit) * dtH[t], 0, Infinity) : NONE);
    xOver.push(-fixedKw > kw(problem.grid.maxExportW[t]) + 1e-9 ? lp.addCol((-exportRate[t] + penalties.limit) * dtH[t], 0, Infinity) : NONE);
    costScale += (Math.abs(importRate[t]) + Math.abs(exportRate[t])) * Math.max(Math.abs(kw(problem.baseLoadW[t])), 0.1) * dtH[t];
    const terms: [number, number][] = [[g[t], 1], [x[t], -1]];
    if (gOver[t] !== NONE) terms.push([gOver[t], 1]);
    if (xOver[t] !== NONE) terms.push([xOver[t], -1]);
    let constKw = kw(problem.baseLoadW[t]);
    for (const arr of deviceTerms.values()) {
      for (const [col, coef] of arr[t].terms) terms.push([col, -coef]);
      constKw += arr[t].constKw;
    }
    const balanceRow = lp.addRow(constKw, constKw, terms);
    // the grid starts basic on the side the house's fixed flows point to
    lp.startBasic(constKw >= 0 ? g[t] : x[t], balanceRow);
    // importing and exporting at once pays only when export earns more than import costs
    if (exportRate[t] > importRate[t] && gMax > 0 && xMax > 0) {
      w[t] = lp.addCol(0, 0, 1, 'binary');
      lp.addRow(-Infinity, 0, [[g[t], 1], [w[t], -gMax]]);
      lp.addRow(-Infinity, xMax, [[x[t], 1], [w[t], xMax]]);
    } else w[t] = NONE;
  }

  // ---------------------------------------------------------------- circuits
  const nodes = problem.circuits.map((node) => {
    const members = [...chains].filter(([, chain]) => chain.includes(node.id)).map(([id]) => id);
    const over: number[] = new Array(T).fill(NONE);
    const under: number[] = new Array(T).fill(NONE);
    for (let t = 0; t < T; t++) {
      // a negative limit would force a flow the other way; limits only ever cap
      const imp = Math.max(0, node.maxImportW[t]);
      const exp = Math.max(0, node.maxExportW[t]);
      if (!finite(imp) && !finite(exp)) continue;
      const terms: [number, number][] = [];
      let constKw = 0;
      for (const id of members) {
        const dt = deviceTerms.get(id)?.[t];
        if (!dt) continue;
        terms.push(...dt.terms);
        constKw += dt.constKw;
      }
      const fixedKw = mustFlowKw(node.id, t);
      if (finite(imp) && fixedKw > kw(imp) + 1e-9) terms.push([(over[t] = lp.addCol(penalties.limit * dtH[t], 0, Infinity)), -1]);
      if (finite(exp) && -fixedKw > kw(exp) + 1e-9) terms.push([(under[t] = lp.addCol(penalties.limit * dtH[t], 0, Infinity)), 1]);
      lp.addRow(finite(exp) ? -kw(exp) - constKw : -Infinity, finite(imp) ? kw(imp) - constKw : Infinity, terms);
    }
    return { id: node.id, over, under };
  });

  const peak = addPeakCharge(problem, lp, g, gOver, dtH);
  const tiers = addPeakTiers(problem, lp, g, gOver, dtH);

  return {
    model: lp.build(),
    dtH,
    g,
    x,
    gOver,
    xOver,
    w,
    batteries,
    evs,
    hvacs,
    heatPumps,
    loads,
    nodes,
    blocks,
    deviceTerms,
    costScale: Math.max(costScale, 1e-3),
    penalties,
    terminalValue,
    curtail,
    peak,
    tiers,
  };
}

/** The room part of an HVAC model: what `addRoom` needs (HvacModel and a heat pump's space heating). */
type RoomSpec = Pick<HvacModel, 'rKPerKw' | 'cKwhPerK' | 'cop' | 'copPerSlot' | 'initialC' | 'outdoorC' | 'gainsW' | 'minC' | 'maxC'>;

/**
 * A 1R1C room (thermal.ts): electric power and temperature columns per slot and the exact step
 * as an equality row. The band is kept wherever it can be; where it cannot, the bound becomes the
 * best reachable temperature, so comfort is hard and costs no slack columns.
 */
function addRoom(lp: LpBuilder, h: RoomSpec, sign: 1 | -1, dtH: number[], maxKw: (t: number) => number): Omit<HvacCols, 'setDev'> {
  const P: number[] = [];
  const Tc: number[] = [];
  const bandLo: number[] = [];
  const bandHi: number[] = [];
  let reachLo = h.initialC;
  let reachHi = h.initialC;
  for (let t = 0; t < dtH.length; t++) {
    const cop = h.copPerSlot?.[t] ?? h.cop;
    const a = decay({ rKPerKw: h.rKPerKw, cKwhPerK: h.cKwhPerK, cop, sign }, dtH[t]);
    const up = maxKw(t);
    const step = (temp: number, pKw: number) => a * temp + (1 - a) * (h.outdoorC[t] + h.rKPerKw * (kw(h.gainsW[t]) - sign * cop * pKw));
    const lowest = Math.min(step(reachLo, 0), step(reachLo, up));
    const highest = Math.max(step(reachHi, 0), step(reachHi, up));
    const lo = Math.min(h.minC[t], highest);
    const hi = Math.max(h.maxC[t], lowest);
    bandLo.push(lo);
    bandHi.push(hi);
    reachLo = Math.max(lowest, lo);
    reachHi = Math.min(highest, hi);
    P.push(lp.addCol(0, 0, up));
    Tc.push(lp.addCol(0, lo - 1e-9, hi + 1e-9));
    const rhs = (1 - a) * (h.outdoorC[t] + h.rKPerKw * kw(h.gainsW[t])) + (t === 0 ? a * h.initialC : 0);
    lp.startBasic(Tc[t], lp.addRow(rhs, rhs, [[Tc[t], 1], ...(t > 0 ? [[Tc[t - 1], -a] as [number, number]] : []), [P[t], (1 - a) * h.rKPerKw * sign * cop]]));
  }
  return { P, T: Tc, bandLo, bandHi };
}

/** Heat capacity of water: 4.186 kJ/(kg·K) ≈ 1.163 Wh per litre and kelvin. */
export const WATER_WH_PER_L_K = 1.163;

/**
 * A fully mixed hot-water tank: C·dT/dt = COP·P − L·(T − T_amb) − Q_draw, discretised exactly for
 * inputs constant over a slot (a = e^{−Δt·L/C}). The minimum is soft (a kelvin-hour short costs as
 * much as C kWh of shortfall); the maximum is hard (heating nothing always keeps it).
 */
function addTank(lp: LpBuilder, k: TankModel, dtH: number[], maxKw: (t: number) => number, shortfallPenalty: number): TankCols {
  const C = (k.volumeL * WATER_WH_PER_L_K) / 1000;
  const L = k.lossWPerK / 1000;
  const P: number[] = [];
  const Tc: number[] = [];
  const short: number[] = [];
  const hi = Math.max(k.maxC, k.initialC);
  for (let t = 0; t < dtH.length; t++) {
    const a = L > 1e-12 ? Math.exp((-dtH[t] * L) / C) : 1;
    // kelvin per kW held over the slot
    const gain = L > 1e-12 ? (1 - a) / L : dtH[t] / C;
    const drawKw = kw(k.drawWh[t]) / dtH[t];
    P.push(lp.addCol(0, 0, Math.min(maxKw(t), kw(k.maxElectricW))));
    Tc.push(lp.addCol(0, -Infinity, hi + 1e-9));
    const rhs = (1 - a) * k.ambientC - gain * drawKw + (t === 0 ? a * k.initialC : 0);
    lp.startBasic(Tc[t], lp.addRow(rhs, rhs, [[Tc[t], 1], ...(t > 0 ? [[Tc[t - 1], -a] as [number, number]] : []), [P[t], -gain * k.cop[t]]]));
    short.push(lp.addCol(shortfallPenalty * C * dtH[t], 0, Infinity));
    lp.addRow(k.minC[t], Infinity, [[Tc[t], 1], [short[t], 1]]);
  }
  return { P, T: Tc, short };
}

const imported = (t: number, g: number[], gOver: number[], coef: number): [number, number][] => (gOver[t] !== NONE ? [[g[t], coef], [gOver[t], coef]] : [[g[t], coef]]);

/**
 * The monthly peak of slot-mean import (see PeakCharge for the amortisation). One column per
 * billing month the horizon touches, bounded below by the peak that month is billed anyway, priced
 * at the full monthly price per kW: `P ≥ import(t)` for every slot of the month. The offset takes
 * the floor's charge back out, so the objective holds only what the plan adds to the bill.
 *
 * A slot's mean stands for the 15-minute means inside it: exact for 15-minute slots; for longer
 * slots the billed 15-minute peak can be higher than the slot mean (the plan is then optimistic).
 */
function addPeakCharge(problem: SiteProblem, lp: LpBuilder, g: number[], gOver: number[], dtH: number[]): BuiltSite['peak'] {
  const pc = problem.peakCharge;
  if (!pc || !(pc.pricePerKwMonth > 0)) return { month: NONE, next: NONE, floorKw: [] };
  const T = problem.slots.length;
  const end = pc.monthEnd ?? Infinity;
  const minKw = kw(Math.max(0, pc.minimumW ?? 0));
  const floors = [Math.max(minKw, kw(pc.runningPeakW ?? 0)), Math.max(minKw, kw(pc.nextRunningPeakW ?? 0))];
  const cols = [NONE, NONE];
  for (let t = 0; t < T; t++) {
    const m = problem.slots[t].start >= end ? 1 : 0;
    if (cols[m] === NONE) {
      cols[m] = lp.addCol(pc.pricePerKwMonth, floors[m], Infinity);
      lp.offset -= pc.pricePerKwMonth * floors[m];
    }
    lp.addRow(-Infinity, 0, [...imported(t, g, gOver, 1), [cols[m], -1]]);
  }
  void dtH;
  return { month: cols[0], next: cols[1], floorKw: floors };
}

/** The sum of the k largest of `values` (missing ones count as 0). */
const topSum = (values: number[], k: number) => [...values].sort((a, b) => b - a).slice(0, k).reduce((a, v) => a + v, 0);

/**
 * The Norwegian stepped capacity fee. Hourly means: the energy imported in each clock hour of the
 * site's zone (kWh = kW mean); per day the highest of them, `D_d ≥ E_h`; the sum of the top k days by
 * the LP form of "sum of the k largest" (Ogryczak & Tamir): `S = k·u + Σ s_d`, `s_d ≥ D_d − u`,
 * `s_d, u ≥ 0`, exact when minimised. The step fee needs binaries only for the tiers between the one
 * the month has already reached (from the days past) and the highest the horizon could reach (every
 * slot at its import limit): one per step, ordered `y_k ≥ y_{k+1}`, with `mean ≤ top of the base
 * tier + Σ y_k · width_k` and each step's extra fee on its binary. Usually one or two binaries.
 */
function addPeakTiers(problem: SiteProblem, lp: LpBuilder, g: number[], gOver: number[], dtH: number[]): BuiltSite['tiers'] {
  const pt = problem.peakTiers;
  if (!pt || !pt.tiers.length) return undefined;
  const tiers = pt.tiers;
  for (let i = 1; i < tiers.length; i++) if (!(tiers[i].upToW > tiers[i - 1].upToW)) throw new Error('site problem: peakTiers.tiers must have increasing upToW');
  const k = pt.topDays ?? 3;
  const zone = pt.timezone ?? 'UTC';
  const end = pt.monthEnd ?? Infinity;
  const HOUR = 3_600_000;
  // hours and days of the slots inside the month
  const hours = new Map<number, { day: string; terms: [number, number][]; maxKwh: number; constKwh: number }>();
  problem.slots.forEach((s, t) => {
    if (s.start >= end) return;
    const h = Math.floor(s.start / HOUR);
    let hour = hours.get(h);
    if (!hour) {
      const day = DateTime.fromMillis(s.start, { zone }).toISODate()!;
      hours.set(h, (hour = { day, terms: [], maxKwh: 0, constKwh: t === 0 ? kw(pt.currentHourWh ?? 0) : 0 }));
    }
    hour.terms.push(...imported(t, g, gOver, -dtH[t]));
    hour.maxKwh += (lp.col(g[t]).upper + (gOver[t] !== NONE ? kw(Math.max(0, problem.baseLoadW[t])) : 0)) * dtH[t];
  });
  const past = new Map(Object.entries(pt.dailyPeaksW ?? {}).map(([d, w]) => [d, kw(w)]));
  const days = new Map<string, number>();
  const dayMax = new Map<string, number>(past);
  for (const hour of hours.values()) {
    if (!days.has(hour.day)) days.set(hour.day, lp.addCol(0, past.get(hour.day) ?? 0, Infinity));
    // D_d − E_h ≥ energy already in the hour
    lp.addRow(hour.constKwh, Infinity, [[days.get(hour.day)!, 1], ...hour.terms]);
    dayMax.set(hour.day, Math.max(dayMax.get(hour.day) ?? 0, hour.constKwh + hour.maxKwh));
  }
  const u = lp.addCol(0, 0, Infinity);
  // a crumb of cost keeps the mean (and with it each day's peak) tight, so the plan reports it
  const mean = lp.addCol(1e-6, 0, Infinity);
  const sumTerms: [number, number][] = [[u, k]];
  for (const [day, lb] of past) {
    if (days.has(day)) continue;
    const sd = lp.addCol(0, 0, Infinity);
    lp.addRow(lb, Infinity, [[sd, 1], [u, 1]]);
    sumTerms.push([sd, 1]);
  }
  for (const col of days.values()) {
    const sd = lp.addCol(0, 0, Infinity);
    lp.addRow(0, Infinity, [[sd, 1], [u, 1], [col, -1]]);
    sumTerms.push([sd, 1]);
  }
  // mean·k ≥ S, so the mean is at least the top-k mean (and the minimisation makes it equal)
  lp.addRow(0, Infinity, [[mean, k], ...sumTerms.map(([c, v]) => [c, -v] as [number, number])]);
  const lowMean = topSum([...dayMax.keys()].map((d) => (days.has(d) ? (past.get(d) ?? 0) : dayMax.get(d)!)), k) / k;
  const highMean = topSum([...dayMax.values()], k) / k;
  const tierOf = (meanKw: number) => {
    const i = tiers.findIndex((tr) => meanKw <= kw(tr.upToW) + 1e-9);
    return i < 0 ? tiers.length - 1 : i;
  };
  const base = tierOf(lowMean);
  const top = tierOf(highMean);
  lp.offset += tiers[base].feePerMonth;
  const steps: number[] = [];
  const capTerms: [number, number][] = [[mean, 1]];
  for (let i = base + 1; i <= top; i++) {
    const y = lp.addCol(tiers[i].feePerMonth - tiers[i - 1].feePerMonth, 0, 1, 'binary');
    const upper = Number.isFinite(tiers[i].upToW) ? kw(tiers[i].upToW) : highMean + 1;
    capTerms.push([y, -(upper - kw(tiers[i - 1].upToW))]);
    if (steps.length) lp.addRow(0, Infinity, [[steps[steps.length - 1], 1], [y, -1]]);
    steps.push(y);
  }
  const baseUpper = Number.isFinite(tiers[base].upToW) ? kw(tiers[base].upToW) : Infinity;
  if (Number.isFinite(baseUpper)) lp.addRow(-Infinity, baseUpper, capTerms);
  return { mean, steps, base };
}

export { NONE };
