import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanView } from '../../src/control/view.js';
import { forecastCheckCommand } from '../../src/forecast/cli.js';
import type { ForecastView } from '../../src/forecast/service.js';
import { minuteStepper } from '../peers/api.js';
import { quietHubs } from '../peers/hub.js';
import { runCommand } from '../peers/cli-run.js';

/** Open-Meteo on 127.0.0.1, answering the documented example shape (test/fixtures/forecasts/README.md), or failing. */
let server: Server;
let weatherUrl: string;
let answer: (res: ServerResponse) => void;
beforeAll(async () => {
  server = createServer((_req, res) => answer(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  weatherUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const hubOf = quietHubs('homeflex-forecasts-');

const site = (url: string) => `
site: { id: home, timezone: Europe/Berlin, currency: EUR, latitude: 52.52, longitude: 13.41 }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.20 }, { from: "07:00", to: "00:00", rate: 0.35 } ] }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 50, tick_s: 60 }
  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 60 }
  - { id: roof-meter, adapter: sim_pv, kwp: 6, tick_s: 60 }
forecasts:
  pv:
    - { id: roof, kwp: 6, tilt: 30, azimuth: 180, inverter_kw: 5, device: roof-meter }
    - { id: shed, kwp: 1.5, tilt: 10, azimuth: 90 }
  source: { type: open_meteo, url: "${url}", retries: 0, timeout_ms: 2000 }
`;

async function start(at: string) {
  const { hub, clock, dir } = await hubOf(site(weatherUrl), { at });
  const control = hub.services.control!;
  const forecasts = hub.services.forecasts!;
  await forecasts.refresh().catch(() => undefined);
  control.request('forecast fetched');
  await control.settled();
  const get = async (path: string) => {
    const r = await fetch(`${hub.url}/api/v1${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const advance = minuteStepper(clock, control);
  return { hub, clock, control, get, advance, dir };
}

describe('forecast sources in the live hub', () => {
  it('plans with the weather source’s PV, stores the forecasts as made, and reports their errors by lead time (API and CLI)', async () => {
    answer = (res) => res.end(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'forecasts', 'open-meteo-forecast.json')));
    const { hub, get, advance } = await start('2026-06-21T03:10:00Z');
    const plan = (await get('/plan')).body as unknown as PlanView & { forecasts: { pv: string[] }; notes: string[] };
    expect(plan.forecasts.pv[0]).toMatch(/^roof-meter: Open-Meteo weather, hourly \(else clear sky/);
    expect(plan.forecasts.pv[1]).toMatch(/^array shed: Open-Meteo weather/);
    expect(plan.notes.filter((n) => n.includes('stands in'))).toEqual([]);
    // the overcast 22 June gives far less than the clear 21st, and the 5 kW inverter clips the 6 kWp roof
    const rec = hub.services.control!.latest!;
    const roof = rec.problem.flows.find((f) => f.id === 'roof-meter')!;
    const dayWh = (day: string) => rec.problem.slots.reduce((a, s, i) => a + (new Date(s.start).toISOString().startsWith(day) ? (-roof.powerW[i] * (s.end - s.start)) / 3_600_000 : 0), 0);
    expect(dayWh('2026-06-22')).toBeLessThan(0.5 * dayWh('2026-06-21'));
    expect(Math.max(...roof.powerW.map((w) => -w))).toBeLessThanOrEqual(5000);
    expect(rec.problem.flows.find((f) => f.id === 'pv:shed')).toBeDefined();

    await advance(4 * 3_600_000);
    const { status, body } = await get('/forecasts?start_time=2026-06-21T00:00:00Z&end_time=2026-06-22T00:00:00Z');
    expect(status).toBe(200);
    const view = body as unknown as ForecastView;
    expect(view.source).toMatchObject({ type: 'open_meteo', description: 'Open-Meteo weather, hourly', error: null, degraded: false });
    const pv = view.series.find((s) => s.series === 'pv')!;
    const load = view.series.find((s) => s.series === 'base_load')!;
    // the hours from 04:00 UTC were forecast (first at 03:10), and those that ended before the last hourly record were measured
    const measured = pv.data.filter((d) => d.actual_w !== null && d.start_time >= '2026-06-21T04');
    expect(measured.map((d) => d.start_time.slice(11, 16))).toEqual(expect.arrayContaining(['04:00', '05:00']));
    expect(measured.every((d) => d.forecast_w !== null && d.made_at !== null && d.made_at < d.start_time)).toBe(true);
    expect(pv.errors.find((e) => e.horizon === '0–1 h')!.slots).toBeGreaterThan(0);
    expect(load.errors.reduce((a, e) => a + e.slots, 0)).toBeGreaterThan(0);
    expect(pv.data.find((d) => d.start_time.startsWith('2026-06-21T12:00'))!.latest_w).toBeGreaterThan(1000);

    // forecast-check prints the same table from the running hub
    const { code, out, err } = await runCommand(forecastCheckCommand, ['--from', '2026-06-21T00:00:00Z', '--to', '2026-06-22T00:00:00Z', '--url', hub.url], { env: {} });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('PV source: Open-Meteo weather, hourly');
    const pvRow = pv.errors.find((e) => e.horizon === '0–1 h')!;
    expect(out).toMatch(new RegExp(`\\npv\\s+0–1 h\\s+${pvRow.slots}\\s+${pvRow.mae_w.toFixed(0)}\\s`));

    // bad queries say which field is wrong
    expect((await get('/forecasts?start_time=yesterday')).body).toMatchObject({ object: 'error', type: 'invalid_request', message: expect.stringMatching(/^start_time: must be an RFC 3339 time/) });
    expect((await get('/forecasts?start_time=2026-01-01T00:00:00Z&end_time=2026-06-01T00:00:00Z')).status).toBe(400);
    expect((await get('/forecasts?days=3')).body).toMatchObject({ message: expect.stringMatching(/^days: unknown field/) });
  }, 300_000);

  it('a failing source: the clear-sky forecast stands in, and the plan and GET /forecasts say so', async () => {
    answer = (res) => {
      res.statusCode = 503;
      res.end('down for maintenance');
    };
    const { get } = await start('2026-06-21T03:10:00Z');
    const plan = (await get('/plan')).body as unknown as PlanView & { notes: string[]; forecasts: { pv: string[] } };
    expect(plan.notes).toContainEqual(expect.stringMatching(/^roof-meter: PV forecast source open_meteo is failing \(127\.0\.0\.1:\d+\/v1\/forecast answered HTTP 503 \(after 1 attempt\)\) and its last forecast ends; clear sky × recent production \(3 days\), 6 kWp stands in for \d+ of \d+ hours$/));
    expect(plan.notes).toContainEqual(expect.stringMatching(/^array shed: PV forecast source open_meteo is failing/));
    const view = (await get('/forecasts')).body as unknown as ForecastView;
    expect(view.source).toMatchObject({ type: 'open_meteo', degraded: true, error: expect.stringContaining('HTTP 503') });
  }, 300_000);
});
