import { cheapEnough, type PlanReason, type SitePlan, type SiteProblem } from './types.js';

/** Watts below which a flow counts as zero when explaining a plan. */
const W_TOL = 5;
/** Degrees within which the room counts as at the band edge. */
const C_TOL = 0.05;

/**
 * Says why each device does what it does in each slot, and turns the plan into device terms
 * (inverter modes, thermostat setpoints). Fills `reasons`, `modes` and `setpointC` in place.
 * price = chosen for the rate (cheap to draw, dear to supply, or waiting for a better one);
 * solar = soaking up PV surplus; limit = held back by a grid or circuit limit; comfort = holding
 * the comfort band; deadline = running now because what is left of the window would not suffice;
 * setpoint = fixed by an external setpoint; idle = nothing to do.
 */
export function explain(problem: SiteProblem, plan: SitePlan): void {
  const T = problem.slots.length;
  const byId = new Map(problem.circuits.map((c) => [c.id, c]));
  const nodeById = new Map(plan.nodes.map((n) => [n.id, n]));
  const chain = (circuit: string | undefined) => {
    const out: string[] = [];
    for (let cur = circuit; cur !== undefined && !out.includes(cur); cur = byId.get(cur)?.parent) out.push(cur);
    return out;
  };
  /** A limit on the draw side binds in slot t for a device on `circuit`. */
  const importBound = (circuit: string | undefined, t: number, own?: number, powerW = 0) => {
    if (own !== undefined && powerW >= own - W_TOL) return true;
    if (plan.importW[t] >= problem.grid.maxImportW[t] - W_TOL) return true;
    return chain(circuit).some((id) => {
      const n = nodeById.get(id);
      return n !== undefined && Number.isFinite(n.maxImportW[t]) && n.netW[t] >= n.maxImportW[t] - W_TOL;
    });
  };
  const exporting = (t: number) => plan.exportW[t] > W_TOL;
  const importing = (t: number) => plan.importW[t] > W_TOL;
  const pvSurplus = (t: number) => problem.baseLoadW[t] + problem.flows.reduce((a, f) => a + f.powerW[t], 0) < -W_TOL;

  for (const dev of plan.devices) {
    const reasons: PlanReason[] = [];
    if (dev.kind === 'battery') {
      const b = problem.batteries.find((x) => x.id === dev.id)!;
      const modes: ('auto' | 'charge' | 'discharge' | 'hold')[] = [];
      for (let t = 0; t < T; t++) {
        const p = dev.powerW[t];
        const sp = b.limits?.setpointW?.[t];
        const balanced = !importing(t) && !exporting(t);
        const atMaxCharge = p >= Math.min(b.maxChargeW, b.limits?.maxImportW?.[t] ?? Infinity) - W_TOL;
                // "auto" (follow the house) gives the same flows as the plan and adapts to forecast errors
        // a battery covering part of the house's need (no export) also follows the house: it covers more
        // than planned if the house needs more, and never exports what a smaller need leaves over
        const follows = (p > W_TOL && !importing(t) && (balanced || atMaxCharge)) || (p < -W_TOL && !exporting(t)) || (Math.abs(p) <= W_TOL && balanced);
        modes.push(sp !== undefined ? (sp > W_TOL ? 'charge' : sp < -W_TOL ? 'discharge' : 'hold') : follows ? 'auto' : p > W_TOL ? 'charge' : p < -W_TOL ? 'discharge' : 'hold');
        if (sp !== undefined) reasons.push('setpoint');
        else if (p > W_TOL) reasons.push(!importing(t) && pvSurplus(t) ? 'solar' : 'price');
        else if (p < -W_TOL) reasons.push(importBound(b.circuit, t) && importing(t) ? 'limit' : 'price');
        else reasons.push(balanced ? 'idle' : 'price');
      }
      dev.modes = modes;
    } else if (dev.kind === 'ev') {
      const ev = problem.evs.find((x) => x.id === dev.id)!;
      const hours = (t: number, k: number) => {
        const sess = ev.sessions[k];
        return Math.max(0, Math.min(sess.until ?? Infinity, problem.slots[t].end) - Math.max(sess.from ?? -Infinity, problem.slots[t].start)) / 3_600_000;
      };
      const sessionOf = problem.slots.map((_s, t) => ev.sessions.findIndex((_k, k) => hours(t, k) > 0));
      const surplusW = (t: number) => Math.max(0, -(problem.baseLoadW[t] + problem.flows.reduce((a, f) => a + f.powerW[t], 0)));
      const capW = (t: number) => Math.min(ev.maxPowerW, ev.limits?.maxImportW?.[t] ?? Infinity, ev.solarOnly ? surplusW(t) : Infinity);
      // energy the car could still take after each slot of its stay (Wh), to tell a deadline from a choice
      const capAfter = new Array(T).fill(0);
      for (let t = T - 2; t >= 0; t--) capAfter[t] = sessionOf[t] >= 0 && sessionOf[t + 1] === sessionOf[t] ? capAfter[t + 1] + capW(t + 1) * hours(t + 1, sessionOf[t + 1]) : 0;
      const delivered = ev.sessions.map(() => 0);
      for (let t = 0; t < T; t++) {
        const k = sessionOf[t];
        const p = dev.powerW[t];
        if (ev.limits?.setpointW?.[t] !== undefined) reasons.push('setpoint');
        else if (k < 0) reasons.push('idle');
        else {
          const stillNeeded = ev.sessions[k].energyNeededWh - delivered[k];
          if (p > W_TOL) {
            const limited = p < ev.maxPowerW - W_TOL && importBound(ev.circuit, t, ev.limits?.maxImportW?.[t], p);
            if (limited) reasons.push('limit');
            else if (!importing(t) && pvSurplus(t)) reasons.push('solar');
            else if (stillNeeded > capAfter[t] + 1) reasons.push('deadline');
            else reasons.push('price');
          } else reasons.push(stillNeeded <= 1 ? 'idle' : importBound(ev.circuit, t, ev.limits?.maxImportW?.[t], p) ? 'limit' : 'price');
          delivered[k] += p * hours(t, k);
        }
      }
    } else if (dev.kind === 'hvac') {
      const h = problem.hvacs.find((x) => x.id === dev.id)!;
      const cool = h.mode === 'cool';
      const setpointC: number[] = [];
      for (let t = 0; t < T; t++) {
        const p = dev.powerW[t];
        const temp = dev.temperatureC![t];
        const edge = cool ? h.maxC[t] : h.minC[t];
        const atEdge = Math.abs(temp - edge) <= C_TOL || (cool ? temp > edge : temp < edge);
        // a thermostat follows the plan when its setpoint is the planned temperature
        setpointC.push(p > W_TOL ? Math.min(h.maxC[t], Math.max(h.minC[t], temp)) : edge);
        if (h.limits?.setpointW?.[t] !== undefined) reasons.push('setpoint');
        else if (p > W_TOL && p < h.maxElectricW - W_TOL && !atEdge && importBound(h.circuit, t, h.limits?.maxImportW?.[t], p)) reasons.push('limit');
        else if (p > W_TOL) reasons.push(atEdge ? 'comfort' : !importing(t) && pvSurplus(t) ? 'solar' : 'price');
        else {
          const prev = t === 0 ? h.initialC : dev.temperatureC![t - 1];
          const drifting = cool ? temp > prev + 1e-6 : temp < prev - 1e-6;
          reasons.push(drifting && !atEdge ? 'price' : atEdge ? 'comfort' : 'idle');
        }
      }
      dev.setpointC = setpointC;
    } else if (dev.kind === 'heatpump') {
      const hp = problem.heatPumps!.find((x) => x.id === dev.id)!;
      for (let t = 0; t < T; t++) {
        const p = dev.powerW[t];
        const tankAtMin = hp.tank && dev.tankC ? dev.tankC[t] <= hp.tank.minC[t] + C_TOL : false;
        const roomAtMin = hp.space && dev.temperatureC ? dev.temperatureC[t] <= hp.space.minC[t] + C_TOL : false;
        if (hp.limits?.setpointW?.[t] !== undefined) reasons.push('setpoint');
        else if (p > W_TOL) reasons.push(tankAtMin || roomAtMin ? 'comfort' : !importing(t) && pvSurplus(t) ? 'solar' : 'price');
        else reasons.push(tankAtMin || roomAtMin ? 'comfort' : 'idle');
      }
    } else if (dev.kind === 'load') {
      const l = problem.loads.find((x) => x.id === dev.id)!;
      const runOf = problem.slots.map((sl) => l.runs.findIndex((r) => sl.start >= r.start - 1 && sl.end <= r.end + 1));
      const slotH = (t: number) => (problem.slots[t].end - problem.slots[t].start) / 3_600_000;
      const hoursAfter = new Array(T).fill(0);
      for (let t = T - 2; t >= 0; t--) hoursAfter[t] = runOf[t + 1] === runOf[t] && runOf[t] >= 0 ? hoursAfter[t + 1] + slotH(t + 1) : 0;
      const done = l.runs.map(() => 0);
      for (let t = 0; t < T; t++) {
        const k = runOf[t];
        const on = dev.on![t];
        if (l.limits?.setpointW?.[t] !== undefined) reasons.push('setpoint');
        else if (on) {
          const cheap = cheapEnough(l, problem.slots[t], problem.importRate[t]);
          const left = k >= 0 ? l.runs[k].hours - done[k] : 0;
          // a block that starts here could not start any later; a split run could not finish without this slot
          const firstOfBlock = k >= 0 && l.runs[k].continuous && (t === 0 || !dev.on![t - 1] || runOf[t - 1] !== k);
          const forced = k >= 0 && (l.runs[k].continuous ? firstOfBlock && hoursAfter[t] + slotH(t) < l.runs[k].hours + slotH(t) - 1e-9 : left > hoursAfter[t] + 1e-9);
          reasons.push(cheap ? 'price' : forced ? 'deadline' : !importing(t) && pvSurplus(t) ? 'solar' : 'price');
          if (k >= 0 && l.runs[k].continuous && !firstOfBlock) reasons[t] = reasons[t - 1];
        } else reasons.push(k >= 0 && done[k] < l.runs[k].hours - 1e-9 ? (importBound(l.circuit, t, l.limits?.maxImportW?.[t], 0) ? 'limit' : 'price') : 'idle');
        if (k >= 0 && on) done[k] += slotH(t);
      }
    }
    dev.reasons = reasons;
  }
}
