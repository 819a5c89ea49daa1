import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSolver } from '../../../src/control/solver.js';
import { planSite, type LpSolver, type SitePlan, type SiteProblem } from '../../../src/optimiser/site/index.js';
import { battery, smallSite } from './helpers.js';

/**
 * Capacity charges and curtailment in the site LP, on worked examples whose figures are checked by
 * hand in the comments.
 */

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadSolver();
});

const dev = (plan: SitePlan, id: string) => plan.devices.find((d) => d.id === id)!;

describe('Flemish monthly peak (15-minute mean import)', () => {
  /**
   * Two hours of 15-minute slots; the house draws 1 kW, 4.2 kW in slots 4 and 5 (the month's peak
   * if nothing is done). Import 0.30 €/kWh flat, the battery's kWh worth the same (η = 1), so energy
   * alone gives no reason to discharge. Price 4.50 €/kW per month, minimum 2.5 kW.
   *   unshaved: billed 4.2 kW → (4.2 − 2.5) × 4.50 = 7.65 € above the minimum
   *   battery 1.2 kW: import 4.2 − 1.2 = 3.0 kW → (3.0 − 2.5) × 4.50 = 2.25 €; 0.6 kWh discharged
   */
  const site = (over: Partial<SiteProblem> = {}): SiteProblem =>
    smallSite(8, {
      slotH: 0.25,
      importRate: new Array(8).fill(0.3),
      exportRate: new Array(8).fill(0),
      baseLoadW: [1000, 1000, 1000, 1000, 4200, 4200, 1000, 1000],
      batteries: [battery({ capacityWh: 2000, socMaxWh: 2000, initialWh: 1000, maxChargeW: 1200, maxDischargeW: 1200, terminalValuePerKwh: 0.3 })],
      peakCharge: { pricePerKwMonth: 4.5, minimumW: 2500, runningPeakW: 0 },
      ...over,
    });

  it('shaves a 4.2 kW peak to 3.0 kW with a 1.2 kW battery: 2.25 € instead of 7.65 €', () => {
    const plan = planSite(site(), solver);
    expect(plan.solver.name).toMatch(/HiGHS/);
    expect(plan.peak).toEqual({ peakW: 3000, cost: 2.25, nextMonthPeakW: undefined });
    expect(Math.max(...plan.importW)).toBe(3000);
    expect(dev(plan, 'battery').powerW.slice(4, 6)).toEqual([-1200, -1200]);
    // the energy bill is unchanged: 0.6 kWh less imported at 0.30 = 0.18 € less, the stored kWh worth the same
    expect(plan.cost).toBeCloseTo((1 * 6 * 0.25 + 3.0 * 2 * 0.25) * 0.3, 6);
  });

  it('without the battery the plan reports the whole 7.65 €', () => {
    const plan = planSite(site({ batteries: [] }), solver);
    expect(plan.peak).toMatchObject({ peakW: 4200, cost: 7.65 });
  });

  it('costs nothing to stay under the peak already reached this month (3.5 kW): shaves only to it', () => {
    const plan = planSite(site({ peakCharge: { pricePerKwMonth: 4.5, minimumW: 2500, runningPeakW: 3500 } }), solver);
    expect(plan.peak).toMatchObject({ peakW: 3500, cost: 0 });
    expect(Math.max(...plan.importW)).toBeLessThanOrEqual(3500);
  });

  it('the energy-only plan does not care about the peak (the tie-break discharges late, not at the peak)', () => {
    const plan = planSite(site({ peakCharge: undefined }), solver);
    expect(Math.max(...plan.importW)).toBeGreaterThan(3000);
  });

  it('a horizon crossing the month end charges the next month from its own floor', () => {
    const p = site({ peakCharge: { pricePerKwMonth: 4.5, minimumW: 2500, runningPeakW: 4200, monthEnd: Date.UTC(2026, 5, 1, 1) } });
    // slots 4 and 5 are in the next month: its peak starts at the minimum, 2.5 kW; this month's is
    // billed at 4.2 kW already, so only the next month's increase (3.0 − 2.5 kW) costs: 2.25 €
    const plan = planSite(p, solver);
    expect(plan.peak).toMatchObject({ peakW: 4200, nextMonthPeakW: 3000, cost: 2.25 });
  });
});

describe('Norwegian tiers by the three highest daily peaks', () => {
  // Tiers (NOK per month): ≤2 kW 135, ≤5 kW 170, ≤10 kW 290, above 415.
  const tiers = [
    { upToW: 2000, feePerMonth: 135 },
    { upToW: 5000, feePerMonth: 170 },
    { upToW: 10000, feePerMonth: 290 },
    { upToW: Infinity, feePerMonth: 415 },
  ];
  // 20 January 2026 in Oslo (UTC+1): 24 hourly slots from local midnight
  const start = Date.UTC(2026, 0, 19, 23);
  /**
   * Days past: 3.0, 4.5 and 4.0 kW (mean 3.83 kW, tier 2 of 4: 170 NOK). Today the house draws 1 kW
   * and 7 kW from 18:00 to 19:00 local. Unshaved the top three are 7.0, 4.5, 4.0: mean 5.17 kW, tier
   * 3 (290 NOK). A battery that gives 0.5 kW in that hour keeps today at 6.5 kW: mean exactly 5.0 kW,
   * tier 2, 120 NOK less.
   */
  const site = (withBattery: boolean): SiteProblem => {
    const p = smallSite(24, { importRate: new Array(24).fill(1), exportRate: new Array(24).fill(0), baseLoadW: Array.from({ length: 24 }, (_, t) => (t === 18 ? 7000 : 1000)) });
    p.slots = p.slots.map((_, t) => ({ start: start + t * 3_600_000, end: start + (t + 1) * 3_600_000 }));
    p.batteries = withBattery ? [battery({ capacityWh: 4000, socMaxWh: 4000, initialWh: 2000, maxChargeW: 2000, maxDischargeW: 2000, terminalValuePerKwh: 1 })] : [];
    p.peakTiers = { tiers, timezone: 'Europe/Oslo', dailyPeaksW: { '2026-01-05': 3000, '2026-01-08': 4500, '2026-01-12': 4000 } };
    return p;
  };

  it('without a battery the month lands in tier 3: mean 5.17 kW, 290 NOK', () => {
    const plan = planSite(site(false), solver);
    expect(plan.tiers).toEqual({ tier: 2, feePerMonth: 290, meanTopW: 5166.7 });
  });

  it('the battery keeps it in tier 2 (mean 5.0 kW, 170 NOK) with at least 0.5 kW in the 18:00 hour', () => {
    const plan = planSite(site(true), solver);
    expect(plan.tiers).toMatchObject({ tier: 1, feePerMonth: 170 });
    expect(plan.tiers!.meanTopW).toBeLessThanOrEqual(5000.1);
    expect(plan.importW[18]).toBeLessThanOrEqual(6500.1);
    expect(dev(plan, 'battery').powerW[18]).toBeLessThanOrEqual(-499.9);
    // one binary: only the step from tier 2 to tier 3 can be reached (the house alone tops at 7 kW + 2 kW charging)
    expect(plan.solver.integerColumns).toBeLessThanOrEqual(2);
  });
});

describe('PV curtailment and export rules', () => {
  /**
   * Four hours, the house 0.5 kW, PV 3 kW in hours 1 and 2. Export pays 0.08 €/kWh except hour 1
   * (−0.05 €/kWh: a spot-indexed feed-in at a negative price) and hour 2 (unpaid: avoidExport).
   *   not curtailable: 2.5 kWh exported in each → hour 1 costs 2.5 × 0.05 = 0.125 €
   *   curtailable: the inverter is limited to 0.5 kW in hours 1 and 2, nothing exported, cost 0
   */
  const site = (curtailable: boolean): SiteProblem =>
    smallSite(4, {
      importRate: [0.3, 0.3, 0.3, 0.3],
      exportRate: [0.08, -0.05, 0, 0.08],
      baseLoadW: [500, 500, 500, 500],
      flows: [{ id: 'pv', powerW: [0, -3000, -3000, 0], curtailable }],
      avoidExport: [false, true, true, false],
    });

  it('exports at a negative price only when it cannot curtail', () => {
    const fixed = planSite(site(false), solver);
    expect(fixed.exportW).toEqual([0, 2500, 2500, 0]);
    expect(fixed.cost).toBeCloseTo(0.5 * 0.3 * 2 + 2.5 * 0.05, 6);
    const cut = planSite(site(true), solver);
    expect(cut.exportW).toEqual([0, 0, 0, 0]);
    expect(cut.importW).toEqual([500, 0, 0, 500]);
    expect(cut.curtailment).toEqual([{ id: 'pv', curtailW: [0, 2500, 2500, 0], limitW: [Infinity, 500, 500, Infinity] }]);
    expect(cut.cost).toBeCloseTo(0.5 * 0.3 * 2, 6);
  });

  it('a battery takes what it can first, then the inverter is limited', () => {
    const p = site(true);
    p.batteries = [battery({ capacityWh: 1000, socMaxWh: 1000, maxChargeW: 1000, terminalValuePerKwh: 0.2 })];
    const plan = planSite(p, solver);
    expect(plan.exportW[1]).toBe(0);
    expect(plan.exportW[2]).toBe(0);
    expect(dev(plan, 'battery').socWh![2]).toBe(1000);
    expect(plan.curtailment![0].curtailW[1] + plan.curtailment![0].curtailW[2]).toBeCloseTo(5000 - 1000, 0);
  });

  // the house is away (no load): 600 W exported at −0.05 €/kWh costs 0.03 €, off costs nothing
  it('an all-or-nothing socket switches the micro-inverter off only where exporting would cost money', () => {
    const p = site(false);
    p.flows = [{ id: 'micro', powerW: [0, -600, -600, -600], curtailable: { steps: 'off' } }];
    p.exportRate = [0.08, -0.05, 0.08, 0.08];
    p.avoidExport = undefined;
    p.baseLoadW = [0, 0, 0, 0];
    const plan = planSite(p, solver);
    expect(plan.curtailment![0].curtailW).toEqual([0, 600, 0, 0]);
    expect(plan.curtailment![0].limitW).toEqual([Infinity, 0, Infinity, Infinity]);
    expect(plan.exportW).toEqual([0, 0, 600, 600]);
  });

  it('a zero-export site (grid export limit 0) curtails instead of breaking the limit', () => {
    const p = site(true);
    p.exportRate = [0.08, 0.08, 0.08, 0.08];
    p.avoidExport = undefined;
    p.grid.maxExportW = [0, 0, 0, 0];
    const plan = planSite(p, solver);
    expect(plan.exportW).toEqual([0, 0, 0, 0]);
    expect(plan.warnings).toEqual([]);
    expect(plan.curtailment![0].curtailW).toEqual([0, 2500, 2500, 0]);
  });

  it('property: with curtailable PV no plan exports in a slot whose export rate is negative', () => {
    fc.assert(
      fc.property(
        // rates in 0.01 ct steps, so prices a hair below zero are drawn too
        fc.array(fc.integer({ min: -2000, max: 3000 }), { minLength: 6, maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 6, maxLength: 6 }),
        fc.boolean(),
        (rates, pv, withBattery) => {
          const p = smallSite(6, {
            importRate: rates.map((r) => Math.max(r, 0) / 10000 + 0.1),
            exportRate: rates.map((r) => r / 10000),
            baseLoadW: new Array(6).fill(400),
            flows: [{ id: 'pv', powerW: pv.map((w) => -w), curtailable: true }],
            batteries: withBattery ? [battery({ terminalValuePerKwh: 0.05 })] : [],
          });
          const plan = planSite(p, solver);
          for (let t = 0; t < 6; t++) if (p.exportRate[t] < 0) expect(plan.exportW[t]).toBe(0);
        },
      ),
      { numRuns: 25 },
    );
  });
});
