import { describe, expect, it } from 'vitest';
import type { Device } from '../../src/api/index.js';
import { EnergyHistory } from '../../src/control/history.js';
import { DEFAULT_CAR_CAPACITY_WH, EV_CHARGE_EFFICIENCY, buildSiteProblem } from '../../src/control/model.js';
import type { PlanView } from '../../src/control/view.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { parseConfig } from '../../src/core/config/load.js';
import { loadSolver } from '../../src/control/solver.js';
import { planSite } from '../../src/optimiser/site/index.js';
import { fetchPlan, quietHubs } from '../peers/hub.js';

/** Two cars on one 9 kW circuit: one must have 12 kWh by 07:30, the other has no target. */
const site = (defaultMode?: string, capacity = 'capacity_wh: 60000') => `
site: { id: home, timezone: Europe/Berlin, currency: EUR,
        grid: { max_import_w: 17000 }, circuits: [ { id: garage, max_import_w: 9000 } ] }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "06:00", rate: 0.20 }, { from: "06:00", to: "00:00", rate: 0.32 } ] }
devices:
  - { id: commuter, adapter: sim_ev, circuit: garage, max_current_a: 13, arrive: "18:00", leave: "07:30", arrival_soc_pct: 50, tick_s: 60,
      target: { energy_wh: 12000, leave_time: "07:30" } }
  - { id: weekend, adapter: sim_ev, circuit: garage, max_current_a: 13, arrive: "18:00", leave: "17:00", arrival_soc_pct: 40, tick_s: 60, ${capacity}${defaultMode ? `, default_mode: ${defaultMode}` : ''} }
`;

const hubOf = quietHubs('homeflex-ev-mode-');

/** 18:10 Berlin summer time: both cars have just plugged in. */
async function planOf(configText: string): Promise<PlanView> {
  return fetchPlan((await hubOf(configText, { at: '2026-06-01T16:10:00Z' })).hub);
}
/** A plugged-in charger as the planner sees it; this session delivered 5 kWh so far. */
const charger = (soc: number | undefined, capacityWh: number | undefined): Device => ({
  id: 'ev',
  name: 'ev',
  available: true,
  caps: {
    charger: {
      status: () => 'suspended_evse',
      session: () => ({ id: 's1', startedAt: 0, energyWh: 5000 }),
      evSocPct: () => soc,
      setLimit: async () => {},
      phases: 3,
      voltage: 230,
      minCurrentA: 6,
      maxCurrentA: 16,
      evCapacityWh: capacityWh,
    },
  },
} as unknown as Device);
const device = (plan: PlanView, id: string) => plan.devices.find((d) => d.id === id)!;
const kWhBefore = (plan: PlanView, id: string, until: string) =>
  device(plan, id).power_w.reduce((a, w, t) => (Date.parse(plan.slots[t].start_time) < Date.parse(until) ? a + (w * (Date.parse(plan.slots[t].end_time) - Date.parse(plan.slots[t].start_time))) / 3_600_000 : a), 0);

describe('a charger without a target (default_mode)', () => {
  it('the fill is bounded by the car: its SoC, else ev_capacity_wh less this session, else a stated 60 kWh', () => {
    const config = parseConfig(`site: { id: home, timezone: Europe/Berlin }\ntariffs: { import: { type: fixed, rate: 0.3 } }\n`, 'site.yaml', { catalog: builtinCatalog, env: {} });
    const roomOf = (device: Device, yaml: Record<string, unknown> = {}) => {
      const { problem } = buildSiteProblem({ now: Date.parse('2026-06-01T16:10:00Z'), config, devices: [{ device, config: yaml, settings: {} }], limits: new Map(), history: new EnergyHistory() });
      const s = problem.evs[0].sessions[0];
      expect(s.fill).toBe(true);
      return Math.round(s.roomWh!);
    };
    expect(roomOf(charger(25, 40_000))).toBe(Math.round((0.75 * 40_000) / EV_CHARGE_EFFICIENCY));
    expect(roomOf(charger(undefined, 40_000))).toBe(Math.round(40_000 / EV_CHARGE_EFFICIENCY - 5000));
    expect(roomOf(charger(undefined, undefined), { ev_capacity_wh: 30_000 })).toBe(Math.round(30_000 / EV_CHARGE_EFFICIENCY - 5000));
    expect(roomOf(charger(undefined, undefined))).toBe(Math.round(DEFAULT_CAR_CAPACITY_WH / EV_CHARGE_EFFICIENCY - 5000));
    expect(DEFAULT_CAR_CAPACITY_WH).toBe(60_000);
  });

  it('a car that reports no SoC (as most OCPP chargers) no longer starves the car with a deadline (issue 14.4)', async () => {
    const config = parseConfig(
      `site: { id: home, timezone: Europe/Berlin, circuits: [ { id: garage, max_import_w: 9000 } ] }\ntariffs: { import: { type: fixed, rate: 0.3 } }\n`,
      'site.yaml',
      { catalog: builtinCatalog, env: {} },
    );
    const plugged = (id: string): Device => ({ ...charger(undefined, undefined), id, name: id, circuit: 'garage' }) as Device;
    const { problem } = buildSiteProblem({
      now: Date.parse('2026-06-01T16:10:00Z'),
      config,
      devices: [
        { device: plugged('commuter'), config: {}, settings: { target: { energy_wh: 17_000, leave_time: '07:30' } } },
        { device: plugged('weekend'), config: {}, settings: {} },
      ],
      limits: new Map(),
      history: new EnergyHistory(),
    });
    const plan = planSite(problem, await loadSolver());
    // 17 kWh target less the 5 kWh this session delivered: 12 kWh by 07:30
    expect(plan.devices.find((d) => d.id === 'commuter')!.shortfallWh).toBe(0);
    expect(plan.devices.find((d) => d.id === 'commuter')!.energyWh).toBeGreaterThanOrEqual(12_000 - 1);
    expect(plan.devices.find((d) => d.id === 'weekend')!.energyWh).toBeLessThanOrEqual(DEFAULT_CAR_CAPACITY_WH / EV_CHARGE_EFFICIENCY - 5000 + 1);
  });

  it('cheapest_fill, the default: the car with a deadline gets its 12 kWh; the other fills only up to its battery, in cheap hours', async () => {
    const plan = await planOf(site());
    const commuter = device(plan, 'commuter');
    expect(commuter.shortfall_wh).toBe(0);
    expect(kWhBefore(plan, 'commuter', '2026-06-02T05:30:00Z')).toBeGreaterThanOrEqual(12_000 - 1);
    expect(plan.warnings).toEqual([]);
    // 40 % of 60 kWh in the car: 36 kWh of room at the wall is 36 / 0.9 = 40 kWh
    const weekend = device(plan, 'weekend');
    expect(weekend.energy_wh).toBeGreaterThan(39_900);
    expect(weekend.energy_wh).toBeLessThanOrEqual(40_000 + 1);
    expect([weekend.fill_up_to_wh, weekend.energy_needed_wh, weekend.shortfall_wh, commuter.fill_up_to_wh]).toEqual([40_000, 0, 0, null]);
    plan.slots.forEach((s, t) => {
      if (weekend.power_w[t] > 0) expect(Number(plan.import_rate[t])).toBe(0.2);
    });
    expect(plan.notes.join('\n')).toMatch(/weekend: no target set, filling up to 40\.0 kWh .*default_mode: cheapest_fill/);
  });

  it('cheapest_fill never fills past a small car (SoC 40 % of 20 kWh)', async () => {
    const plan = await planOf(site('cheapest_fill', 'capacity_wh: 20000'));
    expect(device(plan, 'weekend').energy_wh).toBeLessThanOrEqual((0.6 * 20_000) / 0.9 + 1);
    expect(device(plan, 'commuter').shortfall_wh).toBe(0);
  });

  it('now: full power from plug-in (the old behaviour, by choice); off: not charged at all', async () => {
    const now = await planOf(site('now'));
    expect(device(now, 'weekend').power_w[0]).toBeGreaterThan(8000);
    expect(now.notes.join('\n')).toMatch(/weekend: no target set, charging at full power \(default_mode: now/);
    const off = await planOf(site('off'));
    expect(device(off, 'weekend').energy_wh).toBe(0);
    expect(device(off, 'commuter').shortfall_wh).toBe(0);
    expect(off.notes.join('\n')).toMatch(/weekend: no target set, not charging \(default_mode: off/);
  });
});
