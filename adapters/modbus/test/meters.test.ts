import { expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { ModbusInverter, type ModbusDeviceConfig } from '../inverter.js';
import { loadProfile } from '../profile.js';
import { adapterContext, deviceDefaults, tcpConnection } from './harness.js';
import { startPymodbus } from './peers.js';
import { sunspecMap } from './sunspec-image.js';
import { describeWithPeers } from '../../../test/peers/system.js';
import { cleanupsAfterEach } from '../../../test/peers/cleanups.js';

/**
 * SunSpec meters (models 201–204) read as the site's grid meter, against python3-pymodbus serving a
 * meter-only register map laid out here from the SunSpec model JSON (test/fixtures/sunspec-models)
 * by this file's own code: it shares nothing with the adapter's discovery or its models.json.
 */

const common = { id: 1, values: { Mn: 'Carlo Gavazzi', Md: 'EM24DINAV53DISX', SN: 'KT2340123', Vr: 'A.17' } };

const cleanups = cleanupsAfterEach();

const meterDevice = (over: Partial<ModbusDeviceConfig>): ModbusDeviceConfig => ({ ...deviceDefaults, id: 'grid', adapter: 'modbus', connection: 'lan', profile: 'sunspec', ...over });

describeWithPeers(['pymodbus'], 'SunSpec meters (201–204) as the grid meter, against python3-pymodbus', () => {
  it('a three-phase meter (203) alone on its unit: net power (+ import), per-phase power and the import/export registers', async () => {
    // exporting 2.35 kW in sum: L1 draws, L2 and L3 feed in (scale factor 0 here, −1 in the next test)
    const m203 = { id: 203, values: { W: -2350, WphA: 1200, WphB: -1750, WphC: -1800, W_SF: 0, TotWhExp: 8_123_456, TotWhImp: 12_345_678, TotWh_SF: 0, Hz: 5001, Hz_SF: -2 } };
    const peer = await startPymodbus(new Map([[3, sunspecMap([common, m203])]]), { tcp: true });
    cleanups.push(() => peer.stop());
    const clock = new ManualClock('2026-06-01T12:00:00Z');
    const conn = tcpConnection(peer.port!, { clock, timeoutMs: 500 });
    cleanups.push(() => conn.stop());
    const ctx = adapterContext(conn, { clock });
    const meter = new ModbusInverter(ctx, meterDevice({ unit: 3 }), loadProfile('sunspec'));
    await meter.start();
    cleanups.push(() => meter.stop());
    expect(meter.sunspecMap()?.models.map((m) => m.id)).toEqual([1, 203]);
    expect(meter.device.caps.storage).toBeUndefined();
    expect(meter.device.caps.meter!.last('grid')).toMatchObject({ channel: 'grid', powerW: -2350, phasesW: [1200, -1750, -1800], importWh: 12_345_678, exportWh: 8_123_456 });
    expect(meter.device.caps.meter!.last('battery')).toBeUndefined();
  });

  it('a single-phase meter (201) with scale factors: phase A only, values scaled', async () => {
    const m201 = { id: 201, values: { W: 4321, WphA: 4321, W_SF: -1, TotWhExp: 15, TotWhImp: 98_765, TotWh_SF: 1 } };
    const peer = await startPymodbus(new Map([[1, sunspecMap([common, m201])]]), { tcp: true });
    cleanups.push(() => peer.stop());
    const clock = new ManualClock('2026-06-01T12:00:00Z');
    const conn = tcpConnection(peer.port!, { clock, timeoutMs: 500 });
    cleanups.push(() => conn.stop());
    const ctx = adapterContext(conn, { clock });
    const meter = new ModbusInverter(ctx, meterDevice({ unit: 1 }), loadProfile('sunspec'));
    await meter.start();
    cleanups.push(() => meter.stop());
    expect(meter.device.caps.meter!.last('grid')).toMatchObject({ powerW: 432.1, phasesW: [432.1], importWh: 987_650, exportWh: 150 });
  });
});
