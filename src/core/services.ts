import type { Clock, Direction, EventBus, Logger, PriceSeries, SiteInfo, TimeWindow } from '../api/index.js';
import type { RouteModule } from './http.js';
import type { HubConfig } from './config/schema.js';
import type { Catalog } from './config/compose.js';
import type { MeteringService } from '../metering/service.js';
import type { ControlLoop } from '../control/loop.js';
import type { ForecastService } from '../forecast/service.js';
import type { DeviceRegistry } from './registry.js';
import type { StateStore } from './store/state.js';
import type { BillTerms, SlotComponents } from '../tariff/bill-model.js';

/** Resolves the price series in force for a direction and window (tariff history for the past). */
export interface PriceLookup {
  series(direction: Direction, window: TimeWindow): PriceSeries;
  /** Whether the direction's tariff source is failing, and the fallback standing in (for the plan's notes). */
  health?(direction: Direction): PriceSourceHealth;
  /** The composed tariff (issue 17): every per-kWh part of the bill over a window (see src/tariff/bill-model.ts). */
  components?(window: TimeWindow): SlotComponents[];
  /** The bill's terms beyond per-kWh rates: VAT, standing charges, capacity charge, export rules. */
  terms?(): BillTerms;
}

export interface PriceSourceHealth {
  type: string | null;
  error: string | null;
  /** The source could not be created, its last refresh failed, or its prices do not reach the present. */
  degraded: boolean;
  /** Description of the configured fallback tariff, if any. */
  fallback: string | null;
}

export type AdapterStatus = 'starting' | 'running' | 'failed' | 'stopped';

/**
 * What the hub's services see of each other. The host builds one of these; route modules,
 * the control loop and plugins receive it instead of reaching for globals.
 */
export interface HubServices {
  config: HubConfig;
  site: SiteInfo;
  clock: Clock;
  bus: EventBus;
  log: Logger;
  state: StateStore;
  registry: DeviceRegistry;
  /** Adapter instances by device id with their status, for /health and /devices. */
  adapterStatus: Map<string, { adapter: string; status: AdapterStatus; error?: string }>;
  startedAt: number;
  /** Plugins by id (refused ones by package or path) with their status, for /health. */
  pluginStatus?: Map<string, { source: string; status: 'starting' | 'running' | 'failed' | 'stopped' | 'disabled'; error?: string }>;
  /** Set by the tariff part (src/tariff). */
  tariffs?: PriceLookup;
  /** The adapters, plugins and tariff sources this hub was built with. */
  catalog?: Catalog;
  /** Set by the metering part (src/metering): meter records, costs, savings. */
  metering?: MeteringService;
  /** Set by the forecast part (src/forecast): PV forecast sources, forecasts as made, their errors. */
  forecasts?: ForecastService;
  /** Set by the control part (src/control): the site plan and the loop that applies it. */
  control?: ControlLoop;
}

/** One part of the hub itself: made with the services, may add routes, started after the adapters. */
export interface HubPart {
  name: string;
  routes?: RouteModule;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

export type PartFactory = (hub: HubServices) => HubPart | Promise<HubPart>;
