import type { AdapterStore, ConfigIssue, JsonSchema, SiteInfo } from './adapter.js';
import type { Clock } from './clock.js';
import type { ForecastSourceDefinition } from './forecast.js';
import type { EventBus } from './events.js';
import type { Logger } from './logger.js';
import type { EpochMs, PriceSeries, TimeWindow } from './series.js';
import type { Transports } from './transports.js';

/** What a tariff source needs to fetch and cache prices. */
export interface TariffSourceContext {
  log: Logger;
  clock: Clock;
  site: SiteInfo;
  /** Injected so tests never make live calls. */
  fetch: typeof globalThis.fetch;
  /** Persistent cache for what was fetched, so the last known prices survive restarts and outages. */
  cache: AdapterStore;
}

export interface TariffSource {
  /** The prices this source knows inside the window (may be shorter than the window). */
  series(window: TimeWindow): PriceSeries;
  /** Fetches new prices; throws a retryable error when the source is down (last prices are kept). */
  refresh?(signal?: AbortSignal): Promise<void>;
  /** When refresh() last succeeded. */
  lastUpdated?(): EpochMs | undefined;
  /** Human description for the dashboard and logs. */
  describe(): string;
}

export interface TariffSourceDefinition<C = Record<string, unknown>> {
  /** The value of `tariffs.import.type` / `tariffs.export.type` that selects this source. */
  type: string;
  description: string;
  /** Schema of the keys beside `type`. */
  configSchema: JsonSchema;
  create(ctx: TariffSourceContext, config: C): TariffSource;
  /** Checks the schema cannot express (gaps and overlaps in time-of-use rates); paths relative to the tariff. */
  check?(config: C): ConfigIssue[];
}

export interface PluginContext {
  log: Logger;
  bus: EventBus;
  clock: Clock;
  site: SiteInfo;
  store: AdapterStore;
  transports: Transports;
  /** Read-only access to the hub's services (devices, plan, tariffs, metering). */
  hub: unknown;
}

export interface PluginInstance {
  start?(signal: AbortSignal): Promise<void>;
  stop?(): Promise<void>;
}

export interface PluginDefinition<C = Record<string, unknown>> {
  id: string;
  description: string;
  /** Schema of the keys of this plugin's `plugins[]` entry besides `id`. */
  configSchema: JsonSchema;
  tariffSources?: TariffSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Forecast sources, selected by `forecasts.source.type`. */
  forecastSources?: ForecastSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Optional running part (publishers, dashboard). */
  create?(ctx: PluginContext, config: C): PluginInstance | Promise<PluginInstance>;
}

export function definePlugin<C>(def: PluginDefinition<C>): PluginDefinition<C> {
  if (!/^[a-z][a-z0-9_-]*$/.test(def.id)) throw new Error(`plugin id "${def.id}" must be lower-case letters, digits, - or _`);
  return def;
}

export function defineTariffSource<C>(def: TariffSourceDefinition<C>): TariffSourceDefinition<C> {
  return def;
}
