import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AdapterStore, TariffSourceContext } from '../../src/api/index.js';
import { isRetryable } from '../../src/api/index.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { parseConfig } from '../../src/core/config/load.js';
import { applySurcharge } from './provider.js';
import { awattar, energyCharts, entsoe, parseAwattar, parseEnergyCharts, parseEnerginet, parseEntsoe, parseNordpool, parseOctopus, parseTibber } from './providers.js';
import { busyThen, httpServerForTests, memoryStore, quietLog } from '../../test/peers/http-server.js';

const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'tariffs');
const fixture = (p: string) => readFileSync(join(FIX, p), 'utf8');
const iso = (t: number) => new Date(t).toISOString().slice(0, 16);
const r9 = (x: number) => Math.round(x * 1e9) / 1e9;

describe('provider parsers on real response bodies', () => {
  it('Energy-Charts: the 25-hour DST day 2025-10-26 has 100 quarter hours, EUR/MWh to EUR/kWh', () => {
    const s = parseEnergyCharts(fixture('energy-charts/2025-10-26.json'));
    expect(s).toHaveLength(100);
    expect([iso(s[0].start), iso(s[0].end), s[0].price]).toEqual(['2025-10-25T22:00', '2025-10-25T22:15', 0.00717]);
    expect([iso(s[99].start), iso(s[99].end), s[99].price]).toEqual(['2025-10-26T22:45', '2025-10-26T23:00', 0.00316]);
    expect(s[99].end - s[0].start).toBe(25 * 3_600_000);
    expect(r9(Math.min(...s.map((x) => x.price)))).toBe(-0.00105);
  });

  it('Energy-Charts: the last hourly day (2025-09-30) has 24 one-hour slots', () => {
    const s = parseEnergyCharts(fixture('energy-charts/2025-09-30.json'));
    expect(s).toHaveLength(24);
    expect([iso(s[0].start), iso(s[0].end), r9(s[0].price)]).toEqual(['2025-09-29T22:00', '2025-09-29T23:00', 0.1011]);
    expect([iso(s[23].start), iso(s[23].end), r9(s[23].price)]).toEqual(['2025-09-30T21:00', '2025-09-30T22:00', 0.09254]);
  });

  it('aWATTar: 24 hours with negative prices', () => {
    const s = parseAwattar(fixture('awattar/1714255200000.json'));
    expect(s).toHaveLength(24);
    expect([iso(s[0].start), iso(s[0].end), r9(s[0].price)]).toEqual(['2024-04-27T22:00', '2024-04-27T23:00', 0.05639]);
    expect(r9(s[12].price)).toBe(-0.11774);
    expect(parseAwattar(fixture('awattar/1787263200000.json'))).toHaveLength(24);
  });

  it('ENTSO-E: 15-minute series win over the hourly ones, A03 gaps carry the last price forward', () => {
    const s = parseEntsoe(fixture('entsoe/DE_60M_15M_overlap.xml'));
    expect(s).toHaveLength(192);
    expect(s.every((x) => x.end - x.start === 15 * 60_000)).toBe(true);
    expect([iso(s[0].start), r9(s[0].price)]).toEqual(['2024-10-05T22:00', 0.0981]);
    // day 1, positions 22-24: 68.2, (missing → 68.2), 63.76
    expect(s.slice(21, 24).map((x) => r9(x.price))).toEqual([0.0682, 0.0682, 0.06376]);
    // day 2, positions 5-7: 64.91, (missing → 64.91), 63.1
    expect(s.slice(96 + 4, 96 + 7).map((x) => r9(x.price))).toEqual([0.06491, 0.06491, 0.0631]);
    expect([iso(s[191].end), r9(s[191].price)]).toEqual(['2024-10-07T22:00', 0.07039]);
  });

  it('ENTSO-E: the hourly series alone fills its A03 gap too', () => {
    const hourlyOnly = fixture('entsoe/DE_60M_15M_overlap.xml').replace(/<resolution>PT15M<\/resolution>/g, '<resolution>PT15M_unused</resolution>');
    expect(() => parseEntsoe(hourlyOnly)).toThrow(/unknown resolution "PT15M_unused"/);
    const xml = fixture('entsoe/DE_60M_15M_overlap.xml');
    const firstSeries = xml.slice(0, xml.indexOf('<TimeSeries>', xml.indexOf('</TimeSeries>'))) + '</Publication_MarketDocument>';
    const s = parseEntsoe(firstSeries);
    expect(s).toHaveLength(48);
    // positions 14-16 of day 1: -0.01, (missing → -0.01), 0.2
    expect(s.slice(13, 16).map((x) => r9(x.price))).toEqual([-0.00001, -0.00001, 0.0002]);
  });

  it('ENTSO-E: "no matching data" is no prices, not an error', () => {
    const ack = '<?xml version="1.0"?><Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0"><Reason><code>999</code><text>No matching data found for Data item Day-ahead Prices [12.1.D]</text></Reason></Acknowledgement_MarketDocument>';
    expect(parseEntsoe(ack)).toEqual([]);
  });

  it('Nord Pool: 24 hours of SE3; another area is an error naming the areas', () => {
    const s = parseNordpool(fixture('nordpool/delivery_period.json'), 'SE3');
    expect(s).toHaveLength(24);
    expect([iso(s[0].start), iso(s[0].end), r9(s[0].price)]).toEqual(['2024-11-04T23:00', '2024-11-05T00:00', 0.02154]);
    expect(r9(s[23].price)).toBe(0.02484);
    expect(() => parseNordpool(fixture('nordpool/delivery_period.json'), 'NO1')).toThrow('nordpool: no prices for area NO1 (areas in the answer: SE3)');
  });

  it('Energinet: the Elspotprices CSV download (newest first, decimal comma) in DKK or EUR', () => {
    const dkk = parseEnerginet(fixture('energinet/Elspotprices-head200.csv'), 'DK2', 'DKK');
    expect(dkk).toHaveLength(200);
    expect([iso(dkk[0].start), iso(dkk[0].end), r9(dkk[0].price)]).toEqual(['2022-10-11T14:00', '2022-10-11T15:00', 1.926040039]);
    expect([iso(dkk[199].start), iso(dkk[199].end), r9(dkk[199].price)]).toEqual(['2022-10-19T21:00', '2022-10-19T22:00', 0.97875]);
    const eur = parseEnerginet(fixture('energinet/Elspotprices-head200.csv'), 'DK2', 'EUR');
    expect(r9(eur[199].price)).toBe(0.131570007);
    expect(parseEnerginet(fixture('energinet/Elspotprices-head200.csv'), 'DK1', 'EUR')).toEqual([]);
  });

  it('Energinet: the DayAheadPrices JSON records (15 minutes)', () => {
    const body = JSON.stringify({ records: [
      { TimeUTC: '2025-10-01T00:15:00', TimeDK: '2025-10-01T02:15:00', PriceArea: 'DK1', DayAheadPriceDKK: 512.3, DayAheadPriceEUR: 68.6 },
      { TimeUTC: '2025-10-01T00:00:00', TimeDK: '2025-10-01T02:00:00', PriceArea: 'DK1', DayAheadPriceDKK: 500.1, DayAheadPriceEUR: 67 },
    ] });
    expect(parseEnerginet(body, 'DK1', 'EUR').map((s) => [iso(s.start), iso(s.end), r9(s.price)])).toEqual([
      ['2025-10-01T00:00', '2025-10-01T00:15', 0.067],
      ['2025-10-01T00:15', '2025-10-01T00:30', 0.0686],
    ]);
  });

  it('Octopus: pence per kWh with VAT to GBP, or without VAT', () => {
    const { slots, next } = parseOctopus(fixture('octopus/rates.json'), true);
    expect(next).toBeUndefined();
    expect(slots.map((s) => [iso(s.start), iso(s.end), r9(s.price)])).toEqual([
      ['2026-03-06T22:30', '2026-03-06T23:00', 0.20517],
      ['2026-03-06T22:00', '2026-03-06T22:30', 0.2205],
      ['2026-03-06T21:30', '2026-03-06T22:00', 0.16065],
    ]);
    expect(r9(parseOctopus(fixture('octopus/rates.json'), false).slots[0].price)).toBe(0.1954);
  });

  it('Tibber: the demo home (today and tomorrow, local offsets) and a two-home answer', () => {
    const homes = JSON.parse(fixture('tibber/homes.json'));
    const s = parseTibber(JSON.stringify({ data: { viewer: { homes } } }));
    expect(s).toHaveLength(48);
    expect([iso(s[0].start), iso(s[0].end), s[0].price]).toEqual(['2019-09-27T22:00', '2019-09-27T23:00', 0.4596]);
    expect([iso(s[47].start), iso(s[47].end), s[47].price]).toEqual(['2019-09-29T21:00', '2019-09-29T22:00', 0.4354]);
    expect(() => parseTibber(JSON.stringify({ data: { viewer: { homes } } }), 'nope')).toThrow(/no home with id nope \(homes: c70dcbe5-/);
    const msg = JSON.parse(fixture('tibber/tibber-prices.json'));
    const s2 = parseTibber(JSON.stringify({ data: msg.payload }));
    expect(s2).toHaveLength(48);
    expect([iso(s2[47].start), s2[47].price]).toEqual(['2021-10-12T21:00', 0.5252]);
    expect(() => parseTibber(JSON.stringify({ errors: [{ message: 'invalid token' }] }))).toThrow('tibber: invalid token');
  });

  it('surcharge: (wholesale·(1 + %) + fixed)·(1 + VAT)', () => {
    expect(applySurcharge(0.1, { fixed: 0.15, percentage: 10, vat: 19 })).toBe(0.3094);
    expect(applySurcharge(-0.05, { fixed: 0.2, vat: 19 })).toBe(0.1785);
    expect(applySurcharge(0.1, undefined)).toBe(0.1);
  });
});

describe('provider tariffs in the site file', () => {
  const check = (yaml: string) => parseConfig(`site: { id: home }\ntariffs:\n${yaml}`, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: { ENTSOE_TOKEN: 'abcdefgh-1234' } });
  it('accepts each provider with a surcharge', () => {
    const c = check('  import: { type: entsoe, token: "${ENTSOE_TOKEN}", area: 10Y1001A1001A82H, surcharge: { fixed: 0.17, vat: 19 } }\n  export: { type: awattar, country: at }\n');
    expect(c.tariffs.import).toMatchObject({ type: 'entsoe', token: 'abcdefgh-1234', surcharge: { fixed: 0.17, vat: 19 } });
  });
  it('rejects a missing token and an unknown key with their place', () => {
    expect(() => check('  import: { type: tibber }\n')).toThrow('site.yaml:3:11 tariffs.import: missing required key "token"');
    expect(() => check('  import: { type: awattar, refresh_cron: "*/15 * * *x *" }\n')).toThrow('site.yaml:3:42 tariffs.import.refresh_cron: "*/15 * * *x *" is not a cron expression (month: *x is a invalid expression for month)');
    expect(() => check('  import: { type: nordpool, area: SE3, zone: x }\n')).toThrow(/site\.yaml:3:40 tariffs\.import\.zone: unknown key "zone" \(allowed: type, area, currency, surcharge, url, timeout_ms, retries, retry_delay_ms, refresh_cron, fallback\)/);
  });
});

/** A provider on 127.0.0.1 whose answers each test decides. */
describe('fetching: timeouts, retries, cache, outages (local HTTP server)', () => {
  let base: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.end();
  const hits: string[] = [];
  httpServerForTests(
    (req, res) => {
      hits.push(req.url ?? '');
      handler(req, res);
    },
    (url) => (base = url),
  );
  const store = (): AdapterStore => memoryStore();
  const ctx = (cache: AdapterStore, now = '2025-10-26T12:00:00Z'): TariffSourceContext => ({
    log: quietLog,
    clock: { ...systemClock, now: new ManualClock(now).now.bind(new ManualClock(now)) },
    site: { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' },
    fetch: globalThis.fetch,
    cache,
  });
  const day = { start: Date.parse('2025-10-25T22:00Z'), end: Date.parse('2025-10-26T23:00Z') };
  const body = fixture('energy-charts/2025-10-26.json');

  it('asks for the right URL and applies the surcharge', async () => {
    hits.length = 0;
    handler = (_q, res) => res.end(body);
    const src = energyCharts.create(ctx(store()), { type: 'energy_charts', bzn: 'DE-LU', url: base, surcharge: { fixed: 0.15, vat: 19 }, retry_delay_ms: 5 });
    await src.refresh!();
    expect(hits).toEqual(['/price?bzn=DE-LU&start=2025-10-26&end=2025-10-27']);
    const s = src.series(day);
    expect(s).toHaveLength(100);
    // (0.00717 + 0.15)·1.19
    expect(s[0].rate).toBe(0.1870323);
    expect(src.lastUpdated!()).toBe(Date.parse('2025-10-26T12:00:00Z'));
  });

  it('retries a provider that fails twice, then succeeds', async () => {
    hits.length = 0;
    handler = busyThen(2, () => body);
    const src = energyCharts.create(ctx(store()), { type: 'energy_charts', url: base, retries: 3, retry_delay_ms: 5 });
    await src.refresh!();
    expect(hits).toHaveLength(3);
    expect(src.series(day)).toHaveLength(100);
  });

  it('gives up after its retries with a retryable error, and keeps the last known prices', async () => {
    const cache = store();
    handler = (_q, res) => res.end(body);
    const src = energyCharts.create(ctx(cache), { type: 'energy_charts', url: base, retries: 1, retry_delay_ms: 5 });
    await src.refresh!();
    hits.length = 0;
    handler = (_q, res) => {
      res.statusCode = 500;
      res.end();
    };
    // a day later the prices are stale and a fetch is due
    const later = energyCharts.create(ctx(cache, '2025-10-27T12:00:00Z'), { type: 'energy_charts', url: base, retries: 1, retry_delay_ms: 5 });
    const err = await later.refresh!().catch((e: unknown) => e);
    expect(isRetryable(err)).toBe(true);
    expect((err as Error).message).toMatch(/^127\.0\.0\.1:\d+\/price answered HTTP 500 \(after 2 attempts\)$/);
    expect(hits).toHaveLength(2);
    expect(later.series(day)).toHaveLength(100);
  });

  it('times out a provider that does not answer', async () => {
    handler = () => undefined; // never answers
    const src = awattar.create(ctx(store()), { type: 'awattar', url: base, timeout_ms: 150, retries: 0 });
    const t0 = Date.now();
    await expect(src.refresh!()).rejects.toThrow(/no answer within 150 ms \(after 1 attempt\)/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('refused credentials are permanent: no retries', async () => {
    hits.length = 0;
    handler = (_q, res) => {
      res.statusCode = 401;
      res.end('Unauthorized');
    };
    const src = entsoe.create(ctx(store()), { type: 'entsoe', token: 'secret-token', area: '10Y1001A1001A82H', url: base, retries: 3, retry_delay_ms: 5 });
    const err = await src.refresh!().catch((e: unknown) => e);
    expect(isRetryable(err)).toBe(false);
    expect((err as Error).message).toMatch(/refused the credentials \(HTTP 401\): check the token$/);
    expect((err as Error).message).not.toContain('secret-token');
    expect(hits).toHaveLength(1);
    expect(hits[0]).toContain('documentType=A44&in_Domain=10Y1001A1001A82H&out_Domain=10Y1001A1001A82H&periodStart=202510252200&periodEnd=202510272300');
  });

  it('a restart with the provider down still has the cached prices', async () => {
    const cache = store();
    handler = (_q, res) => res.end(body);
    await energyCharts.create(ctx(cache), { type: 'energy_charts', url: base, retry_delay_ms: 5 }).refresh!();
    handler = (req) => req.socket.destroy(); // connection dropped
    const restarted = energyCharts.create(ctx(cache), { type: 'energy_charts', url: base, retries: 0 });
    expect(restarted.series(day)).toHaveLength(100);
    expect(restarted.lastUpdated!()).toBe(Date.parse('2025-10-26T12:00:00Z'));
  });

  it('a malformed answer is a clear permanent error', async () => {
    handler = (_q, res) => res.end('<html>maintenance</html>');
    const src = energyCharts.create(ctx(store()), { type: 'energy_charts', url: base, retries: 2, retry_delay_ms: 5 });
    const err = await src.refresh!().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^energy_charts: the answer is not JSON/);
    expect(isRetryable(err)).toBe(false);
  });
});
