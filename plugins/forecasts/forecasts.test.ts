import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRetryable, type AdapterStore, type ForecastSourceContext, type PvArraySpec } from '../../src/api/index.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { parseConfig } from '../../src/core/config/load.js';
import { fileForecast, forecastSolar, httpForecast, openMeteo, parseForecastSolar, parseHomeflexForecast, parseOpenMeteo, parseSolcast, solcast } from './sources.js';
import { busyThen, httpServerForTests, memoryStore, quietLog } from '../../test/peers/http-server.js';

/**
 * The fixtures are built from each provider's DOCUMENTED example answer (shape and field names
 * from its API documentation; see test/fixtures/forecasts/README.md): nothing was recorded live.
 */
const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'forecasts');
const fixture = (p: string) => readFileSync(join(FIX, p), 'utf8');
const iso = (t: number) => new Date(t).toISOString().slice(0, 16);
const site = { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' };
const H = 3_600_000;

describe('forecast parsers on the providers’ documented example answers', () => {
  it('Open-Meteo: hourly irradiance is the mean over the hour ending at each time (UTC), temperature with it', () => {
    const w = parseOpenMeteo(fixture('open-meteo-forecast.json'));
    expect(w).toHaveLength(96);
    expect([iso(w[0].start), iso(w[0].end)]).toEqual(['2026-06-19T23:00', '2026-06-20T00:00']);
    const noon = w.find((p) => iso(p.end) === '2026-06-21T11:00')!;
    expect(noon.ghi).toBeGreaterThan(800);
    expect(noon.dhi).toBeLessThan(noon.ghi);
    expect(noon.tempC).toBeGreaterThan(15);
    // night: nothing
    expect(w.find((p) => iso(p.end) === '2026-06-21T00:00')!.ghi).toBe(0);
  });

  it('Open-Meteo: a negative value at night’s edge is 0, a unit other than W/m² or a missing column is an error', () => {
    const doc = JSON.parse(fixture('open-meteo-forecast.json'));
    doc.hourly.shortwave_radiation[4] = -1.5;
    expect(parseOpenMeteo(JSON.stringify(doc))[4].ghi).toBe(0);
    doc.hourly_units.shortwave_radiation = 'MJ/m²';
    expect(() => parseOpenMeteo(JSON.stringify(doc))).toThrow('open_meteo: shortwave_radiation in "MJ/m²", expected W/m²');
    doc.hourly_units.shortwave_radiation = 'W/m²';
    delete doc.hourly.shortwave_radiation;
    expect(() => parseOpenMeteo(JSON.stringify(doc))).toThrow('open_meteo: expected "hourly.shortwave_radiation" as long as "time"');
    expect(() => parseOpenMeteo('{"hourly":{}}')).toThrow('open_meteo: expected "hourly.time" in the answer');
  });

  it('Forecast.Solar: power at local instants → mean power between them; its energy is the documented watt_hours_day', () => {
    const body = fixture('forecast-solar-estimate.json');
    const p = parseForecastSolar(body, site);
    // 19 instants a day → 18 periods, two days, nothing over the night
    expect(p).toHaveLength(36);
    expect(iso(p[0].start)).toBe('2026-06-21T02:48'); // 04:48 CEST
    const whDay = JSON.parse(body).result.watt_hours_day as Record<string, number>;
    const dayWh = (d: string) => p.filter((x) => iso(x.start).startsWith(d)).reduce((a, x) => a + (x.powerW * (x.end - x.start)) / H, 0);
    expect(dayWh('2026-06-21')).toBeCloseTo(whDay['2026-06-21'], -1);
    expect(dayWh('2026-06-22')).toBeCloseTo(whDay['2026-06-22'], -1);
    expect(() => parseForecastSolar('{"result":{"watts":{"tomorrow noon":5}}}', site)).toThrow('forecast_solar: "tomorrow noon": 5 is not a time and a power');
  });

  it('Solcast: kW over the period ending at period_end → W with the 10 % and 90 % quantiles', () => {
    const p = parseSolcast(fixture('solcast-forecasts.json'));
    expect(p).toHaveLength(96);
    expect([iso(p[0].start), iso(p[0].end)]).toEqual(['2026-06-21T00:00', '2026-06-21T00:30']);
    const peak = p.reduce((a, b) => (b.powerW > a.powerW ? b : a));
    expect(peak.powerW).toBeGreaterThan(3000);
    expect(peak.p10W! < peak.powerW && peak.powerW < peak.p90W!).toBe(true);
    expect(() => parseSolcast('{"forecasts":[{"pv_estimate":1,"period_end":"2026-06-21T00:30:00Z","period":"30 minutes"}]}')).toThrow('solcast: forecasts[0].period is "30 minutes", expected PT<minutes>M');
  });

  it('homeflex format: errors name the entry and the field', () => {
    expect(parseHomeflexForecast(fixture('homeflex-forecast.json'), 'http')).toHaveLength(3);
    expect(() => parseHomeflexForecast('{"data":[{"valid_from":"2026-06-21T08:00:00Z","valid_to":"2026-06-21T09:00:00Z","power_w":"2 kW"}]}', 'http')).toThrow('http: data[0].power_w must be a number (W)');
    expect(() => parseHomeflexForecast('{"data":[{"valid_from":"8 am","valid_to":"9 am","power_w":1}]}', 'file')).toThrow('file: data[0]: valid_from and valid_to must be RFC 3339 times');
  });
});

describe('forecast sources against a local HTTP server: URLs, timeouts, retries, cache, outages', () => {
  let base: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.end();
  const hits: { url: string; auth?: string }[] = [];
  httpServerForTests(
    (req, res) => {
      hits.push({ url: req.url ?? '', auth: req.headers.authorization });
      handler(req, res);
    },
    (url) => (base = url),
  );
  const store = (): AdapterStore => memoryStore(true);
  const arrays: PvArraySpec[] = [
    { id: 'east', kwp: 4, tilt: 30, azimuth: 90, latitude: 52.52, longitude: 13.41 },
    { id: 'west', kwp: 2, tilt: 30, azimuth: 270, latitude: 52.52, longitude: 13.41 },
  ];
  const ctx = (cache: AdapterStore, now = '2026-06-21T03:00:00Z', list = arrays): ForecastSourceContext => {
    const clock = new ManualClock(now);
    return { log: quietLog, clock: { ...systemClock, now: () => clock.now() }, site, arrays: list, fetch: globalThis.fetch, cache };
  };
  const serve = (name: string) => (_q: IncomingMessage, res: ServerResponse) => res.end(fixture(name));

  it('Open-Meteo: one request at the site with the irradiance variables; the weather is kept per hour', async () => {
    hits.length = 0;
    handler = serve('open-meteo-forecast.json');
    const src = openMeteo.create(ctx(store()), { type: 'open_meteo', url: base });
    await src.refresh!();
    expect(hits.map((h) => h.url)).toEqual(['/v1/forecast?latitude=52.5200&longitude=13.4100&hourly=shortwave_radiation%2Cdirect_normal_irradiance%2Cdiffuse_radiation%2Ctemperature_2m&forecast_days=3&past_days=1']);
    expect(src.weather!()).toHaveLength(96);
    expect(src.describe()).toBe('Open-Meteo weather, hourly');
  });

  it('Forecast.Solar: one request per array, azimuth turned to its convention (0 south, −90 east, 90 west)', async () => {
    hits.length = 0;
    handler = serve('forecast-solar-estimate.json');
    const src = forecastSolar.create(ctx(store()), { type: 'forecast_solar', url: base });
    await src.refresh!();
    expect(hits.map((h) => h.url)).toEqual(['/estimate/52.5200/13.4100/30/-90/4', '/estimate/52.5200/13.4100/30/90/2']);
    expect(src.pv!().get('east')).toHaveLength(36);
  });

  it('Solcast: bearer key, two rooftop sites added up and shared out over the arrays by kWp, quantiles kept', async () => {
    hits.length = 0;
    handler = serve('solcast-forecasts.json');
    const src = solcast.create(ctx(store()), { type: 'solcast', url: base, api_key: 'sol-key-123', resource_ids: ['abcd-1234', 'efgh-5678'] });
    await src.refresh!();
    expect(hits).toEqual([
      { url: '/rooftop_sites/abcd-1234/forecasts?format=json&hours=72', auth: 'Bearer sol-key-123' },
      { url: '/rooftop_sites/efgh-5678/forecasts?format=json&hours=72', auth: 'Bearer sol-key-123' },
    ]);
    const one = parseSolcast(fixture('solcast-forecasts.json'));
    const k = one.findIndex((p) => p.powerW > 3000);
    const east = src.pv!().get('east')![k];
    const west = src.pv!().get('west')![k];
    // both sites together: 2 × the answer; east has 4 of the 6 kWp
    expect(east.powerW).toBeCloseTo((2 * one[k].powerW * 4) / 6, 6);
    expect(west.powerW).toBeCloseTo((2 * one[k].powerW * 2) / 6, 6);
    expect(east.p10W).toBeCloseTo((2 * one[k].p10W! * 4) / 6, 6);
  });

  it('retries a provider that fails twice, then succeeds', async () => {
    hits.length = 0;
    handler = busyThen(2, () => fixture('homeflex-forecast.json'));
    const src = httpForecast.create(ctx(store()), { type: 'http', url: `${base}/pv.json`, retries: 3, retry_delay_ms: 5, headers: { authorization: 'Bearer abc' } });
    await src.refresh!();
    expect(hits).toHaveLength(3);
    expect(hits[2]).toEqual({ url: '/pv.json', auth: 'Bearer abc' });
    expect(src.pv!().get('east')!.map((p) => p.powerW)).toEqual([2500 * (4 / 6), 3000 * (4 / 6), 3300 * (4 / 6)]);
  });

  it('times out a provider that does not answer, with a retryable error', async () => {
    handler = () => undefined;
    const src = openMeteo.create(ctx(store()), { type: 'open_meteo', url: base, timeout_ms: 150, retries: 0 });
    const err = await src.refresh!().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/no answer within 150 ms \(after 1 attempt\)/);
    expect(isRetryable(err)).toBe(true);
  });

  it('refused credentials are permanent (no retries) and the key is not in the message', async () => {
    hits.length = 0;
    handler = (_q, res) => {
      res.statusCode = 401;
      res.end('Unauthorized');
    };
    const src = solcast.create(ctx(store()), { type: 'solcast', url: base, api_key: 'secret-key-42', resource_ids: ['abcd'], retries: 3, retry_delay_ms: 5 });
    const err = await src.refresh!().catch((e: unknown) => e);
    expect(isRetryable(err)).toBe(false);
    expect((err as Error).message).toMatch(/refused the credentials \(HTTP 401\)/);
    expect((err as Error).message).not.toContain('secret-key-42');
    expect(hits).toHaveLength(1);
  });

  it('keeps the last known forecast through an outage and a restart; never asks more often than the provider allows', async () => {
    const cache = store();
    hits.length = 0;
    handler = serve('solcast-forecasts.json');
    const cfg = { type: 'solcast' as const, url: base, api_key: 'k', resource_ids: ['abcd'], retries: 0 };
    const src = solcast.create(ctx(cache), cfg);
    await src.refresh!();
    // within the rate limit (150 min for Solcast's hobbyist tier): no second call
    await src.refresh!();
    expect(hits).toHaveLength(1);
    handler = (req) => req.socket.destroy();
    const restarted = solcast.create(ctx(cache, '2026-06-21T09:00:00Z'), cfg);
    expect(restarted.pv!().get('east')).toHaveLength(96);
    await expect(restarted.refresh!()).rejects.toThrow(/forecast_provider_unreachable|socket|fetch failed/);
    expect(restarted.pv!().get('east')).toHaveLength(96);
    expect(restarted.lastUpdated!()).toBe(Date.parse('2026-06-21T03:00:00Z'));
  });

  it('drops values that cannot be right; an answer of nothing but garbage is a permanent error and changes nothing', async () => {
    const cache = store();
    handler = serve('homeflex-forecast.json');
    const src = httpForecast.create(ctx(cache), { type: 'http', url: base, retries: 0 });
    await src.refresh!();
    const doc = JSON.parse(fixture('homeflex-forecast.json'));
    doc.data[1].power_w = 1e9;
    handler = (_q, res) => res.end(JSON.stringify(doc));
    const later = httpForecast.create(ctx(cache, '2026-06-21T04:00:00Z'), { type: 'http', url: base, retries: 0 });
    await later.refresh!();
    expect(later.pv!().get('east')!.map((p) => iso(p.start))).toEqual(['2026-06-21T08:00', '2026-06-21T10:00']);
    handler = (_q, res) => res.end('<html>maintenance</html>');
    const broken = httpForecast.create(ctx(cache, '2026-06-21T05:00:00Z'), { type: 'http', url: base, retries: 2, retry_delay_ms: 5 });
    const err = await broken.refresh!().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^http: the answer is not JSON/);
    expect(isRetryable(err)).toBe(false);
    expect(broken.pv!().get('east')).toHaveLength(2);
  });

  it('file: reads the file again on refresh; a missing file is retryable and keeps the last forecast', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-forecast-'));
    const path = join(dir, 'pv.json');
    writeFileSync(path, fixture('homeflex-forecast.json'));
    const cache = store();
    const src = fileForecast.create(ctx(cache), { type: 'file', path });
    await src.refresh!();
    expect(src.pv!().get('west')).toHaveLength(3);
    const gone = fileForecast.create(ctx(cache, '2026-06-21T04:00:00Z'), { type: 'file', path: join(dir, 'nope.json') });
    const err = await gone.refresh!().catch((e: unknown) => e);
    expect(isRetryable(err)).toBe(true);
    expect((err as Error).message).toContain('nope.json: no such file (yet)');
    expect(gone.pv!().get('west')).toHaveLength(3);
  });
});

describe('forecasts in the site file', () => {
  const check = (yaml: string) => parseConfig(`site: { id: home, latitude: 52.5, longitude: 13.4 }\ndevices:\n  - { id: roof, adapter: sim_pv, kwp: 6 }\nforecasts:\n${yaml}`, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: { SOLCAST_KEY: 'k-123' } });

  it('accepts arrays and each source', () => {
    const c = check('  pv:\n    - { id: south, kwp: 6, tilt: 35, azimuth: 180, inverter_kw: 5, device: roof }\n  source: { type: solcast, api_key: "${SOLCAST_KEY}", resource_ids: [abcd-1234] }\n');
    expect(c.forecasts.pv[0]).toMatchObject({ id: 'south', kwp: 6, tilt: 35, azimuth: 180, inverter_kw: 5, device: 'roof', temp_coeff_pct_per_k: -0.4 });
    expect(c.forecasts.source).toMatchObject({ type: 'solcast', api_key: 'k-123' });
    for (const s of ['{ type: open_meteo }', '{ type: forecast_solar }', '{ type: http, url: "http://127.0.0.1:9/pv" }', '{ type: file, path: pv.json }']) {
      expect(check(`  pv: [ { id: a, kwp: 3 } ]\n  source: ${s}\n`).forecasts.source!.type).toBeTruthy();
    }
  });

  it('says what is wrong and where', () => {
    expect(() => check('  pv: [ { id: a, kwp: 3 } ]\n  source: { type: meteo }\n')).toThrow(/site\.yaml:6:\d+ forecasts\.source\.type: unknown forecast source "meteo" \(known: open_meteo, forecast_solar, solcast, http, file\)/);
    expect(() => check('  pv: [ { id: a, kwp: 3 } ]\n  source: { type: solcast, resource_ids: [x] }\n')).toThrow(/site\.yaml:6:\d+ forecasts\.source: missing required key "api_key"/);
    expect(() => check('  pv: [ { id: a, kwp: 3, tilt: 120 } ]\n')).toThrow(/site\.yaml:5:\d+ forecasts\.pv\[0\]\.tilt: must be <= 90 \(got 120\)/);
    expect(() => check('  pv: [ { id: a, kwp: 3, device: garage } ]\n')).toThrow(/site\.yaml:5:\d+ forecasts\.pv\[0\]\.device: unknown device "garage" \(known: roof\)/);
    expect(() => check("  pv: [ { id: a, kwp: 3 }, { id: a, kwp: 2 } ]\n")).toThrow(/site\.yaml:5:\d+ forecasts\.pv\[1\]\.id: duplicate array id "a" \(first used by forecasts\.pv\[0\]\)/);
    expect(() => check('  source: { type: open_meteo }\n')).toThrow(/forecasts\.source: a forecast source needs the PV arrays it forecasts: add forecasts\.pv/);
    expect(() => check('  source: { type: open_meteo, refresh_cron: "every hour" }\n  pv: [ { id: a, kwp: 3 } ]\n')).toThrow(/forecasts\.source\.refresh_cron: "every hour" is not a cron expression/);
    expect(() => check('  pv: [ { id: a, kwp: 3 } ]\n  load: { model: neural }\n')).toThrow(/site\.yaml:6:\d+ forecasts\.load\.model: unknown value "neural" \(known: learned, same_weekday\)/);
  });
});
