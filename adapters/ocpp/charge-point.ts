import {
  OcppCallError,
  permanentError,
  retryableError,
  type AdapterContext,
  type ChargerCap,
  type ChargerLimit,
  type ChargerStatus,
  type ChargingSession,
  type Device,
  type EpochMs,
  type MeterCap,
  type MeterReading,
  type OcppConnection,
  type OcppTransport,
} from '../../src/api/index.js';
import { readMeterValues16, readMeterValues201, type ChargerSample, type SampleReading } from './measurands.js';
import {
  chargingSchedule,
  heldBetween,
  ocppTime,
  setChargingProfile16,
  setChargingProfile201,
  type ChargerElectrics,
  type ChargingScheduleSpec,
  type ProfilePurpose,
  type ProfileSettings,
  type RateUnit,
} from './profiles.js';
import type { OcppDeviceConfig } from './schema.js';
import { CarSoc } from '../homeassistant/car-soc.js';

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

const STATUS_16: Record<string, ChargerStatus> = {
  Available: 'available',
  Preparing: 'preparing',
  Charging: 'charging',
  SuspendedEV: 'suspended_ev',
  SuspendedEVSE: 'suspended_evse',
  Finishing: 'finishing',
  Reserved: 'unavailable',
  Unavailable: 'unavailable',
  Faulted: 'faulted',
};

const CHARGING_STATE_201: Record<string, ChargerStatus> = {
  Charging: 'charging',
  EVConnected: 'preparing',
  SuspendedEV: 'suspended_ev',
  SuspendedEVSE: 'suspended_evse',
  Idle: 'available',
};

const CONNECTOR_STATUS_201: Record<string, ChargerStatus> = {
  Available: 'available',
  Occupied: 'preparing',
  Reserved: 'unavailable',
  Unavailable: 'unavailable',
  Faulted: 'faulted',
};

const EMPTY_REPLY_16 = ['DiagnosticsStatusNotification', 'FirmwareStatusNotification'];
const EMPTY_REPLY_201 = ['NotifyEvent', 'NotifyReport', 'SecurityEventNotification', 'FirmwareStatusNotification', 'LogStatusNotification', 'NotifyChargingLimit', 'ClearedChargingLimit', 'ReportChargingProfiles', 'NotifyMonitoringReport', 'NotifyDisplayMessages', 'NotifyCustomerInformation', 'PublishFirmwareStatusNotification'];
const CLOSED_KEEP = 20;
/**
 * A running session's register is saved at most this often between its start and its end: every
 * save rewrites the hub's state file, and 500 chargers reporting every 10 s kept it busy nonstop.
 * A restart loses nothing that matters: the next reading brings the register back.
 */
export const SESSION_SAVE_MS = 60_000;

/** Charger configuration keys (1.6 GetConfiguration) the hub adapts to. */
interface ChargerFacts {
  vendor?: string;
  model?: string;
  firmware?: string;
  rateUnits?: RateUnit[];
  maxPeriods?: number;
  maxStackLevel?: number;
  sampleInterval?: string;
  sampledData?: string;
}

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? undefined : String(v));

/**
 * One OCPP charger as a hub device: answers what the charger sends, keeps its transaction as a
 * charging session, publishes its meter, and turns plan limits into charging profiles.
 */
export class OcppChargePoint {
  readonly device: Device;
  private conn?: OcppConnection;
  private status: ChargerStatus = 'unknown';
  private session?: OpenSession;
  private closedIds: string[];
  private reading?: MeterReading;
  private socPct?: number;
  private facts: ChargerFacts = {};
  private limit?: ChargerLimit;
  private acceptedProfile?: string;
  /** The profile the charger took last: what it holds the charger to, and since when (to renew it before validTo). */
  private acceptedSpec?: { head: string; spec: ChargingScheduleSpec; sentAt: EpochMs };
  private inflight?: { key: string; done: Promise<void> };
  private purposeFallback = false;
  private configuredConn?: OcppConnection;
  private releaseClaim?: () => void;
  private stopped = false;
  /** When the open session was last saved (clock ms); readings in between change it in memory only. */
  private sessionSavedAt = 0;
  private sessionUnsaved = false;
  /** energy_register: session — energy of earlier sessions, so the published register only grows. */
  private sessionBaseWh: number;
  private readonly logged = new Set<string>();
  private readonly waits = new Set<AbortController>();
  private readonly el: ChargerElectrics;
  /** phase_switching: the numberPhases of the last profile the charger accepted. */
  private phasesInUse?: 1 | 3;
  /** soc_entity: the car's SoC (and battery) from Home Assistant, preferred to what the charger reports. */
  private readonly car?: CarSoc;

  constructor(private readonly ctx: AdapterContext, private readonly config: OcppDeviceConfig, private readonly transport: OcppTransport) {
    this.el = { phases: config.phases, voltage: config.voltage, minCurrentA: config.min_current_a, maxCurrentA: config.max_current_a };
    this.session = ctx.store.get<OpenSession>('session') ?? undefined;
    this.closedIds = ctx.store.get<string[]>('closed_tx') ?? [];
    this.sessionBaseWh = ctx.store.get<number>('session_base_wh') ?? 0;
    const meter: MeterCap = { channels: ['device'], last: () => this.reading };
    this.car = CarSoc.of(ctx, config);
    const car = this.car;
    const charger: ChargerCap = {
      status: () => this.status,
      session: () => this.publicSession(),
      evSocPct: () => (car ? (this.status === 'available' || this.status === 'unknown' ? undefined : car.socPct()) : this.socPct),
      setLimit: (limit) => this.setLimit(limit),
      phases: config.phases,
      voltage: config.voltage,
      minCurrentA: config.min_current_a,
      maxCurrentA: config.max_current_a,
      get evCapacityWh() {
        return car?.capacityWh() ?? config.ev_capacity_wh;
      },
      ...(config.phase_switching && config.phases === 3 ? { phaseSwitching: { activePhases: () => this.phasesInUse } } : {}),
    };
    this.device = { id: config.id, name: config.name ?? config.id, adapter: 'ocpp', caps: { meter, charger }, available: false, error: 'not connected yet', circuit: config.circuit };
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    this.releaseClaim = this.transport.claim(this.config.identity, { password: this.config.password }, (c) => this.attach(c));
    this.car?.start();
    await this.transport.ready();
    if (this.session) this.ctx.log.info({ transaction: this.session.id }, `transaction ${this.session.id} was running when the hub stopped; it is adopted when the charger reports it`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.waits) w.abort();
    this.releaseClaim?.();
    // the change is in the store at once; the hub writes the file once after every adapter stopped (waiting here made 500 chargers take seconds)
    const saved = this.sessionUnsaved ? this.persistSession() : undefined;
    saved?.catch((err: unknown) => this.ctx.log.error({ err }, `could not save the session of charger ${this.config.identity}`));
    await this.conn?.close();
    await this.car?.stop();
  }

  get connection(): OcppConnection | undefined {
    return this.conn;
  }

  private logOnce(key: string, fn: () => void) {
    if (this.logged.has(key)) return;
    if (this.logged.size > 1000) this.logged.clear();
    this.logged.add(key);
    fn();
  }

  private stateChanged() {
    this.ctx.bus.emit('device.state', { deviceId: this.device.id, available: this.device.available, error: this.device.error });
  }

  private attach(conn: OcppConnection) {
    if (this.stopped) {
      void conn.close();
      return;
    }
    this.conn = conn;
    const wasAvailable = this.device.available;
    this.device.available = true;
    this.device.error = undefined;
    this.acceptedProfile = undefined;
    this.acceptedSpec = undefined;
    this.ctx.log.info({ charger: conn.identity, protocol: conn.protocol }, `charger ${conn.identity} connected (${conn.protocol})`);
    if (conn.protocol === 'ocpp2.0.1') this.handlers201(conn);
    else this.handlers16(conn);
    conn.onClose((info) => {
      if (this.conn !== conn) return;
      this.conn = undefined;
      this.device.available = false;
      this.device.error = 'charger disconnected';
      this.status = 'unknown';
      // the hub closing every charger as it stops is expected, not 500 warnings
      if (this.stopped) this.ctx.log.info({ charger: conn.identity, code: info.code }, `charger ${conn.identity} disconnected (hub stopping)`);
      else this.ctx.log.warn({ charger: conn.identity, code: info.code, reason: info.reason }, `charger ${conn.identity} disconnected`);
      this.ctx.bus.emit('device.disconnected', { deviceId: this.device.id });
      this.stateChanged();
    });
    if (!wasAvailable) this.ctx.bus.emit('device.connected', { deviceId: this.device.id });
    this.stateChanged();
    // a charger that reconnects without booting is configured after a short wait (cancelled with the connection, so stopping is not held up)
    const wait = new AbortController();
    this.waits.add(wait);
    conn.onClose(() => wait.abort());
    void this.ctx.clock
      .sleep(this.config.boot_wait_s * 1000, wait.signal)
      .then(() => this.setup(conn))
      .catch(() => undefined)
      .finally(() => this.waits.delete(wait));
  }

  // ------------------------------------------------------------------ inbound, 1.6

  private handlers16(conn: OcppConnection) {
    const now = () => ocppTime(this.ctx.clock.now());
    conn.handle('BootNotification', (p) => {
      const b = asRecord(p);
      this.facts.vendor = str(b.chargePointVendor);
      this.facts.model = str(b.chargePointModel);
      this.facts.firmware = str(b.firmwareVersion);
      this.ctx.log.info({ vendor: this.facts.vendor, model: this.facts.model, firmware: this.facts.firmware }, `charger ${conn.identity} booted: ${this.facts.vendor ?? '?'} ${this.facts.model ?? '?'}`);
      this.afterReply(() => this.setup(conn));
      return { status: 'Accepted', currentTime: now(), interval: this.config.heartbeat_s };
    });
    conn.handle('Heartbeat', () => ({ currentTime: now() }));
    conn.handle('StatusNotification', (p) => {
      const s = asRecord(p);
      const connectorId = Number(s.connectorId);
      const status = str(s.status) ?? '';
      const errorCode = str(s.errorCode);
      if (errorCode && errorCode !== 'NoError') {
        this.logOnce(`err|${connectorId}|${errorCode}|${str(s.vendorErrorCode)}`, () => this.ctx.log.warn({ connectorId, errorCode, info: s.info, vendorErrorCode: s.vendorErrorCode }, `charger ${conn.identity} connector ${connectorId} reports ${errorCode}`));
      }
      const mapped = STATUS_16[status];
      if (!mapped) this.logOnce(`status|${status}`, () => this.ctx.log.warn({ status }, `charger ${conn.identity} sent unknown status "${status}"`));
      if (connectorId === this.config.connector) this.onStatus(mapped ?? 'unknown');
      else if (connectorId === 0 && (mapped === 'faulted' || mapped === 'unavailable')) this.onStatus(mapped);
      return {};
    });
    conn.handle('Authorize', (p) => ({ idTagInfo: { status: this.tagStatus(str(asRecord(p).idTag)) } }));
    conn.handle('StartTransaction', (p) => {
      const s = asRecord(p);
      const connectorId = Number(s.connectorId);
      if (!Number.isInteger(connectorId)) throw new OcppCallError('FormationViolation', 'StartTransaction needs connectorId');
      const idTag = str(s.idTag);
      const transactionId = this.transport.nextTransactionId();
      const start = this.sampleTime(Date.parse(str(s.timestamp) ?? ''));
      const meterStart = this.energyOf(Number(s.meterStart));
      this.openSession({ id: String(transactionId), connectorId, start, idTag, meterStartWh: this.config.energy_register === 'session' ? 0 : meterStart, energyWh: 0 });
      if (meterStart !== undefined) this.publish({ time: start, energyWh: this.config.energy_register === 'session' ? 0 : meterStart, currentA: {} }, String(transactionId));
      // a TxProfile needs the transaction id: send the plan again inside the transaction
      this.afterReply(() => this.reapplyLimit());
      return { transactionId, idTagInfo: { status: this.tagStatus(idTag) } };
    });
    conn.handle('StopTransaction', (p) => {
      const s = asRecord(p);
      const id = str(s.transactionId) ?? '';
      const readings = Array.isArray(s.transactionData) ? s.transactionData.flatMap((mv) => readMeterValues16([mv], this.config.energy_unit)) : [];
      const open = this.session && !this.session.end ? this.session : undefined;
      // id 0 or -1 comes from chargers that lost the hub's reply or ran offline: it is the open one
      const matches = open && (open.id === id || Number(id) <= 0);
      if (!matches) {
        this.logOnce(`stop|${id}`, () => this.ctx.log.warn({ transaction: id }, `charger ${conn.identity} stopped unknown transaction ${id} (acknowledged)`));
      } else {
        this.ingest(readings, open!.id);
        const stop = this.energyOf(Number(s.meterStop));
        const time = this.sampleTime(Date.parse(str(s.timestamp) ?? ''));
        if (stop !== undefined) this.publish({ time, energyWh: stop, currentA: {} }, open!.id);
        this.closeSession(time, str(s.reason));
      }
      return { idTagInfo: { status: 'Accepted' } };
    });
    conn.handle('MeterValues', (p) => {
      const s = asRecord(p);
      const connectorId = Number(s.connectorId);
      if (connectorId !== 0 && connectorId !== this.config.connector) return {};
      const readings = readMeterValues16(s.meterValue, this.config.energy_unit);
      this.ingest(readings, s.transactionId === undefined || s.transactionId === null ? undefined : String(s.transactionId), connectorId);
      return {};
    });
    conn.handle('DataTransfer', () => ({ status: 'UnknownVendorId' }));
    for (const action of EMPTY_REPLY_16) conn.handle(action, () => ({}));
  }

  // ------------------------------------------------------------------ inbound, 2.0.1

  private handlers201(conn: OcppConnection) {
    const now = () => ocppTime(this.ctx.clock.now());
    conn.handle('BootNotification', (p) => {
      const cs = asRecord(asRecord(p).chargingStation);
      this.facts.vendor = str(cs.vendorName);
      this.facts.model = str(cs.model);
      this.facts.firmware = str(cs.firmwareVersion);
      this.ctx.log.info({ vendor: this.facts.vendor, model: this.facts.model, firmware: this.facts.firmware }, `charging station ${conn.identity} booted: ${this.facts.vendor ?? '?'} ${this.facts.model ?? '?'}`);
      this.afterReply(() => this.setup(conn));
      return { status: 'Accepted', currentTime: now(), interval: this.config.heartbeat_s };
    });
    conn.handle('Heartbeat', () => ({ currentTime: now() }));
    conn.handle('StatusNotification', (p) => {
      const s = asRecord(p);
      if (Number(s.evseId) === this.config.connector) {
        const st = str(s.connectorStatus) ?? '';
        const mapped = CONNECTOR_STATUS_201[st];
        // Occupied says less than the transaction's chargingState: keep that when it is known
        if (mapped === 'preparing' && this.session && !this.session.end) return {};
        this.onStatus(mapped ?? 'unknown');
      }
      return {};
    });
    conn.handle('Authorize', (p) => ({ idTokenInfo: { status: this.tagStatus(str(asRecord(asRecord(p).idToken).idToken)) } }));
    conn.handle('TransactionEvent', (p) => {
      const s = asRecord(p);
      const info = asRecord(s.transactionInfo);
      const txId = str(info.transactionId);
      if (!txId) throw new OcppCallError('FormationViolation', 'TransactionEvent needs transactionInfo.transactionId');
      const evseId = Number(asRecord(s.evse).id ?? this.config.connector);
      if (evseId !== this.config.connector) return {};
      const type = str(s.eventType);
      const time = this.sampleTime(Date.parse(str(s.timestamp) ?? ''));
      const idToken = str(asRecord(s.idToken).idToken);
      const readings = readMeterValues201(s.meterValue, this.config.energy_unit);
      const open = this.session && !this.session.end ? this.session : undefined;
      if (type === 'Started' && open?.id !== txId) {
        const begin = readings.find((r) => r.sample.context === 'Transaction.Begin' && r.sample.energyWh !== undefined)?.sample.energyWh;
        this.openSession({ id: txId, connectorId: evseId, start: time, idTag: idToken, meterStartWh: this.config.energy_register === 'session' ? 0 : begin, energyWh: 0 });
        this.afterReply(() => this.reapplyLimit());
      }
      if (type === 'Updated' && open?.id !== txId && !this.closedIds.includes(txId) && !readings.length) {
        this.openSession({ id: txId, connectorId: evseId, start: time, idTag: idToken, energyWh: 0, adopted: true });
      }
      this.ingest(readings, txId, evseId);
      const chargingState = str(info.chargingState);
      if (chargingState && CHARGING_STATE_201[chargingState]) this.onStatus(CHARGING_STATE_201[chargingState]);
      if (type === 'Ended') {
        if (this.session && !this.session.end && this.session.id === txId) this.closeSession(time, str(info.stoppedReason));
        else this.logOnce(`stop|${txId}`, () => this.ctx.log.warn({ transaction: txId }, `charging station ${conn.identity} ended unknown transaction ${txId} (acknowledged)`));
      }
      return idToken ? { idTokenInfo: { status: this.tagStatus(idToken) } } : {};
    });
    conn.handle('MeterValues', (p) => {
      const s = asRecord(p);
      if (Number(s.evseId) !== 0 && Number(s.evseId) !== this.config.connector) return {};
      this.ingest(readMeterValues201(s.meterValue, this.config.energy_unit), undefined, Number(s.evseId));
      return {};
    });
    conn.handle('DataTransfer', () => ({ status: 'UnknownVendorId' }));
    conn.handle('NotifyEVChargingNeeds', () => ({ status: 'Rejected' }));
    for (const action of EMPTY_REPLY_201) conn.handle(action, () => ({}));
  }

  /** Runs `fn` after the current reply went out (a call sent from inside a handler would race the reply). */
  private afterReply(fn: () => Promise<unknown> | void) {
    setImmediate(() => {
      void Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.ctx.log.warn({ err }, `charger ${this.config.identity}: ${(err as Error).message}`));
    });
  }

  private tagStatus(idTag: string | undefined): 'Accepted' | 'Invalid' {
    if (!this.config.id_tags) return 'Accepted';
    return idTag !== undefined && this.config.id_tags.includes(idTag) ? 'Accepted' : 'Invalid';
  }

  /** The charger's timestamp unless it is unreadable or in the future (a charger clock running ahead). */
  private sampleTime(t: number | undefined): EpochMs {
    const now = this.ctx.clock.now();
    if (t === undefined || !Number.isFinite(t)) return now;
    if (t > now + 5 * 60_000) {
      this.logOnce('clock', () => this.ctx.log.warn({ charger: new Date(t).toISOString(), hub: new Date(now).toISOString() }, `charger ${this.config.identity} clock runs ahead of the hub; using the hub's time`));
      return now;
    }
    return t;
  }

  /** meterStart/meterStop are Wh by the standard; `energy_unit: kWh` corrects chargers that send kWh there too. */
  private energyOf(v: number): number | undefined {
    if (!Number.isFinite(v) || v < 0) return undefined;
    return this.config.energy_unit === 'kWh' ? v * 1000 : v;
  }

  private onStatus(status: ChargerStatus) {
    const before = this.status;
    this.status = status;
    const open = this.session && !this.session.end ? this.session : undefined;
    if (status === 'available' && open) {
      // the charger forgot to stop (or the stop was lost): the connector is free, so the transaction is over
      this.ctx.log.info({ transaction: open.id }, `connector is available again: transaction ${open.id} closed`);
      this.closeSession(this.ctx.clock.now(), 'connector available');
    }
    if ((status === 'charging' || status === 'suspended_ev' || status === 'suspended_evse') && !open && this.conn) {
      // charging without a transaction the hub knows (hub restarted, state lost): ask for meter values carrying its id
      this.afterReply(() => this.trigger('MeterValues'));
    }
    if (status === 'preparing' && !open && this.config.remote_start && before !== 'preparing') {
      this.afterReply(() => this.remoteStart());
    }
    if (before !== status) this.stateChanged();
  }

  // ------------------------------------------------------------------ sessions and metering

  private openSession(s: OpenSession) {
    const open = this.session && !this.session.end ? this.session : undefined;
    if (open && open.id !== s.id) {
      this.ctx.log.warn({ transaction: open.id, next: s.id }, `transaction ${open.id} was never stopped; closed as ${s.id} begins`);
      this.closeSession(s.start, 'superseded');
    }
    this.session = s;
    this.ctx.log.info({ transaction: s.id, idTag: s.idTag, meterStartWh: s.meterStartWh, adopted: s.adopted }, `${s.adopted ? 'adopted' : 'started'} transaction ${s.id}`);
    void this.persistSession();
  }

  private closeSession(end: EpochMs, reason?: string) {
    const s = this.session;
    if (!s || s.end) return;
    s.end = Math.max(end, s.start);
    this.closedIds = [...this.closedIds.filter((x) => x !== s.id), s.id].slice(-CLOSED_KEEP);
    if (this.config.energy_register === 'session') this.sessionBaseWh += s.energyWh;
    this.ctx.log.info({ transaction: s.id, energyWh: s.energyWh, reason }, `transaction ${s.id} ended: ${(s.energyWh / 1000).toFixed(3)} kWh`);
    void this.persistSession();
    this.ctx.bus.emit('session.ended', { deviceId: this.device.id, sessionId: s.id, time: s.end });
  }

  private async persistSession() {
    this.sessionSavedAt = this.ctx.clock.now();
    this.sessionUnsaved = false;
    // set together, so the store folds them into one write
    await Promise.all([
      this.ctx.store.set('session', this.session && !this.session.end ? this.session : null),
      this.ctx.store.set('last_session', this.session ?? null),
      this.ctx.store.set('closed_tx', this.closedIds),
      this.ctx.store.set('session_base_wh', this.sessionBaseWh),
    ]);
  }

  private publicSession(): ChargingSession | undefined {
    const s = this.session;
    if (!s) return undefined;
    return { id: s.id, start: s.start, end: s.end, energyWh: Math.round(s.energyWh * 1000) / 1000, idTag: s.idTag };
  }

  /** Meter values of one frame: each reading goes to the session it belongs to, adopted if the hub did not know it. */
  private ingest(readings: SampleReading[], txId: string | undefined, connectorId = this.config.connector) {
    for (const { sample, problems } of readings) {
      if (problems.length) this.logOnce(`mv|${problems.join(';')}`, () => this.ctx.log.warn({ problems }, `charger ${this.config.identity} sent odd meter values: ${problems.join('; ')}`));
      let sessionId: string | undefined;
      const open = this.session && !this.session.end ? this.session : undefined;
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
      // the opening register of a 1.6 transaction came with StartTransaction; a 0 there from some chargers would look like a reset
      if (sample.context === 'Transaction.Begin' && this.conn?.protocol !== 'ocpp2.0.1') sample.energyWh = undefined;
      this.publish(sample, sessionId);
    }
  }

  /** Publishes one reading; within a session the register never goes backwards. */
  private publish(sample: ChargerSample, sessionId?: string) {
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
        if (this.ctx.clock.now() - this.sessionSavedAt >= SESSION_SAVE_MS) void this.persistSession().catch((err: unknown) => this.ctx.log.error({ err }, `could not save the session of charger ${this.config.identity}`));
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
    this.ctx.bus.emit('meter.reading', { deviceId: this.device.id, reading });
  }

  // ------------------------------------------------------------------ outbound

  private requireConn(): OcppConnection {
    if (!this.conn?.open) throw retryableError('not_connected', `charger ${this.config.identity} is not connected`);
    return this.conn;
  }

  /** After boot (or a reconnect without boot): learn the charger's limits, set the meter interval, ask for its status, re-send the plan. */
  private async setup(conn: OcppConnection) {
    if (this.configuredConn === conn || this.conn !== conn || !conn.open) return;
    this.configuredConn = conn;
    const warn = (what: string) => (err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, `charger ${conn.identity}: ${what} failed: ${(err as Error).message}`);
    if (conn.protocol === 'ocpp1.6') {
      await this.readConfiguration().catch(warn('GetConfiguration'));
      if (this.config.configure) {
        if (this.facts.sampleInterval !== String(this.config.meter_interval_s)) {
          await this.changeConfiguration('MeterValueSampleInterval', String(this.config.meter_interval_s)).catch(warn('setting MeterValueSampleInterval'));
        }
        const wanted = this.config.measurands.join(',');
        if (this.facts.sampledData !== wanted) {
          const status = await this.changeConfiguration('MeterValuesSampledData', wanted).catch(warn('setting MeterValuesSampledData'));
          if (status && status !== 'Accepted' && status !== 'RebootRequired') {
            // some chargers (EVBox) refuse the longer list; energy and power are what the hub needs most
            await this.changeConfiguration('MeterValuesSampledData', 'Energy.Active.Import.Register,Power.Active.Import').catch(warn('setting MeterValuesSampledData'));
          }
        }
      }
    } else if (this.config.configure) {
      const sd = (name: string, value: string) => ({ component: { name: 'SampledDataCtrlr' }, variable: { name }, attributeValue: value });
      const res = asRecord(
        await conn
          .call('SetVariables', { setVariableData: [sd('TxUpdatedInterval', String(this.config.meter_interval_s)), sd('TxUpdatedMeasurands', this.config.measurands.join(','))] })
          .catch(warn('SetVariables')),
      );
      const refused = (Array.isArray(res.setVariableResult) ? res.setVariableResult : []).map(asRecord).filter((r) => r.attributeStatus !== 'Accepted');
      if (refused.length) this.ctx.log.warn({ refused }, `charging station ${conn.identity} refused some SetVariables`);
    }
    await this.trigger('StatusNotification').catch(warn('TriggerMessage StatusNotification'));
    if (this.session && !this.session.end) await this.trigger('MeterValues').catch(warn('TriggerMessage MeterValues'));
    await this.reapplyLimit();
  }

  /** 1.6 GetConfiguration: the keys that shape charging profiles and metering. */
  async readConfiguration(): Promise<Record<string, string | undefined>> {
    const conn = this.requireConn();
    const res = asRecord(await conn.call('GetConfiguration', {}));
    const keys: Record<string, string | undefined> = {};
    for (const k of Array.isArray(res.configurationKey) ? res.configurationKey : []) {
      const r = asRecord(k);
      if (typeof r.key === 'string') keys[r.key] = str(r.value);
    }
    const units = keys.ChargingScheduleAllowedChargingRateUnit;
    if (units !== undefined) {
      // "Current", "Power", both, or (some chargers) "A"/"W"
      const list = units.split(/[,\s]+/).filter(Boolean);
      this.facts.rateUnits = [...new Set(list.flatMap((u): RateUnit[] => (/^(current|a)$/i.test(u) ? ['A'] : /^(power|w)$/i.test(u) ? ['W'] : [])))];
    }
    const num = (v?: string) => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : undefined);
    this.facts.maxPeriods = num(keys.ChargingScheduleMaxPeriods);
    this.facts.maxStackLevel = num(keys.ChargeProfileMaxStackLevel);
    this.facts.sampleInterval = keys.MeterValueSampleInterval;
    this.facts.sampledData = keys.MeterValuesSampledData;
    return keys;
  }

  async changeConfiguration(key: string, value: string): Promise<string> {
    const res = asRecord(await this.requireConn().call('ChangeConfiguration', { key, value }));
    const status = str(res.status) ?? 'unknown';
    if (status !== 'Accepted') this.ctx.log.warn({ key, value, status }, `charger ${this.config.identity} answered ${status} to ${key}=${value}`);
    return status;
  }

  async trigger(requestedMessage: 'StatusNotification' | 'MeterValues' | 'BootNotification' | 'Heartbeat'): Promise<string> {
    const conn = this.requireConn();
    const params =
      conn.protocol === 'ocpp1.6'
        ? { requestedMessage, connectorId: this.config.connector }
        : { requestedMessage, ...(requestedMessage === 'StatusNotification' || requestedMessage === 'MeterValues' ? { evse: { id: this.config.connector, ...(requestedMessage === 'StatusNotification' ? { connectorId: 1 } : {}) } } : {}) };
    return str(asRecord(await conn.call('TriggerMessage', params)).status) ?? 'unknown';
  }

  async remoteStart(idTag = this.config.remote_id_tag): Promise<string> {
    const conn = this.requireConn();
    const res =
      conn.protocol === 'ocpp1.6'
        ? await conn.call('RemoteStartTransaction', { connectorId: this.config.connector, idTag })
        : await conn.call('RequestStartTransaction', { evseId: this.config.connector, remoteStartId: this.transport.nextTransactionId(), idToken: { idToken: idTag, type: 'Central' } });
    const status = str(asRecord(res).status) ?? 'unknown';
    this.ctx.log.info({ status }, `remote start on charger ${this.config.identity}: ${status}`);
    return status;
  }

  async remoteStop(): Promise<string> {
    const conn = this.requireConn();
    const open = this.session && !this.session.end ? this.session : undefined;
    if (!open) throw permanentError('no_transaction', `charger ${this.config.identity} has no running transaction`);
    const res = conn.protocol === 'ocpp1.6' ? await conn.call('RemoteStopTransaction', { transactionId: Number(open.id) }) : await conn.call('RequestStopTransaction', { transactionId: open.id });
    return str(asRecord(res).status) ?? 'unknown';
  }

  /** Removes the hub's charging profile (the charger returns to its own default). */
  async clearLimit(): Promise<string> {
    const conn = this.requireConn();
    this.limit = undefined;
    this.acceptedProfile = undefined;
    this.acceptedSpec = undefined;
    const res =
      conn.protocol === 'ocpp1.6'
        ? await conn.call('ClearChargingProfile', { id: this.config.profile.id })
        : await conn.call('ClearChargingProfile', { chargingProfileId: this.config.profile.id });
    return str(asRecord(res).status) ?? 'unknown';
  }

  /** What the charger will actually do for the next `durationS` seconds (GetCompositeSchedule). */
  async compositeSchedule(durationS: number): Promise<Record<string, unknown>> {
    const conn = this.requireConn();
    const unit = this.rateUnit();
    return asRecord(
      conn.protocol === 'ocpp1.6'
        ? await conn.call('GetCompositeSchedule', { connectorId: this.config.connector, duration: Math.round(durationS), chargingRateUnit: unit })
        : await conn.call('GetCompositeSchedule', { evseId: this.config.connector, duration: Math.round(durationS), chargingRateUnit: unit }),
    );
  }

  // ------------------------------------------------------------------ smart charging

  private rateUnit(): RateUnit {
    const wanted = this.config.profile.rate_unit;
    if (wanted !== 'auto') return wanted;
    const allowed = this.facts.rateUnits;
    return allowed && allowed.length && !allowed.includes('A') ? 'W' : 'A';
  }

  private settingsFor(purpose: ProfilePurpose): ProfileSettings {
    const p = this.config.profile;
    let stackLevel = p.stack_level;
    if (this.facts.maxStackLevel !== undefined && stackLevel > this.facts.maxStackLevel) stackLevel = this.facts.maxStackLevel;
    return { purpose, stackLevel, rateUnit: this.rateUnit(), kind: p.kind, profileId: p.id, maxPeriods: p.max_periods ?? this.facts.maxPeriods, numberPhases: p.number_phases };
  }

  private purpose(): ProfilePurpose {
    const p = this.config.profile.purpose;
    if (p !== 'auto') return p;
    const open = this.session && !this.session.end;
    return open && !this.purposeFallback ? 'TxProfile' : 'TxDefaultProfile';
  }

  private async reapplyLimit() {
    if (!this.limit || !this.conn?.open) return;
    if (this.limit.validUntil !== undefined && this.limit.validUntil <= this.ctx.clock.now()) return;
    await this.setLimit(this.limit).catch((err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, `re-sending the plan to charger ${this.config.identity} failed`));
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
  async setLimit(limit: ChargerLimit): Promise<void> {
    this.limit = limit;
    const conn = this.requireConn();
    const now = this.ctx.clock.now();
    const open = this.session && !this.session.end ? this.session : undefined;
    let purpose = this.purpose();
    for (;;) {
      const settings = this.settingsFor(purpose);
      let spec;
      try {
        spec = chargingSchedule(limit, settings, this.el, now);
      } catch (err) {
        throw permanentError('bad_limit', `charger ${this.config.identity}: ${(err as Error).message}`);
      }
      const txId = purpose === 'TxProfile' ? open?.id : undefined;
      const params = conn.protocol === 'ocpp1.6' ? setChargingProfile16(spec, settings, this.config.connector, txId === undefined ? undefined : Number(txId)) : setChargingProfile201(spec, settings, this.config.connector, txId);
      const key = JSON.stringify({ purpose, txId, unit: spec.rateUnit, validTo: spec.validTo, periods: spec.periods.map((p) => [spec.start + p.startPeriod * 1000, p.limit, p.numberPhases]) });
      if (key === this.acceptedProfile) return;
      // 6 A on one phase and 6 A on three are different profiles
      const head = JSON.stringify({ purpose, txId, unit: spec.rateUnit, kind: settings.kind, phases: spec.periods[0]?.numberPhases });
      if (this.unchanged(head, spec, now)) return;
      // the same profile already on its way (setup and the plan can ask at once): wait for that answer
      if (this.inflight?.key === key) {
        await this.inflight.done;
        if (this.acceptedProfile === key) return;
      }
      const sent = conn.call('SetChargingProfile', params);
      this.inflight = { key, done: sent.then(() => undefined, () => undefined) };
      let status: string;
      try {
        status = str(asRecord(await sent).status) ?? 'unknown';
      } finally {
        if (this.inflight?.key === key) this.inflight = undefined;
      }
      if (status === 'Accepted') {
        this.acceptedProfile = key;
        this.acceptedSpec = { head, spec, sentAt: now };
        if (this.config.phase_switching) this.phasesInUse = spec.periods[0]?.numberPhases === 1 ? 1 : 3;
        if (this.device.error?.startsWith('charging profile')) {
          this.device.error = undefined;
          this.stateChanged();
        }
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
      this.logOnce(`profile|${status}|${purpose}|${settings.stackLevel}|${spec.rateUnit}`, () => this.ctx.log.warn({ status, purpose, stackLevel: settings.stackLevel, unit: spec.rateUnit }, `charger ${this.config.identity}: ${message}`));
      this.device.error = message;
      this.stateChanged();
      throw permanentError('profile_rejected', `charger ${this.config.identity}: ${message}`);
    }
  }
}
