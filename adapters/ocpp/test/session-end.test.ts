import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHub, type TestHub } from '../../../test/peers/hub.js';
import { freePort } from '../../../test/peers/mqtt.js';
import { TsChargePoint } from './harness.js';
import { jsonRequest } from '../../../test/peers/api.js';

/**
 * What a charging session leaves behind when the car goes: its energy and cost are complete as soon
 * as the stop is answered (not when the charger speaks again), and "charge now" ends with it.
 * Real chargers: ocpp-ts for 1.6J, a raw WebSocket speaking OCPP-J for 2.0.1.
 */

let th: TestHub | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await th?.stop();
  th = undefined;
});

let ocppUrl = '';
const yaml = (identity: string, port: number, target = '') => `
site: { id: home, timezone: Europe/Berlin }
tariffs: { import: { type: fixed, rate: 0.30 } }
connections:
  ocpp: { host: 127.0.0.1, port: ${port} }
devices:
  - { id: ev1, adapter: ocpp, identity: ${identity}, configure: false, boot_wait_s: 0.1${target} }
`;

const hubWith = async (identity: string, target = '') => {
  const port = await freePort();
  ocppUrl = `ws://127.0.0.1:${port}/ocpp`;
  return startHub(yaml(identity, port, target));
};

const iso = (t: number) => new Date(t).toISOString();

const api = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => jsonRequest<T>(method, `${th!.hub.url}/api/v1${path}`, body);

const sessionEnergy = async (id: string) => {
  await th!.hub.services.metering!.settled();
  const res = await api<{ total: { energy: { value: number }; tariff: { value: number } } }>('POST', `/costs/session/${id}?include_tariff=true`);
  return res.status === 200 ? res.body.total : { energy: { value: 0 }, tariff: { value: 0 } };
};

/** A 2.0.1 charging station on a bare WebSocket: sends calls, answers the hub's calls. */
class RawStation {
  private ws!: WebSocket;
  private seq = 0;
  private waiting = new Map<string, (payload: unknown) => void>();
  readonly received: { action: string; payload: Record<string, unknown> }[] = [];

  async connect(url: string, identity: string) {
    this.ws = new WebSocket(`${url}/${identity}`, ['ocpp2.0.1']);
    closers.push(() => this.ws.terminate());
    this.ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as unknown[];
      if (msg[0] === 3 || msg[0] === 4) this.waiting.get(String(msg[1]))?.(msg[0] === 3 ? msg[2] : { error: msg[2] });
      if (msg[0] === 2) {
        const action = String(msg[2]);
        const payload = msg[3] as Record<string, unknown>;
        this.received.push({ action, payload });
        const reply =
          action === 'SetVariables'
            ? { setVariableResult: (payload.setVariableData as { component: unknown; variable: unknown }[]).map((d) => ({ attributeStatus: 'Accepted', component: d.component, variable: d.variable })) }
            : action === 'GetVariables'
              ? { getVariableResult: (payload.getVariableData as { component: unknown; variable: unknown }[]).map((d) => ({ attributeStatus: 'UnknownVariable', component: d.component, variable: d.variable })) }
              : { status: 'Accepted' };
        this.ws.send(JSON.stringify([3, msg[1], reply]));
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  call(action: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = `m${++this.seq}`;
    return new Promise((resolve) => {
      this.waiting.set(id, (p) => resolve(p as Record<string, unknown>));
      this.ws.send(JSON.stringify([2, id, action, payload]));
    });
  }
}

describe('when a charging session ends', () => {
  it('OCPP 1.6J: a 50-second session is metered and priced in full once StopTransaction is answered, and charge now ends', async () => {
    th = await hubWith('CP-END16');
    const cp = new TsChargePoint('CP-END16');
    closers.push(() => cp.disconnect());
        expect(await cp.connect(ocppUrl)).toBe(true);
    await cp.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'Box' });
    await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
    const t0 = Date.now() - 50_000;
    const start = await cp.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'TAG', meterStart: 20000, timestamp: iso(t0) });
    const tx = start.transactionId;
    await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging' });
    // the car wants to go soon: charge now
    expect((await api('PUT', '/devices/ev1/target', { charge_now: true })).status).toBe(200);
    expect(((await api('GET', '/devices/ev1/control')).body.target as Record<string, unknown>).charge_now).toBe(true);
    for (let s = 10; s <= 40; s += 10) {
      await cp.call('MeterValues', { connectorId: 1, transactionId: tx, meterValue: [{ timestamp: iso(t0 + s * 1000), sampledValue: [{ value: String(20000 + s * 1.848), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }] }] });
    }
    await cp.call('StopTransaction', { transactionId: tx, meterStop: 20092, timestamp: iso(t0 + 50_000), reason: 'EVDisconnected' });
    await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' });
    // the charger stays quiet from here on: nothing else may be needed for the session to be complete
    const total = await sessionEnergy(String(tx));
    expect(total.energy.value).toBeCloseTo(92, 3);
    expect(total.tariff.value).toBeCloseTo(0.092 * 0.3, 6);
    const control = (await api('GET', '/devices/ev1/control')).body;
    expect(control.target).toBeNull();
    expect(control.overridden).toEqual([]);
  }, 60_000);

  it('OCPP 2.0.1: TransactionEvent Ended commits the session at once', async () => {
    th = await hubWith('CS-END201');
    const station = new RawStation();
    await station.connect(ocppUrl, 'CS-END201');
    expect((await station.call('BootNotification', { reason: 'PowerUp', chargingStation: { model: 'S', vendorName: 'V' } })).status).toBe('Accepted');
    const t0 = Date.now() - 30_000;
    const mv = (t: number, wh: number, context: string) => [{ timestamp: iso(t), sampledValue: [{ value: wh, context, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh' } }] }];
    const tx = 'tx-201-end';
    await station.call('TransactionEvent', { eventType: 'Started', timestamp: iso(t0), triggerReason: 'Authorized', seqNo: 0, transactionInfo: { transactionId: tx, chargingState: 'Charging' }, idToken: { idToken: 'TAG', type: 'ISO14443' }, evse: { id: 1, connectorId: 1 }, meterValue: mv(t0, 5000, 'Transaction.Begin') });
    await station.call('TransactionEvent', { eventType: 'Updated', timestamp: iso(t0 + 15_000), triggerReason: 'MeterValuePeriodic', seqNo: 1, transactionInfo: { transactionId: tx, chargingState: 'Charging' }, meterValue: mv(t0 + 15_000, 5030, 'Sample.Periodic') });
    await station.call('TransactionEvent', { eventType: 'Ended', timestamp: iso(t0 + 30_000), triggerReason: 'EVCommunicationLost', seqNo: 2, transactionInfo: { transactionId: tx, chargingState: 'Idle', stoppedReason: 'EVDisconnected' }, meterValue: mv(t0 + 30_000, 5061, 'Transaction.End') });
    const total = await sessionEnergy(tx);
    expect(total.energy.value).toBeCloseTo(61, 3);
  }, 60_000);

  it('a target set for this car (leave_time as an instant) ends with the session; a daily HH:MM one stays', async () => {
    th = await hubWith('CP-TGT', ', target: { energy_wh: 8000, leave_time: "07:00" }');
    const cp = new TsChargePoint('CP-TGT');
    closers.push(() => cp.disconnect());
    expect(await cp.connect(ocppUrl)).toBe(true);
    await cp.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'Box' });
    const session = async (leave: string) => {
      await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
      const { transactionId } = await cp.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'TAG', meterStart: 100, timestamp: iso(Date.now()) });
      expect((await api('PUT', '/devices/ev1/target', { energy_wh: 3000, leave_time: leave })).status).toBe(200);
      await cp.call('StopTransaction', { transactionId, meterStop: 150, timestamp: iso(Date.now()) });
      await cp.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' });
      await th!.hub.services.state.flush();
      return (await api('GET', '/devices/ev1/control')).body;
    };
    const once = await session(iso(Date.now() + 3 * 3600_000));
    expect(once.target).toEqual({ energy_wh: 8000, leave_time: '07:00' });
    expect(once.overridden).toEqual([]);
    const daily = await session('06:30');
    expect(daily.target).toEqual({ energy_wh: 3000, leave_time: '06:30' });
  }, 60_000);
});
