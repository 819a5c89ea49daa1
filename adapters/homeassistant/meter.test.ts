import { describe, expect, it } from 'vitest';
import { startHub } from '../../test/peers/hub.js';
import { FakeHomeAssistant } from '../../test/peers/home-assistant.js';
import { sleep, until } from '../../test/peers/mqtt.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

const TOKEN = 'test-token-0123456789abcdef';
const cleanups = cleanupsAfterEach();

const yaml = (url: string, extra = '') => `site: { id: home }
devices:
  - { id: grid, adapter: homeassistant-meter, url: "${url}", token: "${TOKEN}",
      phase_power_entities: [sensor.p1_power_l1, sensor.p1_power_l2, sensor.p1_power_l3],
      import_energy_entity: sensor.p1_energy_import, export_energy_entity: sensor.p1_energy_export${extra} }
`;

describe('homeassistant-meter: Home Assistant sensors as the grid meter (against the protocol-faithful stand-in)', () => {
  it('reads per-phase power in W and kW, energy in kWh, follows state_changed, and leaves out a sensor that is not a number with one log line', async () => {
    const ha = new FakeHomeAssistant(TOKEN);
    await ha.start();
    cleanups.push(() => ha.stop());
    // the shapes of Home Assistant's DSMR integration: power per phase in kW, energy in kWh, total_increasing
    for (const [n, v] of [['1', '0.812'], ['2', '0.000'], ['3', '0.101']]) ha.setState(`sensor.p1_power_l${n}`, v, { unit_of_measurement: 'kW', device_class: 'power', state_class: 'measurement' });
    ha.setState('sensor.p1_energy_import', '9570.775', { unit_of_measurement: 'kWh', device_class: 'energy', state_class: 'total_increasing' });
    ha.setState('sensor.p1_energy_export', '11049.011', { unit_of_measurement: 'kWh', device_class: 'energy', state_class: 'total_increasing' });
    const h = await startHub(yaml(ha.url));
    cleanups.push(() => h.stop());
    const grid = h.hub.registry.get('grid')!;
    await until(() => grid.available, 'available');
    expect(grid.caps.meter!.channels).toEqual(['grid']);
    expect(grid.caps.meter!.last('grid')).toMatchObject({ channel: 'grid', powerW: 913, phasesW: [812, 0, 101], importWh: 9570775, exportWh: 11049011 });

    // PV starts on L2: the net flips to export
    ha.setState('sensor.p1_power_l2', '-2500', { unit_of_measurement: 'W', device_class: 'power' });
    await until(() => grid.caps.meter!.last('grid')?.powerW === -1587, 'net of the phases');
    expect(grid.caps.meter!.last('grid')!.phasesW).toEqual([812, -2500, 101]);

    const count = h.readings.length;
    ha.setState('sensor.p1_power_l1', 'eleven', { unit_of_measurement: 'kW' });
    ha.setState('sensor.p1_power_l1', 'twelve', { unit_of_measurement: 'kW' });
    await sleep(300);
    expect(h.logText().split('\n').filter((l) => l.includes('sensor.p1_power_l1 = ') && l.includes('is not a number'))).toHaveLength(1);
    // without L1 there is no total power; the counters still arrive
    expect(h.readings.slice(count).every((r) => r.reading.powerW === undefined)).toBe(true);
    ha.setState('sensor.p1_energy_import', '9571.000', { unit_of_measurement: 'kWh', state_class: 'total_increasing' });
    await until(() => grid.caps.meter!.last('grid')?.importWh === 9571000, 'counter moves on');
  });

  it('refuses a device without any sensor', async () => {
    await expect(startHub(`site: { id: home }\ndevices:\n  - { id: grid, adapter: homeassistant-meter, url: "http://127.0.0.1:1", token: "${TOKEN}" }\n`)).rejects.toThrow(/give at least power_entity/);
  });
});
