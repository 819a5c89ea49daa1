import { RPCClient } from 'ocpp-rpc';
import { countError, timed } from './hub-process.js';

/** A charger's call timeout: chargers give a call 30–60 s before they give up and redial. */
export const CALL_TIMEOUT_MS = 30_000;
const PHASE_A = 16;
const VOLTAGE = 230;
/** Power of the car behind every load charger: 3 × 16 A at 230 V. */
export const CHARGING_W = PHASE_A * VOLTAGE * 3;

export const chargerIdentity = (i: number) => `CP${String(i + 1).padStart(4, '0')}`;
export const chargerPassword = (i: number) => `bench-${chargerIdentity(i)}-secret`;
const ocppTime = (t: number) => new Date(t).toISOString();

/** One `ocpp` device per load charger, with its password and meter interval, as hub YAML lines. */
export const chargerDeviceLines = (count: number, meterIntervalS: number) =>
  Array.from(
    { length: count },
    (_, i) => `  - { id: ${chargerIdentity(i).toLowerCase()}, adapter: ocpp, identity: ${chargerIdentity(i)}, password: ${chargerPassword(i)}, meter_interval_s: ${meterIntervalS} }`,
  );

interface RpcClientLike {
  connect(): Promise<unknown>;
  close(o?: { code?: number; reason?: string; force?: boolean }): Promise<unknown>;
  call(method: string, params: unknown): Promise<unknown>;
  handle(method: string, fn: (c: { params: Record<string, unknown> }) => unknown): void;
  on(event: string, fn: (...a: never[]) => void): unknown;
  readonly state: number;
}

/**
 * One benchmark charger: a real OCPP 1.6J client (ocpp-rpc, strict mode, Basic auth) with a car
 * charging at 3 × 16 A, answering the hub's configuration, trigger and profile calls like a wallbox.
 */
export class LoadCharger {
  readonly client: RpcClientLike;
  registerWh: number;
  transactionId?: number;
  sampleIntervalS = 60;
  hubCalls = new Map<string, number>();
  disconnects = 0;
  private opened = false;

  constructor(readonly index: number, endpoint: string) {
    this.registerWh = 1_000_000 + index * 1000;
    this.client = new RPCClient({
      endpoint,
      identity: chargerIdentity(index),
      password: chargerPassword(index),
      protocols: ['ocpp1.6'],
      // a charger's firmware checks what the central system sends: invalid replies count as errors
      strictMode: true,
      reconnect: false,
      callTimeoutMs: CALL_TIMEOUT_MS,
    } as unknown as ConstructorParameters<typeof RPCClient>[0]) as unknown as RpcClientLike;
    this.client.on('open', () => (this.opened = true));
    this.client.on('close', () => {
      if (this.opened) this.disconnects++;
    });
    const seen = (action: string) => this.hubCalls.set(action, (this.hubCalls.get(action) ?? 0) + 1);
    this.client.handle('GetConfiguration', () => {
      seen('GetConfiguration');
      return {
        configurationKey: [
          { key: 'MeterValueSampleInterval', readonly: false, value: String(this.sampleIntervalS) },
          { key: 'MeterValuesSampledData', readonly: false, value: 'Energy.Active.Import.Register' },
          { key: 'ChargingScheduleAllowedChargingRateUnit', readonly: true, value: 'Current,Power' },
          { key: 'ChargingScheduleMaxPeriods', readonly: true, value: '96' },
          { key: 'ChargeProfileMaxStackLevel', readonly: true, value: '8' },
          { key: 'NumberOfConnectors', readonly: true, value: '1' },
        ],
      };
    });
    this.client.handle('ChangeConfiguration', ({ params }) => {
      seen('ChangeConfiguration');
      if (params.key === 'MeterValueSampleInterval') this.sampleIntervalS = Number(params.value);
      return { status: 'Accepted' };
    });
    this.client.handle('TriggerMessage', ({ params }) => {
      seen('TriggerMessage');
      // answered first, sent after, like a real charger
      if (params.requestedMessage === 'StatusNotification') setImmediate(() => void this.status(this.transactionId ? 'Charging' : 'Available').catch(() => undefined));
      else if (params.requestedMessage === 'MeterValues') setImmediate(() => void this.meterValues('Trigger').catch(() => undefined));
      else return { status: 'NotImplemented' };
      return { status: 'Accepted' };
    });
    this.client.handle('SetChargingProfile', () => (seen('SetChargingProfile'), { status: 'Accepted' }));
    this.client.handle('ClearChargingProfile', () => (seen('ClearChargingProfile'), { status: 'Accepted' }));
  }

  /** Whether the hub has finished configuring this charger after its boot (its last setup call is a TriggerMessage). */
  get configuredByHub() {
    return (this.hubCalls.get('TriggerMessage') ?? 0) >= 1;
  }

  status(status: string) {
    return this.client.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status, timestamp: ocppTime(Date.now()) });
  }

  /** BootNotification, Preparing, StartTransaction, Charging: each call timed into `latencies`, failures into `errors`. */
  async bootAndStart(latencies: number[], errors: Map<string, number>) {
    const boot = (await timed(latencies, errors, () => this.client.call('BootNotification', { chargePointVendor: 'homeflex-bench', chargePointModel: 'LoadBox', firmwareVersion: '1.0' }))) as { status?: string } | undefined;
    if (boot?.status !== 'Accepted') countError(errors, `boot ${boot?.status ?? 'failed'}`);
    await timed(latencies, errors, () => this.status('Preparing'));
    const start = (await timed(latencies, errors, () => this.client.call('StartTransaction', { connectorId: 1, idTag: `TAG${this.index}`, meterStart: Math.round(this.registerWh), timestamp: ocppTime(Date.now()) }))) as { transactionId?: number } | undefined;
    this.transactionId = start?.transactionId;
    await timed(latencies, errors, () => this.status('Charging'));
  }

  /** Advances the energy register by `seconds` of charging. */
  charge(seconds: number) {
    this.registerWh += (CHARGING_W * seconds) / 3600;
  }

  meterValues(context: 'Sample.Periodic' | 'Trigger' = 'Sample.Periodic') {
    const current = PHASE_A.toFixed(1);
    const sampledValue = [
      { value: this.registerWh.toFixed(1), context, measurand: 'Energy.Active.Import.Register', unit: 'Wh', location: 'Outlet' },
      { value: String(CHARGING_W), context, measurand: 'Power.Active.Import', unit: 'W', location: 'Outlet' },
      ...['L1', 'L2', 'L3'].map((phase) => ({ value: current, context, measurand: 'Current.Import', unit: 'A', phase, location: 'Outlet' })),
      { value: '55', context, measurand: 'SoC', unit: 'Percent', location: 'EV' },
    ];
    return this.client.call('MeterValues', { connectorId: 1, ...(this.transactionId ? { transactionId: this.transactionId } : {}), meterValue: [{ timestamp: ocppTime(Date.now()), sampledValue }] });
  }

  close() {
    return this.client.close({ code: 1000, reason: 'bench done', force: true }).catch(() => undefined);
  }
}
