import type { ChargerCap, Device, EpochMs, EvChargeMode, MeterReading } from '../api/index.js';
import type { SurplusConfig } from '../core/config/schema.js';
import type { HubServices } from '../core/services.js';
import { PLUGGED } from './model.js';

/** What the dispatcher needs to know of one surplus follower (a charger in charge_mode minpv or pv). */
export interface FollowerSpec {
  mode: 'minpv' | 'pv';
  voltage: number;
  minCurrentA: number;
  maxCurrentA: number;
  /** Phases installed. */
  phases: 1 | 3;
  /** Switches between 1 and 3 phases by command. */
  canSwitch: boolean;
}

/** A follower's state between ticks: what it was told, and since when a condition holds. */
export interface FollowerState {
  on: boolean;
  phases: 1 | 3;
  /** When its phases were last switched (by the dispatcher). */
  lastSwitch?: EpochMs;
  /** Since when the surplus has been enough to start (pv) / for three phases / too low to go on / too low for three phases. */
  startSince?: EpochMs;
  upSince?: EpochMs;
  stopSince?: EpochMs;
  downSince?: EpochMs;
}

export interface FollowerTiming {
  enableDelayMs: number;
  disableDelayMs: number;
  phaseSwitchDelayMs: number;
  phaseHysteresisW: number;
  stopHysteresisW: number;
}

export interface FollowerDecision {
  state: FollowerState;
  /** Power to allow (W): amps × voltage × phases, 0 = stopped. */
  watts: number;
  phases: 1 | 3;
  amps: number;
  /** Why, in a few words (for the log and GET /plan). */
  reason: string;
}

export const timingOf = (c: SurplusConfig): FollowerTiming => ({
  enableDelayMs: c.enable_delay_s * 1000,
  disableDelayMs: c.disable_delay_s * 1000,
  phaseSwitchDelayMs: c.phase_switch_delay_s * 1000,
  phaseHysteresisW: c.phase_hysteresis_w,
  stopHysteresisW: c.stop_hysteresis_w,
});

/**
 * One step of a surplus follower (pure): given the surplus it may take (W, including what it draws
 * itself), decide on/off, phases and current. Starting and adding phases wait `enableDelayMs` of
 * enough surplus; stopping and dropping phases wait `disableDelayMs` of too little; two phase switches
 * are at least `phaseSwitchDelayMs` apart. `minpv` never stops: below its minimum it draws the rest
 * from the grid, on as few phases as it can.
 */
export function followSurplus(spec: FollowerSpec, prev: FollowerState, availableW: number, now: EpochMs, t: FollowerTiming): FollowerDecision {
  const st: FollowerState = { ...prev };
  const minW = (p: 1 | 3) => spec.minCurrentA * spec.voltage * p;
  const canSwitch = spec.canSwitch && spec.phases === 3;
  if (!canSwitch) st.phases = spec.phases;
  const lowest: 1 | 3 = canSwitch ? 1 : spec.phases;
  const switchAllowed = st.lastSwitch === undefined || now - st.lastSwitch >= t.phaseSwitchDelayMs;
  const reasons: string[] = [];
  const switchTo = (p: 1 | 3, why: string) => {
    if (p === st.phases) return;
    st.phases = p;
    st.lastSwitch = now;
    st.upSince = st.downSince = undefined;
    reasons.push(why);
  };

  // ---- on / off
  if (spec.mode === 'minpv') {
    if (!st.on) {
      st.on = true;
      reasons.push('minpv: charging at least the minimum');
      if (canSwitch && switchAllowed) switchTo(availableW >= minW(3) ? 3 : 1, `starts on ${availableW >= minW(3) ? 3 : 1} phase(s)`);
    }
  } else if (!st.on) {
    st.stopSince = undefined;
    if (availableW >= minW(lowest)) {
      st.startSince ??= now;
      if (now - st.startSince >= t.enableDelayMs) {
        st.on = true;
        st.startSince = undefined;
        reasons.push(`surplus ${Math.round(availableW)} W held ${Math.round(t.enableDelayMs / 1000)} s: starts`);
        if (canSwitch && switchAllowed) switchTo(availableW >= minW(3) ? 3 : 1, `on ${availableW >= minW(3) ? 3 : 1} phase(s)`);
      } else reasons.push('surplus enough, waiting the enable delay');
    } else {
      st.startSince = undefined;
      reasons.push(`surplus ${Math.round(availableW)} W below the ${Math.round(minW(lowest))} W minimum`);
    }
  } else {
    st.startSince = undefined;
    if (availableW < minW(lowest) - t.stopHysteresisW) {
      st.stopSince ??= now;
      if (now - st.stopSince >= t.disableDelayMs) {
        st.on = false;
        st.stopSince = undefined;
        reasons.push(`surplus ${Math.round(availableW)} W too low for ${Math.round(t.disableDelayMs / 1000)} s: stops`);
      } else reasons.push('surplus too low, waiting the disable delay');
    } else st.stopSince = undefined;
  }

  // ---- phases, while charging
  if (st.on && canSwitch) {
    if (st.phases === 1 && availableW >= minW(3)) {
      st.upSince ??= now;
      if (now - st.upSince >= t.enableDelayMs && switchAllowed) switchTo(3, `surplus ${Math.round(availableW)} W ≥ ${minW(3)} W: three phases`);
    } else st.upSince = undefined;
    if (st.phases === 3 && availableW < minW(3) - t.phaseHysteresisW) {
      st.downSince ??= now;
      if (now - st.downSince >= t.disableDelayMs && switchAllowed) switchTo(1, `surplus ${Math.round(availableW)} W < ${minW(3) - t.phaseHysteresisW} W: one phase`);
    } else st.downSince = undefined;
  }

  if (!st.on) return { state: st, watts: 0, phases: st.phases, amps: 0, reason: reasons.join('; ') || 'off' };
  const amps = Math.max(spec.minCurrentA, Math.min(spec.maxCurrentA, Math.floor(availableW / (spec.voltage * st.phases) + 1e-9)));
  if (!reasons.length) reasons.push(`${amps} A on ${st.phases} phase(s) from ${Math.round(availableW)} W`);
  return { state: st, watts: amps * spec.voltage * st.phases, phases: st.phases, amps, reason: reasons.join('; ') };
}

/**
 * One step of an SG-Ready heat pump following the surplus (pure): it is raised (state 3 or 4) once
 * the surplus has covered its electric power for `enableDelayMs`, and let go once the surplus has
 * been `stopHysteresisW` short of it for `disableDelayMs`. The device's own minimum dwell comes on top.
 */
export function followSgReady(prev: FollowerState, availableW: number, ratedW: number, now: EpochMs, t: FollowerTiming): { state: FollowerState; reason: string } {
  const st: FollowerState = { ...prev };
  if (!st.on) {
    st.stopSince = undefined;
    if (availableW >= ratedW) {
      st.startSince ??= now;
      if (now - st.startSince < t.enableDelayMs) return { state: st, reason: 'surplus enough, waiting the enable delay' };
      st.on = true;
      st.startSince = undefined;
      return { state: st, reason: `surplus ${Math.round(availableW)} W held ${Math.round(t.enableDelayMs / 1000)} s: raised` };
    }
    st.startSince = undefined;
    return { state: st, reason: `surplus ${Math.round(availableW)} W below its ${Math.round(ratedW)} W` };
  }
  st.startSince = undefined;
  if (availableW < ratedW - t.stopHysteresisW) {
    st.stopSince ??= now;
    if (now - st.stopSince < t.disableDelayMs) return { state: st, reason: 'surplus too low, waiting the disable delay' };
    st.on = false;
    st.stopSince = undefined;
    return { state: st, reason: `surplus ${Math.round(availableW)} W too low for ${Math.round(t.disableDelayMs / 1000)} s: back to the plan` };
  }
  st.stopSince = undefined;
  return { state: st, reason: `running on ${Math.round(availableW)} W of surplus` };
}

// ---------------------------------------------------------------- where the surplus is measured

/** A measured surplus: W the site exports (+) or imports (−) now, before the followers' own draw is added back. */
export interface SurplusMeasurement {
  exportW: number;
  source: string;
  time: EpochMs;
}

/** A pluggable measurement of the site's surplus (a grid meter, PV less load, …). */
export interface SurplusSource {
  readonly name: string;
  measure(now: EpochMs, followers: Set<string>): SurplusMeasurement | undefined;
}

/** The grid meter channel: the newest `grid` reading of any device (+ = import). */
export class GridMeterSource implements SurplusSource {
  readonly name = 'grid';
  private latest?: { deviceId: string; reading: MeterReading };
  constructor(private readonly maxAgeMs: number) {}
  take(deviceId: string, reading: MeterReading) {
    if (reading.channel === 'grid' && typeof reading.powerW === 'number') this.latest = { deviceId, reading };
  }
  measure(now: EpochMs): SurplusMeasurement | undefined {
    const r = this.latest;
    if (!r || now - r.reading.time > this.maxAgeMs) return undefined;
    return { exportW: -r.reading.powerW!, source: `grid meter ${r.deviceId}`, time: r.reading.time };
  }
}

/** Measured PV less every other measured consumer (house load meters, sockets, chargers that do not follow, batteries charging). */
export class PvMinusLoadSource implements SurplusSource {
  readonly name = 'pv_minus_load';
  constructor(private readonly devices: () => Device[], private readonly maxAgeMs: number) {}
  measure(now: EpochMs, followers: Set<string>): SurplusMeasurement | undefined {
    let pv = 0;
    let load = 0;
    let pvSeen = false;
    for (const d of this.devices()) {
      if (!d.available || followers.has(d.id)) continue;
      if (d.caps.pv) {
        const w = d.caps.pv.powerW();
        if (w !== undefined) {
          pv += w;
          pvSeen = true;
        }
      }
      if (d.caps.storage) {
        load += d.caps.storage.state().powerW ?? 0;
        continue;
      }
      if (d.caps.pv || !d.caps.meter) continue;
      if (d.caps.meter.channels.includes('grid')) continue;
      const r = d.caps.meter.last('device') ?? d.caps.meter.last('load');
      if (r && typeof r.powerW === 'number' && now - r.time <= this.maxAgeMs) load += r.powerW;
    }
    return pvSeen ? { exportW: pv - load, source: 'measured PV less measured load', time: now } : undefined;
  }
}

// ---------------------------------------------------------------- the dispatcher

export interface FollowerView {
  id: string;
  /** A charger's mode, or `sg_ready` for a heat pump raised on surplus. */
  mode: 'minpv' | 'pv' | 'sg_ready';
  available_w: number;
  watts: number;
  phases: 1 | 3;
  amps: number;
  reason: string;
  phase_switches: number;
}

/**
 * The one real-time dispatcher for surplus followers: every `surplus.interval_s` it measures the
 * surplus, adds back what the followers draw themselves, and hands it out by `surplus_priority`
 * (highest first), each follower taking what its decision uses and leaving the rest to the next.
 * Between plans, the chargers it follows get their limits from here, not from the plan.
 */
export class SurplusDispatcher {
  readonly grid: GridMeterSource;
  readonly pvLessLoad: PvMinusLoadSource;
  private readonly states = new Map<string, FollowerState>();
  private readonly sent = new Map<string, { watts: number; phases: 1 | 3; until: EpochMs; at: EpochMs }>();
  private readonly switches = new Map<string, number>();
  private readonly views = new Map<string, FollowerView>();
  /** Devices whose last surplus limit failed, with the error: logged once, not every tick. */
  private readonly failing = new Map<string, string>();
  private stopTimer?: () => void;
  /** Heat pumps the dispatcher has raised on surplus: the plan leaves them alone until they are let go. */
  private readonly raised = new Set<string>();
  /** Called when a heat pump is let go, so the plan's state is applied again. */
  onRelease?: (id: string) => void;
  private readonly unsubscribes: (() => void)[] = [];
  private started = false;
  private busy = false;
  private noMeasurementTold = false;
  private readonly log;

  constructor(private readonly hub: HubServices, private readonly modeOf: (id: string) => EvChargeMode) {
    this.log = hub.log.child({ component: 'surplus' });
    const maxAge = Math.max(30_000, 6 * this.config.interval_s * 1000);
    this.grid = new GridMeterSource(maxAge);
    this.pvLessLoad = new PvMinusLoadSource(() => this.hub.registry.all(), maxAge);
  }

  get config(): SurplusConfig {
    return this.hub.config.surplus;
  }

  start() {
    this.started = true;
    const { bus } = this.hub;
    this.unsubscribes.push(
      bus.on('meter.reading', ({ deviceId, reading }) => this.grid.take(deviceId, reading)),
      bus.on('target.changed', () => this.refresh()),
      bus.on('device.connected', () => this.refresh()),
    );
    this.refresh();
  }

  /** Runs the timer only while some charger is in minpv or pv (a site without followers pays nothing for it). */
  refresh() {
    if (!this.started) return;
    const any = this.hub.registry.all().some((d) => (d.caps.charger && this.owns(d.id)) || d.caps.heatPump?.params.surplusState !== undefined);
    if (any && !this.stopTimer) this.stopTimer = this.hub.clock.every(this.config.interval_s * 1000, () => void this.tick());
    else if (!any && this.stopTimer) {
      this.stopTimer();
      this.stopTimer = undefined;
      this.views.clear();
    }
  }

  stop() {
    this.started = false;
    this.stopTimer?.();
    this.stopTimer = undefined;
    for (const u of this.unsubscribes.splice(0)) u();
  }

  /** Whether the dispatcher drives this device now (the plan's commands then leave it alone). */
  owns(id: string): boolean {
    if (this.raised.has(id)) return true;
    const m = this.modeOf(id);
    return m === 'minpv' || m === 'pv';
  }

  /** The followers as the last tick left them (GET /plan shows them). */
  view(): FollowerView[] {
    return [...this.views.values()];
  }

  private source(): SurplusSource[] {
    const s = this.config.source;
    return s === 'grid' ? [this.grid] : s === 'pv_minus_load' ? [this.pvLessLoad] : [this.grid, this.pvLessLoad];
  }

  private current?: Promise<void>;

  /** One round: measure, share out by priority, command what changed. */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.current = this.round().finally(() => {
      this.busy = false;
    });
    return this.current;
  }

  /** Resolves when no round is running (tests, the CLI). */
  async idle(): Promise<void> {
    while (this.busy && this.current) await this.current.catch(() => undefined);
  }

  private async round() {
    const now = this.hub.clock.now();
    const followers: { device: Device & { caps: { charger: ChargerCap } }; mode: 'minpv' | 'pv'; priority: number }[] = [];
    for (const d of this.hub.registry.all()) {
      const charger = d.caps.charger;
      if (!charger) continue;
      const mode = this.modeOf(d.id);
      if (mode !== 'minpv' && mode !== 'pv') {
        this.views.delete(d.id);
        continue;
      }
      if (!d.available || !PLUGGED.has(charger.status())) {
        // the car left (or the charger is away): it starts afresh, but its contactor keeps its last switch time
        const st = this.states.get(d.id);
        if (st) this.states.set(d.id, { on: false, phases: st.phases, lastSwitch: st.lastSwitch });
        this.sent.delete(d.id);
        this.views.delete(d.id);
        continue;
      }
      const priority = Number(this.hub.registry.entry(d.id)?.config?.surplus_priority ?? 50);
      followers.push({ device: d as Device & { caps: { charger: ChargerCap } }, mode, priority });
    }
    const heatPumps: { device: Device; priority: number }[] = [];
    for (const d of this.hub.registry.all()) {
      if (d.caps.heatPump?.params.surplusState === undefined) continue;
      if (!d.available) {
        this.letGo(d.id);
        continue;
      }
      heatPumps.push({ device: d, priority: Number(this.hub.registry.entry(d.id)?.config?.surplus_priority ?? 50) });
    }
    if (!followers.length && !heatPumps.length) return;
    followers.sort((a, b) => b.priority - a.priority || a.device.id.localeCompare(b.device.id));
    const ids = new Set([...followers, ...heatPumps].map((f) => f.device.id));
    let measured: SurplusMeasurement | undefined;
    for (const s of this.source()) {
      measured = s.measure(now, ids);
      if (measured) break;
    }
    if (!measured && !this.noMeasurementTold) {
      this.log.warn(`no surplus measurement (source ${this.config.source}: no fresh grid meter reading${this.config.source === 'grid' ? '' : ' and no PV reading'}); followers in pv stop, in minpv charge at their minimum`);
      this.noMeasurementTold = true;
    } else if (measured && this.noMeasurementTold) {
      this.log.info(`surplus measured again (${measured.source})`);
      this.noMeasurementTold = false;
    }
    // what the followers draw is part of the measured flow: add it back to get what they may share
    // (a reading older than the last command is capped at what was commanded: the charger has been told to draw no more)
    const drawn = followers.reduce((a, f) => {
      const r = f.device.caps.meter?.last('device');
      const w = Math.max(0, r?.powerW ?? 0);
      const sent = this.sent.get(f.device.id);
      return a + (sent && r && r.time <= sent.at ? Math.min(w, sent.watts) : w);
    }, 0) + heatPumps.reduce((a, h) => {
      // a raised heat pump's draw is surplus it took: its meter says how much, else its rated power
      if (!this.raised.has(h.device.id)) return a;
      const r = h.device.caps.meter?.last('device');
      return a + Math.max(0, r?.powerW ?? h.device.caps.heatPump!.params.maxElectricW);
    }, 0);
    let pool = measured ? measured.exportW + drawn - this.config.reserve_w : 0;
    const t = timingOf(this.config);
    // chargers and heat pumps share the surplus by surplus_priority (highest first; ties by id)
    const order = [...followers.map((f) => ({ ...f, heatPump: false })), ...heatPumps.map((h) => ({ ...h, heatPump: true }))].sort(
      (a, b) => b.priority - a.priority || a.device.id.localeCompare(b.device.id),
    );
    for (const entry of order) {
      if (entry.heatPump) {
        pool -= await this.followHeatPump(entry.device, pool, now, t, measured !== undefined);
        continue;
      }
      const f = followers.find((x) => x.device.id === entry.device.id)!;
      const ch = f.device.caps.charger;
      const installed = ch.phases;
      const active = ch.phaseSwitching?.activePhases() ?? installed;
      const prev = this.states.get(f.device.id) ?? { on: false, phases: active };
      const spec: FollowerSpec = { mode: f.mode, voltage: ch.voltage, minCurrentA: ch.minCurrentA, maxCurrentA: ch.maxCurrentA, phases: installed, canSwitch: ch.phaseSwitching !== undefined };
      const d = followSurplus(spec, prev, pool, now, t);
      this.states.set(f.device.id, d.state);
      if (d.state.lastSwitch !== prev.lastSwitch) this.switches.set(f.device.id, (this.switches.get(f.device.id) ?? 0) + 1);
      this.views.set(f.device.id, { id: f.device.id, mode: f.mode, available_w: Math.round(pool), watts: d.watts, phases: d.phases, amps: d.amps, reason: measured ? d.reason : `no surplus measurement; ${d.reason}`, phase_switches: this.switches.get(f.device.id) ?? 0 });
      pool -= d.watts;
      await this.send(f.device, d, now, prev);
    }
  }

  /** One heat pump's turn: raise it on enough surplus, let it go when the surplus is gone. Returns the watts it takes. */
  private async followHeatPump(device: Device, pool: number, now: EpochMs, t: FollowerTiming, measured: boolean): Promise<number> {
    const cap = device.caps.heatPump!;
    const ratedW = cap.params.maxElectricW;
    const prev = this.states.get(device.id) ?? { on: this.raised.has(device.id), phases: 1 };
    const d = followSgReady(prev, pool, ratedW, now, t);
    this.states.set(device.id, d.state);
    this.views.set(device.id, { id: device.id, mode: 'sg_ready', available_w: Math.round(pool), watts: d.state.on ? ratedW : 0, phases: 1, amps: 0, reason: measured ? d.reason : `no surplus measurement; ${d.reason}`, phase_switches: 0 });
    if (d.state.on) {
      const want = cap.params.surplusState!;
      if (!this.raised.has(device.id) || cap.requestedState() !== want) {
        this.raised.add(device.id);
        try {
          await cap.setSgReady(want, `surplus: ${d.reason}`);
          if (this.failing.delete(device.id)) this.log.info({ device: device.id }, `${device.id} takes its surplus state again`);
        } catch (err) {
          const message = (err as Error).message;
          if (this.failing.get(device.id) !== message) this.log.warn({ err, device: device.id }, `${device.id}: could not raise the heat pump: ${message}`);
          this.failing.set(device.id, message);
        }
      }
      return ratedW;
    }
    if (prev.on) this.log.info({ device: device.id }, `${device.id}: ${d.reason}`);
    this.letGo(device.id);
    return 0;
  }

  /** A raised heat pump goes back to the plan's state. */
  private letGo(id: string) {
    if (!this.raised.delete(id)) return;
    const st = this.states.get(id);
    if (st) st.on = false;
    this.onRelease?.(id);
  }

  private async send(device: Device & { caps: { charger: ChargerCap } }, d: FollowerDecision, now: EpochMs, prev: FollowerState) {
    // limits carry a validity so a charger that honours it falls back by itself when the hub stops; renewed at half of it
    const validity = Math.max(120_000, 6 * this.config.interval_s * 1000);
    const last = this.sent.get(device.id);
    if (last && last.watts === d.watts && last.phases === d.phases && last.until - now > validity / 2) return;
    try {
      await device.caps.charger.setLimit({ watts: d.watts, phases: d.phases, validUntil: now + validity });
      this.sent.set(device.id, { watts: d.watts, phases: d.phases, until: now + validity, at: now });
      if (this.failing.delete(device.id)) this.log.info({ device: device.id }, `${device.id} takes its surplus limits again`);
      if (!last || last.watts !== d.watts || last.phases !== d.phases || prev.on !== d.state.on) this.log.info({ device: device.id, watts: d.watts, phases: d.phases }, `${device.id}: ${d.reason}`);
    } catch (err) {
      this.sent.delete(device.id);
      const message = (err as Error).message;
      if (this.failing.get(device.id) !== message) this.log.warn({ err, device: device.id }, `${device.id}: could not send the surplus limit: ${message}`);
      this.failing.set(device.id, message);
    }
  }
}
