import { Writable } from 'node:stream';
import { OcppClient } from 'ocpp-ts';
import { applyDefaults, type AdapterStore, type Clock, type HubEvents, type MeterReading, type Transports } from '../../../src/api/index.js';
import { HubBus } from '../../../src/core/bus.js';
import { systemClock } from '../../../src/core/clock.js';
import { createLogger } from '../../../src/core/logging.js';
import { OcppServer, type OcppServerOptions } from '../../../src/core/transports/ocpp.js';
import { OcppChargePoint } from '../charge-point.js';
import { OcppConfigSchema, type OcppDeviceConfig } from '../schema.js';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export function captureLogger() {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { log: createLogger({ destination, level: 'debug', format: 'json' }), lines };
}

export class MemoryStore implements AdapterStore {
  readonly data = new Map<string, unknown>();
  /** How often each key was written (each write of the hub's store rewrites its state file). */
  readonly writes = new Map<string, number>();
  get<T>(key: string) {
    const v = this.data.get(key);
    return v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as T);
  }
  async set(key: string, value: unknown) {
    this.writes.set(key, (this.writes.get(key) ?? 0) + 1);
    this.data.set(key, value === undefined ? undefined : JSON.parse(JSON.stringify(value)));
  }
}

/** An OCPP central system on 127.0.0.1:0 with adapters for the given devices. */
export const SITE = { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' };

export class Rig {
  readonly bus = new HubBus();
  readonly logs = captureLogger();
  readonly readings: { deviceId: string; reading: MeterReading }[] = [];
  readonly events: string[] = [];
  server!: OcppServer;
  chargePoints = new Map<string, OcppChargePoint>();
  private instances: { stop(): Promise<void> }[] = [];

  constructor(readonly stores = new Map<string, MemoryStore>()) {
    this.bus.on('meter.reading', (e) => this.readings.push(e));
    for (const t of ['device.connected', 'device.disconnected'] as const) this.bus.on(t, (e: HubEvents[typeof t]) => this.events.push(`${t} ${e.deviceId}`));
  }

  async listen(options: Partial<OcppServerOptions> = {}) {
    this.server = new OcppServer({ host: '127.0.0.1', port: 0, path: '/ocpp', allowUnknown: false, callTimeoutMs: 5000, ...options }, this.logs.log, () => Date.now());
    await this.server.ready();
    return this;
  }

  get url() {
    return `ws://127.0.0.1:${this.server.port}/ocpp`;
  }

  store(id: string) {
    let s = this.stores.get(id);
    if (!s) this.stores.set(id, (s = new MemoryStore()));
    return s;
  }

  async device(config: Partial<OcppDeviceConfig> & { id: string; identity: string }, clock: Clock = systemClock): Promise<OcppChargePoint> {
    const log = this.logs.log.child({ adapter: 'ocpp', device: config.id });
    const ctx = { log, bus: this.bus, transports: this.transports(), store: this.store(config.id), clock, site: SITE };
    const cp = new OcppChargePoint(ctx, applyDefaults(OcppConfigSchema, { adapter: 'ocpp', boot_wait_s: 0.05, ...config }) as OcppDeviceConfig, this.server);
    await cp.start();
    this.instances.push(cp);
    this.chargePoints.set(config.id, cp);
    return cp;
  }

  transports(): Transports {
    return {
      ocpp: () => this.server,
      mqtt: () => {
        throw new Error('no mqtt');
      },
      modbus: () => {
        throw new Error('no modbus');
      },
    };
  }

  async stop() {
    for (const i of this.instances) await i.stop();
    this.instances = [];
    await this.server?.stop();
  }

  logged(re: RegExp) {
    return this.logs.lines.filter((l) => re.test(l.msg));
  }
}

/** Waits until `fn` returns a truthy value (polling every 10 ms, up to `ms`). */
export async function until<T>(fn: () => T | undefined | false | null, ms = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An independent OCPP 1.6J charge point (npm ocpp-ts) that answers the hub's calls as told. */
export class TsChargePoint {
  readonly client: OcppClient;
  readonly calls: { action: string; params: Record<string, unknown> }[] = [];
  answers: Record<string, Record<string, unknown>> = {
    GetConfiguration: { configurationKey: [{ key: 'ChargingScheduleAllowedChargingRateUnit', readonly: true, value: 'Current' }, { key: 'ChargingScheduleMaxPeriods', readonly: true, value: '24' }], unknownKey: [] },
    ChangeConfiguration: { status: 'Accepted' },
    SetChargingProfile: { status: 'Accepted' },
    ClearChargingProfile: { status: 'Accepted' },
    TriggerMessage: { status: 'Accepted' },
    RemoteStartTransaction: { status: 'Accepted' },
    RemoteStopTransaction: { status: 'Accepted' },
    GetCompositeSchedule: { status: 'Accepted', connectorId: 1, scheduleStart: '2026-01-01T00:00:00Z', chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 10 }] } },
  };
  closed?: number;
  error?: Error;

  constructor(readonly identity: string) {
    this.client = new OcppClient(identity);
    for (const action of Object.keys(this.answers)) {
      this.client.on(action as 'SetChargingProfile', (params: unknown, cb: (r: never) => void) => {
        this.calls.push({ action, params: params as Record<string, unknown> });
        cb(this.answers[action] as never);
      });
    }
    this.client.on('error', (err) => (this.error = err));
    this.client.on('close', (code) => (this.closed = code));
  }

  /** Connects; resolves true when open, false when refused (error or close before open). */
  connect(url: string, password?: string): Promise<boolean> {
    const headers = password !== undefined ? { Authorization: `Basic ${Buffer.from(`${this.identity}:${password}`).toString('base64')}` } : undefined;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        this.client.removeAllListeners('connect');
        resolve(ok);
      };
      this.client.once('connect', () => done(true));
      this.client.once('error', () => done(false));
      this.client.connect(`${url}/`, headers);
    });
  }

  call<T = Record<string, unknown>>(action: string, payload: Record<string, unknown>): Promise<T> {
    return this.client.callRequest(action as 'Heartbeat', payload as never) as Promise<T>;
  }

  /** Drops the WebSocket as a charger losing its network would. */
  disconnect() {
    const socket = (this.client as unknown as { connection?: { socket: { terminate(): void } } }).connection?.socket;
    socket?.terminate();
  }

  waitFor(action: string, n = 1, ms = 10_000) {
    return until(() => this.calls.filter((c) => c.action === action).length >= n && this.calls.filter((c) => c.action === action), ms, `${n}× ${action}`);
  }
}

export const now = () => new Date().toISOString();
