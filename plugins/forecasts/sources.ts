import { readFile } from 'node:fs/promises';
import { DateTime } from 'luxon';
import { defineForecastSource, permanentError, retryableError, type ForecastPoint, type PvArraySpec, type SiteInfo, type WeatherPoint } from '../../src/api/index.js';
import { cronIssues, defineForecastProvider, finite, json, malformed, type ForecastProviderConfig, type ForecastRequest } from './provider.js';
import { HOUR, MINUTE } from '../../src/api/time.js';


/** The site's coordinates: where the arrays are (they share one weather forecast). */
function siteLocation(arrays: readonly PvArraySpec[]): { latitude: number; longitude: number } {
  return { latitude: arrays[0]?.latitude ?? 0, longitude: arrays[0]?.longitude ?? 0 };
}

// ---------------------------------------------------------------- Open-Meteo

export interface OpenMeteoConfig extends ForecastProviderConfig {
  type: 'open_meteo';
  resolution?: 'hourly' | 'minutely_15';
  forecast_days?: number;
  models?: string;
  api_key?: string;
}

const OPEN_METEO_VARIABLES = ['shortwave_radiation', 'direct_normal_irradiance', 'diffuse_radiation', 'temperature_2m'];

/**
 * `{utc_offset_seconds, hourly_units, hourly: {time: [...], shortwave_radiation: [...], ...}}` (or
 * `minutely_15`). Radiation is the mean over the interval ending at each time; temperature is the
 * value at that time. Times are ISO local times of the answer's offset, or Unix seconds.
 */
export function parseOpenMeteo(body: string, resolution: 'hourly' | 'minutely_15' = 'hourly'): WeatherPoint[] {
  const doc = json(body, 'open_meteo') as Record<string, unknown>;
  const block = doc[resolution] as Record<string, unknown> | undefined;
  if (!block || typeof block !== 'object' || !Array.isArray(block.time)) throw malformed('open_meteo', `expected "${resolution}.time" in the answer`);
  const times = block.time as unknown[];
  const col = (name: string, required: boolean): (number | undefined)[] => {
    const v = block[name];
    if (!Array.isArray(v) || v.length !== times.length) {
      if (required) throw malformed('open_meteo', `expected "${resolution}.${name}" as long as "time"`);
      return times.map(() => undefined);
    }
    return v.map((x) => (finite(x) ? x : undefined));
  };
  const units = (doc[`${resolution}_units`] ?? {}) as Record<string, unknown>;
  for (const name of ['shortwave_radiation', 'direct_normal_irradiance', 'diffuse_radiation']) {
    const u = units[name];
    if (typeof u === 'string' && !/^W\/m/.test(u)) throw malformed('open_meteo', `${name} in "${u}", expected W/m²`);
  }
  const offsetMs = (finite(doc.utc_offset_seconds) ? doc.utc_offset_seconds : 0) * 1000;
  const ghi = col('shortwave_radiation', true);
  const dni = col('direct_normal_irradiance', false);
  const dhi = col('diffuse_radiation', false);
  const temp = col('temperature_2m', false);
  const step = resolution === 'hourly' ? HOUR : 15 * MINUTE;
  const at = (t: unknown, i: number): number => {
    if (finite(t)) return t * 1000;
    if (typeof t === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(t)) return Date.parse(`${t.slice(0, 16)}:00Z`) - offsetMs;
    throw malformed('open_meteo', `${resolution}.time[${i}] is "${String(t)}", not a time`);
  };
  const out: WeatherPoint[] = [];
  times.forEach((t, i) => {
    const g = ghi[i];
    if (g === undefined) return;
    const end = at(t, i);
    // a negative value at the edges of the night is noise: clamp at 0
    out.push({ start: end - step, end, ghi: Math.max(0, g), ...(dni[i] !== undefined ? { dni: Math.max(0, dni[i]!) } : {}), ...(dhi[i] !== undefined ? { dhi: Math.max(0, dhi[i]!) } : {}), ...(temp[i] !== undefined ? { tempC: temp[i] } : {}) });
  });
  return out;
}

export const openMeteo = defineForecastProvider<OpenMeteoConfig>({
  type: 'open_meteo',
  description: 'Weather forecast from Open-Meteo (no key for non-commercial use): irradiance and temperature, turned into each array’s AC power',
  defaultUrl: () => 'https://api.open-meteo.com',
  properties: {
    resolution: { type: 'string', enum: ['hourly', 'minutely_15'], default: 'hourly', description: 'minutely_15 is native in central Europe and North America, interpolated elsewhere' },
    forecast_days: { type: 'integer', minimum: 1, maximum: 16, default: 3 },
    models: { type: 'string', description: 'Weather model(s), e.g. icon_seamless (default: Open-Meteo’s best match)' },
    api_key: { type: 'string', description: 'For Open-Meteo’s commercial API (with its url)' },
  },
  minRefreshMinutes: 30,
  defaultCron: '7 * * * *',
  requests: (c, arrays, base) => {
    const { latitude, longitude } = siteLocation(arrays);
    const res = c.resolution ?? 'hourly';
    const q = new URLSearchParams({ latitude: latitude.toFixed(4), longitude: longitude.toFixed(4), [res]: OPEN_METEO_VARIABLES.join(','), forecast_days: String(c.forecast_days ?? 3), past_days: '1' });
    if (c.models) q.set('models', c.models);
    if (c.api_key) q.set('apikey', c.api_key);
    return [{ url: `${base}/v1/forecast?${q}`, arrays: arrays.map((a) => a.id) }];
  },
  parse: (body, c) => ({ weather: parseOpenMeteo(body, c.resolution ?? 'hourly') }),
  describe: (c) => `Open-Meteo weather${c.models ? ` (${c.models})` : ''}, ${c.resolution ?? 'hourly'}`,
});

// ---------------------------------------------------------------- Forecast.Solar

export interface ForecastSolarConfig extends ForecastProviderConfig {
  type: 'forecast_solar';
  api_key?: string;
}

/**
 * `{result: {watts: {"YYYY-MM-DD HH:MM:SS": W, ...}, ...}, message: {info: {timezone}}}`: power at
 * instants in the location's local time. Mean power between two instants of one day is their mean
 * (trapezoid); before the first and after the last instant of a day the array gives nothing.
 */
export function parseForecastSolar(body: string, site: SiteInfo): ForecastPoint[] {
  const doc = json(body, 'forecast_solar') as { result?: { watts?: unknown }; message?: { info?: { timezone?: unknown } } };
  const watts = doc.result?.watts;
  if (!watts || typeof watts !== 'object' || Array.isArray(watts)) throw malformed('forecast_solar', 'expected "result.watts" as an object of time → W');
  const zone = typeof doc.message?.info?.timezone === 'string' ? doc.message.info.timezone : site.timezone;
  const instants = Object.entries(watts as Record<string, unknown>).map(([k, v]) => {
    const t = DateTime.fromFormat(k, 'yyyy-MM-dd HH:mm:ss', { zone });
    if (!t.isValid || !finite(v)) throw malformed('forecast_solar', `"${k}": ${String(v)} is not a time and a power`);
    return { t: t.toMillis(), w: v, day: k.slice(0, 10) };
  }).sort((a, b) => a.t - b.t);
  const out: ForecastPoint[] = [];
  for (let i = 0; i + 1 < instants.length; i++) {
    const a = instants[i];
    const b = instants[i + 1];
    // the night between two days: nothing produced
    if (a.day !== b.day || b.t - a.t > 3 * HOUR) continue;
    out.push({ start: a.t, end: b.t, powerW: (a.w + b.w) / 2 });
  }
  return out;
}

export const forecastSolar = defineForecastProvider<ForecastSolarConfig>({
  type: 'forecast_solar',
  description: 'PV power per array from Forecast.Solar (free tier: 12 calls an hour, one per array and refresh)',
  defaultUrl: () => 'https://api.forecast.solar',
  properties: { api_key: { type: 'string', description: 'Personal key of a paid plan (optional)' } },
  minRefreshMinutes: 30,
  defaultCron: '12 * * * *',
  requests: (c, arrays, base) =>
    arrays.map((a): ForecastRequest => {
      // Forecast.Solar's azimuth: 0 south, −90 east, 90 west, ±180 north (ours: clockwise from north)
      const az = ((((a.azimuth - 180) % 360) + 540) % 360) - 180;
      const path = `estimate/${a.latitude.toFixed(4)}/${a.longitude.toFixed(4)}/${Math.round(a.tilt)}/${Math.round(az)}/${a.kwp}`;
      return { url: `${base}/${c.api_key ? `${encodeURIComponent(c.api_key)}/` : ''}${path}`, init: { headers: { accept: 'application/json' } }, arrays: [a.id] };
    }),
  parse: (body, _c, _r, site) => ({ points: parseForecastSolar(body, site) }),
  describe: () => 'Forecast.Solar',
});

// ---------------------------------------------------------------- Solcast

export interface SolcastConfig extends ForecastProviderConfig {
  type: 'solcast';
  api_key: string;
  resource_ids: string[];
}

/** ISO 8601 durations Solcast uses for `period`: PT5M, PT15M, PT30M, PT60M. */
function periodMs(p: unknown, i: number): number {
  const m = typeof p === 'string' ? /^PT(\d+)M$/.exec(p) : null;
  if (!m || Number(m[1]) <= 0) throw malformed('solcast', `forecasts[${i}].period is "${String(p)}", expected PT<minutes>M`);
  return Number(m[1]) * MINUTE;
}

/** `{forecasts: [{pv_estimate, pv_estimate10, pv_estimate90, period_end, period}]}`, kW over the period ending at period_end. */
export function parseSolcast(body: string): ForecastPoint[] {
  const doc = json(body, 'solcast') as { forecasts?: unknown };
  if (!Array.isArray(doc.forecasts)) throw malformed('solcast', 'expected a "forecasts" array');
  return doc.forecasts.map((f: Record<string, unknown>, i) => {
    const end = typeof f.period_end === 'string' ? Date.parse(f.period_end) : NaN;
    if (!Number.isFinite(end) || !finite(f.pv_estimate)) throw malformed('solcast', `forecasts[${i}] needs period_end and pv_estimate`);
    const start = end - periodMs(f.period, i);
    return { start, end, powerW: f.pv_estimate * 1000, ...(finite(f.pv_estimate10) ? { p10W: f.pv_estimate10 * 1000 } : {}), ...(finite(f.pv_estimate90) ? { p90W: f.pv_estimate90 * 1000 } : {}) };
  });
}

export const solcast = defineForecastProvider<SolcastConfig>({
  type: 'solcast',
  description: 'PV power with 10 % and 90 % quantiles from Solcast rooftop sites (hobbyist tier: 10 calls a day)',
  defaultUrl: () => 'https://api.solcast.com.au',
  properties: {
    api_key: { type: 'string', minLength: 1, description: 'Solcast API key (use ${SOLCAST_API_KEY})' },
    resource_ids: { type: 'array', minItems: 1, maxItems: 4, items: { type: 'string', pattern: '^[A-Za-z0-9-]+$' }, description: 'Rooftop site resource ids; their forecasts are added up and shared out over the arrays by kWp' },
  },
  required: ['api_key', 'resource_ids'],
  minRefreshMinutes: 150,
  defaultCron: '20 5,9,13,17 * * *',
  requests: (c, arrays, base) =>
    c.resource_ids.map((id) => ({
      url: `${base}/rooftop_sites/${encodeURIComponent(id)}/forecasts?format=json&hours=72`,
      init: { headers: { authorization: `Bearer ${c.api_key}`, accept: 'application/json' } },
      arrays: arrays.map((a) => a.id),
    })),
  parse: (body) => ({ points: parseSolcast(body) }),
  describe: (c) => `Solcast rooftop site${c.resource_ids.length > 1 ? 's' : ''} ${c.resource_ids.join(', ')}`,
});

// ---------------------------------------------------------------- generic HTTP and file

export interface HttpForecastConfig extends ForecastProviderConfig {
  type: 'http';
  url: string;
  headers?: Record<string, string>;
}

export interface FileForecastConfig {
  type: 'file';
  path: string;
  refresh_cron?: string;
}

/**
 * homeflex's own forecast format, for any service or script: `{data: [{valid_from, valid_to,
 * power_w, p10_w?, p90_w?}]}` with RFC 3339 times, the mean AC power of all arrays together.
 */
export function parseHomeflexForecast(body: string, provider: string): ForecastPoint[] {
  const doc = json(body, provider) as { data?: unknown };
  if (!Array.isArray(doc.data)) throw malformed(provider, 'expected {"data": [{"valid_from", "valid_to", "power_w"}]}');
  return doc.data.map((e: Record<string, unknown>, i) => {
    const start = typeof e.valid_from === 'string' ? Date.parse(e.valid_from) : NaN;
    const end = typeof e.valid_to === 'string' ? Date.parse(e.valid_to) : NaN;
    if (!Number.isFinite(start) || !Number.isFinite(end)) throw malformed(provider, `data[${i}]: valid_from and valid_to must be RFC 3339 times`);
    if (!finite(e.power_w)) throw malformed(provider, `data[${i}].power_w must be a number (W)`);
    for (const k of ['p10_w', 'p90_w']) if (e[k] !== undefined && !finite(e[k])) throw malformed(provider, `data[${i}].${k} must be a number (W)`);
    return { start, end, powerW: e.power_w, ...(finite(e.p10_w) ? { p10W: e.p10_w } : {}), ...(finite(e.p90_w) ? { p90W: e.p90_w } : {}) };
  });
}

export const httpForecast = defineForecastProvider<HttpForecastConfig>({
  type: 'http',
  description: 'PV power of the whole site from any HTTP service answering homeflex’s forecast format',
  defaultUrl: (c) => c.url,
  properties: { headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Request headers, e.g. authorization: Bearer ${TOKEN}' } },
  required: ['url'],
  minRefreshMinutes: 5,
  defaultCron: '*/15 * * * *',
  requests: (c, arrays, base) => [{ url: base, init: { headers: { accept: 'application/json', ...(c.headers ?? {}) } }, arrays: arrays.map((a) => a.id) }],
  parse: (body) => ({ points: parseHomeflexForecast(body, 'http') }),
  describe: (c) => `HTTP forecast ${new URL(c.url).host}`,
});

const fileAsHttp = defineForecastProvider<HttpForecastConfig>({
  type: 'file',
  description: 'PV power of the whole site from a JSON file in homeflex’s forecast format (written by a script)',
  defaultUrl: (c) => c.url,
  properties: {},
  minRefreshMinutes: 1,
  defaultCron: '*/5 * * * *',
  requests: (_c, arrays, base) => [{ url: base, arrays: arrays.map((a) => a.id) }],
  parse: (body) => ({ points: parseHomeflexForecast(body, 'file') }),
  describe: () => 'forecast file',
});

/** Reads the file where the HTTP source would fetch: same parsing, checks, cache and last-known forecast. */
export const fileForecast = defineForecastSource<FileForecastConfig>({
  type: 'file',
  description: fileAsHttp.description,
  configSchema: { required: ['path'], properties: { path: { type: 'string', minLength: 1, description: 'JSON file, relative to the site file' }, refresh_cron: { type: 'string', description: 'When to read it again (cron, default every 5 minutes)' } } },
  minRefreshMinutes: fileAsHttp.minRefreshMinutes,
  defaultCron: fileAsHttp.defaultCron,
  check: (c) => cronIssues(c.refresh_cron),
  create: (ctx, config) => {
    const readFromDisk: typeof globalThis.fetch = async () => {
      try {
        return new Response(await readFile(config.path, 'utf8'), { status: 200 });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw code === 'ENOENT' ? retryableError('forecast_file_missing', `${config.path}: no such file (yet)`) : permanentError('forecast_file_unreadable', `${config.path}: ${(err as Error).message}`);
      }
    };
    const inner = fileAsHttp.create({ ...ctx, fetch: readFromDisk }, { type: 'http', url: `file://${config.path}`, retries: 0, refresh_cron: config.refresh_cron });
    return { ...inner, describe: () => `forecast file ${config.path}` };
  },
});

export const forecastSources = [openMeteo, forecastSolar, solcast, httpForecast, fileForecast];
