import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';

/**
 * The tariff API over real HTTP: a hub on 127.0.0.1 (port chosen at run time), a day/night
 * time-of-use import tariff in Europe/Berlin, no export tariff (export prices come through PUT).
 */
const quietLog: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quietLog };
const SITE = `
site: { id: home, name: Home, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: 11000 } }
http: { port: 0 }
tariffs:
  import:
    type: time_of_use
    rates:
      - { from: "00:00", to: "07:00", rate: 0.21 }
      - { from: "07:00", to: "00:00", rate: 0.34 }
`;

let hub: Hub;
let dir: string;
const clock = new ManualClock('2026-01-05T12:00:00Z');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'homeflex-tariff-api-'));
  hub = new Hub({ configText: SITE, clock, logger: quietLog, override: (c) => void (c.storage.dir = dir) });
  await hub.start();
});
afterAll(async () => {
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const api = (path: string, init?: RequestInit) => fetch(`${hub.url}/api/v1${path}`, init);
const getJson = async (path: string) => {
  const r = await api(path);
  return { status: r.status, body: (await r.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
};
const send = async (method: string, path: string, body: unknown) => {
  const r = await api(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
};
const q = (o: Record<string, string>) => new URLSearchParams(o).toString();

describe('GET /tariffs/rates/{location_id}', () => {
  it('returns the resolved series with FlatPeak field names', async () => {
    const { status, body } = await getJson(`/tariffs/rates/home?${q({ start_time: '2026-01-05T05:00:00Z', end_time: '2026-01-05T07:00:00Z' })}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ object: 'tariff_rate', location_id: 'home', location_timezone: 'Europe/Berlin', currency_code: 'EUR', direction: 'IMPORT' });
    expect(body.id).toMatch(/^rts_[0-9a-f]{24}$/);
    expect(body.data).toEqual([
      { valid_from: '2026-01-05T05:00:00.000Z', valid_to: '2026-01-05T06:00:00.000Z', tariff: { rate: 0.21, confidence: 1 } },
      { valid_from: '2026-01-05T06:00:00.000Z', valid_to: '2026-01-05T07:00:00.000Z', tariff: { rate: 0.34, confidence: 1 } },
    ]);
  });

  const errors: [string, Record<string, string>, number, string, string][] = [
    ['unknown location', { end_time: '2026-01-06T00:00:00Z' }, 404, 'location_id', 'no location "nope" (known: home)'],
    ['missing end_time', {}, 400, 'end_time', 'end_time: is required'],
    ['a time without zone', { end_time: '2026-01-06T00:00:00' }, 400, 'end_time', 'end_time: must be an RFC 3339 time such as 2026-01-05T18:00:00Z, got "2026-01-06T00:00:00"'],
    ['end before start', { start_time: '2026-01-06T00:00:00Z', end_time: '2026-01-05T00:00:00Z' }, 400, 'end_time', 'end_time: must be after start_time (2026-01-06T00:00:00.000Z)'],
    ['more than 90 days', { start_time: '2026-01-01T00:00:00Z', end_time: '2026-04-02T00:00:00Z' }, 400, 'end_time', 'end_time: the window may be at most 90 days (end_time at most 2026-03-31T23:00:00.000Z)'],
    ['bad direction', { end_time: '2026-01-06T00:00:00Z', direction: 'INBOUND' }, 400, 'direction', 'direction: must be IMPORT or EXPORT, got "INBOUND"'],
    ['unknown parameter', { end_time: '2026-01-06T00:00:00Z', ends: 'x' }, 400, 'ends', 'ends: unknown field (allowed: start_time, end_time, direction, include_tariff, include_carbon)'],
  ];
  for (const [name, query, status, field, message] of errors) {
    it(`${status} for ${name}`, async () => {
      const r = await getJson(`/tariffs/rates/${name === 'unknown location' ? 'nope' : 'home'}?${q(query)}`);
      expect(r.status).toBe(status);
      expect(r.body).toMatchObject({ object: 'error', type: 'invalid_request', field, message });
    });
  }
});

describe('PUT /tariffs/rates/{location_id}', () => {
  it('imports a dynamic 15-minute series that wins over the configured tariff', async () => {
    const data = [0.12, 0.1, 0.08, 0.11].map((rate, i) => ({
      valid_from: new Date(Date.parse('2026-01-05T14:00:00Z') + i * 900_000).toISOString(),
      valid_to: new Date(Date.parse('2026-01-05T14:00:00Z') + (i + 1) * 900_000).toISOString(),
      rate,
    }));
    const events: string[] = [];
    const off = hub.bus.on('tariff.updated', (e) => events.push(`${e.direction}:${e.source}:${e.series.length}`));
    const put = await send('PUT', '/tariffs/rates/home', { currency_code: 'EUR', data });
    off();
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ object: 'tariff_rate_import', direction: 'IMPORT', slots_imported: 4, valid_from: '2026-01-05T14:00:00.000Z', valid_to: '2026-01-05T15:00:00.000Z' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(/^IMPORT:import:\d+$/);
    const { body } = await getJson(`/tariffs/rates/home?${q({ start_time: '2026-01-05T13:45:00Z', end_time: '2026-01-05T15:15:00Z' })}`);
    expect(body.data.map((d: { tariff: { rate: number } }) => d.tariff.rate)).toEqual([0.34, 0.12, 0.1, 0.08, 0.11, 0.34]);
    // the answer says where its slots come from
    expect(body.source).toMatchObject({ type: 'mixed', configured_type: 'time_of_use' });
    const inside = (await getJson(`/tariffs/rates/home?${q({ start_time: '2026-01-05T14:00:00Z', end_time: '2026-01-05T15:00:00Z' })}`)).body;
    expect(inside.source).toMatchObject({ type: 'imported', description: 'a series imported with PUT /api/v1/tariffs/rates', configured_type: 'time_of_use' });
    const outside = (await getJson(`/tariffs/rates/home?${q({ start_time: '2026-01-05T16:00:00Z', end_time: '2026-01-05T17:00:00Z' })}`)).body;
    expect(outside.source).toMatchObject({ type: 'time_of_use', configured_type: 'time_of_use' });
  });

  it('stores export prices and keeps them across a restart of the hub', async () => {
    const data = [
      { valid_from: '2026-01-06T16:00:00Z', valid_to: '2026-01-06T17:00:00Z', rate: 0.09 },
      { valid_from: '2026-01-06T17:00:00Z', valid_to: '2026-01-06T18:00:00Z', tariff: { rate: 0.15, confidence: 0.8 } },
    ];
    expect((await send('PUT', '/tariffs/rates/home?direction=EXPORT', { currency_code: 'EUR', data })).status).toBe(200);
    await hub.stop();
    hub = new Hub({ configText: SITE, clock, logger: quietLog, override: (c) => void (c.storage.dir = dir) });
    await hub.start();
    const { body } = await getJson(`/tariffs/rates/home?${q({ start_time: '2026-01-06T16:00:00Z', end_time: '2026-01-06T18:00:00Z', direction: 'EXPORT' })}`);
    expect(body.data).toEqual([
      { valid_from: '2026-01-06T16:00:00.000Z', valid_to: '2026-01-06T17:00:00.000Z', tariff: { rate: 0.09, confidence: 1 } },
      { valid_from: '2026-01-06T17:00:00.000Z', valid_to: '2026-01-06T18:00:00.000Z', tariff: { rate: 0.15, confidence: 0.8 } },
    ]);
  });

  const slot = { valid_from: '2026-01-07T00:00:00Z', valid_to: '2026-01-07T01:00:00Z', rate: 0.2 };
  const errors: [string, unknown, number, string, string][] = [
    ['another currency', { currency_code: 'GBP', data: [slot] }, 400, 'currency_code', 'currency_code: must be the site currency EUR, got "GBP"'],
    ['no currency', { data: [slot] }, 400, 'currency_code', 'currency_code: is required'],
    ['no data', { currency_code: 'EUR' }, 400, 'data', 'data: is required: an array of {valid_from, valid_to, rate}'],
    ['empty data', { currency_code: 'EUR', data: [] }, 400, 'data', 'data: must hold at least one slot'],
    ['a missing rate', { currency_code: 'EUR', data: [{ valid_from: slot.valid_from, valid_to: slot.valid_to }] }, 400, 'data[0].rate', 'data[0].rate: is required'],
    ['a rate that is not a number', { currency_code: 'EUR', data: [{ ...slot, rate: 'cheap' }] }, 400, 'data[0].rate', 'data[0].rate: must be a number, got "cheap"'],
    ['a slot ending before it starts', { currency_code: 'EUR', data: [{ ...slot, valid_to: '2026-01-06T23:00:00Z' }] }, 400, 'data[0].valid_to', 'data[0].valid_to: must be after valid_from (2026-01-07T00:00:00.000Z)'],
    [
      'overlapping slots',
      { currency_code: 'EUR', data: [slot, { ...slot, valid_from: '2026-01-07T00:30:00Z', valid_to: '2026-01-07T01:30:00Z' }] },
      400,
      'data[1].valid_from',
      'data[1].valid_from: starts at 2026-01-07T00:30:00.000Z, before the previous slot ends (2026-01-07T01:00:00.000Z): slots must be sorted and must not overlap',
    ],
    ['an unknown field', { currency_code: 'EUR', data: [slot], price_unit: 'MWh' }, 400, 'price_unit', 'price_unit: unknown field (allowed: currency_code, direction, data)'],
    ['a body that is not an object', [slot], 400, 'body', 'body: must be a JSON object {currency_code, data:[{valid_from, valid_to, rate}]}'],
  ];
  for (const [name, body, status, field, message] of errors) {
    it(`${status} for ${name}, and nothing stored is lost`, async () => {
      const r = await send('PUT', '/tariffs/rates/home', body);
      expect(r.status).toBe(status);
      expect(r.body).toMatchObject({ object: 'error', field, message });
      const still = await getJson(`/tariffs/rates/home?${q({ start_time: '2026-01-05T14:00:00Z', end_time: '2026-01-05T14:15:00Z' })}`);
      expect(still.body.data[0].tariff.rate).toBe(0.12);
    });
  }
  it('404 for an unknown location', async () => {
    const r = await send('PUT', '/tariffs/rates/elsewhere', { currency_code: 'EUR', data: [slot] });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ code: 'location_not_found', message: 'no location "elsewhere" (known: home)' });
  });
});

describe('GET /slots/time/{location_id}', () => {
  it('the cheapest two hours of a night window crossing midnight (ties to the earlier)', async () => {
    const { status, body } = await getJson(`/slots/time/home?${q({ start_time: '2026-01-06T18:00:00Z', end_time: '2026-01-07T06:00:00Z', segment: 'LOW', duration: '120' })}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ object: 'slot_time', location_id: 'home', direction: 'IMPORT', currency_code: 'EUR', request: { segment: 'LOW', duration: '120' } });
    expect(body.id).toMatch(/^sta_/);
    expect(body.data).toEqual([{ start_time: '2026-01-06T23:00:00.000Z', end_time: '2026-01-07T01:00:00.000Z', tariff: { rate_avg: 0.21, confidence: 1 } }]);
  });

  it('continuous and HIGH', async () => {
    const { body } = await getJson(`/slots/time/home?${q({ start_time: '2026-01-06T04:00:00Z', end_time: '2026-01-06T08:00:00Z', segment: 'HIGH', duration: '90', continuous: 'true' })}`);
    expect(body.data).toEqual([{ start_time: '2026-01-06T06:00:00.000Z', end_time: '2026-01-06T07:30:00.000Z', tariff: { rate_avg: 0.34, confidence: 1 } }]);
  });

  const base = { start_time: '2026-01-06T18:00:00Z', end_time: '2026-01-07T06:00:00Z', segment: 'LOW', duration: '60' };
  const errors: [string, Record<string, string>, number, string, string][] = [
    ['no segment', { ...base, segment: '' }, 400, 'segment', 'segment: must be LOW or HIGH, got ""'],
    ['a bad segment', { ...base, segment: 'CHEAP' }, 400, 'segment', 'segment: must be LOW or HIGH, got "CHEAP"'],
    ['a duration that is not a number', { ...base, duration: 'two hours' }, 400, 'duration', 'duration: must be a number, got "two hours"'],
    ['a zero duration', { ...base, duration: '0' }, 400, 'duration', 'duration: must be greater than 0, got 0'],
    ['a duration longer than the window', { ...base, duration: '900' }, 400, 'duration', 'duration: 900 minutes is longer than the window (720 minutes)'],
    ['a bad continuous flag', { ...base, continuous: 'yes' }, 400, 'continuous', 'continuous: must be true or false, got "yes"'],
  ];
  for (const [name, query, status, field, message] of errors) {
    it(`${status} for ${name}`, async () => {
      const r = await getJson(`/slots/time/home?${q(query)}`);
      expect(r.status).toBe(status);
      expect(r.body).toMatchObject({ object: 'error', field, message });
    });
  }
  it('400 for a missing duration', async () => {
    const { duration: _d, ...rest } = base;
    const r = await getJson(`/slots/time/home?${q(rest)}`);
    expect(r.body).toMatchObject({ field: 'duration', message: 'duration: is required (minutes)' });
  });
  it('422 when the window holds too few priced minutes (no export tariff there)', async () => {
    const r = await getJson(`/slots/time/home?${q({ ...base, direction: 'EXPORT' })}`);
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ object: 'error', type: 'invalid_request', code: 'no_price_data', available_minutes: 0, requested_minutes: 60 });
  });
});

describe('GET /slots/threshold/{location_id}', () => {
  it('HIGH relative 0.75: the day-rate hours, merged, with the total duration', async () => {
    const { status, body } = await getJson(`/slots/threshold/home?${q({ start_time: '2026-01-06T04:00:00Z', end_time: '2026-01-06T09:00:00Z', segment: 'HIGH', relative: '0.75' })}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ object: 'slot_threshold', duration: 180, threshold: 0.3075 });
    expect(body.data).toEqual([{ start_time: '2026-01-06T06:00:00.000Z', end_time: '2026-01-06T09:00:00.000Z', tariff: { rate_avg: 0.34, confidence: 1 } }]);
  });
  it('absolute wins over relative', async () => {
    const { body } = await getJson(`/slots/threshold/home?${q({ start_time: '2026-01-06T04:00:00Z', end_time: '2026-01-06T09:00:00Z', segment: 'LOW', absolute: '0.25', relative: '1' })}`);
    expect(body.data).toEqual([{ start_time: '2026-01-06T04:00:00.000Z', end_time: '2026-01-06T06:00:00.000Z', tariff: { rate_avg: 0.21, confidence: 1 } }]);
    expect(body.duration).toBe(120);
  });
  const base = { start_time: '2026-01-06T04:00:00Z', end_time: '2026-01-06T09:00:00Z', segment: 'LOW' };
  const errors: [string, Record<string, string>, string, string][] = [
    ['neither relative nor absolute', base, 'relative', 'relative: give relative (0 < r ≤ 1) or absolute (a rate)'],
    ['relative 0', { ...base, relative: '0' }, 'relative', 'relative: must be greater than 0, got 0'],
    ['relative above 1', { ...base, relative: '1.5' }, 'relative', 'relative: must be at most 1, got 1.5'],
    ['absolute not a number', { ...base, absolute: 'low' }, 'absolute', 'absolute: must be a number, got "low"'],
    ['duration given', { ...base, relative: '0.5', duration: '60' }, 'duration', 'duration: unknown field (allowed: start_time, end_time, direction, segment, relative, absolute)'],
  ];
  for (const [name, query, field, message] of errors) {
    it(`400 for ${name}`, async () => {
      const r = await getJson(`/slots/threshold/home?${q(query)}`);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ object: 'error', field, message });
    });
  }
  it('404 for an unknown location', async () => {
    expect((await getJson(`/slots/threshold/x?${q({ ...base, relative: '0.5' })}`)).status).toBe(404);
  });
});

describe('POST /schedules', () => {
  it('the storage guide: 5.3 kWh between 19:00 and 05:00 at 4 kW in the cheapest hours, priced from imported past prices', async () => {
    //            19    20    21    22    23    00    01    02    03    04  (UTC hours from 2024-08-01T19:00Z)
    const rates = [0.4, 0.38, 0.35, 0.3, 0.25, 0.22, 0.12, 0.1, 0.11, 0.13];
    const data = rates.map((rate, i) => ({ valid_from: new Date(Date.parse('2024-08-01T19:00:00Z') + i * 3_600_000).toISOString(), valid_to: new Date(Date.parse('2024-08-01T20:00:00Z') + i * 3_600_000).toISOString(), rate }));
    expect((await send('PUT', '/tariffs/rates/home', { currency_code: 'EUR', data })).status).toBe(200);
    const { status, body } = await send('POST', '/schedules', {
      location_id: 'home',
      max_power: { units: 'W', value: '4000' },
      data: [{ device_id: 'dev_battery', direction: 'IMPORT', start_time: '2024-08-01T19:00:00Z', end_time: '2024-08-02T05:00:00Z', max_power: { units: 'W', value: 4000 }, energy: { units: 'WH', value: 5300 } }],
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({ object: 'schedule', location_id: 'home', currency_code: 'EUR', max_power: { units: 'W', value: 4000 }, tariff: { value: 0.543, confidence: 1 }, savings: { value: 1.551, percentage: 74.07 } });
    expect(body.id).toMatch(/^sch_/);
    expect(body.data[0]).toMatchObject({ device_id: 'dev_battery', energy: { units: 'WH', value: 5300 }, tariff: { value: 0.543 } });
    expect(body.data[0].schedule).toEqual([
      { start_time: '2024-08-02T02:00:00.000Z', end_time: '2024-08-02T03:00:00.000Z', power: { units: 'W', value: 4000 } },
      { start_time: '2024-08-02T03:00:00.000Z', end_time: '2024-08-02T04:00:00.000Z', power: { units: 'W', value: 1300 } },
    ]);
  });

  it('the storage guide: 10 kWh export between 18:00 and 06:00 goes to the dearest export hours, earnings as the value', async () => {
    const rates = [0.35, 0.4, 0.38, 0.3, 0.25, 0.05, 0.05, 0.04, 0.04, 0.05, 0.06, 0.08];
    const data = rates.map((rate, i) => ({ valid_from: new Date(Date.parse('2026-01-07T18:00:00Z') + i * 3_600_000).toISOString(), valid_to: new Date(Date.parse('2026-01-07T19:00:00Z') + i * 3_600_000).toISOString(), rate }));
    expect((await send('PUT', '/tariffs/rates/home?direction=EXPORT', { currency_code: 'EUR', data })).status).toBe(200);
    const { status, body } = await send('POST', '/schedules', {
      location_id: 'home',
      data: [{ device_id: 'dev_battery', direction: 'EXPORT', start_time: '2026-01-07T18:00:00Z', end_time: '2026-01-08T06:00:00Z', max_power: { units: 'KW', value: 4 }, energy: { units: 'KWH', value: 10 } }],
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({ max_power: { units: 'W', value: 11000 }, tariff: { value: 3.82 }, savings: { value: 0.06 } });
    expect(body.data[0].schedule.map((s: { start_time: string; end_time: string }) => [s.start_time, s.end_time])).toEqual([
      ['2026-01-07T18:00:00.000Z', '2026-01-07T19:00:00.000Z'],
      ['2026-01-07T19:00:00.000Z', '2026-01-07T21:00:00.000Z'],
    ]);
  });

  it('three devices share the max power of the location', async () => {
    const { status, body } = await send('POST', '/schedules', {
      location_id: 'home',
      max_power: { units: 'KW', value: 8 },
      data: [
        { device_id: 'ev', start_time: '2026-01-06T20:00:00Z', end_time: '2026-01-07T06:00:00Z', max_power: { units: 'W', value: 7000 }, energy: { units: 'KWH', value: 20 } },
        { device_id: 'boiler', start_time: '2026-01-06T20:00:00Z', end_time: '2026-01-07T06:00:00Z', max_power: { units: 'W', value: 3000 }, energy: { units: 'KWH', value: 6 } },
        { device_id: 'battery', start_time: '2026-01-06T20:00:00Z', end_time: '2026-01-07T06:00:00Z', max_power: { units: 'W', value: 5000 }, energy: { units: 'KWH', value: 9 } },
      ],
    });
    expect(status).toBe(200);
    // 35 kWh at ≤ 8 kW over the 6 night hours (48 kWh of room at 0.21): all of it at the night rate
    expect(body.tariff.value).toBeCloseTo(35 * 0.21, 6);
    const perHour = new Map<string, number>();
    for (const d of body.data) for (const s of d.schedule) for (let t = Date.parse(s.start_time); t < Date.parse(s.end_time); t += 3_600_000) perHour.set(new Date(t).toISOString(), (perHour.get(new Date(t).toISOString()) ?? 0) + s.power.value);
    for (const w of perHour.values()) expect(w).toBeLessThanOrEqual(8000.001);
  });

  it('422 with the feasible energy when the request cannot be met', async () => {
    const r = await send('POST', '/schedules', {
      location_id: 'home',
      max_power: { units: 'W', value: 4000 },
      data: [{ device_id: 'ev', start_time: '2026-01-06T20:00:00Z', end_time: '2026-01-06T22:00:00Z', max_power: { units: 'W', value: 7000 }, energy: { units: 'WH', value: 10000 } }],
    });
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({
      object: 'error',
      code: 'schedule_infeasible',
      requested_energy: { units: 'WH', value: 10000 },
      feasible_energy: { units: 'WH', value: 8000 },
      devices: [{ device_id: 'ev', feasible_energy: { value: 8000 } }],
    });
    expect(r.body.message).toMatch(/^only 8000 Wh of the 10000 Wh requested can be moved/);
  });

  const device = { device_id: 'ev', start_time: '2026-01-06T20:00:00Z', end_time: '2026-01-07T06:00:00Z', max_power: { units: 'W', value: 7000 }, energy: { units: 'WH', value: 1000 } };
  const errors: [string, unknown, number, string, string][] = [
    ['an unknown location', { location_id: 'loc_x', data: [device] }, 404, 'location_id', 'no location "loc_x" (known: home)'],
    ['no location', { data: [device] }, 400, 'location_id', 'location_id: is required'],
    ['no data', { location_id: 'home' }, 400, 'data', 'data: is required: an array of {device_id, direction, start_time, end_time, max_power, energy}'],
    ['bad max_power units', { location_id: 'home', max_power: { units: 'A', value: 16 }, data: [device] }, 400, 'max_power.units', 'max_power.units: must be W or KW, got "A"'],
    ['negative energy', { location_id: 'home', data: [{ ...device, energy: { units: 'WH', value: -5 } }] }, 400, 'data[0].energy.value', 'data[0].energy.value: must be at least 0, got -5'],
    ['no energy', { location_id: 'home', data: [{ ...device, energy: undefined }] }, 400, 'data[0].energy', 'data[0].energy: is required'],
    ['bad energy units', { location_id: 'home', data: [{ ...device, energy: { units: 'J', value: 5 } }] }, 400, 'data[0].energy.units', 'data[0].energy.units: must be WH or KWH, got "J"'],
    ['a bad direction', { location_id: 'home', data: [{ ...device, direction: 'BOTH' }] }, 400, 'data[0].direction', 'data[0].direction: must be IMPORT or EXPORT, got "BOTH"'],
    ['no start_time', { location_id: 'home', data: [{ ...device, start_time: undefined }] }, 400, 'data[0].start_time', 'data[0].start_time: is required'],
    ['end before start', { location_id: 'home', data: [{ ...device, end_time: '2026-01-06T19:00:00Z' }] }, 400, 'data[0].end_time', 'data[0].end_time: must be after start_time (2026-01-06T20:00:00.000Z)'],
    ['a device twice', { location_id: 'home', data: [device, device] }, 400, 'data[1].device_id', 'data[1].device_id: "ev" appears twice'],
    ['an unknown device field', { location_id: 'home', data: [{ ...device, soc: 50 }] }, 400, 'data[0].soc', 'data[0].soc: unknown field (allowed: device_id, direction, start_time, end_time, max_power, energy)'],
    ['a bad shaving threshold', { location_id: 'home', shaving_threshold: { relative: 2 }, data: [device] }, 400, 'shaving_threshold.relative', 'shaving_threshold.relative: must be at most 1, got 2'],
  ];
  for (const [name, body, status, field, message] of errors) {
    it(`${status} for ${name}`, async () => {
      const r = await send('POST', '/schedules', body);
      expect(r.status).toBe(status);
      expect(r.body).toMatchObject({ object: 'error', type: 'invalid_request', field, message });
    });
  }
  it('400 for a body that is not JSON', async () => {
    const r = await api('/schedules', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"location_id":' });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { message: string }).message).toMatch(/^body: not valid JSON/);
  });
  it('a shaving threshold keeps imports out of the day rate', async () => {
    const r = await send('POST', '/schedules', {
      location_id: 'home',
      shaving_threshold: { absolute: 0.25 },
      data: [{ ...device, start_time: '2026-01-06T20:00:00Z', end_time: '2026-01-06T23:00:00Z' }],
    });
    // 20:00-23:00Z is the day rate (0.34) everywhere: nothing may be bought under 0.25
    expect(r.status).toBe(422);
    expect(r.body.feasible_energy).toEqual({ units: 'WH', value: 0 });
  });
});

describe('writes need the bearer token when one is configured', () => {
  it('PUT /tariffs/rates and POST /schedules answer 401 without it, 200 with it; reads from this machine need none', async () => {
    const token = 'tariff-test-token-0123456789';
    const tdir = mkdtempSync(join(tmpdir(), 'homeflex-tariff-token-'));
    const guarded = new Hub({ configText: SITE.replace('http: { port: 0 }', `http: { port: 0, token: "${token}" }`), clock, logger: quietLog, override: (c) => void (c.storage.dir = tdir) });
    await guarded.start();
    try {
      const body = JSON.stringify({ currency_code: 'EUR', data: [{ valid_from: '2026-01-08T00:00:00Z', valid_to: '2026-01-08T01:00:00Z', rate: 0.1 }] });
      const put = (headers: Record<string, string>) => fetch(`${guarded.url}/api/v1/tariffs/rates/home`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body });
      const denied = await put({});
      expect(denied.status).toBe(401);
      expect(await denied.json()).toMatchObject({ object: 'error', code: 'unauthorized' });
      expect((await put({ authorization: `Bearer ${token}` })).status).toBe(200);
      const schedule = await fetch(`${guarded.url}/api/v1/schedules`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ location_id: 'home', data: [] }) });
      expect(schedule.status).toBe(401);
      const read = await fetch(`${guarded.url}/api/v1/tariffs/rates/home?end_time=2026-01-08T01:00:00Z&start_time=2026-01-08T00:00:00Z`);
      expect(((await read.json()) as { data: { tariff: { rate: number } }[] }).data.map((d) => d.tariff.rate)).toEqual([0.1]);
    } finally {
      await guarded.stop();
      rmSync(tdir, { recursive: true, force: true });
    }
  });
});
