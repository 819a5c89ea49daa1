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
 * A simulated OCPP charge point (1.6J or 2.0.1) with a car: it dials the hub like a real wallbox,
 * boots, starts a transaction when the car plugs in, charges at the power its charging profiles
 * allow and reports meter values. Its client validates what the hub sends against the OCPP schemas.
 */
export class SimChargePoint {
  private client?: RpcClientLike;
  private registerWh: number;
  private powerW = 0;
  private socWh = 0;
  private plugged = false;
  private txId?: string;
  private txStart = 0;
  private seqNo = 0;
  private profiles: StoredProfile[] = [];
  private sinceMeterMs = 0;
  private status = 'Available';
  private booted = false;
  private sampleIntervalS: number;
  readonly received: { action: string; params: unknown }[] = [];

  constructor(private readonly o: SimChargePointOptions) {
    this.registerWh = o.store?.get<number>('register_wh') ?? 1_000_000;
    this.sampleIntervalS = o.meterIntervalS;
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
  get connected() {
    return this.client?.state === 1;
  }

  private now() {
    return this.o.clock.now();
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
    await this.sendStatus();
  }

  async close() {
    await this.client?.close({ code: 1000, reason: 'simulated charge point stopping' }).catch(() => undefined);
  }

  private async call(action: string, params: unknown) {
    if (!this.client) throw new Error('not connected');
    return this.client.call(action, params);
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
        { key: 'NumberOfConnectors', readonly: true, value: '1' },
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
      const p = this.o.protocol === 'ocpp1.6' ? this.profile16(params) : this.profile201(params);
      if (p.purpose === 'TxProfile' && (!this.txId || (p.transactionId !== undefined && p.transactionId !== this.txId))) return { status: 'Rejected' };
      this.profiles = [...this.profiles.filter((x) => x.chargingProfileId !== p.chargingProfileId && !(x.purpose === p.purpose && x.stackLevel === p.stackLevel)), p];
      return { status: 'Accepted' };
    });
    c.handle('ClearChargingProfile', ({ params }) => {
      note('ClearChargingProfile', params);
      const id = params.id ?? params.chargingProfileId;
      const before = this.profiles.length;
      this.profiles = id === undefined ? [] : this.profiles.filter((x) => x.chargingProfileId !== id);
      return { status: this.profiles.length < before ? 'Accepted' : 'Unknown' };
    });
    c.handle('GetCompositeSchedule', ({ params }) => {
      note('GetCompositeSchedule', params);
      const w = this.allowedW(this.now());
      const unit = (params.chargingRateUnit as string | undefined) ?? 'A';
      const limit = unit === 'W' ? Math.floor(w) : Math.floor((w / (this.o.voltage * this.o.phases)) * 10) / 10;
      const schedule = { duration: Number(params.duration), chargingRateUnit: unit, chargingSchedulePeriod: [{ startPeriod: 0, limit }] };
      return this.o.protocol === 'ocpp1.6'
        ? { status: 'Accepted', connectorId: 1, scheduleStart: ocppTime(this.now()), chargingSchedule: { ...schedule, startSchedule: ocppTime(this.now()) } }
        : { status: 'Accepted', schedule: { evseId: 1, scheduleStart: ocppTime(this.now()), ...schedule } };
    });
    c.handle('TriggerMessage', ({ params }) => {
      note('TriggerMessage', params);
      const what = params.requestedMessage as string;
      if (what !== 'StatusNotification' && what !== 'MeterValues' && what !== 'Heartbeat' && what !== 'BootNotification') return { status: 'NotImplemented' };
      setImmediate(() => {
        const send = what === 'StatusNotification' ? this.sendStatus() : what === 'MeterValues' ? this.sendMeterValues('Trigger') : what === 'Heartbeat' ? this.call('Heartbeat', {}) : this.onOpen();
        void Promise.resolve(send).catch(() => undefined);
      });
      return { status: 'Accepted' };
    });
    const remoteStart = ({ params }: { params: Record<string, unknown> }) => {
      note(this.o.protocol === 'ocpp1.6' ? 'RemoteStartTransaction' : 'RequestStartTransaction', params);
      if (!this.plugged || this.txId) return { status: 'Rejected' };
      const tag = this.o.protocol === 'ocpp1.6' ? String(params.idTag) : String((params.idToken as { idToken: string }).idToken);
      setImmediate(() => void this.startTransaction(tag).catch(() => undefined));
      return { status: 'Accepted' };
    };
    const remoteStop = ({ params }: { params: Record<string, unknown> }) => {
      note(this.o.protocol === 'ocpp1.6' ? 'RemoteStopTransaction' : 'RequestStopTransaction', params);
      if (!this.txId || String(params.transactionId) !== this.txId) return { status: 'Rejected' };
      setImmediate(() => void this.stopTransaction('Remote').catch(() => undefined));
      return { status: 'Accepted' };
    };
    c.handle('RemoteStartTransaction', remoteStart);
    c.handle('RequestStartTransaction', remoteStart);
    c.handle('RemoteStopTransaction', remoteStop);
    c.handle('RequestStopTransaction', remoteStop);
  }

  private profile16(params: Record<string, unknown>): StoredProfile {
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

  private profile201(params: Record<string, unknown>): StoredProfile {
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

  /** OCPP's composite rule, simplified: the TxProfile (else TxDefaultProfile) of the highest stack level that applies now, capped by ChargePointMaxProfile. */
  allowedW(t: EpochMs): number {
    const maxW = this.o.maxCurrentA * this.o.voltage * this.o.phases;
    const at = (purpose: string) => {
      const list = this.profiles.filter((p) => p.purpose === purpose && (purpose !== 'TxProfile' || p.transactionId === undefined || p.transactionId === this.txId)).sort((a, b) => b.stackLevel - a.stackLevel);
      for (const p of list) {
        const w = profileWattsAt(p, t, this.txStart, this.o.voltage, this.o.phases);
        if (w !== undefined) return w;
      }
      return undefined;
    };
    const tx = this.txId ? at('TxProfile') : undefined;
    const w = tx ?? at('TxDefaultProfile') ?? maxW;
    const cap = at('ChargePointMaxProfile') ?? maxW;
    return Math.min(w, cap, maxW);
  }

  private async sendStatus() {
    if (this.o.protocol === 'ocpp1.6') {
      await this.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: this.status, timestamp: ocppTime(this.now()) });
    } else {
      const connectorStatus = this.status === 'Available' ? 'Available' : 'Occupied';
      await this.call('StatusNotification', { timestamp: ocppTime(this.now()), connectorStatus, evseId: 1, connectorId: 1 });
    }
  }

  private async setStatus(status: string) {
    if (status === this.status) return;
    this.status = status;
    if (!this.connected) return;
    // 2.0.1 tells charging states through the transaction, StatusNotification only says Occupied
    if (this.o.protocol === 'ocpp2.0.1' && this.txId && /^(Charging|SuspendedEV|SuspendedEVSE)$/.test(status)) await this.sendMeterValues('ChargingStateChanged');
    else await this.sendStatus();
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
    if (!this.connected) return;
    const context = reason === 'Trigger' ? 'Trigger' : 'Sample.Periodic';
    const timestamp = ocppTime(this.now());
    if (this.o.protocol === 'ocpp1.6') {
      await this.call('MeterValues', { connectorId: 1, ...(this.txId ? { transactionId: Number(this.txId) } : {}), meterValue: [{ timestamp, sampledValue: this.sampled16(context) }] });
    } else if (this.txId) {
      await this.call('TransactionEvent', {
        eventType: 'Updated',
        timestamp,
        triggerReason: reason === 'Trigger' ? 'Trigger' : reason === 'ChargingStateChanged' ? 'ChargingStateChanged' : 'MeterValuePeriodic',
        seqNo: this.seqNo++,
        transactionInfo: { transactionId: this.txId, chargingState: this.chargingState() },
        evse: { id: 1, connectorId: 1 },
        meterValue: [{ timestamp, sampledValue: this.sampled201(context) }],
      });
    } else {
      await this.call('MeterValues', { evseId: 1, meterValue: [{ timestamp, sampledValue: this.sampled201(context) }] });
    }
  }

  /** The car arrives: plug in, authorise, start a transaction. */
  async plugIn(socPct: number) {
    this.plugged = true;
    this.socWh = (socPct / 100) * this.o.capacityWh;
    await this.setStatus('Preparing');
    await this.startTransaction(this.o.idTag);
  }

  private async startTransaction(idTag: string) {
    if (this.txId || !this.plugged) return;
    const timestamp = ocppTime(this.now());
    if (this.o.protocol === 'ocpp1.6') {
      const auth = (await this.call('Authorize', { idTag })) as { idTagInfo: { status: string } };
      if (auth.idTagInfo.status !== 'Accepted') return;
      const res = (await this.call('StartTransaction', { connectorId: 1, idTag, meterStart: Math.round(this.registerWh), timestamp })) as { transactionId: number };
      this.txId = String(res.transactionId);
    } else {
      this.txId = randomUUID();
      this.seqNo = 0;
      await this.call('TransactionEvent', {
        eventType: 'Started',
        timestamp,
        triggerReason: 'Authorized',
        seqNo: this.seqNo++,
        transactionInfo: { transactionId: this.txId, chargingState: 'EVConnected' },
        idToken: { idToken: idTag, type: 'ISO14443' },
        evse: { id: 1, connectorId: 1 },
        meterValue: [{ timestamp, sampledValue: this.sampled201('Transaction.Begin') }],
      });
    }
    this.txStart = this.now();
    this.profiles = this.profiles.filter((p) => p.purpose !== 'TxProfile');
    await this.setStatus('Charging');
  }

  private async stopTransaction(reason: string) {
    const id = this.txId;
    if (!id) return;
    this.txId = undefined;
    const timestamp = ocppTime(this.now());
    this.powerW = 0;
    if (this.o.protocol === 'ocpp1.6') {
      await this.call('StopTransaction', { transactionId: Number(id), meterStop: Math.round(this.registerWh), timestamp, reason });
    } else {
      await this.call('TransactionEvent', {
        eventType: 'Ended',
        timestamp,
        triggerReason: reason === 'Remote' ? 'RemoteStop' : 'EVCommunicationLost',
        seqNo: this.seqNo++,
        transactionInfo: { transactionId: id, stoppedReason: reason === 'Remote' ? 'Remote' : 'EVDisconnected' },
        evse: { id: 1, connectorId: 1 },
        meterValue: [{ timestamp, sampledValue: this.sampled201('Transaction.End') }],
      });
    }
    this.profiles = this.profiles.filter((p) => p.purpose !== 'TxProfile');
    await this.setStatus(this.plugged ? 'Finishing' : 'Available');
  }

  /** The car leaves: stop the transaction and free the connector. */
  async unplug() {
    this.plugged = false;
    await this.stopTransaction('EVDisconnected');
    await this.setStatus('Available');
  }

  /** Advances the physics by `dtMs` at the power held during it, then picks the power for the next step. */
  async step(dtMs: number) {
    if (dtMs > 0 && this.powerW > 0) {
      const wh = (this.powerW * dtMs) / 3_600_000;
      this.registerWh += wh;
      this.socWh = Math.min(this.o.capacityWh, this.socWh + wh * 0.92);
      void this.o.store?.set('register_wh', this.registerWh);
    }
    const minW = this.o.minCurrentA * this.o.voltage * this.o.phases;
    const allowed = this.txId && this.socWh < this.o.capacityWh ? this.allowedW(this.now()) : 0;
    this.powerW = allowed >= minW ? Math.round(allowed) : 0;
    if (this.txId) await this.setStatus(this.powerW > 0 ? 'Charging' : this.socWh >= this.o.capacityWh ? 'SuspendedEV' : 'SuspendedEVSE');
    this.sinceMeterMs += dtMs;
    if (this.sinceMeterMs >= this.sampleIntervalS * 1000) {
      this.sinceMeterMs = 0;
      await this.sendMeterValues();
    }
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
          await cp.plugIn(config.arrival_soc_pct ?? 30);
        } else if (cp.connected && !home && plugged) {
          plugged = false;
          await cp.unplug();
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
