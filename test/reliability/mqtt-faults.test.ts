import { expect, it } from 'vitest';
import { TasmotaSimulator } from '../../adapters/tasmota/simulator.js';
import { ManualClock } from '../../src/core/clock.js';
import { startHub } from '../peers/hub.js';
import { Mosquitto, until } from '../peers/mqtt.js';
import { api, meteredWh, recordPlans, sleep } from './helpers.js';
import { describeWithPeers } from '../peers/system.js';
import { cleanupsAfterEach } from '../peers/cleanups.js';
import { minuteStepper } from '../peers/api.js';

/**
 * MQTT faults in a whole hub, on Debian's mosquitto: the broker restarted under a running plan, and
 * a socket that loses power (the broker sends its last will, LWT Offline) and comes back. The
 * transport's and the adapters' own tests cover reconnects and LWT parsing
 * (src/core/transports/mqtt.test.ts, adapters/tasmota/tasmota.test.ts); here the plan, the
 * commands and the metered energy are checked across them.
 */

const cleanups = cleanupsAfterEach();

const TOPIC = 'tasmota_REL01';

async function start() {
  const broker = await Mosquitto.start();
  cleanups.push(() => broker.stop());
  let sim = new TasmotaSimulator({ url: broker.url, topic: TOPIC, ratedPowerW: 2000, totalKwh: 50, autoTele: false });
  await sim.start();
  cleanups.push(() => sim.stop());
  // 00:05 local: the heater's two hours go to the cheapest, first hours of its window, so the plan switches it on now
  const clock = new ManualClock('2026-01-15T23:05:00Z');
  const h = await startHub(
    `site: { id: home, timezone: Europe/Berlin, currency: EUR }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "01:00", rate: 0.10 }, { from: "01:00", to: "02:00", rate: 0.12 },
                                        { from: "02:00", to: "03:00", rate: 0.14 }, { from: "03:00", to: "00:00", rate: 0.30 } ] }
  export: { type: fixed, rate: 0.08 }
connections:
  mqtt: { url: "${broker.url}" }
devices:
  - { id: heater, adapter: tasmota, topic: ${TOPIC}, rated_power_w: 2000, confirm_timeout_s: 3,
      schedule: { hours: 2, window: { from: "00:00", to: "06:00" } } }
`,
    { clock },
  );
  cleanups.push(() => h.stop());
  const control = h.hub.services.control!;
  const plans = recordPlans(h.hub);
  const heater = h.hub.registry.get('heater')!;
  await until(() => heater.available, 'the socket online');
  const tick = minuteStepper(clock, control);
  const replaceSim = async (totalKwh: number) => {
    sim = new TasmotaSimulator({ url: broker.url, topic: TOPIC, ratedPowerW: 2000, totalKwh, autoTele: false });
    await sim.start();
    return sim;
  };
  // the days of the test, 15 and 16 January
  const heaterWh = () => meteredWh(h.hub, 'heater', Date.parse('2026-01-15T00:00:00Z'), Date.parse('2026-01-17T00:00:00Z'));
  return { broker, h, control, plans, heater, tick, sim: () => sim, replaceSim, meteredWh: heaterWh, clock };
}

describeWithPeers(['mosquitto'], 'MQTT faults in a running hub', () => {
  it('the broker restarts: the hub and the socket reconnect, readings and commands flow again, the status is online again', async () => {
    const { broker, h, heater, tick, sim, meteredWh, control } = await start();
    await tick(10 * 60_000); // its run starts with the first whole slot, 00:15
    await until(() => sim().on, 'the plan switching the heater on');
    // the window two days on, which the 48 h horizon only reaches into, is no shortfall
    expect(control.latest!.plan.warnings).toEqual([]);
    sim().totalKwh = 50.5;
    sim().publishSensor();
    await until(() => heater.caps.meter!.last()?.importWh === 50_500, 'a reading');

    await broker.restart();
    await until(() => heater.available && (sim() as unknown as { client: { connected: boolean } }).client.connected, 'the socket back after the restart', 15_000);
    await sleep(300); // the hub resubscribes after its own reconnect
    sim().totalKwh = 51.2;
    sim().publishSensor();
    await until(() => heater.caps.meter!.last()?.importWh === 51_200, 'a reading after the restart', 15_000);
    expect(broker.sub('homeflex/home/status', { retainedOnly: true, seconds: 1 })).toEqual([{ topic: 'homeflex/home/status', payload: 'online' }]);

    // the user pauses the heater: the re-plan's command goes through the restarted broker
    const paused = await api(h.hub, 'PUT', '/devices/heater/pause', { paused: true });
    expect(paused.status).toBe(200);
    await until(() => !sim().on, 'the heater switched off', 15_000);
    expect(await meteredWh()).toBe(1200);
    expect(h.logText()).not.toMatch(/could not send (on|off) to heater/);
  });

  it('the socket loses power (LWT Offline): out of the plan and no commands while away; back online it is planned and switched again, its energy counted once', async () => {
    const { h, control, plans, heater, tick, sim, replaceSim, meteredWh } = await start();
    await tick(10 * 60_000); // its run starts with the first whole slot, 00:15
    await until(() => sim().on, 'the plan switching the heater on');
    sim().totalKwh = 50.4;
    sim().publishSensor();
    await until(() => heater.caps.meter!.last()?.importWh === 50_400, 'a reading');

    // a power cut: the TCP connection just stops (no DISCONNECT, no reconnect); mosquitto publishes the will
    (sim() as unknown as { client: { end(force: boolean): void } }).client.end(true);
    await until(() => !heater.available, 'the LWT Offline');
    await tick(60_000);
    expect(plans.at(-1)!.trigger).toMatch(/heater/);
    expect(control.latest!.plan.devices.map((d) => d.id)).not.toContain('heater');
    expect(control.latest!.notes.notes.join('\n')).toMatch(/heater: unavailable \(.*offline.*\), left out of the plan/);
    await tick(30 * 60_000);
    expect(h.logText()).not.toMatch(/could not send (on|off) to heater/);

    // power back: the relay comes up off (Tasmota's default), the plan wants it on and says so
    await replaceSim(50.9);
    await until(() => heater.available, 'the LWT Online');
    await tick(60_000);
    expect(control.latest!.plan.devices.map((d) => d.id)).toContain('heater');
    await until(() => sim().on, 'switched on again by the plan', 15_000);
    sim().totalKwh = 51.3;
    sim().publishSensor();
    await until(() => heater.caps.meter!.last()?.importWh === 51_300, 'a reading after the outage');
    // 50 → 51.3 kWh: what it drew while away (50.4 → 50.9) counts once, spread over the outage
    expect(await meteredWh()).toBe(1300);
  });
});
