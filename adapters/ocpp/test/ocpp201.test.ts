import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RPCClient } from 'ocpp-rpc';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import { SimChargePoint } from '../sim.js';
import { now, Rig, until } from './harness.js';

interface Peer {
  connect(): Promise<unknown>;
  close(o?: { force?: boolean }): Promise<unknown>;
  call(method: string, params: unknown): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  handle(method: string, fn: (c: { params: any }) => unknown): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  on(event: string, fn: (...a: any[]) => void): unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
}

let rig: Rig;
const peers: Peer[] = [];
const sims: SimChargePoint[] = [];
const peer = (options: Record<string, unknown>) => {
  const p = new RPCClient({ reconnect: false, strictMode: true, callTimeoutMs: 5000, ...options } as never) as unknown as Peer;
  peers.push(p);
  return p;
};

afterEach(async () => {
  for (const p of peers.splice(0)) await p.close({ force: true }).catch(() => undefined);
  for (const s of sims.splice(0)) await s.close();
  await rig?.stop();
});

describe('OCPP 2.0.1 charging station (ocpp-rpc client in strict mode)', () => {
  it('boots, is configured with SetVariables, runs a transaction and takes a 2.0.1 charging profile', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev2', identity: 'CS201', password: 'station-pass' });
    const station = peer({ endpoint: rig.url, identity: 'CS201', password: 'station-pass', protocols: ['ocpp2.0.1'] });
    const received: Record<string, any[]> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
    const on = (method: string, reply: (params: any) => unknown) => // eslint-disable-line @typescript-eslint/no-explicit-any
      station.handle(method, ({ params }) => {
        (received[method] ??= []).push(params);
        return reply(params);
      });
    on('SetVariables', (p) => ({ setVariableResult: p.setVariableData.map((d: any) => ({ attributeStatus: 'Accepted', component: d.component, variable: d.variable })) })); // eslint-disable-line @typescript-eslint/no-explicit-any
    on('TriggerMessage', () => ({ status: 'Accepted' }));
    on('SetChargingProfile', () => ({ status: 'Accepted' }));
    await station.connect();
    const boot = await station.call('BootNotification', { reason: 'PowerUp', chargingStation: { model: 'S', vendorName: 'V' } });
    expect(boot.status).toBe('Accepted');
    await until(() => received.TriggerMessage);
    expect(received.SetVariables[0].setVariableData.map((d: any) => d.variable.name)).toEqual(['TxUpdatedInterval', 'TxUpdatedMeasurands']); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(cp.device.available).toBe(true);

    const mv = (wh: number, context = 'Sample.Periodic') => [{ timestamp: now(), sampledValue: [{ value: wh / 1000, context, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'kWh' } }, { value: 7, context, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W', multiplier: 3 } }] }];
    const tx = 'f0e1d2c3-tx';
    await station.call('TransactionEvent', { eventType: 'Started', timestamp: now(), triggerReason: 'Authorized', seqNo: 0, transactionInfo: { transactionId: tx, chargingState: 'EVConnected' }, idToken: { idToken: 'TAG', type: 'ISO14443' }, evse: { id: 1, connectorId: 1 }, meterValue: mv(20000, 'Transaction.Begin') });
    const started = await station.call('TransactionEvent', { eventType: 'Updated', timestamp: now(), triggerReason: 'ChargingStateChanged', seqNo: 1, transactionInfo: { transactionId: tx, chargingState: 'Charging' }, meterValue: mv(20500) });
    expect(started).toEqual({});
    expect(cp.device.caps.charger!.status()).toBe('charging');
    expect(cp.device.caps.charger!.session()).toMatchObject({ id: tx, energyWh: 500, idTag: 'TAG' });
    expect(rig.readings.at(-1)!.reading).toMatchObject({ importWh: 20500, powerW: 7000, sessionId: tx });

    // the TxProfile for the running transaction, in the 2.0.1 shape; the strict client validated it
    await cp.device.caps.charger!.setLimit({ watts: 7000, validUntil: Date.now() + 3600_000 });
    await until(() => received.SetChargingProfile?.some((p) => p.chargingProfile.chargingProfilePurpose === 'TxProfile'));
    const profile = received.SetChargingProfile.find((p) => p.chargingProfile.chargingProfilePurpose === 'TxProfile');
    expect(profile.evseId).toBe(1);
    expect(profile.chargingProfile.transactionId).toBe(tx);
    expect(profile.chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0].limit).toBe(10);

    await station.call('TransactionEvent', { eventType: 'Ended', timestamp: now(), triggerReason: 'EVDeparted', seqNo: 2, transactionInfo: { transactionId: tx, stoppedReason: 'EVDisconnected' }, meterValue: mv(21000, 'Transaction.End') });
    expect(cp.device.caps.charger!.session()).toMatchObject({ id: tx, energyWh: 1000 });
    expect(cp.device.caps.charger!.session()!.end).toBeDefined();
    await station.call('StatusNotification', { timestamp: now(), connectorStatus: 'Available', evseId: 1, connectorId: 1 });
    expect(cp.device.caps.charger!.status()).toBe('available');
    expect((await station.call('Authorize', { idToken: { idToken: 'X', type: 'ISO14443' } })).idTokenInfo.status).toBe('Accepted');
    expect(await station.call('NotifyEvent', { generatedAt: now(), seqNo: 0, eventData: [{ eventId: 1, timestamp: now(), trigger: 'Alerting', actualValue: 'x', eventNotificationType: 'HardWiredNotification', component: { name: 'C' }, variable: { name: 'V' } }] })).toEqual({});
  });

  it('adopts a 2.0.1 transaction after the hub restarts', async () => {
    rig = await new Rig().listen();
    await rig.device({ id: 'ev2', identity: 'CS2' });
    let station = peer({ endpoint: rig.url, identity: 'CS2', protocols: ['ocpp2.0.1'], strictMode: false });
    await station.connect();
    const ev = (type: string, seqNo: number, wh: number) => ({ eventType: type, timestamp: now(), triggerReason: 'MeterValuePeriodic', seqNo, transactionInfo: { transactionId: 'T-9', chargingState: 'Charging' }, meterValue: [{ timestamp: now(), sampledValue: [{ value: wh }] }] });
    await station.call('TransactionEvent', ev('Started', 0, 1000));
    await station.call('TransactionEvent', ev('Updated', 1, 1200));
    await station.close({ force: true });
    const stores = rig.stores;
    await rig.stop();
    rig = await new Rig(stores).listen();
    const cp = await rig.device({ id: 'ev2', identity: 'CS2' });
    station = peer({ endpoint: rig.url, identity: 'CS2', protocols: ['ocpp2.0.1'], strictMode: false });
    await station.connect();
    await station.call('TransactionEvent', ev('Updated', 2, 1500));
    expect(cp.device.caps.charger!.session()).toMatchObject({ id: 'T-9', energyWh: 500 });
  });

  it('serves 1.6 and 2.0.1 on one port, and wss:// when a certificate is configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-ocpp-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    rig = await new Rig().listen({ tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } });
    const a = await rig.device({ id: 'a', identity: 'A16', password: 'pw-a-123' });
    const b = await rig.device({ id: 'b', identity: 'B201' });
    const c = await rig.device({ id: 'c', identity: 'BOTH' });
    const url = `wss://127.0.0.1:${rig.server.port}/ocpp`;
    const wsOpts = { ca: readFileSync(join(dir, 'cert.pem')) };
    const one = peer({ endpoint: url, identity: 'A16', password: 'pw-a-123', protocols: ['ocpp1.6'], wsOpts });
    const two = peer({ endpoint: url, identity: 'B201', protocols: ['ocpp2.0.1'], wsOpts });
    // offering both, a charger speaks 1.6J: chargers' 2.0.1 firmware is the weaker one
    const both = peer({ endpoint: url, identity: 'BOTH', protocols: ['ocpp2.0.1', 'ocpp1.6'], wsOpts });
    await one.connect();
    await two.connect();
    await both.connect();
    await until(() => a.connection && b.connection && c.connection);
    expect(c.connection!.protocol).toBe('ocpp1.6');
    expect(a.connection!.protocol).toBe('ocpp1.6');
    expect(b.connection!.protocol).toBe('ocpp2.0.1');
    // plain ws:// on the TLS port does not get in
    const plain = peer({ endpoint: `ws://127.0.0.1:${rig.server.port}/ocpp`, identity: 'A16', password: 'pw-a-123', protocols: ['ocpp1.6'] });
    await expect(plain.connect()).rejects.toThrow();
  });

  it('refuses a second device claiming the same identity, and a charger on the wrong path', async () => {
    rig = await new Rig().listen();
    await rig.device({ id: 'a', identity: 'SAME' });
    await expect(rig.device({ id: 'b', identity: 'SAME' })).rejects.toMatchObject({ code: 'ocpp_identity_taken' });
    const wrongPath = peer({ endpoint: `ws://127.0.0.1:${rig.server.port}/other`, identity: 'SAME', protocols: ['ocpp1.6'] });
    await expect(wrongPath.connect()).rejects.toThrow(/404|Not Found/);
  });
});

describe('simulated charge point', () => {
  it.each(['ocpp1.6', 'ocpp2.0.1'] as const)('%s: boots, charges at the profile’s power and reports meter values', async (protocol) => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev', identity: 'SIM1', password: 'sim-pass-1' });
    const sim = new SimChargePoint({ identity: 'SIM1', password: 'sim-pass-1', protocol, endpoint: rig.url, clock: systemClock, log: rig.logs.log, phases: 3, voltage: 230, maxCurrentA: 16, minCurrentA: 6, capacityWh: 60000, idTag: 'SIMTAG', meterIntervalS: 60 });
    sims.push(sim);
    await sim.connect();
    await until(() => cp.device.available && sim.received.some((r) => r.action === 'TriggerMessage'));
    await sim.plugIn(40);
    await until(() => cp.device.caps.charger!.session(), 10_000, 'session');
    await sim.step(0);
    expect(sim.chargingPowerW).toBe(11040);
    await cp.device.caps.charger!.setLimit({ watts: 4600, validUntil: Date.now() + 3600_000 });
    await sim.step(0);
    // 4600 W on 3 phases = 6.67 A → 6.6 A → 6.5 A (naive multipleOf) → 4485 W
    expect(sim.chargingPowerW).toBe(4485);
    await sim.step(3600_000);
    await until(() => cp.device.caps.charger!.session()!.energyWh > 4000, 10_000, 'energy');
    expect(cp.device.caps.charger!.session()!.energyWh).toBeCloseTo(4485, 0);
    await cp.device.caps.charger!.setLimit({ watts: 0, validUntil: Date.now() + 3600_000 });
    await sim.step(0);
    expect(sim.chargingPowerW).toBe(0);
    await until(() => cp.device.caps.charger!.status() === 'suspended_evse', 10_000, 'suspended');
    const tx = cp.device.caps.charger!.session()!.id;
    expect(tx).toBe(sim.transactionId);
    await sim.unplug();
    await until(() => cp.device.caps.charger!.session()!.end, 10_000, 'stop');
    const registers = rig.readings.filter((r) => r.reading.sessionId === tx && r.reading.importWh !== undefined).map((r) => r.reading.importWh!);
    expect(registers.length).toBeGreaterThan(2);
    expect(registers.at(-1)! - registers[0]).toBeCloseTo(4485, 0);
  });
});

describe('load', () => {
  it('admits 50 chargers connecting at once and answers their boots', async () => {
    rig = await new Rig().listen();
    const n = 50;
    const devices = [];
    for (let i = 0; i < n; i++) devices.push(await rig.device({ id: `ev${i}`, identity: `LOAD${i}`, password: `pw-${i}-xyz`, configure: false }));
    const stations = Array.from({ length: n }, (_, i) => peer({ endpoint: rig.url, identity: `LOAD${i}`, password: `pw-${i}-xyz`, protocols: ['ocpp1.6'], strictMode: false }));
    for (const s of stations) s.handle('TriggerMessage', () => ({ status: 'Accepted' }));
    await Promise.all(stations.map((s) => s.connect()));
    const boots = await Promise.all(stations.map((s) => s.call('BootNotification', { chargePointVendor: 'L', chargePointModel: 'M' })));
    expect(boots.every((b) => b.status === 'Accepted')).toBe(true);
    const starts = await Promise.all(stations.map((s, i) => s.call('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: i, timestamp: now() })));
    expect(new Set(starts.map((s) => s.transactionId)).size).toBe(n);
    expect(devices.every((d) => d.device.available)).toBe(true);
  });
});
