import {
  defineAdapter,
  evChargeModeProperties,
  evDefaultModeSchema,
  evTargetSchema,
  retryableError,
  setAvailability,
  type AdapterContext,
  type ChargerLimit,
  type ChargerStatus,
  type ChargingSession,
  type Device,
  type DeviceConfigBase,
  type MeterReading,
} from '../../src/api/index.js';
import { CarSoc, carSocIssues, carSocProperties, type CarSocConfig } from '../homeassistant/car-soc.js';

/**
 * openWB series 2 (software 2.x) in secondary mode ("Nur Ladepunkt"): homeflex is the controller of
 * its internal chargepoint over MQTT, as an openWB primary is. Reads
 * `<root>/internal_chargepoint/<n>/get/<field>`; writes `<root>/set/internal_chargepoint/<n>/data/…`
 * (`set_current`, `phases_to_use` + `trigger_phase_switch`) and the `global_data` heartbeat; a write
 * is confirmed when openWB publishes it back as `<root>/internal_chargepoint/<n>/data/<key>`.
 */
export interface OpenWbConfig extends DeviceConfigBase, CarSocConfig {
  chargepoint: number;
  topic_root: string;
  heartbeat_s: number;
  stale_after_s: number;
  confirm_timeout_ms: number;
  phases: 1 | 3;
  phase_switching: boolean;
  min_current_a: number;
  max_current_a: number;
  voltage: number;
  ev_capacity_wh?: number;
  target?: Record<string, unknown>;
  default_mode: string;
  charge_mode: string;
  surplus_priority: number;
}

export type OpenWbFields = Partial<Record<string, unknown>>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** plug_state, charge_state, fault_state (0 ok, 1 warning, 2 error) and the current set, as a charger status. */
export function openWbStatus(get: OpenWbFields, setCurrentA: number | undefined): ChargerStatus {
  if (get.fault_state === 2) return 'faulted';
  if (get.plug_state === undefined) return 'unknown';
  if (get.plug_state !== true) return 'available';
  if (get.charge_state === true) return 'charging';
  return setCurrentA === 0 || setCurrentA === undefined ? 'suspended_evse' : 'suspended_ev';
}

/** The writes for a limit, in order, only those that differ from what openWB confirmed (`data/<key>`) and uses (`phases_in_use`). */
export function openWbWrites(limit: ChargerLimit, get: OpenWbFields, data: OpenWbFields, config: Pick<OpenWbConfig, 'phases' | 'phase_switching' | 'min_current_a' | 'max_current_a' | 'voltage'>): [string, number | boolean][] {
  const switching = config.phase_switching && config.phases === 3;
  const phases = switching && limit.phases ? limit.phases : config.phases;
  const amps = Math.min(config.max_current_a, Math.floor(limit.watts / (config.voltage * phases) + 1e-9));
  const out: [string, number | boolean][] = [];
  if (amps < config.min_current_a) {
    if (data.set_current !== 0) out.push(['set_current', 0]);
    return out;
  }
  if (switching && (num(get.phases_in_use) ?? config.phases) !== phases) out.push(['phases_to_use', phases], ['trigger_phase_switch', true]);
  if (data.set_current !== amps) out.push(['set_current', amps]);
  return out;
}

export const openwb = defineAdapter<OpenWbConfig>({
  id: 'openwb',
  description: 'openWB series 2 wallbox (software 2.x) in secondary mode over MQTT: start/stop, current limit, 1-/3-phase switching, meter, SoC',
  configSchema: {
    properties: {
      chargepoint: { type: 'integer', minimum: 0, maximum: 1, default: 0, description: 'The internal chargepoint: 0, or 1 for the second point of an openWB Duo' },
      topic_root: { type: 'string', default: 'openWB', pattern: '^[^/+#]+$', description: 'The topic root openWB publishes under' },
      heartbeat_s: { type: 'number', minimum: 1, maximum: 60, default: 10, description: 'How often the controller heartbeat (global_data) is sent; openWB stops charging when it stops' },
      stale_after_s: { type: 'number', minimum: 5, maximum: 3600, default: 60, description: 'Unavailable after this long without a value from the wallbox' },
      confirm_timeout_ms: { type: 'integer', minimum: 200, maximum: 60000, default: 5000, description: 'How long to wait for openWB to publish a write back as accepted (ms)' },
      phases: { enum: [1, 3], default: 3, description: 'Phases wired to the wallbox' },
      phase_switching: { type: 'boolean', default: true, description: 'Switch between 1 and 3 phases (phases_to_use + trigger_phase_switch); openWB series 2 with the phase-switch contactor (1p3p)' },
      min_current_a: { type: 'number', minimum: 6, maximum: 32, default: 6 },
      max_current_a: { type: 'number', minimum: 6, maximum: 32, default: 16 },
      voltage: { type: 'number', minimum: 100, maximum: 260, default: 230 },
      ev_capacity_wh: { type: 'number', minimum: 1000, description: 'Car battery (Wh), for SoC targets and the most a fill adds' },
      target: evTargetSchema,
      default_mode: evDefaultModeSchema,
      ...evChargeModeProperties,
      ...carSocProperties,
    },
  },
  check(config) {
    const issues = [];
    if (config.min_current_a > config.max_current_a) issues.push({ path: ['min_current_a'], message: `is above max_current_a (${config.max_current_a})` });
    issues.push(...carSocIssues(config));
    return issues;
  },
  mqttClient: (config) => {
    const root = config.topic_root;
    const n = config.chargepoint;
    return {
      publish: [`${root}/internal_chargepoint/${n}/#`],
      subscribe: [`${root}/set/internal_chargepoint/${n}/data/+`, `${root}/set/internal_chargepoint/global_data`],
      commands: [`${root}/set/internal_chargepoint/${n}/data/+`, `${root}/set/internal_chargepoint/global_data`],
    };
  },
  create(ctx, config) {
    return new OpenWbChargepoint(ctx, config).instance();
  },
});

class OpenWbChargepoint {
  private get: OpenWbFields = {};
  private data: OpenWbFields = {};
  private session?: ChargingSession;
  /** The import counter when the car was plugged in (openWB 2.x publishes no session energy of a secondary). */
  private sessionStartWh?: number;
  private sessionSeq: number;
  private lastHeard?: number;
  private readonly device: Device;
  private readonly readings = new Map<string, MeterReading>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly timers: (() => void)[] = [];
  private readonly waiters: { check: () => boolean; resolve: () => void }[] = [];
  private readonly car?: CarSoc;

  constructor(private readonly ctx: AdapterContext, private readonly config: OpenWbConfig) {
    this.sessionSeq = ctx.store.get<number>('session_seq') ?? 0;
    this.car = CarSoc.of(ctx, config);
    const car = this.car;
    const switching = config.phase_switching && config.phases === 3;
    this.device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter: 'openwb',
      circuit: config.circuit,
      available: false,
      error: 'waiting for the wallbox’s values',
      caps: {
        meter: { channels: ['device'], last: (channel = 'device') => this.readings.get(channel) },
        charger: {
          status: () => (this.device.available ? openWbStatus(this.get, num(this.data.set_current)) : 'unavailable'),
          session: () => this.session,
          evSocPct: () => {
            if (this.get.plug_state !== true) return undefined;
            if (car) return car.socPct();
            // openWB's own SoC module: 0 is what it publishes without one
            const soc = num(this.get.soc);
            return soc !== undefined && soc > 0 && soc <= 100 ? soc : undefined;
          },
          setLimit: (limit) => this.setLimit(limit),
          phases: config.phases,
          voltage: config.voltage,
          minCurrentA: config.min_current_a,
          maxCurrentA: config.max_current_a,
          get evCapacityWh() {
            return car?.capacityWh() ?? config.ev_capacity_wh;
          },
          ...(switching ? { phaseSwitching: { activePhases: () => { const p = num(this.get.phases_in_use); return p === 1 ? 1 : p === 3 || p === 2 ? 3 : undefined; } } } : {}),
        },
      },
    };
  }

  private get base() {
    return `${this.config.topic_root}/internal_chargepoint/${this.config.chargepoint}`;
  }

  private get setBase() {
    return `${this.config.topic_root}/set/internal_chargepoint/${this.config.chargepoint}/data`;
  }

  instance() {
    return {
      devices: [this.device],
      start: async () => {
        const mqtt = this.ctx.transports.mqtt();
        const parse = (topic: string, payload: Buffer): unknown => {
          try {
            return JSON.parse(payload.toString());
          } catch {
            this.ctx.log.debug({ topic, payload: payload.toString().slice(0, 60) }, `${this.config.id}: ignored an openWB value that is not JSON`);
            return undefined;
          }
        };
        this.unsubscribe.push(
          mqtt.subscribe(`${this.base}/get/+`, (topic, payload) => {
            const value = parse(topic, payload);
            if (value === undefined) return;
            this.apply(topic.slice(this.base.length + 5), value);
          }),
          mqtt.subscribe(`${this.base}/data/+`, (topic, payload) => {
            const value = parse(topic, payload);
            if (value === undefined) return;
            this.data[topic.slice(this.base.length + 6)] = value;
            this.wake();
          }),
        );
        this.car?.start();
        this.heartbeat();
        this.timers.push(
          this.ctx.clock.every(this.config.heartbeat_s * 1000, () => this.heartbeat()),
          this.ctx.clock.every(5000, () => this.checkStale()),
        );
      },
      stop: async () => {
        for (const u of this.unsubscribe.splice(0)) u();
        for (const t of this.timers.splice(0)) t();
        await this.car?.stop();
      },
    };
  }

  private heartbeat() {
    const mqtt = this.ctx.transports.mqtt();
    if (!mqtt.connected) return;
    // openWB's primary sends the same: a Unix timestamp the secondary checks before it charges
    mqtt.publish(`${this.config.topic_root}/set/internal_chargepoint/global_data`, JSON.stringify({ heartbeat: Math.floor(this.ctx.clock.now() / 1000) }), { qos: 0 }).catch(() => undefined);
  }

  private checkStale() {
    if (this.lastHeard === undefined) return;
    const age = this.ctx.clock.now() - this.lastHeard;
    if (age > this.config.stale_after_s * 1000) setAvailability(this.ctx, this.device, `no value from the wallbox for ${Math.round(age / 1000)} s (is it in secondary mode, on this broker?)`, `openWB ${this.config.id}`);
  }

  private wake() {
    for (const w of [...this.waiters]) {
      if (!w.check()) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  /** Takes one `get/<field>` value: availability, session start/end on plug_state, a meter reading from power and imported. */
  private apply(field: string, value: unknown) {
    const now = this.ctx.clock.now();
    // the first value says the broker link is up: the heartbeat need not wait its interval
    if (this.lastHeard === undefined) this.heartbeat();
    this.lastHeard = now;
    const before = openWbStatus(this.get, num(this.data.set_current));
    const wasPlugged = this.get.plug_state === true;
    this.get[field] = value;
    const fault = this.get.fault_state === 2 ? `openWB reports an error: ${String(this.get.fault_str ?? '').slice(0, 120)}` : undefined;
    setAvailability(this.ctx, this.device, fault, `openWB ${this.config.id}`);
    const plugged = this.get.plug_state === true;
    if (plugged && !this.session) {
      this.sessionSeq += 1;
      void this.ctx.store.set('session_seq', this.sessionSeq);
      this.session = { id: `${this.config.id}-${this.sessionSeq}`, start: now, energyWh: 0 };
      this.sessionStartWh = num(this.get.imported);
    }
    const imported = num(this.get.imported);
    if (this.session && imported !== undefined) {
      this.sessionStartWh ??= imported;
      this.session.energyWh = Math.max(this.session.energyWh, imported - this.sessionStartWh);
    }
    if (field === 'power' || field === 'imported') {
      const reading: MeterReading = { time: now, channel: 'device', powerW: num(this.get.power), importWh: imported, sessionId: plugged ? this.session?.id : undefined };
      this.readings.set('device', reading);
      this.ctx.bus.emit('meter.reading', { deviceId: this.config.id, reading });
    }
    if (!plugged && wasPlugged && this.session) {
      const ended = this.session;
      ended.end = now;
      this.session = undefined;
      this.ctx.bus.emit('session.ended', { deviceId: this.config.id, sessionId: ended.id, time: now });
    }
    if (openWbStatus(this.get, num(this.data.set_current)) !== before) this.ctx.bus.emit('device.state', { deviceId: this.config.id, available: this.device.available });
    this.wake();
  }

  private async write(key: string, value: number | boolean) {
    const mqtt = this.ctx.transports.mqtt();
    const confirmed = new Promise<void>((resolve, reject) => {
      const waiter = { check: () => this.data[key] === value, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(retryableError('openwb_not_confirmed', `openWB ${this.config.id}: ${this.setBase}/${key} = ${JSON.stringify(value)} was not published back as ${this.base}/data/${key} within ${this.config.confirm_timeout_ms} ms (refused, or the wallbox is not in secondary mode)`));
      }, this.config.confirm_timeout_ms);
      this.waiters.push(waiter);
    });
    confirmed.catch(() => undefined);
    // a trigger is a one-shot: its retained echo may already say true
    if (key === 'trigger_phase_switch') delete this.data[key];
    await mqtt.publish(`${this.setBase}/${key}`, JSON.stringify(value), { qos: 1 });
    await confirmed;
  }

  private async setLimit(limit: ChargerLimit) {
    if (!this.device.available) throw retryableError('openwb_unavailable', `openWB ${this.config.id} is not reporting`);
    const writes = openWbWrites(limit, this.get, this.data, this.config);
    for (const [key, value] of writes) await this.write(key, value);
    if (writes.length) this.ctx.log.info({ writes }, `${this.config.id}: sent ${writes.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
}
