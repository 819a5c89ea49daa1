import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { settleSetpoint } from '../thermostat-common/thermostat.js';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, freePort, observer, until } from '../../test/peers/mqtt.js';
import { climateCapabilities, parseClimateState } from './index.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

const dir = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'mqtt-payloads', 'zigbee2mqtt');
const devicesFile = join(dir, 'bridge-devices.json');
const bridgeDevices = JSON.parse(readFileSync(devicesFile, 'utf8')) as unknown[];
const recorded = readFileSync(join(dir, 'bridge-payloads.txt'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { entity: string; service?: string; payload: string });
const moesStates = recorded.filter((r) => r.entity === 'Moes thermo' && !r.service).map((r) => JSON.parse(r.payload) as Record<string, unknown>);

const cleanups = cleanupsAfterEach();

describe('zigbee2mqtt parsing of a real network', () => {
  it('reads the Moes BHT-002 climate features from bridge/devices exposes', () => {
    const caps = climateCapabilities(bridgeDevices, 'Moes thermo');
    expect(caps.heatSetpoint).toEqual({ property: 'current_heating_setpoint', min: 5, max: 45, step: 1, access: 3 });
    expect(caps.coolSetpoint).toBeUndefined();
    expect(caps.temperature?.property).toBe('local_temperature');
    expect(caps.systemModes).toEqual(['off', 'heat']);
    expect(caps.runningState).toBe('running_state');
    expect(caps.power).toBeUndefined();
  });

  it('finds metering features beside the climate ones and names what is missing', () => {
    expect(() => climateCapabilities(bridgeDevices, 'Living room TRV')).toThrow(/Zigbee2MQTT has no device named "Living room TRV" \(known: .*Moes thermo/);
    expect(() => climateCapabilities(bridgeDevices, 'Aqara switch T1')).toThrow(/"Aqara switch T1" exposes no climate features/);
    expect(() => climateCapabilities({ not: 'a list' }, 'x')).toThrow(/not a list/);
  });

  it('parses all recorded Moes states; the setpoint of 50 outside the device range 5…45 is not believed', () => {
    expect(moesStates.length).toBe(40);
    const caps = climateCapabilities(bridgeDevices, 'Moes thermo');
    for (const msg of moesStates) {
      const r = parseClimateState(msg, caps, 'heat');
      expect(r.state.temperatureC).toBe(msg.local_temperature);
      expect(r.state.mode).toBe(msg.system_mode);
      expect(r.state.running).toBe(msg.running_state !== 'idle');
      if (typeof msg.current_heating_setpoint === 'number' && msg.current_heating_setpoint > 45) {
        expect(r.state.setpointC).toBeUndefined();
        expect(r.rejected).toContain(`current_heating_setpoint ${msg.current_heating_setpoint} is outside the device's range 5…45`);
      } else expect(r.state.setpointC).toBe(msg.current_heating_setpoint);
    }
    expect(parseClimateState({ local_temperature: 'warm' }, caps, 'heat').rejected).toEqual(['local_temperature "warm" is not a number']);
  });

  it('settles a setpoint inside the comfort band, the device range and its step', () => {
    expect(settleSetpoint(21.4, { minC: 19, maxC: 23 }, { min: 5, max: 45, step: 1 })).toBe(21);
    expect(settleSetpoint(30, { minC: 19, maxC: 23 }, { min: 5, max: 45, step: 1 })).toBe(23);
    expect(settleSetpoint(22.74, { minC: 22, maxC: 25 }, { min: 5, max: 35, step: 0.5 })).toBe(22.5);
    expect(settleSetpoint(22.1, { minC: 22.2, maxC: 22.8 }, { min: 5, max: 35, step: 0.5 })).toBe(22.5);
    expect(settleSetpoint(10, { minC: 4, maxC: 12 }, { min: 5, max: 35 })).toBe(10);
  });
});

/** A Zigbee2MQTT bridge stand-in: retained bridge/devices, device state, and /set applied as z2m does. */
async function fakeBridge(url: string) {
  const client: MqttClient = await mqtt.connectAsync(url);
  const state = { ...moesStates[0] };
  const sets: Record<string, unknown>[] = [];
  await client.subscribeAsync('zigbee2mqtt/Moes thermo/set', { qos: 1 });
  client.on('message', (_t, p) => {
    const cmd = JSON.parse(p.toString()) as Record<string, unknown>;
    sets.push(cmd);
    Object.assign(state, cmd);
    client.publish('zigbee2mqtt/Moes thermo', JSON.stringify(state), { retain: true });
  });
  await client.publishAsync('zigbee2mqtt/bridge/devices', readFileSync(devicesFile), { retain: true, qos: 1 });
  await client.publishAsync('zigbee2mqtt/Moes thermo/availability', '{"state":"online"}', { retain: true, qos: 1 });
  await client.publishAsync('zigbee2mqtt/Moes thermo', JSON.stringify(state), { retain: true, qos: 1 });
  return { client, state, sets };
}

const yaml = (mqttYaml: string) => `site: { id: home }
connections:
  mqtt: ${mqttYaml}
devices:
  - { id: living, adapter: zigbee2mqtt, name: Moes thermo, comfort: { min_c: 19, max_c: 23 }, confirm_timeout_s: 3,
      r_k_per_kw: 6, c_kwh_per_k: 2.5, max_electric_w: 2000, cop: 1 }
`;

describe('zigbee2mqtt thermostat on the embedded broker', () => {
  it('shows the device state, sets setpoints within the band, refuses modes the device lacks', async () => {
    const port = await freePort();
    const h = await startHub(yaml(`{ embedded: { port: ${port} } }`));
    cleanups.push(() => h.stop());
    const bridge = await fakeBridge(`mqtt://127.0.0.1:${port}`);
    cleanups.push(() => bridge.client.endAsync());
    const device = h.hub.registry.get('living')!;
    const t = device.caps.thermostat!;
    expect(t.model).toEqual({ rKPerKw: 6, cKwhPerK: 2.5, cop: 1, maxElectricW: 2000, gainsW: undefined });
    await until(() => device.available, 'available');
    expect(t.state()).toEqual({ temperatureC: 28.5, mode: 'heat', running: true });
    expect(h.logText()).toMatch(/ignored current_heating_setpoint 50 is outside the device's range 5…45/);
    expect(device.caps.meter).toBeUndefined();

    await t.setSetpoint(21.3, 'heat');
    expect(bridge.sets.at(-1)).toEqual({ current_heating_setpoint: 21 });
    expect(t.state().setpointC).toBe(21);

    await t.setSetpoint(26);
    expect(bridge.sets.at(-1)).toEqual({ current_heating_setpoint: 23 });

    await t.setSetpoint(20, 'off');
    expect(bridge.sets.at(-1)).toEqual({ system_mode: 'off' });
    expect(t.state().mode).toBe('off');

    await expect(t.setSetpoint(22, 'cool')).rejects.toThrow(/living: the device has no system_mode "cool" \(it has: off, heat\)/);

    await bridge.client.publishAsync('zigbee2mqtt/Moes thermo/availability', '{"state":"offline"}', { retain: true });
    await until(() => !device.available, 'offline');
    expect(device.error).toMatch(/Zigbee2MQTT says the device is offline/);
  });

  it('is unavailable with a clear reason when Zigbee2MQTT does not know the name', async () => {
    const port = await freePort();
    const h = await startHub(yaml(`{ embedded: { port: ${port} } }`).replace('name: Moes thermo', 'name: Kitchen TRV'));
    cleanups.push(() => h.stop());
    const bridge = await fakeBridge(`mqtt://127.0.0.1:${port}`);
    cleanups.push(() => bridge.client.endAsync());
    const device = h.hub.registry.get('living')!;
    await until(() => /no device named \\"Kitchen TRV\\"/.test(h.logText()), 'error logged');
    expect(device.available).toBe(false);
    await expect(device.caps.thermostat!.setSetpoint(21)).rejects.toThrow(/no device named "Kitchen TRV"/);
  });
});

describeWithPeers(['mosquitto'], 'zigbee2mqtt thermostat against mosquitto (mosquitto_pub as Zigbee2MQTT)', () => {
  it('reads the retained real bridge/devices and state, and publishes commands on <name>/set', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    broker.pub('zigbee2mqtt/bridge/devices', '', { retain: true, file: devicesFile });
    broker.pub('zigbee2mqtt/Moes thermo', JSON.stringify({ ...moesStates[5], current_heating_setpoint: 20 }), { retain: true });
    const obs = await observer(broker.url, ['zigbee2mqtt/Moes thermo/set']);
    cleanups.push(() => obs.client.endAsync());
    const h = await startHub(yaml(`{ url: "${broker.url}" }`));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('living')!;
    await until(() => device.available, 'available from retained messages');
    expect(device.caps.thermostat!.state().setpointC).toBe(20);
    const pending = device.caps.thermostat!.setSetpoint(22);
    await until(() => obs.messages.length === 1, 'set published');
    expect(JSON.parse(obs.messages[0].payload)).toEqual({ current_heating_setpoint: 22 });
    broker.pub('zigbee2mqtt/Moes thermo', 'this is not json');
    broker.pub('zigbee2mqtt/Moes thermo', JSON.stringify({ ...moesStates[5], current_heating_setpoint: 22 }));
    await pending;
    expect(h.logText()).toMatch(/ignored a malformed payload/);
    expect(device.caps.thermostat!.state().setpointC).toBe(22);
  });
});

describe('thermostat YAML checks', () => {
  it('names the missing model and forecast keys', async () => {
    const { checkThermostat } = await import('../thermostat-common/thermostat.js');
    const base = { id: 'x', adapter: 'zigbee2mqtt', comfort: { min_c: 21, max_c: 24 }, mode: 'cool' as const, cop: 3, confirm_timeout_s: 15 };
    expect(checkThermostat({ ...base, r_k_per_kw: 5 })).toEqual([{ path: ['c_kwh_per_k'], message: 'a thermal model needs r_k_per_kw, c_kwh_per_k, max_electric_w; missing c_kwh_per_k, max_electric_w' }]);
    expect(checkThermostat({ ...base, outdoor_min_c: 20 })).toEqual([{ path: ['outdoor_max_c'], message: 'give both outdoor_min_c and outdoor_max_c' }]);
    expect(checkThermostat({ ...base, comfort: { min_c: 25, max_c: 24 } })).toEqual([{ path: ['comfort', 'min_c'], message: 'must be below comfort.max_c (24)' }]);
    expect(checkThermostat({ ...base, r_k_per_kw: 5, c_kwh_per_k: 3, max_electric_w: 1000, outdoor_min_c: 20, outdoor_max_c: 30 })).toEqual([]);
  });
});
