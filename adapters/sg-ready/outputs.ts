import { retryableError, type AdapterContext, type ModbusTransport, type MqttTransport } from '../../src/api/index.js';
import { num, parseJson } from '../mqtt-socket/socket.js';

/**
 * The two relay outputs an SG-Ready heat pump is driven through, and the temperature sensors it may
 * be read by: a Tasmota relay (a dual-relay module), a generic MQTT relay (Shelly Gen1
 * `shellies/<id>/relay/<n>`, ESPHome, …) or a Modbus coil. Each reports what the device says it is,
 * not what was sent.
 */

export type RelaySpec =
  | { tasmota: string; relay: number }
  | { mqtt: { command_topic: string; state_topic?: string; payload_on: string; payload_off: string } }
  | { modbus: { connection: string; unit: number; coil: number } };

export type SensorSpec =
  | { tasmota: string; sensor: string }
  | { mqtt: { topic: string; path?: string } }
  | { modbus: { connection: string; unit: number; register: number; input: boolean; signed: boolean; scale: number } };

const relaySchema = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['tasmota'],
      properties: {
        tasmota: { type: 'string', pattern: '^[^/+#]+$', description: 'Topic of a Tasmota relay module' },
        relay: { type: 'integer', minimum: 1, maximum: 8, default: 1, description: 'POWER<n>' },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['mqtt'],
      properties: {
        mqtt: {
          type: 'object',
          additionalProperties: false,
          required: ['command_topic'],
          properties: {
            command_topic: { type: 'string', pattern: '^[^+#]+$', description: 'e.g. shellies/shelly1-ABC/relay/0/command' },
            state_topic: { type: 'string', pattern: '^[^+#]+$', description: 'e.g. shellies/shelly1-ABC/relay/0; without it the relay is taken to be as last sent' },
            payload_on: { type: 'string', default: 'on' },
            payload_off: { type: 'string', default: 'off' },
          },
        },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['modbus'],
      properties: {
        modbus: {
          type: 'object',
          additionalProperties: false,
          required: ['connection', 'coil'],
          properties: {
            connection: { type: 'string', description: 'connections.modbus[].id' },
            unit: { type: 'integer', minimum: 0, maximum: 255, default: 1 },
            coil: { type: 'integer', minimum: 0, maximum: 65535, description: 'Coil address (0-based)' },
          },
        },
      },
    },
  ],
};

export const relayOutputSchema = relaySchema;

export const sensorSchema = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['tasmota'],
      properties: {
        tasmota: { type: 'string', pattern: '^[^/+#]+$' },
        sensor: { type: 'string', default: 'DS18B20', description: 'Key in tele/<topic>/SENSOR holding {Temperature}' },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['mqtt'],
      properties: {
        mqtt: {
          type: 'object',
          additionalProperties: false,
          required: ['topic'],
          properties: { topic: { type: 'string', pattern: '^[^+#]+$' }, path: { type: 'string', description: 'Dotted path into a JSON payload; none = the payload is the number' } },
        },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['modbus'],
      properties: {
        modbus: {
          type: 'object',
          additionalProperties: false,
          required: ['connection', 'register'],
          properties: {
            connection: { type: 'string' },
            unit: { type: 'integer', minimum: 0, maximum: 255, default: 1 },
            register: { type: 'integer', minimum: 0, maximum: 65535 },
            input: { type: 'boolean', default: false, description: 'Input register (function 4) instead of holding (3)' },
            signed: { type: 'boolean', default: true },
            scale: { type: 'number', default: 0.1 },
          },
        },
      },
    },
  ],
};

/** What names a relay, for logs and checks ("tasmota_HP POWER2", "modbus lan unit 1 coil 3"). */
export function describeRelay(r: RelaySpec): string {
  if ('tasmota' in r) return `tasmota ${r.tasmota} POWER${r.relay ?? 1}`;
  if ('mqtt' in r) return `mqtt ${r.mqtt.command_topic}`;
  return `modbus ${r.modbus.connection} unit ${r.modbus.unit ?? 1} coil ${r.modbus.coil}`;
}

export interface RelayOutput {
  readonly name: string;
  /** As the device last reported it. */
  state(): boolean | undefined;
  /** Switches and waits for the device to confirm (Modbus: the write's answer). */
  set(on: boolean): Promise<void>;
  start(): void;
  stop(): void;
  /** Polls the state where the protocol has no push (Modbus). */
  poll?(): Promise<void>;
}

const onOff = (v: unknown): boolean | undefined => {
  const s = typeof v === 'string' ? v.trim().toUpperCase() : v;
  return s === 'ON' || s === '1' || s === true ? true : s === 'OFF' || s === '0' || s === false ? false : undefined;
};

/** A relay over MQTT whose state arrives on topics; `set` waits up to `timeoutMs` for the report. */
class MqttRelay implements RelayOutput {
  private current: boolean | undefined;
  private waiters: { want: boolean; resolve: () => void }[] = [];
  private readonly unsubs: (() => void)[] = [];
  constructor(
    readonly name: string,
    private readonly mqtt: MqttTransport,
    private readonly send: (on: boolean) => Promise<void>,
    private readonly listen: [string, (payload: Buffer, topic: string) => boolean | undefined][],
    private readonly query: (() => Promise<void>) | undefined,
    private readonly timeoutMs: number,
    private readonly confirms: boolean,
    private readonly onChange: () => void,
  ) {}
  state() {
    return this.current;
  }
  report(on: boolean) {
    const changed = on !== this.current;
    this.current = on;
    if (changed) this.onChange();
    for (const w of this.waiters.filter((x) => x.want === on)) w.resolve();
    this.waiters = this.waiters.filter((x) => x.want !== on);
  }
  async set(on: boolean) {
    if (!this.mqtt.connected) throw retryableError('mqtt_offline', `${this.name}: the hub is not connected to the MQTT broker`);
    if (!this.confirms) {
      await this.send(on);
      this.current = on;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const confirmed = new Promise<void>((resolve, reject) => {
      const waiter = { want: on, resolve: () => (clearTimeout(timer), resolve()) };
      timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(retryableError('no_confirmation', `${this.name} did not confirm switching ${on ? 'on' : 'off'} within ${this.timeoutMs / 1000} s`));
      }, this.timeoutMs);
      this.waiters.push(waiter);
    });
    confirmed.catch(() => undefined);
    await this.send(on);
    await confirmed;
  }
  start() {
    for (const [topic, parse] of this.listen) {
      this.unsubs.push(
        this.mqtt.subscribe(topic, (t, p) => {
          const on = parse(p, t);
          if (on !== undefined) this.report(on);
        }),
      );
    }
    void this.query?.().catch(() => undefined);
  }
  stop() {
    for (const u of this.unsubs.splice(0)) u();
  }
}

class CoilRelay implements RelayOutput {
  private current: boolean | undefined;
  constructor(readonly name: string, private readonly modbus: ModbusTransport, private readonly unit: number, private readonly coil: number) {}
  state() {
    return this.current;
  }
  async set(on: boolean) {
    if (!this.modbus.writeCoil) throw retryableError('not_supported', `${this.name}: this Modbus connection cannot write coils`);
    await this.modbus.writeCoil(this.unit, this.coil, on);
    this.current = on;
  }
  async poll() {
    if (!this.modbus.readCoils) return;
    const [v] = await this.modbus.readCoils(this.unit, this.coil, 1);
    this.current = v;
  }
  start() {}
  stop() {}
}

/** The schema's defaults (ajv does not apply defaults inside `oneOf` branches). */
export function withRelayDefaults(spec: RelaySpec): RelaySpec {
  if ('tasmota' in spec) return { tasmota: spec.tasmota, relay: spec.relay ?? 1 };
  if ('mqtt' in spec) return { mqtt: { ...spec.mqtt, payload_on: spec.mqtt.payload_on ?? 'on', payload_off: spec.mqtt.payload_off ?? 'off' } };
  return { modbus: { ...spec.modbus, unit: spec.modbus.unit ?? 1 } };
}

export function withSensorDefaults(spec: SensorSpec): SensorSpec {
  if ('tasmota' in spec) return { tasmota: spec.tasmota, sensor: spec.sensor ?? 'DS18B20' };
  if ('mqtt' in spec) return spec;
  return { modbus: { ...spec.modbus, unit: spec.modbus.unit ?? 1, input: spec.modbus.input ?? false, signed: spec.modbus.signed ?? true, scale: spec.modbus.scale ?? 0.1 } };
}

export function createRelay(ctx: AdapterContext, given: RelaySpec, timeoutMs: number, onChange: () => void): RelayOutput {
  const spec = withRelayDefaults(given);
  const name = describeRelay(spec);
  if ('modbus' in spec) return new CoilRelay(name, ctx.transports.modbus(spec.modbus.connection), spec.modbus.unit, spec.modbus.coil);
  const mqtt = ctx.transports.mqtt();
  if ('tasmota' in spec) {
    const key = `POWER${spec.relay}`;
    const keys = spec.relay === 1 ? ['POWER', 'POWER1'] : [key];
    const fromObject = (p: Buffer, topic: string) => {
      const obj = parseJson(ctx, topic, p);
      for (const k of keys) if (obj && onOff(obj[k]) !== undefined) return onOff(obj[k]);
      return undefined;
    };
    const t = spec.tasmota;
    return new MqttRelay(
      name,
      mqtt,
      (on) => mqtt.publish(`cmnd/${t}/${key}`, on ? 'ON' : 'OFF', { qos: 1 }),
      [
        [`stat/${t}/RESULT`, fromObject],
        [`tele/${t}/STATE`, fromObject],
        [`stat/${t}/${key}`, (p) => onOff(p.toString())],
      ],
      () => mqtt.publish(`cmnd/${t}/${key}`, '', { qos: 1 }),
      timeoutMs,
      true,
      onChange,
    );
  }
  const m = spec.mqtt;
  const parse = (p: Buffer) => {
    const s = p.toString().trim();
    return s === m.payload_on ? true : s === m.payload_off ? false : onOff(s);
  };
  return new MqttRelay(name, mqtt, (on) => mqtt.publish(m.command_topic, on ? m.payload_on : m.payload_off, { qos: 1 }), m.state_topic ? [[m.state_topic, parse]] : [], undefined, timeoutMs, m.state_topic !== undefined, onChange);
}

/** A temperature sensor (°C): pushed over MQTT or polled over Modbus. */
export interface TemperatureSensor {
  value(): { c: number; time: number } | undefined;
  start(): void;
  stop(): void;
  poll?(): Promise<void>;
}

export function createSensor(ctx: AdapterContext, given: SensorSpec, onValue: () => void): TemperatureSensor {
  const spec = withSensorDefaults(given);
  let last: { c: number; time: number } | undefined;
  const take = (c: number | undefined, topic: string) => {
    // beyond any water or room: a garbled value
    if (c === undefined || !(c > -50 && c < 120)) return ctx.log.warn({ topic, value: c }, 'ignored a temperature that is missing or beyond -50..120 °C');
    last = { c, time: ctx.clock.now() };
    onValue();
  };
  if ('modbus' in spec) {
    const m = spec.modbus;
    const modbus = ctx.transports.modbus(m.connection);
    return {
      value: () => last,
      start() {},
      stop() {},
      async poll() {
        const [raw] = m.input ? await modbus.readInput(m.unit, m.register, 1) : await modbus.readHolding(m.unit, m.register, 1);
        const v = m.signed && raw >= 0x8000 ? raw - 0x10000 : raw;
        take(v * m.scale, `modbus ${m.connection} unit ${m.unit} register ${m.register}`);
      },
    };
  }
  const mqtt = ctx.transports.mqtt();
  let unsub: (() => void) | undefined;
  const [topic, read] =
    'tasmota' in spec
      ? [`tele/${spec.tasmota}/SENSOR`, (p: Buffer, t: string) => {
          const obj = parseJson(ctx, t, p);
          const s = obj?.[spec.sensor] as Record<string, unknown> | undefined;
          return s === undefined ? undefined : num(s.Temperature);
        }]
      : [spec.mqtt.topic, (p: Buffer, t: string) => {
          const path = spec.mqtt.path;
          if (!path) return num(p.toString());
          let v: unknown = parseJson(ctx, t, p);
          for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
          return num(v);
        }];
  return {
    value: () => last,
    start() {
      unsub = mqtt.subscribe(topic, (t, p) => {
        const c = read(p, t);
        // a SENSOR message without this sensor (only ENERGY) is not an error
        if (c !== undefined || !('tasmota' in spec)) take(c, t);
      });
    },
    stop() {
      unsub?.();
    },
  };
}
