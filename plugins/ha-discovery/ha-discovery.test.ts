import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Device } from '../../src/api/index.js';
import { TasmotaSimulator } from '../../adapters/tasmota/simulator.js';
import { checkDiscovery } from '../../test/peers/ha-discovery-rules.js';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, observer, until } from '../../test/peers/mqtt.js';
import { actionAt, discoveryId, discoveryMessages, nextCheapStart, planActions } from './index.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

const cleanups = cleanupsAfterEach();

const site = { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' };
const dev = (id: string, caps: Device['caps']): Device => ({ id, name: id, adapter: 'x', caps, available: true });
const meter = { last: () => undefined, channels: ['device' as const] };

describe('discovery configs', () => {
  it('are valid for Home Assistant for every kind of device and site entity', () => {
    const devices = [
      dev('dishwasher', { meter, switch: { isOn: () => true, set: async () => undefined, ratedPowerW: 1800 } }),
      dev('living.ac', { meter, thermostat: { state: () => ({}), band: { minC: 22, maxC: 25 }, setSetpoint: async () => undefined } }),
      dev('house', { meter }),
      dev('battery', { meter, storage: { state: () => ({ socPct: 55 }), params: () => ({}) as never, command: async () => undefined } as never }),
      dev('ev', { meter, charger: { evSocPct: () => 40 } as never }),
    ];
    const messages = discoveryMessages(site, devices, { prefix: 'homeassistant', node: 'homeflex_home', hasTariffs: true, hasMetering: true, hasControl: true });
    const problems = messages.flatMap((m) => checkDiscovery(m.topic, JSON.stringify(m.config)));
    expect(problems).toEqual([]);
    const ids = messages.map((m) => m.config.unique_id);
    expect(new Set(ids).size).toBe(ids.length);
    const topics = messages.map((m) => m.topic);
    expect(topics).toContain('homeassistant/switch/homeflex_home/dishwasher_switch/config');
    expect(topics).toContain('homeassistant/sensor/homeflex_home/living_ac_temperature/config');
    expect(topics).toContain('homeassistant/sensor/homeflex_home/import_price/config');
    expect(topics).toContain('homeassistant/sensor/homeflex_home/cost_today/config');
    expect(topics.filter((t) => t.includes('planned_power'))).toHaveLength(4);
    expect(topics).toEqual(expect.arrayContaining([
      'homeassistant/sensor/homeflex_home/battery_soc/config',
      'homeassistant/sensor/homeflex_home/ev_soc/config',
      'homeassistant/sensor/homeflex_home/battery_next_action/config',
      'homeassistant/sensor/homeflex_home/battery_next_action_at/config',
      'homeassistant/sensor/homeflex_home/import_price_next/config',
      'homeassistant/sensor/homeflex_home/savings_today/config',
    ]));
    expect(messages.find((m) => m.topic.endsWith('battery_soc/config'))!.config).toMatchObject({ device_class: 'battery', unit_of_measurement: '%' });
    expect(messages.find((m) => m.topic.endsWith('dishwasher_energy/config'))!.config).toMatchObject({ device_class: 'energy', state_class: 'total_increasing', unit_of_measurement: 'kWh' });
  });

  it('the rule checker catches what Home Assistant would refuse', () => {
    expect(checkDiscovery('homeassistant/sensor/n/o/config', JSON.stringify({ unique_id: 'a', state_topic: 's', device_class: 'energy', unit_of_measurement: 'W' }))).toEqual([
      'homeassistant/sensor/n/o/config: unit "W" is not valid for device_class energy',
    ]);
    expect(checkDiscovery('homeassistant/sensor/n/o/config', JSON.stringify({ unique_id: 'a', state_topic: 's', device_class: 'monetary', unit_of_measurement: 'EUR', state_class: 'measurement' }))[0]).toMatch(/state_class measurement is not valid for device_class monetary/);
    expect(checkDiscovery('homeassistant/switch/n/o/config', JSON.stringify({ unique_id: 'a', state_topic: 's' }))[0]).toMatch(/"command_topic" is required/);
    expect(checkDiscovery('homeassistant/sensor/n/a.b/config', '{}')[0]).toMatch(/not <prefix>/);
    expect(discoveryId('living.ac')).toBe('living_ac');
  });

  it("says each device's planned action now and the next different one, with its start", () => {
    const slots = [0, 1, 2, 3].map((i) => ({ start: i * 900_000, end: (i + 1) * 900_000 }));
    const battery = { id: 'b', kind: 'battery', powerW: [3000, 3000, 0, -2500], modes: ['charge', 'charge', 'hold', 'discharge'] };
    expect(planActions(battery, slots, 100)).toEqual({ now: 'charge 3.0 kW', next: 'hold', nextAt: 1_800_000 });
    expect(planActions(battery, slots, 2_000_000)).toEqual({ now: 'hold', next: 'discharge 2.5 kW', nextAt: 2_700_000 });
    expect(planActions(battery, slots, 3_000_000)).toEqual({ now: 'discharge 2.5 kW', next: null, nextAt: null });
    expect(planActions(battery, slots, 9_999_999)).toEqual({ now: null, next: null, nextAt: null });
    expect(actionAt({ id: 'e', kind: 'ev', powerW: [0, 7400] }, 0)).toBe('pause');
    expect(actionAt({ id: 'e', kind: 'ev', powerW: [0, 7400] }, 1)).toBe('charge 7.4 kW');
    expect(actionAt({ id: 'd', kind: 'load', powerW: [1800], on: [true] }, 0)).toBe('on');
    expect(actionAt({ id: 'a', kind: 'hvac', powerW: [500], setpointC: [23.25] }, 0)).toBe('setpoint 23.3 °C');
  });

  it('finds the next cheap period in the import prices', () => {
    const h = 3_600_000;
    const series = [0.3, 0.32, 0.2, 0.12, 0.11, 0.25].map((rate, i) => ({ start: i * h, end: (i + 1) * h, rate, confidence: 1 }));
    // threshold 0.11 + 0.25·(0.32 − 0.11) = 0.1625: first slot at or below it starts at 3 h
    expect(nextCheapStart(series, 0.5 * h)).toBe(3 * h);
    expect(nextCheapStart(series, 3.5 * h)).toBe(3.5 * h);
    expect(nextCheapStart([], 0)).toBeUndefined();
  });
});

describeWithPeers(['mosquitto'], 'ha-discovery on a real broker (Debian mosquitto)', () => {
  it('publishes retained valid configs and states, obeys Home Assistant switch commands, re-publishes on homeassistant/status online, removes stale entities', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const sim = new TasmotaSimulator({ url: broker.url, topic: 'tasmota_HA1', ratedPowerW: 1200, totalKwh: 3.25, autoTele: false });
    await sim.start();
    cleanups.push(() => sim.stop());
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-hadisc-'));
    const yaml = (devices: string) => `site: { id: home, name: Home }
tariffs: { import: { type: fixed, rate: 0.3 }, export: { type: fixed, rate: 0.08 } }
connections: { mqtt: { url: "${broker.url}" } }
plugins: [ { id: ha-discovery, state_interval_s: 1 } ]
devices:
${devices}`;
    const two = '  - { id: dishwasher, adapter: tasmota, topic: tasmota_HA1, rated_power_w: 1200 }\n  - { id: house, adapter: sim_load, tick_s: 1 }\n  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 62, tick_s: 1 }\n';
    const obs = await observer(broker.url, ['homeassistant/#', 'homeflex/#']);
    cleanups.push(() => obs.client.endAsync());
    const h = await startHub(yaml(two), { storageDir: dir });
    const dishwasher = h.hub.registry.get('dishwasher')!;
    await until(() => dishwasher.available && obs.messages.some((m) => m.topic === 'homeflex/home/device/dishwasher/state' && JSON.parse(m.payload).energy_kwh === 3.25), 'dishwasher state with energy');

    // every retained config on the broker is valid for Home Assistant
    const retained = broker.sub('homeassistant/#', { retainedOnly: true, seconds: 1 });
    expect(retained.length).toBeGreaterThanOrEqual(12);
    expect(retained.flatMap((m) => checkDiscovery(m.topic, m.payload))).toEqual([]);
    const topics = retained.map((m) => m.topic);
    expect(topics).toEqual(expect.arrayContaining([
      'homeassistant/switch/homeflex_home/dishwasher_switch/config',
      'homeassistant/sensor/homeflex_home/dishwasher_energy/config',
      'homeassistant/sensor/homeflex_home/house_power/config',
      'homeassistant/binary_sensor/homeflex_home/house_connected/config',
      'homeassistant/sensor/homeflex_home/import_price/config',
    ]));
    // mosquitto_sub runs synchronously and holds this process (and the hub in it): wait for the state first
    await until(() => obs.messages.some((m) => m.topic === 'homeflex/home/site/state'), 'the site state');
    const siteMsgs = broker.sub('homeflex/home/site/state', { count: 1 });
    const siteState = JSON.parse(siteMsgs[0].payload);
    expect(siteState).toMatchObject({ import_price: 0.3, export_price: 0.08 });
    // a flat tariff: every slot is as cheap as it gets, so the cheap period is now
    expect(Date.parse(siteState.next_cheap_start)).toBeGreaterThan(Date.now() - 60_000);
    expect(typeof siteState.cost_today).toBe('number');
    expect(siteState).toHaveProperty('savings_month');
    expect(siteState).toHaveProperty('savings_today');
    expect(siteState.import_price_next).toBe(0.3);
    expect(siteState.export_price_next).toBe(0.08);
    expect(Date.parse(siteState.price_next_start)).toBeGreaterThan(Date.now() - 60_000);
    // the battery: its SoC and what the plan has it do now, as Home Assistant sensors
    await until(() => obs.messages.some((m) => m.topic === 'homeflex/home/device/battery/state' && typeof JSON.parse(m.payload).plan_action === 'string'), 'battery plan action');
    const battery = JSON.parse(obs.messages.filter((m) => m.topic === 'homeflex/home/device/battery/state').at(-1)!.payload);
    expect(battery.soc_pct).toBeGreaterThan(50);
    expect(battery.plan_action).toMatch(/^(charge|discharge) \d+\.\d kW$|^hold$|^auto$/);
    expect(topics).toContain('homeassistant/sensor/homeflex_home/battery_soc/config');
    expect(broker.sub('homeflex/home/device/dishwasher/availability', { count: 1 })[0].payload).toBe('online');
    expect(broker.sub('homeflex/home/status', { count: 1 })[0].payload).toBe('online');

    // Home Assistant switches the socket through its command topic
    broker.pub('homeflex/home/device/dishwasher/switch/set', 'ON');
    await until(() => sim.on, 'socket switched on from Home Assistant');
    await until(() => obs.messages.some((m) => m.topic === 'homeflex/home/device/dishwasher/state' && JSON.parse(m.payload).switch === 'ON'), 'state ON published');
    broker.pub('homeflex/home/device/dishwasher/switch/set', 'MAYBE');
    await until(() => /ignored a switch command/.test(h.logText()), 'bad command logged');

    // Home Assistant restarts: it announces itself and gets every config again
    const configsBefore = obs.messages.filter((m) => m.topic.endsWith('/config')).length;
    broker.pub('homeassistant/status', 'online');
    await until(() => obs.messages.filter((m) => m.topic.endsWith('/config')).length >= configsBefore + retained.length, 're-published');

    // the hub stops: its last word is offline; then the house meter is removed from the YAML
    await h.stop();
    expect(broker.sub('homeflex/home/status', { count: 1 })[0].payload).toBe('offline');
    const h2 = await startHub(yaml('  - { id: dishwasher, adapter: tasmota, topic: tasmota_HA1, rated_power_w: 1200 }\n'), { storageDir: dir });
    cleanups.push(() => h2.stop());
    await until(() => obs.messages.some((m) => m.topic === 'homeassistant/sensor/homeflex_home/house_power/config' && m.payload === ''), 'empty retained config for the removed device');
    const after = broker.sub('homeassistant/#', { retainedOnly: true, seconds: 1 }).map((m) => m.topic);
    expect(after.some((t) => t.includes('/house_'))).toBe(false);
    expect(after).toContain('homeassistant/switch/homeflex_home/dishwasher_switch/config');
  });
});
