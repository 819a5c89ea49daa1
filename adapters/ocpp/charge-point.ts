import {
  permanentError,
  retryableError,
  type AdapterContext,
  type ChargerCap,
  type ChargerLimit,
  type ChargerStatus,
  type Device,
  type MeterCap,
  type OcppConnection,
  type OcppTransport,
} from '../../src/api/index.js';
import { asRecord, logOncePer, str, type TriggerableMessage } from './dialect.js';
import { changeConfiguration, readConfiguration } from './ocpp16.js';
import { profileIdOf } from './entries.js';
import type { OcppDeviceConfig } from './schema.js';
import { SessionBook } from './sessions.js';
import { SmartCharging } from './smart-charging.js';
import { CarSoc } from '../homeassistant/car-soc.js';
import { joinStation, type ChargeStation, type StationMember } from './station.js';

export { SESSION_SAVE_MS, type OpenSession } from './sessions.js';

/**
 * One connector (1.6) or EVSE (2.0.1) of an OCPP charger as a hub device: its status, its
 * transactions as charging sessions (SessionBook), its meter, and the plan's limits as charging
 * profiles (SmartCharging). The connection is the charge point's (ChargeStation), shared by the
 * devices of its connectors; the OCPP version's messages are its dialect's (ocpp16.ts, ocpp201.ts).
 */
export class OcppChargePoint implements StationMember {
  readonly device: Device;
  readonly sessions: SessionBook;
  private readonly smart: SmartCharging;
  private station?: ChargeStation;
  private chargerStatus: ChargerStatus = 'unknown';
  private readonly logOnce = logOncePer();
  /** soc_entity: the car's SoC (and battery) from Home Assistant, preferred to what the charger reports. */
  private readonly car?: CarSoc;

  constructor(readonly ctx: AdapterContext, readonly config: OcppDeviceConfig, private readonly transport: OcppTransport) {
    const logOnce = this.logOnce;
    this.sessions = new SessionBook(ctx, config.id, config, logOnce);
    this.smart = new SmartCharging(ctx, config, {
      link: () => this.requireStation().link(),
      connected: () => !!this.station?.connection?.open,
      facts: () => this.station?.facts ?? {},
      openTransaction: () => this.sessions.open()?.id,
      profileError: (message) => {
        if (message !== undefined) this.device.error = message;
        else if (this.device.error?.startsWith('charging profile')) this.device.error = undefined;
        else return;
        this.stateChanged();
      },
      logOnce,
    }, profileIdOf(config));
    const meter: MeterCap = { channels: ['device'], last: () => this.sessions.lastReading() };
    this.car = CarSoc.of(ctx, config);
    const car = this.car;
    const charger: ChargerCap = {
      status: () => this.chargerStatus,
      session: () => this.sessions.publicSession(),
      evSocPct: () => (car ? (this.chargerStatus === 'available' || this.chargerStatus === 'unknown' ? undefined : car.socPct()) : this.sessions.evSocPct()),
      setLimit: (limit) => this.setLimit(limit),
      phases: config.phases,
      voltage: config.voltage,
      minCurrentA: config.min_current_a,
      maxCurrentA: config.max_current_a,
      get evCapacityWh() {
        return car?.capacityWh() ?? config.ev_capacity_wh;
      },
      ...(config.phase_switching && config.phases === 3 ? { phaseSwitching: { activePhases: () => this.smart.activePhases() } } : {}),
    };
    this.device = { id: config.id, name: config.name ?? config.id, adapter: 'ocpp', caps: { meter, charger }, available: false, error: 'not connected yet', circuit: config.circuit };
  }

  get number() {
    return this.config.connector;
  }

  get deviceId() {
    return this.config.id;
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    this.station = joinStation(this.transport, this);
    this.car?.start();
    await this.station.start();
    const open = this.sessions.open();
    if (open) this.ctx.log.info({ transaction: open.id }, `transaction ${open.id} was running when the hub stopped; it is adopted when the charger reports it`);
  }

  async stop(): Promise<void> {
    // the change is in the store at once; the hub writes the file once after every adapter stopped (waiting here made 500 chargers take seconds)
    this.sessions.flush()?.catch((err: unknown) => this.ctx.log.error({ err }, `could not save the session of charger ${this.config.identity}`));
    await this.station?.leave(this);
    await this.car?.stop();
  }

  get connection(): OcppConnection | undefined {
    return this.station?.connection;
  }

  private stateChanged() {
    this.ctx.bus.emit('device.state', { deviceId: this.device.id, available: this.device.available, error: this.device.error });
  }

  private requireStation(): ChargeStation {
    if (!this.station) throw retryableError('not_connected', `charger ${this.config.identity} is not connected`);
    return this.station;
  }

  private link() {
    return this.requireStation().link();
  }

  connected(_conn: OcppConnection) {
    const wasAvailable = this.device.available;
    this.device.available = true;
    this.device.error = undefined;
    this.smart.forgetAccepted();
    if (!wasAvailable) this.ctx.bus.emit('device.connected', { deviceId: this.device.id });
    this.stateChanged();
  }

  disconnected(_stopping: boolean) {
    this.device.available = false;
    this.device.error = 'charger disconnected';
    this.chargerStatus = 'unknown';
    this.ctx.bus.emit('device.disconnected', { deviceId: this.device.id });
    this.stateChanged();
  }

  /** Once the charge point is configured: ask for this connector's status (and its meter in a transaction), re-send the plan. */
  async setup(conn: OcppConnection) {
    const failed = (what: string) => (err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, `charger ${conn.identity}: ${what} failed: ${(err as Error).message}`);
    await this.trigger('StatusNotification').catch(failed('TriggerMessage StatusNotification'));
    if (this.sessions.open()) await this.trigger('MeterValues').catch(failed('TriggerMessage MeterValues'));
    await this.reapplyLimit();
  }

  // ------------------------------------------------------------------ what the charger tells (through its dialect)

  tagStatus(idTag: string | undefined): 'Accepted' | 'Invalid' {
    if (!this.config.id_tags) return 'Accepted';
    return idTag !== undefined && this.config.id_tags.includes(idTag) ? 'Accepted' : 'Invalid';
  }

  status(status: ChargerStatus) {
    const before = this.chargerStatus;
    this.chargerStatus = status;
    const open = this.sessions.open();
    if (status === 'available' && open) {
      // the charger forgot to stop (or the stop was lost): the connector is free, so the transaction is over
      this.ctx.log.info({ transaction: open.id }, `connector is available again: transaction ${open.id} closed`);
      this.sessions.closeSession(this.ctx.clock.now(), 'connector available');
    }
    if ((status === 'charging' || status === 'suspended_ev' || status === 'suspended_evse') && !open && this.connection) {
      // charging without a transaction the hub knows (hub restarted, state lost): ask for meter values carrying its id
      this.station?.afterReply(() => this.trigger('MeterValues'));
    }
    if (status === 'preparing' && !open && this.config.remote_start && before !== 'preparing') {
      this.station?.afterReply(() => this.remoteStart());
    }
    if (before !== status) this.stateChanged();
  }

  reapplyLimit(): Promise<void> {
    return this.smart.reapply();
  }

  // ------------------------------------------------------------------ commands

  /** 1.6 GetConfiguration: the keys that shape charging profiles and metering. */
  async readConfiguration(): Promise<Record<string, string | undefined>> {
    const station = this.requireStation();
    return readConfiguration(station.link().conn, station);
  }

  async changeConfiguration(key: string, value: string): Promise<string> {
    const station = this.requireStation();
    return changeConfiguration(station.link().conn, station, key, value);
  }

  async trigger(requestedMessage: TriggerableMessage): Promise<string> {
    const { conn, dialect } = this.link();
    return str(asRecord(await conn.call('TriggerMessage', dialect.triggerMessage(requestedMessage, this.config.connector))).status) ?? 'unknown';
  }

  async remoteStart(idTag = this.config.remote_id_tag): Promise<string> {
    const { conn, dialect } = this.link();
    const { action, params } = dialect.remoteStart(this.config.connector, idTag, () => this.transport.nextTransactionId());
    const status = str(asRecord(await conn.call(action, params)).status) ?? 'unknown';
    this.ctx.log.info({ status }, `remote start on charger ${this.config.identity}: ${status}`);
    return status;
  }

  async remoteStop(): Promise<string> {
    const { conn, dialect } = this.link();
    const open = this.sessions.open();
    if (!open) throw permanentError('no_transaction', `charger ${this.config.identity} has no running transaction`);
    const { action, params } = dialect.remoteStop(open.id);
    return str(asRecord(await conn.call(action, params)).status) ?? 'unknown';
  }

  /** Removes the hub's charging profile (the charger returns to its own default). */
  clearLimit(): Promise<string> {
    return this.smart.clear();
  }

  /** What the charger will actually do for the next `durationS` seconds (GetCompositeSchedule). */
  async compositeSchedule(durationS: number): Promise<Record<string, unknown>> {
    const { conn, dialect } = this.link();
    return asRecord(await conn.call('GetCompositeSchedule', dialect.getCompositeSchedule(this.config.connector, durationS, this.smart.rateUnit())));
  }

  /** The plan's limit as a charging profile (SetChargingProfile); rejections are logged and shown on the device. */
  setLimit(limit: ChargerLimit): Promise<void> {
    return this.smart.set(limit);
  }
}

