import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from '../peers/hub.js';
import { freePort } from '../peers/mqtt.js';
import { applyMutation, mutation, weird } from './fuzz.js';
import { expectSaneMeterStore, until } from './helpers.js';

/**
 * Payloads on the topics the MQTT adapters read (Tasmota, Shelly Gen1 and Gen2, Zigbee2MQTT),
 * from garbage to mutations of real devices' messages, on the hub's embedded broker. The hub and
 * its adapters stay up, what was wrong is logged, device states hold only sane values, nothing
 * absurd reaches the meter store, and real messages afterwards are read and metered right.
 */

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'mqtt-payloads');
const bridgeDevices = readFileSync(join(fixtures, 'zigbee2mqtt', 'bridge-devices.json'), 'utf8');
const moes = readFileSync(join(fixtures, 'zigbee2mqtt', 'bridge-payloads.txt'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { entity: string; service?: string; payload: string })
  .find((r) => r.entity === 'Moes thermo' && !r.service)!.payload;
/** HOMEFLEX_FUZZ_SEED=<n> repeats or varies a run. */
const SEED = Number(process.env.HOMEFLEX_FUZZ_SEED ?? 5);

const energy = { Total: 12.5, Yesterday: 0.4, Today: 0.2, Power: 1800, ApparentPower: 1810, ReactivePower: 40, Factor: 0.99, Voltage: 231, Current: 7.8 };
/** Topic → a real message for it (JSON values are mutated as JSON, strings as strings). */
const SEEDS: [string, unknown][] = [
  ['tele/tasmota_FZ/SENSOR', { Time: '2026-03-10T10:00:00', ENERGY: energy }],
  ['stat/tasmota_FZ/STATUS10', { StatusSNS: { Time: '2026-03-10T10:00:00', ENERGY: energy } }],
  ['tele/tasmota_FZ/STATE', { Time: '2026-03-10T10:00:00', Uptime: '0T01:00:00', POWER: 'ON' }],
  ['stat/tasmota_FZ/RESULT', { POWER: 'OFF' }],
  ['stat/tasmota_FZ/POWER', 'ON'],
  ['tele/tasmota_FZ/LWT', 'Online'],
  ['shellies/shellyplug-s-FZ/online', 'true'],
  ['shellies/shellyplug-s-FZ/relay/0', 'on'],
  ['shellies/shellyplug-s-FZ/relay/0/power', '12.5'],
  ['shellies/shellyplug-s-FZ/relay/0/energy', '6000'],
  ['shellyplus1pm-fz/online', 'true'],
  ['shellyplus1pm-fz/status/switch:0', { id: 0, source: 'init', output: true, apower: 12.3, voltage: 230, current: 0.06, aenergy: { total: 1234.5, by_minute: [0, 0, 0], minute_ts: 1_773_000_000 }, temperature: { tC: 40.2 } }],
  ['shellyplus1pm-fz/events/rpc', { src: 'shellyplus1pm-fz', dst: 'x', method: 'NotifyStatus', params: { ts: 1_773_000_000, 'switch:0': { id: 0, apower: 10, aenergy: { total: 1300 } } } }],
  ['zigbee2mqtt/Moes thermo', JSON.parse(moes) as unknown],
  ['zigbee2mqtt/Moes thermo/availability', { state: 'online' }],
];

let h: TestHub;
let client: MqttClient;
beforeAll(async () => {
  const port = await freePort();
  h = await startHub(`site: { id: home, timezone: Europe/Berlin, currency: EUR }
tariffs: { import: { type: fixed, rate: 0.30 } }
connections:
  mqtt: { embedded: { port: ${port} } }
devices:
  - { id: tas, adapter: tasmota, topic: tasmota_FZ, rated_power_w: 1800 }
  - { id: plug, adapter: shelly, generation: 1, topic: shellyplug-s-FZ, rated_power_w: 1000 }
  - { id: plus, adapter: shelly, generation: 2, topic: shellyplus1pm-fz, rated_power_w: 1000, confirm_timeout_s: 1 }
  - { id: trv, adapter: zigbee2mqtt, name: Moes thermo, comfort: { min_c: 19, max_c: 23 }, r_k_per_kw: 6, c_kwh_per_k: 2.5, max_electric_w: 2000, cop: 1 }
`);
  client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`);
  await client.publishAsync('zigbee2mqtt/bridge/devices', bridgeDevices, { retain: true, qos: 1 });
  for (const [topic, payload] of SEEDS) await client.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 });
  await until(() => ['tas', 'plug', 'plus', 'trv'].every((id) => h.hub.registry.get(id)!.available), 'the four devices online');
});
afterAll(async () => {
  await client?.endAsync();
  await h?.stop();
});

/** Waits until the hub has handled everything published so far (a marker it answers on its status topic). */
async function drained() {
  const marker = `m${Date.now()}`;
  await client.publishAsync('shellies/shellyplug-s-FZ/relay/0/power', marker, { qos: 1 });
  await until(() => h.logText().includes(marker), 'the hub to read all messages');
}

describe('MQTT payload fuzzing', () => {
  it('the adapters stay up, log what they ignored, and keep only sane values', async () => {
    const message = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.nat(SEEDS.length - 1), mutation).map(([i, m]) => [SEEDS[i][0], typeof SEEDS[i][1] === 'string' ? (typeof m.value === 'string' ? m.value : JSON.stringify(m.value) ?? '') : JSON.stringify(applyMutation(SEEDS[i][1], m))] as const) },
      { weight: 2, arbitrary: fc.tuple(fc.nat(SEEDS.length - 1), fc.oneof(fc.string({ maxLength: 60 }), weird.map((v) => JSON.stringify(v) ?? ''), fc.constantFrom('', '{', '[]', 'null', '{"ENERGY":', '\u0000', 'ON\n', 'true '))).map(([i, raw]) => [SEEDS[i][0], raw] as const) },
      // the numbers devices count with, from odd to absurd
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom<unknown>(1e12, 1e308, -5, '1e999', 'NaN', 9e15, 0, 1e-300, '12,5'), fc.nat(3)).map(([v, k]) => [
        ['tele/tasmota_FZ/SENSOR', JSON.stringify({ ENERGY: { ...energy, Total: v } })],
        ['shellies/shellyplug-s-FZ/relay/0/energy', String(v)],
        ['shellyplus1pm-fz/status/switch:0', JSON.stringify({ id: 0, output: true, apower: v, aenergy: { total: v } })],
        ['zigbee2mqtt/Moes thermo', JSON.stringify({ ...(JSON.parse(moes) as object), local_temperature: v, current_heating_setpoint: v })],
      ][k] as unknown as readonly [string, string]) },
    );
    await fc.assert(
      fc.asyncProperty(message, async ([topic, payload]) => {
        await client.publishAsync(topic, payload, { qos: 0 });
      }),
      { numRuns: 500, seed: SEED },
    );
    await drained();
    const log = h.logText();
    expect(log.match(/"msg":"ignored /g)?.length ?? 0).toBeGreaterThan(20);
    expect(log).not.toMatch(/adapter \w+ failed|unhandled error in the hub|"level":60/);
    for (const id of ['tas', 'plug', 'plus', 'trv']) {
      expect(h.hub.services.adapterStatus.get(id)?.status, id).toBe('running');
      const d = h.hub.registry.get(id)!;
      const r = d.caps.meter?.last();
      if (r) {
        for (const v of [r.powerW, r.importWh, r.exportWh]) if (v !== undefined) expect(Number.isFinite(v) && Math.abs(v) < 1e12, `${id} ${JSON.stringify(r)}`).toBe(true);
        if (r.importWh !== undefined) expect(r.importWh).toBeGreaterThanOrEqual(0);
      }
      const on = d.caps.switch?.isOn();
      expect(on === undefined || typeof on === 'boolean').toBe(true);
      const t = d.caps.thermostat?.state();
      if (t?.temperatureC !== undefined) expect(t.temperatureC > -60 && t.temperatureC < 100, `trv ${t.temperatureC} °C`).toBe(true);
      if (t?.setpointC !== undefined) expect(t.setpointC >= 5 && t.setpointC <= 45, `trv setpoint ${t.setpointC}`).toBe(true);
    }
    await expectSaneMeterStore(h.hub);
  });

  it('real messages afterwards are read and metered right', async () => {
    const tas = h.hub.registry.get('tas')!;
    await client.publishAsync('tele/tasmota_FZ/LWT', 'Online', { qos: 1 });
    await until(() => tas.available, 'tasmota online');
    const register = () => tas.caps.meter!.last()?.importWh;
    await client.publishAsync('tele/tasmota_FZ/SENSOR', JSON.stringify({ ENERGY: { ...energy, Total: 40 } }), { qos: 1 });
    await drained();
    const a = register()!;
    await client.publishAsync('tele/tasmota_FZ/SENSOR', JSON.stringify({ ENERGY: { ...energy, Total: 40.5 } }), { qos: 1 });
    await drained();
    const b = register()!;
    // half a kWh on the device is half a kWh in its register, whatever came before
    expect(b - a).toBeCloseTo(500, 6);
    expect(a).toBeLessThan(1e12);
    await client.publishAsync('shellies/shellyplug-s-FZ/relay/0', 'off', { qos: 1 });
    await until(() => h.hub.registry.get('plug')!.caps.switch!.isOn() === false, 'the Gen1 relay off');
  });
});
