import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { deviceSubject } from '../../src/metering/records.js';
import { MeterStore } from '../../src/metering/store.js';
import { quietLog } from '../peers/http-server.js';
import { jsonRequest } from '../peers/api.js';

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

const SITE = `site: { id: loc_home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.21 }, { from: "07:00", to: "00:00", rate: 0.34 } ] }
  export: { type: fixed, rate: 0.08 }
`;

async function start(devices = '', clock = new ManualClock('2026-06-01T10:00:00Z'), dir = mkdtempSync(join(tmpdir(), 'hf-meter-api-')), site = SITE) {
  hub = new Hub({ configText: site + (devices ? `devices:\n${devices}` : ''), clock, logger: quietLog, override: (c) => void (c.storage.dir = dir) });
  await hub.start();
  return { url: `${hub.url}/api/v1`, dir, clock };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const call = jsonRequest;

const rec = (i: number, extra: Record<string, unknown> = {}) => ({
  location_id: 'loc_home',
  device_id: 'heatpump',
  units: 'W',
  value: 1000,
  start_time: new Date(Date.UTC(2024, 7, 1) + i * 3_600_000).toISOString(),
  end_time: new Date(Date.UTC(2024, 7, 1) + (i + 1) * 3_600_000).toISOString(),
  record_reference_id: `r${i}`,
  ...extra,
});

describe('metering API over HTTP', () => {
  it('stores the good records of a batch, lists each bad one, and replaces on resubmission', async () => {
    const { url } = await start();
    const batch = [rec(0), rec(1, { units: 'KWh?' }), rec(2), 'not a record', rec(3, { end_time: '2024-08-01T02:00:00Z' }), rec(4, { location_id: 'loc_elsewhere' })];
    const first = await call('PUT', `${url}/meters/interval`, batch);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ object: 'meter_batch', records_submitted: 6, records_accepted: 2, records_processed: 2 });
    expect(first.body.id).toMatch(/^bat_[0-9a-f]{24}$/);
    expect(first.body.failed_records).toEqual([
      { record_num: 1, record_reference_id: 'r1', error: 'units: must be one of W, KW, WH, KWH (got "KWh?")' },
      { record_num: 3, record_reference_id: null, error: 'record: must be a JSON object' },
      { record_num: 4, record_reference_id: 'r3', error: 'end_time: must be after start_time (2024-08-01T03:00:00.000Z)' },
      { record_num: 5, record_reference_id: 'r4', error: `location_id: unknown location "loc_elsewhere"; this hub's location is "loc_home" (site.id)` },
    ]);
    const again = await call('PUT', `${url}/meters/interval`, [rec(0), rec(2, { value: 2000 }), rec(0, { value: 5000, confidence: 0.6 })]);
    expect(again.body).toMatchObject({ records_processed: 2, failed_records: [], ignored_records: [{ record_num: 2, record_reference_id: 'r0', reason: expect.stringMatching(/^a measured record \(confidence 1\) is already stored for this period/) }] });
    const costs = await call('POST', `${url}/costs/interval/heatpump?aggregation=DAY`, { start_time: '2024-08-01T00:00:00+02:00', end_time: '2024-08-02T00:00:00+02:00' });
    expect(costs.status).toBe(200);
    // 1 kWh at 02:00 Berlin (0.21) + 2 kWh at 04:00 Berlin (0.21), by the configured time-of-use tariff
    expect(costs.body.data).toEqual([{ start_time: '2024-08-01T00:00:00+02:00', end_time: '2024-08-02T00:00:00+02:00', session_reference_id: null, record_reference_id: null, energy: { value: 3000 }, tariff: { value: 0.63, confidence: 1 } }]);
    expect(costs.body).toMatchObject({ object: 'energy_cost', object_id: 'heatpump', direction: 'IMPORT', location_timezone: 'Europe/Berlin', currency_code: 'EUR', energy_units: 'WH' });
  });

  it('prices past energy with the tariff in force then, also after the tariff changed', async () => {
    const fixed = (rate: number) => `site: { id: loc_home, timezone: Europe/Berlin }\nhttp: { port: 0 }\ntariffs:\n  import: { type: fixed, rate: ${rate} }\n`;
    const { url, dir } = await start('', new ManualClock('2026-06-01T10:00:00Z'), undefined, fixed(0.3));
    await call('PUT', `${url}/meters/interval`, [{ device_id: 'heatpump', units: 'KWH', value: 2, start_time: '2026-06-01T08:00:00Z', end_time: '2026-06-01T09:00:00Z' }]);
    const day1 = { start_time: '2026-06-01T00:00:00+02:00', end_time: '2026-06-02T00:00:00+02:00' };
    expect((await call('POST', `${url}/costs/interval/heatpump?aggregation=DAY`, day1)).body.total.tariff.value).toBe(0.6);
    await hub!.stop();
    // a day later the tariff is 0.50
    const again = await start('', new ManualClock('2026-06-02T10:00:00Z'), dir, fixed(0.5));
    await call('PUT', `${again.url}/meters/interval`, [{ device_id: 'heatpump', units: 'KWH', value: 2, start_time: '2026-06-02T08:00:00Z', end_time: '2026-06-02T09:00:00Z' }]);
    const both = await call('POST', `${again.url}/costs/interval/heatpump?aggregation=DAY&include_tariff=true`, { start_time: '2026-06-01T00:00:00+02:00', end_time: '2026-06-03T00:00:00+02:00' });
    expect(both.body.data.map((d: Json) => [d.start_time, d.energy.value, d.tariff.value, d.tariff.rate])).toEqual([
      ['2026-06-01T00:00:00+02:00', 2000, 0.6, 0.3],
      ['2026-06-02T00:00:00+02:00', 2000, 1, 0.5],
    ]);
  });

  it('rejects 10,001 records with a clear error and stores none of them', async () => {
    const { url } = await start();
    const many = Array.from({ length: 10_001 }, (_, i) => rec(i));
    const res = await call('PUT', `${url}/meters/interval`, many);
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ object: 'error', type: 'invalid_request', code: 'too_many_records', message: 'body: 10001 records in one request; at most 10,000 are accepted. Split them into several requests.' });
    const ok = await call('PUT', `${url}/meters/interval`, many.slice(0, 10_000));
    expect(ok.body).toMatchObject({ records_processed: 10_000 });
    const list = await call('GET', `${url}/meters`);
    expect(list.body.data).toEqual([{ id: 'heatpump', object: 'meter', kind: 'device', records: 10_000, start_time: '2024-08-01T02:00:00+02:00', end_time: '2025-09-21T18:00:00+02:00' }]);
  });

  it('reproduces the storage guide: imported 5.5 kWh for 0.64, supplied 3.2 kWh worth 1.18, saving 0.54', async () => {
    const { url } = await start();
    // exact hourly prices of that day, as a dynamic import tariff would give them
    hub!.services.tariffs = {
      series: (direction, w) => {
        const rates: Record<number, number> = { 1: 0.1, 2: 0.1, 3: 0.16, 17: 0.38, 18: 0.38, 19: 0.35 };
        const out = [];
        for (let t = Math.floor(w.start / 3_600_000) * 3_600_000; t < w.end; t += 3_600_000) out.push({ start: t, end: t + 3_600_000, rate: direction === 'EXPORT' ? 0.08 : (rates[new Date(t).getUTCHours()] ?? 0.3), confidence: 1 });
        return out;
      },
    };
    const r = (start: string, end: string, direction: string, tariff_rate: string, value: number) => ({ start_time: start, end_time: end, device_id: 'dev_65e6d8334c8d715963d99db3', location_id: 'loc_home', direction, tariff_rate, units: 'W', value });
    // one record as the guide sends it (POST, single object), the rest as a batch
    expect((await call('POST', `${url}/meters/interval`, r('2024-08-01T01:00:00Z', '2024-08-01T03:00:00Z', 'IMPORT', 'IMPORT', 2000))).body.records_processed).toBe(1);
    await call('PUT', `${url}/meters/interval`, [r('2024-08-01T03:00:00Z', '2024-08-01T04:00:00Z', 'IMPORT', 'IMPORT', 1500), r('2024-08-01T17:00:00Z', '2024-08-01T19:00:00Z', 'EXPORT', 'IMPORT', 1000), r('2024-08-01T19:00:00Z', '2024-08-01T20:00:00Z', 'EXPORT', 'IMPORT', 1200)]);
    const day = { start_time: '2024-08-01T00:00:00Z', end_time: '2024-08-01T23:59:59Z' };
    const imp = await call('POST', `${url}/costs/interval/dev_65e6d8334c8d715963d99db3?direction=IMPORT&include_tariff=true&aggregation=DAY`, day);
    expect(imp.body.total).toEqual({ energy: { value: 5500 }, tariff: { value: 0.64, confidence: 1, rate: 0.11636 } });
    const sup = await call('POST', `${url}/costs/interval/dev_65e6d8334c8d715963d99db3?direction=EXPORT&include_tariff=true&aggregation=DAY`, day);
    expect(sup.body.total).toEqual({ energy: { value: 3200 }, tariff: { value: 1.18, confidence: 1, rate: 0.36875 } });
    const s = await call('GET', `${url}/savings/dev_65e6d8334c8d715963d99db3?start_time=2024-08-01T00:00:00Z&end_time=2024-08-02T00:00:00Z`);
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ object: 'savings', kind: 'storage', baseline_cost: 1.18, actual_cost: 0.64, savings: 0.54, savings_percentage: 45.76 });
    // aggregation NONE lists the records, each with its tariff
    const none = await call('POST', `${url}/costs/interval/dev_65e6d8334c8d715963d99db3?direction=IMPORT&include_tariff=true`, day);
    expect(none.body.data.map((d: { energy: { value: number }; tariff: { rate: number } }) => [d.energy.value, d.tariff.rate])).toEqual([
      [4000, 0.1],
      [1500, 0.16],
    ]);
  });

  it('says what is wrong with a cost or savings request', async () => {
    const { url } = await start();
    await call('PUT', `${url}/meters/interval`, [rec(0)]);
    const w = { start_time: '2024-08-01T00:00:00Z', end_time: '2024-08-02T00:00:00Z' };
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/costs/interval/heatpump?aggregation=HOUR', w, 400, /^querystring\.aggregation: must be one of NONE, DAY, WEEK, MONTH, YEAR \(got "HOUR"\)/],
      ['POST', '/costs/interval/heatpump?direction=SIDEWAYS', w, 400, /^querystring\.direction: must be IMPORT or EXPORT/],
      ['POST', '/costs/interval/heatpump', { start_time: '2024-08-01T00:00:00Z' }, 400, /^body\.end_time: must be an RFC 3339 time .*\(missing\)/],
      ['POST', '/costs/interval/heatpump', { ...w, end_time: '2024-07-01T00:00:00Z' }, 400, /^body\.end_time: must be after body\.start_time/],
      ['POST', '/costs/interval/heatpump?include_carbon=true', w, 400, /include_carbon: carbon intensity is not tracked/],
      ['POST', '/costs/interval/nobody', w, 404, /^no location or device "nobody" \(known: loc_home, heatpump\)/],
      ['POST', '/costs/session/S-unknown', {}, 404, /no meter records carry session_reference_id "S-unknown"/],
      ['GET', '/savings/heatpump?start_time=yesterday&end_time=2024-08-02T00:00:00Z', undefined, 400, /^querystring\.start_time: "yesterday" is not an RFC 3339 time/],
      ['GET', '/savings/heatpump?kind=boiler', undefined, 400, /^querystring\.kind: must be one of storage, ev, hvac, switched_load, pv, meter/],
      ['GET', '/savings/loc_home?baseline=rule', undefined, 400, /^querystring\.baseline: must be one of devices, self_consumption, none \(got "rule"\)/],
      ['GET', '/savings/heatpump?baseline=none', undefined, 400, /^querystring\.baseline: none replays the whole site; ask for the location "loc_home", not "heatpump"/],
      ['GET', '/savings/loc_home?baseline=none&kind=ev', undefined, 400, /^querystring\.kind: not with a site baseline/],
      ['PUT', '/meters/interval', 42, 400, /^body: must be an array of meter records/],
      ['PUT', '/meters/cumulative/epoch', { device_id: 'x', data: [], colour: 'red' }, 400, /^colour: unknown field/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const res = await call(method, `${url}${path}`, body);
      expect([path, res.status]).toEqual([path, status]);
      expect(res.body.object).toBe('error');
      expect(res.body.message).toMatch(message);
    }
  });

  it('turns cumulative register readings into intervals, across resets and late readings', async () => {
    const { url } = await start();
    const t0 = Date.UTC(2024, 7, 1, 0) / 1000;
    const body = (data: unknown[]) => ({ location_id: 'loc_home', device_id: 'meter1', direction: 'IMPORT', tariff_rate: 'IMPORT', units: 'KWH', data });
    // readings out of order, a counter reset between 02:00 and 03:00
    const first = await call('PUT', `${url}/meters/cumulative/epoch`, body([
      { time: t0 + 7200, value: 102.0, record_reference_id: 'c' },
      { time: t0, value: 100.0, record_reference_id: 'a' },
      { time: t0 + 10800, value: 0.5, record_reference_id: 'd' },
      { time: t0 + 3600, value: 'n/a', record_reference_id: 'b' },
    ]));
    expect(first.body).toMatchObject({ records_submitted: 4, records_accepted: 3, records_processed: 3, intervals_created: 2, failed_records: [{ record_num: 3, record_reference_id: 'b', error: 'value: must be a number (got "n/a")' }] });
    const w = { start_time: '2024-08-01T00:00:00Z', end_time: '2024-08-02T00:00:00Z' };
    const rows = async () => (await call('POST', `${url}/costs/interval/meter1`, w)).body.data.map((d: { start_time: string; energy: { value: number }; record_reference_id: string }) => [d.start_time.slice(11, 16), d.energy.value, d.record_reference_id]);
    expect(await rows()).toEqual([
      ['02:00', 2000, 'c'],
      ['04:00', 500, 'd'],
    ]);
    // the missing 01:00 reading arrives later: the 00:00–02:00 interval is split, not doubled
    const late = await call('PUT', `${url}/meters/cumulative/epoch`, body([{ time: t0 + 3600, value: 101.5, record_reference_id: 'b' }]));
    expect(late.body).toMatchObject({ records_processed: 1, intervals_created: 2 });
    expect(await rows()).toEqual([
      ['02:00', 1500, 'b'],
      ['03:00', 500, 'c'],
      ['04:00', 500, 'd'],
    ]);
    // and the next request continues from the last reading; of two readings at one time the later counts
    const dup = await call('PUT', `${url}/meters/cumulative/epoch`, body([{ time: t0 + 14400, value: 9 }, { time: t0 + 14400, value: 1.25 }]));
    expect(dup.body).toMatchObject({ records_processed: 1, ignored_records: [{ record_num: 0, record_reference_id: null, reason: 'a later reading in this request has the same time; that one was kept' }] });
    expect((await rows()).at(-1)).toEqual(['05:00', 750, null]);
    const many = await call('PUT', `${url}/meters/cumulative/epoch`, body(Array.from({ length: 10_001 }, (_, i) => ({ time: t0 + 20_000 + i * 60, value: i }))));
    expect([many.status, many.body.code, many.body.message]).toEqual([413, 'too_many_records', 'data: 10001 readings in one request; at most 10,000 are accepted. Split them into several requests.']);
  });

  it('back-filled readings of an old session next to live ones: the session keeps its own energy, the gap is no session’s (issue 14.5)', async () => {
    const { url } = await start();
    const body = (data: unknown[], session?: string) => ({ location_id: 'loc_home', device_id: 'wallbox', direction: 'IMPORT', tariff_rate: 'IMPORT', units: 'WH', ...(session ? { session_reference_id: session } : {}), data });
    const now = Date.parse('2026-06-01T09:00:00Z') / 1000;
    const live = await call('PUT', `${url}/meters/cumulative/epoch`, body([0, 1, 2, 3].map((k) => ({ time: now + k * 60, value: 500_000 + k * 10 }))));
    expect(live.body.records_processed).toBe(4);
    // a 3-hour session 53 days earlier, uploaded afterwards
    const s0 = now - 53 * 86_400 - 3 * 3600;
    const old = await call('PUT', `${url}/meters/cumulative/epoch`, body([0, 1, 2, 3].map((h) => ({ time: s0 + h * 3600, value: 372_000 + h * 1500 })), 'S'));
    expect(old.body.records_processed).toBe(4);
    const session = await call('POST', `${url}/costs/session/S`, {});
    expect(session.status).toBe(200);
    expect(session.body.total.energy.value).toBe(4500);
    // the 123.5 kWh between S's last reading and the first live one is counted, untagged
    const all = await call('POST', `${url}/costs/interval/wallbox?aggregation=YEAR`, { start_time: '2026-01-01T00:00:00Z', end_time: '2026-07-01T00:00:00Z' });
    expect(all.body.data.reduce((a: number, d: { energy: { value: number } }) => a + d.energy.value, 0)).toBeCloseTo(4500 + 123_500 + 30, 3);
  });

  it('records each charging session (plug-in, end, energy) for the EV savings baseline (issue 14.6)', async () => {
    const clock = new ManualClock('2026-06-01T15:50:00Z'); // 17:50 in Berlin; the simulated car arrives at 18:00 and leaves at 07:30
    const { url } = await start('  - { id: ev, adapter: sim_ev, arrive: "18:00", leave: "07:30", tick_s: 60 }\n', clock);
    await clock.advance(30 * 60_000);
    await hub!.services.metering!.settled();
    expect(hub!.services.state.data.sessions['ev-1']).toEqual({ id: 'ev-1', device_id: 'ev', start: '2026-06-01T16:00:00.000Z', energy_wh: expect.any(Number) });
    for (let h = 0; h < 14; h++) await clock.advance(3_600_000);
    await hub!.services.metering!.settled();
    const done = hub!.services.state.data.sessions['ev-1'];
    expect(done.end).toBe('2026-06-02T05:30:00.000Z');
    expect(done.energy_wh).toBeCloseTo(hub!.registry.get('ev')!.caps.charger!.session()!.energyWh, 3);
    const savings = await call('GET', `${url}/savings/ev?start_time=2026-06-01T00:00:00Z&end_time=2026-06-02T12:00:00Z`);
    expect(savings.body.sessions).toEqual([{ session_reference_id: 'ev-1', plug_in_time: '2026-06-01T18:00:00+02:00', energy: expect.closeTo(done.energy_wh, 0) }]);
  });

  it('meters the adapters: readings become 1-minute records tagged with the charging session', async () => {
    const clock = new ManualClock('2026-06-01T15:50:00Z'); // 17:50 in Berlin; the simulated car arrives at 18:00
    const { url, dir } = await start('  - { id: ev, adapter: sim_ev, arrive: "18:00", leave: "07:30" }\n', clock);
    await clock.advance(30 * 60_000);
    await hub!.services.metering!.settled();
    const ev = hub!.registry.get('ev')!;
    const session = ev.caps.charger!.session()!;
    expect(session.id).toBe('ev-1');
    const byDay = await call('POST', `${url}/costs/session/ev-1?aggregation=DAY&include_tariff=true`, {});
    expect(byDay.status).toBe(200);
    expect(byDay.body).toMatchObject({ session_reference_id: 'ev-1', device_ids: ['ev'] });
    expect(byDay.body.data[0].tariff.rate).toBe(0.34);
    const none = await call('POST', `${url}/costs/interval/ev`, { start_time: '2026-06-01T15:50:00Z', end_time: '2026-06-01T16:20:00Z' });
    type Row = { start_time: string; end_time: string; session_reference_id: string | null; energy: { value: number } };
    const rows: Row[] = none.body.data;
    const length = (d: Row) => Date.parse(d.end_time) - Date.parse(d.start_time);
    // while charging, one record a minute; the idle ten minutes before plug-in, one record
    const charging = rows.filter((d) => d.energy.value > 0);
    expect(charging.length).toBeGreaterThan(15);
    expect(charging.every((d) => d.session_reference_id === 'ev-1' && length(d) >= 60_000 && length(d) <= 70_000)).toBe(true);
    const before = rows.filter((d) => d.session_reference_id === null);
    expect(before).toHaveLength(1);
    expect([before[0].start_time, before[0].energy.value, length(before[0]) > 9 * 60_000]).toEqual(['2026-06-01T17:50:00+02:00', 0, true]);
    const energy = session.energyWh;
    await hub!.stop();
    hub = undefined;
    // after a clean stop every reading is stored: the session's energy equals what the charger counted
    const store = await MeterStore.open(join(dir, 'metering'), { readOnly: true });
    const set = store.intervals(deviceSubject('ev'), -Infinity, Infinity, { session: 'ev-1' });
    let stored = 0;
    for (let i = 0; i < set.n; i++) stored += set.energy[i];
    expect(stored).toBeCloseTo(energy, 1);
    expect(energy).toBeGreaterThan(3000);
    await store.close();
  });
});
