import { HOUR, HomeflexError, SECOND, type AdapterDefinition, type Clock, type FoundDevice, type Logger, type ModbusTransport } from '../api/index.js';
import type { HubConfig, ModbusConnectionConfig } from './config/schema.js';

/** Unit ids looked at on a TCP connection when `discover` is not given: SunSpec devices' usual ones (inverters 1–2, SMA 126, Fronius meters 200 and 240). */
export const DEFAULT_DISCOVERY_UNITS: readonly number[] = [1, 2, 126, 200, 240];
/** The first look by default, after the configured devices had their first polls. */
export const FIRST_LOOK_MS = 10 * SECOND;
/** How long a look waits at each unit by default: a device on a LAN answers in tens of milliseconds. */
export const PROBE_TIMEOUT_MS = 500;

/** Which units to look at on a connection, and how often; undefined: discovery is off there. */
export function discoverySettings(c: ModbusConnectionConfig): { units: readonly number[]; everyMs: number; firstMs: number; timeoutMs: number } | undefined {
  const d = c.discover;
  // an RTU bus is looked at only when asked: every absent unit costs a timeout on a shared line
  if (d === undefined) return c.tcp ? { units: DEFAULT_DISCOVERY_UNITS, everyMs: 24 * HOUR, firstMs: FIRST_LOOK_MS, timeoutMs: Math.min(PROBE_TIMEOUT_MS, c.timeout_ms) } : undefined;
  const units = d.units ?? DEFAULT_DISCOVERY_UNITS;
  return units.length ? { units, everyMs: d.every_h * HOUR, firstMs: d.first_look_s * SECOND, timeoutMs: Math.min(d.timeout_ms ?? PROBE_TIMEOUT_MS, c.timeout_ms) } : undefined;
}

/** The connection as a probe sees it: its reads wait `timeoutMs` at most, so an absent unit holds the devices' polls only that long. */
function probing(t: ModbusTransport, timeoutMs: number): ModbusTransport {
  return {
    id: t.id,
    get connected() {
      return t.connected;
    },
    readHolding: (unit, address, count) => t.readHolding(unit, address, count, { timeoutMs }),
    readInput: (unit, address, count) => t.readInput(unit, address, count, { timeoutMs }),
    writeRegisters: (unit, address, values) => t.writeRegisters(unit, address, values),
  };
}

type AnyAdapter = AdapterDefinition<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Units configured devices use, by connection id: never probed, never listed as found. */
export function occupiedModbusUnits(config: HubConfig, adapters: readonly AnyAdapter[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const d of config.devices) {
    const def = adapters.find((a) => a.id === d.adapter);
    const used = def?.modbusUnits?.(d);
    if (!used) continue;
    const set = out.get(used.connection) ?? new Set<number>();
    for (const u of used.units) set.add(u);
    out.set(used.connection, set);
  }
  return out;
}

export interface ModbusDiscoveryOptions {
  config: HubConfig;
  adapters: readonly AnyAdapter[];
  modbus: (connectionId: string) => ModbusTransport;
  clock: Clock;
  log: Logger;
  report: (found: FoundDevice) => void;
}

/**
 * Looks at the units of each configured Modbus connection that no device uses, `first_look_s` after start and
 * then every `every_h` hours, asking every adapter with a Modbus probe (the `modbus` adapter: SunSpec)
 * what answers there. One unit at a time, through the connection's own queue, so the devices' polls
 * go on between looks. Returns the function that stops it.
 */
export function watchModbusUnits(o: ModbusDiscoveryOptions): () => void {
  const abort = new AbortController();
  const probes = o.adapters.filter((a) => a.probeModbus);
  if (!probes.length) return () => abort.abort();
  for (const conn of o.config.connections.modbus ?? []) {
    const settings = discoverySettings(conn);
    if (!settings) continue;
    const log = o.log.child({ connection: conn.id });
    const lookOnce = async (): Promise<void> => {
      const occupied = occupiedModbusUnits(o.config, o.adapters).get(conn.id) ?? new Set<number>();
      const transport = probing(o.modbus(conn.id), settings.timeoutMs);
      const found: number[] = [];
      for (const unit of settings.units) {
        if (abort.signal.aborted) return;
        if (occupied.has(unit)) continue;
        for (const def of probes) {
          try {
            const f = await def.probeModbus!(transport, unit);
            if (f) {
              found.push(unit);
              o.report(f);
              break;
            }
          } catch (err) {
            if (abort.signal.aborted) return;
            if (err instanceof HomeflexError && err.code === 'modbus_disconnected') {
              log.info({ err: err.message }, `discovery: connection ${conn.id} is not reachable; looking again in ${Math.round(settings.everyMs / HOUR)} h`);
              return;
            }
            // a timeout or a refusal: nothing of this kind at this unit
            log.debug({ unit, err: err instanceof Error ? err.message : String(err) }, `discovery: nothing at unit ${unit}`);
            break;
          }
        }
      }
      log.info({ units: settings.units, found }, `discovery: looked at units ${settings.units.join(', ')} of connection ${conn.id}: ${found.length ? `found ${found.map((u) => `unit ${u}`).join(', ')} (GET /api/v1/discovered)` : 'nothing new'}`);
    };
    void (async () => {
      try {
        await o.clock.sleep(settings.firstMs, abort.signal);
        while (!abort.signal.aborted) {
          await lookOnce().catch((err: unknown) => log.warn({ err }, 'discovery on a Modbus connection failed'));
          await o.clock.sleep(settings.everyMs, abort.signal);
        }
      } catch {
        // stopped
      }
    })();
  }
  return () => abort.abort();
}
