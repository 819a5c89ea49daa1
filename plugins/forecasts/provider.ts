import {
  cronIssues,
  DAY,
  defineForecastSource,
  permanentError,
  retryableError,
  type ConfigIssue,
  type ForecastPoint,
  type ForecastSourceContext,
  type ForecastSourceDefinition,
  type JsonSchema,
  type PvArraySpec,
  type SiteInfo,
  type WeatherPoint,
} from '../../src/api/index.js';
import { fetchWithRetry, type FetchRequest } from '../shared/fetch.js';

/**
 * The common machinery of a forecast source: fetching with a timeout and retries (the helper the
 * tariff providers use), plausibility checks, and caching what was fetched in the source's store so
 * the last known forecast survives restarts and outages.
 */

export interface ForecastProviderConfig {
  type: string;
  /** Base URL of the provider's API (tests point it at 127.0.0.1). */
  url?: string;
  timeout_ms?: number;
  retries?: number;
  retry_delay_ms?: number;
  refresh_cron?: string;
}

export interface ForecastRequest extends FetchRequest {
  /** The arrays this answer is for: one array, or several whose total it gives (split by kWp). */
  arrays: string[];
}

/** What one answer holds: the total power of the request's arrays, power per array, or the weather. */
export interface ParsedForecast {
  points?: ForecastPoint[];
  weather?: WeatherPoint[];
}

export interface ForecastProviderSpec<C extends ForecastProviderConfig> {
  type: string;
  description: string;
  defaultUrl: (config: C) => string;
  properties: Record<string, JsonSchema>;
  required?: string[];
  minRefreshMinutes: number;
  defaultCron: string;
  requests(config: C, arrays: readonly PvArraySpec[], base: string, site: SiteInfo, now: number): ForecastRequest[];
  parse(body: string, config: C, request: ForecastRequest, site: SiteInfo): ParsedForecast;
  describe(config: C): string;
  check?(config: C, arrays: readonly { id: string }[]): ConfigIssue[];
}

/** An answer we cannot read: permanent until the provider changes. */
export const malformed = (provider: string, message: string) => permanentError('forecast_response_invalid', `${provider}: ${message}`);

export function json(body: string, provider: string): unknown {
  try {
    return JSON.parse(body);
  } catch (err) {
    throw malformed(provider, `the answer is not JSON (${(err as Error).message})`);
  }
}

export const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

const commonProperties: Record<string, JsonSchema> = {
  url: { type: 'string', pattern: '^https?://', description: "Base URL of the provider's API (default: the public one)" },
  timeout_ms: { type: 'integer', minimum: 100, default: 10_000, description: 'Per request' },
  retries: { type: 'integer', minimum: 0, maximum: 10, default: 2, description: 'Further attempts after a failed request' },
  retry_delay_ms: { type: 'integer', minimum: 0, default: 5000, description: 'First wait between attempts; doubles each time' },
  refresh_cron: { type: 'string', description: 'When to fetch a new forecast (cron, site time zone); the default suits the provider’s free tier' },
};

export { cronIssues };

type CachedPoint = [start: number, end: number, w: number, p10: number | null, p90: number | null];
type CachedWeather = [start: number, end: number, ghi: number, dni: number | null, dhi: number | null, tempC: number | null];

/** New points replace the cached ones from their first start on; older ones are kept (for the past and while the source is down). */
function merge<T extends [number, number, ...unknown[]]>(cached: T[], fresh: T[], keepFrom: number): T[] {
  if (!fresh.length) return cached.filter((c) => c[1] > keepFrom);
  const sorted = [...fresh].sort((a, b) => a[0] - b[0]);
  const firstNew = sorted[0][0];
  return [...cached.filter((c) => c[1] <= firstNew && c[1] > keepFrom), ...sorted];
}

/**
 * The points of an answer that can be a forecast at all: finite, ordered, at most a day long,
 * not more than 1.5 × the arrays' peak power (W), within a week of now. Garbage that parses must
 * not replace the known forecast.
 */
export function believablePoints(points: readonly ForecastPoint[], maxW: number, now: number): { usable: ForecastPoint[]; dropped: string[] } {
  const usable: ForecastPoint[] = [];
  const dropped: string[] = [];
  for (const p of points) {
    const why = ![p.start, p.end, p.powerW].every(Number.isFinite) || (p.p10W !== undefined && !Number.isFinite(p.p10W)) || (p.p90W !== undefined && !Number.isFinite(p.p90W))
      ? 'not a number'
      : p.end <= p.start || p.end - p.start > DAY
        ? `a period from ${p.start} to ${p.end}`
        : p.start > now + 16 * DAY || p.end < now - 7 * DAY
          ? `a period at ${new Date(p.start).toISOString()}, far from now`
          : p.powerW < 0 || p.powerW > maxW
            ? `${Math.round(p.powerW)} W, beyond the arrays' ${Math.round(maxW / 1.5)} Wp`
            : undefined;
    if (why) dropped.push(why);
    else usable.push(p);
  }
  return { usable, dropped };
}

/** Declares a forecast source from a provider spec. */
export function defineForecastProvider<C extends ForecastProviderConfig>(spec: ForecastProviderSpec<C>): ForecastSourceDefinition<C> {
  return defineForecastSource<C>({
    type: spec.type,
    description: spec.description,
    configSchema: { required: spec.required ?? [], properties: { ...spec.properties, ...commonProperties } },
    minRefreshMinutes: spec.minRefreshMinutes,
    defaultCron: spec.defaultCron,
    check: (config, arrays) => [...cronIssues(config.refresh_cron), ...(spec.check?.(config, arrays) ?? [])],
    create: (ctx: ForecastSourceContext, config: C) => {
      const base = (config.url ?? spec.defaultUrl(config)).replace(/\/$/, '');
      const kwp = new Map(ctx.arrays.map((a) => [a.id, a.kwp]));
      let perArray = new Map<string, CachedPoint[]>(Object.entries(ctx.cache.get<Record<string, CachedPoint[]>>('pv') ?? {}));
      let weather: CachedWeather[] = ctx.cache.get<CachedWeather[]>('weather') ?? [];
      let updated = ctx.cache.get<number>('updated');
      const source = {
        describe: () => spec.describe(config),
        lastUpdated: () => updated,
        pv: () =>
          new Map(
            [...perArray].map(([id, list]) => [
              id,
              list.map(([start, end, powerW, p10, p90]) => ({ start, end, powerW, ...(p10 !== null ? { p10W: p10 } : {}), ...(p90 !== null ? { p90W: p90 } : {}) })),
            ]),
          ),
        weather: () => weather.map(([start, end, ghi, dni, dhi, tempC]) => ({ start, end, ghi, ...(dni !== null ? { dni } : {}), ...(dhi !== null ? { dhi } : {}), ...(tempC !== null ? { tempC } : {}) })),
        refresh: async (signal?: AbortSignal) => {
          const now = ctx.clock.now();
          // the provider's rate limit: a forecast this fresh is kept
          if (updated !== undefined && now - updated < spec.minRefreshMinutes * 60_000 && now >= updated) return;
          const fresh = new Map<string, CachedPoint[]>();
          const freshWeather: CachedWeather[] = [];
          for (const req of spec.requests(config, ctx.arrays, base, ctx.site, now)) {
            const body = await fetchWithRetry(ctx, req, config, 'forecast', signal);
            if (body === undefined) continue;
            const parsed = spec.parse(body, config, req, ctx.site);
            if (parsed.weather) {
              for (const w of parsed.weather) {
                if (![w.start, w.end, w.ghi].every(Number.isFinite) || w.end <= w.start || w.ghi < 0 || w.ghi > 1500) continue;
                freshWeather.push([w.start, w.end, w.ghi, w.dni ?? null, w.dhi ?? null, w.tempC ?? null]);
              }
            }
            if (parsed.points) {
              const total = req.arrays.reduce((a, id) => a + (kwp.get(id) ?? 0), 0);
              const { usable, dropped } = believablePoints(parsed.points, total * 1000 * 1.5, now);
              if (dropped.length) ctx.log.warn({ dropped: dropped.length, of: parsed.points.length }, `${spec.type}: ignored ${dropped.length} of ${parsed.points.length} forecast values that cannot be right (${dropped[0]})`);
              if (parsed.points.length && !usable.length) throw malformed(spec.type, `no usable values in the answer (${dropped[0]})`);
              // a total for several arrays is shared out by their peak power
              for (const id of req.arrays) {
                const share = total > 0 ? (kwp.get(id) ?? 0) / total : 0;
                const list = fresh.get(id) ?? [];
                addPoints(list, usable.map((p) => [p.start, p.end, p.powerW * share, p.p10W !== undefined ? p.p10W * share : null, p.p90W !== undefined ? p.p90W * share : null]));
                fresh.set(id, list);
              }
            }
          }
          if (!fresh.size && !freshWeather.length) throw retryableError('no_forecast_data', `${spec.type}: the answer held no forecast`);
          const keepFrom = now - 2 * DAY;
          const next = new Map<string, CachedPoint[]>();
          for (const a of ctx.arrays) next.set(a.id, merge(perArray.get(a.id) ?? [], fresh.get(a.id) ?? [], keepFrom));
          perArray = next;
          weather = merge(weather, freshWeather, keepFrom);
          updated = now;
          await ctx.cache.set('pv', Object.fromEntries(perArray));
          await ctx.cache.set('weather', weather);
          await ctx.cache.set('updated', updated);
          ctx.log.info({ arrays: fresh.size, weather: freshWeather.length }, `${spec.type}: new forecast`);
        },
      };
      return source;
    },
  });
}

/** Adds points to a list, summing those with the same period (two Solcast sites on one array set). */
function addPoints(list: CachedPoint[], points: CachedPoint[]) {
  const at = new Map(list.map((p, i) => [`${p[0]}|${p[1]}`, i]));
  for (const p of points) {
    const i = at.get(`${p[0]}|${p[1]}`);
    if (i === undefined) {
      at.set(`${p[0]}|${p[1]}`, list.length);
      list.push(p);
    } else {
      const q = list[i];
      list[i] = [q[0], q[1], q[2] + p[2], q[3] !== null && p[3] !== null ? q[3] + p[3] : null, q[4] !== null && p[4] !== null ? q[4] + p[4] : null];
    }
  }
  list.sort((a, b) => a[0] - b[0]);
}
