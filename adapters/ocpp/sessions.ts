import type { AdapterContext, ChargingSession, EpochMs, MeterReading } from '../../src/api/index.js';
import type { ChargerSample, SampleReading } from './measurands.js';
import type { OcppDeviceConfig } from './schema.js';

/** A charging session as the adapter keeps it (persisted, so a hub restart adopts it). */
export interface OpenSession {
  /** Transaction id as text (1.6 numbers, 2.0.1 strings). */
  id: string;
  connectorId: number;
  start: EpochMs;
  end?: EpochMs;
  idTag?: string;
  /** Register at the start (Wh); undefined until the first reading of an adopted transaction. */
  meterStartWh?: number;
  /** Highest register seen in the session (Wh). */
  lastRegisterWh?: number;
  energyWh: number;
  adopted?: boolean;
}

const CLOSED_KEEP = 20;
/**
 * A running session's register is saved at most this often between its start and its end: every
 * save rewrites the hub's state file, and 500 chargers reporting every 10 s kept it busy nonstop.
 * A restart loses nothing that matters: the next reading brings the register back.
 */
export const SESSION_SAVE_MS = 60_000;

/**
 * One connector's transactions and meter: keeps the running transaction as a charging session
 * (in the device's store), books each reading to the session it belongs to and publishes it.
 * Knows nothing of OCPP versions: the dialects hand it transactions and readings.
 */
export class SessionBook {
  private session?: OpenSession;
  private closedIds: string[];
  /** When the open session was last saved (clock ms); readings in between change it in memory only. */
  private sessionSavedAt = 0;
  private sessionUnsaved = false;
  /** energy_register: session — energy of earlier sessions, so the published register only grows. */
  private sessionBaseWh: number;
  private reading?: MeterReading;
  private socPct?: number;

  constructor(
    private readonly ctx: AdapterContext,
    private readonly deviceId: string,
    private readonly config: OcppDeviceConfig,
    private readonly logOnce: (key: string, fn: () => void) => void,
  ) {
    this.session = ctx.store.get<OpenSession>('session') ?? undefined;
    this.closedIds = ctx.store.get<string[]>('closed_tx') ?? [];
    this.sessionBaseWh = ctx.store.get<number>('session_base_wh') ?? 0;
  }

  /** The running transaction, if any. */
  open(): OpenSession | undefined {
    return this.session && !this.session.end ? this.session : undefined;
  }

  wasClosed(txId: string): boolean {
    return this.closedIds.includes(txId);
  }

  lastReading(): MeterReading | undefined {
    return this.reading;
  }

  evSocPct(): number | undefined {
    return this.socPct;
  }

  publicSession(): ChargingSession | undefined {
    const s = this.session;
    if (!s) return undefined;
    return { id: s.id, start: s.start, end: s.end, energyWh: Math.round(s.energyWh * 1000) / 1000, idTag: s.idTag };
  }

  /** The charger's timestamp unless it is unreadable or in the future (a charger clock running ahead). */
  sampleTime(t: number | undefined): EpochMs {
    const now = this.ctx.clock.now();
    if (t === undefined || !Number.isFinite(t)) return now;
    if (t > now + 5 * 60_000) {
      this.logOnce('clock', () => this.ctx.log.warn({ charger: new Date(t).toISOString(), hub: new Date(now).toISOString() }, `charger ${this.config.identity} clock runs ahead of the hub; using the hub's time`));
      return now;
    }
    return t;
  }

  /** meterStart/meterStop are Wh by the standard; `energy_unit: kWh` corrects chargers that send kWh there too. */
  energyOf(v: number): number | undefined {
    if (!Number.isFinite(v) || v < 0) return undefined;
    return this.config.energy_unit === 'kWh' ? v * 1000 : v;
  }

  openSession(s: OpenSession) {
    const open = this.open();
    if (open && open.id !== s.id) {
      this.ctx.log.warn({ transaction: open.id, next: s.id }, `transaction ${open.id} was never stopped; closed as ${s.id} begins`);
      this.closeSession(s.start, 'superseded');
    }
    this.session = s;
    this.ctx.log.info({ transaction: s.id, idTag: s.idTag, meterStartWh: s.meterStartWh, adopted: s.adopted }, `${s.adopted ? 'adopted' : 'started'} transaction ${s.id}`);
    void this.persist();
  }

  closeSession(end: EpochMs, reason?: string) {
    const s = this.session;
    if (!s || s.end) return;
    s.end = Math.max(end, s.start);
    this.closedIds = [...this.closedIds.filter((x) => x !== s.id), s.id].slice(-CLOSED_KEEP);
    if (this.config.energy_register === 'session') this.sessionBaseWh += s.energyWh;
    this.ctx.log.info({ transaction: s.id, energyWh: s.energyWh, reason }, `transaction ${s.id} ended: ${(s.energyWh / 1000).toFixed(3)} kWh`);
    void this.persist();
    this.ctx.bus.emit('session.ended', { deviceId: this.deviceId, sessionId: s.id, time: s.end });
  }

  /** Saves what changed in memory only (the hub stopping). */
  flush(): Promise<void> | undefined {
    return this.sessionUnsaved ? this.persist() : undefined;
  }

  private async persist() {
    this.sessionSavedAt = this.ctx.clock.now();
    this.sessionUnsaved = false;
    // set together, so the store folds them into one write
    await Promise.all([
      this.ctx.store.set('session', this.open() ?? null),
      this.ctx.store.set('last_session', this.session ?? null),
      this.ctx.store.set('closed_tx', this.closedIds),
      this.ctx.store.set('session_base_wh', this.sessionBaseWh),
    ]);
  }

  /**
   * Meter values of one frame: each reading goes to the session it belongs to, adopted if the hub did
   * not know it. `connectorId` 0 is the charge point's own meter (counted here only for a charge point
   * with one connector).
   */
  ingest(readings: SampleReading[], txId: string | undefined, connectorId = this.config.connector) {
    for (const { sample, problems } of readings) {
      if (problems.length) this.logOnce(`mv|${problems.join(';')}`, () => this.ctx.log.warn({ problems }, `charger ${this.config.identity} sent odd meter values: ${problems.join('; ')}`));
      let sessionId: string | undefined;
      const open = this.open();
      if (txId !== undefined && txId !== '' && Number(txId) !== -1) {
        if (open?.id === txId) sessionId = txId;
        else if (this.closedIds.includes(txId)) {
          // a charger that keeps a stopped transaction's id (en+): the energy is not that session's any more
          this.logOnce(`stale|${txId}`, () => this.ctx.log.warn({ transaction: txId }, `charger ${this.config.identity} still reports stopped transaction ${txId}; ignored as a session`));
        } else {
          this.openSession({ id: txId, connectorId, start: this.sampleTime(sample.time), energyWh: 0, adopted: true });
          sessionId = txId;
        }
      } else if (open && (connectorId === open.connectorId || connectorId === 0)) {
        sessionId = open.id;
      }
      this.publish(sample, sessionId);
    }
  }

  /** Publishes one reading; within a session the register never goes backwards. */
  publish(sample: ChargerSample, sessionId?: string) {
    const time = this.sampleTime(sample.time);
    let importWh = sample.energyWh;
    const s = sessionId && this.session?.id === sessionId ? this.session : undefined;
    if (importWh !== undefined && this.config.energy_register === 'session') {
      // the charger counts from 0 each session: add earlier sessions so the published register keeps growing
      importWh = this.sessionBaseWh + importWh;
    }
    if (importWh !== undefined && s) {
      if (s.meterStartWh === undefined) s.meterStartWh = this.config.energy_register === 'session' ? this.sessionBaseWh : importWh;
      const base = this.config.energy_register === 'session' ? this.sessionBaseWh : s.meterStartWh;
      if (importWh + 0.5 < base && this.config.energy_register === 'total') {
        this.logOnce(`below|${s.id}`, () => this.ctx.log.warn({ transaction: s.id, meterStartWh: s.meterStartWh, registerWh: importWh }, `charger ${this.config.identity} reports a register below the transaction's start: does it count session energy? (energy_register: session)`));
        importWh = undefined;
      } else if (s.lastRegisterWh !== undefined && importWh + 0.5 < s.lastRegisterWh) {
        this.logOnce(`back|${s.id}`, () => this.ctx.log.warn({ transaction: s.id, lastWh: s.lastRegisterWh, registerWh: importWh }, `charger ${this.config.identity} energy register went backwards (${s.lastRegisterWh} → ${importWh} Wh) in transaction ${s.id}: reading ignored`));
        importWh = undefined;
      } else {
        s.lastRegisterWh = Math.max(s.lastRegisterWh ?? importWh, importWh);
        s.energyWh = Math.max(s.energyWh, s.lastRegisterWh - base);
        this.sessionUnsaved = true;
        if (this.ctx.clock.now() - this.sessionSavedAt >= SESSION_SAVE_MS) void this.persist().catch((err: unknown) => this.ctx.log.error({ err }, `could not save the session of charger ${this.config.identity}`));
      }
    }
    if (sample.socPct !== undefined) this.socPct = sample.socPct;
    let powerW = sample.powerW;
    if (powerW === undefined) {
      const amps = (sample.currentA.L1 ?? 0) + (sample.currentA.L2 ?? 0) + (sample.currentA.L3 ?? 0);
      if (sample.currentA.L1 !== undefined || sample.currentA.L2 !== undefined || sample.currentA.L3 !== undefined) powerW = Math.round(amps * this.config.voltage);
    }
    if (importWh === undefined && powerW === undefined) return;
    const reading: MeterReading = { time, channel: 'device', ...(powerW !== undefined ? { powerW } : {}), ...(importWh !== undefined ? { importWh } : {}), ...(s ? { sessionId: s.id } : {}) };
    this.reading = reading;
    this.ctx.bus.emit('meter.reading', { deviceId: this.deviceId, reading });
  }
}
