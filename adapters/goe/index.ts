import {
  configSchema,
  Confirmations,
  defineAdapter,
  Enum,
  EvChargeModeProperties,
  EvDefaultModeSchema,
  EvTargetSchema,
  Type,
  permanentError,
  retryableError,
  type AdapterContext,
  type ChargerLimit,
  type ChargerStatus,
  type ChargingSession,
  type DeviceConfigBase,
  type Device,
  type MeterReading,
  type Static,
} from '../../src/api/index.js';
import { CarSoc, carSocIssues, CarSocProperties } from '../homeassistant/car-soc.js';

/**
 * go-e Charger (HOME+, HOMEfix, Gemini; hardware V3 and later) through its local API v2: the HTTP API
 * (`GET /api/status?filter=…`, `GET /api/set?key=<json>`) or the MQTT API (`<prefix><serial>/<key>`,
 * writes on `…/<key>/set`, answers on `…/<key>/result`). Keys as in go-e's api keys list.
 */
export const GoeConfigSchema = Type.Object({
  transport: Enum(['http', 'mqtt'], { default: 'http', description: 'http = poll the local HTTP API v2 (enable it in the go-e app); mqtt = the MQTT API on connections.mqtt (enable MQTT and writes in the app)' }),
  host: Type.Optional(Type.String({ minLength: 1, description: 'http: the charger address, e.g. 192.168.1.50 or http://go-echarger_012345' })),
  serial: Type.Optional(Type.String({ pattern: '^[^/+#]+$', description: 'mqtt: the charger serial number as in its topics (go-eCharger/<serial>/…)' })),
  topic_prefix: Type.String({ default: 'go-eCharger/', description: 'mqtt: the topic prefix (api key mtp), ending in /' }),
  poll_s: Type.Number({ minimum: 1, maximum: 300, default: 5, description: 'http: status poll interval (s); go-e advise at most one request a second' }),
  timeout_ms: Type.Integer({ minimum: 200, maximum: 60000, default: 3000, description: 'Answer timeout of one request (ms)' }),
  phases: Enum([1, 3], { default: 3, description: 'Phases wired to the charger' }),
  phase_switching: Type.Boolean({ default: true, description: 'Switch between 1 and 3 phases by command (api key psm); needs a 3-phase connection and firmware with psm' }),
  min_current_a: Type.Number({ minimum: 6, maximum: 32, default: 6 }),
  max_current_a: Type.Number({ minimum: 6, maximum: 32, default: 16, description: '16 for the 11 kW variant, 32 for 22 kW (api key var)' }),
  voltage: Type.Number({ minimum: 100, maximum: 260, default: 230 }),
  ev_capacity_wh: Type.Optional(Type.Number({ minimum: 1000, description: 'Car battery (Wh), for SoC targets and the most a fill adds' })),
  target: Type.Optional(EvTargetSchema),
  default_mode: EvDefaultModeSchema,
  ...EvChargeModeProperties,
  ...CarSocProperties,
});
export type GoeConfig = DeviceConfigBase & Static<typeof GoeConfigSchema>;

/** The keys the adapter reads (HTTP `filter`, MQTT topics). */
export const GOE_READ_KEYS = ['alw', 'amp', 'car', 'err', 'eto', 'frc', 'nrg', 'psm', 'pnp', 'wh'] as const;

/** go-e `frc` (forceState) values. */
const FRC_OFF = 1;
const FRC_ON = 2;
/** go-e `psm` (phaseSwitchMode) values. */
const PSM_1 = 1;
const PSM_3 = 2;

type Keys = Partial<Record<string, unknown>>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** go-e `car` (carState) as a charger status: 1 Idle, 2 Charging, 3 WaitCar, 4 Complete, 5 Error. */
export function goeStatus(keys: Keys): ChargerStatus {
  switch (keys.car) {
    case 1:
      return 'available';
    case 2:
      return 'charging';
    case 3:
      // a car is plugged in: waiting for the charger (forced off, not allowed) or for the car
      return keys.frc === FRC_OFF || keys.alw === false ? 'suspended_evse' : 'suspended_ev';
    case 4:
      return 'suspended_ev';
    case 5:
      return 'faulted';
    default:
      return 'unknown';
  }
}

/** The phases in use: `psm` 1 = one, 2 = three; `psm` 0 (auto) leaves it to `pnp` (numberOfPhases), else the installed ones. */
export function goeActivePhases(keys: Keys, installed: 1 | 3): 1 | 3 {
  if (keys.psm === PSM_1) return 1;
  if (keys.psm === PSM_3) return installed;
  const pnp = num(keys.pnp);
  return pnp === 1 ? 1 : installed;
}

/** What to write for a limit: only the keys that differ from what the charger reports. */
export function goeCommand(limit: ChargerLimit, keys: Keys, config: Pick<GoeConfig, 'phases' | 'phase_switching' | 'min_current_a' | 'max_current_a' | 'voltage'>): Record<string, number> {
  const phases = config.phase_switching && config.phases === 3 && limit.phases ? limit.phases : config.phases;
  const amps = Math.min(config.max_current_a, Math.floor(limit.watts / (config.voltage * phases) + 1e-9));
  const out: Record<string, number> = {};
  if (amps < config.min_current_a) {
    if (keys.frc !== FRC_OFF) out.frc = FRC_OFF;
    return out;
  }
  if (config.phase_switching && config.phases === 3) {
    const psm = phases === 1 ? PSM_1 : PSM_3;
    if (keys.psm !== psm) out.psm = psm;
  }
  if (keys.amp !== amps) out.amp = amps;
  if (keys.frc !== FRC_ON) out.frc = FRC_ON;
  return out;
}

const httpBase = (host: string) => (/^https?:\/\//.test(host) ? host.replace(/\/+$/, '') : `http://${host}`);

export const goe = defineAdapter<GoeConfig>({
  id: 'goe',
  description: 'go-e Charger (HOME+, HOMEfix, Gemini) over its local HTTP API v2 or MQTT API: start/stop, current limit, 1-/3-phase switching, meter',
  configSchema: configSchema(GoeConfigSchema),
  check(config) {
    const issues = [];
    if (config.transport === 'mqtt' && !config.serial) issues.push({ path: ['serial'], message: 'transport: mqtt needs the charger serial number (its topics are <topic_prefix><serial>/<key>)' });
    if (config.transport !== 'mqtt' && !config.host) issues.push({ path: ['host'], message: 'transport: http needs the charger address (host)' });
    if (config.min_current_a > config.max_current_a) issues.push({ path: ['min_current_a'], message: `is above max_current_a (${config.max_current_a})` });
    issues.push(...carSocIssues(config));
    return issues;
  },
  mqttClient: (config) => {
    const base = `${config.topic_prefix}${config.serial ?? ''}`;
    return { publish: [`${base}/#`], subscribe: [`${base}/+/set`], commands: [`${base}/+/set`] };
  },
  create(ctx, config) {
    return new GoeCharger(ctx, config).instance();
  },
});

/** One go-e charger: the last keys it reported, the session the hub keeps for it, and its commands. */
class GoeCharger {
  private keys: Keys = {};
  private session?: ChargingSession;
  private sessionSeq: number;
  private available = false;
  private lastError?: string;
  private readonly device: Device;
  private readonly readings = new Map<string, MeterReading>();
  private stopPoll?: () => void;
  private unsubscribe: (() => void)[] = [];
  /** MQTT writes waiting for the charger's `<key>/result` answer. */
  private readonly results: Confirmations<{ key: string; text: string }>;
  private polling = false;
  /** MQTT: the charger's `mcc` said it is not on the broker (its retained values are stale). */
  private leftBroker = false;
  private readonly car?: CarSoc;

  constructor(private readonly ctx: AdapterContext, private readonly config: GoeConfig) {
    this.sessionSeq = ctx.store.get<number>('session_seq') ?? 0;
    this.results = new Confirmations(ctx.clock);
    const switching = config.phase_switching && config.phases === 3;
    this.car = CarSoc.of(ctx, config);
    const car = this.car;
    this.device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter: 'goe',
      circuit: config.circuit,
      available: false,
      caps: {
        meter: { channels: ['device'], last: (channel = 'device') => this.readings.get(channel) },
        charger: {
          status: () => (this.available ? goeStatus(this.keys) : 'unavailable'),
          session: () => this.session,
          evSocPct: () => (this.keys.car !== undefined && this.keys.car !== 1 && this.keys.car !== null ? car?.socPct() : undefined),
          setLimit: (limit) => this.setLimit(limit),
          phases: config.phases,
          voltage: config.voltage,
          minCurrentA: config.min_current_a,
          maxCurrentA: config.max_current_a,
          get evCapacityWh() {
            return car?.capacityWh() ?? config.ev_capacity_wh;
          },
          ...(switching ? { phaseSwitching: { activePhases: () => (this.keys.psm === undefined && this.keys.pnp === undefined ? undefined : goeActivePhases(this.keys, config.phases)) } } : {}),
        },
      },
    };
  }

  instance() {
    return {
      devices: [this.device],
      start: async () => {
        this.car?.start();
        if (this.config.transport === 'mqtt') this.startMqtt();
        else {
          await this.poll();
          this.stopPoll = this.ctx.clock.every(this.config.poll_s * 1000, () => void this.poll());
        }
      },
      stop: async () => {
        this.stopPoll?.();
        for (const u of this.unsubscribe.splice(0)) u();
        this.results.cancel(retryableError('stopped', `go-e ${this.config.id}: adapter stopping`));
        await this.car?.stop();
      },
    };
  }

  // ---------------------------------------------------------------- reading
  private async poll() {
    if (this.polling) return;
    this.polling = true;
    try {
      const url = `${httpBase(this.config.host!)}/api/status?filter=${GOE_READ_KEYS.join(',')}`;
      const body = await this.httpJson(url);
      this.setAvailable(true);
      this.apply(body);
    } catch (err) {
      this.setAvailable(false, (err as Error).message);
    } finally {
      this.polling = false;
    }
  }

  /** GETs `url`; a 4xx answer with a JSON object body is returned to `set`, which reads the per-key answers. */
  private async httpJson(url: string, acceptRefusal = false): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(this.config.timeout_ms) });
    } catch (err) {
      throw retryableError('goe_unreachable', `go-e ${this.config.id} (${this.config.host}): no answer: ${(err as Error).message}`, err);
    }
    const text = await res.text();
    if (res.status === 401 || res.status === 403) throw permanentError('goe_refused', `go-e ${this.config.id}: HTTP ${res.status} (is the local HTTP API v2 enabled, without a password, in the go-e app?)`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw retryableError('goe_bad_answer', `go-e ${this.config.id}: HTTP ${res.status} with a body that is not JSON: ${text.slice(0, 80)}`);
    }
    const isObject = !!body && typeof body === 'object' && !Array.isArray(body);
    if (!res.ok && !(acceptRefusal && isObject && res.status < 500)) throw permanentError('goe_refused', `go-e ${this.config.id}: HTTP ${res.status}: ${text.slice(0, 200)}`);
    if (!isObject) throw retryableError('goe_bad_answer', `go-e ${this.config.id}: the answer is not a JSON object`);
    return body as Record<string, unknown>;
  }

  private setAvailable(ok: boolean, error?: string) {
    // spoken on changes of availability, not of the error's wording
    const changed = this.available !== ok;
    this.available = ok;
    this.device.available = ok;
    this.device.error = ok ? undefined : error;
    this.lastError = error;
    if (!changed) return;
    if (ok) this.ctx.log.info(`${this.config.id}: go-e answers`);
    else this.ctx.log.warn(`${this.config.id}: go-e unavailable: ${error}`);
    this.ctx.bus.emit('device.state', { deviceId: this.config.id, available: ok, error });
  }

  /** Takes newly reported keys: session start/end on `car`, a meter reading from `nrg` and `eto`. */
  private apply(update: Keys) {
    const before = goeStatus(this.keys);
    const wasPlugged = this.keys.car !== undefined && this.keys.car !== 1 && this.keys.car !== null;
    this.keys = { ...this.keys, ...update };
    const now = this.ctx.clock.now();
    const plugged = this.keys.car !== undefined && this.keys.car !== 1 && this.keys.car !== null && this.keys.car !== 0;
    if (plugged && !this.session) {
      this.sessionSeq += 1;
      void this.ctx.store.set('session_seq', this.sessionSeq);
      this.session = { id: `${this.config.id}-${this.sessionSeq}`, start: now, energyWh: 0 };
    }
    if (this.session && num(this.keys.wh) !== undefined) this.session.energyWh = Math.max(this.session.energyWh, num(this.keys.wh)!);
    const nrg = Array.isArray(this.keys.nrg) ? (this.keys.nrg as unknown[]) : undefined;
    const powerW = num(nrg?.[11]);
    const eto = num(this.keys.eto);
    if ('nrg' in update || 'eto' in update) {
      const reading: MeterReading = { time: now, channel: 'device', powerW, importWh: eto, sessionId: plugged ? this.session?.id : undefined };
      this.readings.set('device', reading);
      this.ctx.bus.emit('meter.reading', { deviceId: this.config.id, reading });
    }
    if (!plugged && wasPlugged && this.session) {
      const ended = this.session;
      ended.end = now;
      this.session = undefined;
      this.ctx.bus.emit('session.ended', { deviceId: this.config.id, sessionId: ended.id, time: now });
    }
    if (goeStatus(this.keys) !== before) this.ctx.bus.emit('device.state', { deviceId: this.config.id, available: this.available });
  }

  // ---------------------------------------------------------------- commanding
  private async setLimit(limit: ChargerLimit) {
    if (!this.available) throw retryableError('goe_unavailable', `go-e ${this.config.id} is not answering`);
    const command = goeCommand(limit, this.keys, this.config);
    if (!Object.keys(command).length) return;
    if (this.config.transport === 'mqtt') {
      // one key at a time: each write has its own /result
      for (const [key, value] of Object.entries(command)) await this.mqttSet(key, value);
    } else {
      const query = Object.entries(command).map(([k, v]) => `${k}=${encodeURIComponent(JSON.stringify(v))}`).join('&');
      const body = await this.httpJson(`${httpBase(this.config.host!)}/api/set?${query}`, true);
      // go-e answers each key with true or an error text
      const refused = Object.keys(command).filter((k) => body[k] !== true);
      if (refused.length) throw permanentError('goe_refused', `go-e ${this.config.id} refused ${refused.map((k) => `${k}=${command[k]} (${typeof body[k] === 'string' ? body[k] : 'no answer for this key'})`).join(', ')}`);
      this.apply(command);
    }
    this.ctx.log.info({ command }, `${this.config.id}: sent ${Object.entries(command).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }

  private get mqttBase() {
    return `${this.config.topic_prefix}${this.config.serial}`;
  }

  private startMqtt() {
    const mqtt = this.ctx.transports.mqtt();
    const base = this.mqttBase;
    this.unsubscribe.push(
      mqtt.subscribe(`${base}/+`, (topic, payload) => {
        const key = topic.slice(base.length + 1);
        let value: unknown;
        try {
          value = JSON.parse(payload.toString());
        } catch {
          this.ctx.log.warn({ topic, payload: payload.toString().slice(0, 60) }, `${this.config.id}: ignored a go-e value that is not JSON`);
          return;
        }
        if (key === 'mcc') {
          // the charger's last will: false when it left the broker
          this.leftBroker = value !== true;
          this.setAvailable(value === true, value === true ? undefined : 'the charger is not connected to the MQTT broker (mcc false)');
          return;
        }
        if (!(GOE_READ_KEYS as readonly string[]).includes(key)) return;
        if (!this.available && !this.leftBroker) this.setAvailable(true);
        this.apply({ [key]: value });
      }),
      mqtt.subscribe(`${base}/+/result`, (topic, payload) => {
        this.results.report({ key: topic.slice(base.length + 1, -'/result'.length), text: payload.toString() });
      }),
    );
  }

  private async mqttSet(key: string, value: number) {
    const mqtt = this.ctx.transports.mqtt();
    const result = this.results.expect((r) => r.key === key, this.config.timeout_ms, () => retryableError('goe_no_result', `go-e ${this.config.id}: no answer on ${this.mqttBase}/${key}/result within ${this.config.timeout_ms} ms (firmware before 051.5, or MQTT writes not allowed: api key mcr)`));
    await mqtt.publish(`${this.mqttBase}/${key}/set`, JSON.stringify(value), { qos: 1 });
    const { text } = await result;
    if (text.trim() !== 'success') throw permanentError('goe_refused', `go-e ${this.config.id} refused ${key}=${value}: ${text.slice(0, 200)}`);
  }
}
