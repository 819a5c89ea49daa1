import { describe, expect, it } from 'vitest';
import { hasCap } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, freePort, observer, until } from '../../test/peers/mqtt.js';
import { scheduleSchema } from '../mqtt-socket/socket.js';
import { simSocket } from '../sim/index.js';
import { tasmota, tasmotaEnergy, tasmotaTopics } from './index.js';
import { TasmotaSimulator } from './simulator.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

const cleanups = cleanupsAfterEach();

const site = (mqtt: string, devices: string) => `site: { id: home }\nconnections:\n  mqtt: ${mqtt}\ndevices:\n${devices}`;

async function socketRig(broker: { url: string; mqttYaml: string }, extra = '') {
  const sim = new TasmotaSimulator({ url: broker.url, topic: 'tasmota_6A1B2C', ratedPowerW: 1800, totalKwh: 12.5, autoTele: false });
  await sim.start();
  cleanups.push(() => sim.stop());
  const h = await startHub(
    site(broker.mqttYaml, `  - { id: dishwasher, adapter: tasmota, topic: tasmota_6A1B2C, rated_power_w: 1800, confirm_timeout_s: 3,\n      schedule: { hours: 2, window: { from: "20:00", to: "06:00" } }${extra} }\n`),
  );
  cleanups.push(() => h.stop());
  const device = h.hub.registry.get('dishwasher')!;
  await until(() => device.available, 'socket available');
  return { sim, h, device };
}

describe('tasmota helpers', () => {
  it('builds topics from the FullTopic', () => {
    expect(tasmotaTopics({ topic: 'plug', full_topic: '%prefix%/%topic%/' })).toEqual({ cmnd: 'cmnd/plug', stat: 'stat/plug', tele: 'tele/plug' });
    expect(tasmotaTopics({ topic: 'plug', full_topic: 'tasmota/%topic%/%prefix%/' })).toEqual({ cmnd: 'tasmota/plug/cmnd', stat: 'tasmota/plug/stat', tele: 'tasmota/plug/tele' });
  });

  it('reads ENERGY Total in kWh as Wh and Power in W, per channel on multi-channel meters', () => {
    expect(tasmotaEnergy({ Total: 12.345, Power: 1800 })).toEqual({ totalWh: 12345, powerW: 1800 });
    expect(tasmotaEnergy({ Total: [1.5, 2.5], Power: [10, 20] }, 2)).toEqual({ totalWh: 2500, powerW: 20 });
    expect(tasmotaEnergy({ Total: 'x' })).toEqual({ totalWh: undefined, powerW: undefined });
    expect(tasmotaEnergy(undefined)).toBeUndefined();
  });

  it('takes the same schedule keys as sim_socket, which the planner reads', () => {
    expect(scheduleSchema).toEqual((simSocket.configSchema.properties as Record<string, unknown>).schedule);
    expect((tasmota.configSchema.properties as Record<string, unknown>).schedule).toBe(scheduleSchema);
  });
});

describeWithPeers(['mosquitto'], 'tasmota socket against Debian mosquitto', () => {
  it('is switched as the plan switches it, confirmed by the device, and metered in Wh', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const obs = await observer(broker.url, ['cmnd/tasmota_6A1B2C/#']);
    cleanups.push(() => obs.client.endAsync());
    const { sim, h, device } = await socketRig({ url: broker.url, mqttYaml: `{ url: "${broker.url}" }` });
    expect(hasCap(device, 'switch') && hasCap(device, 'meter')).toBe(true);
    // on Online the hub sets TelePeriod and asks for the relay and the energy
    await until(() => sim.commands.includes('TelePeriod 30') && sim.commands.includes('STATUS 10'), 'TelePeriod and STATUS 10');
    await until(() => h.readings.some((r) => r.deviceId === 'dishwasher' && r.reading.importWh === 12500), 'first reading from STATUS10');
    expect(device.caps.switch!.isOn()).toBe(false);

    await device.caps.switch!.set(true);
    expect(sim.on).toBe(true);
    expect(device.caps.switch!.isOn()).toBe(true);
    expect(obs.messages.filter((m) => m.topic === 'cmnd/tasmota_6A1B2C/POWER').map((m) => m.payload)).toContain('ON');

    sim.totalKwh += 0.9;
    sim.publishSensor();
    await until(() => device.caps.meter!.last()?.importWh === 13400, 'energy after running');
    expect(device.caps.meter!.last()).toMatchObject({ powerW: 1800, importWh: 13400, channel: 'device' });

    await device.caps.switch!.set(false);
    expect(sim.on).toBe(false);
  });

  it('ignores malformed payloads with a log line and keeps going', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const { sim, h, device } = await socketRig({ url: broker.url, mqttYaml: `{ url: "${broker.url}" }` });
    await until(() => device.caps.meter!.last()?.importWh === 12500, 'first reading');
    broker.pub('tele/tasmota_6A1B2C/SENSOR', '{"ENERGY": {"Total": 12.6');
    broker.pub('tele/tasmota_6A1B2C/SENSOR', '{"Temperature": 21}');
    broker.pub('stat/tasmota_6A1B2C/POWER', 'MAYBE');
    broker.pub('tele/tasmota_6A1B2C/LWT', 'Sleeping');
    await until(() => (h.logText().match(/ignored/g) ?? []).length >= 4, 'four log lines');
    expect(h.logText()).toMatch(/ignored a malformed payload \(not a JSON object\).*tele\/tasmota_6A1B2C\/SENSOR|tele\/tasmota_6A1B2C\/SENSOR.*ignored a malformed payload/);
    expect(h.logText()).toMatch(/ignored a sensor message without an ENERGY object/);
    expect(h.logText()).toMatch(/ignored a POWER state that is neither ON nor OFF/);
    expect(device.available).toBe(true);
    expect(device.caps.meter!.last()?.importWh).toBe(12500);
    sim.totalKwh = 12.7;
    sim.publishSensor();
    await until(() => device.caps.meter!.last()?.importWh === 12700, 'a good reading after the bad ones');
  });

  it('follows the LWT: offline refuses commands, online again re-queries; an energy reset does not lose the register', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const { sim, h, device } = await socketRig({ url: broker.url, mqttYaml: `{ url: "${broker.url}" }` });
    await until(() => device.caps.meter!.last()?.importWh === 12500, 'first reading');
    sim.crash();
    await until(() => !device.available, 'unavailable after LWT Offline');
    expect(device.error).toMatch(/offline/);
    expect(h.states.some((s) => s.deviceId === 'dishwasher' && !s.available)).toBe(true);
    await expect(device.caps.switch!.set(true)).rejects.toThrow(/dishwasher: the socket is offline/);
    const before = sim.commands.filter((c) => c.startsWith('TelePeriod')).length;
    await until(() => device.available, 'available after reconnect (LWT Online)');
    await until(() => sim.commands.filter((c) => c.startsWith('TelePeriod')).length > before, 're-query on Online');

    // EnergyReset on the device: Total starts again from 0
    sim.totalKwh = 0.05;
    sim.publishSensor();
    await until(() => device.caps.meter!.last()?.importWh === 12550, 'register continues after the reset');
    expect(h.logText()).toMatch(/energy counter went back/);
  });

  it('recovers from a broker restart mid-run: commands and readings flow again', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const { sim, device } = await socketRig({ url: broker.url, mqttYaml: `{ url: "${broker.url}" }` });
    await device.caps.switch!.set(true);
    await broker.restart();
    await until(() => sim.commands.length > 0 && (sim as unknown as { client: { connected: boolean } }).client.connected, 'device reconnected');
    // the command may race the hub's reconnect; the plan retries retryable errors the same way
    let done = false;
    for (let i = 0; i < 50 && !done; i++) {
      try {
        await device.caps.switch!.set(false);
        done = true;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(done).toBe(true);
    expect(sim.on).toBe(false);
    sim.totalKwh = 20;
    sim.publishSensor();
    await until(() => device.caps.meter!.last()?.importWh === 20000, 'reading after restart');
  });
});

describe('tasmota socket on the embedded broker', () => {
  it('works on connections.mqtt.embedded with a login', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const sim = new TasmotaSimulator({ url, topic: 'tasmota_E1', ratedPowerW: 500, username: 'hub', password: 'pw-123456', autoTele: false });
    const h = await startHub(
      site(`{ embedded: { port: ${port} }, username: hub, password: pw-123456 }`, '  - { id: heater, adapter: tasmota, topic: tasmota_E1, rated_power_w: 500 }\n'),
    );
    cleanups.push(() => h.stop());
    await sim.start();
    cleanups.push(() => sim.stop());
    const device = h.hub.registry.get('heater')!;
    await until(() => device.available, 'available');
    await device.caps.switch!.set(true);
    expect(sim.on).toBe(true);
  });
});

describeWithPeers(['mosquitto'], 'tasmota socket energy in metering', () => {
  it('is metered from the device counter and costed at the tariff', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const clock = new ManualClock('2026-06-01T10:00:00Z');
    const sim = new TasmotaSimulator({ url: broker.url, topic: 'tasmota_M1', ratedPowerW: 1500, totalKwh: 10, autoTele: false, now: () => clock.now() });
    await sim.start();
    cleanups.push(() => sim.stop());
    const h = await startHub(
      `site: { id: home }\ntariffs: { import: { type: fixed, rate: 0.3 }, export: { type: fixed, rate: 0.08 } }\nconnections: { mqtt: { url: "${broker.url}" } }\ndevices:\n  - { id: boiler, adapter: tasmota, topic: tasmota_M1, rated_power_w: 1500 }\n`,
      { clock },
    );
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('boiler')!;
    await until(() => device.caps.meter!.last()?.importWh === 10000, 'first register reading');
    await device.caps.switch!.set(true);
    // 20 minutes at 1500 W: 0.5 kWh, reported at the next TelePeriod
    await clock.advance(20 * 60_000);
    sim.publishSensor();
    await until(() => device.caps.meter!.last()?.importWh === 10500, 'register after 20 minutes');
    const metering = h.hub.services.metering!;
    await metering.flushReadings();
    await metering.settled();
    const cost = metering.costs('boiler', { direction: 'IMPORT', aggregation: 'DAY', includeTariff: true, window: { start: Date.parse('2026-06-01T00:00:00Z'), end: Date.parse('2026-06-02T00:00:00Z') } });
    expect(cost.total.energy.value).toBeCloseTo(500, 3);
    expect(cost.total.tariff.value).toBeCloseTo(0.15, 5);
  });
});
