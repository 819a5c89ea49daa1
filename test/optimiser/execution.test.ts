import { describe, expect, it } from 'vitest';
import { applySlot } from '../../src/control/apply.js';
import { batteryCommand, commandPowerW, type SelfConsumptionBattery } from '../../src/optimiser/self-consumption.js';
import { firstSlotResponse, planBatteryOnly } from '../../src/optimiser/site/battery.js';
import type { SitePlan, SiteProblem } from '../../src/optimiser/site/index.js';
import { battery, smallSite } from './site/helpers.js';

/**
 * The execution rule (issue 15): the plan says what the battery does with the grid, the inverter
 * follows the house's own surprises as the self-consumption rule would. Hand-checked slots of
 * one hour, a 10 kWh / 5 kW battery, 95 %/95 %.
 */

const bat = (initialWh: number, terminalValuePerKwh = 0) => battery({ capacityWh: 10000, socMinWh: 500, socMaxWh: 10000, initialWh, maxChargeW: 5000, maxDischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95, terminalValuePerKwh });
const sc = (initialWh: number): SelfConsumptionBattery => ({ socMinWh: 500, socMaxWh: 10000, initialWh, maxChargeW: 5000, maxDischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95 });

/** A battery-only site: per-slot import rates and house net flows (W, + = draw), export 0.08. */
function site(importRate: number[], houseW: number[], initialWh: number, terminal = 0): SiteProblem {
  return smallSite(importRate.length, { importRate, exportRate: importRate.map(() => 0.08), baseLoadW: houseW.map((w) => Math.max(0, w)), flows: [{ id: 'pv', powerW: houseW.map((w) => Math.min(0, w)) }], batteries: [bat(initialWh, terminal)] });
}

/** The command for slot 0 and what the battery then does (W) with the house's actual flow. */
function run(p: SiteProblem, actualHouseW: number) {
  const plan = planBatteryOnly(p)!;
  const respond = firstSlotResponse(plan);
  expect(respond).toBeDefined();
  const b = sc(p.batteries[0].initialWh);
  const cmd = batteryCommand(b, plan.devices[0], 0, b.initialWh, respond);
  return { plan, cmd, batteryW: commandPowerW(b, cmd, b.initialWh, actualHouseW, 1) };
}

describe('the battery execution rule', () => {
  it('the inverter physics of each command, within power and stored energy', () => {
    const b = sc(5000);
    expect(commandPowerW(b, { mode: 'auto' }, 5000, -2000, 1)).toBe(2000);
    expect(commandPowerW(b, { mode: 'auto' }, 5000, 1500, 1)).toBe(-1500);
    expect(commandPowerW(b, { mode: 'auto' }, 5000, 9000, 0.5)).toBe(-5000);
    // (5 − 0.5) kWh × 0.95 = 4.275 kWh is all an hour can have
    expect(commandPowerW(b, { mode: 'auto' }, 5000, 9000, 1)).toBeCloseTo(-4275, 6);
    expect(commandPowerW(b, { mode: 'hold' }, 5000, 1500, 1)).toBe(0);
    expect(commandPowerW(b, { mode: 'hold' }, 5000, -1500, 1)).toBe(1500);
    expect(commandPowerW(b, { mode: 'charge', powerW: 3000 }, 5000, 1000, 1)).toBe(3000);
    expect(commandPowerW(b, { mode: 'charge', powerW: 3000 }, 5000, -4000, 1)).toBe(4000);
    expect(commandPowerW(b, { mode: 'discharge', powerW: 2000 }, 5000, -1000, 1)).toBe(-2000);
    // 600 Wh of room above 9.4 kWh at 95 %: 631.6 W for an hour
    expect(commandPowerW(b, { mode: 'auto' }, 9400, -3000, 1)).toBeCloseTo(600 / 0.95, 6);
    // 400 Wh above the floor give 380 Wh
    expect(commandPowerW(b, { mode: 'auto' }, 900, 3000, 1)).toBeCloseTo(-380, 6);
  });

  it('a sunny surprise is absorbed: the plan covers a 1 kW deficit, the house has 2 kW of surplus, the battery takes it', () => {
    const { plan, cmd, batteryW } = run(site([0.3, 0.3, 0.3], [1000, 1000, 1000], 5000, 0.2), -2000);
    expect(plan.devices[0].powerW[0]).toBeCloseTo(-1000, 0);
    expect(cmd.mode).toBe('auto');
    expect(batteryW).toBe(2000);
  });

  it('a cloudy surprise is covered from the battery: the plan stores 3 kW of surplus, the house draws 1 kW, the battery gives it', () => {
    const { plan, cmd, batteryW } = run(site([0.3, 0.4, 0.4], [-3000, 1500, 1500], 5000, 0.2), 1000);
    expect(plan.devices[0].powerW[0]).toBeCloseTo(3000, 0);
    expect(cmd.mode).toBe('auto');
    expect(batteryW).toBe(-1000);
  });

  it('grid charging is kept: cheap now, dear later with an empty battery → charge at the plan’s power whatever the house does', () => {
    const { plan, cmd } = run(site([0.1, 0.5, 0.5], [500, 3000, 3000], 500), 500);
    expect(cmd.mode).toBe('charge');
    // the plan buys what the two dear hours need: 6 kWh / 0.95 / 0.95 = 6.65 kWh, at most 5 kW in the hour
    expect(plan.devices[0].powerW[0]).toBeCloseTo(5000, 0);
    expect(cmd.powerW).toBe(5000);
    const b = sc(500);
    // a cloudier hour (house draws 2 kW more) does not cut the charge; a sunny one adds its surplus only above it
    expect(commandPowerW(b, cmd, 500, 2500, 1)).toBe(5000);
    expect(commandPowerW(b, cmd, 500, -1000, 1)).toBe(5000);
  });

  it('energy is held for the dear hours: the cheap hour’s deficit and any surprise come from the grid, a surplus is still stored', () => {
    // two dear hours need exactly what is stored: (8.5 − 0.5) kWh × 0.95 = 7.6 kWh
    const p = site([0.2, 0.5, 0.5], [1000, 3800, 3800], 8500);
    const { cmd, batteryW } = run(p, 2500);
    expect(cmd.mode).toBe('hold');
    expect(batteryW).toBe(0);
    expect(commandPowerW(sc(8500), cmd, 8500, -1000, 1)).toBe(1000);
  });

  it('a plan without its value (from the LP) gives its own mode and power', () => {
    const dp = { powerW: [-2500, 3000, 0], modes: ['discharge', 'charge', 'auto'] as ('auto' | 'charge' | 'discharge' | 'hold')[] };
    expect(batteryCommand(sc(5000), dp, 0, 5000)).toEqual({ mode: 'discharge', powerW: 2500 });
    expect(batteryCommand(sc(5000), dp, 1, 5000)).toEqual({ mode: 'charge', powerW: 3000 });
    expect(batteryCommand(sc(5000), dp, 2, 5000)).toEqual({ mode: 'auto' });
  });

  it('the hub sends what the rule says: the command for the battery’s state of charge now', async () => {
    const p = site([0.2, 0.5, 0.5], [1000, 3800, 3800], 8500);
    const plan: SitePlan = planBatteryOnly(p)!;
    // the plan was made at 8.5 kWh; the battery now reports 2 kWh: what it has is worth more than the cheap hour, so it holds
    const sent: unknown[] = [];
    const device = {
      id: 'battery',
      available: true,
      caps: { storage: { params: { capacityWh: 10000, socMinWh: 500, socMaxWh: 10000, maxChargeW: 5000, maxDischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95 }, state: () => ({ socPct: 20 }), command: async (c: unknown) => void sent.push(c) } },
    };
    const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
    await applySlot({ plan, k: 0, devices: new Map([['battery', device as never]]), validUntil: p.slots[0].end, sent: new Map(), log: log as never, paused: new Set() });
    const b = sc(2000);
    expect(sent).toEqual([{ ...batteryCommand(b, plan.devices[0], 0, 2000, firstSlotResponse(plan)), validUntil: p.slots[0].end }]);
    // and at 2 kWh the two dear hours want more than is stored: cheap grid energy is bought now
    expect((sent[0] as { mode: string }).mode).toBe('charge');
  });
});
