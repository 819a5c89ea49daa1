import type { Clock, Logger, ModbusTransport, MqttTransport, OcppTransport, Transports } from '../../api/index.js';
import { permanentError } from '../../api/index.js';
import type { Catalog } from '../config/compose.js';
import type { HubConfig } from '../config/schema.js';
import { createModbusTransport } from './modbus.js';
import { createMqttTransport } from './mqtt.js';
import { createOcppTransport } from './ocpp.js';

export interface TransportContext {
  config: HubConfig;
  log: Logger;
  clock: Clock;
  /** Adapters of this build (the embedded MQTT broker reads each device's topics from them); without it, logins get only the topics listed in the YAML. */
  catalog?: Catalog;
  /** Told of devices found on a connection that no device of the site file is (discovery). */
  onDiscovered?: (found: FoundDevice) => void;
}

/** A device a transport found that the site file does not configure (defined in the SDK: adapters' probes answer it too). */
export type { FoundDevice } from '../../api/index.js';
import type { FoundDevice } from '../../api/index.js';

/** A shared transport with its lifecycle; the host stops them after the adapters. */
export interface Managed<T> {
  transport: T;
  stop(): Promise<void>;
}

/**
 * Factories of the shared transports, one per `connections.*` key. Each is created on first use,
 * once, and shared by every adapter that asks.
 */
export interface TransportFactories {
  mqtt?: (ctx: TransportContext) => Managed<MqttTransport>;
  ocpp?: (ctx: TransportContext) => Managed<OcppTransport>;
  modbus?: (ctx: TransportContext, id: string) => Managed<ModbusTransport>;
}

export const transportFactories: TransportFactories = {
  mqtt: createMqttTransport,
  ocpp: createOcppTransport,
  modbus: createModbusTransport,
};

export interface HubTransports extends Transports {
  /** Opens every listener the configuration names (OCPP server, embedded MQTT broker); rejects naming the one that cannot listen. */
  listen(): Promise<void>;
  stop(): Promise<void>;
}

export function createTransports(ctx: TransportContext, factories: TransportFactories = transportFactories): HubTransports {
  const made = new Map<string, Managed<unknown>>();
  const missing = (key: string) => permanentError('no_connection', `no connections.${key} is configured in ${ctx.config.source}`);
  const once = <T>(key: string, make: () => Managed<T>): T => {
    let m = made.get(key) as Managed<T> | undefined;
    if (!m) {
      m = make();
      made.set(key, m);
    }
    return m.transport;
  };
  return {
    mqtt: () => {
      const f = factories.mqtt;
      if (!ctx.config.connections.mqtt || !f) throw missing('mqtt');
      return once('mqtt', () => f(ctx));
    },
    ocpp: () => {
      const f = factories.ocpp;
      if (!ctx.config.connections.ocpp || !f) throw missing('ocpp');
      return once('ocpp', () => f(ctx));
    },
    modbus: (id) => {
      const f = factories.modbus;
      if (!ctx.config.connections.modbus.some((m) => m.id === id) || !f) throw missing(`modbus (id "${id}")`);
      return once(`modbus:${id}`, () => f(ctx, id));
    },
    async listen() {
      const c = ctx.config.connections;
      if (c.ocpp && factories.ocpp) {
        const f = factories.ocpp;
        await once('ocpp', () => f(ctx)).ready();
      }
      if (c.mqtt?.embedded && factories.mqtt) {
        const f = factories.mqtt;
        const mqtt = once('mqtt', () => f(ctx)) as MqttTransport & { embeddedBroker?: () => Promise<string | undefined> };
        if (mqtt.embeddedBroker && !(await mqtt.embeddedBroker())) {
          throw permanentError('broker_listen', `the embedded MQTT broker cannot listen on ${c.mqtt.embedded.host ?? '127.0.0.1'}:${c.mqtt.embedded.port} (see the log line before)`);
        }
      }
    },
    async stop() {
      for (const [key, m] of [...made].reverse()) {
        await m.stop().catch((err: unknown) => ctx.log.warn({ err, transport: key }, 'transport did not stop cleanly'));
      }
      made.clear();
    },
  };
}
