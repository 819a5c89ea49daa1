import { expect, it } from 'vitest';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, until } from '../../test/peers/mqtt.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { TasmotaSimulator } from './simulator.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

/**
 * A micro-inverter behind a Tasmota socket (`pv_kwp`): production with the right sign, and
 * curtailment by switching the socket off until the command's validUntil, when the hub switches it
 * back on by itself. Against Debian mosquitto.
 */

const cleanups = cleanupsAfterEach();

describeWithPeers(['mosquitto'], 'a micro-inverter socket (tasmota) as curtailable PV', () => {
  it('reads production as export, switches off for a curtailment and back on when it expires', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const sim = new TasmotaSimulator({ url: broker.url, topic: 'balcony', ratedPowerW: 600, totalKwh: 12.5, autoTele: false });
    sim.on = true;
    await sim.start();
    cleanups.push(() => sim.stop());
    const h = await startHub(`site: { id: home }\ntariffs: { import: { type: fixed, rate: 0.3 } }\nconnections:\n  mqtt: { url: "${broker.url}" }\ndevices:\n  - { id: balcony, adapter: tasmota, topic: balcony, pv_kwp: 0.8, confirm_timeout_s: 3 }\n`);
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('balcony')!;
    await until(() => device.available, 'socket available');
    // PV, curtailable by switching off; not a switched load the planner would schedule
    expect(device.caps.switch).toBeUndefined();
    expect(device.caps.pv!.params.kWp).toBe(0.8);
    expect(device.caps.curtail).toMatchObject({ ratedW: 800, steps: 'off' });
    sim.publishSensor();
    // the simulated inverter produces 600 W from its 12.5 kWh counter on: its register runs as export
    await until(() => (device.caps.meter!.last()?.exportWh ?? 0) >= 12500 && device.caps.meter!.last()?.powerW === -600, 'production as export');
    expect(device.caps.meter!.last()).toMatchObject({ importWh: 0, exportWh: expect.closeTo(12510, -2), powerW: -600 });
    expect(device.caps.pv!.powerW()).toBe(600);

    await device.caps.curtail!.limit({ maxW: 0, validUntil: Date.now() + 1500 });
    expect(sim.on).toBe(false);
    expect(device.caps.curtail!.current()).toBe(0);
    await until(() => sim.on, 'switched back on at validUntil', 5000);
    await until(() => device.caps.curtail!.current() === undefined, 'curtailment cleared');
    // a limit above zero (or none) is production as usual
    await device.caps.curtail!.limit({ maxW: 0 });
    expect(sim.on).toBe(false);
    await device.caps.curtail!.limit({});
    expect(sim.on).toBe(true);
  });
});
