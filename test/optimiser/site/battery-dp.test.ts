import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSolver } from '../../../src/control/solver.js';
import { batteryOnlyObstacle, planBatteryOnly, planSite, type LpSolver, type SitePlan, type SiteProblem } from '../../../src/optimiser/site/index.js';
import { battery, settle, smallSite } from './helpers.js';

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadSolver();
});

const net = (plan: SitePlan) => plan.importW.map((i, t) => i - plan.exportW[t]);
/** What the plan costs: settled energy minus the value of the energy left in the battery. */
const objective = (p: SiteProblem, plan: SitePlan, value: number) => settle(net(plan), p) - ((plan.devices[0].socWh!.at(-1)! - p.batteries[0].initialWh) / 1000) * value;

/** A day of 15-minute slots with a PV hump, an evening peak and a price curve from the seed. */
function daySite(seed: number, over: { negative?: boolean; gridW?: number; slots?: number } = {}): SiteProblem {
  let x = seed * 7919 + 13;
  const rnd = () => ((x = (x * 48271) % 2147483647) / 2147483647);
  const n = over.slots ?? 96;
  const hours = Array.from({ length: n }, (_, t) => ((t / 4) % 24) + 0.125);
  const pvW = hours.map((h) => (h > 6 && h < 20 ? -4000 * Math.sin(((h - 6) / 14) * Math.PI) ** 1.5 * (0.6 + 0.4 * rnd()) : 0));
  const loadW = hours.map((h) => 350 + 1200 * Math.exp(-((h - 7.5) ** 2) / 1.5) + 2200 * Math.exp(-((h - 19) ** 2) / 4) + 400 * rnd());
  const imp = hours.map((h) => 0.25 + 0.1 * Math.exp(-((h - 8) ** 2) / 2) + 0.2 * Math.exp(-((h - 19) ** 2) / 3) - 0.08 * Math.exp(-((h - 13) ** 2) / 6) + 0.02 * rnd());
  if (over.negative) for (let t = 48; t < 56; t++) imp[t] = -0.05;
  return smallSite(n, {
    slotH: 0.25,
    importRate: imp,
    exportRate: imp.map(() => 0.08),
    baseLoadW: loadW,
    flows: [{ id: 'pv', powerW: pvW }],
    grid: { maxImportW: hours.map(() => over.gridW ?? Infinity), maxExportW: hours.map(() => over.gridW ?? Infinity) },
    batteries: [battery({ capacityWh: 10000, socMinWh: 500, socMaxWh: 10000, initialWh: 500 + 9000 * rnd(), maxChargeW: 5000, maxDischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95, terminalValuePerKwh: 0.2 })],
  });
}

describe('exact battery DP', () => {
  it('takes only battery-only sites and says why not otherwise', () => {
    expect(batteryOnlyObstacle(daySite(1))).toBeUndefined();
    expect(batteryOnlyObstacle({ ...daySite(1), batteries: [] })).toBe('not exactly one battery');
    expect(batteryOnlyObstacle({ ...daySite(1), loads: [{ id: 'l', ratedPowerW: 1000, runs: [] }] })).toBe('other controllable devices');
  });

  it('finds the LP optimum on realistic days (same objective to 0.01 ct, same flows where unique)', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const p = daySite(seed, { gridW: seed % 3 === 0 ? 6000 : undefined, slots: seed % 2 ? 96 : 192 });
      const dp = planBatteryOnly(p)!;
      const lp = planSite({ ...p, options: { method: 'lp' } }, solver);
      expect(dp, `seed ${seed}`).toBeDefined();
      expect(lp.status).toBe('optimal');
      expect(objective(p, dp, 0.2)).toBeCloseTo(objective(p, lp, 0.2), 3);
      // planSite picks the DP for such a site
      expect(planSite(p, solver).solver.name).toMatch(/battery DP/);
    }
  });

  it('agrees with the LP on random small sites (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 8, maxLength: 8 }),
        fc.array(fc.integer({ min: -3000, max: 2000 }), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 0, max: 30 }),
        (rates, house, init, exportCt) => {
          const p = smallSite(8, {
            importRate: rates.map((r) => Math.max(r, exportCt) / 100),
            exportRate: rates.map(() => exportCt / 100),
            baseLoadW: house,
            batteries: [battery({ initialWh: init, chargeEfficiency: 0.9, dischargeEfficiency: 0.92, terminalValuePerKwh: 0.1, cycleCostPerKwh: 0.01 })],
          });
          const dp = planBatteryOnly(p)!;
          const lp = planSite({ ...p, options: { method: 'lp' } }, solver);
          expect(dp).toBeDefined();
          expect(objective(p, dp, 0.1) + 0.01 * dp.devices[0].powerW.reduce((a, w) => a + Math.max(0, -w), 0) / 1000).toBeCloseTo(
            objective(p, lp, 0.1) + 0.01 * lp.devices[0].powerW.reduce((a, w) => a + Math.max(0, -w), 0) / 1000,
            4,
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('plans days with negative rates (export above import) within a hair of the MILP, and says it is not proven optimal', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const p = daySite(seed, { negative: true });
      const dp = planBatteryOnly(p)!;
      const lp = planSite({ ...p, options: { method: 'lp', relGap: 0 } }, solver);
      expect(dp.status).toBe('within_gap');
      expect(dp.solver.name).toMatch(/convex hull/);
      const scale = objective(p, planSite({ ...p, batteries: [{ ...p.batteries[0], maxChargeW: 0, maxDischargeW: 0 }], options: { method: 'lp' } }, solver), 0.2) - objective(p, lp, 0.2);
      // never better than the MILP optimum, and within 1 % of the battery's value
      expect(objective(p, dp, 0.2)).toBeGreaterThanOrEqual(objective(p, lp, 0.2) - 1e-3);
      expect(objective(p, dp, 0.2) - objective(p, lp, 0.2)).toBeLessThanOrEqual(0.01 * scale + 1e-3);
    }
  });

  it('keeps the SoC within bounds, honours the final reserve and explains the plan', () => {
    const p = daySite(5);
    p.batteries[0].finalMinWh = 8000;
    const plan = planBatteryOnly(p)!;
    const soc = plan.devices[0].socWh!;
    expect(Math.min(...soc)).toBeGreaterThanOrEqual(499.9);
    expect(Math.max(...soc)).toBeLessThanOrEqual(10000.1);
    expect(soc.at(-1)).toBeGreaterThanOrEqual(7999.9);
    expect(plan.devices[0].modes).toHaveLength(96);
    expect(plan.devices[0].reasons).toHaveLength(96);
  });
});

describe('battery modes follow the house', () => {
  it('a battery covering part of the house’s need is sent "auto", never a fixed discharge that would export on a smaller need', () => {
    const p = smallSite(2, { importRate: [0.4, 0.4], baseLoadW: [2000, 2000], batteries: [battery({ initialWh: 1000, maxDischargeW: 5000 })] });
    for (const method of ['auto', 'lp'] as const) {
      const plan = planSite({ ...p, options: { method } }, solver);
      const bat = plan.devices[0];
      // discharge as late as possible: the second slot, 1 kW of the 2 kW need
      expect(bat.powerW).toEqual([0, -1000]);
      expect(bat.modes).toEqual(['hold', 'auto']);
    }
  });
});
