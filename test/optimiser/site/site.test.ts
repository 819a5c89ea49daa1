import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSolver } from '../../../src/control/solver.js';
import { exampleSite } from '../../../src/optimiser/site/example.js';
import { planSite, roomStep, thermostatAtEdge, type LpSolver, type SiteProblem } from '../../../src/optimiser/site/index.js';
import { H, T0, battery, settle, smallSite, sum } from './helpers.js';

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadSolver();
});

const dev = (plan: ReturnType<typeof planSite>, id: string) => plan.devices.find((d) => d.id === id)!;
const net = (plan: ReturnType<typeof planSite>) => plan.importW.map((i, t) => i - plan.exportW[t]);

/** Every battery schedule in whole kW steps (η = 1, 1 h slots), the cheapest by brute force. */
function bruteBattery(p: SiteProblem, capKwh: number, initKwh: number): number {
  const T = p.slots.length;
  let best = Infinity;
  const powers = [-1, 0, 1];
  const walk = (t: number, soc: number, cost: number) => {
    if (t === T) {
      best = Math.min(best, cost);
      return;
    }
    for (const b of powers) {
      const s = soc + b;
      if (s < -1e-9 || s > capKwh + 1e-9) continue;
      const n = p.baseLoadW[t] / 1000 + p.flows.reduce((a, f) => a + f.powerW[t] / 1000, 0) + b;
      walk(t + 1, s, cost + (n > 0 ? p.importRate[t] * n : p.exportRate[t] * n));
    }
  };
  walk(0, initKwh, 0);
  return best;
}

/** Dynamic programming over a 0.01 kWh SoC grid, any efficiency; an upper bound close to the optimum. */
function dpBattery(p: SiteProblem, b: { cap: number; init: number; pmax: number; etaC: number; etaD: number }): number {
  const step = 0.01;
  const N = Math.round(b.cap / step);
  let value = new Float64Array(N + 1).fill(0); // terminal value 0
  for (let t = p.slots.length - 1; t >= 0; t--) {
    const next = new Float64Array(N + 1).fill(Infinity);
    const fixed = p.baseLoadW[t] / 1000 + p.flows.reduce((a, f) => a + f.powerW[t] / 1000, 0);
    for (let i = 0; i <= N; i++) {
      for (let j = 0; j <= N; j++) {
        const ds = (j - i) * step;
        const power = ds >= 0 ? ds / b.etaC : ds * b.etaD;
        if (power > b.pmax + 1e-9 || power < -b.pmax - 1e-9) continue;
        const n = fixed + power;
        const c = (n > 0 ? p.importRate[t] * n : p.exportRate[t] * n) + value[j];
        if (c < next[i]) next[i] = c;
      }
    }
    value = next;
  }
  return value[Math.round(b.init / step)];
}

const priceArb = fc.array(fc.integer({ min: -10, max: 60 }), { minLength: 6, maxLength: 6 });

describe('site plan: battery', () => {
  it('matches brute force over every whole-kW schedule, including negative prices and export above import', () => {
    fc.assert(
      fc.property(
        priceArb,
        fc.array(fc.integer({ min: -10, max: 60 }), { minLength: 6, maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 6, maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 6, maxLength: 6 }),
        fc.integer({ min: 0, max: 3 }),
        (imp, exp, load, pv, init) => {
          const p = smallSite(6, {
            importRate: imp.map((c) => c / 100),
            exportRate: exp.map((c) => c / 100),
            baseLoadW: load.map((k) => k * 1000),
            flows: [{ id: 'pv', powerW: pv.map((k) => -k * 1000) }],
            batteries: [battery({ initialWh: init * 1000, terminalValuePerKwh: 0 })],
          });
          const plan = planSite(p, solver);
          const best = bruteBattery(p, 3, init);
          // the plan may pay tie-break crumbs (≤ 0.1 ct/kWh) but never more, and never less than possible
          expect(plan.cost).toBeGreaterThanOrEqual(best - 1e-6);
          expect(plan.cost).toBeLessThanOrEqual(best + 0.01);
          expect(settle(net(plan), p)).toBeCloseTo(plan.cost, 6);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('with losses, is never worse than dynamic programming on a 0.01 kWh grid and within 0.5 ct of it', () => {
    fc.assert(
      fc.property(priceArb, fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 6, maxLength: 6 }), fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 6, maxLength: 6 }), (imp, load, pv) => {
        const p = smallSite(6, {
          importRate: imp.map((c) => c / 100),
          exportRate: imp.map((c) => Math.max(-0.05, c / 200)),
          baseLoadW: load.map((k) => k * 100),
          flows: [{ id: 'pv', powerW: pv.map((k) => -k * 100) }],
          batteries: [battery({ capacityWh: 2000, socMaxWh: 2000, initialWh: 1000, chargeEfficiency: 0.9, dischargeEfficiency: 0.95, maxChargeW: 800, maxDischargeW: 800 })],
        });
        const plan = planSite(p, solver);
        const dp = dpBattery(p, { cap: 2, init: 1, pmax: 0.8, etaC: 0.9, etaD: 0.95 });
        expect(plan.cost).toBeLessThanOrEqual(dp + 1e-3);
        expect(dp - plan.cost).toBeLessThan(0.005);
      }),
      { numRuns: 15 },
    );
  });

  it('never charges and discharges in one slot, even when wasting energy pays (negative prices)', () => {
    const p = smallSite(8, {
      importRate: [0.3, -0.2, -0.5, -0.1, 0.4, 0.3, -0.3, 0.2],
      exportRate: [0.1, -0.3, -0.6, -0.2, 0.1, 0.1, -0.4, 0.05],
      baseLoadW: [500, 500, 500, 500, 500, 500, 500, 500],
      flows: [{ id: 'pv', powerW: [0, -3000, -4000, -2000, 0, 0, -3000, 0] }],
      batteries: [battery({ capacityWh: 5000, socMaxWh: 5000, initialWh: 2500, maxChargeW: 2000, maxDischargeW: 2000, chargeEfficiency: 0.9, dischargeEfficiency: 0.9 })],
    });
    const plan = planSite(p, solver);
    const b = dev(plan, 'battery');
    let soc = 2500;
    for (let t = 0; t < 8; t++) {
      const pw = b.powerW[t];
      // one direction only: the stored energy moves by exactly η·P or P/η
      const expected = soc + (pw > 0 ? 0.9 * pw : pw / 0.9);
      expect(b.socWh![t]).toBeCloseTo(expected, 0);
      soc = b.socWh![t];
    }
    // it does soak up energy while the grid pays for taking it
    expect(b.powerW[2]).toBeGreaterThan(0);
  });

  it('values the energy left at the end, so it does not drain the battery for free', () => {
    const flat = smallSite(6, { importRate: [0.3, 0.3, 0.3, 0.3, 0.3, 0.3], exportRate: [0.05, 0.05, 0.05, 0.05, 0.05, 0.05] });
    const plan = planSite({ ...flat, batteries: [battery({ initialWh: 3000, terminalValuePerKwh: undefined })] }, solver);
    expect(dev(plan, 'battery').socWh!.at(-1)).toBeCloseTo(3000, 0);
    // without a value for it, exporting at 5 ct looks like a gain
    const drained = planSite({ ...flat, batteries: [battery({ initialWh: 3000, terminalValuePerKwh: 0 })] }, solver);
    expect(dev(drained, 'battery').socWh!.at(-1)).toBeCloseTo(0, 0);
  });

  it('does not cycle when prices are flat, and charges as early as possible when it gains', () => {
    const plan = planSite(smallSite(6, { baseLoadW: [400, 400, 400, 400, 400, 400], batteries: [battery({ initialWh: 1000 })] }), solver);
    expect(dev(plan, 'battery').powerW.filter((x) => x > 0)).toEqual([]);
    const cheap = planSite(smallSite(6, { importRate: [0.1, 0.1, 0.1, 0.1, 0.5, 0.5], baseLoadW: [0, 0, 0, 0, 1000, 1000], batteries: [battery({ capacityWh: 2000, socMaxWh: 2000 })] }), solver);
    expect(dev(cheap, 'battery').powerW).toEqual([1000, 1000, 0, 0, -1000, -1000]);
  });

  it('follows an external setpoint and respects device limits', () => {
    const p = smallSite(4, {
      importRate: [0.1, 0.1, 0.5, 0.5],
      baseLoadW: [0, 0, 1000, 1000],
      batteries: [battery({ initialWh: 1000, limits: { setpointW: [undefined, -300, undefined, undefined], maxImportW: [400, undefined, undefined, undefined] } })],
    });
    const b = dev(planSite(p, solver), 'battery');
    expect(b.powerW[0]).toBeCloseTo(400, 3);
    expect(b.powerW[1]).toBeCloseTo(-300, 3);
    expect(b.reasons[1]).toBe('setpoint');
  });
});

/** The cheapest EV schedule: every subset of slots on, each on slot between min and max power. */
function bruteEv(rates: number[], hours: number[], needKwh: number, minKw: number, maxKw: number): number {
  let best = Infinity;
  const n = rates.length;
  for (let mask = 0; mask < 1 << n; mask++) {
    const on = [...Array(n).keys()].filter((t) => mask & (1 << t));
    const minE = sum(on.map((t) => minKw * hours[t]));
    const maxE = sum(on.map((t) => maxKw * hours[t]));
    if (maxE < needKwh - 1e-9) continue;
    let cost = sum(on.map((t) => rates[t] * minKw * hours[t]));
    let left = Math.max(0, needKwh - minE);
    for (const t of [...on].sort((a, b) => rates[a] - rates[b])) {
      const e = Math.min(left, (maxKw - minKw) * hours[t]);
      cost += rates[t] * e;
      left -= e;
    }
    best = Math.min(best, cost);
  }
  return best;
}

describe('site plan: EV', () => {
  const ev = (over: Partial<SiteProblem['evs'][number]> = {}) => ({ id: 'ev', minPowerW: 1380, maxPowerW: 3680, sessions: [{ energyNeededWh: 10_000 }], ...over });

  it('reaches its target at least cost, with no charging below the 6 A minimum (brute force)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 5, max: 50 }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 1000, max: 25_000 }), (rates, need) => {
        const p = smallSite(8, { importRate: rates.map((c) => c / 100), evs: [ev({ sessions: [{ energyNeededWh: need }] })] });
        const plan = planSite(p, solver);
        const e = dev(plan, 'ev');
        expect(e.energyWh).toBeGreaterThanOrEqual(need - 1);
        for (const w of e.powerW) expect(w === 0 || w >= 1380 - 0.1).toBe(true);
        const best = bruteEv(p.importRate, p.slots.map(() => 1), need / 1000, 1.38, 3.68);
        // within the plan's 0.5 % gap (and the tie-break crumbs)
        expect(plan.cost).toBeLessThanOrEqual(best * 1.005 + 0.005);
        expect(plan.cost).toBeGreaterThanOrEqual(best - 1e-6);
      }),
      { numRuns: 30 },
    );
  });

  it('says by how much it falls short when the target cannot be met before leave time', () => {
    const p = smallSite(8, { evs: [ev({ sessions: [{ from: T0 + 2 * H, until: T0 + 6 * H, energyNeededWh: 30_000 }] })] });
    const plan = planSite(p, solver);
    const e = dev(plan, 'ev');
    expect(e.powerW).toEqual([0, 0, 3680, 3680, 3680, 3680, 0, 0]);
    expect(e.shortfallWh).toBe(30_000 - 4 * 3680);
    expect(plan.warnings.join()).toMatch(/15280 Wh of its target cannot be delivered/);
    expect(e.reasons.slice(2, 6)).toEqual(['deadline', 'deadline', 'deadline', 'deadline']);
  });

  it('charges in the earliest of equally cheap slots, and stops at the car’s room', () => {
    const plan = planSite(smallSite(6, { evs: [ev({ sessions: [{ energyNeededWh: 7360 }] })] }), solver);
    expect(dev(plan, 'ev').powerW).toEqual([3680, 3680, 0, 0, 0, 0]);
    const room = planSite(smallSite(6, { importRate: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1], evs: [ev({ priceLimit: 0.2, sessions: [{ energyNeededWh: 1000, roomWh: 5000 }] })] }), solver);
    expect(dev(room, 'ev').energyWh).toBeCloseTo(5000, 0);
  });

  it('always charges while the price is at or below price_limit', () => {
    const rates = [0.35, 0.12, 0.4, 0.15, 0.3, 0.11];
    const plan = planSite(smallSite(6, { importRate: rates, evs: [ev({ priceLimit: 0.15, sessions: [{ energyNeededWh: 0 }] })] }), solver);
    expect(dev(plan, 'ev').powerW).toEqual([0, 3680, 0, 3680, 0, 3680]);
  });

  it('charges from PV surplus only when full_autonomy is set', () => {
    const pv = [0, -1000, -2500, -4000, -3000, 0];
    const p = smallSite(6, { importRate: [0.01, 0.3, 0.3, 0.3, 0.3, 0.01], exportRate: [0, 0, 0, 0, 0, 0], baseLoadW: [300, 300, 300, 300, 300, 300], flows: [{ id: 'pv', powerW: pv }], evs: [ev({ solarOnly: true, sessions: [{ energyNeededWh: 20_000 }] })] });
    const e = dev(planSite(p, solver), 'ev');
    expect(e.powerW[0]).toBe(0);
    expect(e.powerW[5]).toBe(0);
    expect(e.powerW[1]).toBe(0); // 700 W of surplus is below the 1380 W minimum
    for (let t = 0; t < 6; t++) expect(e.powerW[t]).toBeLessThanOrEqual(Math.max(0, -pv[t] - 300) + 0.1);
    expect(e.powerW[3]).toBeCloseTo(3680, 0);
    expect(e.reasons[3]).toBe('solar');
  });
});

describe('site plan: HVAC', () => {
  const outdoor = (n: number, dtH: number) => Array.from({ length: n }, (_, k) => 29 + 6 * Math.cos(((k * dtH - 15) / 24) * 2 * Math.PI));
  const ac = (n: number, dtH: number, over = {}) => ({
    id: 'ac',
    mode: 'cool' as const,
    rKPerKw: 5,
    cKwhPerK: 3,
    cop: 3,
    maxElectricW: 1500,
    initialC: 24.5,
    outdoorC: outdoor(n, dtH),
    gainsW: Array.from({ length: n }, (_, k) => 400 + 800 * Math.exp(-(((k * dtH) % 24 - 14) ** 2) / 8)),
    minC: new Array(n).fill(22),
    maxC: new Array(n).fill(25),
    ...over,
  });

  it('the room model matches the closed-form solution of the 1R1C equation', () => {
    const room = { rKPerKw: 5, cKwhPerK: 3, cop: 3, sign: 1 as const };
    for (const [t0, tout, gains, p, hours] of [[24, 35, 0.8, 0.5, 2], [20, 5, 0.3, 0, 10], [26, 30, 1, 1.5, 0.25]]) {
      const teq = tout + 5 * (gains - 3 * p);
      const exact = teq + (t0 - teq) * Math.exp(-hours / 15);
      expect(roomStep(room, t0, tout, gains, p, hours)).toBeCloseTo(exact, 10);
      // exact discretisation: many small steps land where one big step does
      let t = t0;
      for (let k = 0; k < 100; k++) t = roomStep(room, t, tout, gains, p, hours / 100);
      expect(t).toBeCloseTo(exact, 10);
    }
  });

  it('plans a trajectory the room model reproduces, inside the band', () => {
    const n = 96;
    const p = smallSite(n, { slotH: 0.25, importRate: Array.from({ length: n }, (_, k) => (k >= 68 && k < 84 ? 0.5 : 0.2)), hvacs: [ac(n, 0.25)] });
    const plan = planSite(p, solver);
    const h = dev(plan, 'ac');
    let t = 24.5;
    for (let k = 0; k < n; k++) {
      t = roomStep({ rKPerKw: 5, cKwhPerK: 3, cop: 3, sign: 1 }, t, p.hvacs[0].outdoorC[k], p.hvacs[0].gainsW[k] / 1000, h.powerW[k] / 1000, 0.25);
      expect(h.temperatureC![k]).toBeCloseTo(t, 1);
      // (the plan's powers are rounded to 0.1 W, hence the 1e-4 K)
      expect(t).toBeLessThanOrEqual(25 + 1e-4);
      expect(t).toBeGreaterThanOrEqual(22 - 1e-4);
    }
    // pre-cools before the dear 17:00–21:00 period and costs less than a thermostat at the band edge
    const thermostat = thermostatAtEdge({ rKPerKw: 5, cKwhPerK: 3, cop: 3, sign: 1 }, 24.5, p.hvacs[0].maxC, p.hvacs[0].outdoorC, p.hvacs[0].gainsW.map((g) => g / 1000), p.slots.map(() => 0.25), 1.5);
    const thermostatCost = sum(thermostat.powerKw.map((kw, k) => kw * 0.25 * p.importRate[k]));
    expect(h.temperatureC![67]).toBeLessThan(24);
    expect(plan.cost).toBeLessThan(thermostatCost * 0.9);
    expect(h.reasons.slice(60, 68)).toContain('price');
  });

  it('at a flat price uses exactly the energy of a thermostat holding the band edge', () => {
    const n = 96;
    const p = smallSite(n, { slotH: 0.25, hvacs: [ac(n, 0.25)] });
    const plan = planSite(p, solver);
    const thermostat = thermostatAtEdge({ rKPerKw: 5, cKwhPerK: 3, cop: 3, sign: 1 }, 24.5, p.hvacs[0].maxC, p.hvacs[0].outdoorC, p.hvacs[0].gainsW.map((g) => g / 1000), p.slots.map(() => 0.25), 1.5);
    const thermostatWh = sum(thermostat.powerKw) * 0.25 * 1000;
    expect(thermostatWh).toBeGreaterThan(5000);
    expect(dev(plan, 'ac').energyWh).toBeCloseTo(thermostatWh, 0);
  });

  it('heats too, and reports discomfort when the heat pump is too small', () => {
    const n = 24;
    const cold = { mode: 'heat' as const, outdoorC: new Array(n).fill(-10), gainsW: new Array(n).fill(0), initialC: 21, minC: new Array(n).fill(20), maxC: new Array(n).fill(23) };
    const small = planSite(smallSite(n, { hvacs: [ac(n, 1, { ...cold, maxElectricW: 500 })] }), solver);
    const h = dev(small, 'ac');
    expect(h.powerW.every((w) => w === 500)).toBe(true);
    expect(h.discomfortKh).toBeGreaterThan(1);
    expect(small.warnings.join()).toMatch(/leaves the comfort band/);
    const big = dev(planSite(smallSite(n, { hvacs: [ac(n, 1, { ...cold, maxElectricW: 5000 })] }), solver), 'ac');
    expect(big.discomfortKh).toBe(0);
    for (const c of big.temperatureC!) expect(c).toBeGreaterThanOrEqual(20 - 1e-6);
  });
});

describe('site plan: switched loads', () => {
  it('runs N hours in the cheapest slots of its window (brute force), earliest on ties', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 5, max: 40 }), { minLength: 10, maxLength: 10 }), fc.integer({ min: 1, max: 4 }), (rates, hours) => {
        const p = smallSite(10, { importRate: rates.map((c) => c / 100), loads: [{ id: 'dw', ratedPowerW: 2000, runs: [{ start: T0 + H, end: T0 + 9 * H, hours }] }] });
        const plan = planSite(p, solver);
        const inWindow = rates.slice(1, 9).map((r) => r / 100).sort((a, b) => a - b);
        expect(plan.cost).toBeCloseTo(sum(inWindow.slice(0, hours)) * 2, 6);
        expect(sum(dev(plan, 'dw').powerW)).toBe(2000 * hours);
        expect(dev(plan, 'dw').on![0]).toBe(false);
      }),
      { numRuns: 25 },
    );
    const tie = planSite(smallSite(6, { loads: [{ id: 'dw', ratedPowerW: 1000, runs: [{ start: T0, end: T0 + 6 * H, hours: 2 }] }] }), solver);
    expect(dev(tie, 'dw').on).toEqual([true, true, false, false, false, false]);
  });

  it('runs one unbroken block at the cheapest start when asked to (brute force)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 5, max: 40 }), { minLength: 10, maxLength: 10 }), fc.integer({ min: 1, max: 4 }), (rates, hours) => {
        const r = rates.map((c) => c / 100);
        const p = smallSite(10, { importRate: r, loads: [{ id: 'wm', ratedPowerW: 1000, runs: [{ start: T0, end: T0 + 10 * H, hours, continuous: true }] }] });
        const plan = planSite(p, solver);
        let best = Infinity;
        for (let s = 0; s + hours <= 10; s++) best = Math.min(best, sum(r.slice(s, s + hours)));
        expect(plan.cost).toBeCloseTo(best, 6);
        const on = dev(plan, 'wm').on!;
        const first = on.indexOf(true);
        expect(on.slice(first, first + hours).every(Boolean)).toBe(true);
        expect(on.filter(Boolean).length).toBe(hours);
      }),
      { numRuns: 25 },
    );
  });

  it('reports the hours that do not fit in the window', () => {
    const plan = planSite(smallSite(6, { loads: [{ id: 'dw', ratedPowerW: 1000, runs: [{ start: T0 + 4 * H, end: T0 + 6 * H, hours: 3 }] }] }), solver);
    expect(dev(plan, 'dw').shortfallHours).toBe(1);
    expect(dev(plan, 'dw').on).toEqual([false, false, false, false, true, true]);
  });
});

describe('site plan: limits', () => {
  it('never exceeds a grid or circuit limit in any slot', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 5, max: 50 }), { minLength: 12, maxLength: 12 }),
        fc.integer({ min: 3000, max: 9000 }),
        fc.integer({ min: 2000, max: 6000 }),
        fc.array(fc.integer({ min: 0, max: 1900 }), { minLength: 12, maxLength: 12 }),
        (rates, gridW, garageW, limitsW) => {
          const n = 12;
          const p = smallSite(n, {
            importRate: rates.map((c) => c / 100),
            baseLoadW: new Array(n).fill(800),
            grid: { maxImportW: new Array(n).fill(gridW), maxExportW: new Array(n).fill(5000) },
            circuits: [
              { id: 'garage', maxImportW: limitsW.map((l) => garageW - l), maxExportW: new Array(n).fill(Infinity) },
              { id: 'wallbox', parent: 'garage', maxImportW: new Array(n).fill(3700), maxExportW: new Array(n).fill(Infinity) },
            ],
            batteries: [battery({ capacityWh: 8000, socMaxWh: 8000, initialWh: 4000, maxChargeW: 3000, maxDischargeW: 3000 })],
            evs: [{ id: 'ev', circuit: 'wallbox', minPowerW: 1380, maxPowerW: 11040, sessions: [{ energyNeededWh: 50_000 }] }],
            loads: [{ id: 'heater', circuit: 'garage', ratedPowerW: 1500, runs: [{ start: T0, end: T0 + 12 * H, hours: 6 }] }],
          });
          const plan = planSite(p, solver);
          for (let t = 0; t < n; t++) {
            expect(plan.importW[t]).toBeLessThanOrEqual(gridW + 1);
            expect(plan.exportW[t]).toBeLessThanOrEqual(5000 + 1);
            const garage = plan.nodes.find((x) => x.id === 'garage')!;
            const wallbox = plan.nodes.find((x) => x.id === 'wallbox')!;
            expect(garage.netW[t]).toBeLessThanOrEqual(garageW - limitsW[t] + 1);
            expect(wallbox.netW[t]).toBeLessThanOrEqual(3700 + 1);
            expect(dev(plan, 'ev').powerW[t]).toBeLessThanOrEqual(3700 + 1);
          }
          // the EV cannot get 50 kWh through a 3.7 kW circuit in 12 h and says so
          expect(dev(plan, 'ev').shortfallWh).toBeGreaterThan(0);
        },
      ),
      { numRuns: 15 },
    );
  });

  it('the benchmark site plans within its gap, keeps every limit and meets every target', () => {
    for (const seed of [1, 2, 3]) {
      const p = exampleSite(seed);
      const plan = planSite(p, solver);
      expect(['optimal', 'within_gap']).toContain(plan.status);
      expect(plan.solver.gap).toBeLessThanOrEqual(0.005);
      expect(plan.warnings).toEqual([]);
      for (let t = 0; t < p.slots.length; t++) expect(plan.importW[t]).toBeLessThanOrEqual(11000 + 1);
      expect(dev(plan, 'ev').shortfallWh).toBe(0);
      expect(dev(plan, 'dishwasher').energyWh).toBeCloseTo(7200, 0);
      expect(dev(plan, 'washer').energyWh).toBeCloseTo(8000, 0);
    }
  });

  it('rejects malformed problems with a message that names what is wrong', () => {
    const p = smallSite(4);
    expect(() => planSite({ ...p, importRate: [0.1, 0.2] }, solver)).toThrow(/importRate has 2 entries for 4 slots/);
    expect(() => planSite({ ...p, batteries: [battery({ circuit: 'nowhere' })] }, solver)).toThrow(/device "battery" hangs from unknown circuit "nowhere"/);
  });
});
