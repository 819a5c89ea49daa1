import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { ModbusConnection } from '../../../src/core/transports/modbus.js';
import { ModbusInverter, type ModbusDeviceConfig } from '../inverter.js';
import { loadProfile } from '../profile.js';
import { SunSpecInverterSim } from '../sim/inverter-sim.js';
import { adapterContext, captureLogger, deviceDefaults, said, tcpConnection } from './harness.js';
import { emptyUnit, goodweFrame, ptyPair, putWords, smaDump, startPymodbus, type DeviceImage, type UnitImage } from './peers.js';
import { describeWithPeers } from '../../../test/peers/system.js';
import { cleanupsAfterEach } from '../../../test/peers/cleanups.js';

/**
 * The adapter against Debian's python3-pymodbus serving real register dumps and a SunSpec storage
 * image: discovery, decoding, a charge setpoint written and read back, a dead unit next to live
 * ones, the server going away and coming back; over TCP and over an RTU bus.
 */

const cleanups = cleanupsAfterEach();

/** A SunSpec storage inverter's registers at one instant (the simulator's image, frozen). */
function storageImage(socPct: number): UnitImage {
  const sim = new SunSpecInverterSim({ initialSocPct: socPct, maxChargeW: 5000 });
  sim.step(0, { pvW: 1800, houseW: 600 });
  const unit = emptyUnit();
  for (const [a, w] of sim.image.words) unit.holding.set(a, w);
  return unit;
}

function site(): DeviceImage {
  const sma = emptyUnit();
  putWords(sma.holding, 40000, smaDump());
  const goodwe = emptyUnit();
  putWords(goodwe.holding, 35100, goodweFrame('GW10K-ET_running_data.hex'));
  putWords(goodwe.holding, 36000, goodweFrame('GW10K-ET_meter_data.hex'));
  putWords(goodwe.holding, 37000, goodweFrame('GW10K-ET_battery_info.hex'));
  putWords(goodwe.holding, 47511, [1, 0]);
  return new Map([
    [1, storageImage(63.4)],
    [126, sma],
    [247, goodwe],
  ]);
}

const device = (over: Partial<ModbusDeviceConfig>): ModbusDeviceConfig => ({
  ...deviceDefaults,
  id: 'battery',
  adapter: 'modbus',
  connection: 'lan',
  profile: 'sunspec',
  capacity_wh: 10000,
  max_charge_w: 5000,
  max_discharge_w: 5000,
  ...over,
});

describeWithPeers(['pymodbus'], 'modbus adapter against python3-pymodbus over TCP', () => {
  it('discovers and decodes the real dumps, reads SoC and writes a charge setpoint that reads back', async () => {
    const peer = await startPymodbus(site(), { tcp: true });
    cleanups.push(() => peer.stop());
    const clock = new ManualClock('2026-04-21T12:19:15Z');
    const conn = tcpConnection(peer.port!, { clock, timeoutMs: 500 });
    cleanups.push(() => conn.stop());
    const ctx = adapterContext(conn, { clock });

    const sma = new ModbusInverter(ctx, device({ id: 'sma', unit: 126, capacity_wh: undefined }), loadProfile('sunspec'));
    const storage = new ModbusInverter(ctx, device({ id: 'storage', unit: 1, watchdog_s: 90 }), loadProfile('sunspec'));
    const goodwe = new ModbusInverter(ctx, device({ id: 'goodwe', profile: 'goodwe-et' }), loadProfile('goodwe-et'));
    await Promise.all([sma.start(), storage.start(), goodwe.start()]);
    cleanups.push(async () => {
      await sma.stop();
      await storage.stop();
      await goodwe.stop();
    });

    expect(sma.sunspecMap()?.models.map((m) => m.id)).toEqual([1, 11, 12, 101, 120, 121, 122, 123, 124, 126, 127, 128, 131, 132, 160, 129, 130]);
    expect(said(ctx.log, 'info', /sma: found SMA SB3\.6-1AV-41 SN 3005067415 firmware 4\.01\.15\.R on unit 126/)).toHaveLength(1);
    expect(sma.measure('pv_power')).toBe(970);
    expect(sma.measure('pv_energy_wh')).toBe(29708760);

    expect(goodwe.device.caps.storage!.state()).toMatchObject({ socPct: 68, powerW: 2512 });
    expect(goodwe.measure('pv_power')).toBe(3456);

    expect(storage.device.caps.storage!.state()).toMatchObject({ socPct: 63.4, powerW: 1200, mode: 'auto' });
    await storage.device.caps.storage!.command({ mode: 'charge', powerW: 2000 });
    const map = storage.sunspecMap()!;
    const m124 = map.models.find((m) => m.id === 124)!;
    const at = (p: string) => m124.start + m124.layout!.get(p)!.offset;
    // read back through a second connection, as another client of the same server would
    const check = tcpConnection(peer.port!);
    cleanups.push(() => check.stop());
    expect(await check.readHolding(1, at('StorCtl_Mod'), 1)).toEqual([3]);
    expect(await check.readHolding(1, at('OutWRte'), 2)).toEqual([0x10000 - 4000, 4000]);
    expect(await check.readHolding(1, at('InOutWRte_RvrtTms'), 1)).toEqual([90]);
    expect(await check.readHolding(1, at('ChaGriSet'), 1)).toEqual([1]);
    await storage.device.caps.storage!.command({ mode: 'auto' });
    expect(await check.readHolding(1, at('StorCtl_Mod'), 1)).toEqual([0]);
  });

  it('marks a dead unit unavailable next to live ones, and everything recovers after the server restarts', async () => {
    const image = site();
    let peer = await startPymodbus(image, { tcp: true });
    const port = peer.port!;
    cleanups.push(() => peer.stop());
    const clock = new ManualClock('2026-04-21T12:00:00Z');
    const conn = tcpConnection(port, { clock, timeoutMs: 300 });
    cleanups.push(() => conn.stop());
    const log = captureLogger();
    const ctx = adapterContext(conn, { clock, log });
    const live = new ModbusInverter(ctx, device({ id: 'live', unit: 1 }), loadProfile('sunspec'));
    const dead = new ModbusInverter(ctx, device({ id: 'dead', unit: 5 }), loadProfile('sunspec'));
    await live.start();
    await dead.start();
    cleanups.push(async () => {
      await live.stop();
      await dead.stop();
    });
    expect(live.device.available).toBe(true);
    expect(dead.device.available).toBe(false);
    expect(dead.device.error).toBe('modbus lan unit 5 (reading registers 40000-40001): no answer within 300 ms');
    for (let i = 0; i < 3; i++) {
      await clock.advance(10_000);
      await Promise.all([live.pollOnce(), dead.pollOnce()]);
      expect(live.device.available).toBe(true);
    }
    expect(said(log, 'warn', /dead is unavailable/)).toHaveLength(1);

    await peer.stop();
    await clock.advance(10_000);
    await live.pollOnce();
    expect(live.device.available).toBe(false);
    peer = await startPymodbus(image, { tcp: true, port });
    for (let i = 0; i < 5 && !live.device.available; i++) {
      await clock.advance(10_000);
      await live.pollOnce();
    }
    expect(live.device.available).toBe(true);
    expect(live.device.caps.storage!.state().socPct).toBe(63.4);
    expect(said(log, 'warn', /live is unavailable/)).toHaveLength(1);
    expect(said(log, 'info', /live answers again after \d+ s/)).toHaveLength(1);
  });
});

describeWithPeers(['pymodbus', 'socat'], 'modbus adapter on an RTU bus (socat pseudo-terminals, pymodbus at the far end)', () => {
  it('polls two inverters on one bus while a third, dead unit times out without holding them up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-rtu-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pty = await ptyPair(dir);
    cleanups.push(() => pty.stop());
    const image = site();
    const peer = await startPymodbus(new Map([[1, image.get(1)!], [247, image.get(247)!]]), { rtu: pty.b, baud: 38400 });
    cleanups.push(() => peer.stop());
    const clock = new ManualClock();
    const conn = new ModbusConnection({ config: { id: 'rs485', rtu: { path: pty.a, baud: 38400, parity: 'none' }, timeout_ms: 400 }, log: captureLogger(), clock });
    cleanups.push(() => conn.stop());
    const ctx = adapterContext(conn, { clock });
    const cfg = { connection: 'rs485' };
    const storage = new ModbusInverter(ctx, device({ ...cfg, id: 'storage', unit: 1 }), loadProfile('sunspec'));
    const goodwe = new ModbusInverter(ctx, device({ ...cfg, id: 'goodwe', profile: 'goodwe-et' }), loadProfile('goodwe-et'));
    const dead = new ModbusInverter(ctx, device({ ...cfg, id: 'dead', unit: 3, profile: 'goodwe-et' }), loadProfile('goodwe-et'));
    await Promise.all([storage.start(), goodwe.start(), dead.start()]);
    cleanups.push(async () => {
      await storage.stop();
      await goodwe.stop();
      await dead.stop();
    });
    expect(storage.device.caps.storage!.state().socPct).toBe(63.4);
    expect(goodwe.device.caps.storage!.state()).toMatchObject({ socPct: 68, powerW: 2512 });
    expect(dead.device.available).toBe(false);
    expect(dead.device.error).toMatch(/modbus rs485 unit 3 \(reading registers 35105-35118\): no answer within 400 ms/);
    await clock.advance(10_000);
    await Promise.all([storage.pollOnce(), goodwe.pollOnce(), dead.pollOnce()]);
    expect([storage.device.available, goodwe.device.available, dead.device.available]).toEqual([true, true, false]);
    await goodwe.device.caps.storage!.command({ mode: 'charge', powerW: 1500 });
    expect(await conn.readHolding(247, 47511, 2)).toEqual([11, 1500]);
  });
});
