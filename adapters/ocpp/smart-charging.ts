import { permanentError, type AdapterContext, type ChargerLimit, type EpochMs, type OcppConnection } from '../../src/api/index.js';
import { asRecord, str, type ChargerFacts, type OcppDialect } from './dialect.js';
import { chargingSchedule, heldBetween, type ChargerElectrics, type ChargingScheduleSpec, type ProfilePurpose, type ProfileSettings, type RateUnit } from './profiles.js';
import type { OcppDeviceConfig } from './schema.js';

/** What smart charging needs from the connector it serves. */
export interface SmartChargingPort {
  /** The open connection and its dialect; throws a retryable error when the charger is offline. */
  link(): { conn: OcppConnection; dialect: OcppDialect };
  connected(): boolean;
  facts(): ChargerFacts;
  /** The running transaction's id, if any. */
  openTransaction(): string | undefined;
  /** Shows (or clears, with undefined) a profile problem on the device. */
  profileError(message: string | undefined): void;
  logOnce(key: string, fn: () => void): void;
}

/**
 * One connector's charging profiles: turns the plan's limit into a profile the charger accepts
 * (purpose, stack level, unit and phases as it allows), sends nothing when the charger already
 * holds the same schedule, renews it before it expires and re-sends it after a reconnect.
 */
export class SmartCharging {
  private limit?: ChargerLimit;
  private acceptedProfile?: string;
  /** The profile the charger took last: what it holds the charger to, and since when (to renew it before validTo). */
  private acceptedSpec?: { head: string; spec: ChargingScheduleSpec; sentAt: EpochMs };
  private inflight?: { key: string; done: Promise<void> };
  private purposeFallback = false;
  /** phase_switching: the numberPhases of the last profile the charger accepted. */
  private phasesInUse?: 1 | 3;
  private readonly el: ChargerElectrics;

  constructor(
    private readonly ctx: AdapterContext,
    private readonly config: OcppDeviceConfig,
    private readonly port: SmartChargingPort,
    /** chargingProfileId: a charge point holds one profile per id, so each connector has its own. */
    private readonly profileId: number,
  ) {
    this.el = { phases: config.phases, voltage: config.voltage, minCurrentA: config.min_current_a, maxCurrentA: config.max_current_a };
  }

  activePhases(): 1 | 3 | undefined {
    return this.phasesInUse;
  }

  /** A new connection: the charger may have lost what it held, so the next plan is sent again. */
  forgetAccepted() {
    this.acceptedProfile = undefined;
    this.acceptedSpec = undefined;
  }

  rateUnit(): RateUnit {
    const wanted = this.config.profile.rate_unit;
    if (wanted !== 'auto') return wanted;
    const allowed = this.port.facts().rateUnits;
    return allowed && allowed.length && !allowed.includes('A') ? 'W' : 'A';
  }

  private settingsFor(purpose: ProfilePurpose): ProfileSettings {
    const p = this.config.profile;
    const maxStackLevel = this.port.facts().maxStackLevel;
    let stackLevel = p.stack_level;
    if (maxStackLevel !== undefined && stackLevel > maxStackLevel) stackLevel = maxStackLevel;
    return { purpose, stackLevel, rateUnit: this.rateUnit(), kind: p.kind, profileId: this.profileId, maxPeriods: p.max_periods ?? this.port.facts().maxPeriods, numberPhases: p.number_phases };
  }

  private purpose(): ProfilePurpose {
    const p = this.config.profile.purpose;
    if (p !== 'auto') return p;
    return this.port.openTransaction() !== undefined && !this.purposeFallback ? 'TxProfile' : 'TxDefaultProfile';
  }

  async reapply() {
    if (!this.limit || !this.port.connected()) return;
    if (this.limit.validUntil !== undefined && this.limit.validUntil <= this.ctx.clock.now()) return;
    await this.set(this.limit).catch((err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, `re-sending the plan to charger ${this.config.identity} failed`));
  }

  /**
   * Whether the charger already holds this schedule: the accepted profile says the same from now until it
   * expires, and is not yet in the second half of its validity (then it is renewed, so the charger never
   * falls back while the hub is alive). A re-plan that changes nothing sends nothing.
   */
  private unchanged(head: string, spec: ChargingScheduleSpec, now: EpochMs): boolean {
    const a = this.acceptedSpec;
    if (!a || a.head !== head) return false;
    const until = a.spec.validTo ?? Infinity;
    if (until - now <= (until - a.sentAt) / 2) return false;
    return heldBetween(a.spec, now, until) === heldBetween(spec, now, until);
  }

  /** The plan's limit as a charging profile (SetChargingProfile); rejections are logged and shown on the device. */
  async set(limit: ChargerLimit): Promise<void> {
    this.limit = limit;
    const { conn, dialect } = this.port.link();
    let purpose = this.purpose();
    for (;;) {
      // one profile on its way at a time (setup, a new transaction and the plan can ask at once): wait for its answer, then see what is left to send
      while (this.inflight) await this.inflight.done;
      const now = this.ctx.clock.now();
      const txId = purpose === 'TxProfile' ? this.port.openTransaction() : undefined;
      const settings = this.settingsFor(purpose);
      let spec;
      try {
        spec = chargingSchedule(limit, settings, this.el, now);
      } catch (err) {
        throw permanentError('bad_limit', `charger ${this.config.identity}: ${(err as Error).message}`);
      }
      const params = dialect.setChargingProfile(spec, settings, this.config.connector, txId);
      const key = JSON.stringify({ purpose, txId, unit: spec.rateUnit, validTo: spec.validTo, periods: spec.periods.map((p) => [spec.start + p.startPeriod * 1000, p.limit, p.numberPhases]) });
      if (key === this.acceptedProfile) return;
      // 6 A on one phase and 6 A on three are different profiles
      const head = JSON.stringify({ purpose, txId, unit: spec.rateUnit, kind: settings.kind, phases: spec.periods[0]?.numberPhases });
      if (this.unchanged(head, spec, now)) return;
      const sent = conn.call('SetChargingProfile', params);
      const inflight = { key, done: sent.then(() => undefined, () => undefined) };
      this.inflight = inflight;
      let status: string;
      try {
        status = str(asRecord(await sent).status) ?? 'unknown';
      } finally {
        if (this.inflight === inflight) this.inflight = undefined;
      }
      if (status === 'Accepted') {
        this.acceptedProfile = key;
        this.acceptedSpec = { head, spec, sentAt: now };
        if (this.config.phase_switching) this.phasesInUse = spec.periods[0]?.numberPhases === 1 ? 1 : 3;
        this.port.profileError(undefined);
        this.ctx.log.debug({ purpose, periods: spec.periods.length, first: spec.periods[0]?.limit, unit: spec.rateUnit }, `charging profile accepted by ${this.config.identity}`);
        return;
      }
      // HA's order of attempts: a charger that refuses TxProfile often takes TxDefaultProfile
      if (purpose === 'TxProfile' && this.config.profile.purpose === 'auto') {
        this.purposeFallback = true;
        purpose = 'TxDefaultProfile';
        continue;
      }
      const message = `charging profile ${status} by the charger (${purpose}, stack level ${settings.stackLevel}, ${spec.rateUnit}, ${settings.kind}); see the adapter README for profile settings`;
      this.port.logOnce(`profile|${status}|${purpose}|${settings.stackLevel}|${spec.rateUnit}`, () => this.ctx.log.warn({ status, purpose, stackLevel: settings.stackLevel, unit: spec.rateUnit }, `charger ${this.config.identity}: ${message}`));
      this.port.profileError(message);
      throw permanentError('profile_rejected', `charger ${this.config.identity}: ${message}`);
    }
  }

  /** Removes the hub's charging profile (the charger returns to its own default). */
  async clear(): Promise<string> {
    const { conn, dialect } = this.port.link();
    this.limit = undefined;
    this.forgetAccepted();
    return str(asRecord(await conn.call('ClearChargingProfile', dialect.clearChargingProfile(this.profileId))).status) ?? 'unknown';
  }
}
