import { RPCClient } from 'ocpp-rpc';
import { afterEach, describe, expect, it } from 'vitest';
import { checkOcppConfig, type OcppDeviceConfig } from '../schema.js';
import { Rig, TsChargePoint, until } from './harness.js';

let rig: Rig;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await rig?.stop();
});

type Period = { limit: number; numberPhases?: number };

describe('OCPP phase switching by numberPhases (phase_switching: true)', () => {
  it('1.6 (ocpp-ts charge point): one phase at 6 A, then three phases at 6 A as a new profile; the phases in use follow the accepted profile', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CPP', phase_switching: true });
    const ts = new TsChargePoint('CPP');
    cleanups.push(() => ts.disconnect());
    await ts.connect(rig.url);
    await ts.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'W' });
    await ts.waitFor('TriggerMessage');
    const charger = cp.device.caps.charger!;
    expect(charger.phaseSwitching).toBeDefined();
    expect(charger.phaseSwitching!.activePhases()).toBeUndefined();

    await charger.setLimit({ watts: 1400, phases: 1, validUntil: Date.now() + 600_000 });
    const [one] = await ts.waitFor('SetChargingProfile');
    const p1 = (one.params.csChargingProfiles as { chargingSchedule: { chargingSchedulePeriod: Period[] } }).chargingSchedule.chargingSchedulePeriod;
    expect(p1[0]).toMatchObject({ limit: 6, numberPhases: 1 });
    expect(charger.phaseSwitching!.activePhases()).toBe(1);

    // the same 6 A on three phases is another profile: sent, not deduplicated
    await charger.setLimit({ watts: 4140, phases: 3, validUntil: Date.now() + 600_000 });
    const calls = await ts.waitFor('SetChargingProfile', 2);
    const p3 = (calls[1].params.csChargingProfiles as { chargingSchedule: { chargingSchedulePeriod: Period[] } }).chargingSchedule.chargingSchedulePeriod;
    expect(p3[0]).toMatchObject({ limit: 6, numberPhases: 3 });
    expect(charger.phaseSwitching!.activePhases()).toBe(3);
  });

  it('2.0.1 (ocpp-rpc station in strict mode): numberPhases 1 in the 2.0.1 profile shape', async () => {
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev2', identity: 'CSP', password: 'station-pass', phase_switching: true });
    const station = new RPCClient({ endpoint: rig.url, identity: 'CSP', password: 'station-pass', protocols: ['ocpp2.0.1'], reconnect: false, strictMode: true, callTimeoutMs: 5000 } as never) as unknown as {
      connect(): Promise<unknown>;
      close(o?: { force?: boolean }): Promise<unknown>;
      call(method: string, params: unknown): Promise<unknown>;
      handle(method: string, fn: (c: { params: any }) => unknown): void; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    cleanups.push(() => station.close({ force: true }).catch(() => undefined));
    const profiles: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    station.handle('SetVariables', ({ params }) => ({ setVariableResult: params.setVariableData.map((d: any) => ({ attributeStatus: 'Accepted', component: d.component, variable: d.variable })) })); // eslint-disable-line @typescript-eslint/no-explicit-any
    station.handle('TriggerMessage', () => ({ status: 'Accepted' }));
    station.handle('SetChargingProfile', ({ params }) => (profiles.push(params), { status: 'Accepted' }));
    await station.connect();
    await station.call('BootNotification', { reason: 'PowerUp', chargingStation: { model: 'S', vendorName: 'V' } });
    await until(() => cp.device.available);
    await cp.device.caps.charger!.setLimit({ watts: 2000, phases: 1, validUntil: Date.now() + 600_000 });
    await until(() => profiles.length > 0);
    expect(profiles[0].chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0]).toMatchObject({ limit: 8.5, numberPhases: 1 }); // 8.69 A rounded down to a tenth some firmware accepts
    expect(cp.device.caps.charger!.phaseSwitching!.activePhases()).toBe(1);
  });

  it('is refused on a 1-phase installation and without numberPhases in the profile', () => {
    const base = { id: 'x', adapter: 'ocpp', identity: 'X', connector: 1, phases: 3, voltage: 230, min_current_a: 6, max_current_a: 16, phase_switching: true, profile: { number_phases: true } } as unknown as OcppDeviceConfig;
    expect(checkOcppConfig(base)).toEqual([]);
    expect(checkOcppConfig({ ...base, phases: 1 }).map((i) => i.path)).toEqual([['phase_switching']]);
    expect(checkOcppConfig({ ...base, profile: { ...base.profile, number_phases: false } }).map((i) => i.path)).toEqual([['profile', 'number_phases']]);
  });
});
