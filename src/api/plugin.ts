import type { AdapterDefinition, AdapterStore, ConfigIssue, JsonSchema, SiteInfo } from './adapter.js';
import type { Clock } from './clock.js';
import type { ForecastSourceDefinition } from './forecast.js';
import type { EventBus } from './events.js';
import type { HubView } from './hub-view.js';
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

/** Writes meter records as `PUT /api/v1/meters/interval` does (for plugins that import meter data). */
export interface MeterWriter {
  /** An array of interval records in the API's shape; answers what was stored and what was refused. */
  ingestIntervals(records: unknown): Promise<{ records_processed: number; failed_records: unknown[] }>;
}

export interface PluginContext {
  /** pino child with `{plugin}`. */
  log: Logger;
  /** The hub's event bus. A handler that throws marks the plugin failed. */
  bus: EventBus;
  /** The hub's clock. A timer callback (`every`) that throws marks the plugin failed. */
  clock: Clock;
  site: SiteInfo;
  /** The plugin's own persistent key-value space. */
  store: AdapterStore;
  transports: Transports;
  /** Read-only view of the hub: devices, prices, plan, costs, savings, events. */
  hub: HubView;
  /** Meter records into the hub's store (absent when the hub runs without metering). */
  meters?: MeterWriter;
}

export interface PluginInstance {
  /** Begins the plugin's work. Throwing (or not finishing within 10 s) marks the plugin failed; the hub goes on. */
  start?(signal: AbortSignal): Promise<void>;
  stop?(): Promise<void>;
}

/** Who may call a plugin's route (the hub's deny-by-default rules; see docs/plugins.md). */
export type RouteAccessLevel = 'public' | 'read' | 'write';

/** The request a plugin route handler receives (a subset of fastify's). */
export interface PluginRequest {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  method: string;
  url: string;
  raw: import('node:http').IncomingMessage;
}

/** The reply a plugin route handler may use; returning a value sends it as JSON instead. */
export interface PluginReply {
  status(code: number): PluginReply;
  header(name: string, value: string): PluginReply;
  send(payload?: unknown): PluginReply;
  /** Takes over the raw response (Server-Sent Events): the hub will not answer for the handler. */
  hijack(): void;
  raw: import('node:http').ServerResponse;
}

export type PluginRouteHandler = (req: PluginRequest, reply: PluginReply) => unknown;

/**
 * Where a plugin adds HTTP routes: under `/api/v1/plugins/<plugin id>/`, each declaring who may call
 * it. Throw `ApiError` (or `badRequest`) for an answer in the API's error shape.
 */
export interface PluginRoutes {
  get(path: string, access: RouteAccessLevel, handler: PluginRouteHandler): void;
  post(path: string, access: RouteAccessLevel, handler: PluginRouteHandler): void;
  put(path: string, access: RouteAccessLevel, handler: PluginRouteHandler): void;
  delete(path: string, access: RouteAccessLevel, handler: PluginRouteHandler): void;
  /** Runs when the HTTP server closes (end open streams here). */
  onClose(fn: () => void | Promise<void>): void;
}

export interface PluginDefinition<C = Record<string, unknown>> {
  id: string;
  description: string;
  /** Schema of the keys of this plugin's `plugins[]` entry besides `id`. */
  configSchema: JsonSchema;
  tariffSources?: TariffSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Forecast sources, selected by `forecasts.source.type`. */
  forecastSources?: ForecastSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Adapters this plugin contributes, selected by `devices[].adapter`. */
  adapters?: AdapterDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Optional running part (publishers, dashboard). */
  create?(ctx: PluginContext, config: C): PluginInstance | Promise<PluginInstance>;
  /**
   * HTTP routes under `/api/v1/plugins/<id>/`. Called once, before the hub listens (and before
   * `create`), with the same context and config `create` gets. Throwing marks the plugin failed.
   */
  routes?(routes: PluginRoutes, ctx: PluginContext, config: C): void;
  /** Built-in plugins that run unless the site file disables them (`plugins: [{ id, enabled: false }]`). */
  enabledByDefault?: boolean;
  /** Built-in plugins only: mount the routes at the site root instead of the plugin's prefix (the dashboard). */
  mountAtRoot?: boolean;
}

export function definePlugin<C>(def: PluginDefinition<C>): PluginDefinition<C> {
  if (!/^[a-z][a-z0-9_-]*$/.test(def.id)) throw new Error(`plugin id "${def.id}" must be lower-case letters, digits, - or _`);
  return def;
}

export function defineTariffSource<C>(def: TariffSourceDefinition<C>): TariffSourceDefinition<C> {
  return def;
}
