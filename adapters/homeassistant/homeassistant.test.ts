import { describe, expect, it } from 'vitest';
import { FakeHomeAssistant } from '../../test/peers/home-assistant.js';
import { startHub } from '../../test/peers/hub.js';
import { until } from '../../test/peers/mqtt.js';
import { climateState, sensorWatts, sensorWh } from './index.js';
import { websocketUrl } from './client.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

const TOKEN = 'long-lived-token-abcdefghijklmnopqrstuvwxyz';
const cleanups = cleanupsAfterEach();

const acAttributes = {
  hvac_modes: ['off', 'cool', 'heat', 'heat_cool', 'dry', 'fan_only'],
  min_temp: 16,
  max_temp: 30,
  target_temp_step: 0.5,
  current_temperature: 26.4,
  temperature: 24,
  hvac_action: 'cooling',
  friendly_name: 'Living room AC',
  supported_features: 395,
};

async function fakeHa() {
  const ha = new FakeHomeAssistant(TOKEN);
  await ha.start();
  cleanups.push(() => ha.stop());
  ha.setState('climate.living_room', 'cool', acAttributes);
  ha.setState('sensor.ac_power', '1.32', { unit_of_measurement: 'kW', device_class: 'power' });
  ha.setState('sensor.ac_energy', '812.5', { unit_of_measurement: 'kWh', device_class: 'energy', state_class: 'total_increasing' });
  return ha;
}

const yaml = (url: string, token = TOKEN, extra = '') => `site: { id: home }
devices:
  - { id: living-ac, adapter: homeassistant, url: "${url}", token: "${token}", entity_id: climate.living_room,
      power_entity: sensor.ac_power, energy_entity: sensor.ac_energy, mode: cool,
      comfort: { min_c: 22, max_c: 25 }, confirm_timeout_s: 3${extra} }
`;

describe('home assistant helpers', () => {
  it('maps the address to the WebSocket endpoint', () => {
    expect(websocketUrl('http://homeassistant.local:8123')).toBe('ws://homeassistant.local:8123/api/websocket');
    expect(websocketUrl('https://ha.example/')).toBe('wss://ha.example/api/websocket');
    expect(websocketUrl('ws://10.0.0.2:8123/api/websocket')).toBe('ws://10.0.0.2:8123/api/websocket');
    expect(() => websocketUrl('ftp://x')).toThrow(/must start with http:\/\/, https:\/\/, ws:\/\/ or wss:\/\//);
  });

  it('reads climate state, power in W or kW and energy in kWh or Wh', () => {
    const s = { entity_id: 'climate.x', state: 'heat_cool', attributes: { current_temperature: 21.5, temperature: null, hvac_action: 'idle' } };
    expect(climateState(s)).toEqual({ haMode: 'heat_cool', mode: 'auto', temperatureC: 21.5, setpointC: undefined, running: false });
    expect(sensorWatts({ entity_id: 's', state: '1.5', attributes: { unit_of_measurement: 'kW' } })).toBe(1500);
    expect(sensorWatts({ entity_id: 's', state: 'unavailable', attributes: {} })).toBeUndefined();
    expect(sensorWh({ entity_id: 's', state: '2.25', attributes: { unit_of_measurement: 'kWh' } })).toBe(2250);
    expect(sensorWh({ entity_id: 's', state: '75', attributes: { unit_of_measurement: 'Wh' } })).toBe(75);
  });
});

describe('home assistant climate over the WebSocket API (against a protocol-faithful stand-in)', () => {
  it('authenticates, reads get_states, follows state_changed, and sets temperature and mode', async () => {
    const ha = await fakeHa();
    const h = await startHub(yaml(ha.url));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('living-ac')!;
    await until(() => device.available, 'available');
    const t = device.caps.thermostat!;
    expect(t.state()).toEqual({ temperatureC: 26.4, setpointC: 24, mode: 'cool', running: true });
    expect(device.caps.meter!.last()).toMatchObject({ powerW: 1320, importWh: 812500 });
    expect(ha.received.map((m) => m.type)).toEqual(expect.arrayContaining(['subscribe_events', 'get_states']));

    // pre-cool: the plan asks for the band's lower edge
    await t.setSetpoint(21.7);
    const call = ha.received.findLast((m) => m.type === 'call_service')!;
    expect(call).toMatchObject({ domain: 'climate', service: 'set_temperature', service_data: { temperature: 22 }, target: { entity_id: 'climate.living_room' } });
    expect(t.state().setpointC).toBe(22);

    // a state pushed by Home Assistant (someone used the remote)
    ha.setState('climate.living_room', 'cool', { ...acAttributes, temperature: 23.5, current_temperature: 24.1, hvac_action: 'idle' });
    await until(() => t.state().setpointC === 23.5, 'state_changed followed');
    expect(t.state()).toMatchObject({ temperatureC: 24.1, running: false });
    ha.setState('sensor.ac_energy', '813.25', { unit_of_measurement: 'kWh' });
    await until(() => device.caps.meter!.last()?.importWh === 813250, 'energy followed');

    await t.setSetpoint(24, 'heat');
    expect(ha.received.findLast((m) => m.type === 'call_service')).toMatchObject({ service: 'set_temperature', service_data: { temperature: 24, hvac_mode: 'heat' } });
    expect(t.state().mode).toBe('heat');

    await t.setSetpoint(24, 'auto');
    expect(ha.received.findLast((m) => m.type === 'call_service')).toMatchObject({ service: 'set_temperature', service_data: { target_temp_low: 22, target_temp_high: 24, hvac_mode: 'heat_cool' } });

    await t.setSetpoint(24, 'off');
    expect(ha.received.findLast((m) => m.type === 'call_service')).toMatchObject({ service: 'set_hvac_mode', service_data: { hvac_mode: 'off' } });
    expect(t.state().mode).toBe('off');

    // ids increased on the connection (Home Assistant refuses reused ids)
    const ids = ha.received.map((m) => m.id as number);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it('reports Home Assistant’s refusal of a service call', async () => {
    const ha = await fakeHa();
    ha.setState('climate.living_room', 'cool', { ...acAttributes, hvac_modes: ['off', 'cool'] });
    const h = await startHub(yaml(ha.url));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('living-ac')!;
    await until(() => device.available, 'available');
    await expect(device.caps.thermostat!.setSetpoint(22, 'heat')).rejects.toThrow(/climate\.living_room has no hvac_mode "heat" \(it has: off, cool\)/);
    // the band and the entity's range both hold: 22…25 inside 16…30
    ha.setState('climate.living_room', 'cool', { ...acAttributes, temperature: 24.5, min_temp: 23, max_temp: 30 });
    await until(() => device.caps.thermostat!.state().setpointC === 24.5, 'state');
    await device.caps.thermostat!.setSetpoint(22);
    expect(ha.received.findLast((m) => m.type === 'call_service')).toMatchObject({ service_data: { temperature: 23 } });
  });

  it('does not retry a refused token (Home Assistant bans addresses that keep failing)', async () => {
    const ha = await fakeHa();
    const h = await startHub(yaml(ha.url, 'wrong-token-0123456789'));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('living-ac')!;
    await until(() => /refused the access token/.test(h.logText()), 'refusal logged');
    await new Promise((r) => setTimeout(r, 1500));
    expect(ha.authAttempts).toBe(1);
    expect(device.available).toBe(false);
    expect(device.error).toMatch(/refused the access token/);
    await expect(device.caps.thermostat!.setSetpoint(23)).rejects.toThrow(/no state of climate\.living_room yet/);
  });

  it('reconnects after Home Assistant restarts, logs in again and resubscribes', async () => {
    const ha = await fakeHa();
    const h = await startHub(yaml(ha.url));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('living-ac')!;
    await until(() => device.available, 'available');
    const port = ha.port;
    await ha.stop();
    await until(() => !device.available, 'unavailable while Home Assistant is down');
    const ha2 = new FakeHomeAssistant(TOKEN);
    ha2.setState('climate.living_room', 'cool', { ...acAttributes, temperature: 25 });
    await ha2.start(port);
    cleanups.push(() => ha2.stop());
    await until(() => device.available, 'available again', 10_000);
    expect(device.caps.thermostat!.state().setpointC).toBe(25);
    // the sensors are gone after the restart: logged, the thermostat still works
    expect(h.logText()).toMatch(/Home Assistant has no entity sensor\.ac_power, sensor\.ac_energy/);
    ha2.setState('climate.living_room', 'cool', { ...acAttributes, temperature: 22.5 });
    await until(() => device.caps.thermostat!.state().setpointC === 22.5, 'events after resubscribing');
    expect(h.logText()).toMatch(/Home Assistant connection recovered/);
  });

  it('says which entity Home Assistant does not have', async () => {
    const ha = await fakeHa();
    const h = await startHub(yaml(ha.url).replace('climate.living_room', 'climate.bedroom'));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('living-ac')!;
    await until(() => device.error?.includes('no entity climate.bedroom') === true, 'missing entity reported');
    expect(device.available).toBe(false);
  });
});
