import { afterEach, describe, expect, it } from 'vitest';
import { KebaStandin } from '../keba/standin.js';
import type { Device } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { startHub } from '../../test/peers/hub.js';
import { FakeHomeAssistant } from '../../test/peers/home-assistant.js';
import { sleep, until } from '../../test/peers/mqtt.js';

const TOKEN = 'test-token-0123456789abcdef';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a charger takes its car’s SoC from any Home Assistant entity (soc_entity), against the Home Assistant stand-in', () => {
  it('reads SoC and battery size, follows state_changed, uses them for a soc_pct target, and logs an unavailable entity once', async () => {
    const ha = new FakeHomeAssistant(TOKEN);
    await ha.start();
    cleanups.push(() => ha.stop());
    // the shapes of a car integration (Volkswagen ID., Tesla, Kia/Hyundai, …): battery level in %, capacity in kWh
    ha.setState('sensor.id4_battery_level', '40', { unit_of_measurement: '%', device_class: 'battery', state_class: 'measurement' });
    ha.setState('sensor.id4_battery_capacity', '77', { unit_of_measurement: 'kWh' });
    const clock = new ManualClock('2026-06-01T10:00:00Z');
    const keba = new KebaStandin({ now: () => clock.now() });
    const port = await keba.listen(0);
    cleanups.push(() => keba.close());
    const yaml = `site: { id: home, timezone: Europe/Berlin }
tariffs: { import: { type: fixed, rate: 0.30 } }
devices:
  - { id: wallbox, adapter: keba, host: 127.0.0.1, port: ${port}, local_port: 0, ev_capacity_wh: 50000,
      soc_entity: sensor.id4_battery_level, capacity_entity: sensor.id4_battery_capacity,
      homeassistant: { url: "${ha.url}", token: "${TOKEN}" } }
`;
    const h = await startHub(yaml, { clock });
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('wallbox')! as Device;
    await until(() => device.available, 'KEBA available');
    const charger = device.caps.charger!;
    await until(() => charger.evCapacityWh === 77000, 'capacity from Home Assistant (kWh → Wh), not ev_capacity_wh');
    // no car plugged in: no SoC to speak of
    expect(charger.evSocPct()).toBeUndefined();

    keba.plug(true);
    await clock.advance(5000);
    await until(() => charger.evSocPct() === 40, 'the SoC of the plugged-in car');
    ha.setState('sensor.id4_battery_level', '45', { unit_of_measurement: '%' });
    await until(() => charger.evSocPct() === 45, 'state_changed followed');

    // the plan: a soc_pct target needs (80 − 45) % of 77 kWh, over the charging efficiency
    const { buildSiteProblem, EV_CHARGE_EFFICIENCY } = await import('../../src/control/model.js');
    const { EnergyHistory } = await import('../../src/control/history.js');
    const entry = h.hub.registry.entry('wallbox')!;
    const problem = buildSiteProblem({ now: clock.now(), config: h.hub.config, devices: [{ device, config: entry.config as Record<string, unknown>, settings: { target: { soc_pct: 80, leave_time: '18:00' } } }], limits: new Map(), history: new EnergyHistory() } as never).problem;
    expect(problem.evs[0].sessions[0].energyNeededWh).toBeCloseTo((0.35 * 77000) / EV_CHARGE_EFFICIENCY, 0);

    ha.setState('sensor.id4_battery_level', 'unavailable', {});
    ha.setState('sensor.id4_battery_level', 'unavailable', {});
    await until(() => charger.evSocPct() === undefined, 'no SoC while the car integration has none');
    await sleep(200);
    expect(h.logText().split('\n').filter((l) => l.includes('sensor.id4_battery_level = \\"unavailable\\" is no usable value'))).toHaveLength(1);
    ha.setState('sensor.id4_battery_level', '46', { unit_of_measurement: '%' });
    await until(() => charger.evSocPct() === 46, 'back');
  }, 30_000);

  it('an OCPP charger takes the car battery from capacity_entity, so a soc_pct target needs no ev_capacity_wh', async () => {
    const ha = new FakeHomeAssistant(TOKEN);
    await ha.start();
    cleanups.push(() => ha.stop());
    ha.setState('sensor.car_soc', '55', { unit_of_measurement: '%' });
    ha.setState('sensor.car_capacity', '64000', { unit_of_measurement: 'Wh' });
    const h = await startHub(`site: { id: home, timezone: Europe/Berlin }
connections: { ocpp: { host: 127.0.0.1, port: 0 } }
devices:
  - { id: cp, adapter: ocpp, identity: CP1, target: { soc_pct: 80, leave_time: "07:00" },
      soc_entity: sensor.car_soc, capacity_entity: sensor.car_capacity, homeassistant: { url: "${ha.url}", token: "${TOKEN}" } }
`);
    cleanups.push(() => h.stop());
    const charger = h.hub.registry.get('cp')!.caps.charger!;
    await until(() => charger.evCapacityWh === 64000, 'capacity in Wh from Home Assistant');
    // no charge point connected: its status is unknown, so no car and no SoC
    expect(charger.evSocPct()).toBeUndefined();
  }, 20_000);

  it('refuses soc_entity without a Home Assistant to read it from, naming the key', async () => {
    await expect(startHub(`site: { id: home }\ndevices:\n  - { id: wallbox, adapter: keba, host: 127.0.0.1, soc_entity: sensor.car_soc }\n`)).rejects.toThrow(/homeassistant.*soc_entity \/ capacity_entity need homeassistant/s);
  });
});
