import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { now, Rig, TsChargePoint, until } from './harness.js';

let rig: Rig;
const peers: TsChargePoint[] = [];
const peer = (identity: string) => {
  const p = new TsChargePoint(identity);
  peers.push(p);
  return p;
};

afterEach(async () => {
  for (const p of peers.splice(0)) p.disconnect();
  await rig?.stop();
});

const mv = (transactionId: number | undefined, value: string, unit?: string, extra: Record<string, unknown>[] = []) => ({
  connectorId: 1,
  ...(transactionId !== undefined ? { transactionId } : {}),
  meterValue: [{ timestamp: now(), sampledValue: [{ value, measurand: 'Energy.Active.Import.Register', ...(unit ? { unit } : {}) }, ...extra] }],
});

describe('OCPP 1.6J charger against ocpp-ts', () => {
  it('boots with its password, is configured, and becomes an available device', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP001', password: 's3cret-pass' });
    const ts = peer('CP001');
    expect(await ts.connect(rig.url, 's3cret-pass')).toBe(true);
    const boot = await ts.call<{ status: string; interval: number; currentTime: string }>('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'Wallbox 1' });
    expect(boot.status).toBe('Accepted');
    expect(boot.interval).toBe(300);
    expect(Math.abs(Date.parse(boot.currentTime) - Date.now())).toBeLessThan(5000);
    const changes = await ts.waitFor('ChangeConfiguration', 2);
    expect(changes.map((c) => c.params.key)).toEqual(['MeterValueSampleInterval', 'MeterValuesSampledData']);
    expect(changes[1].params.value).toBe('Energy.Active.Import.Register,Power.Active.Import,Current.Import,SoC');
    expect(ts.calls[0].action).toBe('GetConfiguration');
    await ts.waitFor('TriggerMessage');
    expect(cp.device.available).toBe(true);
    expect(rig.events).toContain('device.connected ev1');
    const hb = await ts.call<{ currentTime: string }>('Heartbeat', {});
    expect(typeof hb.currentTime).toBe('string');
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
    expect(cp.device.caps.charger!.status()).toBe('preparing');
    ts.disconnect();
    await until(() => !cp.device.available, 10_000, 'disconnect');
    expect(rig.events).toContain('device.disconnected ev1');
  });

  it('refuses unknown identities and wrong passwords with 401, and logs each once', async () => {
    rig = await new Rig().listen();
    await rig.device({ id: 'ev1', identity: 'CP001', password: 's3cret-pass' });
    for (let i = 0; i < 2; i++) {
      const stranger = peer('INTRUDER');
      expect(await stranger.connect(rig.url)).toBe(false);
      expect(String(stranger.error)).toMatch(/401/);
      const wrong = peer('CP001');
      expect(await wrong.connect(rig.url, 'guessed')).toBe(false);
      expect(String(wrong.error)).toMatch(/401/);
      const none = peer('CP001');
      expect(await none.connect(rig.url)).toBe(false);
    }
    expect(rig.logged(/unknown charger identity "INTRUDER" refused \(401\)/)).toHaveLength(1);
    expect(rig.logged(/CP001 refused \(401\): wrong password/)).toHaveLength(1);
    expect(rig.logged(/CP001 refused \(401\): no password/)).toHaveLength(1);
    // nothing logs the password itself
    expect(JSON.stringify(rig.logs.lines)).not.toContain('s3cret-pass');
  });

  it('admits any identity with allow_unknown but keeps unclaimed ones Pending', async () => {
    rig = await new Rig().listen({ allowUnknown: true });
    const ts = peer('NEWBOX');
    expect(await ts.connect(rig.url)).toBe(true);
    const boot = await ts.call<{ status: string }>('BootNotification', { chargePointVendor: 'X', chargePointModel: 'Y' });
    expect(boot.status).toBe('Pending');
    expect(rig.logged(/no device has identity: NEWBOX/)).toHaveLength(1);
  });

  it('runs a transaction: ids from the hub, meter values in Wh and kWh, session energy, stop', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP002' });
    const ts = peer('CP002');
    await ts.connect(rig.url);
    await ts.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'W' });
    const auth = await ts.call<{ idTagInfo: { status: string } }>('Authorize', { idTag: 'TAG1' });
    expect(auth.idTagInfo.status).toBe('Accepted');
    const start = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'TAG1', meterStart: 12000, timestamp: now() });
    expect(Number.isInteger(start.transactionId)).toBe(true);
    expect(start.transactionId).toBeGreaterThan(0);
    const tx = start.transactionId;
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging' });
    await ts.call('MeterValues', mv(tx, '12500', 'Wh', [{ value: ' 7200 ', measurand: 'Power.Active.Import', unit: 'W' }, { value: '10.4', measurand: 'Current.Import', phase: 'L1-N', unit: 'A' }, { value: '55', measurand: 'SoC', unit: 'Percent', location: 'EV' }]));
    await ts.call('MeterValues', mv(tx, '13.25', 'kWh'));
    await ts.call('MeterValues', mv(tx, '13500'));
    const session = cp.device.caps.charger!.session()!;
    expect(session.id).toBe(String(tx));
    expect(session.energyWh).toBe(1500);
    expect(session.idTag).toBe('TAG1');
    expect(cp.device.caps.charger!.evSocPct()).toBe(55);
    const inSession = rig.readings.filter((r) => r.reading.sessionId === String(tx));
    expect(inSession.map((r) => r.reading.importWh)).toEqual([12000, 12500, 13250, 13500]);
    expect(inSession[1].reading.powerW).toBe(7200);
    const stop = await ts.call<{ idTagInfo: { status: string } }>('StopTransaction', { transactionId: tx, meterStop: 14000, timestamp: now(), reason: 'EVDisconnected' });
    expect(stop.idTagInfo.status).toBe('Accepted');
    const done = cp.device.caps.charger!.session()!;
    expect(done.end).toBeDefined();
    expect(done.energyWh).toBe(2000);
    expect(rig.readings.at(-1)!.reading).toMatchObject({ importWh: 14000, sessionId: String(tx) });
    // the next transaction gets a new id
    const again = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'TAG1', meterStart: 14000, timestamp: now() });
    expect(again.transactionId).toBeGreaterThan(tx);
  });

  it('accepts only listed id tags when a local list is configured', async () => {
    rig = await new Rig().listen();
    await rig.device({ id: 'ev1', identity: 'CP003', id_tags: ['FAMILY'] });
    const ts = peer('CP003');
    await ts.connect(rig.url);
    expect((await ts.call<{ idTagInfo: { status: string } }>('Authorize', { idTag: 'FAMILY' })).idTagInfo.status).toBe('Accepted');
    expect((await ts.call<{ idTagInfo: { status: string } }>('Authorize', { idTag: 'STRANGER' })).idTagInfo.status).toBe('Invalid');
  });

  it('acknowledges StopTransaction of unknown ids and of id 0, closing the open session for 0', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP004' });
    const ts = peer('CP004');
    await ts.connect(rig.url);
    await ts.call('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 100, timestamp: now() });
    expect((await ts.call<{ idTagInfo: { status: string } }>('StopTransaction', { transactionId: 999999, meterStop: 200, timestamp: now() })).idTagInfo.status).toBe('Accepted');
    expect(cp.device.caps.charger!.session()!.end).toBeUndefined();
    await ts.call('StopTransaction', { transactionId: 0, meterStop: 300, timestamp: now() });
    expect(cp.device.caps.charger!.session()!.end).toBeDefined();
    expect(cp.device.caps.charger!.session()!.energyWh).toBe(200);
  });

  it('never lets energy go backwards within a session', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP005' });
    const ts = peer('CP005');
    await ts.connect(rig.url);
    const { transactionId: tx } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 5000, timestamp: now() });
    await ts.call('MeterValues', mv(tx, '6000'));
    await ts.call('MeterValues', mv(tx, '5500'));
    await ts.call('MeterValues', mv(tx, '6100'));
    expect(cp.device.caps.charger!.session()!.energyWh).toBe(1100);
    const registers = rig.readings.filter((r) => r.reading.sessionId === String(tx) && r.reading.importWh !== undefined).map((r) => r.reading.importWh);
    expect(registers).toEqual([5000, 6000, 6100]);
    expect(rig.logged(/went backwards \(6000 → 5500 Wh\)/)).toHaveLength(1);
  });

  it('closes a stale transaction when the connector becomes Available and ignores its id afterwards', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP006' });
    const ts = peer('CP006');
    await ts.connect(rig.url);
    const { transactionId: tx } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 0, timestamp: now() });
    await ts.call('MeterValues', mv(tx, '800'));
    // the StopTransaction was lost; the charger says the connector is free
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' });
    expect(cp.device.caps.charger!.session()!.end).toBeDefined();
    // en+ keeps sending the stopped id
    await ts.call('MeterValues', mv(tx, '900'));
    expect(rig.readings.at(-1)!.reading.sessionId).toBeUndefined();
    expect(rig.readings.at(-1)!.reading.importWh).toBe(900);
    expect(cp.device.caps.charger!.session()!.energyWh).toBe(800);
  });

  it('adopts a running transaction after a charger reconnect and after a hub restart', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP007' });
    let ts = peer('CP007');
    await ts.connect(rig.url);
    const { transactionId: tx } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 1000, timestamp: now() });
    await ts.call('MeterValues', mv(tx, '1500'));
    ts.disconnect();
    await until(() => !cp.device.available);
    ts = peer('CP007');
    await ts.connect(rig.url);
    await until(() => cp.device.available);
    await ts.call('MeterValues', mv(tx, '1700'));
    expect(cp.device.caps.charger!.session()).toMatchObject({ id: String(tx), energyWh: 700 });
    // the hub stops and starts again with the same state; the charger dials in again
    ts.disconnect();
    const stores = rig.stores;
    await rig.stop();
    rig = await new Rig(stores).listen();
    const cp2 = await rig.device({ id: 'ev1', identity: 'CP007' });
    expect(cp2.device.caps.charger!.session()).toMatchObject({ id: String(tx), energyWh: 700 });
    ts = peer('CP007');
    await ts.connect(rig.url);
    // without a Boot the hub asks for the status and the meter values of the running transaction
    const triggers = await ts.waitFor('TriggerMessage', 2);
    expect(triggers.map((t) => t.params.requestedMessage)).toEqual(['StatusNotification', 'MeterValues']);
    await ts.call('MeterValues', mv(tx, '2000'));
    expect(cp2.device.caps.charger!.session()).toMatchObject({ id: String(tx), energyWh: 1000 });
    await ts.call('StopTransaction', { transactionId: tx, meterStop: 2100, timestamp: now() });
    expect(cp2.device.caps.charger!.session()).toMatchObject({ energyWh: 1100 });
    expect(cp2.device.caps.charger!.session()!.end).toBeDefined();
  });

  it('adopts a transaction it never saw when the charger reports one while charging', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP008' });
    const ts = peer('CP008');
    await ts.connect(rig.url);
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging' });
    // the hub asks for meter values to learn the transaction id
    await ts.waitFor('TriggerMessage');
    await ts.call('MeterValues', mv(4242, '30000'));
    await ts.call('MeterValues', mv(4242, '30400'));
    expect(cp.device.caps.charger!.session()).toMatchObject({ id: '4242', energyWh: 400 });
    expect(rig.logged(/adopted transaction 4242/)).toHaveLength(1);
  });

  it('answers malformed frames with OCPP errors and accepts slightly malformed messages, logging what was wrong', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP009' });
    const ts = peer('CP009');
    await ts.connect(rig.url);
    // StartTransaction without a connector cannot be served
    await expect(ts.call('StartTransaction', { idTag: 'T', meterStart: 0, timestamp: now() })).rejects.toMatchObject({ code: 'FormationViolation' });
    // values sent as numbers, an unknown unit and a phase tag with spaces: accepted
    await ts.call('MeterValues', { connectorId: 1, meterValue: [{ timestamp: now(), sampledValue: [{ value: 321, measurand: 'Energy.Active.Import.Register' }, { value: '50', measurand: 'Frequency', unit: 'Hz' }] }] }).catch((e: unknown) => e);
    expect(rig.logged(/does not follow the OCPP schema \(accepted anyway\)/).length).toBeGreaterThan(0);
    expect(cp.device.available).toBe(true);
  });

  it('answers frames that are not OCPP-J with an RPC error and keeps the connection', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'RAW1' });
    const ws = new WebSocket(`${rig.url}/RAW1`, ['ocpp1.6']);
    const replies: unknown[][] = [];
    ws.on('message', (m) => replies.push(JSON.parse(String(m)) as unknown[]));
    await new Promise((r) => ws.once('open', r));
    ws.send('this is not json');
    ws.send(JSON.stringify({ not: 'an array' }));
    ws.send(JSON.stringify([2, 'm-1', 'Heartbeat', {}]));
    await until(() => replies.some((r) => r[1] === 'm-1'));
    expect(replies.filter((r) => r[0] === 4).map((r) => r[2])).toEqual(['RpcFrameworkError', 'RpcFrameworkError']);
    expect(replies.find((r) => r[1] === 'm-1')![0]).toBe(3);
    expect(cp.device.available).toBe(true);
    expect(rig.logged(/sent a malformed frame/).length).toBeGreaterThan(0);
    ws.terminate();
  });
});
