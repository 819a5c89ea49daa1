import { defineAdapter, setAvailability, type AdapterContext, type ConfigIssue, type DeviceConfigBase, type Device, type HeatPumpParams, type MeterReading, type SgReadyState } from '../../src/api/index.js';
import { EnergyRegister, num, parseJson } from '../mqtt-socket/socket.js';
import { createRelay, createSensor, describeRelay, relayOutputSchema, sensorSchema, type RelayOutput, type RelaySpec, type SensorSpec, type TemperatureSensor } from './outputs.js';

/**
 * An SG-Ready heat pump: two relay outputs wired to its SG-Ready inputs, four states (1 blocked,
 * 2 normal, 3 recommended on, 4 forced on), each held at least `min_dwell_s` so the relays never
 * chatter, a block never longer than `max_block_s`. The plan and the surplus dispatcher ask for
 * states; this device decides when the relays may follow.
 */

type Pair = [boolean, boolean];

export interface SgReadyConfig extends DeviceConfigBase {
  relays: { a: RelaySpec; b: RelaySpec };
  states: { blocked: Pair; normal: Pair; recommended: Pair; forced: Pair };
  min_dwell_s: number;
  max_block_s: number;
  confirm_timeout_s: number;
  poll_s: number;
  power_w: number;
  cop_eta: number;
  block: boolean;
  boost_state: 3 | 4;
  surplus?: { state: 3 | 4 };
  surplus_priority?: number;
  meter?: { tasmota: string };
  tank?: {
    volume_l: number;
    min_c: number;
    max_c: number;
    loss_w_per_k: number;
    ambient_c: number;
    draw_kwh_per_day: number;
    draw_profile?: { at: string; kwh: number }[];
    heater: 'heat_pump' | 'resistive';
    heater_w?: number;
    temperature?: SensorSpec;
  };
  space?: {
    r_k_per_kw: number;
    c_kwh_per_k: number;
    gains_w: number;
    comfort: { min_c: number; max_c: number };
    flow_c: number;
    outdoor_min_c: number;
    outdoor_max_c: number;
    temperature?: SensorSpec;
  };
}

/** The SG-Ready label's terminal states (BWP): relay pair (A, B) per operating state. */
export const STANDARD_STATES: SgReadyConfig['states'] = { blocked: [true, false], normal: [false, false], recommended: [false, true], forced: [true, true] };
const STATE_KEYS = ['blocked', 'normal', 'recommended', 'forced'] as const;
const stateName = (s: SgReadyState) => `${s} (${STATE_KEYS[s - 1]})`;

const pairSchema = { type: 'array', items: { type: 'boolean' }, minItems: 2, maxItems: 2, description: '[relay a on, relay b on]' };
const hhmm = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' };

export const sgReady = defineAdapter<SgReadyConfig>({
  id: 'sg_ready',
  description: 'SG-Ready heat pump on two relays (Tasmota, MQTT relays such as Shelly, Modbus coils), with a hot-water tank and space heating for the plan',
  configSchema: {
    required: ['relays'],
    properties: {
      relays: {
        type: 'object',
        additionalProperties: false,
        required: ['a', 'b'],
        description: 'The two outputs wired to the SG-Ready inputs (terminals A and B of the label)',
        properties: { a: relayOutputSchema, b: relayOutputSchema },
      },
      states: {
        type: 'object',
        additionalProperties: false,
        default: STANDARD_STATES,
        description: 'Relay pair per state; default the SG-Ready standard: blocked [on, off], normal [off, off], recommended [off, on], forced [on, on]',
        properties: { blocked: { ...pairSchema, default: STANDARD_STATES.blocked }, normal: { ...pairSchema, default: STANDARD_STATES.normal }, recommended: { ...pairSchema, default: STANDARD_STATES.recommended }, forced: { ...pairSchema, default: STANDARD_STATES.forced } },
      },
      min_dwell_s: { type: 'number', minimum: 0, maximum: 86400, default: 600, description: 'Each state is held at least this long (s); a request inside it waits' },
      max_block_s: { type: 'number', minimum: 60, maximum: 86400, default: 7200, description: 'A block (state 1) ends after this (s): utilities block at most 2 h' },
      confirm_timeout_s: { type: 'number', minimum: 0.5, maximum: 60, default: 5 },
      poll_s: { type: 'number', minimum: 1, maximum: 3600, default: 10, description: 'Polling of Modbus coils and sensors' },
      power_w: { type: 'number', exclusiveMinimum: 0, default: 2000, description: 'Electric power of the heat pump when running (W)' },
      cop_eta: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.4, description: 'Share of the Carnot COP the heat pump reaches (docs/heat-pumps.md)' },
      block: { type: 'boolean', default: false, description: 'The plan may block the heat pump (state 1) in dear slots when tank and rooms can wait' },
      boost_state: { type: 'integer', enum: [3, 4], default: 3, description: 'State asked for where the plan runs the heat pump' },
      surplus: {
        type: 'object',
        additionalProperties: false,
        properties: { state: { type: 'integer', enum: [3, 4], default: 3 } },
        description: 'Raise the heat pump on measured PV surplus (the surplus dispatcher), to this state',
      },
      surplus_priority: { type: 'number', minimum: 0, maximum: 100, default: 50, description: 'Order among surplus followers (chargers, heat pumps): highest first' },
      meter: {
        type: 'object',
        additionalProperties: false,
        required: ['tasmota'],
        properties: { tasmota: { type: 'string', pattern: '^[^/+#]+$', description: 'A Tasmota module with an energy meter on the heat pump supply (tele/<topic>/SENSOR ENERGY)' } },
      },
      tank: {
        type: 'object',
        additionalProperties: false,
        properties: {
          volume_l: { type: 'number', exclusiveMinimum: 0, maximum: 5000, default: 200 },
          min_c: { type: 'number', minimum: 20, maximum: 90, default: 45, description: 'Never below this (°C), also before a draw-off' },
          max_c: { type: 'number', minimum: 25, maximum: 95, default: 60, description: 'Heated up to this at most (°C)' },
          loss_w_per_k: { type: 'number', minimum: 0, maximum: 50, default: 1.5, description: 'Standing losses (W/K); a 200 l tank of energy class B ≈ 1.5' },
          ambient_c: { type: 'number', default: 18, description: 'Temperature of the room the tank stands in' },
          draw_kwh_per_day: { type: 'number', minimum: 0, maximum: 200, default: 5.845, description: 'Hot-water heat drawn per day (kWh)' },
          draw_profile: {
            type: 'array',
            maxItems: 200,
            items: { type: 'object', additionalProperties: false, required: ['at', 'kwh'], properties: { at: hhmm, kwh: { type: 'number', minimum: 0 } } },
            description: 'Taps of a day (local time); scaled to draw_kwh_per_day. Default: EU 814/2013 profile M',
          },
          heater: { type: 'string', enum: ['heat_pump', 'resistive'], default: 'heat_pump' },
          heater_w: { type: 'number', exclusiveMinimum: 0, description: 'A resistive element’s power (W); default power_w' },
          temperature: sensorSchema,
        },
      },
      space: {
        type: 'object',
        additionalProperties: false,
        required: ['comfort'],
        properties: {
          r_k_per_kw: { type: 'number', exclusiveMinimum: 0, default: 8, description: 'Thermal resistance to outdoors (K/kW)' },
          c_kwh_per_k: { type: 'number', exclusiveMinimum: 0, default: 8, description: 'Heat capacity (kWh/K)' },
          gains_w: { type: 'number', default: 300 },
          comfort: { type: 'object', additionalProperties: false, required: ['min_c', 'max_c'], properties: { min_c: { type: 'number' }, max_c: { type: 'number' } } },
          flow_c: { type: 'number', minimum: 20, maximum: 75, default: 35, description: 'Heating flow temperature (°C): 35 floor heating, 45-55 radiators' },
          outdoor_min_c: { type: 'number', default: -2 },
          outdoor_max_c: { type: 'number', default: 8 },
          temperature: sensorSchema,
        },
      },
    },
  },
  check(config) {
    const issues: ConfigIssue[] = [];
    if (describeRelay(config.relays.a) === describeRelay(config.relays.b)) issues.push({ path: ['relays', 'b'], message: `is the same output as relays.a (${describeRelay(config.relays.a)}): SG-Ready needs two` });
    const seen = new Map<string, string>();
    for (const k of STATE_KEYS) {
      const pair = (config.states ?? STANDARD_STATES)[k];
      const key = String(pair);
      if (seen.has(key)) issues.push({ path: ['states', k], message: `has the same relay pair as ${seen.get(key)}: every state needs its own` });
      seen.set(key, k);
    }
    if (config.tank && config.tank.min_c >= config.tank.max_c) issues.push({ path: ['tank', 'min_c'], message: `must be below tank.max_c (${config.tank.max_c})` });
    if (config.space && config.space.comfort.min_c >= config.space.comfort.max_c) issues.push({ path: ['space', 'comfort', 'min_c'], message: `must be below space.comfort.max_c (${config.space.comfort.max_c})` });
    if (config.space && config.space.outdoor_min_c > config.space.outdoor_max_c) issues.push({ path: ['space', 'outdoor_min_c'], message: 'must not be above outdoor_max_c' });
    if (!config.tank && !config.space) issues.push({ path: [], message: 'needs tank, space or both: what the heat pump heats' });
    return issues;
  },
  mqttClient: (config) => {
    // the device's own clients: the relay module(s) and sensors
    const topics = [config.relays.a, config.relays.b].flatMap((r) => ('tasmota' in r ? [r.tasmota] : []));
    const publish = topics.flatMap((t) => [`stat/${t}/#`, `tele/${t}/#`]);
    const commands = topics.map((t) => `cmnd/${t}/#`);
    for (const r of [config.relays.a, config.relays.b]) {
      if (!('mqtt' in r)) continue;
      commands.push(r.mqtt.command_topic);
      if (r.mqtt.state_topic) publish.push(r.mqtt.state_topic);
    }
    return { publish, subscribe: commands, commands };
  },
  create(ctx, config) {
    const driver = new SgReadyDevice(ctx, config);
    return { devices: [driver.device], start: () => driver.start(), stop: () => driver.stop() };
  },
});

/** Turns the YAML into the capability's plan parameters. */
export function heatPumpParams(config: SgReadyConfig): HeatPumpParams {
  const t = config.tank;
  const s = config.space;
  return {
    maxElectricW: config.power_w,
    copEta: config.cop_eta,
    allowBlock: config.block,
    boostState: config.boost_state,
    surplusState: config.surplus?.state,
    tank: t && {
      volumeL: t.volume_l,
      minC: t.min_c,
      maxC: t.max_c,
      lossWPerK: t.loss_w_per_k,
      ambientC: t.ambient_c,
      drawKwhPerDay: t.draw_kwh_per_day,
      drawProfile: t.draw_profile?.map((d) => [d.at, d.kwh]),
      heater: t.heater,
      heaterW: t.heater === 'resistive' ? (t.heater_w ?? config.power_w) : config.power_w,
    },
    space: s && {
      model: { rKPerKw: s.r_k_per_kw, cKwhPerK: s.c_kwh_per_k, gainsW: s.gains_w },
      band: { minC: s.comfort.min_c, maxC: s.comfort.max_c },
      flowC: s.flow_c,
      outdoorMinC: s.outdoor_min_c,
      outdoorMaxC: s.outdoor_max_c,
    },
  };
}

export class SgReadyDevice {
  readonly device: Device;
  private readonly a: RelayOutput;
  private readonly b: RelayOutput;
  private readonly tankSensor?: TemperatureSensor;
  private readonly roomSensor?: TemperatureSensor;
  /** When the relays last changed state (by the hub), for the dwell. */
  private changedAt?: number;
  private requested?: SgReadyState;
  private pendingTimer?: () => void;
  private blockTimer?: () => void;
  private stopPoll?: () => void;
  private applying: Promise<void> = Promise.resolve();
  private readonly unsubs: (() => void)[] = [];
  private meterReading?: MeterReading;
  private readonly register?: EnergyRegister;
  private stopped = false;

  constructor(private readonly ctx: AdapterContext, private readonly config: SgReadyConfig) {
    const timeout = config.confirm_timeout_s * 1000;
    const refresh = () => this.refresh();
    this.a = createRelay(ctx, config.relays.a, timeout, refresh);
    this.b = createRelay(ctx, config.relays.b, timeout, refresh);
    if (config.tank?.temperature) this.tankSensor = createSensor(ctx, config.tank.temperature, refresh);
    if (config.space?.temperature) this.roomSensor = createSensor(ctx, config.space.temperature, refresh);
    if (config.meter) this.register = new EnergyRegister(ctx.store);
    const fresh = (s?: TemperatureSensor) => {
      const v = s?.value();
      // a sensor silent for an hour is not believed
      return v && ctx.clock.now() - v.time <= 3_600_000 ? v.c : undefined;
    };
    this.device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter: 'sg_ready',
      circuit: config.circuit,
      available: false,
      error: 'relay states not known yet',
      caps: {
        heatPump: {
          sgReadyState: () => this.state(),
          requestedState: () => this.requested,
          setSgReady: (state, why) => this.request(state, why),
          tankC: () => fresh(this.tankSensor),
          roomC: () => fresh(this.roomSensor),
          params: heatPumpParams(config),
        },
        ...(config.meter ? { meter: { channels: ['device' as const], last: () => this.meterReading } } : {}),
      },
    };
  }

  /** The state the relays show, by the configured mapping; undefined while a relay is unknown or the pair maps to none. */
  state(): SgReadyState | undefined {
    const a = this.a.state();
    const b = this.b.state();
    if (a === undefined || b === undefined) return undefined;
    const i = STATE_KEYS.findIndex((k) => this.config.states[k][0] === a && this.config.states[k][1] === b);
    return i < 0 ? undefined : ((i + 1) as SgReadyState);
  }

  private refresh() {
    const s = this.state();
    const error = s === undefined ? (this.a.state() === undefined || this.b.state() === undefined ? 'relay states not known yet' : 'the relays show a pair that is no configured state') : undefined;
    setAvailability(this.ctx, this.device, error, 'heat pump relays');
  }

  async start() {
    for (const r of [this.a, this.b]) r.start();
    this.tankSensor?.start();
    this.roomSensor?.start();
    if (this.config.meter) {
      const t = this.config.meter.tasmota;
      this.unsubs.push(
        this.ctx.transports.mqtt().subscribe(`tele/${t}/SENSOR`, (topic, p) => {
          const e = parseJson(this.ctx, topic, p)?.ENERGY as Record<string, unknown> | undefined;
          if (!e) return;
          const reading: MeterReading = { time: this.ctx.clock.now(), channel: 'device', powerW: num(e.Power) };
          const total = num(e.Total);
          if (total !== undefined && total >= 0) reading.importWh = Math.round(this.register!.update(total * 1000, reading.time).totalWh * 1000) / 1000;
          this.meterReading = reading;
          this.ctx.bus.emit('meter.reading', { deviceId: this.config.id, reading });
        }),
      );
    }
    // MQTT relays report by themselves; coils and Modbus sensors are polled
    const poll = async () => {
      for (const x of [this.a, this.b, this.tankSensor, this.roomSensor]) {
        if (!x?.poll) continue;
        try {
          await x.poll();
        } catch (err) {
          if (x === this.a || x === this.b) return setAvailability(this.ctx, this.device, `polling failed: ${(err as Error).message}`, 'heat pump relays');
          this.ctx.log.debug({ err: (err as Error).message }, 'could not read a temperature');
        }
      }
      this.refresh();
    };
    const needsPoll = [this.a, this.b, this.tankSensor, this.roomSensor].some((x) => x?.poll);
    if (needsPoll) {
      await poll();
      this.stopPoll = this.ctx.clock.every(this.config.poll_s * 1000, () => void poll());
    }
    // MQTT relays: availability follows their reports
    const watch = this.ctx.clock.every(1000, () => this.refresh());
    this.unsubs.push(watch);
  }

  async stop() {
    this.stopped = true;
    this.pendingTimer?.();
    this.blockTimer?.();
    this.stopPoll?.();
    for (const u of this.unsubs.splice(0)) u();
    for (const r of [this.a, this.b]) r.stop();
    this.tankSensor?.stop();
    this.roomSensor?.stop();
    await this.register?.save();
  }

  /** Asks for a state: applied now, or when the current state's dwell ends. */
  request(state: SgReadyState, why?: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const changed = this.requested !== state;
    this.requested = state;
    const run = this.applying.then(() => this.apply(why, changed));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async apply(why: string | undefined, changed: boolean) {
    const want = this.requested;
    if (want === undefined || this.stopped) return;
    const now = this.ctx.clock.now();
    const current = this.state();
    if (current === want) {
      this.pendingTimer?.();
      this.pendingTimer = undefined;
      return;
    }
    const dwellMs = this.config.min_dwell_s * 1000;
    const heldSince = this.changedAt;
    if (heldSince !== undefined && now - heldSince < dwellMs) {
      if (changed) this.ctx.log.info({ state: want, current }, `state ${stateName(want)} waits ${Math.ceil((heldSince + dwellMs - now) / 1000)} s: ${current !== undefined ? stateName(current) : 'the current state'} is held at least ${this.config.min_dwell_s} s`);
      if (!this.pendingTimer) {
        const abort = new AbortController();
        this.pendingTimer = () => abort.abort();
        this.ctx.clock.sleep(heldSince + dwellMs - now, abort.signal).then(
          () => {
            this.pendingTimer = undefined;
            void this.request(this.requested!).catch((err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, 'could not switch the SG-Ready relays'));
          },
          () => undefined,
        );
      }
      return;
    }
    await this.switchTo(want);
    this.changedAt = this.ctx.clock.now();
    this.ctx.log.info({ state: want, why }, `SG-Ready state ${stateName(want)}${why ? `: ${why}` : ''}`);
    this.refresh();
    this.blockTimer?.();
    this.blockTimer = undefined;
    if (want === 1) {
      // a block ends by itself: the heat pump goes back to normal after max_block_s whatever is asked
      const abort = new AbortController();
      this.blockTimer = () => abort.abort();
      this.ctx.clock.sleep(this.config.max_block_s * 1000, abort.signal).then(
        () => {
          this.blockTimer = undefined;
          if (this.state() !== 1) return;
          this.ctx.log.info(`block held ${this.config.max_block_s} s, the longest allowed: back to normal`);
          this.changedAt = undefined;
          void this.request(2, 'block ended').catch(() => undefined);
        },
        () => undefined,
      );
    }
  }

  /**
   * Sets the relay pair. When both relays change, the one whose intermediate pair is not "blocked"
   * goes first (normal 0/0 → forced 1/1 passes through recommended 0/1, never through a block).
   */
  private async switchTo(state: SgReadyState) {
    const [wa, wb] = this.config.states[STATE_KEYS[state - 1]];
    const ca = this.a.state();
    const cb = this.b.state();
    const blocked = this.config.states.blocked;
    const steps: [RelayOutput, boolean][] = [];
    if (ca !== wa && cb !== wb) {
      const aFirstPair: Pair = [wa, cb ?? !wb];
      const aFirst = !(aFirstPair[0] === blocked[0] && aFirstPair[1] === blocked[1]);
      steps.push(...((aFirst ? [[this.a, wa], [this.b, wb]] : [[this.b, wb], [this.a, wa]]) as [RelayOutput, boolean][]));
    } else {
      if (ca !== wa) steps.push([this.a, wa]);
      if (cb !== wb) steps.push([this.b, wb]);
    }
    for (const [relay, on] of steps) await relay.set(on);
  }
}
