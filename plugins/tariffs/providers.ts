import { XMLParser } from 'fast-xml-parser';
import { DateTime } from 'luxon';
import { permanentError } from '../../src/api/index.js';
import { defineProvider, malformed, perKwhFactor, slotsFromStarts, type ProviderConfig, type WholesaleSlot } from './provider.js';
import { HOUR } from '../../src/api/time.js';


function json(body: string, provider: string): unknown {
  try {
    return JSON.parse(body);
  } catch (err) {
    throw malformed(provider, `the answer is not JSON (${(err as Error).message})`);
  }
}

const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

// ---------------------------------------------------------------- Energy-Charts (Fraunhofer ISE)

export interface EnergyChartsConfig extends ProviderConfig {
  type: 'energy_charts';
  bzn?: string;
}

/** `{unix_seconds: [...], price: [...], unit: "EUR / MWh"}`: interval starts in Unix seconds. */
export function parseEnergyCharts(body: string): WholesaleSlot[] {
  const doc = json(body, 'energy_charts') as { unix_seconds?: unknown; price?: unknown; unit?: string };
  if (!Array.isArray(doc.unix_seconds) || !Array.isArray(doc.price) || doc.unix_seconds.length !== doc.price.length) {
    throw malformed('energy_charts', 'expected equally long "unix_seconds" and "price" arrays');
  }
  const factor = perKwhFactor(doc.unit, 'energy_charts');
  const points = (doc.unix_seconds as unknown[]).flatMap((t, i) => (finite(t) && finite((doc.price as unknown[])[i]) ? [{ start: (t as number) * 1000, price: ((doc.price as number[])[i]) * factor }] : []));
  return slotsFromStarts(points, HOUR);
}

export const energyCharts = defineProvider<EnergyChartsConfig>({
  type: 'energy_charts',
  description: 'Day-ahead prices from Energy-Charts (EPEX spot by bidding zone, EUR/MWh), plus a surcharge',
  defaultUrl: () => 'https://api.energy-charts.info',
  properties: { bzn: { type: 'string', default: 'DE-LU', description: 'Bidding zone, e.g. DE-LU, AT, CH, FR' } },
  requests: (c, r, base) => [{ url: `${base}/price?bzn=${encodeURIComponent(c.bzn ?? 'DE-LU')}&start=${r.days[0].toISODate()}&end=${r.days[r.days.length - 1].toISODate()}` }],
  parse: (body) => ({ slots: parseEnergyCharts(body) }),
  describe: (c) => `Energy-Charts day-ahead ${c.bzn ?? 'DE-LU'}`,
});

// ---------------------------------------------------------------- aWATTar

export interface AwattarConfig extends ProviderConfig {
  type: 'awattar';
  country?: 'de' | 'at';
}

/** `{object: "list", data: [{start_timestamp, end_timestamp, marketprice, unit: "Eur/MWh"}]}`. */
export function parseAwattar(body: string): WholesaleSlot[] {
  const doc = json(body, 'awattar') as { data?: unknown };
  if (!Array.isArray(doc.data)) throw malformed('awattar', 'expected a "data" array');
  return doc.data.map((e: Record<string, unknown>, i) => {
    if (!finite(e.start_timestamp) || !finite(e.end_timestamp) || !finite(e.marketprice)) throw malformed('awattar', `data[${i}] needs numeric start_timestamp, end_timestamp and marketprice`);
    return { start: e.start_timestamp as number, end: e.end_timestamp as number, price: (e.marketprice as number) * perKwhFactor(e.unit as string, 'awattar') };
  });
}

export const awattar = defineProvider<AwattarConfig>({
  type: 'awattar',
  description: 'Hourly market prices from aWATTar (Germany or Austria, EUR/MWh), plus a surcharge',
  defaultUrl: (c) => `https://api.awattar.${c.country ?? 'de'}`,
  properties: { country: { type: 'string', enum: ['de', 'at'], default: 'de' } },
  requests: (_c, r, base) => [{ url: `${base}/v1/marketdata?start=${r.start}&end=${r.end}` }],
  parse: (body) => ({ slots: parseAwattar(body) }),
  describe: (c) => `aWATTar ${c.country ?? 'de'}`,
});

// ---------------------------------------------------------------- ENTSO-E Transparency Platform

export interface EntsoeConfig extends ProviderConfig {
  type: 'entsoe';
  token: string;
  /** EIC code of the bidding zone, e.g. 10Y1001A1001A82H (DE-LU). */
  area: string;
}

const xml = new XMLParser({ ignoreAttributes: true, removeNSPrefix: true, parseTagValue: false, isArray: (name) => ['TimeSeries', 'Period', 'Point'].includes(name) });
const RESOLUTIONS: Record<string, number> = { PT15M: 15 * 60_000, PT30M: 30 * 60_000, PT60M: HOUR, P1H: HOUR };

/**
 * A day-ahead `Publication_MarketDocument` (A44). Curve type A03 leaves out points whose price
 * equals the one before (they are carried forward). Where time series of different resolutions
 * cover the same time, the finest wins.
 */
export function parseEntsoe(body: string): WholesaleSlot[] {
  let doc: Record<string, unknown>;
  try {
    doc = xml.parse(body) as Record<string, unknown>;
  } catch (err) {
    throw malformed('entsoe', `the answer is not XML (${(err as Error).message})`);
  }
  if (doc.Acknowledgement_MarketDocument) {
    const reason = (doc.Acknowledgement_MarketDocument as { Reason?: { text?: string } }).Reason?.text ?? '';
    if (/no matching data/i.test(reason)) return [];
    throw permanentError('tariff_request_refused', `entsoe: ${reason || 'the request was refused'}`);
  }
  const market = doc.Publication_MarketDocument as { TimeSeries?: Record<string, unknown>[] } | undefined;
  if (!market) throw malformed('entsoe', 'expected a Publication_MarketDocument');
  const byResolution = new Map<number, WholesaleSlot[]>();
  for (const ts of market.TimeSeries ?? []) {
    const curve = String(ts.curveType ?? 'A01');
    for (const period of (ts.Period as Record<string, unknown>[]) ?? []) {
      const interval = period.timeInterval as { start?: string; end?: string } | undefined;
      const step = RESOLUTIONS[String(period.resolution)];
      const start = Date.parse(String(interval?.start ?? ''));
      const end = Date.parse(String(interval?.end ?? ''));
      if (!step || !Number.isFinite(start) || !Number.isFinite(end)) throw malformed('entsoe', `a Period has an unknown resolution "${String(period.resolution)}" or a bad timeInterval`);
      const count = Math.round((end - start) / step);
      const prices = new Array<number | undefined>(count + 1).fill(undefined);
      for (const p of (period.Point as Record<string, unknown>[]) ?? []) {
        const pos = Number(p.position);
        const price = Number(p['price.amount']);
        if (!(pos >= 1 && pos <= count) || !Number.isFinite(price)) throw malformed('entsoe', `a Point has position ${String(p.position)} / price ${String(p['price.amount'])}`);
        prices[pos] = price;
      }
      const list = byResolution.get(step) ?? [];
      let last: number | undefined;
      for (let pos = 1; pos <= count; pos++) {
        const price = prices[pos] ?? (curve === 'A03' ? last : undefined);
        if (price === undefined) continue;
        last = price;
        list.push({ start: start + (pos - 1) * step, end: start + pos * step, price: price / 1000 });
      }
      byResolution.set(step, list);
    }
  }
  const out: WholesaleSlot[] = [];
  for (const step of [...byResolution.keys()].sort((a, b) => a - b)) {
    for (const s of byResolution.get(step)!) if (!out.some((o) => o.start < s.end && s.start < o.end)) out.push(s);
  }
  return out.sort((a, b) => a.start - b.start);
}

const entsoeTime = (t: number) => DateTime.fromMillis(t, { zone: 'utc' }).toFormat('yyyyLLddHHmm');

export const entsoe = defineProvider<EntsoeConfig>({
  type: 'entsoe',
  description: 'Day-ahead prices from the ENTSO-E Transparency Platform (any European bidding zone, EUR/MWh), plus a surcharge',
  defaultUrl: () => 'https://web-api.tp.entsoe.eu',
  required: ['token', 'area'],
  properties: {
    token: { type: 'string', minLength: 8, description: 'Security token of your ENTSO-E account, e.g. ${ENTSOE_TOKEN}' },
    area: { type: 'string', pattern: '^10Y[0-9A-Z-]{13}$', description: 'EIC code of the bidding zone, e.g. 10Y1001A1001A82H for DE-LU' },
  },
  requests: (c, r, base) => [
    {
      url: `${base}/api?securityToken=${encodeURIComponent(c.token)}&documentType=A44&in_Domain=${c.area}&out_Domain=${c.area}&periodStart=${entsoeTime(r.start)}&periodEnd=${entsoeTime(r.end)}`,
    },
  ],
  parse: (body) => ({ slots: parseEntsoe(body) }),
  describe: (c) => `ENTSO-E day-ahead ${c.area}`,
});

// ---------------------------------------------------------------- Nord Pool

export interface NordpoolConfig extends ProviderConfig {
  type: 'nordpool';
  area: string;
  currency?: string;
}

/** Data Portal `DayAheadPrices`: `multiAreaEntries[{deliveryStart, deliveryEnd, entryPerArea{AREA: price/MWh}}]`. */
export function parseNordpool(body: string, area: string): WholesaleSlot[] {
  const doc = json(body, 'nordpool') as { multiAreaEntries?: unknown; deliveryAreas?: string[] };
  if (!Array.isArray(doc.multiAreaEntries)) throw malformed('nordpool', 'expected a "multiAreaEntries" array');
  return doc.multiAreaEntries.flatMap((e: { deliveryStart?: string; deliveryEnd?: string; entryPerArea?: Record<string, unknown> }, i) => {
    const price = e.entryPerArea?.[area];
    if (price === undefined || price === null) {
      if (i === 0) throw malformed('nordpool', `no prices for area ${area} (areas in the answer: ${Object.keys(e.entryPerArea ?? {}).join(', ')})`);
      return [];
    }
    const start = Date.parse(e.deliveryStart ?? '');
    const end = Date.parse(e.deliveryEnd ?? '');
    if (!Number.isFinite(start) || !Number.isFinite(end) || !finite(price)) throw malformed('nordpool', `multiAreaEntries[${i}] has a bad deliveryStart, deliveryEnd or price`);
    return [{ start, end, price: (price as number) / 1000 }];
  });
}

export const nordpool = defineProvider<NordpoolConfig>({
  type: 'nordpool',
  description: 'Day-ahead prices from the Nord Pool Data Portal (per delivery area, per MWh), plus a surcharge',
  defaultUrl: () => 'https://dataportal-api.nordpoolgroup.com',
  required: ['area'],
  properties: {
    area: { type: 'string', pattern: '^[A-Z0-9]{2,8}$', description: 'Delivery area, e.g. SE3, NO1, DK2, FI' },
    currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'Default: the site currency' },
  },
  // delivery days are CET dates; the site's local dates are the same days for any European zone
  requests: (c, r, base, site) =>
    r.days.map((d) => ({
      url: `${base}/api/DayAheadPrices?date=${d.toISODate()}&market=DayAhead&deliveryArea=${c.area}&currency=${c.currency ?? site.currency}`,
      optional: true,
    })),
  parse: (body, c) => ({ slots: parseNordpool(body, c.area) }),
  describe: (c) => `Nord Pool day-ahead ${c.area}`,
});

// ---------------------------------------------------------------- Energinet / Energi Data Service

export interface EnerginetConfig extends ProviderConfig {
  type: 'energinet';
  area: 'DK1' | 'DK2';
  currency?: 'DKK' | 'EUR';
  dataset?: 'DayAheadPrices' | 'Elspotprices';
}

const parseDecimal = (v: string) => Number(v.trim().replace(',', '.'));

/**
 * Energi Data Service prices: the JSON `{records:[…]}` of the DayAheadPrices (15-minute, `TimeUTC`,
 * `DayAheadPriceDKK|EUR`) or Elspotprices (hourly, `HourUTC`, `SpotPriceDKK|EUR`) dataset, or the
 * semicolon CSV download of either (decimal comma). Prices per MWh.
 */
export function parseEnerginet(body: string, area: string, currency: 'DKK' | 'EUR'): WholesaleSlot[] {
  let records: Record<string, unknown>[];
  const text = body.trimStart();
  if (text.startsWith('{') || text.startsWith('[')) {
    const doc = json(body, 'energinet') as { records?: unknown };
    const list = Array.isArray(doc) ? doc : doc.records;
    if (!Array.isArray(list)) throw malformed('energinet', 'expected a "records" array');
    records = list as Record<string, unknown>[];
  } else {
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
    const header = lines[0].split(';').map((h) => h.trim());
    records = lines.slice(1).map((l) => {
      const cells = l.split(';');
      return Object.fromEntries(header.map((h, i) => [h, /Price(DKK|EUR)$/.test(h) ? (cells[i]?.trim() === '' ? null : parseDecimal(cells[i] ?? '')) : cells[i]?.trim()]));
    });
  }
  const points: { start: number; price: number }[] = [];
  let hourly = false;
  records.forEach((r, i) => {
    if (r.PriceArea !== undefined && r.PriceArea !== area) return;
    const time = (r.TimeUTC ?? r.HourUTC) as string | undefined;
    if (r.HourUTC !== undefined) hourly = true;
    const price = r[`DayAheadPrice${currency}`] ?? r[`SpotPrice${currency}`];
    if (price === null || price === undefined) return; // not yet published in this currency
    const start = Date.parse(`${String(time).replace(' ', 'T').slice(0, 16)}:00Z`);
    if (!Number.isFinite(start) || !finite(price)) throw malformed('energinet', `record ${i} has a bad time ${JSON.stringify(time)} or price ${JSON.stringify(price)}`);
    points.push({ start, price: (price as number) / 1000 });
  });
  return slotsFromStarts(points, hourly ? HOUR : 15 * 60_000).map((s) => (s.end - s.start > (hourly ? HOUR : 15 * 60_000) ? { ...s, end: s.start + (hourly ? HOUR : 15 * 60_000) } : s));
}

export const energinet = defineProvider<EnerginetConfig>({
  type: 'energinet',
  description: 'Danish spot prices (DK1/DK2) from Energinet’s Energi Data Service, per MWh, plus a surcharge',
  defaultUrl: () => 'https://api.energidataservice.dk',
  required: ['area'],
  properties: {
    area: { type: 'string', enum: ['DK1', 'DK2'] },
    currency: { type: 'string', enum: ['DKK', 'EUR'], default: 'DKK' },
    dataset: { type: 'string', enum: ['DayAheadPrices', 'Elspotprices'], default: 'DayAheadPrices', description: 'DayAheadPrices (15 min, from 2025-10) or Elspotprices (hourly, until 2025-09)' },
  },
  requests: (c, r, base) => {
    const fmt = (t: number) => DateTime.fromMillis(t, { zone: 'Europe/Copenhagen' }).toFormat("yyyy-LL-dd'T'HH:mm");
    const filter = encodeURIComponent(JSON.stringify({ PriceArea: [c.area] }));
    return [{ url: `${base}/dataset/${c.dataset ?? 'DayAheadPrices'}?start=${fmt(r.start)}&end=${fmt(r.end)}&filter=${filter}&limit=0` }];
  },
  parse: (body, c) => ({ slots: parseEnerginet(body, c.area, c.currency ?? 'DKK') }),
  describe: (c) => `Energinet ${c.dataset ?? 'DayAheadPrices'} ${c.area}`,
});

// ---------------------------------------------------------------- Octopus Energy (Agile)

export interface OctopusConfig extends ProviderConfig {
  type: 'octopus';
  product: string;
  tariff: string;
  vat_included?: boolean;
}

/** `standard-unit-rates`: `{results:[{value_exc_vat, value_inc_vat, valid_from, valid_to}], next}` in pence per kWh. */
export function parseOctopus(body: string, vatIncluded: boolean): { slots: WholesaleSlot[]; next?: string } {
  const doc = json(body, 'octopus') as { results?: unknown; next?: string | null };
  if (!Array.isArray(doc.results)) throw malformed('octopus', 'expected a "results" array');
  const slots = doc.results.map((r: Record<string, unknown>, i) => {
    const pence = vatIncluded ? r.value_inc_vat : r.value_exc_vat;
    const start = Date.parse(String(r.valid_from));
    const end = r.valid_to === null ? start + 30 * 60_000 : Date.parse(String(r.valid_to));
    if (!finite(pence) || !Number.isFinite(start) || !Number.isFinite(end)) throw malformed('octopus', `results[${i}] has a bad value or valid_from/valid_to`);
    return { start, end, price: (pence as number) / 100 };
  });
  return { slots, next: doc.next ?? undefined };
}

export const octopus = defineProvider<OctopusConfig>({
  type: 'octopus',
  description: 'Octopus Energy unit rates (e.g. Agile, half-hourly, pence/kWh) as GBP per kWh',
  defaultUrl: () => 'https://api.octopus.energy',
  required: ['product', 'tariff'],
  properties: {
    product: { type: 'string', description: 'Product code, e.g. AGILE-24-10-01' },
    tariff: { type: 'string', description: 'Tariff code, e.g. E-1R-AGILE-24-10-01-C (the last letter is the region)' },
    vat_included: { type: 'boolean', default: true, description: 'Use value_inc_vat (default) or value_exc_vat' },
  },
  requests: (c, r, base) => [
    { url: `${base}/v1/products/${encodeURIComponent(c.product)}/electricity-tariffs/${encodeURIComponent(c.tariff)}/standard-unit-rates/?period_from=${new Date(r.start).toISOString()}&period_to=${new Date(r.end).toISOString()}&page_size=1500` },
  ],
  parse: (body, c) => parseOctopus(body, c.vat_included ?? true),
  describe: (c) => `Octopus ${c.tariff}`,
  check: (c) => (c.surcharge?.vat && (c.vat_included ?? true) ? [{ path: ['surcharge', 'vat'], message: 'the Octopus rates already include VAT (vat_included: true): set vat_included: false to add your own' }] : []),
});

// ---------------------------------------------------------------- Tibber

export interface TibberConfig extends ProviderConfig {
  type: 'tibber';
  token: string;
  home_id?: string;
}

const TIBBER_QUERY = '{ viewer { homes { id currentSubscription { priceInfo { today { total startsAt } tomorrow { total startsAt } } } } } }';

/** GraphQL `{data:{viewer:{homes:[{id, currentSubscription:{priceInfo:{today, tomorrow}}}]}}}`; `total` is the household rate. */
export function parseTibber(body: string, homeId?: string): WholesaleSlot[] {
  const doc = json(body, 'tibber') as { data?: { viewer?: { homes?: unknown } }; errors?: { message?: string }[] };
  if (doc.errors?.length) throw permanentError('tariff_request_refused', `tibber: ${doc.errors.map((e) => e.message).join('; ')}`);
  const homes = doc.data?.viewer?.homes;
  if (!Array.isArray(homes)) throw malformed('tibber', 'expected data.viewer.homes');
  type Home = { id?: string; currentSubscription?: { priceInfo?: { today?: unknown[]; tomorrow?: unknown[] } } | null };
  const home = (homes as Home[]).find((h) => (homeId ? h.id === homeId : h.currentSubscription?.priceInfo));
  if (!home) throw permanentError('tariff_request_refused', `tibber: ${homeId ? `no home with id ${homeId} (homes: ${(homes as Home[]).map((h) => h.id).join(', ')})` : 'no home with a current subscription'}`);
  const entries = [...(home.currentSubscription?.priceInfo?.today ?? []), ...(home.currentSubscription?.priceInfo?.tomorrow ?? [])] as { total?: unknown; startsAt?: string }[];
  const points = entries.map((e, i) => {
    const start = Date.parse(e.startsAt ?? '');
    if (!Number.isFinite(start) || !finite(e.total)) throw malformed('tibber', `price ${i} has a bad startsAt or total`);
    return { start, price: e.total as number };
  });
  return slotsFromStarts(points, HOUR);
}

export const tibber = defineProvider<TibberConfig>({
  type: 'tibber',
  description: 'Tibber prices (total incl. taxes, per kWh in the home’s currency) for today and tomorrow',
  defaultUrl: () => 'https://api.tibber.com/v1-beta/gql',
  required: ['token'],
  properties: {
    token: { type: 'string', minLength: 8, description: 'Personal access token, e.g. ${TIBBER_TOKEN}' },
    home_id: { type: 'string', description: 'Default: the first home with a subscription' },
  },
  requests: (c, _r, base) => [
    { url: base, init: { method: 'POST', headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query: TIBBER_QUERY }) } },
  ],
  parse: (body, c) => ({ slots: parseTibber(body, c.home_id) }),
  describe: (c) => `Tibber${c.home_id ? ` home ${c.home_id}` : ''}`,
});

export const providerTariffs = [energyCharts, awattar, entsoe, nordpool, energinet, octopus, tibber];
