import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { afterEach, describe, expect, it } from 'vitest';
import type { Direction, PriceSeries, TimeWindow } from '../../src/api/index.js';
import { emptyCell, intervalSet, totalCost } from '../../src/metering/costs.js';
import { flagsOf } from '../../src/metering/records.js';
import { evBaseline, hvacBaseline, loadShiftSavings, storageSavings, switchedBaseline } from '../../src/metering/savings.js';
import { MeteringService, type DeviceInfo } from '../../src/metering/service.js';
import { MeterStore } from '../../src/metering/store.js';

const H = 3_600_000;
const IMP = flagsOf('IMPORT', 'IMPORT');
const at = (iso: string) => Date.parse(iso);

/** A price series from `[fromIso, toIso, rate]` pieces, in hourly slots. */
function series(pieces: [string, string, number][]): PriceSeries {
  const out: PriceSeries = [];
  for (const [a, b, rate] of pieces) for (let t = at(a); t < at(b); t += H) out.push({ start: t, end: t + H, rate, confidence: 1 });
  return out;
}

const stores: MeterStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function service(prices: Record<Direction, PriceSeries>, devices: DeviceInfo[] = [], timezone = 'Europe/Berlin', sessions?: Record<string, { device_id: string; start: string; plug_in?: string }>) {
  const store = await MeterStore.open(mkdtempSync(join(tmpdir(), 'hf-savings-')));
  stores.push(store);
  const slice = (s: PriceSeries, w: TimeWindow) => s.filter((x) => x.end > w.start && x.start < w.end);
  return new MeteringService({
    store,
    site: { id: 'home', name: 'Home', timezone, currency: 'EUR' },
    prices: () => ({ series: (dir, w) => slice(prices[dir], w) }),
    devices: () => devices,
    ...(sessions ? { sessions: () => sessions } : {}),
  });
}

const rec = (device: string, start: string, end: string, watts: number, extra: Record<string, unknown> = {}) => ({ device_id: device, units: 'W', value: watts, start_time: start, end_time: end, ...extra });

describe('storage savings (the storage guide)', () => {
  // imported 5.5 kWh for 0.64, supplied 3.2 kWh worth 1.18: saving 0.54
  const prices = {
    IMPORT: series([
      ['2024-08-01T00:00:00Z', '2024-08-01T01:00:00Z', 0.3],
      ['2024-08-01T01:00:00Z', '2024-08-01T03:00:00Z', 0.1],
      ['2024-08-01T03:00:00Z', '2024-08-01T04:00:00Z', 0.16],
      ['2024-08-01T04:00:00Z', '2024-08-01T17:00:00Z', 0.3],
      ['2024-08-01T17:00:00Z', '2024-08-01T19:00:00Z', 0.38],
      ['2024-08-01T19:00:00Z', '2024-08-02T00:00:00Z', 0.35],
    ]),
    EXPORT: series([['2024-08-01T00:00:00Z', '2024-08-02T00:00:00Z', 0.08]]),
  };
  const records = [
    rec('battery', '2024-08-01T01:00:00Z', '2024-08-01T03:00:00Z', 2000, { direction: 'IMPORT', tariff_rate: 'IMPORT' }),
    rec('battery', '2024-08-01T03:00:00Z', '2024-08-01T04:00:00Z', 1500, { direction: 'IMPORT', tariff_rate: 'IMPORT' }),
    rec('battery', '2024-08-01T17:00:00Z', '2024-08-01T19:00:00Z', 1000, { direction: 'EXPORT', tariff_rate: 'IMPORT' }),
    rec('battery', '2024-08-01T19:00:00Z', '2024-08-01T20:00:00Z', 1200, { direction: 'EXPORT', tariff_rate: 'IMPORT' }),
  ];
  const day = { start: at('2024-08-01T00:00:00Z'), end: at('2024-08-02T00:00:00Z') };

  it('values supplied energy at the import rate and subtracts what charging cost', async () => {
    const m = await service(prices);
    const batch = await m.ingestIntervals(records);
    expect(batch).toMatchObject({ records_submitted: 4, records_accepted: 4, records_processed: 4, failed_records: [] });
    // the guide's two cost calls
    expect(m.costs('battery', { direction: 'IMPORT', aggregation: 'DAY', includeTariff: true, window: day }).total).toMatchObject({ energy: { value: 5500 }, tariff: { value: 0.64 } });
    expect(m.costs('battery', { direction: 'EXPORT', aggregation: 'DAY', includeTariff: true, window: day }).total).toMatchObject({ energy: { value: 3200 }, tariff: { value: 1.18 } });
    const s = m.savings('battery', day);
    expect(s).toMatchObject({
      kind: 'storage',
      baseline_cost: 1.18,
      actual_cost: 0.64,
      savings: 0.54,
      baseline_energy: { value: 3200 },
      actual_energy: { value: 5500 },
      storage: { imported: { energy: 5500, cost: 0.64 }, supplied: { energy: 3200, value: 1.18 }, exported: { energy: 0, value: 0 } },
    });
    // the guide calls 0.54 "54% savings"; of the 1.18 it would have cost, it is 45.76 %
    expect(s.savings_percentage).toBe(45.76);
  });

  it('adds export earnings and counts charging from local generation as free', async () => {
    const m = await service(prices);
    await m.ingestIntervals([
      ...records,
      rec('battery', '2024-08-01T12:00:00Z', '2024-08-01T13:00:00Z', 1000, { direction: 'IMPORT', tariff_rate: 'LOCAL' }),
      rec('battery', '2024-08-01T21:00:00Z', '2024-08-01T22:00:00Z', 2000, { direction: 'EXPORT', tariff_rate: 'EXPORT' }),
    ]);
    const s = m.savings('battery', day);
    expect(s).toMatchObject({ baseline_cost: 1.18, actual_cost: 0.48, savings: 0.7, storage: { imported: { energy: 6500, local_energy: 1000, cost: 0.64 }, exported: { energy: 2000, value: 0.16 } } });
  });

  it('a battery that stores PV where export pays: the FlatPeak figure and the saving net of the export income given up (issue 14.6)', async () => {
    const m = await service({ IMPORT: prices.IMPORT, EXPORT: series([['2024-08-01T00:00:00Z', '2024-08-01T12:00:00Z', 0.08], ['2024-08-01T12:00:00Z', '2024-08-01T14:00:00Z', 0.12], ['2024-08-01T14:00:00Z', '2024-08-02T00:00:00Z', 0.08]]) });
    // 4 kWh of PV stored 11:00–15:00Z (1 kWh an hour; export pays 0.08, 0.12, 0.12, 0.08), 3.6 kWh supplied 19:00–21:00Z at 0.35
    await m.ingestIntervals([
      rec('battery', '2024-08-01T11:00:00Z', '2024-08-01T15:00:00Z', 1000, { direction: 'IMPORT', tariff_rate: 'LOCAL' }),
      rec('battery', '2024-08-01T19:00:00Z', '2024-08-01T21:00:00Z', 1800, { direction: 'EXPORT', tariff_rate: 'IMPORT' }),
    ]);
    const s = m.savings('battery', day) as Record<string, unknown>;
    // FlatPeak: 3.6 × 0.35 = 1.26 saved, stored PV free; given up: 0.08 + 0.12 + 0.12 + 0.08 = 0.40; net 0.86
    expect(s).toMatchObject({ baseline_cost: 1.26, actual_cost: 0, savings: 1.26, flatpeak_savings: 1.26, forgone_export_value: 0.4, net_savings: 0.86, net_savings_percentage: 68.25, storage: { forgone_export: { energy: 4000, value: 0.4 } } });
    // the location's total shows both
    expect(m.savings('home', day)).toMatchObject({ savings: 1.26, net_savings: 0.86 });
  });

  it('is the pure sum of the flows', () => {
    const cells = Array.from({ length: 6 }, emptyCell);
    cells[0] = { ...emptyCell(), energyWh: 5500, cost: 0.64 };
    cells[1] = { ...emptyCell(), energyWh: 3200, cost: 1.18 };
    expect(storageSavings(cells)).toMatchObject({ baseline_cost: 1.18, actual_cost: 0.64, savings: 0.54 });
  });
});

describe('load shifting savings', () => {
  it('the HVAC guide: 96 kWh for €49 without shifting, 98 kWh for €34 with it — more energy, still cheaper', () => {
    const prices = { IMPORT: series([['2023-06-15T00:00:00Z', '2023-06-15T08:00:00Z', 0.25], ['2023-06-15T08:00:00Z', '2023-06-15T18:00:00Z', 0.75], ['2023-06-15T18:00:00Z', '2023-06-16T00:00:00Z', 0.25]]), EXPORT: [] };
    const w = { start: at('2023-06-15T00:00:00Z'), end: at('2023-06-16T00:00:00Z') };
    const baseline = intervalSet([
      { start: at('2023-06-15T08:00:00Z'), end: at('2023-06-15T18:00:00Z'), energyWh: 50_000, flags: IMP },
      { start: at('2023-06-15T18:00:00Z'), end: at('2023-06-16T00:00:00Z'), energyWh: 46_000, flags: IMP },
    ]);
    const actual = intervalSet([
      { start: at('2023-06-15T00:00:00Z'), end: at('2023-06-15T08:00:00Z'), energyWh: 79_000, flags: IMP },
      { start: at('2023-06-15T08:00:00Z'), end: at('2023-06-15T18:00:00Z'), energyWh: 19_000, flags: IMP },
    ]);
    const s = loadShiftSavings(totalCost(baseline, prices, w), totalCost(actual, prices, w));
    expect(s).toEqual({ baseline_cost: 49, actual_cost: 34, savings: 15, savings_percentage: 30.61, baseline_energy: { units: 'WH', value: 96_000 }, actual_energy: { units: 'WH', value: 98_000 } });
  });

  it('builds the EV baseline at full power from plug-in', () => {
    const b = evBaseline([{ plugIn: 1000, energyWh: 11_040 }], 11_040);
    expect([b.start[0], b.end[0], b.energy[0]]).toEqual([1000, 1000 + H, 11_040]);
    expect(() => evBaseline([], 0)).toThrow(/full power/);
  });

  it('builds the switched-load baseline at rated power from the default start', () => {
    const b = switchedBaseline([{ defaultStart: 0, energyWh: 3600 }, { defaultStart: 24 * H, energyWh: 0 }], 1800);
    expect(b.n).toBe(1);
    expect([b.start[0], b.end[0], b.energy[0]]).toEqual([0, 2 * H, 3600]);
  });

  it('smooths HVAC energy over ±3 hours and keeps its total', () => {
    const q = 15 * 60_000;
    const energy = new Float64Array(96 + 24);
    energy[60] = 1000; // one burst of pre-cooling
    const b = hvacBaseline(energy, 0, { start: 12 * q, end: 108 * q });
    expect([...b.energy].reduce((a, x) => a + x)).toBeCloseTo(1000, 9);
    expect(b.n).toBe(25);
    expect(b.start[0]).toBe(48 * q);
  });

  it('EV: charging at night instead of at full power from the evening plug-in, a session spanning midnight', async () => {
    const prices = { IMPORT: series([['2024-08-01T00:00:00Z', '2024-08-01T16:00:00Z', 0.2], ['2024-08-01T16:00:00Z', '2024-08-01T20:00:00Z', 0.4], ['2024-08-01T20:00:00Z', '2024-08-03T00:00:00Z', 0.2]]), EXPORT: [] };
    const m = await service(prices, [{ id: 'ev', config: { adapter: 'ocpp', max_current_a: 16, phases: 3, voltage: 230 } }]);
    // plugged in at 18:00 Berlin (16:00Z), idle until 01:00, then 5 kW for two hours
    const records = [];
    for (let t = at('2024-08-01T16:00:00Z'); t < at('2024-08-02T01:00:00Z'); t += H) records.push({ device_id: 'ev', units: 'WH', value: 0, start_time: new Date(t).toISOString(), end_time: new Date(t + H).toISOString(), session_reference_id: 'S1' });
    records.push(rec('ev', '2024-08-02T01:00:00Z', '2024-08-02T03:00:00Z', 5000, { session_reference_id: 'S1' }));
    await m.ingestIntervals(records);
    const s = m.savings('ev', { start: at('2024-08-01T00:00:00+02:00'), end: at('2024-08-02T00:00:00+02:00') });
    // baseline: 10 kWh at 11,040 W from 16:00Z, all at 0.40; actual: 10 kWh at 0.20
    expect(s).toMatchObject({ kind: 'ev', baseline_cost: 4, actual_cost: 2, savings: 2, savings_percentage: 50, baseline_energy: { value: 10_000 }, actual_energy: { value: 10_000 }, full_power_w: 11040 });
    expect((s as { sessions?: unknown }).sessions).toEqual([{ session_reference_id: 'S1', plug_in_time: '2024-08-01T18:00:00+02:00', energy: 10_000 }]);
    // the session's cost by local day: its energy all falls on the second day
    const byDay = m.sessionCosts('S1', { direction: 'IMPORT', aggregation: 'DAY', includeTariff: false });
    expect(byDay.data.map((r) => [r.start_time, r.energy.value, r.tariff.value])).toEqual([
      ['2024-08-01T18:00:00+02:00', 0, 0],
      ['2024-08-02T00:00:00+02:00', 10_000, 2],
    ]);
    // a session plugged in before the window is counted in the window of its plug-in
    expect(m.savings('ev', { start: at('2024-08-02T00:00:00+02:00'), end: at('2024-08-03T00:00:00+02:00') }).savings).toBe(0);
  });

  it('EV: the plug-in the hub recorded, not the first metered energy, starts the baseline (issue 14.6)', async () => {
    const prices = { IMPORT: series([['2024-08-01T00:00:00Z', '2024-08-01T16:00:00Z', 0.2], ['2024-08-01T16:00:00Z', '2024-08-01T20:00:00Z', 0.4], ['2024-08-01T20:00:00Z', '2024-08-03T00:00:00Z', 0.2]]), EXPORT: [] };
    const devices = [{ id: 'ev', config: { adapter: 'ocpp', max_current_a: 16, phases: 3, voltage: 230 } }];
    const records = [rec('ev', '2024-08-02T01:00:00Z', '2024-08-02T03:00:00Z', 5000, { session_reference_id: 'S1' })];
    const day = { start: at('2024-08-01T00:00:00+02:00'), end: at('2024-08-02T12:00:00+02:00') };
    // plugged in at 18:00 Berlin (Preparing), transaction from 18:02, energy only from 03:00 Berlin
    const known = await service(prices, devices, 'Europe/Berlin', { S1: { device_id: 'ev', start: '2024-08-01T16:02:00Z', plug_in: '2024-08-01T16:00:00Z' } });
    await known.ingestIntervals(records);
    // baseline: 10 kWh at 11,040 W from 16:00Z, all at 0.40 = 4.00; actual 10 kWh at 0.20 = 2.00
    expect(known.savings('ev', day)).toMatchObject({ baseline_cost: 4, actual_cost: 2, savings: 2, sessions: [{ session_reference_id: 'S1', plug_in_time: '2024-08-01T18:00:00+02:00' }] });
    // without the hub's record the plug-in is the first record: no saving can be seen
    const unknown = await service(prices, devices);
    await unknown.ingestIntervals(records);
    expect(unknown.savings('ev', day)).toMatchObject({ baseline_cost: 2, actual_cost: 2, savings: 0 });
  });

  it('switched load: a dishwasher run at 02:00 instead of at the start of its window', async () => {
    const prices = { IMPORT: series([['2024-08-01T00:00:00Z', '2024-08-01T22:00:00Z', 0.4], ['2024-08-01T22:00:00Z', '2024-08-02T04:00:00Z', 0.2], ['2024-08-02T04:00:00Z', '2024-08-03T00:00:00Z', 0.4]]), EXPORT: [] };
    const m = await service(prices, [{ id: 'dishwasher', config: { adapter: 'tasmota', rated_power_w: 1800, schedule: { hours: 2, window: { from: '20:00', to: '06:00' } } } }]);
    await m.ingestIntervals([rec('dishwasher', '2024-08-02T00:00:00Z', '2024-08-02T02:00:00Z', 1800), rec('dishwasher', '2024-08-01T10:00:00Z', '2024-08-01T11:00:00Z', 100)]);
    const s = m.savings('dishwasher', { start: at('2024-08-01T00:00:00+02:00'), end: at('2024-08-02T00:00:00+02:00') });
    // baseline: 3.6 kWh from 20:00 Berlin (18:00Z) at 0.40 = 1.44, plus the unshifted 0.1 kWh at 0.40
    expect(s).toMatchObject({ kind: 'switched_load', baseline_cost: 1.48, actual_cost: 0.76, savings: 0.72, baseline_energy: { value: 3700 }, actual_energy: { value: 3700 } });
  });

  it('HVAC: pre-cooling before the dear hours saves against a setpoint-holding thermostat', async () => {
    const prices = { IMPORT: series([['2024-08-01T00:00:00Z', '2024-08-01T13:00:00Z', 0.2], ['2024-08-01T13:00:00Z', '2024-08-01T16:00:00Z', 0.6], ['2024-08-01T16:00:00Z', '2024-08-02T00:00:00Z', 0.2]]), EXPORT: [] };
    const m = await service(prices, [{ id: 'ac', config: { adapter: 'zigbee2mqtt', comfort: { min_c: 22, max_c: 25 } } }]);
    await m.ingestIntervals([
      rec('ac', '2024-08-01T10:00:00Z', '2024-08-01T13:00:00Z', 1500),
      rec('ac', '2024-08-01T13:00:00Z', '2024-08-01T16:00:00Z', 500),
      rec('ac', '2024-08-01T16:00:00Z', '2024-08-01T18:00:00Z', 1000),
    ]);
    const s = m.savings('ac', { start: at('2024-08-01T00:00:00Z'), end: at('2024-08-02T00:00:00Z') });
    expect(s.kind).toBe('hvac');
    expect(s.actual_cost).toBeCloseTo(4.5 * 0.2 + 1.5 * 0.6 + 2 * 0.2, 9);
    expect(s.baseline_energy.value).toBeCloseTo(8000, 6);
    expect(s.savings).toBeGreaterThan(0.3);
  });

  it('sums the devices for the location', async () => {
    const prices = { IMPORT: series([['2024-08-01T00:00:00Z', '2024-08-02T00:00:00Z', 0.3]]), EXPORT: [] };
    const m = await service(prices, [{ id: 'house', config: { adapter: 'sim_load' } }]);
    await m.ingestIntervals([rec('house', '2024-08-01T10:00:00Z', '2024-08-01T11:00:00Z', 1000), rec('battery', '2024-08-01T17:00:00Z', '2024-08-01T18:00:00Z', 1000, { direction: 'EXPORT', tariff_rate: 'IMPORT' })]);
    const s = m.savings('home', { start: at('2024-08-01T00:00:00Z'), end: at('2024-08-02T00:00:00Z') });
    expect(s).toMatchObject({ kind: 'location', baseline_cost: 0.6, actual_cost: 0.3, savings: 0.3 });
    expect((s as { devices: { device_id: string; kind: string; savings: number }[] }).devices.map((d) => [d.device_id, d.kind, d.savings])).toEqual([
      ['house', 'meter', 0],
      ['battery', 'storage', 0.3],
    ]);
  });
});

describe('site savings against the battery’s own mode and no battery (issue 15.6)', () => {
  /** Hourly prices over a local day: 0.20 from 00:00 to 06:00, 0.30 after; export 0.08. */
  const local = (day: string, hh: number) => DateTime.fromISO(`${day}T${String(hh).padStart(2, '0')}:00`, { zone: 'Europe/Berlin' }).toUTC().toISO()!;
  const pricesOn = (day: string) => {
    const start = local(day, 0);
    const end = DateTime.fromISO(`${day}T00:00`, { zone: 'Europe/Berlin' }).plus({ days: 1 }).toUTC().toISO()!;
    return { IMPORT: series([[start, local(day, 6), 0.2], [local(day, 6), end, 0.3]]), EXPORT: series([[start, end, 0.08]]), window: { start: at(start), end: at(end) } };
  };
  const battery = { id: 'battery', config: { adapter: 'sim_battery', capacity_wh: 10_000, soc_min_pct: 0, max_charge_w: 5000, max_discharge_w: 5000, charge_efficiency: 0.9, discharge_efficiency: 1 } };
  /**
   * The house without a battery: 1 kW from 04:00 to 05:00, 2 kW of PV surplus 10:00–14:00, 1.5 kW
   * 18:00–22:00. What homeflex did: charged 2 kW from the grid 04:00–06:00, stored 1.5 kW of the
   * surplus (exporting 0.5 kW), covered the evening from the battery.
   */
  const day = (d: string, gridMeter: boolean) => [
    ...(gridMeter
      ? [
          rec('', local(d, 4), local(d, 5), 3000, { device_id: undefined, location_id: 'home' }),
          rec('', local(d, 5), local(d, 6), 2000, { device_id: undefined, location_id: 'home' }),
          rec('', local(d, 10), local(d, 14), 500, { device_id: undefined, location_id: 'home', direction: 'EXPORT' }),
        ]
      : [
          rec('house', local(d, 4), local(d, 5), 1000),
          rec('house', local(d, 18), local(d, 22), 1500),
          rec('pv', local(d, 10), local(d, 14), 2000, { direction: 'EXPORT', tariff_rate: 'LOCAL' }),
        ]),
    rec('battery', local(d, 4), local(d, 6), 2000),
    rec('battery', local(d, 10), local(d, 14), 1500, { tariff_rate: 'LOCAL' }),
    rec('battery', local(d, 18), local(d, 22), 1500, { direction: 'EXPORT', tariff_rate: 'IMPORT' }),
  ];
  // actual: 5 kWh at 0.20 − 2 kWh × 0.08 = 0.84. none: 1 kWh × 0.20 + 6 kWh × 0.30 − 8 kWh × 0.08 = 1.36.
  // self-consumption (empty at the start, 90 % in): the 04:00 kWh from the grid (0.20), the surplus
  // stored (4 × 2 kWh × 0.9 = 7.2 kWh), the evening's 6 kWh from it: 0.20.
  for (const [d, hours, nextOffset] of [['2026-03-29', 23, '+02:00'], ['2026-10-25', 25, '+01:00']] as const) {
    it(`on ${d} (${hours} hours), from the grid meter: 0.52 saved against no battery, 0.64 lost against the battery's own mode`, async () => {
      const p = pricesOn(d);
      expect((p.window.end - p.window.start) / H).toBe(hours);
      const m = await service(p, [battery]);
      expect((await m.ingestIntervals(day(d, true))).failed_records).toEqual([]);
      const own = m.siteSavings(p.window, 'self_consumption');
      expect(own).toMatchObject({
        baseline: 'self_consumption',
        measured_by: 'grid_meter',
        actual_cost: 0.84,
        baseline_cost: 0.2,
        savings: -0.64,
        savings_vs_none: 0.52,
        savings_vs_self_consumption: -0.64,
        actual: { cost: 0.84, import_wh: 5000, export_wh: 2000 },
        baselines: { none: { cost: 1.36, import_wh: 7000, export_wh: 8000 }, self_consumption: { cost: 0.2, import_wh: 1000, export_wh: 0 } },
        battery: { device_ids: ['battery'], capacity_wh: 10_000, start_wh: 0 },
      });
      expect(own.end_time).toBe(`${DateTime.fromISO(d).plus({ days: 1 }).toISODate()}T00:00:00${nextOffset}`);
      expect(m.siteSavings(p.window, 'none')).toMatchObject({ baseline: 'none', baseline_cost: 1.36, savings: 0.52 });
    });
  }

  it('a shifted load counts in both baselines as its own baseline says', async () => {
    const p = pricesOn('2026-10-25');
    const ev = { id: 'ev', config: { adapter: 'ocpp', max_current_a: 16, phases: 3, voltage: 230 } };
    const m = await service(p, [battery, ev], 'Europe/Berlin', { S1: { device_id: 'ev', start: local('2026-10-25', 5) } });
    // the car plugged in at 05:00 (0.20) but charged 5 kWh 23:00–24:00 (0.30), seen by the grid meter too:
    // its own baseline (11,040 W from 05:00) costs 1.00, it paid 1.50: the shift lost 0.50
    const midnight = new Date(p.window.end).toISOString();
    await m.ingestIntervals([
      ...day('2026-10-25', true),
      rec('', local('2026-10-25', 23), midnight, 5000, { device_id: undefined, location_id: 'home' }),
      rec('ev', local('2026-10-25', 23), midnight, 5000, { session_reference_id: 'S1' }),
    ]);
    expect(m.savings('ev', p.window)).toMatchObject({ baseline_cost: 1, actual_cost: 1.5, savings: -0.5 });
    // paid 0.84 + 1.50 = 2.34; no battery 1.36 + 1.50 − 0.50 = 2.36; own mode: 1.2 kWh left in the
    // battery covers part of the car, 3.8 kWh × 0.30 = 1.14, so 0.20 + 1.14 − 0.50 = 0.84
    expect(m.siteSavings(p.window, 'none')).toMatchObject({
      actual_cost: 2.34,
      baselines: { none: { cost: 2.36 }, self_consumption: { cost: 0.84 } },
      savings: 0.02,
      savings_vs_none: 0.02,
      savings_vs_self_consumption: -1.5,
      shifted_loads: [{ device_id: 'ev', kind: 'ev', savings: -0.5 }],
    });
  });

  it('without a grid meter, from the device meters: the same figures, and a warning saying so', async () => {
    const p = pricesOn('2026-10-25');
    const m = await service(p, [battery]);
    await m.ingestIntervals(day('2026-10-25', false));
    const s = m.siteSavings(p.window, 'self_consumption');
    expect(s).toMatchObject({ measured_by: 'device_meters', actual_cost: 0.84, savings_vs_none: 0.52, savings_vs_self_consumption: -0.64 });
    expect(s.warnings).toEqual([expect.stringMatching(/no grid meter/)]);
  });
});
