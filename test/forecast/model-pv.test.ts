import { describe, expect, it } from 'vitest';
import type { Device } from '../../src/api/index.js';
import { buildSiteProblem } from '../../src/control/model.js';
import { EnergyHistory } from '../../src/control/history.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { parseConfig } from '../../src/core/config/load.js';

const config = parseConfig('site: { id: home, timezone: Europe/Berlin, latitude: 52.5, longitude: 13.4 }\ntariffs: { import: { type: fixed, rate: 0.3 } }\n', 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });

/** A hybrid inverter: its battery and its PV strings are one device. */
const hybrid: Device = {
  id: 'gen24',
  name: 'GEN24',
  adapter: 'modbus',
  available: true,
  caps: {
    storage: {
      state: () => ({ socPct: 50 }),
      params: { capacityWh: 9600, socMinWh: 500, socMaxWh: 9600, maxChargeW: 5000, maxDischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95 },
      command: async () => undefined,
    },
    pv: { powerW: () => 0, params: { kWp: 8.2, tilt: 30, azimuth: 180 } },
  },
};

describe('PV on a device that is also something else', () => {
  it('a hybrid inverter’s PV strings are in the plan beside its battery', () => {
    const { problem, notes } = buildSiteProblem({ now: Date.parse('2026-06-21T04:00:00Z'), config, devices: [{ device: hybrid, config: {}, settings: {} }], limits: new Map(), history: new EnergyHistory() });
    expect(problem.batteries.map((b) => b.id)).toEqual(['gen24']);
    const pv = problem.flows.find((f) => f.id === 'gen24:pv')!;
    expect(Math.min(...pv.powerW)).toBeLessThan(-2000);
    expect(notes.forecasts.pv[0]).toMatch(/^gen24: clear sky/);
  });
});
