import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { StateStore } from '../../src/core/store/state.js';
import type { MeterStore } from '../../src/metering/store.js';
import { startHub, type TestHub } from '../peers/hub.js';
import { applyMutation, mutation, weird, type Json } from './fuzz.js';
import { routesOf, STACK_TRACE } from './helpers.js';

/**
 * Fuzzing of every HTTP endpoint, as the running fastify app lists them: path parameters, query
 * strings and bodies, from garbage to near-valid mutations of a working request. Every answer must
 * be a clear JSON error (4xx, or 503 with a reason) or a success, never a 500, never a stack trace;
 * the hub must stay up; and afterwards nothing unreasonable may be in its stores.
 */

const NOW = '2026-03-10T10:00:00Z';
/** HOMEFLEX_FUZZ_SEED=<n> repeats or varies a run. */
const SEED = Number(process.env.HOMEFLEX_FUZZ_SEED ?? 20261123);
const SITE = `
site: { id: home, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: 17000, max_export_w: 7000 }, circuits: [ { id: garage, max_import_w: 11000 } ] }
planner: { horizon_hours: 12 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.21 }, { from: "07:00", to: "00:00", rate: 0.34 } ] }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: ev, adapter: sim_ev, circuit: garage, arrive: "00:00", leave: "23:59", tick_s: 60, target: { energy_wh: 10000, leave_time: "18:00" } }
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 60 }
  - { id: socket, adapter: sim_socket, rated_power_w: 1800, tick_s: 60, schedule: { hours: 2, window: { from: "20:00", to: "06:00" } } }
  - { id: ac, adapter: sim_hvac, comfort: { min_c: 22, max_c: 25 }, tick_s: 60 }
`;

/** Errors a healthy hub may answer with a 5xx: a state, not a failure. */
const EXPECTED_5XX = new Set(['no_plan', 'store_unavailable', 'tariffs_unavailable']);

const t = (h: number) => new Date(Date.parse(NOW) + h * 3_600_000).toISOString();

/** A request that works, per endpoint: the fuzzer mutates these. */
const SEEDS: Record<string, { query?: Record<string, string>; body?: unknown }> = {
  'GET /api/v1/tariffs/rates/:location_id': { query: { start_time: t(0), end_time: t(24), direction: 'IMPORT' } },
  'PUT /api/v1/tariffs/rates/:location_id': { query: { direction: 'IMPORT' }, body: { currency_code: 'EUR', data: [{ valid_from: t(1), valid_to: t(2), rate: 0.25 }, { valid_from: t(2), valid_to: t(3), rate: 0.19 }] } },
  'GET /api/v1/slots/time/:location_id': { query: { start_time: t(0), end_time: t(12), segment: 'LOW', duration: '90', continuous: 'true' } },
  'GET /api/v1/slots/threshold/:location_id': { query: { start_time: t(0), end_time: t(12), segment: 'HIGH', relative: '0.5' } },
  'POST /api/v1/schedules': { body: { location_id: 'home', max_power: { units: 'W', value: 7000 }, data: [{ device_id: 'ev', direction: 'IMPORT', start_time: t(0), end_time: t(8), max_power: { units: 'KW', value: 3.7 }, energy: { units: 'KWH', value: 10 } }] } },
  'PUT /api/v1/meters/interval': { body: [{ device_id: 'meter1', units: 'WH', value: 12.5, start_time: t(-2), end_time: t(-1.75), record_reference_id: 'r1', confidence: 1 }] },
  'POST /api/v1/meters/interval': { body: { location_id: 'home', units: 'KW', value: 1.2, start_time: t(-2), end_time: t(-1), direction: 'EXPORT', tariff_rate: 'EXPORT' } },
  'PUT /api/v1/meters/cumulative/epoch': { body: { device_id: 'meter2', units: 'KWH', data: [{ time: Date.parse(t(-3)) / 1000, value: 100.5 }, { time: Date.parse(t(-2)) / 1000, value: 101.25 }] } },
  'POST /api/v1/meters/cumulative/epoch': { body: { device_id: 'meter2', data: [{ time: Date.parse(t(-1)) / 1000, value: 101600 }] } },
  'POST /api/v1/costs/interval/:id': { query: { aggregation: 'DAY', direction: 'IMPORT', include_tariff: 'true' }, body: { start_time: t(-24), end_time: t(0) } },
  'POST /api/v1/costs/session/:ref': { body: {} },
  'GET /api/v1/savings/:id': { query: { start_time: t(-24), end_time: t(0) } },
  'PUT /api/v1/limits/:id': { body: { schedule_import: [{ timestamp: t(0), total_power_W: 9000 }, { timestamp: t(3), total_power_W: 4000 }], schedule_export: [] } },
  'PUT /api/v1/devices/:id/target': { body: { energy_wh: 8000, leave_time: '07:30', price_limit: 0.25, solar_only: false } },
  'PUT /api/v1/devices/:id/schedule': { body: { hours: 3, window: { from: '21:00', to: '06:00' }, continuous: true, max_rate: 0.2 } },
  'PUT /api/v1/devices/:id/comfort': { body: { min_c: 21, max_c: 24 } },
  'PUT /api/v1/devices/:id/pause': { body: { paused: true } },
  'PUT /api/v1/devices/:id/mode': { body: { mode: 'minpv' } },
  'POST /api/v1/discovered/:id/add': { body: { id: 'found-1', name: 'Found device' } },
  'POST /api/v1/backup': { body: {} },
};

const PARAM_VALUES: Record<string, string[]> = {
  location_id: ['home'],
  id: ['home', 'ev', 'battery', 'socket', 'ac', 'garage', 'meter1', 'meter2'],
  ref: ['ev-1', 'nope'],
};

const bodyArb = (seed: Json) =>
  fc.oneof(
    { weight: 6, arbitrary: mutation.map((m) => ({ json: applyMutation(seed, m) })) },
    { weight: 1, arbitrary: fc.constant({ json: seed }) },
    { weight: 2, arbitrary: weird.map((json) => ({ json })) },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('{', '{"a":', '[1,,2]', '{"__proto__": {"polluted": 1}}', 'null', '\u0000', '{"data": [}', '﻿{}')).map((raw) => ({ raw })) },
  );

const queryArb = (seed: Record<string, string> | undefined) =>
  fc.record({
    drop: fc.subarray(Object.keys(seed ?? {})),
    set: fc.array(fc.tuple(fc.constantFrom(...Object.keys(seed ?? { x: '' }), 'start_time', 'end_time', 'direction', 'aggregation', 'kind', 'segment', 'duration', 'relative', 'absolute', 'foo'), fc.oneof(weird.map((v) => (typeof v === 'string' ? v : JSON.stringify(v) ?? '')), fc.string({ maxLength: 30 }))), { maxLength: 3 }),
    repeat: fc.boolean(),
  }).map(({ drop, set, repeat }) => {
    const q = new URLSearchParams(Object.entries(seed ?? {}).filter(([k]) => !drop.includes(k)));
    for (const [k, v] of set) q.set(k, v);
    const first = [...q.keys()][0];
    if (repeat && first) q.append(first, q.get(first)!);
    return q.toString();
  });

const paramArb = (name: string) => fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...(PARAM_VALUES[name] ?? ['x'])) }, { weight: 1, arbitrary: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constantFrom('..', '%2e%2e', '%00', 'a%2Fb', '%E2%82', 'x'.repeat(3000), '__proto__')) });

let h: TestHub;
let routes: { method: string; url: string }[];
beforeAll(async () => {
  h = await startHub(SITE, { clock: new ManualClock(NOW) });
  await h.hub.services.control!.settled();
  routes = routesOf(h.hub.http!.printRoutes({ commonPrefix: false }));
});
afterAll(() => h?.stop());

describe('HTTP API fuzzing', () => {
  it('finds every endpoint of the running app, and a seed request for each write', () => {
    const api = routes.filter((r) => r.url.startsWith('/api/'));
    expect(api.length).toBeGreaterThanOrEqual(25);
    for (const r of api) if (r.method !== 'GET' && r.method !== 'DELETE') expect(SEEDS[`${r.method} ${r.url}`], `${r.method} ${r.url}`).toBeDefined();
  });

  it('answers every fuzzed request with a success or a clear JSON error, never a 500 or a stack trace, and stays up', async () => {
    const api = routes.filter((r) => r.url.startsWith('/api/') && r.url !== '/api/v1/events');
    const pages = routes.filter((r) => !r.url.startsWith('/api/')).slice(0, 3);
    let requests = 0;
    const statuses = new Map<number, number>();
    for (const route of [...api, ...pages]) {
      const key = `${route.method} ${route.url}`;
      const seed = SEEDS[key] ?? {};
      const params = [...route.url.matchAll(/:(\w+)/g)].map((m) => m[1]);
      await fc.assert(
        fc.asyncProperty(
          fc.tuple(...params.map(paramArb)),
          queryArb(seed.query),
          route.method === 'GET' || route.method === 'DELETE' ? fc.constant({ json: undefined }) : bodyArb(seed.body),
          fc.constantFrom('application/json', 'application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded'),
          async (values, query, body, contentType) => {
            let url = route.url;
            params.forEach((p, i) => (url = url.replace(`:${p}`, /%|^\.\.$/.test(values[i]) ? values[i] : encodeURIComponent(values[i]))));
            const b = body as { json?: unknown; raw?: string };
            const payload = b.raw !== undefined ? b.raw : b.json === undefined ? undefined : JSON.stringify(b.json);
            const res = await h.hub.http!.inject({ method: route.method as 'GET', url: query ? `${url}?${query}` : url, payload, headers: payload === undefined ? {} : { 'content-type': contentType } });
            requests++;
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            const what = `${route.method} ${url}?${query} ${String(payload).slice(0, 300)} → ${res.statusCode} ${res.body.slice(0, 400)}`;
            expect(res.body, what).not.toMatch(STACK_TRACE);
            if (!route.url.startsWith('/api/')) return;
            // a success may be a file (POST /backup answers the archive); every error is JSON
            if (res.statusCode < 400 && !String(res.headers['content-type'] ?? '').startsWith('application/json')) return;
            const json = JSON.parse(res.body) as { object?: string; type?: string; code?: string; message?: string };
            if (res.statusCode >= 400) {
              expect(json, what).toMatchObject({ object: 'error', type: res.statusCode >= 500 ? 'api_error' : 'invalid_request' });
              expect(typeof json.code === 'string' && typeof json.message === 'string' && json.message.length > 5, what).toBe(true);
            }
            if (res.statusCode >= 500) expect(EXPECTED_5XX.has(json.code!), what).toBe(true);
          },
        ),
        { numRuns: SEEDS[key] ? 100 : 25, seed: SEED, endOnFailure: true },
      );
      await h.hub.services.control!.settled();
    }
    expect(requests).toBeGreaterThan(800);
    // the seeds worked at least sometimes: the fuzzing reached the stores, not only the validators
    expect(statuses.get(200) ?? 0).toBeGreaterThan(100);
    expect(h.logText()).not.toMatch(/"msg":"request failed"|unhandled error in the hub/);
    expect((await h.hub.http!.inject({ url: '/api/v1/health' })).statusCode).toBe(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a register that jumps beyond any meter is refused by name, and the readings around it still count', async () => {
    const time = (m: number) => Date.parse('2026-02-01T00:00:00Z') / 1000 + m * 60;
    const res = await h.hub.http!.inject({
      method: 'PUT',
      url: '/api/v1/meters/cumulative/epoch',
      payload: { device_id: 'glitchy', units: 'WH', data: [{ time: time(0), value: 5000 }, { time: time(1), value: 5100 }, { time: time(2), value: 1e308 }, { time: time(3), value: 2e9 }, { time: time(4), value: 5300 }] },
    });
    const batch = JSON.parse(res.body) as { records_processed: number; failed_records: { record_num: number; error: string }[] };
    expect(res.statusCode).toBe(200);
    expect(batch.failed_records.map((f) => f.record_num)).toEqual([2, 3]);
    expect(batch.failed_records[0].error).toMatch(/beyond any meter/);
    expect(batch.records_processed).toBe(3);
    const cost = await h.hub.http!.inject({ method: 'POST', url: '/api/v1/costs/interval/glitchy?aggregation=NONE', payload: { start_time: '2026-02-01T00:00:00Z', end_time: '2026-02-01T01:00:00Z' } });
    expect((JSON.parse(cost.body) as { total: { energy: { value: number } } }).total.energy.value).toBe(300);
  });

  it('stored nothing unreasonable: meter rows, limits, overrides and imported prices are all sane, and the hub still plans', async () => {
    const metering = h.hub.services.metering!;
    await metering.drain();
    const store = metering.store as MeterStore;
    const [lo, hi] = [Date.UTC(1970, 0, 1), Date.UTC(2100, 0, 1)];
    for (const { subject } of store.subjects()) {
      const set = store.intervals(subject, -Infinity, Infinity);
      for (let i = 0; i < set.n; i++) {
        const row = `${subject} ${set.start[i]}–${set.end[i]} ${set.energy[i]} Wh`;
        expect(set.start[i] >= lo && set.end[i] <= hi && set.end[i] > set.start[i], row).toBe(true);
        expect(Number.isFinite(set.energy[i]) && set.energy[i] >= 0 && set.energy[i] <= 1e9, row).toBe(true);
        expect(set.confidence[i] > 0 && set.confidence[i] <= 1, row).toBe(true);
      }
    }
    await h.hub.services.state.flush();
    const state = await StateStore.open(h.hub.config.storage.dir);
    const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
    for (const [id, l] of Object.entries(state.data.limits as Record<string, Record<string, { timestamp: string; total_power_W: number | null }[]>>)) {
      expect(['home', 'garage', 'ev', 'battery', 'socket', 'ac']).toContain(id);
      for (const k of ['schedule_import', 'schedule_export', 'schedule_setpoints']) {
        for (const e of l[k] ?? []) {
          expect(Number.isFinite(Date.parse(e.timestamp)), JSON.stringify(e)).toBe(true);
          expect(e.total_power_W === null || finite(e.total_power_W), JSON.stringify(e)).toBe(true);
        }
      }
    }
    for (const [id, o] of Object.entries(state.data.overrides as Record<string, Record<string, Record<string, unknown> | boolean>>)) {
      expect(['ev', 'battery', 'socket', 'ac']).toContain(id);
      for (const v of Object.values(o)) if (v && typeof v === 'object') for (const x of Object.values(v)) if (typeof x === 'number') expect(Number.isFinite(x)).toBe(true);
    }
    const imported = state.data.tariffs.imported as Record<string, { slots: [number, number, number, number][] }>;
    for (const series of Object.values(imported)) {
      for (const [start, end, rate, confidence] of series.slots) expect(end > start && Number.isFinite(rate) && confidence >= 0 && confidence <= 1).toBe(true);
    }
    const plan = await h.hub.http!.inject({ url: '/api/v1/plan' });
    expect(plan.statusCode, plan.body.slice(0, 300)).toBe(200);
    const cost = await h.hub.http!.inject({ method: 'POST', url: '/api/v1/costs/interval/home?aggregation=DAY', payload: { start_time: '2026-03-01T00:00:00Z', end_time: '2026-03-12T00:00:00Z' } });
    expect(cost.statusCode).toBe(200);
  });
});
