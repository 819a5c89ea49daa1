import { describe, expect, it } from 'vitest';
import type { Device, HeatPumpCap, ThermostatCap } from '../../src/api/index.js';
import { heatPumpParams, type SgReadyConfig } from '../../adapters/sg-ready/index.js';
import { thermalModelOf, type ThermostatConfig } from '../../adapters/thermostat-common/thermostat.js';
import { EnergyHistory } from '../../src/control/history.js';
import { buildSiteProblem } from '../../src/control/model.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { parseConfig } from '../../src/core/config/load.js';
import { heatingCop } from '../../src/optimiser/site/index.js';

/** The YAML of a site, as the hub reads it (defaults applied), and the device entries by id. */
function site(devices: string) {
  const config = parseConfig(
    `site: { id: home, timezone: Europe/Berlin }\nconnections: { mqtt: { url: "mqtt://127.0.0.1:1" } }\ntariffs: { import: { type: fixed, rate: 0.3 } }\ndevices:\n${devices}`,
    '/x/site.yaml',
    { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) },
  );
  return { config, entry: (id: string) => config.devices.find((d) => d.id === id) as unknown as Record<string, unknown> };
}

const NOW = Date.parse('2026-01-15T05:00:00Z'); // 06:00 in Berlin

describe('heat pumps in the site model', () => {
  it('an SG-Ready heat pump becomes a tank with the measured temperature, the profile-M draw-offs and the COP at the tank’s maximum', () => {
    const { config, entry } = site(
      '  - { id: hp, adapter: sg_ready, power_w: 2500, block: true, relays: { a: { tasmota: x, relay: 1 }, b: { tasmota: x, relay: 2 } },\n' +
        '      tank: { volume_l: 300, min_c: 42, max_c: 58, draw_kwh_per_day: 8 },\n' +
        '      space: { comfort: { min_c: 20, max_c: 22 }, flow_c: 35, outdoor_min_c: -4, outdoor_max_c: 4 } }\n',
    );
    const params = heatPumpParams(entry('hp') as unknown as SgReadyConfig);
    const cap = (tankC: number | undefined): HeatPumpCap => ({ sgReadyState: () => 2, requestedState: () => 2, setSgReady: async () => undefined, tankC: () => tankC, roomC: () => 21, params });
    const device = (tankC: number | undefined): Device => ({ id: 'hp', name: 'hp', adapter: 'sg_ready', available: true, caps: { heatPump: cap(tankC) } });
    const build = (tankC: number | undefined) => buildSiteProblem({ now: NOW, config, devices: [{ device: device(tankC), config: entry('hp'), settings: {} }], limits: new Map(), history: new EnergyHistory() });
    const { problem } = build(51.5);
    const hp = problem.heatPumps![0];
    expect(hp.maxElectricW).toBe(2500);
    expect(hp.sgReady).toEqual({ allowBlock: true, boostState: 3 });
    expect(hp.tank!.initialC).toBe(51.5);
    expect(hp.tank!.volumeL).toBe(300);
    // two days of draw-offs in a 48 h horizon: 2 × 8 kWh
    const drawn = hp.tank!.drawWh.reduce((a, b) => a + b, 0);
    expect(drawn).toBeGreaterThan(15_000);
    expect(drawn).toBeLessThanOrEqual(16_000 + 1e-6);
    // COP of hot water at its 58 °C maximum, of the rooms at the 35 °C flow: the rooms' is higher in every slot
    for (let t = 0; t < problem.slots.length; t++) {
      expect(hp.tank!.cop[t]).toBeCloseTo(heatingCop(hp.space!.outdoorC[t], 58), 9);
      expect(hp.space!.copPerSlot![t]).toBeGreaterThan(hp.tank!.cop[t]);
    }
    expect(Math.min(...hp.space!.outdoorC)).toBeCloseTo(-4, 0);
    // without a tank sensor the plan starts from the minimum, and says so
    const blind = build(undefined);
    expect(blind.problem.heatPumps![0].tank!.initialC).toBe(42);
    expect(blind.notes.notes.join('\n')).toMatch(/hp: no tank temperature measured, planned as if at its 42 °C minimum/);
  });

  it('a heat pump behind a thermostat: heat_pump { flow_c } gives the room a COP per slot from the outdoor temperature', () => {
    const yaml = '  - { id: floor, adapter: zigbee2mqtt, friendly_name: floor, mode: heat, comfort: { min_c: 20, max_c: 22 }, r_k_per_kw: 8, c_kwh_per_k: 6, max_electric_w: 2000, outdoor_min_c: -5, outdoor_max_c: 5, heat_pump: { flow_c: 30 } }\n';
    const { config, entry } = site(yaml);
    const model = thermalModelOf(entry('floor') as unknown as ThermostatConfig)!;
    expect(model.copCurve).toEqual({ sinkC: 30, eta: 0.4 });
    const thermostat: ThermostatCap = { state: () => ({ temperatureC: 21, mode: 'heat' }), band: { minC: 20, maxC: 22 }, model, setSetpoint: async () => undefined };
    const device: Device = { id: 'floor', name: 'floor', adapter: 'zigbee2mqtt', available: true, caps: { thermostat } };
    const { problem } = buildSiteProblem({ now: NOW, config, devices: [{ device, config: entry('floor'), settings: {} }], limits: new Map(), history: new EnergyHistory() });
    const h = problem.hvacs[0];
    expect(h.copPerSlot).toHaveLength(problem.slots.length);
    h.copPerSlot!.forEach((c, t) => expect(c).toBeCloseTo(heatingCop(h.outdoorC[t], 30), 9));
    // colder hours, lower COP
    const coldest = h.outdoorC.indexOf(Math.min(...h.outdoorC));
    const warmest = h.outdoorC.indexOf(Math.max(...h.outdoorC));
    expect(h.copPerSlot![coldest]).toBeLessThan(h.copPerSlot![warmest]);
    // and a cooling device may not have one
    expect(() => site(yaml.replace('mode: heat', 'mode: cool'))).toThrow(/devices\[0\]\.heat_pump: a COP curve for heating needs mode: heat/);
  });
});
