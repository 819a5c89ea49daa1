import type { Device } from './capabilities.js';
import type { Clock } from './clock.js';
import type { EventBus } from './events.js';
import type { Logger } from './logger.js';
import type { FoundDevice, ModbusTransport, Transports } from './transports.js';

/** A JSON Schema object (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Record<string, unknown>;

/** Site facts every adapter and plugin may need. */
export interface SiteInfo {
  id: string;
  name: string;
  timezone: string;
  currency: string;
}

/** A small persistent key-value space of the adapter's own, kept in the hub's state store. */
export interface AdapterStore {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown): Promise<void>;
}

/** Everything an adapter receives: one object, no positional argument lists. */
export interface AdapterContext {
  /** pino child with `{adapter, device}`. */
  log: Logger;
  bus: EventBus;
  transports: Transports;
  store: AdapterStore;
  clock: Clock;
  site: SiteInfo;
}

export interface AdapterInstance {
  devices: Device[];
  /** Connects and begins polling. Throwing marks this adapter failed; the hub goes on. */
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}

/** Common keys of every `devices[]` entry; the adapter's schema adds its own. */
export interface DeviceConfigBase {
  id: string;
  adapter: string;
  name?: string;
  circuit?: string;
}

export interface AdapterDefinition<C extends DeviceConfigBase = DeviceConfigBase> {
  id: string;
  /** One line for `homeflex schema`, the adapters table of docs/adapters.md and error messages. */
  description: string;
  /**
   * JSON Schema of the adapter's own keys in a `devices[]` entry (without `id`, `adapter`, `name`,
   * `circuit`). Unknown keys are rejected, defaults are applied before `create` sees the config.
   */
  configSchema: JsonSchema;
  create(ctx: AdapterContext, config: C): AdapterInstance | Promise<AdapterInstance>;
  /** Shared transports this adapter always uses; a site file without the matching `connections.*` is refused at check time. */
  needs?: ('mqtt' | 'ocpp')[];
  /** Checks the schema cannot express; paths are relative to the device entry. */
  check?(config: C): ConfigIssue[];
  /**
   * Checks across this adapter's entries (two entries claiming one thing): gets them all with their
   * index in `devices[]`; each issue names the entry it is about, its path relative to that entry.
   */
  checkEntries?(entries: { index: number; config: C }[]): (ConfigIssue & { index: number })[];
  /**
   * MQTT adapters: the topics the device itself uses as a client of the broker. The embedded
   * broker gives a login that lists this device (`connections.mqtt.embedded.users[].devices`)
   * these rights, and lets only the hub's login publish to the device's `commands`.
   */
  mqttClient?(config: C, site: SiteInfo): MqttClientTopics;
  /**
   * A simulator of a peer (a charge point dialling the hub, an inverter serving Modbus) for demos and
   * tests: not a device of the house, so it is left out where devices are listed (savings, report).
   */
  simulatesPeer?: boolean;
  /**
   * Discovery on the site's Modbus connections (`connections.modbus[].discover`): what this adapter
   * would drive at one unit id, or undefined when nothing of its kind answers there. Timeouts and a
   * lost connection are thrown (the host moves on to the next unit or connection).
   */
  probeModbus?(transport: ModbusTransport, unit: number): Promise<FoundDevice | undefined>;
  /** The Modbus connection and unit ids a configured device of this adapter occupies: never probed, never listed as found. */
  modbusUnits?(config: C): { connection: string; units: number[] } | undefined;
}

/** Topic filters of one device's own MQTT client (see `AdapterDefinition.mqttClient`). */
export interface MqttClientTopics {
  /** Filters it publishes to: state, telemetry, availability, answers. */
  publish: string[];
  /** Filters it may subscribe to (at least its commands). */
  subscribe: string[];
  /** Filters only the hub may publish to: the device's commands (a subset of what it subscribes to). */
  commands: string[];
}

/** A problem found in a config fragment; `path` is relative to the fragment, e.g. ['rates', 2, 'to']. */
export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

/** Declares an adapter; the host checks and loads it. */
export function defineAdapter<C extends DeviceConfigBase>(def: AdapterDefinition<C>): AdapterDefinition<C> {
  if (!/^[a-z][a-z0-9_-]*$/.test(def.id)) throw new Error(`adapter id "${def.id}" must be lower-case letters, digits, - or _`);
  return def;
}
