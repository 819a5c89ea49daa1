import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import type { ModbusConnection } from '../../../src/core/transports/modbus.js';
import { ModbusInverter, type ModbusDeviceConfig } from '../inverter.js';
import { loadProfile } from '../profile.js';
import { SunSpecInverterSim } from '../sim/inverter-sim.js';
import { adapterContext, captureLogger, deviceDefaults, said, tcpConnection } from './harness.js';

/** SunSpec discovery and control against the in-process simulator, over real Modbus TCP on 127.0.0.1. */
describe('SunSpec inverter simulator through the modbus adapter', () => {
  let clock: ManualClock;
  let sim: SunSpecInverterSim;
  let conn: ModbusConnection;
  let port: number;

  const config = (over: Partial<ModbusDeviceConfig> = {}): ModbusDeviceConfig => ({
    ...deviceDefaults,
    id: 'battery',
    adapter: 'modbus',
    connection: 'lan',
    profile: 'sunspec',
    capacity_wh: 10000,
    max_charge_w: 4000,
    max_discharge_w: 4000,
    ...over,
  });

  beforeEach(async () => {
    clock = new ManualClock('2026-06-21T10:00:00Z');
    sim = new SunSpecInverterSim({ initialSocPct: 40, maxChargeW: 5000, maxDischargeW: 5000 }, () => clock.now());
    sim.step(0, { pvW: 3000, houseW: 1000 });
    port = await sim.listen(0);
    conn = tcpConnection(port, { clock });
  });

  afterEach(async () => {
    await conn.stop();
    await sim.close();
  });

  it('discovers the model chain and reads SoC, battery, PV and grid with the right signs', async () => {
    const ctx = adapterContext(conn, { clock });
    const readings: { channel?: string; powerW?: number }[] = [];
    ctx.bus.on('meter.reading', ({ reading }) => readings.push(reading));
    const inv = new ModbusInverter(ctx, config(), loadProfile('sunspec'));
    await inv.start();
    expect(inv.device.available).toBe(true);
    expect(inv.sunspecMap()?.models.map((m) => m.id)).toEqual([1, 103, 160, 124, 203, 802]);
    expect(said(ctx.log, 'info', /found homeflex SimHybrid-124 SN HFSIM0001/)).toHaveLength(1);
    // PV 3000 W, house 1000 W: self-consumption charges the battery with the 2000 W surplus
    const state = inv.device.caps.storage!.state();
    expect(state.socPct).toBe(40);
    expect(state.powerW).toBe(2000);
    expect(inv.measure('pv_power')).toBe(3000);
    expect(inv.measure('grid_power')).toBe(0);
    expect(inv.measure('battery_capacity_wh')).toBe(10000);
    expect(readings.find((r) => r.channel === 'pv')?.powerW).toBe(-3000);
    expect(readings.find((r) => r.channel === 'battery')?.powerW).toBe(2000);
    await inv.stop();
  });

  it('charges from the grid at the commanded power, refreshes the command and lets the inverter revert when the hub stops refreshing', async () => {
    const ctx = adapterContext(conn, { clock });
    const inv = new ModbusInverter(ctx, config({ watchdog_s: 60 }), loadProfile('sunspec'));
    await inv.start();
    sim.step(0, { pvW: 0, houseW: 800 });
    await inv.device.caps.storage!.command({ mode: 'charge', powerW: 2500 });
    expect(sim.image.getRaw(124, 'StorCtl_Mod')).toBe(3);
    expect(sim.image.get(124, 'InWRte')).toBe(50);
    expect(sim.image.get(124, 'OutWRte')).toBe(-50);
    expect(sim.image.getRaw(124, 'InOutWRte_RvrtTms')).toBe(60);
    expect(sim.image.getRaw(124, 'ChaGriSet')).toBe(1);
    sim.step(1000);
    expect(sim.batteryW).toBe(2500);
    await inv.pollOnce();
    expect(inv.device.caps.storage!.state()).toMatchObject({ mode: 'charge', powerW: 2500 });
    expect(inv.measure('grid_power')).toBe(3300);

    // the hub refreshes before the inverter's 60 s revert timer runs out
    const writesBefore = sim.writes.length;
    await clock.advance(31_000);
    await inv.pollOnce();
    expect(sim.writes.length).toBeGreaterThan(writesBefore);
    sim.step(31_000);
    expect(sim.batteryW).toBe(2500);

    // a hub that stops refreshing: the inverter goes back to self-consumption by itself
    inv['stopTimer']?.();
    inv['active'] = undefined;
    await clock.advance(61_000);
    sim.step(61_000);
    expect(sim.image.getRaw(124, 'StorCtl_Mod')).toBe(0);
    expect(sim.batteryW).toBe(-800);
    await inv.stop();
  });

  it('discharges, holds and returns to auto; stopping the hub writes auto', async () => {
    const ctx = adapterContext(conn, { clock });
    const inv = new ModbusInverter(ctx, config(), loadProfile('sunspec'));
    await inv.start();
    sim.step(0, { pvW: 0, houseW: 500 });
    await inv.device.caps.storage!.command({ mode: 'discharge', powerW: 3000 });
    sim.step(1000);
    expect(sim.batteryW).toBe(-3000);
    await inv.device.caps.storage!.command({ mode: 'hold' });
    sim.step(1000);
    expect(sim.batteryW).toBe(0);
    // hold still lets PV surplus in
    sim.step(1000, { pvW: 2000, houseW: 500 });
    expect(sim.batteryW).toBe(1500);
    await inv.device.caps.storage!.command({ mode: 'discharge', powerW: 10_000 });
    expect(sim.image.get(124, 'OutWRte')).toBe(80); // clamped to max_discharge_w 4000 of WChaMax 5000
    // the plan says auto again and again: written once, then nothing to do
    await inv.device.caps.storage!.command({ mode: 'auto' });
    const writes = sim.writes.length;
    await inv.device.caps.storage!.command({ mode: 'auto' });
    await inv.device.caps.storage!.command({ mode: 'auto' });
    expect(sim.writes.length).toBe(writes);
    await inv.device.caps.storage!.command({ mode: 'hold' });
    await inv.stop();
    expect(sim.image.getRaw(124, 'StorCtl_Mod')).toBe(0);
    expect(said(ctx.log, 'info', /handed battery back/)).toHaveLength(1);
  });

  it('reads the DER models (701, 713, 714) and commands through 704 when there is no model 124', async () => {
    await sim.close();
    await conn.stop();
    sim = new SunSpecInverterSim({ variant: 'der', initialSocPct: 70 }, () => clock.now());
    sim.step(0, { pvW: 1200, houseW: 200 });
    conn = tcpConnection(await sim.listen(0), { clock });
    const ctx = adapterContext(conn, { clock });
    const inv = new ModbusInverter(ctx, config(), loadProfile('sunspec'));
    await inv.start();
    expect(inv.sunspecMap()?.models.map((m) => m.id)).toEqual([1, 701, 702, 704, 713, 714, 203]);
    expect(inv.device.caps.storage!.state()).toMatchObject({ socPct: 70, powerW: 1000 });
    expect(inv.measure('pv_power')).toBe(1200);
    expect(inv.measure('battery_capacity_wh')).toBe(10000);
    await inv.device.caps.storage!.command({ mode: 'discharge', powerW: 1500 });
    expect(sim.image.getRaw(704, 'WSetEna')).toBe(1);
    expect(sim.image.get(704, 'WSet')).toBe(2700);
    sim.step(1000);
    expect(sim.batteryW).toBe(-1500);
    await inv.device.caps.storage!.command({ mode: 'auto' });
    expect(sim.image.getRaw(704, 'WSetEna')).toBe(0);
    await inv.stop();
  });

  it('marks the device unavailable once when the inverter stops answering and recovered once when it is back', async () => {
    const log = captureLogger();
    const ctx = adapterContext(conn, { clock, log });
    const states: boolean[] = [];
    ctx.bus.on('device.state', (s) => states.push(s.available));
    const inv = new ModbusInverter(ctx, config(), loadProfile('sunspec'));
    await inv.start();
    sim.silent = true;
    for (let i = 0; i < 3; i++) {
      await clock.advance(10_000);
      await inv.pollOnce();
    }
    expect(inv.device.available).toBe(false);
    expect(inv.device.error).toMatch(/no answer within 300 ms/);
    sim.silent = false;
    await clock.advance(10_000);
    await inv.pollOnce();
    // the socket was reopened after three unanswered requests; the next attempt waits for the backoff
    for (let i = 0; i < 3 && !inv.device.available; i++) {
      await clock.advance(10_000);
      await inv.pollOnce();
    }
    expect(inv.device.available).toBe(true);
    expect(states).toEqual([true, false, true]);
    expect(said(log, 'warn', /battery is unavailable/)).toHaveLength(1);
    expect(said(log, 'info', /battery answers again after \d+ s/)).toHaveLength(1);
    await inv.stop();
  });
});
