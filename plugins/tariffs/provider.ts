import { DateTime } from 'luxon';
import { fetchWithRetry } from '../shared/fetch.js';
import {
  applySurcharge,
  cronIssues,
  DAY,
  defineTariffSource,
  firstEndingAfter,
  partitionPoint,
  surchargeSchema,
  type Surcharge,
  permanentError,
  retryableError,
  type ConfigIssue,
  type JsonSchema,
  type PriceSeries,
  type SiteInfo,
  type TariffSourceContext,
  type TariffSourceDefinition,
} from '../../src/api/index.js';

/**
 * The common machinery of a provider tariff: fetching with a timeout and retries, caching what was
 * fetched in the source's store (so the last known prices survive restarts and outages), and the
 * surcharge that turns a wholesale price into the household's rate.
 */

/** A provider price: `[start, end)` in epoch ms, price per kWh in the provider's currency (before surcharge). */
export interface WholesaleSlot {
  start: number;
  end: number;
  price: number;
}

/** The surcharge and its formula live in src/api (`applySurcharge`); re-exported for the provider modules. */
export { applySurcharge, type Surcharge };

export interface ProviderConfig {
  type: string;
  surcharge?: Surcharge;
  /** Base URL of the provider's API (tests point it at 127.0.0.1). */
  url?: string;
  timeout_ms?: number;
  retries?: number;
  retry_delay_ms?: number;
  refresh_cron?: string;
}

/** A provider answered with something we cannot read: permanent until the provider changes. */
export const malformed = (provider: string, message: string) => permanentError('tariff_response_invalid', `${provider}: ${message}`);

export interface ProviderRequest {
  url: string;
  init?: RequestInit;
  /** A 204 or 404 here means "not published yet", not an error. */
  optional?: boolean;
}

export interface ProviderSpec<C extends ProviderConfig> {
  type: string;
  description: string;
  defaultUrl: (config: C) => string;
  /** Keys beside the common ones. */
  properties: Record<string, JsonSchema>;
  required?: string[];
  /** The requests that fetch prices for `[start, end)` (local days `days`). */
  requests(config: C, range: { start: number; end: number; days: DateTime[] }, base: string, site: SiteInfo): ProviderRequest[];
  /** Prices from one response body; `next` asks for another page. */
  parse(body: string, config: C, site: SiteInfo): { slots: WholesaleSlot[]; next?: string };
  describe(config: C): string;
  check?(config: C): ConfigIssue[];
}

const commonProperties: Record<string, JsonSchema> = {
  surcharge: surchargeSchema,
  url: { type: 'string', pattern: '^https?://', description: "Base URL of the provider's API (default: the public one)" },
  timeout_ms: { type: 'integer', minimum: 100, default: 10_000, description: 'Per request' },
  retries: { type: 'integer', minimum: 0, maximum: 10, default: 3, description: 'Further attempts after a failed request' },
  retry_delay_ms: { type: 'integer', minimum: 0, default: 2000, description: 'First wait between attempts; doubles each time' },
  refresh_cron: { type: 'string', default: '*/15 * * * *', description: 'When to look for new prices (cron, site time zone)' },
};

function fetchBody(ctx: TariffSourceContext, req: ProviderRequest, config: ProviderConfig, signal?: AbortSignal): Promise<string | undefined> {
  return fetchWithRetry(ctx, req, config, 'tariff', signal);
}

type CachedSlot = [start: number, end: number, price: number];

/** Declares a provider tariff source. */
export function defineProvider<C extends ProviderConfig>(spec: ProviderSpec<C>): TariffSourceDefinition<C> {
  return defineTariffSource<C>({
    type: spec.type,
    description: spec.description,
    configSchema: { required: spec.required ?? [], properties: { ...spec.properties, ...commonProperties } },
    check: (config) => [...cronIssues(config.refresh_cron), ...(spec.check?.(config) ?? [])],
    create: (ctx, config) => {
      let cached: CachedSlot[] = ctx.cache.get<CachedSlot[]>('slots') ?? [];
      let updated = ctx.cache.get<number>('updated');
      const base = (config.url ?? spec.defaultUrl(config)).replace(/\/$/, '');
      const coveredUntil = () => (cached.length ? cached[cached.length - 1][1] : -Infinity);
      return {
        describe: () => spec.describe(config),
        lastUpdated: () => updated,
        series: (window) => {
          const out: PriceSeries = [];
          // the first slot ending after the window's start
          const lo = partitionPoint(cached.length, (i) => cached[i][1] <= window.start);
          for (let i = lo; i < cached.length && cached[i][0] < window.end; i++) {
            const [start, end, price] = cached[i];
            out.push({ start: Math.max(start, window.start), end: Math.min(end, window.end), rate: applySurcharge(price, config.surcharge), confidence: 1 });
          }
          return out;
        },
        refresh: async (signal) => {
          const now = ctx.clock.now();
          const today = DateTime.fromMillis(now, { zone: ctx.site.timezone }).startOf('day');
          const range = { start: today.toMillis(), end: today.plus({ days: 2 }).toMillis(), days: [today, today.plus({ days: 1 })] };
          // tomorrow's prices are already here and fresh enough: spare the provider
          if (coveredUntil() >= range.end && updated !== undefined && now - updated < 6 * 3_600_000) return;
          const slots: WholesaleSlot[] = [];
          for (const first of spec.requests(config, range, base, ctx.site)) {
            let req: ProviderRequest | undefined = first;
            for (let page = 0; req && page < 20; page++) {
              const body = await fetchBody(ctx, req, config, signal);
              if (body === undefined) break;
              const parsed = spec.parse(body, config, ctx.site);
              slots.push(...parsed.slots);
              req = parsed.next ? { ...req, url: parsed.next } : undefined;
            }
          }
          if (!slots.length) throw retryableError('no_price_data', `${spec.type}: the provider has no prices for ${today.toISODate()} yet`);
          const { usable, dropped } = believableSlots(slots, range);
          if (dropped.length) ctx.log.warn({ dropped: dropped.length, of: slots.length }, `${spec.type}: ignored ${dropped.length} of ${slots.length} prices that cannot be right (${dropped[0]})`);
          if (!usable.length) throw malformed(spec.type, `no usable prices in the answer (${dropped[0]})`);
          cached = mergeSlots(cached, usable).filter((s) => s[1] > now - 14 * DAY);
          updated = now;
          await ctx.cache.set('slots', cached);
          await ctx.cache.set('updated', updated);
          ctx.log.info({ slots: slots.length, until: new Date(coveredUntil()).toISOString() }, `${spec.type}: new prices`);
        },
      };
    },
  });
}

/** Longest slot and largest price (per kWh, any currency) a provider can mean: day-ahead markets cap at 4 EUR/kWh. */
const MAX_SLOT_MS = DAY;
const MAX_ABS_PRICE = 1000;

/**
 * The slots of an answer that can be prices at all: finite, at most a day long, near the days asked
 * for, at most 1000 per kWh. Garbage that parses (a slot reaching the year 5000, 10^300 per kWh)
 * must not replace the known prices.
 */
export function believableSlots(slots: WholesaleSlot[], range: { start: number; end: number }): { usable: WholesaleSlot[]; dropped: string[] } {
  const usable: WholesaleSlot[] = [];
  const dropped: string[] = [];
  const iso = (t: number) => (Number.isFinite(t) && Math.abs(t) < 8.64e15 ? new Date(t).toISOString() : String(t));
  for (const s of slots) {
    const why = !Number.isFinite(s.start) || !Number.isFinite(s.end) || !Number.isFinite(s.price)
      ? 'not a number'
      : s.end <= s.start || s.end - s.start > MAX_SLOT_MS
        ? `a slot from ${iso(s.start)} to ${iso(s.end)}`
        : s.end <= range.start - DAY || s.start >= range.end + DAY
          ? `a slot at ${iso(s.start)}, far from the days asked for`
          : Math.abs(s.price) > MAX_ABS_PRICE
            ? `a price of ${s.price} per kWh`
            : undefined;
    if (why) dropped.push(why);
    else usable.push(s);
  }
  return { usable, dropped };
}

/** New slots replace cached ones they overlap; the result is sorted and free of overlaps. */
function mergeSlots(cached: CachedSlot[], fresh: WholesaleSlot[]): CachedSlot[] {
  const incoming = [...fresh].sort((a, b) => a.start - b.start);
  const kept: WholesaleSlot[] = [];
  for (const s of incoming) {
    const prev = kept[kept.length - 1];
    if (prev && s.start < prev.end) continue; // the same slot twice in one answer: keep the first
    kept.push(s);
  }
  const overlaps = (c: CachedSlot) => {
    const i = firstEndingAfter(kept, c[0]);
    return i < kept.length && kept[i].start < c[1];
  };
  const out: CachedSlot[] = cached.filter((c) => !overlaps(c));
  for (const s of kept) out.push([s.start, s.end, s.price]);
  return out.sort((a, b) => a[0] - b[0]);
}

/** Slots from start instants and prices: each ends where the next starts; the last repeats the step before it. */
export function slotsFromStarts(points: { start: number; price: number }[], defaultStepMs: number): WholesaleSlot[] {
  const sorted = [...points].sort((a, b) => a.start - b.start);
  return sorted.map((p, i) => {
    const next = sorted[i + 1]?.start;
    const prevStep = i > 0 ? p.start - sorted[i - 1].start : defaultStepMs;
    return { start: p.start, end: next ?? p.start + prevStep, price: p.price };
  });
}

/** Per-kWh factor of a price unit such as "EUR / MWh", "Eur/MWh", "DKK/kWh". */
export function perKwhFactor(unit: string | undefined, provider: string): number {
  if (!unit) return 1 / 1000;
  const u = unit.replace(/\s/g, '').toLowerCase();
  if (u.endsWith('/mwh')) return 1 / 1000;
  if (u.endsWith('/kwh')) return 1;
  throw malformed(provider, `unknown price unit "${unit}"`);
}
