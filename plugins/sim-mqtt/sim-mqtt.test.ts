import { describe, expect, it } from 'vitest';
import { startHub } from '../../test/peers/hub.js';
import { until } from '../../test/peers/mqtt.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

const cleanups = cleanupsAfterEach();

describe('sim-mqtt: the demo’s MQTT devices on the embedded broker', () => {
  it('needs a broker: its own URL or the embedded one', async () => {
    const h = await startHub(`site: { id: demo }
connections: { mqtt: { url: "mqtt://127.0.0.1:1" } }
plugins: [ { id: sim-mqtt, tasmota: [ { topic: t1 } ] } ]
`);
    cleanups.push(() => h.stop());
    expect(h.logText()).toMatch(/sim-mqtt: give \\"broker\\", or set connections.mqtt.embedded/);
  });

  it('a simulated Tasmota socket and Zigbee2MQTT AC thermostat are driven through the real adapters', async () => {
    const h = await startHub(`site: { id: demo }
connections: { mqtt: { embedded: { port: 0 } } }
devices:
  - { id: heater, adapter: tasmota, topic: tasmota_SIM1, rated_power_w: 2000 }
  - { id: bedroom, adapter: zigbee2mqtt, friendly_name: bedroom_ac, mode: cool, comfort: { min_c: 21, max_c: 25 } }
plugins:
  - { id: sim-mqtt, tasmota: [ { topic: tasmota_SIM1, rated_power_w: 2000, total_kwh: 7 } ],
      zigbee2mqtt: [ { name: bedroom_ac, initial_c: 26, setpoint_c: 24 } ] }
`);
    cleanups.push(() => h.stop());
    const heater = h.hub.registry.get('heater')!;
    const bedroom = h.hub.registry.get('bedroom')!;
    await until(() => heater.available && bedroom.available, 'both simulated devices available');
    await until(() => heater.caps.meter!.last()?.importWh === 7000, 'socket energy counter');
    await heater.caps.switch!.set(true);
    expect(heater.caps.switch!.isOn()).toBe(true);
    expect(bedroom.caps.thermostat!.state()).toMatchObject({ temperatureC: 26, setpointC: 24, mode: 'cool' });
    expect(bedroom.caps.meter).toBeDefined();
    await bedroom.caps.thermostat!.setSetpoint(22.3);
    expect(bedroom.caps.thermostat!.state().setpointC).toBe(22.5);
    // the simulated controller starts cooling once the room is above the new setpoint
    await until(() => bedroom.caps.thermostat!.state().running === true, 'AC running');
    expect(bedroom.caps.meter!.last()?.powerW).toBe(1200);
  });
});
