import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { capacitySoFar } from '../../src/metering/bill-service.js';
import { reportCommand } from '../../src/metering/report.js';
import { runCommand } from '../peers/cli-run.js';

/**
 * The bill reproduced through the running hub (real HTTP on 127.0.0.1, port chosen at run time): a
 * Flemish site's January 2026 sent as quarter-hour grid-meter records, then GET /bill and
 * `homeflex report --bill --month 2026-01`, which must equal the hand-computed bill to the cent
 * (the same month as the worked example in bill.test.ts: 88.18 EUR).
 */
const quietLog: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quietLog };
const ZONE = 'Europe/Brussels';
const SITE = `
site: { id: home, name: Home, timezone: ${ZONE}, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.12 }
  export: { type: fixed, rate: 0.04 }
  vat: 6
  grid_fees:
    - operator: Fluvius Antwerpen
      rates: [{ from: "00:00", to: "24:00", rate: 0.05, window: all }]
  levies: [{ name: excise, rate: 0.02 }]
  standing_charges: [{ name: data management, amount: 1.5, per: month }]
  capacity_charge:
    type: monthly_peak
    price_per_kw_year: 40.4
    prior_peaks_kw: { "2025-02": 3.0, "2025-03": 2.0, "2025-04": 3.6, "2025-05": 2.8, "2025-06": 2.5, "2025-07": 2.2, "2025-08": 2.6, "2025-09": 3.1, "2025-10": 3.3, "2025-11": 3.9, "2025-12": 4.0 }
`;

let hub: Hub;
let dir: string;
const local = (iso: string) => DateTime.fromISO(iso, { zone: ZONE }).toMillis();
const Q = 15 * 60_000;
const peakAt = local('2026-01-14T18:00');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'homeflex-bill-api-'));
  hub = new Hub({ configText: SITE, clock: new ManualClock('2026-02-03T09:00:00Z'), logger: quietLog, override: (c) => void (c.storage.dir = dir) });
  await hub.start();
  // the grid meter: 0.5 kW all month (125 Wh a quarter), 4.2 kW in one quarter, 4.0 kW in another
  const records = [];
  const secondAt = local('2026-01-20T19:00');
  for (let t = local('2026-01-01T00:00'); t < local('2026-02-01T00:00'); t += Q) {
    const kw = t === peakAt ? 4.2 : t === secondAt ? 4.0 : 0.5;
    records.push({ location_id: 'home', units: 'WH', value: kw * 250, start_time: new Date(t).toISOString(), end_time: new Date(t + Q).toISOString() });
  }
  // the devices over the peak quarter: the EV drew 0.9 kWh of its 1.05 kWh
  records.push({ device_id: 'ev', units: 'WH', value: 900, start_time: new Date(peakAt).toISOString(), end_time: new Date(peakAt + Q).toISOString() });
  records.push({ device_id: 'heat-pump', units: 'WH', value: 75, start_time: new Date(peakAt).toISOString(), end_time: new Date(peakAt + Q).toISOString() });
  const r = await fetch(`${hub.url}/api/v1/meters/interval`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(records) });
  const batch = (await r.json()) as { records_processed: number };
  expect(batch.records_processed).toBe(records.length);
});
afterAll(async () => {
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const get = async (path: string): Promise<{ status: number; body: any }> => {
  const r = await fetch(`${hub.url}/api/v1${path}`);
  return { status: r.status, body: await r.json() };
};

describe('GET /bill/{location_id}?month=', () => {
  it('answers the hand-computed bill to the cent', async () => {
    const { status, body } = await get('/bill/home?month=2026-01');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      object: 'bill',
      month: '2026-01',
      start_time: '2026-01-01T00:00:00+01:00',
      end_time: '2026-02-01T00:00:00+01:00',
      measured_by: 'grid_meter',
      import_kwh: 373.8,
      energy: [{ window: 'all', kwh: 373.8, rate: 0.12, amount: 44.86 }],
      grid_fees: [{ window: 'all', kwh: 373.8, rate: 0.05, amount: 18.69 }],
      levies: [{ name: 'excise', kwh: 373.8, rate: 0.02, amount: 7.48 }],
      standing_charges: [{ name: 'data management', per: 'month', count: 1, rate: 1.5, amount: 1.5 }],
      net: 83.19,
      vat_percent: 6,
      vat: 4.99,
      total: 88.18,
    });
    const cap = body.capacity_charges[0];
    expect(cap).toMatchObject({ month: '2026-01', method: 'monthly_peak', month_peak_kw: 4.2, amount: 10.66 });
    expect(cap.measure_kw).toBeCloseTo(38 / 12, 5);
    expect(cap.peaks).toEqual([{ kw: 4.2, start_time: '2026-01-14T18:00:00+01:00', end_time: '2026-01-14T18:15:00+01:00', driven_by: { device_id: 'ev', kwh: 0.9, share: 0.857143 } }]);
  });

  it('rejects a bad month and an unknown location by field', async () => {
    expect((await get('/bill/home?month=2026-13')).body).toMatchObject({ field: 'querystring.month', message: 'querystring.month: must be a month YYYY-MM, got "2026-13"' });
    expect((await get('/bill/elsewhere?month=2026-01')).status).toBe(404);
    expect((await get('/bill/home?month=2026-01&colour=red')).body).toMatchObject({ field: 'querystring.colour' });
  });
});

describe("the dashboard's Costs view: the bill card's lines", () => {
  it('are the API bill, part by part, summing to the total; the peak sentence names the EV', async () => {
    // @ts-expect-error the page's modules are plain JavaScript
    const view = (await import('../../plugins/dashboard/public/js/views/costs.js')) as { billLines: (b: object) => string[][]; peakSentences: (b: object) => string[] };
    const { body } = await get('/bill/home?month=2026-01');
    const rows = view.billLines(body);
    expect(rows.map((r) => r[0])).toEqual(['Energy', 'Grid fee', 'Levy', 'Standing charge', 'Capacity charge', 'Net', 'VAT']);
    const parts = rows.filter((r) => r[0] !== 'Net' && r[0] !== 'VAT').reduce((a, r) => a + Number(r[3]), 0);
    expect(Math.round(parts * 100) / 100).toBe(83.19);
    expect(Math.round((parts + Number(rows.find((r) => r[0] === 'VAT')![3])) * 100) / 100).toBe(body.total);
    expect(view.peakSentences(body)).toEqual(['Peak 4.2 kW on 2026-01-14T18:00:00+01:00, driven by ev (86 % of the import then)']);
  });
});

describe('the capacity charge so far, for the planner', () => {
  it('carries the peak already reached this month', () => {
    const src = { store: hub.services.metering!.store, site: hub.services.site, prices: () => hub.services.tariffs };
    // on 10 January the month's peak is still 0.5 kW, counted as the 2.5 kW minimum
    const early = capacitySoFar(src, local('2026-01-10T00:00'))!;
    expect(early.month).toBe('2026-01');
    expect(early.outcome.monthKw).toBe(2.5);
    // on 20 January the 4.2 kW quarter of the 14th is the peak to beat
    const later = capacitySoFar(src, local('2026-01-20T00:00'))!;
    expect(later.outcome.peaks).toEqual([{ kw: 4.2, start: peakAt, end: peakAt + Q }]);
    expect(later.outcome.charge).toBeCloseTo((40.4 * 38) / 144, 9);
  });
});

describe('site savings cost energy with the same bill', () => {
  it('what the site paid includes the all-in rates and the capacity charge of its own peak', async () => {
    const q = new URLSearchParams({ baseline: 'none', start_time: '2025-12-31T23:00:00Z', end_time: '2026-01-31T23:00:00Z' });
    const { status, body } = await get(`/savings/home?${q}`);
    expect(status).toBe(200);
    // 373.8 kWh × (0.12 + 0.05 + 0.02) × 1.06 = 75.28332, + capacity 40.4 × 38 / 144 × 1.06 = 11.30078 → 86.5841
    // (the bill's 88.18 adds the standing charge 1.50 × 1.06 = 1.59 and rounds each line to the cent)
    expect(body.actual.cost).toBeCloseTo(86.5841, 4);
    expect(body.measured_by).toBe('grid_meter');
  });
});

describe('GET /tariffs/rates with bill parts', () => {
  it('answers the all-in rate of each interval with its parts', async () => {
    const q = new URLSearchParams({ start_time: '2026-01-14T17:00:00Z', end_time: '2026-01-14T18:00:00Z' });
    const { body } = await get(`/tariffs/rates/home?${q}`);
    // (0.12 + 0.05 + 0.02) × 1.06 = 0.2014
    expect(body.data).toEqual([
      {
        valid_from: '2026-01-14T17:00:00.000Z',
        valid_to: '2026-01-14T18:00:00.000Z',
        tariff: { rate: 0.2014, confidence: 1 },
        components: { energy: 0.12, grid_fee: 0.05, window: 'all', operator: 'Fluvius Antwerpen', levies: [{ name: 'excise', rate: 0.02 }], vat_percent: 6 },
      },
    ]);
    expect(body.bill_terms).toMatchObject({ vat_percent: 6, capacity_charge: { type: 'monthly_peak', price_per_kw_year: 40.4, minimum_kw: 2.5, average_months: 12, interval_minutes: 15 } });
  });
});

describe('homeflex report --bill --month 2026-01', () => {
  const run = (argv: string[]) => runCommand(reportCommand, argv, { env: {} });

  it('prints every line of the bill summing to the total, and the peak with the device that drove it', async () => {
    const { code, out, err } = await run(['--bill', '--month', '2026-01', '--url', hub.url]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const amount = (section: string) => Number(out.split('\n').find((l) => l.startsWith(section))!.trim().split(/\s+/).pop());
    expect(amount('energy')).toBe(44.86);
    expect(amount('grid fee')).toBe(18.69);
    expect(amount('levy')).toBe(7.48);
    expect(amount('standing')).toBe(1.5);
    expect(amount('capacity')).toBe(10.66);
    expect(amount('net')).toBe(83.19);
    expect(amount('VAT')).toBe(4.99);
    expect(amount('total')).toBe(88.18);
    expect(out).toContain('capacity 2026-01: peak 4.2 kW 2026-01-14T18:00:00+01:00 to 18:15:00+01:00, driven by ev (0.900 kWh, 86 % of the site\'s import then)');
  });

  it('writes CSV whose lines add up to the total', async () => {
    const { code, out } = await run(['--bill', '--month', '2026-01', '--url', hub.url, '--csv']);
    expect(code).toBe(0);
    const rows = out.trim().split('\n').slice(1).map((l) => l.split(','));
    const amount = (r: string[]) => Number(r[r.length - 1]);
    const lines = rows.filter((r) => !['net', 'VAT', 'total'].includes(r[0]));
    const vat = amount(rows.find((r) => r[0] === 'VAT')!);
    const total = amount(rows.find((r) => r[0] === 'total')!);
    expect(Math.round((lines.reduce((a, r) => a + amount(r), 0) + vat) * 100) / 100).toBe(total);
    expect(total).toBe(88.18);
  });

  it('needs --month with --bill', async () => {
    const { code, err } = await run(['--bill', '--url', hub.url]);
    expect(code).toBe(2);
    expect(err).toMatch(/^homeflex report --bill needs --month YYYY-MM/);
  });
});
