import { describe, expect, it } from 'vitest';
import type { Device, MeterChannel, MeterReading } from '../../src/api/index.js';
import { baseLoadSource, buildSiteProblem } from '../../src/control/model.js';
import { EnergyHistory } from '../../src/control/history.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { parseConfig } from '../../src/core/config/load.js';

const config = parseConfig('site: { id: home, timezone: UTC, latitude: 52.5, longitude: 13.4 }\ntariffs: { import: { type: fixed, rate: 0.3 } }\n', 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });

const meter = (channels: MeterChannel[]): Device['caps']['meter'] => ({ channels, last: () => undefined });
const p1: Device = { id: 'p1', name: 'P1', adapter: 'dsmr', available: true, caps: { meter: meter(['grid']) } };
const roof: Device = { id: 'roof', name: 'Roof', adapter: 'sim', available: true, caps: { meter: meter(['device']), pv: { powerW: () => 0, params: { kWp: 5 } } } };
const fridge: Device = { id: 'fridge', name: 'Fridge', adapter: 'shelly', available: true, caps: { meter: meter(['device']) } };

const HOUR = 3_600_000;
const house = (t: number) => (new Date(t).getUTCHours() < 6 ? 300 : 800);
const pv = (t: number) => (new Date(t).getUTCHours() >= 10 && new Date(t).getUTCHours() < 14 ? 2000 : 0);

/** 14 days of quarter-hourly register readings: the grid meter sees the house less the PV. */
function history(start: number, days: number) {
  const h = new EnergyHistory();
  const counters = { gridIn: 0, gridOut: 0, pvOut: 0 };
  for (let t = start; t <= start + days * 24 * HOUR; t += HOUR / 4) {
    const gridW = house(t) - pv(t);
    const r = (channel: MeterChannel, extra: Partial<MeterReading>): MeterReading => ({ time: t, channel, ...extra });
    h.add('p1', r('grid', { powerW: gridW, importWh: counters.gridIn, exportWh: counters.gridOut }));
    h.add('roof', r('device', { powerW: -pv(t), importWh: 0, exportWh: counters.pvOut }));
    if (gridW >= 0) counters.gridIn += gridW / 4;
    else counters.gridOut += -gridW / 4;
    counters.pvOut += pv(t) / 4;
  }
  return h;
}

describe('the base load learns from the grid meter', () => {
  const start = Date.parse('2026-06-01T00:00:00Z');
  const now = start + 14 * 24 * HOUR;

  it('house load = grid import − export − the planned devices’ own flows, per quarter', () => {
    const src = baseLoadSource([p1, roof, fridge]);
    expect(src).toEqual({ grid: ['p1:grid'], known: ['roof'] });
    const load = history(start, 14).houseLoad(['p1:grid'], ['roof'], now);
    expect(load.length).toBe(14 * 96);
    const noon = load.find((q) => q.start === start + 12 * HOUR)!;
    // the grid exported 1200 W at noon; with the 2000 W of PV added back the house drew 800 W
    expect(noon.wh).toBeCloseTo(200, 6);
    const night = load.find((q) => q.start === start + 3 * HOUR)!;
    expect(night.wh).toBeCloseTo(75, 6);
  });

  it('a site with a grid meter plans on the learnt house load, not the standard profile or the raw grid flow', () => {
    const h = history(start, 14);
    const devices = [p1, roof].map((device) => ({ device, config: {}, settings: {} }));
    const { problem, notes } = buildSiteProblem({ now, config, devices, limits: new Map(), history: h });
    const at = (hour: number) => problem.baseLoadW[problem.slots.findIndex((s) => s.start === now + hour * HOUR)];
    expect(at(12)).toBeGreaterThan(700);
    expect(at(12)).toBeLessThan(900);
    expect(at(3)).toBeGreaterThan(250);
    expect(at(3)).toBeLessThan(350);
    expect(notes.forecasts.baseLoad).toMatch(/learnt from the grid meter \(p1\)/);
  });

  it('without a grid meter the base-load meters are summed as before', () => {
    expect(baseLoadSource([roof, fridge])).toEqual({ meters: ['fridge'] });
  });
});
