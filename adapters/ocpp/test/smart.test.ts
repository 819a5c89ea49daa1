import { afterEach, describe, expect, it } from 'vitest';
import { now, Rig, TsChargePoint, until } from './harness.js';

let rig: Rig;
const peers: TsChargePoint[] = [];

afterEach(async () => {
  for (const p of peers.splice(0)) p.disconnect();
  await rig?.stop();
});

async function charging(config: Record<string, unknown> = {}) {
  rig = await new Rig().listen();
  const cp = await rig.device({ id: 'ev1', identity: 'CPX', ...config });
  const ts = new TsChargePoint('CPX');
  peers.push(ts);
  await ts.connect(rig.url);
  await ts.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'W' });
  await ts.waitFor('TriggerMessage');
  return { cp, ts };
}

describe('plans as charging profiles (ocpp-ts charge point)', () => {
  it('sends a TxProfile inside a transaction: A per phase, validTo, one period per plan step, accepted by the charge point', async () => {
    const { cp, ts } = await charging();
    const { transactionId } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 0, timestamp: now() });
    const t0 = Date.now();
    await cp.device.caps.charger!.setLimit({ watts: 11040, validUntil: t0 + 2 * 3600_000, schedule: [{ start: t0 + 1800_000, watts: 0 }, { start: t0 + 3600_000, watts: 6900 }] });
    const [call] = await ts.waitFor('SetChargingProfile');
    const p = call.params.csChargingProfiles as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(call.params.connectorId).toBe(1);
    expect(p.chargingProfilePurpose).toBe('TxProfile');
    expect(p.transactionId).toBe(transactionId);
    expect(p.chargingProfileKind).toBe('Absolute');
    expect(p.stackLevel).toBe(1);
    expect(Date.parse(p.validTo)).toBeGreaterThanOrEqual(t0 + 2 * 3600_000 - 1000);
    expect(p.chargingSchedule.chargingRateUnit).toBe('A');
    expect(p.chargingSchedule.chargingSchedulePeriod.map((x: { limit: number }) => x.limit)).toEqual([16, 0, 10]);
    expect(cp.device.error).toBeUndefined();
    // the same plan again is not re-sent
    await cp.device.caps.charger!.setLimit({ watts: 11040, validUntil: t0 + 2 * 3600_000, schedule: [{ start: t0 + 1800_000, watts: 0 }, { start: t0 + 3600_000, watts: 6900 }] });
    expect(ts.calls.filter((c) => c.action === 'SetChargingProfile')).toHaveLength(1);
  });

  it('uses TxDefaultProfile outside a transaction and re-sends the plan as TxProfile when one starts', async () => {
    const { cp, ts } = await charging();
    await cp.device.caps.charger!.setLimit({ watts: 4140, validUntil: Date.now() + 3600_000 });
    const [first] = await ts.waitFor('SetChargingProfile');
    expect((first.params.csChargingProfiles as Record<string, unknown>).chargingProfilePurpose).toBe('TxDefaultProfile');
    const { transactionId } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 0, timestamp: now() });
    const calls = await ts.waitFor('SetChargingProfile', 2);
    expect(calls[1].params.csChargingProfiles).toMatchObject({ chargingProfilePurpose: 'TxProfile', transactionId });
  });

  it('logs and reports a rejected profile on the device, after trying TxDefaultProfile', async () => {
    const { cp, ts } = await charging();
    await ts.call('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 0, timestamp: now() });
    ts.answers.SetChargingProfile = { status: 'Rejected' };
    await expect(cp.device.caps.charger!.setLimit({ watts: 0, validUntil: Date.now() + 900_000 })).rejects.toMatchObject({ code: 'profile_rejected', kind: 'permanent' });
    const tried = ts.calls.filter((c) => c.action === 'SetChargingProfile').map((c) => (c.params.csChargingProfiles as Record<string, unknown>).chargingProfilePurpose);
    expect(tried.slice(-2)).toEqual(['TxProfile', 'TxDefaultProfile']);
    expect(cp.device.error).toMatch(/charging profile Rejected by the charger \(TxDefaultProfile, stack level 1, A, Absolute\)/);
    expect(rig.logged(/charging profile Rejected/)).toHaveLength(1);
    // once the charger accepts again, the error goes away
    ts.answers.SetChargingProfile = { status: 'Accepted' };
    await cp.device.caps.charger!.setLimit({ watts: 5000, validUntil: Date.now() + 900_000 });
    expect(cp.device.error).toBeUndefined();
  });

  it('honours per-charger settings: stack level 0, W, ChargePointMaxProfile on connector 0, no numberPhases', async () => {
    const { cp, ts } = await charging({ profile: { purpose: 'ChargePointMaxProfile', stack_level: 0, rate_unit: 'W', number_phases: false } });
    await cp.device.caps.charger!.setLimit({ watts: 7123.9, validUntil: Date.now() + 900_000 });
    const [call] = await ts.waitFor('SetChargingProfile');
    expect(call.params.connectorId).toBe(0);
    const p = call.params.csChargingProfiles as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(p).toMatchObject({ stackLevel: 0, chargingProfilePurpose: 'ChargePointMaxProfile' });
    expect(p.chargingSchedule.chargingSchedulePeriod).toEqual([{ startPeriod: 0, limit: 7123 }]);
  });

  it('picks W when the charger allows only power', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CPW' });
    const ts = new TsChargePoint('CPW');
    peers.push(ts);
    ts.answers.GetConfiguration = { configurationKey: [{ key: 'ChargingScheduleAllowedChargingRateUnit', readonly: true, value: 'Power' }] };
    await ts.connect(rig.url);
    await ts.waitFor('TriggerMessage');
    await cp.device.caps.charger!.setLimit({ watts: 9000, validUntil: Date.now() + 900_000 });
    const [call] = await ts.waitFor('SetChargingProfile');
    expect((call.params.csChargingProfiles as Record<string, any>).chargingSchedule.chargingRateUnit).toBe('W'); // eslint-disable-line @typescript-eslint/no-explicit-any
  });

  it('re-sends a still valid plan after the charger reconnects', async () => {
    const { cp, ts } = await charging();
    await cp.device.caps.charger!.setLimit({ watts: 6000, validUntil: Date.now() + 900_000 });
    await ts.waitFor('SetChargingProfile');
    ts.disconnect();
    await until(() => !cp.device.available);
    await expect(cp.device.caps.charger!.setLimit({ watts: 6000, validUntil: Date.now() + 900_000 })).rejects.toMatchObject({ code: 'not_connected', kind: 'retryable' });
    const again = new TsChargePoint('CPX');
    peers.push(again);
    await again.connect(rig.url);
    const [call] = await again.waitFor('SetChargingProfile');
    expect((call.params.csChargingProfiles as Record<string, any>).chargingSchedule.chargingSchedulePeriod[0].limit).toBe(8.5); // eslint-disable-line @typescript-eslint/no-explicit-any
  });

  it('drives the other outbound calls: remote start/stop, composite schedule, clear, trigger', async () => {
    const { cp, ts } = await charging({ remote_start: true });
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
    const [start] = await ts.waitFor('RemoteStartTransaction');
    expect(start.params).toEqual({ connectorId: 1, idTag: 'homeflex' });
    const { transactionId } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'homeflex', meterStart: 0, timestamp: now() });
    expect(await cp.remoteStop()).toBe('Accepted');
    expect(ts.calls.find((c) => c.action === 'RemoteStopTransaction')!.params).toEqual({ transactionId });
    const composite = await cp.compositeSchedule(3600);
    expect(composite.status).toBe('Accepted');
    expect(ts.calls.find((c) => c.action === 'GetCompositeSchedule')!.params).toEqual({ connectorId: 1, duration: 3600, chargingRateUnit: 'A' });
    expect(await cp.clearLimit()).toBe('Accepted');
    expect(ts.calls.find((c) => c.action === 'ClearChargingProfile')!.params).toEqual({ id: 1001 });
    expect(await cp.trigger('MeterValues')).toBe('Accepted');
  });

  it('falls back to fewer measurands when the charger refuses the list (EVBox)', async () => {
    rig = await new Rig().listen();
    await rig.device({ id: 'ev1', identity: 'EVB' });
    const ts = new TsChargePoint('EVB');
    peers.push(ts);
    ts.answers.ChangeConfiguration = { status: 'Rejected' };
    await ts.connect(rig.url);
    const calls = await ts.waitFor('ChangeConfiguration', 3);
    expect(calls[2].params).toEqual({ key: 'MeterValuesSampledData', value: 'Energy.Active.Import.Register,Power.Active.Import' });
  });
});
