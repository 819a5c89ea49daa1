import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnergyCharts } from '../plugins/tariffs/providers.js';
import type { Logger, PriceSeries } from '../src/api/index.js';
import { packageRoot } from '../src/cli.js';
import { Hub } from '../src/core/host.js';
import { energySchedule, type ScheduleDevice } from '../src/optimiser/schedule.js';
import { slotsByThreshold, slotsByTime } from '../src/optimiser/slots.js';
import { applySurcharge } from '../src/tariff/surcharge.js';
import { fmtMs, median, timeIt, type BenchRow, type BenchSection } from './types.js';

const quietLog: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quietLog };

/** 92 days of real DE-LU 15-minute day-ahead prices (2025-10-01 to 2025-12-31) as household rates. */
function realPrices(): PriceSeries {
  const dir = join(packageRoot, 'test', 'fixtures', 'tariffs', 'energy-charts');
  const files = readdirSync(dir).filter((f) => /^2025-1[0-2]-\d\d\.json$/.test(f)).sort();
  return files.flatMap((f) => parseEnergyCharts(readFileSync(join(dir, f), 'utf8'))).map((s) => ({ start: s.start, end: s.end, rate: applySurcharge(s.price, { fixed: 0.17, vat: 19 }), confidence: 1 }));
}

const row = (name: string, runs: number[], targetMs: number): BenchRow => {
  const m = median(runs);
  const sorted = [...runs].sort((a, b) => a - b);
  return { name, value: `${fmtMs(m)} median (min ${fmtMs(sorted[0])}, p90 ${fmtMs(sorted[Math.floor(runs.length * 0.9)])}, ${runs.length} runs)`, target: `< ${targetMs} ms`, ok: m < targetMs };
};

/** Slots and schedules over a 90-day window of real 15-minute prices: in-process and over HTTP. */
export async function run(): Promise<BenchSection> {
  const series = realPrices();
  const window = { start: Date.parse('2025-10-01T00:00:00Z'), end: Date.parse('2025-12-30T00:00:00Z') };
  const slotsInWindow = series.filter((s) => s.start >= window.start && s.end <= window.end).length;
  const exportSeries = series.map((s) => ({ ...s, rate: Math.round((s.rate * 0.4) * 1e6) / 1e6 }));
  const devices: ScheduleDevice[] = [
    { id: 'ev', direction: 'IMPORT', window, maxPowerW: 11000, energyWh: 400_000 },
    { id: 'heat-pump', direction: 'IMPORT', window, maxPowerW: 5000, energyWh: 900_000 },
    { id: 'battery', direction: 'EXPORT', window, maxPowerW: 5000, energyWh: 300_000 },
  ];
  const schedule = () => energySchedule({ devices, siteMaxPowerW: 15000, importSeries: series, exportSeries });
  const scheduled = schedule();
  const rows = [
    row('slots by time, LOW 240 min split, 90 days (in-process)', await timeIt(() => slotsByTime(series, { window, segment: 'LOW', durationMinutes: 240 }), 100, 20), 2),
    row('slots by time, HIGH 180 min continuous, 90 days (in-process)', await timeIt(() => slotsByTime(series, { window, segment: 'HIGH', durationMinutes: 180, continuous: true }), 100, 20), 2),
    row('slots by threshold, LOW relative 0.25, 90 days (in-process)', await timeIt(() => slotsByThreshold(series, { window, segment: 'LOW', relative: 0.25 }), 100, 20), 2),
    row('energy schedule, 3 devices (2 import, 1 export), shared 15 kW, 90 days (in-process)', await timeIt(schedule, 100, 40), 5),
  ];

  // over HTTP: the same prices imported through the API into a hub on 127.0.0.1
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bench-tariff-'));
  const hub = new Hub({
    configText: 'site: { id: home, timezone: Europe/Berlin, currency: EUR }\nhttp: { port: 0 }\n',
    logger: quietLog,
    override: (c) => void (c.storage.dir = dir),
  });
  await hub.start();
  try {
    const api = `${hub.url}/api/v1`;
    for (const [direction, s] of [['IMPORT', series], ['EXPORT', exportSeries]] as const) {
      const data = s.map((x) => ({ valid_from: new Date(x.start).toISOString(), valid_to: new Date(x.end).toISOString(), rate: x.rate }));
      const r = await fetch(`${api}/tariffs/rates/home?direction=${direction}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ currency_code: 'EUR', data }) });
      if (!r.ok) throw new Error(`price import failed: ${r.status} ${await r.text()}`);
    }
    const q = `start_time=${new Date(window.start).toISOString()}&end_time=${new Date(window.end).toISOString()}`;
    const get = (path: string) => async () => {
      const r = await fetch(`${api}${path}`);
      if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    };
    const body = JSON.stringify({
      location_id: 'home',
      max_power: { units: 'W', value: 15000 },
      data: devices.map((d) => ({ device_id: d.id, direction: d.direction, start_time: new Date(d.window.start).toISOString(), end_time: new Date(d.window.end).toISOString(), max_power: { units: 'W', value: d.maxPowerW }, energy: { units: 'WH', value: d.energyWh } })),
    });
    const post = async () => {
      const r = await fetch(`${api}/schedules`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (!r.ok) throw new Error(`/schedules: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    };
    rows.push(
      row('GET /slots/time, LOW 240 min, 90 days (HTTP)', await timeIt(get(`/slots/time/home?${q}&segment=LOW&duration=240`), 100, 20), 10),
      row('GET /slots/threshold, HIGH relative 0.75, 90 days (HTTP)', await timeIt(get(`/slots/threshold/home?${q}&segment=HIGH&relative=0.75`), 100, 20), 10),
      row('POST /schedules, 3 devices, shared limit, 90 days (HTTP)', await timeIt(post, 100, 30), 10),
      { ...row('GET /tariffs/rates, 90 days of 15-min slots (HTTP, 8,544 slots of JSON)', await timeIt(get(`/tariffs/rates/home?${q}`), 50, 10), 50), target: '(no target)', ok: undefined },
    );
  } finally {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    title: 'Tariffs and slots (issue 3): 90 days of real 15-minute prices',
    rows,
    notes: [
      `Prices: DE-LU day-ahead 2025-10-01 to 2025-12-31 from Energy-Charts (test/fixtures/tariffs/energy-charts, CC BY 4.0 Bundesnetzagentur | SMARD.de), + 0.17 EUR/kWh and 19 % VAT; window 2025-10-01 to 2025-12-30 = ${slotsInWindow} slots.`,
      `Energy schedule: EV 400 kWh at 11 kW, heat pump 900 kWh at 5 kW, battery export 300 kWh at 5 kW, all sharing 15 kW over the whole window; net cost ${scheduled.netCost.toFixed(2)} EUR vs ${scheduled.baselineNetCost.toFixed(2)} EUR at once.`,
      'HTTP figures are a full request from a client on the same machine (fetch → fastify → JSON), the prices read from the recorded price history (the window is in the past).',
      `Load average while measuring: ${loadavg().map((l) => l.toFixed(1)).join(', ')} on ${cpus().length} cores (the machine is shared: with a load above the core count every figure here runs several times slower than on an idle machine).`,
    ],
  };
}
