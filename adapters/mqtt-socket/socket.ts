import {
  Confirmations,
  SECOND,
  retryableError,
  switchedScheduleSchema,
  SwitchedScheduleSchema,
  Type,
  type Static,
  type AdapterContext,
  type AdapterStore,
  type DeviceConfigBase,
  type Device,
  type MeterCap,
  type MeterReading,
  type MqttTransport,
  type PvLimitCommand,
  setAvailability,
} from '../../src/api/index.js';

/**
 * What the MQTT smart-socket adapters (tasmota, shelly) share: the YAML keys of a switched load,
 * a monotonic energy register over device counters that reset, and a device with `switch` +
 * `meter` whose state the protocol code feeds.
 */

/** Switched-load settings, the same keys as `sim_socket` and the API (the planner reads them from any socket). */
export const scheduleSchema = switchedScheduleSchema;

/** The keys every MQTT smart socket has in its `devices[]` entry (its adapter adds its own). */
export const SocketProperties = {
  rated_power_w: Type.Number({ minimum: 0, default: 2000, description: 'Power of the appliance when on (W), for planning' }),
  schedule: Type.Optional(SwitchedScheduleSchema),
  confirm_timeout_s: Type.Number({ minimum: 0.5, maximum: 60, default: 5, description: 'How long a switch command waits for the device to confirm' }),
  pv_kwp: Type.Optional(
    Type.Number({
      exclusiveMinimum: 0,
      description: 'The socket feeds a micro-inverter of this peak power (kWp): the device is PV (measured as production, forecast) that the plan may switch off where exporting would cost money, instead of a switched load',
    }),
  ),
};
export const SocketConfigSchema = Type.Object(SocketProperties);
export type SocketConfig = DeviceConfigBase & Static<typeof SocketConfigSchema>;

/**
 * A cumulative Wh register that never goes backwards although the device's own counter does
 * (Shelly Gen1 resets on reboot, Tasmota on EnergyReset, Gen2 loses the minutes since its last
 * flash save). A drop to less than half of the last value is taken as a reset to zero: the
 * energy counted since counts in full. A smaller drop is a lost tail: the register holds.
 */
export class EnergyRegister {
  private offsetWh: number;
  private lastRawWh: number | undefined;
  private lastSavedAt = 0;

  constructor(private readonly store: AdapterStore, private readonly key = 'energy_register') {
    const saved = store.get<{ offsetWh: number; lastRawWh?: number }>(key);
    this.offsetWh = saved?.offsetWh ?? 0;
    this.lastRawWh = saved?.lastRawWh;
  }

  /** Feeds the device's counter (Wh); returns the monotonic total and whether a reset was seen. */
  update(rawWh: number, now: number): { totalWh: number; reset: boolean } {
    let reset = false;
    if (this.lastRawWh !== undefined && rawWh < this.lastRawWh) {
      reset = true;
      this.offsetWh += rawWh < this.lastRawWh / 2 ? this.lastRawWh : this.lastRawWh - rawWh;
    }
    this.lastRawWh = rawWh;
    if (reset || now - this.lastSavedAt >= 60_000) {
      this.lastSavedAt = now;
      void this.save();
    }
    return { totalWh: this.offsetWh + rawWh, reset };
  }

  get totalWh(): number | undefined {
    return this.lastRawWh === undefined ? undefined : this.offsetWh + this.lastRawWh;
  }

  /** The device's own counter as last seen. */
  get rawWh(): number | undefined {
    return this.lastRawWh;
  }

  save() {
    return this.store.set(this.key, { offsetWh: this.offsetWh, lastRawWh: this.lastRawWh });
  }
}

class SocketMeter implements MeterCap {
  readonly channels = ['device' as const];
  reading?: MeterReading;
  last() {
    return this.reading;
  }
}

/** Parses a JSON payload, or returns undefined after logging what was wrong and on which topic. */
export function parseJson(ctx: AdapterContext, topic: string, payload: Buffer): Record<string, unknown> | undefined {
  const text = payload.toString();
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through to the log line
  }
  ctx.log.warn({ topic, payload: text.slice(0, 200) }, 'ignored a malformed payload (not a JSON object)');
  return undefined;
}

/** A finite number or undefined (devices send strings, nulls and NaN now and then). */
/** Bounds of believable socket values: a counter past 1 TWh, a jump of 1 GWh, a megawatt are garbled messages. */
const MAX_REGISTER_WH = 1e12;
const MAX_STEP_WH = 1e9;
const MAX_POWER_W = 1e6;

export const num = (v: unknown): number | undefined => {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
};

/**
 * A smart socket's device: the protocol code reports what it hears (`reportSwitch`, `reportPower`,
 * `reportEnergy`, `reportOnline`) and supplies `command(on)`; `switch.set` sends it and waits for
 * the device to confirm.
 */
export class SocketDevice {
  readonly device: Device;
  private on: boolean | undefined;
  private online: boolean | undefined;
  private powerW: number | undefined;
  private readonly meter = new SocketMeter();
  readonly register: EnergyRegister;
  /** Switch commands waiting for the socket to report the state they asked for. */
  private readonly confirmations: Confirmations<boolean>;
  private stopWatch?: () => void;
  private brokerUp = true;

  constructor(
    private readonly ctx: AdapterContext,
    private readonly config: SocketConfig,
    adapter: string,
    private readonly mqtt: MqttTransport,
    private readonly command: (on: boolean) => Promise<void>,
  ) {
    this.register = new EnergyRegister(ctx.store);
    this.confirmations = new Confirmations<boolean>(ctx.clock);
    this.device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter,
      circuit: config.circuit,
      available: false,
      error: 'no message from the device yet',
      caps: config.pv_kwp
        ? {
            // a micro-inverter's socket: production, and off as the only curtailment it has
            meter: this.meter,
            pv: { powerW: () => (this.powerW === undefined ? undefined : Math.abs(this.powerW)), params: { kWp: config.pv_kwp } },
            curtail: { ratedW: config.pv_kwp * 1000, steps: 'off', limit: (cmd) => this.limitPv(cmd), current: () => (this.curtailedUntil !== undefined ? 0 : undefined) },
          }
        : {
            meter: this.meter,
            switch: {
              isOn: () => this.on,
              set: (on) => this.set(on),
              ratedPowerW: config.rated_power_w,
            },
          },
    };
  }

  /** While homeflex holds a PV socket off: when it switches it back on by itself. */
  private curtailedUntil?: number;
  private cancelExpiry?: () => void;

  /**
   * A PV socket: any limit below the rated power that is 0 switches the micro-inverter off, no
   * limit switches it on. The socket has no revert timer of its own, so the hub switches it back on
   * at `validUntil` (and on stop); a hub that dies leaves it off until it runs again.
   */
  private async limitPv(cmd: PvLimitCommand): Promise<void> {
    const off = cmd.maxW !== undefined && cmd.maxW <= 0;
    if (!off) {
      this.cancelExpiry?.();
      this.cancelExpiry = undefined;
      if (this.curtailedUntil === undefined && this.on !== false) return;
      await this.set(true);
      this.curtailedUntil = undefined;
      return;
    }
    if (cmd.validUntil !== undefined && cmd.validUntil <= this.ctx.clock.now()) throw retryableError('bad_command', `${this.config.id}: validUntil is already past`);
    if (this.on !== false) await this.set(false);
    this.curtailedUntil = cmd.validUntil ?? Infinity;
    this.cancelExpiry?.();
    if (cmd.validUntil !== undefined) {
      const abort = new AbortController();
      this.cancelExpiry = () => abort.abort();
      this.ctx.clock.sleep(cmd.validUntil - this.ctx.clock.now(), abort.signal).then(
        () => {
          this.cancelExpiry = undefined;
          this.ctx.log.info(`${this.config.id}: PV curtailment expired; switching the micro-inverter back on`);
          this.set(true).then(
            () => (this.curtailedUntil = undefined),
            (err: unknown) => this.ctx.log.warn({ err: String(err) }, `${this.config.id}: could not switch the micro-inverter back on`),
          );
        },
        () => undefined,
      );
    }
  }

  /** Watches the hub's own broker link: the device is unreachable while it is down. */
  start() {
    this.stopWatch = this.ctx.clock.every(2000, () => {
      const up = this.mqtt.connected;
      if (up === this.brokerUp) return;
      this.brokerUp = up;
      this.refreshAvailability();
    });
  }

  async stop() {
    this.stopWatch?.();
    this.cancelExpiry?.();
    if (this.curtailedUntil !== undefined) await this.set(true).catch(() => undefined);
    await this.register.save();
  }

  private async set(on: boolean): Promise<void> {
    if (!this.mqtt.connected) throw retryableError('mqtt_offline', `${this.config.id}: the hub is not connected to the MQTT broker`);
    if (this.online === false) throw retryableError('device_offline', `${this.config.id}: the socket is offline (its last will said so)`);
    const confirmed = this.confirmations.expect((reported) => reported === on, this.config.confirm_timeout_s * SECOND, () => retryableError('no_confirmation', `${this.config.id}: the socket did not confirm switching ${on ? 'on' : 'off'} within ${this.config.confirm_timeout_s} s`));
    await this.command(on);
    await confirmed;
    this.ctx.log.info({ on }, `switched ${on ? 'on' : 'off'}`);
  }

  reportSwitch(on: boolean) {
    const changed = on !== this.on;
    this.on = on;
    this.confirmations.report(on);
    // a switch report proves the device is there even before its availability topic arrives
    if (this.online === undefined) this.online = true;
    if (changed || !this.device.available) this.refreshAvailability(true);
  }

  reportOnline(online: boolean) {
    if (online === this.online) return;
    this.online = online;
    this.refreshAvailability();
  }

  reportPower(watts: number) {
    if (!(Math.abs(watts) <= MAX_POWER_W)) return this.ctx.log.warn({ watts }, `ignored a power of ${watts} W: beyond any socket`);
    this.powerW = watts;
    this.emitReading();
  }

  /** The device's own counter in Wh (already converted from kWh or watt-minutes). */
  reportEnergy(rawWh: number) {
    // a garbled message must not become the register: a "reset" after it would add it to every later reading
    const last = this.register.rawWh;
    if (!(rawWh >= 0 && rawWh <= MAX_REGISTER_WH) || (last !== undefined && rawWh - last > MAX_STEP_WH)) {
      return this.ctx.log.warn({ rawWh, lastRawWh: last }, `ignored an energy counter of ${rawWh} Wh: beyond any socket`);
    }
    const { reset } = this.register.update(rawWh, this.ctx.clock.now());
    if (reset) this.ctx.log.info({ rawWh }, 'energy counter went back (device reboot or reset); register continues from its last total');
    this.emitReading();
  }

  /** Power and energy from one message: one reading. */
  reportMeter(watts: number | undefined, rawWh: number | undefined) {
    if (watts !== undefined && Math.abs(watts) <= MAX_POWER_W) this.powerW = watts;
    if (rawWh !== undefined) this.reportEnergy(rawWh);
    else this.emitReading();
  }

  private emitReading() {
    const reading: MeterReading = { time: this.ctx.clock.now(), channel: 'device' };
    if (this.powerW !== undefined) reading.powerW = this.powerW;
    const total = this.register.totalWh;
    if (this.config.pv_kwp) {
      // a micro-inverter delivers: power out of the device is negative, its counter is export
      if (reading.powerW !== undefined) reading.powerW = -Math.abs(reading.powerW);
      if (total !== undefined) [reading.importWh, reading.exportWh] = [0, Math.round(total * 1000) / 1000];
    } else if (total !== undefined) reading.importWh = Math.round(total * 1000) / 1000;
    this.meter.reading = reading;
    this.ctx.bus.emit('meter.reading', { deviceId: this.config.id, reading });
  }

  private refreshAvailability(force = false) {
    const error = !this.brokerUp ? 'the hub is not connected to the MQTT broker' : this.online === false ? 'the socket is offline' : this.online === undefined ? 'no message from the device yet' : undefined;
    setAvailability(this.ctx, this.device, error, 'socket', force);
  }
}
