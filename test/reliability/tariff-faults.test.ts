import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DateTime } from 'luxon';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { PlanView } from '../../src/control/view.js';
import type { TariffService } from '../../src/tariff/service.js';
import { startHub, type TestHub } from '../peers/hub.js';
import { api } from './helpers.js';

/**
 * A dynamic tariff source that goes down or answers garbage: the last known prices are kept, the
 * plan degrades to the configured fallback tariff (or repeats the known prices), and the API says so.
 */

const TZ = 'Europe/Berlin';
type Mode = 'good' | 'down' | 'html' | 'absurd' | 'hang';
let mode: Mode = 'down';
let server: Server;
let base = '';
const hits: string[] = [];

/** Energy-Charts' answer shape for the requested local days: EUR/MWh = 100 + 10 × local hour. */
function energyChartsBody(url: URL): string {
  const start = DateTime.fromISO(url.searchParams.get('start')!, { zone: TZ });
  const end = DateTime.fromISO(url.searchParams.get('end')!, { zone: TZ }).plus({ days: 1 });
  const unix: number[] = [];
  const price: number[] = [];
  for (let t = start; t < end; t = t.plus({ hours: 1 })) {
    unix.push(t.toSeconds());
    price.push(100 + 10 * t.hour);
  }
  return JSON.stringify({ license_info: 'test', unix_seconds: unix, price, unit: 'EUR / MWh' });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (mode === 'hang') return;
    if (mode === 'down') {
      res.statusCode = 503;
      return res.end('Service Unavailable');
    }
    if (mode === 'html') return res.end('<html><body>Maintenance</body></html>');
    if (mode === 'absurd') {
      // parses as JSON, but the numbers are nonsense: a start in the year 5000, prices of 10^300, times going backwards
      return res.end(JSON.stringify({ unix_seconds: [95_617_584_000, 1_000, -5, 1e300], price: [1e300, -1e300, 42, 1], unit: 'EUR / MWh' }));
    }
    res.end(energyChartsBody(url));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const running: TestHub[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) await h.stop();
});

const TOU = `{ type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.21 }, { from: "07:00", to: "00:00", rate: 0.34 } ] }`;
const site = (fallback: boolean) => `
site: { id: home, timezone: ${TZ}, currency: EUR }
planner: { replan_minutes: 15, slot_minutes: 15 }
tariffs:
  import: { type: energy_charts, url: "${base}", retries: 0, timeout_ms: 1500, refresh_cron: "0 0 1 1 *"${fallback ? `, fallback: ${TOU}` : ''} }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 50, tick_s: 60 }
`;

async function start(fallback: boolean, at: string) {
  const clock = new ManualClock(at);
  const h = await startHub(site(fallback), { clock });
  running.push(h);
  const tariffs = h.hub.services.tariffs as TariffService;
  const control = h.hub.services.control!;
  // the first fetch runs in the background at start; let it finish before the test changes the provider
  await tariffs.refresh('IMPORT').catch(() => undefined);
  await control.settled();
  const refresh = async () => {
    await tariffs.refresh('IMPORT').catch(() => undefined);
    await control.settled();
  };
  const plan = async () => (await api(h.hub, 'GET', '/plan')).body as unknown as PlanView;
  const rates = async (from: string, to: string) => {
    const r = await api(h.hub, 'GET', `/tariffs/rates/home?start_time=${from}&end_time=${to}`);
    return r.body as unknown as { source: { type: string; error: string | null; fallback: { type: string; description: string; active: boolean } | null }; data: { valid_from: string; valid_to: string; tariff: { rate: number; confidence: number } }[] };
  };
  /** Jumps the hub clock and lets the control loop notice (its slot timer fires, the plan is due). */
  const jump = async (to: string) => {
    clock.set(to);
    await clock.advance(1000);
    await control.settled();
  };
  return { h, clock, tariffs, control, refresh, plan, rates, jump };
}

/** The ToU fallback's rate at an instant (local hour before 07:00 = 0.21). */
const touAt = (t: number) => (DateTime.fromMillis(t, { zone: TZ }).hour < 7 ? 0.21 : 0.34);
/** The provider's rate at an instant: (100 + 10 × local hour) EUR/MWh. */
const providerAt = (t: number) => (100 + 10 * DateTime.fromMillis(t, { zone: TZ }).hour) / 1000;

describe('tariff source down or answering garbage', () => {
  it('plans on the fallback while the provider is down, on its prices once it answers, and keeps them through garbage', async () => {
    mode = 'down';
    const { h, refresh, plan, rates, jump } = await start(true, '2026-03-10T10:00:00Z');

    // 1. down from the start: the fallback prices the whole plan, at lower confidence, and everything says so
    let p = await plan();
    expect(p.notes.join('\n')).toMatch(/import prices: the energy_charts tariff is failing \(.*HTTP 503.*\); the fallback tariff \(time of use.*\) stands in/);
    p.slots.forEach((s, t) => expect(p.import_rate[t]).toBe(touAt(Date.parse(s.start_time))));
    let r = await rates('2026-03-10T10:00:00Z', '2026-03-10T14:00:00Z');
    expect(r.source.error).toMatch(/HTTP 503/);
    expect(r.source.fallback).toMatchObject({ type: 'time_of_use', active: true });
    expect(r.data.length).toBeGreaterThan(0);
    for (const d of r.data) expect(d.tariff).toEqual({ rate: 0.34, confidence: 0.5 });
    expect(h.logText()).toMatch(/tariff energy_charts refresh failed; keeping the last known prices; the fallback tariff \(time of use/);

    // 2. the provider answers: its prices drive the plan, the fallback steps back, the note goes
    mode = 'good';
    await refresh();
    p = await plan();
    expect(p.notes.join('\n')).not.toMatch(/import prices/);
    const known = Date.parse('2026-03-11T23:00:00Z'); // local midnight after tomorrow: the end of the published prices
    p.slots.forEach((s, t) => {
      const at = Date.parse(s.start_time);
      // beyond the published prices the plan repeats the day before, as with a healthy source
      expect(p.import_rate[t]).toBeCloseTo(providerAt(at < known ? at : at - 86_400_000), 6);
    });
    r = await rates('2026-03-10T10:00:00Z', '2026-03-10T14:00:00Z');
    expect(r.source).toMatchObject({ error: null, fallback: { active: false } });
    expect(r.data.length).toBeGreaterThanOrEqual(4);
    for (const d of r.data) expect(d.tariff).toEqual({ rate: providerAt(Date.parse(d.valid_from)), confidence: 1 });

    // 3. seven hours later the provider answers garbage: the known prices stay, the fallback fills after them
    for (const garbage of ['html', 'absurd', 'hang'] as const) {
      mode = garbage;
      await jump(garbage === 'html' ? '2026-03-10T17:00:00Z' : garbage === 'absurd' ? '2026-03-10T17:15:00Z' : '2026-03-10T17:30:00Z');
      await refresh();
      r = await rates('2026-03-11T10:00:00Z', '2026-03-11T11:00:00Z');
      expect(r.source.error, garbage).toMatch(garbage === 'html' ? /not JSON/ : garbage === 'hang' ? /no answer within 1500 ms/ : /.+/);
      expect(r.data.map((d) => d.tariff), garbage).toEqual([{ rate: providerAt(Date.parse('2026-03-11T10:00:00Z')), confidence: 1 }]);
      p = await plan();
      expect(p.notes.join('\n')).toMatch(/the energy_charts tariff is failing/);
      p.slots.forEach((s, t) => {
        const at = Date.parse(s.start_time);
        expect(p.import_rate[t]).toBeCloseTo(at < known ? providerAt(at) : touAt(at), 6);
      });
    }
    // nothing of the garbage was stored: the cached prices are whole hours of sensible rates
    const cached = h.hub.services.state.kv('tariff:import').get<[number, number, number][]>('slots')!;
    for (const [start, end, price] of cached) {
      expect(end - start).toBe(3_600_000);
      expect(price).toBeGreaterThanOrEqual(0.1);
      expect(price).toBeLessThanOrEqual(0.33);
    }

    // 4. three days on, still down: the known prices have run out and the fallback prices everything
    mode = 'down';
    await jump('2026-03-13T09:00:00Z');
    await refresh();
    p = await plan();
    p.slots.forEach((s, t) => expect(p.import_rate[t]).toBe(touAt(Date.parse(s.start_time))));
    r = await rates('2026-03-13T09:00:00Z', '2026-03-13T10:00:00Z');
    expect(r.data).toEqual([{ valid_from: '2026-03-13T09:00:00.000Z', valid_to: '2026-03-13T10:00:00.000Z', tariff: { rate: 0.34, confidence: 0.5 } }]);
    // the past keeps the provider's prices of its time (the fallback is never written into the history)
    r = await rates('2026-03-10T12:00:00Z', '2026-03-10T13:00:00Z');
    expect(r.data.map((d) => d.tariff.rate)).toEqual([0.23]);
  });

  it('without a fallback, repeats the last known prices and says so; with none known it explains why there is no plan', async () => {
    mode = 'good';
    const first = await start(false, '2026-03-10T10:00:00Z');
    mode = 'down';
    await first.jump('2026-03-12T06:00:00Z');
    await first.refresh();
    const p = await first.plan();
    expect(p.notes.join('\n')).toMatch(/import prices: the energy_charts tariff is failing \(.*HTTP 503.*\); the last known prices are repeated day by day/);
    // today's slots repeat yesterday's published prices
    const t = p.slots.findIndex((s) => s.start_time === '2026-03-12T10:00:00.000Z');
    expect(p.import_rate[t]).toBeCloseTo(providerAt(Date.parse('2026-03-12T10:00:00Z')), 6);

    mode = 'down';
    const fresh = await start(false, '2026-03-10T10:00:00Z');
    const none = await api(fresh.h.hub, 'GET', '/plan');
    expect(none.status).toBe(503);
    expect(none.body).toMatchObject({ object: 'error', code: 'no_plan' });
    expect(String(none.body.message)).toMatch(/no prices/);
  });

  it('a fallback must be fixed or time_of_use, checked like the tariff itself', async () => {
    const { parseConfig, ConfigError } = await import('../../src/core/config/load.js');
    const { builtinCatalog } = await import('../../src/core/catalog.js');
    const { hubChecks } = await import('../../src/core/config/checks.js');
    const check = (tariff: string) => {
      try {
        parseConfig(`site: { id: home }\ntariffs:\n  import: ${tariff}\n`, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} });
        return [];
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        return err.problems.map((x) => `${x.line}:${x.col} ${x.path}: ${x.message}`);
      }
    };
    expect(check(`{ type: awattar, fallback: { type: fixed, rate: 0.3 } }`)).toEqual([]);
    expect(check(`{ type: awattar, fallback: { type: awattar } }`).join('\n')).toMatch(/tariffs\.import\.fallback\.type: .*fixed.*time_of_use/);
    expect(check(`{ type: awattar, fallback: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.2 } ] } }`).join('\n')).toMatch(/tariffs\.import\.fallback.*(gap|cover)/);
  });
});
