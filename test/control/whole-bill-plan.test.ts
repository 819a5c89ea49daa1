import { describe, expect, it } from 'vitest';
import type { PlanView } from '../../src/control/view.js';
import { fetchPlan, quietHubs } from '../peers/hub.js';

/**
 * Issue 17 end to end: the capacity charge written in the site file reaches the plan the hub makes
 * and serves. A 7.4 kW car must take 20 kWh overnight; the night costs the same in every hour, so
 * without the capacity charge any split is as cheap; with a Flemish-style monthly peak charge the
 * plan spreads the car over the night and keeps the month's 15-minute peak low.
 */
const site = (capacity: string) => `
site: { id: home, timezone: Europe/Brussels, currency: EUR, grid: { max_import_w: 11000, max_export_w: 7000 } }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.25 }
  export: { type: fixed, rate: 0.05 }
${capacity}
devices:
  - { id: ev, adapter: sim_ev, arrive: "18:00", leave: "07:00", arrival_soc_pct: 20, tick_s: 60, max_current_a: 32, phases: 1,
      target: { energy_wh: 20000, leave_time: "07:00" } }
`;
const CAPACITY = `  capacity_charge: { type: monthly_peak, price_per_kw_year: 60, minimum_kw: 2.5 }`;

const hubOf = quietHubs('homeflex-bill-plan-');

async function planFor(configText: string): Promise<PlanView> {
  // 18:30 in Brussels, the car plugged in
  return fetchPlan((await hubOf(configText, { at: '2026-01-12T17:30:00Z' })).hub);
}

describe('the whole bill in the plan, from the site file', () => {
  it('a monthly peak charge in YAML spreads the car over the night and shows the planned peak', async () => {
    const withCharge = await planFor(site(CAPACITY));
    const ev = withCharge.devices.find((d) => d.id === 'ev')!;
    expect(ev.shortfall_wh).toBe(0);
    expect(ev.energy_wh).toBeGreaterThanOrEqual(20000 - 1);
    // 20 kWh over the 12.5 h stay needs 1.6 kW on average: the peak stays near that, far below 7.4 kW
    const peakW = Math.max(...withCharge.import_w);
    expect(peakW).toBeLessThan(2500 + 1);
    expect(withCharge.peak).toBeDefined();
    expect(withCharge.peak!.peak_w).toBeLessThanOrEqual(2500 + 1);

    const without = await planFor(site(''));
    expect(without.peak).toBeUndefined();
    // without the charge nothing holds the car back: it charges at its full 7.4 kW
    expect(Math.max(...without.import_w)).toBeGreaterThan(5000);
  });
});
