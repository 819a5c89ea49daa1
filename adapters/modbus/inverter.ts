import {
  HomeflexError,
  ModbusExceptionError,
  permanentError,
  retryableError,
  type AdapterContext,
  type Device,
  type MeterCap,
  type MeterChannel,
  type MeterReading,
  type ModbusTransport,
  type PvLimitCommand,
  type StorageCommand,
  type StorageMode,
  type StorageState,
} from '../../src/api/index.js';
import { MEASURES, profileChannels, type MeasureName, type ModeName, type ModeVariant, type Profile } from './profile.js';
import {
  checkSpan,
  decodePoints,
  encodePoint,
  planReads,
  regKey,
  resolvePoints,
  spanOf,
  type ReadBlock,
  type RegisterImage,
  type Resolution,
} from './registers.js';
import { describeMap, discoverSunSpec, type SunSpecMap } from './sunspec/discovery.js';
import type { ModbusDeviceConfig } from './config.js';

export type { ModbusDeviceConfig } from './config.js';

/** Exceptions that say "this register does not exist here", as opposed to "I cannot answer now". */
const unsupported = (err: unknown): err is ModbusExceptionError =>
  err instanceof ModbusExceptionError && err.exceptionCode >= 1 && err.exceptionCode <= 3;

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

interface ActiveCommand {
  cmd: StorageCommand;
  powerW: number;
  lastWriteAt: number;
  /** The variant's values follow live readings: re-send every poll. */
  eachPoll: boolean;
}

/**
 * One battery inverter (or hybrid inverter) behind a Modbus connection, driven by a profile:
 * polls its registers, publishes storage state and meter readings, turns storage commands into
 * register writes and keeps them alive against the inverter's own watchdog.
 */
export class ModbusInverter {
  readonly device: Device;
  private readonly ctx: AdapterContext;
  private readonly config: ModbusDeviceConfig;
  private readonly profile: Profile;
  private readonly transport: ModbusTransport;
  private readonly unit: number;
  private readonly meterUnit: number;
  private readonly watchdogS: number;
  private readonly channels: MeterChannel[];
  private maps = new Map<number, SunSpecMap>();
  private resolution?: Resolution;
  private plan?: ReadBlock[];
  /** Points whose device refused joined reads: each is read alone. */
  private readAlone = new Set<string>();
  /** Points the device refused outright (exception 1-3): left out of every read. */
  private refused = new Set<string>();
  private values = new Map<string, number | undefined>();
  private measures = new Map<MeasureName, number | undefined>();
  private readings = new Map<MeterChannel, MeterReading>();
  private active?: ActiveCommand;
  /** The PV power limit in force (curtailment), kept alive like a storage command. */
  private activeLimit?: { cmd: PvLimitCommand; limitW: number; lastWriteAt: number; eachPoll: boolean };
  private mode: StorageMode = 'auto';
  /** homeflex itself wrote auto and nothing since: another auto changes nothing (and wears no flash). */
  private autoWritten = false;
  private polling?: Promise<void>;
  private stopTimer?: () => void;
  private downSince?: number;
  private everUp = false;
  private stopped = false;
  private refreshFailing = false;
  /** Serialises commands with the watchdog refresh so two writes sequences never interleave. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(ctx: AdapterContext, config: ModbusDeviceConfig, profile: Profile) {
    this.ctx = ctx;
    this.config = config;
    this.profile = profile;
    this.transport = ctx.transports.modbus(config.connection);
    this.unit = config.unit ?? profile.defaultUnit;
    this.meterUnit = config.meter_unit ?? profile.meterUnit ?? this.unit;
    this.watchdogS = config.watchdog_s ?? profile.watchdogS;
    this.channels = profileChannels(profile);
    const meter: MeterCap = { channels: this.channels, last: (channel = this.channels[0]) => this.readings.get(channel) };
    this.device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter: 'modbus',
      caps: { meter },
      available: false,
      error: 'not polled yet',
      circuit: config.circuit,
    };
    if (config.capacity_wh !== undefined) {
      const capacity = config.capacity_wh;
      this.device.caps.storage = {
        state: () => this.storageState(),
        params: {
          capacityWh: capacity,
          socMinWh: (config.soc_min_pct / 100) * capacity,
          socMaxWh: (config.soc_max_pct / 100) * capacity,
          maxChargeW: this.maxChargeW,
          maxDischargeW: this.maxDischargeW,
          chargeEfficiency: config.charge_efficiency,
          dischargeEfficiency: config.discharge_efficiency,
        },
        command: (cmd) => this.command(cmd),
      };
    }
    if (config.pv_kwp !== undefined && profile.measures.has('pv_power')) {
      this.device.caps.pv = {
        powerW: () => this.measures.get('pv_power'),
        params: { kWp: config.pv_kwp, tilt: config.pv_tilt, azimuth: config.pv_azimuth },
      };
      if (profile.pvLimit && !config.read_only) {
        this.device.caps.curtail = {
          ratedW: this.ratedW,
          steps: 'limit',
          limit: (cmd) => this.limitPv(cmd),
          current: () => this.activeLimit?.limitW,
        };
      }
    }
  }

  /** The PV inverter's rated AC power (W): `pv_rated_w`, else the strings' peak power. */
  get ratedW(): number {
    return this.config.pv_rated_w ?? (this.config.pv_kwp ?? 0) * 1000;
  }

  get maxChargeW(): number {
    return this.config.max_charge_w ?? (this.config.capacity_wh ?? 0) / 2;
  }

  get maxDischargeW(): number {
    return this.config.max_discharge_w ?? (this.config.capacity_wh ?? 0) / 2;
  }

  /** Last decoded engineering value of every point (for tests and diagnostics). */
  pointValues(): ReadonlyMap<string, number | undefined> {
    return this.values;
  }

  measure(name: MeasureName): number | undefined {
    return this.measures.get(name);
  }

  sunspecMap(unit = this.unit): SunSpecMap | undefined {
    return this.maps.get(unit);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.pollOnce();
    this.stopTimer = this.ctx.clock.every(this.config.poll_s * 1000, () => void this.pollOnce());
  }

  /** Stops polling and hands the inverter back to its own mode. */
  async stop(): Promise<void> {
    this.stopTimer?.();
    this.stopTimer = undefined;
    await this.polling?.catch(() => undefined);
    if (this.activeLimit && !this.config.read_only && this.device.available) {
      try {
        await this.serialised(() => this.applyVariants('pv limit release', this.profile.pvLimit!.release, this.commandLookup(0)));
        this.ctx.log.info(`lifted the PV limit of ${this.config.id}`);
      } catch (err) {
        this.ctx.log.warn({ err: errorText(err) }, `could not lift the PV limit of ${this.config.id} on stop; the inverter's revert timer (${this.watchdogS} s) will`);
      }
    }
    this.activeLimit = undefined;
    if (this.active && this.active.cmd.mode !== 'auto' && !this.config.read_only && this.device.available) {
      try {
        await this.serialised(() => this.applyMode('auto', 0));
        this.ctx.log.info(`handed ${this.config.id} back to the inverter's own mode`);
      } catch (err) {
        this.ctx.log.warn({ err: errorText(err) }, `could not hand ${this.config.id} back to auto on stop; the inverter's watchdog (${this.watchdogS} s) will`);
      }
    }
    this.active = undefined;
    this.stopped = true;
  }

  /** One poll; overlapping calls share the running one. */
  pollOnce(): Promise<void> {
    this.polling ??= this.poll().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.readAll();
      this.computeMeasures();
      this.publish();
      this.markUp();
    } catch (err) {
      this.markDown(err);
      return;
    }
    try {
      await this.keepCommandAlive();
      this.refreshFailing = false;
    } catch (err) {
      // the readings are fine; only the refresh failed, and the inverter's watchdog bounds the harm
      if (!this.refreshFailing) this.ctx.log.warn({ err: errorText(err) }, `${this.config.id}: could not refresh the ${this.active?.cmd.mode} command`);
      this.refreshFailing = true;
    }
  }

  private async ensureResolution(): Promise<Resolution> {
    if (this.resolution) return this.resolution;
    if (this.profile.sunspec) {
      const units = new Set([this.unit]);
      if ([...this.profile.points.values()].some((p) => p.onMeter && p.kind === 'sunspec')) units.add(this.meterUnit);
      for (const unit of units) {
        if (this.maps.has(unit)) continue;
        const map = await discoverSunSpec((address, count) => this.transport.readHolding(unit, address, count), unit);
        this.maps.set(unit, map);
        const who = [map.manufacturer, map.model, map.serial && `SN ${map.serial}`, map.version && `firmware ${map.version}`].filter(Boolean).join(' ');
        this.ctx.log.info({ unit, base: map.base, models: map.models.map((m) => m.id) }, `${this.config.id}: found ${who || 'a SunSpec device'} on unit ${unit} (${describeMap(map)})`);
      }
    }
    const res = resolvePoints(this.profile, { maps: this.maps, unit: this.unit, meterUnit: this.meterUnit });
    if (res.missing.size) this.ctx.log.debug({ missing: [...res.missing] }, 'profile points this device does not have');
    this.resolution = res;
    this.plan = undefined;
    return res;
  }

  /** Points a poll must read: those measures and command values use, and the scale factors of written ones. */
  private neededPoints(): { read: Set<string>; written: Set<string> } {
    const read = new Set<string>();
    const written = new Set<string>();
    const isPoint = (n: string) => this.profile.points.has(n);
    for (const alts of this.profile.measures.values()) for (const alt of alts) for (const n of alt.expr.names) read.add(n);
    const limits = this.profile.pvLimit ? [this.profile.pvLimit.limit, this.profile.pvLimit.release] : [];
    for (const variants of [...this.profile.modes.values(), ...limits]) {
      for (const v of variants) {
        for (const n of v.when?.names ?? []) if (isPoint(n)) read.add(n);
        for (const w of v.writes) {
          written.add(w.point);
          for (const n of w.value.names) if (isPoint(n)) read.add(n);
        }
      }
    }
    for (const name of [...read, ...written]) {
      const p = this.profile.points.get(name);
      if (p?.kind === 'fixed' && p.scaleFactor) read.add(p.scaleFactor);
    }
    return { read, written };
  }

  private buildPlan(res: Resolution): ReadBlock[] {
    const { read, written } = this.neededPoints();
    const wanted = (key: string) => {
      const base = key.replace(/#sf$/, '');
      return read.has(base) || (key.endsWith('#sf') && written.has(base));
    };
    const spans = [...res.points.values()].filter((p) => p.readable && wanted(p.name) && !this.refused.has(p.name)).map(spanOf);
    spans.push(...res.checks.map(checkSpan));
    return planReads(spans, this.profile.maxRead, this.profile.maxGap, this.readAlone);
  }

  private async readBlock(block: ReadBlock, image: RegisterImage) {
    const words = block.function === 'holding'
      ? await this.transport.readHolding(block.unit, block.address, block.count)
      : await this.transport.readInput(block.unit, block.address, block.count);
    words.forEach((w, i) => image.set(regKey(block.unit, block.function, block.address + i), w));
  }

  private async readAll(): Promise<void> {
    const res = await this.ensureResolution();
    this.plan ??= this.buildPlan(res);
    const image: RegisterImage = new Map();
    for (const block of this.plan) {
      try {
        await this.readBlock(block, image);
      } catch (err) {
        if (!unsupported(err)) throw err;
        if (block.members.length > 1) {
          // the device refuses reads across registers it does not map: read these points one by one
          for (const m of block.members) this.readAlone.add(m);
          this.plan = this.buildPlan(res);
          this.ctx.log.debug({ block: `${block.function} ${block.address}+${block.count}`, err: err.message }, 'joined read refused; reading its points one by one');
          return this.readAll();
        }
        const key = block.members[0];
        if (key.startsWith('check:')) throw this.mapChanged(`reading the model header at ${block.address} failed: ${err.message}`);
        this.refused.add(key);
        this.plan = this.buildPlan(res);
        const p = res.points.get(key);
        this.ctx.log.warn({ point: key.replace(/#sf$/, ' scale factor'), register: p?.label }, `${this.config.id}: the device does not support ${key} (${p?.label}): exception ${err.exceptionCode} ${err.exceptionName}; leaving it out`);
      }
    }
    for (const c of res.checks) {
      const got = image.get(regKey(c.unit, 'holding', c.address));
      if (got !== undefined && got !== c.expect) throw this.mapChanged(`${c.label} now reads ${got}, expected ${c.expect}`);
    }
    this.values = decodePoints(res.points, image);
  }

  /** The SunSpec map moved (firmware update, meter swapped): forget it and discover again next poll. */
  private mapChanged(why: string): HomeflexError {
    this.maps.clear();
    this.resolution = undefined;
    this.plan = undefined;
    this.readAlone.clear();
    this.refused.clear();
    return retryableError('sunspec_map_changed', `${this.config.id}: the SunSpec map changed (${why}); discovering it again`);
  }

  private lookup = (name: string): number | undefined => {
    if ((name as MeasureName) in MEASURES) return this.measures.get(name as MeasureName);
    return this.values.get(name);
  };

  private computeMeasures() {
    const next = new Map<MeasureName, number | undefined>();
    for (const [name, alts] of this.profile.measures) {
      let value: number | undefined;
      for (const alt of alts) {
        value = alt.expr.evaluate((n) => this.values.get(n));
        if (value === undefined) continue;
        if (alt.positive === 'discharging' || alt.positive === 'export') value = -value;
        break;
      }
      if (value !== undefined && (this.config.invert as string[]).includes(name)) value = -value;
      if (value !== undefined) value = Math.round(value * 1000) / 1000;
      next.set(name, value === 0 ? 0 : value);
    }
    this.measures = next;
  }

  private publish() {
    const time = this.ctx.clock.now();
    const m = (n: MeasureName) => this.measures.get(n);
    const emit = (channel: MeterChannel, reading: Omit<MeterReading, 'time' | 'channel'>) => {
      if (reading.powerW === undefined && reading.importWh === undefined && reading.exportWh === undefined) return;
      const full: MeterReading = { time, channel, ...reading };
      this.readings.set(channel, full);
      this.ctx.bus.emit('meter.reading', { deviceId: this.config.id, reading: full });
    };
    if (this.channels.includes('battery')) emit('battery', { powerW: m('battery_power'), importWh: m('battery_charge_wh'), exportWh: m('battery_discharge_wh') });
    // PV power leaves the panels: out of the device, so negative
    if (this.channels.includes('pv')) emit('pv', { powerW: m('pv_power') === undefined ? undefined : -m('pv_power')!, exportWh: m('pv_energy_wh') });
    if (this.channels.includes('grid')) {
      const phases = (['grid_power_l1', 'grid_power_l2', 'grid_power_l3'] as const).map(m);
      const n = phases.findIndex((w) => w === undefined);
      const phasesW = (n < 0 ? phases : phases.slice(0, n)) as number[];
      emit('grid', { powerW: m('grid_power'), importWh: m('grid_import_wh'), exportWh: m('grid_export_wh'), ...(phasesW.length ? { phasesW } : {}) });
    }
  }

  private storageState(): StorageState {
    const soc = this.measures.get('battery_soc');
    return {
      socPct: soc === undefined ? undefined : Math.round(soc * 10) / 10,
      powerW: this.measures.get('battery_power'),
      mode: this.mode,
    };
  }

  private markUp() {
    const wasDown = !this.device.available;
    this.device.available = true;
    this.device.error = undefined;
    if (!wasDown) return;
    if (this.everUp && this.downSince !== undefined) {
      const s = Math.round((this.ctx.clock.now() - this.downSince) / 1000);
      this.ctx.log.info({ downS: s }, `${this.config.id} answers again after ${s} s`);
    }
    this.everUp = true;
    this.downSince = undefined;
    this.ctx.bus.emit('device.state', { deviceId: this.config.id, available: true });
  }

  private markDown(err: unknown) {
    const message = errorText(err);
    const wasUp = this.device.available || this.downSince === undefined;
    this.device.available = false;
    this.device.error = message;
    if (!wasUp) return;
    this.downSince = this.ctx.clock.now();
    this.ctx.log.warn({ err: message, connection: this.config.connection, unit: this.unit }, `${this.config.id} is unavailable: ${message}`);
    this.ctx.bus.emit('device.state', { deviceId: this.config.id, available: false, error: message });
  }

  // ------------------------------------------------------------------ commands

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn);
    this.writing = run.catch(() => undefined);
    return run;
  }

  async command(cmd: StorageCommand): Promise<void> {
    const where = `${this.config.id}`;
    if (this.config.read_only) throw permanentError('read_only', `${where} is read_only: homeflex only reads it`);
    if (!(['auto', 'charge', 'discharge', 'hold'] as string[]).includes(cmd.mode)) throw permanentError('bad_command', `${where}: unknown mode "${String(cmd.mode)}" (auto, charge, discharge, hold)`);
    if (cmd.powerW !== undefined && (!Number.isFinite(cmd.powerW) || cmd.powerW < 0)) throw permanentError('bad_command', `${where}: powerW must be a positive number of watts, got ${cmd.powerW}`);
    if (!this.profile.modes.has(cmd.mode)) throw permanentError('not_supported', `${where}: profile ${this.profile.id} cannot set mode "${cmd.mode}"`);
    if (this.stopped) throw permanentError('stopped', `${where} is stopped`);
    const limit = cmd.mode === 'charge' ? this.maxChargeW : cmd.mode === 'discharge' ? this.maxDischargeW : 0;
    const powerW = cmd.mode === 'charge' || cmd.mode === 'discharge' ? Math.min(cmd.powerW ?? limit, limit) : 0;
    if (cmd.validUntil !== undefined && cmd.validUntil <= this.ctx.clock.now()) {
      throw permanentError('bad_command', `${where}: validUntil ${new Date(cmd.validUntil).toISOString()} is already past`);
    }
    if (!this.device.available) await this.pollOnce();
    if (!this.device.available) throw retryableError('device_unavailable', `${where} is unavailable: ${this.device.error}`);
    if (cmd.mode === 'auto' && this.autoWritten && !this.active) return;
    await this.serialised(async () => {
      let variant: ModeVariant;
      try {
        variant = await this.applyMode(cmd.mode, powerW);
      } catch (err) {
        if (cmd.mode !== 'auto') {
          // half a sequence of writes can leave the inverter in a mode nobody asked for
          await this.applyMode('auto', 0).catch(() => undefined);
        }
        throw err;
      }
      this.active = cmd.mode === 'auto' ? undefined : { cmd, powerW, lastWriteAt: this.ctx.clock.now(), eachPoll: this.profile.refreshEachPoll || variant.refreshEachPoll };
    });
    this.ctx.log.info({ mode: cmd.mode, powerW: cmd.mode === 'charge' || cmd.mode === 'discharge' ? powerW : undefined, validUntil: cmd.validUntil }, `${this.config.id}: ${cmd.mode}${powerW ? ` at ${powerW} W` : ''}`);
  }

  /** Names a write value may use: the command's power, the device's limits, points and measures. */
  private commandLookup(powerW: number, limitW = 0) {
    const vars: Record<string, number> = {
      power: powerW,
      limit_w: limitW,
      rated_w: this.ratedW,
      watchdog_s: this.watchdogS,
      max_charge_w: this.maxChargeW,
      max_discharge_w: this.maxDischargeW,
      capacity_wh: this.config.capacity_wh ?? 0,
      soc_min_pct: this.config.soc_min_pct,
      soc_max_pct: this.config.soc_max_pct,
    };
    return (name: string) => (name in vars ? vars[name] : this.lookup(name));
  }

  /** The first variant whose points exist and whose values can be computed now. */
  private pickVariant(what: string, variants: ModeVariant[], lookup: (name: string) => number | undefined): { variant: ModeVariant; values: number[] } {
    const res = this.resolution;
    if (!res) throw retryableError('device_unavailable', `${this.config.id} has not been read yet`);
    const reasons: string[] = [];
    for (const [i, variant] of variants.entries()) {
      const missing = variant.writes.filter((w) => !res.points.has(w.point) || this.refused.has(w.point)).map((w) => w.point);
      if (missing.length) {
        reasons.push(`variant ${i + 1}: the device lacks ${missing.join(', ')}`);
        continue;
      }
      if (variant.when && !variant.when.evaluate(lookup)) {
        reasons.push(`variant ${i + 1}: "${variant.when.source}" is not true`);
        continue;
      }
      const values = variant.writes.map((w) => w.value.evaluate(lookup));
      const unknown = variant.writes.filter((_, j) => values[j] === undefined);
      if (unknown.length) {
        reasons.push(`variant ${i + 1}: cannot compute ${unknown.map((w) => `${w.point} = ${w.value.source}`).join(', ')} (a value it needs was not read)`);
        continue;
      }
      return { variant, values: values as number[] };
    }
    throw permanentError('not_supported', `${this.config.id}: cannot set "${what}" with profile ${this.profile.id}: ${reasons.join('; ')}`);
  }

  private async applyMode(mode: ModeName, powerW: number): Promise<ModeVariant> {
    const variant = await this.applyVariants(mode, this.profile.modes.get(mode)!, this.commandLookup(powerW));
    this.mode = mode;
    this.autoWritten = mode === 'auto';
    return variant;
  }

  /** Writes the first usable variant of `variants`, point by point. */
  private async applyVariants(mode: string, variants: ModeVariant[], lookup: (name: string) => number | undefined): Promise<ModeVariant> {
    const { variant, values } = this.pickVariant(mode, variants, lookup);
    const res = this.resolution!;
    for (const [i, w] of variant.writes.entries()) {
      const p = res.points.get(w.point)!;
      const sfValue = typeof p.sf === 'string' ? this.sfExponent(p.sf) : typeof p.sf === 'number' ? p.sf : undefined;
      let words: number[];
      try {
        words = encodePoint(p, values[i], sfValue);
      } catch (err) {
        throw permanentError('bad_value', `${this.config.id}: mode ${mode}: ${errorText(err)}`);
      }
      try {
        await this.transport.writeRegisters(p.unit, p.address, words);
      } catch (err) {
        this.autoWritten = false;
        if (err instanceof HomeflexError) {
          throw new HomeflexError(err.kind, err.code, `${this.config.id}: mode ${mode}: writing ${w.point} = ${values[i]} (${p.label}) failed: ${err.message}`, { cause: err });
        }
        throw err;
      }
      // the next expression may read what was just written (SolarEdge: mode before limits)
      this.values.set(w.point, values[i]);
    }
    return variant;
  }

  /**
   * Limits (or with `maxW` undefined, frees) the PV production. The limit goes with the
   * inverter's revert timer (watchdog_s) and is re-sent before it runs out; at `validUntil` homeflex
   * lifts it, and if homeflex goes silent the inverter's timer does.
   */
  async limitPv(cmd: PvLimitCommand): Promise<void> {
    const where = this.config.id;
    const spec = this.profile.pvLimit;
    if (this.config.read_only) throw permanentError('read_only', `${where} is read_only: homeflex only reads it`);
    if (!spec) throw permanentError('not_supported', `${where}: profile ${this.profile.id} has no pv_limit`);
    if (cmd.maxW !== undefined && (!Number.isFinite(cmd.maxW) || cmd.maxW < 0)) throw permanentError('bad_command', `${where}: maxW must be a number of watts ≥ 0, got ${cmd.maxW}`);
    if (cmd.validUntil !== undefined && cmd.validUntil <= this.ctx.clock.now()) throw permanentError('bad_command', `${where}: validUntil ${new Date(cmd.validUntil).toISOString()} is already past`);
    if (this.stopped) throw permanentError('stopped', `${where} is stopped`);
    if (!this.device.available) await this.pollOnce();
    if (!this.device.available) throw retryableError('device_unavailable', `${where} is unavailable: ${this.device.error}`);
    if (cmd.maxW === undefined) {
      if (!this.activeLimit) return;
      await this.serialised(async () => {
        await this.applyVariants('pv limit release', spec.release, this.commandLookup(0));
        this.activeLimit = undefined;
      });
      this.ctx.log.info(`${where}: PV limit lifted`);
      return;
    }
    const limitW = Math.round(Math.min(cmd.maxW, this.ratedW || cmd.maxW));
    await this.serialised(async () => {
      let variant: ModeVariant;
      try {
        variant = await this.applyVariants('pv limit', spec.limit, this.commandLookup(0, limitW));
      } catch (err) {
        await this.applyVariants('pv limit release', spec.release, this.commandLookup(0)).catch(() => undefined);
        this.activeLimit = undefined;
        throw err;
      }
      this.activeLimit = { cmd, limitW, lastWriteAt: this.ctx.clock.now(), eachPoll: this.profile.refreshEachPoll || variant.refreshEachPoll };
    });
    this.ctx.log.info({ limitW, validUntil: cmd.validUntil }, `${where}: PV limited to ${limitW} W`);
  }

  /** Re-sends the PV limit before the inverter's revert timer runs out; lifts it when it expired. */
  private async keepLimitAlive() {
    const active = this.activeLimit;
    const spec = this.profile.pvLimit;
    if (!active || !spec || this.config.read_only) return;
    const now = this.ctx.clock.now();
    if (active.cmd.validUntil !== undefined && now >= active.cmd.validUntil) {
      await this.serialised(async () => {
        if (this.activeLimit !== active) return;
        await this.applyVariants('pv limit release', spec.release, this.commandLookup(0));
        this.activeLimit = undefined;
      });
      this.ctx.log.info(`${this.config.id}: PV limit expired at ${new Date(active.cmd.validUntil).toISOString()}; production is free again`);
      return;
    }
    const due = active.eachPoll ? 0 : (this.watchdogS * 1000) / 2;
    if (now - active.lastWriteAt < due) return;
    await this.serialised(async () => {
      if (this.activeLimit !== active) return;
      await this.applyVariants('pv limit', spec.limit, this.commandLookup(0, active.limitW));
      active.lastWriteAt = this.ctx.clock.now();
    });
  }

  private sfExponent(key: string): number | undefined {
    const res = this.resolution!;
    const sf = res.points.get(key);
    if (!sf) return undefined;
    // scale factors are raw integers; decodePoints gave their engineering value, which equals the raw
    return this.values.get(key);
  }

  /** Re-sends a non-auto command before the inverter's watchdog expires; returns to auto when it ran out. */
  private async keepCommandAlive() {
    await this.keepLimitAlive();
    const active = this.active;
    if (!active || this.config.read_only) return;
    const now = this.ctx.clock.now();
    if (active.cmd.validUntil !== undefined && now >= active.cmd.validUntil) {
      await this.serialised(async () => {
        if (this.active !== active) return;
        await this.applyMode('auto', 0);
        this.active = undefined;
      });
      this.ctx.log.info(`${this.config.id}: command ${active.cmd.mode} expired at ${new Date(active.cmd.validUntil).toISOString()}; back to the inverter's own mode`);
      return;
    }
    const due = active.eachPoll ? 0 : (this.watchdogS * 1000) / 2;
    if (now - active.lastWriteAt < due) return;
    await this.serialised(async () => {
      if (this.active !== active) return;
      const variant = await this.applyMode(active.cmd.mode, active.powerW);
      active.lastWriteAt = this.ctx.clock.now();
      active.eachPoll = this.profile.refreshEachPoll || variant.refreshEachPoll;
    });
  }
}
