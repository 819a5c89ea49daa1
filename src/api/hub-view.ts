import type { Device } from './capabilities.js';
import type { HubEventName, HubEvents } from './events.js';
import type { Direction, EpochMs, PriceSlot, TimeWindow } from './series.js';

/** A value and everything below it read-only (the hub hands out frozen copies). */
export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends readonly (infer U)[]
    ? readonly DeepReadonly<U>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/** The site as plugins see it. */
export interface SiteView {
  id: string;
  name: string;
  timezone: string;
  currency: string;
  latitude?: number;
  longitude?: number;
  grid: { max_import_w: number | null; max_export_w: number | null };
  circuits: { id: string; name?: string; parent?: string; max_import_w?: number; max_export_w?: number }[];
}

/** A device's part of the plan, per slot of the plan. */
export interface PlannedDevice {
  id: string;
  kind?: string;
  powerW: number[];
  /** Battery: charge / discharge / hold per slot. */
  modes?: string[];
  /** Switched load: on per slot. */
  on?: boolean[];
  /** HVAC: setpoint per slot (°C). */
  setpointC?: number[];
}

/** The latest site plan, in the hub's units (epoch ms, W, site currency). */
export interface PlanSnapshot {
  id: string;
  createdAt: EpochMs;
  validUntil: EpochMs;
  status: string;
  /** Expected cost of the plan over its horizon (site currency). */
  cost: number;
  slots: { start: EpochMs; end: EpochMs }[];
  devices: PlannedDevice[];
}

/** One cost query, as `POST /costs/interval/{id}` takes it. */
export interface CostQuery {
  direction: Direction;
  aggregation: 'NONE' | 'DAY' | 'WEEK' | 'MONTH' | 'YEAR';
  includeTariff: boolean;
  window: TimeWindow;
}

/** The answer of a cost query (the HTTP API's shape): rows, and the total energy and money. */
export interface CostAnswer {
  data: { start_time: string; end_time: string; energy: { value: number }; tariff: { value: number } & Record<string, unknown> }[];
  total: { energy: { value: number }; tariff: { value: number } & Record<string, unknown> };
  [key: string]: unknown;
}

/** The answer of a savings query (the HTTP API's shape, `GET /savings/{id}`). */
export interface SavingsAnswer {
  savings: number;
  currency_code: string;
  [key: string]: unknown;
}

/** A device's JSON as `GET /api/v1/devices/{id}` answers it. */
export type DeviceJson = Record<string, unknown> & { id: string; name: string; adapter: string; available: boolean; capabilities: string[] };

/** Status of an adapter (by device) or plugin, as /health shows it. */
export interface PartStatus {
  status: 'starting' | 'running' | 'failed' | 'stopped' | 'disabled';
  error?: string;
}

/**
 * What a plugin sees of the hub: devices, prices, the plan, costs, savings and events. Every value
 * it returns is a frozen copy or a read-only view: nothing a plugin does through it changes the
 * hub's state. (A device's capability commands, such as `switch.set`, stay callable: they are how a
 * plugin acts on a device, as the HTTP API does.) Parts a hub runs without are absent.
 */
export interface HubView {
  readonly site: DeepReadonly<SiteView>;
  readonly devices: {
    /** The devices of the house, read-only (writing a property throws). */
    list(): readonly Readonly<Device>[];
    get(id: string): Readonly<Device> | undefined;
    /** The device as the HTTP API shows it (state, capabilities, its YAML with secrets redacted). */
    json(id: string): DeepReadonly<DeviceJson> | undefined;
    /** Which adapter drives each device and whether it runs. */
    status(id: string): DeepReadonly<PartStatus & { adapter: string }> | undefined;
  };
  readonly prices?: {
    /** The price series in force for a direction inside the window (tariff history for the past). */
    series(direction: Direction, window: TimeWindow): readonly Readonly<PriceSlot>[];
  };
  readonly plan?: {
    /** The latest plan, or undefined before the first one. */
    latest(): DeepReadonly<PlanSnapshot> | undefined;
  };
  readonly costs?: (objectId: string, query: CostQuery) => DeepReadonly<CostAnswer>;
  readonly savings?: (objectId: string, window: TimeWindow) => DeepReadonly<SavingsAnswer>;
  readonly events: {
    /** Subscribes to the hub's events; returns the unsubscribe function. */
    on<K extends HubEventName>(topic: K, handler: (payload: DeepReadonly<HubEvents[K]>) => void): () => void;
  };
  /** The site file as loaded (defaults applied), secrets redacted. */
  config(): DeepReadonly<Record<string, unknown>>;
  /** Status of the hub's plugins by id. */
  readonly plugins: { status(id: string): DeepReadonly<PartStatus> | undefined };
}
