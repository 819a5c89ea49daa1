import type { AdapterStore, ConfigIssue, JsonSchema, SiteInfo } from './adapter.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { EpochMs } from './series.js';

/** One point of a forecast series: mean power over `[start, end)` (W), with optional 10 % / 90 % quantiles. */
export interface ForecastPoint {
  start: EpochMs;
  end: EpochMs;
  powerW: number;
  p10W?: number;
  p90W?: number;
}

/** Weather averaged over `[start, end)`: irradiance (W/m²) and air temperature (°C). */
export interface WeatherPoint {
  start: EpochMs;
  end: EpochMs;
  /** Global horizontal irradiance. */
  ghi: number;
  /** Direct normal irradiance. */
  dni?: number;
  /** Diffuse horizontal irradiance. */
  dhi?: number;
  /** Air temperature at 2 m. */
  tempC?: number;
}

/** A PV array of the site as the `forecasts.pv[]` entry resolves it (site coordinates filled in). */
export interface PvArraySpec {
  id: string;
  kwp: number;
  /** Degrees from horizontal. */
  tilt: number;
  /** Degrees clockwise from north (180 = south). */
  azimuth: number;
  latitude: number;
  longitude: number;
  inverter_kw?: number;
  temp_coeff_pct_per_k?: number;
  noct_c?: number;
  losses_pct?: number;
  /** The `pv` device that measures this array's production. */
  device?: string;
}

/** What a forecast source needs to fetch and cache. */
export interface ForecastSourceContext {
  log: Logger;
  clock: Clock;
  site: SiteInfo;
  /** The site's PV arrays (`forecasts.pv`). */
  arrays: readonly PvArraySpec[];
  /** Injected so tests never make live calls. */
  fetch: typeof globalThis.fetch;
  /** Persistent cache, so the last known forecast survives restarts and outages. */
  cache: AdapterStore;
}

/**
 * A source of PV forecasts: a PV forecaster (AC power per array) or a weather service (irradiance
 * and temperature at the site, which the hub turns into each array's power).
 */
export interface ForecastSource {
  /** The PV forecast it knows per array id (AC power); may end before the horizon. */
  pv?(): ReadonlyMap<string, readonly ForecastPoint[]>;
  /** The weather it knows at the site, if it forecasts weather. */
  weather?(): readonly WeatherPoint[];
  /** Fetches a new forecast; throws a retryable error when the source is down (the last forecast is kept). */
  refresh?(signal?: AbortSignal): Promise<void>;
  /** When refresh() last succeeded. */
  lastUpdated?(): EpochMs | undefined;
  /** Human description for the plan's notes and the dashboard. */
  describe(): string;
}

export interface ForecastSourceDefinition<C = Record<string, unknown>> {
  /** The value of `forecasts.source.type` that selects this source. */
  type: string;
  description: string;
  /** Schema of the keys beside `type`. */
  configSchema: JsonSchema;
  /** Least minutes between two fetches (the provider's rate limit); the hub never asks more often. */
  minRefreshMinutes: number;
  /** Default refresh schedule (cron, site time zone). */
  defaultCron: string;
  create(ctx: ForecastSourceContext, config: C): ForecastSource;
  /** Checks the schema cannot express; paths relative to `forecasts.source`. */
  check?(config: C, arrays: readonly { id: string }[]): ConfigIssue[];
}

export function defineForecastSource<C>(def: ForecastSourceDefinition<C>): ForecastSourceDefinition<C> {
  if (!/^[a-z][a-z0-9_]*$/.test(def.type)) throw new Error(`forecast source type "${def.type}" must be lower-case letters, digits or _`);
  return def;
}
