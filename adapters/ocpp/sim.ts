import { randomUUID } from 'node:crypto';
import { DateTime } from 'luxon';
import { RPCClient } from 'ocpp-rpc';
import { defineAdapter, type AdapterStore, type Clock, type DeviceConfigBase, type EpochMs, type Logger, type OcppProtocol } from '../../src/api/index.js';
import { ocppTime, profileWattsAt } from './profiles.js';

/** What the simulated charge point is: a wallbox with a car behind it. */
export interface SimChargePointOptions {
  identity: string;
  password?: string;
  protocol: OcppProtocol;
  /** ws://host:port/path (the identity is appended). */
  endpoint: string;
  clock: Clock;
  log: Logger;
  store?: AdapterStore;
  phases: 1 | 3;
  voltage: number;
  maxCurrentA: number;
  minCurrentA: number;
  capacityWh: number;
  idTag: string;
  meterIntervalS: number;
  vendor?: string;
  model?: string;
  /** Connectors (1.6) / EVSEs (2.0.1) on the one connection, each with its own car (default 1). */
  connectors?: number;
  /** Also report the charge point's own meter (connector / EVSE 0), the sum of its connectors. */
  mainMeter?: boolean;
}

interface StoredProfile {
  chargingProfileId: number;
  stackLevel: number;
  purpose: string;
  transactionId?: string;
  validTo?: string;
  chargingSchedule: { startSchedule?: string; duration?: number; chargingRateUnit: string; chargingSchedulePeriod: { startPeriod: number; limit: number; numberPhases?: number }[] };
}

interface RpcClientLike {
  connect(): Promise<unknown>;
  close(o?: { code?: number; reason?: string; force?: boolean }): Promise<unknown>;
  call(method: string, params: unknown): Promise<unknown>;
  handle(method: string, fn: (c: { params: Record<string, unknown> }) => unknown): void;
  on(event: string, fn: (...a: never[]) => void): unknown;
  readonly state: number;
}

/**
 * A simulated OCPP charge point (1.6J or 2.0.1) with a car behind each connector: it dials the hub
 * like a real wallbox, boots, starts a transaction when a car plugs in, charges at the power its
 * charging profiles allow and reports meter values. With `connectors: 2` it is one charger with two
 * connectors (1.6 connectorId 1 and 2, 2.0.1 EVSE 1 and 2) on one connection, each with its own car,
 * transactions, profiles and status. Its client validates what the hub sends against the OCPP schemas.
 */
export class SimChargePoint {
  private client?: RpcClientLike;
  private booted = false;
  private sampleIntervalS: number;
  private sinceMeterMs = 0;
  /** Profiles set on connector / EVSE 0: the charge point's cap, and defaults for every connector. */
  private stationProfiles: StoredProfile[] = [];
  private readonly connectors: SimConnector[];
  readonly received: { action: string; params: unknown }[] = [];

  constructor(readonly o: SimChargePointOptions) {
    this.sampleIntervalS = o.meterIntervalS;
    this.connectors = Array.from({ length: Math.max(1, o.connectors ?? 1) }, (_, i) => new SimConnector(this, i + 1));
  }

  /** Connector (1.6) / EVSE (2.0.1) `n`, counted from 1. */
  connector(n: number): SimConnector {
    const c = this.connectors[n - 1];
    if (!c) throw new RangeError(`the simulated charge point has ${this.connectors.length} connector(s), not ${n}`);
    return c;
  }

  get transactionId() {
    return this.connectors[0].transactionId;
  }
  get chargingPowerW() {
    return this.connectors[0].chargingPowerW;
  }
  get energyRegisterWh() {
    return this.connectors[0].energyRegisterWh;
  }
  get connected() {
    return this.client?.state === 1;
  }

  now() {
    return this.o.clock.now();
  }

  get stationWide(): readonly StoredProfile[] {
    return this.stationProfiles;
  }

  async connect(): Promise<void> {
    const client = new RPCClient({
      endpoint: this.o.endpoint.replace(/\/+$/, ''),
      identity: this.o.identity,
      password: this.o.password ?? null,
      protocols: [this.o.protocol],
      // a real charge point's firmware checks what the central system sends
      strictMode: true,
      reconnect: true,
      callTimeoutMs: 15_000,
      backoff: { initialDelay: 500, maxDelay: 5000, factor: 2, randomisationFactor: 0.25 },
    } as unknown as ConstructorParameters<typeof RPCClient>[0]) as unknown as RpcClientLike;
    this.client = client;
    this.handlers(client);
    client.on('open', () => {
      void this.onOpen().catch((err: unknown) => this.o.log.warn({ err: (err as Error).message }, `simulated charge point ${this.o.identity}: ${(err as Error).message}`));
    });
    await client.connect();
  }

  private async onOpen() {
    if (!this.booted) {
      const model = this.o.model ?? 'SimBox';
      const vendor = this.o.vendor ?? 'homeflex';
      const res = (await this.call('BootNotification', this.o.protocol === 'ocpp1.6' ? { chargePointVendor: vendor, chargePointModel: model, firmwareVersion: '1.0' } : { reason: 'PowerUp', chargingStation: { vendorName: vendor, model } })) as { status?: string };
      this.booted = res.status === 'Accepted';
    }
    for (const c of this.connectors) await c.sendStatus();
  }

  async close() {
    await this.client?.close({ code: 1000, reason: 'simulated charge point stopping' }).catch(() => undefined);
  }

  async call(action: string, params: unknown) {
    if (!this.client) throw new Error('not connected');
    return this.client.call(action, params);
  }

  /** The connector a hub request names (1.6 connectorId, 2.0.1 evseId or evse.id); 0 and absent mean the charge point. */
  private target(params: Record<string, unknown>): number {
    const n = params.connectorId ?? params.evseId ?? (params.evse as { id?: number } | undefined)?.id;
    return typeof n === 'number' ? n : 0;
  }

  private handlers(c: RpcClientLike) {
    const note = (action: string, params: unknown) => this.received.push({ action, params });
    c.handle('GetConfiguration', ({ params }) => {
      note('GetConfiguration', params);
      const keys = [
        { key: 'MeterValueSampleInterval', readonly: false, value: String(this.sampleIntervalS) },
        { key: 'ChargingScheduleAllowedChargingRateUnit', readonly: true, value: 'Current,Power' },
        { key: 'ChargingScheduleMaxPeriods', readonly: true, value: '96' },
        { key: 'ChargeProfileMaxStackLevel', readonly: true, value: '8' },
        { key: 'NumberOfConnectors', readonly: true, value: String(this.connectors.length) },
      ];
      return { configurationKey: keys };
    });
    c.handle('ChangeConfiguration', ({ params }) => {
      note('ChangeConfiguration', params);
      if (params.key === 'MeterValueSampleInterval') this.sampleIntervalS = Math.max(1, Number(params.value) || this.sampleIntervalS);
      return { status: 'Accepted' };
    });
    c.handle('SetVariables', ({ params }) => {
      note('SetVariables', params);
      const data = params.setVariableData as { component: { name: string }; variable: { name: string }; attributeValue: string }[];
      for (const d of data) if (d.variable.name === 'TxUpdatedInterval') this.sampleIntervalS = Math.max(1, Number(d.attributeValue) || this.sampleIntervalS);
      return { setVariableResult: data.map((d) => ({ attributeStatus: 'Accepted', component: d.component, variable: d.variable })) };
    });
    c.handle('SetChargingProfile', ({ params }) => {
      note('SetChargingProfile', params);
      const p = this.o.protocol === 'ocpp1.6' ? profile16(params) : profile201(params);
      const n = this.target(params);
      if (n > this.connectors.length) return { status: 'Rejected' };
      const connector = n > 0 ? this.connectors[n - 1] : undefined;
      if (p.purpose === 'TxProfile' && (!connector?.transactionId || (p.transactionId !== undefined && p.transactionId !== connector.transactionId))) return { status: 'Rejected' };
      // a chargingProfileId is unique in the charge point; a purpose and stack level once per connector
      const keep = (list: StoredProfile[], here: boolean) => list.filter((x) => x.chargingProfileId !== p.chargingProfileId && !(here && x.purpose === p.purpose && x.stackLevel === p.stackLevel));
      this.stationProfiles = keep(this.stationProfiles, !connector);
      for (const x of this.connectors) x.profiles = keep(x.profiles, x === connector);
      if (connector) connector.profiles.push(p);
      else this.stationProfiles.push(p);
      return { status: 'Accepted' };
    });
    c.handle('ClearChargingProfile', ({ params }) => {
      note('ClearChargingProfile', params);
      const id = params.id ?? params.chargingProfileId;
      const count = () => this.stationProfiles.length + this.connectors.reduce((n, x) => n + x.profiles.length, 0);
      const before = count();
      const clear = (list: StoredProfile[]) => (id === undefined ? [] : list.filter((x) => x.chargingProfileId !== id));
      this.stationProfiles = clear(this.stationProfiles);
      for (const x of this.connectors) x.profiles = clear(x.profiles);
      return { status: count() < before ? 'Accepted' : 'Unknown' };
    });
    c.handle('GetCompositeSchedule', ({ params }) => {
      note('GetCompositeSchedule', params);
      const n = Math.max(1, this.target(params));
      const w = this.connector(n).allowedW(this.now());
      const unit = (params.chargingRateUnit as string | undefined) ?? 'A';
      const limit = unit === 'W' ? Math.floor(w) : Math.floor((w / (this.o.voltage * this.o.phases)) * 10) / 10;
      const schedule = { duration: Number(params.duration), chargingRateUnit: unit, chargingSchedulePeriod: [{ startPeriod: 0, limit }] };
      return this.o.protocol === 'ocpp1.6'
        ? { status: 'Accepted', connectorId: n, scheduleStart: ocppTime(this.now()), chargingSchedule: { ...schedule, startSchedule: ocppTime(this.now()) } }
        : { status: 'Accepted', schedule: { evseId: n, scheduleStart: ocppTime(this.now()), ...schedule } };
    });
    c.handle('TriggerMessage', ({ params }) => {
      note('TriggerMessage', params);
      const what = params.requestedMessage as string;
      if (what !== 'StatusNotification' && what !== 'MeterValues' && what !== 'Heartbeat' && what !== 'BootNotification') return { status: 'NotImplemented' };
      const n = this.target(params);
      const which = n > 0 ? this.connectors.slice(n - 1, n) : this.connectors;
      setImmediate(() => {
        const send =
          what === 'StatusNotification'
            ? Promise.all(which.map((x) => x.sendStatus()))
            : what === 'MeterValues'
              ? Promise.all(which.map((x) => x.sendMeterValues('Trigger')))
              : what === 'Heartbeat'
                ? this.call('Heartbeat', {})
                : this.onOpen();
        void Promise.resolve(send).catch(() => undefined);
      });
      return { status: 'Accepted' };
    });
    const remoteStart = ({ params }: { params: Record<string, unknown> }) => {
      note(this.o.protocol === 'ocpp1.6' ? 'RemoteStartTransaction' : 'RequestStartTransaction', params);
      const connector = this.connectors[Math.max(1, this.target(params)) - 1];
      if (!connector || !connector.plugged || connector.transactionId) return { status: 'Rejected' };
      const tag = this.o.protocol === 'ocpp1.6' ? String(params.idTag) : String((params.idToken as { idToken: string }).idToken);
      setImmediate(() => void connector.startTransaction(tag).catch(() => undefined));
      return { status: 'Accepted' };
    };
    const remoteStop = ({ params }: { params: Record<string, unknown> }) => {
      note(this.o.protocol === 'ocpp1.6' ? 'RemoteStopTransaction' : 'RequestStopTransaction', params);
      const connector = this.connectors.find((x) => x.transactionId !== undefined && String(params.transactionId) === x.transactionId);
      if (!connector) return { status: 'Rejected' };
      setImmediate(() => void connector.stopTransaction('Remote').catch(() => undefined));
      return { status: 'Accepted' };
    };
    c.handle('RemoteStartTransaction', remoteStart);
    c.handle('RequestStartTransaction', remoteStart);
    c.handle('RemoteStopTransaction', remoteStop);
    c.handle('RequestStopTransaction', remoteStop);
  }

  /** OCPP's composite rule for connector 1 (see SimConnector.allowedW). */
  allowedW(t: EpochMs): number {
    return this.connectors[0].allowedW(t);
  }

  /** Meter values of connector 1 (and, with mainMeter, of the whole charge point). */
  async sendMeterValues(reason: 'Sample.Periodic' | 'Trigger' | 'ChargingStateChanged' = 'Sample.Periodic') {
    await this.connectors[0].sendMeterValues(reason);
  }

  /** The car at connector 1 arrives: plug in, authorise, start a transaction. */
  plugIn(socPct: number) {
    return this.connectors[0].plugIn(socPct);
  }

  /** The car at connector 1 leaves: stop the transaction and free the connector. */
  unplug() {
    return this.connectors[0].unplug();
  }

  /** Advances every connector's physics by `dtMs`, then reports meter values when the sample interval is due. */
  async step(dtMs: number) {
    for (const c of this.connectors) await c.step(dtMs);
    this.sinceMeterMs += dtMs;
    if (this.sinceMeterMs >= this.sampleIntervalS * 1000) {
      this.sinceMeterMs = 0;
      for (const c of this.connectors) await c.sendMeterValues();
      if (this.o.mainMeter) await this.sendMainMeter();
    }
  }

  /** Connector / EVSE 0: the charge point's own meter, the sum of its connectors. */
  async sendMainMeter() {
    if (!this.connected) return;
    const timestamp = ocppTime(this.now());
    const registerWh = this.connectors.reduce((n, c) => n + c.energyRegisterWh, 0);
    const powerW = this.connectors.reduce((n, c) => n + c.chargingPowerW, 0);
    const sampled = [
      { value: registerWh.toFixed(1), context: 'Sample.Periodic', measurand: 'Energy.Active.Import.Register', unit: 'Wh', location: 'Inlet' },
      { value: powerW.toFixed(0), context: 'Sample.Periodic', measurand: 'Power.Active.Import', unit: 'W', location: 'Inlet' },
    ];
    if (this.o.protocol === 'ocpp1.6') await this.call('MeterValues', { connectorId: 0, meterValue: [{ timestamp, sampledValue: sampled }] });
    else await this.call('MeterValues', { evseId: 0, meterValue: [{ timestamp, sampledValue: sampled.map((s) => ({ value: Number(s.value), context: s.context, measurand: s.measurand, location: s.location, unitOfMeasure: { unit: s.unit } })) }] });
  }
}

function profile16(params: Record<string, unknown>): StoredProfile {
  const p = params.csChargingProfiles as Record<string, unknown>;
  return {
    chargingProfileId: p.chargingProfileId as number,
    stackLevel: p.stackLevel as number,
    purpose: p.chargingProfilePurpose as string,
    transactionId: p.transactionId === undefined ? undefined : String(p.transactionId),
    validTo: p.validTo as string | undefined,
    chargingSchedule: p.chargingSchedule as StoredProfile['chargingSchedule'],
  };
}

function profile201(params: Record<string, unknown>): StoredProfile {
  const p = params.chargingProfile as Record<string, unknown>;
  const purpose = p.chargingProfilePurpose === 'ChargingStationMaxProfile' ? 'ChargePointMaxProfile' : (p.chargingProfilePurpose as string);
  return {
    chargingProfileId: p.id as number,
    stackLevel: p.stackLevel as number,
    purpose,
    transactionId: p.transactionId as string | undefined,
    validTo: p.validTo as string | undefined,
    chargingSchedule: (p.chargingSchedule as StoredProfile['chargingSchedule'][])[0],
  };
}

/** One connector / EVSE of the simulated charge point, with the car behind it. */
export class SimConnector {
  profiles: StoredProfile[] = [];
  private registerWh: number;
  private powerW = 0;
  private socWh = 0;
  plugged = false;
  private txId?: string;
  private txStart = 0;
  private seqNo = 0;
  private status = 'Available';
  private errorCode = 'NoError';

  constructor(private readonly cp: SimChargePoint, readonly id: number) {
    this.registerWh = cp.o.store?.get<number>(this.registerKey) ?? 1_000_000;
  }

  private get o() {
    return this.cp.o;
  }
  private get registerKey() {
    return this.id === 1 ? 'register_wh' : `register_wh_${this.id}`;
  }
  get transactionId() {
    return this.txId;
  }
  get chargingPowerW() {
    return this.powerW;
  }
  get energyRegisterWh() {
    return this.registerWh;
  }
  /** The charging profiles that apply here: this connector's, then the charge point's (connector 0). */
  get allProfiles(): readonly StoredProfile[] {
    return [...this.profiles, ...this.cp.stationWide];
  }

  /** OCPP's composite rule, simplified: the TxProfile (else TxDefaultProfile) of the highest stack level that applies now, capped by ChargePointMaxProfile. */
  allowedW(t: EpochMs): number {
    const maxW = this.o.maxCurrentA * this.o.voltage * this.o.phases;
    const at = (purpose: string, list: readonly StoredProfile[]) => {
      const candidates = list.filter((p) => p.purpose === purpose && (purpose !== 'TxProfile' || p.transactionId === undefined || p.transactionId === this.txId)).sort((a, b) => b.stackLevel - a.stackLevel);
      for (const p of candidates) {
        const w = profileWattsAt(p, t, this.txStart, this.o.voltage, this.o.phases);
        if (w !== undefined) return w;
      }
      return undefined;
    };
    const tx = this.txId ? at('TxProfile', this.profiles) : undefined;
    // a connector's own default comes before the charge point's
    const w = tx ?? at('TxDefaultProfile', this.profiles) ?? at('TxDefaultProfile', this.cp.stationWide) ?? maxW;
    const cap = at('ChargePointMaxProfile', this.allProfiles) ?? maxW;
    return Math.min(w, cap, maxW);
  }

  async sendStatus() {
    if (this.o.protocol === 'ocpp1.6') {
      await this.cp.call('StatusNotification', { connectorId: this.id, errorCode: this.errorCode, status: this.status, timestamp: ocppTime(this.cp.now()) });
    } else {
      const connectorStatus = this.status === 'Faulted' ? 'Faulted' : this.status === 'Available' ? 'Available' : 'Occupied';
      await this.cp.call('StatusNotification', { timestamp: ocppTime(this.cp.now()), connectorStatus, evseId: this.id, connectorId: 1 });
    }
  }

  private async setStatus(status: string) {
    if (status === this.status) return;
    this.status = status;
    if (!this.cp.connected) return;
    // 2.0.1 tells charging states through the transaction, StatusNotification only says Occupied
    if (this.o.protocol === 'ocpp2.0.1' && this.txId && /^(Charging|SuspendedEV|SuspendedEVSE)$/.test(status)) await this.sendMeterValues('ChargingStateChanged');
    else await this.sendStatus();
  }

  /** The connector breaks (1.6 errorCode, 2.0.1 Faulted): it delivers nothing until `repair`. */
  async fault(errorCode = 'GroundFailure') {
    this.errorCode = errorCode;
    this.powerW = 0;
    await this.setStatus('Faulted');
  }

  async repair() {
    this.errorCode = 'NoError';
    await this.setStatus(this.txId ? 'SuspendedEVSE' : this.plugged ? 'Preparing' : 'Available');
  }

  private chargingState() {
    return this.status === 'Charging' || this.status === 'SuspendedEV' || this.status === 'SuspendedEVSE' ? this.status : 'EVConnected';
  }

  private sampled16(context: string): { value: string; context: string; measurand: string; unit: string; phase?: string; location: string }[] {
    const phaseA = this.powerW / (this.o.voltage * this.o.phases);
    const phases = (['L1', 'L2', 'L3'] as const).slice(0, this.o.phases);
    return [
      { value: this.registerWh.toFixed(1), context, measurand: 'Energy.Active.Import.Register', unit: 'Wh', location: 'Outlet' },
      { value: this.powerW.toFixed(0), context, measurand: 'Power.Active.Import', unit: 'W', location: 'Outlet' },
      ...phases.map((phase) => ({ value: phaseA.toFixed(1), context, measurand: 'Current.Import', unit: 'A', phase, location: 'Outlet' })),
      { value: this.socPct().toFixed(0), context, measurand: 'SoC', unit: 'Percent', location: 'EV' },
    ];
  }

  private sampled201(context: string) {
    return this.sampled16(context).map((s) => ({ value: Number(s.value), context, measurand: s.measurand, ...(s.phase ? { phase: s.phase } : {}), location: s.location, unitOfMeasure: { unit: s.unit } }));
  }

  private socPct() {
    return this.plugged ? Math.min(100, (this.socWh / this.o.capacityWh) * 100) : 0;
  }

  async sendMeterValues(reason: 'Sample.Periodic' | 'Trigger' | 'ChargingStateChanged' = 'Sample.Periodic') {
    if (!this.cp.connected) return;
    const context = reason === 'Trigger' ? 'Trigger' : 'Sample.Periodic';
    const timestamp = ocppTime(this.cp.now());
    if (this.o.protocol === 'ocpp1.6') {
      await this.cp.call('MeterValues', { connectorId: this.id, ...(this.txId ? { transactionId: Number(this.txId) } : {}), meterValue: [{ timestamp, sampledValue: this.sampled16(context) }] });
    } else if (this.txId) {
      await this.cp.call('TransactionEvent', {
        eventType: 'Updated',
        timestamp,
        triggerReason: reason === 'Trigger' ? 'Trigger' : reason === 'ChargingStateChanged' ? 'ChargingStateChanged' : 'MeterValuePeriodic',
        seqNo: this.seqNo++,
        transactionInfo: { transactionId: this.txId, chargingState: this.chargingState() },
        evse: { id: this.id, connectorId: 1 },
        meterValue: [{ timestamp, sampledValue: this.sampled201(context) }],
      });
    } else {
      await this.cp.call('MeterValues', { evseId: this.id, meterValue: [{ timestamp, sampledValue: this.sampled201(context) }] });
    }
  }

  /** The car arrives: plug in, authorise, start a transaction. */
  async plugIn(socPct: number) {
    this.plugged = true;
    this.socWh = (socPct / 100) * this.o.capacityWh;
    await this.setStatus('Preparing');
    await this.startTransaction(this.o.idTag);
  }

  async startTransaction(idTag: string) {
    if (this.txId || !this.plugged) return;
    const timestamp = ocppTime(this.cp.now());
    if (this.o.protocol === 'ocpp1.6') {
      const auth = (await this.cp.call('Authorize', { idTag })) as { idTagInfo: { status: string } };
      if (auth.idTagInfo.status !== 'Accepted') return;
      const res = (await this.cp.call('StartTransaction', { connectorId: this.id, idTag, meterStart: Math.round(this.registerWh), timestamp })) as { transactionId: number };
      this.txId = String(res.transactionId);
    } else {
      this.txId = randomUUID();
      this.seqNo = 0;
      await this.cp.call('TransactionEvent', {
        eventType: 'Started',
        timestamp,
        triggerReason: 'Authorized',
        seqNo: this.seqNo++,
        transactionInfo: { transactionId: this.txId, chargingState: 'EVConnected' },
        idToken: { idToken: idTag, type: 'ISO14443' },
        evse: { id: this.id, connectorId: 1 },
        meterValue: [{ timestamp, sampledValue: this.sampled201('Transaction.Begin') }],
      });
    }
    this.txStart = this.cp.now();
    this.profiles = this.profiles.filter((p) => p.purpose !== 'TxProfile');
    if (this.status !== 'Faulted') await this.setStatus('Charging');
  }

  async stopTransaction(reason: string) {
    const id = this.txId;
    if (!id) return;
    this.txId = undefined;
    const timestamp = ocppTime(this.cp.now());
    this.powerW = 0;
    if (this.o.protocol === 'ocpp1.6') {
      await this.cp.call('StopTransaction', { transactionId: Number(id), meterStop: Math.round(this.registerWh), timestamp, reason });
    } else {
      await this.cp.call('TransactionEvent', {
        eventType: 'Ended',
        timestamp,
        triggerReason: reason === 'Remote' ? 'RemoteStop' : 'EVCommunicationLost',
        seqNo: this.seqNo++,
        transactionInfo: { transactionId: id, stoppedReason: reason === 'Remote' ? 'Remote' : 'EVDisconnected' },
        evse: { id: this.id, connectorId: 1 },
        meterValue: [{ timestamp, sampledValue: this.sampled201('Transaction.End') }],
      });
    }
    this.profiles = this.profiles.filter((p) => p.purpose !== 'TxProfile');
    if (this.status !== 'Faulted') await this.setStatus(this.plugged ? 'Finishing' : 'Available');
  }

  /** The car leaves: stop the transaction and free the connector. */
  async unplug() {
    this.plugged = false;
    await this.stopTransaction('EVDisconnected');
    if (this.status !== 'Faulted') await this.setStatus('Available');
  }

  /** Advances the physics by `dtMs` at the power held during it, then picks the power for the next step. */
  async step(dtMs: number) {
    if (dtMs > 0 && this.powerW > 0) {
      const wh = (this.powerW * dtMs) / 3_600_000;
      this.registerWh += wh;
      this.socWh = Math.min(this.o.capacityWh, this.socWh + wh * 0.92);
      void this.o.store?.set(this.registerKey, this.registerWh);
    }
    if (this.status === 'Faulted') {
      this.powerW = 0;
      return;
    }
    const minW = this.o.minCurrentA * this.o.voltage * this.o.phases;
    const allowed = this.txId && this.socWh < this.o.capacityWh ? this.allowedW(this.cp.now()) : 0;
    this.powerW = allowed >= minW ? Math.round(allowed) : 0;
    if (this.txId) await this.setStatus(this.powerW > 0 ? 'Charging' : this.socWh >= this.o.capacityWh ? 'SuspendedEV' : 'SuspendedEVSE');
  }
}

// ---------------------------------------------------------------- the demo's simulated charge point

export interface SimOcppCpConfig extends DeviceConfigBase {
  identity: string;
  password?: string;
  protocol: OcppProtocol;
  url?: string;
  path: string;
  capacity_wh: number;
  max_current_a: number;
  min_current_a: number;
  phases: 1 | 3;
  voltage: number;
  arrive: string;
  leave: string;
  arrival_soc_pct: number;
  meter_interval_s: number;
  id_tag: string;
  tick_s: number;
  connectors: number;
}

const HHMM = { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' };

export const simOcppChargePoint = defineAdapter<SimOcppCpConfig>({
  id: 'sim_ocpp_cp',
  simulatesPeer: true,
  description: 'Simulated OCPP charge point with a car: dials the hub’s own OCPP port like a real wallbox (no device of its own; pair it with an ocpp device)',
  configSchema: {
    required: ['identity'],
    properties: {
      identity: { type: 'string', minLength: 1, description: 'The identity it dials with (the ocpp device’s identity)' },
      password: { type: 'string', description: 'Basic auth password (the ocpp device’s password)' },
      protocol: { enum: ['ocpp1.6', 'ocpp2.0.1'], default: 'ocpp1.6' },
      url: { type: 'string', pattern: '^wss?://', description: 'Central system URL without the identity; default the hub’s own connections.ocpp on 127.0.0.1' },
      path: { type: 'string', default: '/ocpp', description: 'connections.ocpp.path, when url is left out' },
      capacity_wh: { type: 'number', minimum: 1000, default: 60000 },
      max_current_a: { type: 'number', minimum: 6, maximum: 80, default: 16 },
      min_current_a: { type: 'number', minimum: 0, maximum: 32, default: 6 },
      phases: { enum: [1, 3], default: 3 },
      voltage: { type: 'number', default: 230 },
      arrive: { ...HHMM, default: '18:00', description: 'Local time the car plugs in' },
      leave: { ...HHMM, default: '07:30', description: 'Local time the car leaves' },
      arrival_soc_pct: { type: 'number', minimum: 0, maximum: 100, default: 30 },
      meter_interval_s: { type: 'integer', minimum: 1, default: 60 },
      id_tag: { type: 'string', minLength: 1, maxLength: 20, default: 'SIMTAG' },
      tick_s: { type: 'number', minimum: 0.1, maximum: 3600, default: 10 },
      connectors: { type: 'integer', minimum: 1, maximum: 8, default: 1, description: 'Connectors (1.6) / EVSEs (2.0.1) on one connection, a car at each (pair each with an ocpp device: same identity, connector 1, 2, …)' },
    },
  },
  create(ctx, config) {
    let cp: SimChargePoint | undefined;
    let stopTick: (() => void) | undefined;
    let last = 0;
    let busy = false;
    const toMin = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
    const arrive = toMin(config.arrive ?? '18:00');
    const leave = toMin(config.leave ?? '07:30');
    const isHome = () => {
      const d = DateTime.fromMillis(ctx.clock.now(), { zone: ctx.site.timezone });
      const m = d.hour * 60 + d.minute;
      return arrive > leave ? m >= arrive || m < leave : m >= arrive && m < leave;
    };
    let plugged = false;
    const tick = async () => {
      if (!cp || busy) return;
      busy = true;
      try {
        const now = ctx.clock.now();
        const home = isHome();
        if (cp.connected && home && !plugged) {
          plugged = true;
          for (let n = 1; n <= (config.connectors ?? 1); n++) await cp.connector(n).plugIn(config.arrival_soc_pct ?? 30);
        } else if (cp.connected && !home && plugged) {
          plugged = false;
          for (let n = 1; n <= (config.connectors ?? 1); n++) await cp.connector(n).unplug();
        }
        await cp.step(now - last);
        last = now;
      } catch (err) {
        ctx.log.debug({ err: (err as Error).message }, 'simulated charge point step failed');
      } finally {
        busy = false;
      }
    };
    return {
      devices: [],
      async start(signal) {
        let endpoint = config.url;
        if (!endpoint) {
          const transport = ctx.transports.ocpp();
          await transport.ready();
          endpoint = `ws://127.0.0.1:${transport.port}${config.path ?? '/ocpp'}`;
        }
        cp = new SimChargePoint({
          identity: config.identity,
          password: config.password,
          protocol: config.protocol ?? 'ocpp1.6',
          endpoint,
          clock: ctx.clock,
          log: ctx.log,
          store: ctx.store,
          phases: config.phases ?? 3,
          voltage: config.voltage ?? 230,
          maxCurrentA: config.max_current_a ?? 16,
          minCurrentA: config.min_current_a ?? 6,
          capacityWh: config.capacity_wh ?? 60000,
          idTag: config.id_tag ?? 'SIMTAG',
          meterIntervalS: config.meter_interval_s ?? 60,
          connectors: config.connectors ?? 1,
        });
        last = ctx.clock.now();
        // the hub's device may claim its identity after this adapter started: keep dialling like a real charger
        const dial = async () => {
          for (let attempt = 0; !signal.aborted; attempt++) {
            try {
              await cp!.connect();
              return;
            } catch (err) {
              if (attempt === 0) ctx.log.warn({ err: (err as Error).message }, `simulated charge point ${config.identity} cannot connect yet; retrying`);
              await ctx.clock.sleep(2000, signal).catch(() => undefined);
            }
          }
        };
        void dial();
        stopTick = ctx.clock.every((config.tick_s ?? 10) * 1000, () => void tick());
      },
      async stop() {
        stopTick?.();
        await cp?.close();
      },
    };
  },
});
