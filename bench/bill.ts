import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import type { Logger } from '../src/api/index.js';
import { Hub } from '../src/core/host.js';
import { fmtMs, median, timeIt, type BenchRow, type BenchSection } from './types.js';

const quietLog: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quietLog };
const ZONE = 'Europe/Berlin';
const Q = 15 * 60_000;

/** A §14a module 3 grid fee schedule, levies, VAT, standing charges and a Flemish-style capacity charge: every part of the bill. */
const SITE = `site: { id: home, timezone: ${ZONE}, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.2 }
  export: { type: fixed, rate: 0.0786 }
  vat: 19
  grid_fees:
    - operator: bench
      schedule:
        - months: [1, 2, 3, 10, 11, 12]
          rates: [{ from: "00:00", to: "06:00", rate: 0.032, window: low }, { from: "06:00", to: "17:00", rate: 0.08, window: standard }, { from: "17:00", to: "21:00", rate: 0.16, window: high }, { from: "21:00", to: "24:00", rate: 0.08, window: standard }]
        - months: [4, 5, 6, 7, 8, 9]
          rates: [{ from: "00:00", to: "24:00", rate: 0.08, window: standard }]
  levies: [{ name: Stromsteuer, rate: 0.0205 }]
  standing_charges: [{ name: Grundpreis, amount: 0.4, per: day }, { name: meter, amount: 5, per: month }]
  capacity_charge: { type: monthly_peak, price_per_kw_year: 40.4 }
  export_rules: { no_pay_at_negative_price: true }
`;

const row = (name: string, runs: number[], targetMs: number): BenchRow => {
  const sorted = [...runs].sort((a, b) => a - b);
  const m = median(runs);
  return { name, value: `${fmtMs(m)} median (min ${fmtMs(sorted[0])}, p90 ${fmtMs(sorted[Math.floor(runs.length * 0.9)])}, ${runs.length} runs)`, target: `< ${targetMs} ms`, ok: m < targetMs };
};

/** GET /bill over HTTP on a year of 15-minute grid-meter records (import and export) and two devices. */
export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bench-bill-'));
  const hub = new Hub({ configText: SITE, logger: quietLog, override: (c) => void (c.storage.dir = dir) });
  await hub.start();
  try {
    const api = `${hub.url}/api/v1`;
    const start = DateTime.fromISO('2025-01-01T00:00', { zone: ZONE }).toMillis();
    const end = DateTime.fromISO('2026-01-01T00:00', { zone: ZONE }).toMillis();
    let records: object[] = [];
    let sent = 0;
    const flush = async () => {
      const r = await fetch(`${api}/meters/interval`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(records) });
      if (!r.ok) throw new Error(`PUT /meters/interval: ${r.status}`);
      sent += records.length;
      records = [];
    };
    for (let t = start, k = 0; t < end; t += Q, k++) {
      const hour = new Date(t).getUTCHours();
      const importWh = 100 + (k % 96 === 70 ? 900 : 0) + ((k * 37) % 11) * 10;
      const exportWh = hour >= 9 && hour < 15 ? 300 : 0;
      const times = { start_time: new Date(t).toISOString(), end_time: new Date(t + Q).toISOString() };
      records.push({ location_id: 'home', units: 'WH', value: importWh, ...times }, { location_id: 'home', units: 'WH', value: exportWh, direction: 'EXPORT', ...times });
      if (k % 96 === 70) records.push({ device_id: 'ev', units: 'WH', value: 800, ...times }, { device_id: 'heat-pump', units: 'WH', value: 100, ...times });
      if (records.length >= 9_000) await flush();
    }
    if (records.length) await flush();
    const get = async (path: string) => {
      const r = await fetch(`${api}${path}`);
      if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
      return (await r.json()) as { total: number; capacity_charges: unknown[] };
    };
    const month = await get('/bill/home?month=2025-11');
    const rows = [
      row('GET /bill?month=2025-11: energy and grid fees by §14a window, levies, standing charges, 12-month capacity mean (HTTP)', await timeIt(() => get('/bill/home?month=2025-11'), 20, 3), 200),
      row('GET /bill for a whole year, 12 capacity months (HTTP)', await timeIt(() => get(`/bill/home?start_time=${encodeURIComponent(new Date(start).toISOString())}&end_time=${encodeURIComponent(new Date(end).toISOString())}`), 5, 1), 2000),
    ];
    return {
      title: 'The bill (issue 17): GET /bill on a year of 15-minute records',
      rows,
      notes: [
        `${sent.toLocaleString('en')} records sent through PUT /meters/interval: a year of grid import and export per quarter hour (Europe/Berlin), and an EV and a heat pump in each day's peak quarter; November's bill ${month.total} EUR.`,
        'Tariff: fixed energy 0.20, a §14a module 3 schedule (low/standard/high in Q1 and Q4), Stromsteuer, 19 % VAT, two standing charges, a monthly_peak capacity charge (the 12-month mean reads 12 months of buckets).',
        `Load average while measuring: ${loadavg().map((x) => x.toFixed(1)).join(', ')} on the machine's cores (shared: with a load above the core count every figure runs several times slower).`,
      ],
    };
  } finally {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
