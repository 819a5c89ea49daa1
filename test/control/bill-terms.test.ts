import { describe, expect, it } from 'vitest';
import { applyBillTerms } from '../../src/control/bill-terms.js';
import type { SiteProblem } from '../../src/optimiser/site/index.js';
import type { BillTerms, SlotComponents } from '../../src/tariff/bill-model.js';

/** The bill's terms handed to the planner: capacity charges with the month so far, export rules as limits. */

const H = 3_600_000;
// 20 January 2026, 12:00 in Brussels (UTC+1)
const NOW = Date.UTC(2026, 0, 20, 11);

const problem = (): SiteProblem => {
  const slots = [0, 1, 2, 3].map((t) => ({ start: NOW + t * H, end: NOW + (t + 1) * H }));
  return { slots, importRate: [0.3, 0.3, 0.3, 0.3], exportRate: [0.05, 0, 0, 0.05], baseLoadW: [0, 0, 0, 0], flows: [], grid: { maxImportW: [Infinity, Infinity, Infinity, Infinity], maxExportW: [Infinity, 8000, Infinity, Infinity] }, circuits: [], batteries: [], evs: [], hvacs: [], loads: [] };
};
const terms = (over: Partial<BillTerms>): BillTerms => ({ currency: 'EUR', timezone: 'Europe/Brussels', vatPercent: 0, standingCharges: [], capacity: null, exportRules: { noPayAtNegativePrice: false, priceReference: 'import', capW: null }, ...over });
const q = (start: number, wh: number) => ({ start, end: start + 900_000, wh });

describe('bill terms in the site problem', () => {
  it('a Flemish peak: 48 €/kW-year + 21 % VAT = 4.84 per kW-month above the 4.2 kW reached on the 5th', () => {
    const p = problem();
    const t5 = Date.UTC(2026, 0, 5, 18);
    // quarters of this month: 1050 Wh in a quarter = 4.2 kW; December's 1500 Wh quarter does not count
    const siteImport = [q(Date.UTC(2025, 11, 30, 18), 1500), q(t5, 1050), q(t5 + 900_000, 600), q(Date.UTC(2026, 0, 19, 7), 800)];
    const notes = applyBillTerms(p, terms({ vatPercent: 21, capacity: { kind: 'monthly_peak', intervalMinutes: 15, minimumKw: 2.5, averageMonths: 12, pricePerKwYear: 48, priorPeaksKw: {} } }), { now: NOW, siteImport });
    expect(p.peakCharge).toEqual({ pricePerKwMonth: expect.closeTo(4.84, 9), minimumW: 2500, runningPeakW: 4200, monthEnd: Date.UTC(2026, 0, 31, 23) });
    expect(notes[0]).toBe('capacity charge: 4.84 EUR per kW above this month\'s peak so far (4.20 kW)');
  });

  it('Norwegian steps: the days of the month so far by their highest hour, the steps with VAT', () => {
    const p = problem();
    const oslo = (d: number, h: number) => Date.UTC(2026, 0, d, h - 1);
    // 3 January 18:00-19:00: four quarters of 1000 Wh = 4 kWh in the hour; 7 January: 2.75 kWh; today 11:00: 1.5 kWh
    const siteImport = [...[0, 1, 2, 3].map((k) => q(oslo(3, 18) + k * 900_000, 1000)), q(oslo(7, 8), 2750), q(oslo(20, 11), 1500), q(oslo(20, 12), 300)];
    applyBillTerms(p, terms({ timezone: 'Europe/Oslo', vatPercent: 25, capacity: { kind: 'daily_peaks_step', intervalMinutes: 60, days: 3, steps: [{ fromKw: 0, toKw: 2, perMonth: 100 }, { fromKw: 2, toKw: 5, perMonth: 300 }, { fromKw: 5, toKw: null, perMonth: 500 }] } }), { now: NOW + 20 * 60_000, siteImport });
    expect(p.peakTiers).toEqual({
      tiers: [{ upToW: 2000, feePerMonth: 125 }, { upToW: 5000, feePerMonth: 375 }, { upToW: Infinity, feePerMonth: 625 }],
      dailyPeaksW: { '2026-01-03': 4000, '2026-01-07': 2750, '2026-01-20': 1500 },
      timezone: 'Europe/Oslo',
      topDays: 3,
      currentHourWh: 300,
      monthEnd: Date.UTC(2026, 0, 31, 23),
    });
  });

  it('export rules: a 5 kW cap and the unpaid slots to avoid', () => {
    const p = problem();
    const comp = (start: number, paid: boolean) => ({ start, end: start + H, exportPaid: paid }) as SlotComponents;
    applyBillTerms(p, terms({ exportRules: { noPayAtNegativePrice: true, priceReference: 'import', capW: 5000 } }), { now: NOW, siteImport: [], components: [comp(NOW, true), comp(NOW + H, false), comp(NOW + 2 * H, false), comp(NOW + 3 * H, true)] });
    expect(p.grid.maxExportW).toEqual([5000, 5000, 5000, 5000]);
    expect(p.avoidExport).toEqual([false, true, true, false]);
    expect(p.peakCharge).toBeUndefined();
  });
});
