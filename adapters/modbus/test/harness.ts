import type { AdapterContext, Clock, Logger, ModbusTransport, Transports } from '../../../src/api/index.js';
import { HubBus } from '../../../src/core/bus.js';
import { ManualClock } from '../../../src/core/clock.js';
import type { ModbusConnectionConfig } from '../../../src/core/config/schema.js';
import { ModbusConnection } from '../../../src/core/transports/modbus.js';

export interface LogEntry {
  level: string;
  msg: string;
  obj: unknown;
}

/** A logger that keeps every line, so tests can check what was said and how often. */
export function captureLogger(entries: LogEntry[] = [], bindings: Record<string, unknown> = {}): Logger & { entries: LogEntry[] } {
  const line = (level: string) => (obj: unknown, msg?: string) => {
    entries.push({ level, msg: typeof obj === 'string' ? obj : msg ?? '', obj: typeof obj === 'string' ? bindings : { ...bindings, ...(obj as object) } });
  };
  return {
    entries,
    trace: line('trace'),
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    fatal: line('fatal'),
    child: (b) => captureLogger(entries, { ...bindings, ...b }),
  };
}

export const said = (log: { entries: LogEntry[] }, level: string, pattern: RegExp) => log.entries.filter((e) => e.level === level && pattern.test(e.msg));

export function tcpConnection(port: number, opts: { id?: string; timeoutMs?: number; clock?: Clock; log?: Logger } = {}): ModbusConnection {
  const config: ModbusConnectionConfig = { id: opts.id ?? 'lan', tcp: { host: '127.0.0.1', port }, timeout_ms: opts.timeoutMs ?? 300 };
  return new ModbusConnection({ config, log: opts.log ?? captureLogger(), clock: opts.clock ?? new ManualClock(), backoff: { initialMs: 1000, maxMs: 8000 } });
}

/** The context an adapter gets from the host, with one Modbus connection behind it. */
export function adapterContext(connection: ModbusTransport, opts: { clock?: Clock; log?: Logger; bus?: HubBus } = {}): AdapterContext & { bus: HubBus; log: ReturnType<typeof captureLogger> } {
  const kv = new Map<string, unknown>();
  const transports: Transports = {
    mqtt: () => {
      throw new Error('no mqtt in this test');
    },
    ocpp: () => {
      throw new Error('no ocpp in this test');
    },
    modbus: (id) => {
      if (id !== connection.id) throw new Error(`no modbus connection ${id}`);
      return connection;
    },
  };
  return {
    log: (opts.log as ReturnType<typeof captureLogger>) ?? captureLogger(),
    bus: opts.bus ?? new HubBus(),
    transports,
    store: { get: <T>(k: string) => kv.get(k) as T | undefined, set: async (k, v) => void kv.set(k, v) },
    clock: opts.clock ?? new ManualClock(),
    site: { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' },
  };
}

/** Device YAML defaults as the schema applies them. */
export const deviceDefaults = {
  soc_min_pct: 5,
  soc_max_pct: 100,
  charge_efficiency: 0.95,
  discharge_efficiency: 0.95,
  poll_s: 10,
  invert: [] as ('battery_power' | 'grid_power' | 'pv_power')[],
  read_only: false,
};
