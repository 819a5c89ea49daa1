import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { freePort } from '../../../test/peers/mqtt.js';
import { startHub, type TestHub } from '../../../test/peers/hub.js';
import { now, Rig, TsChargePoint, until } from './harness.js';

/**
 * A charging profile goes to the charger when it changes and is renewed before its validTo, not on
 * every re-plan: counted as SetChargingProfile frames at an independent charge point (ocpp-ts).
 */

let rig: Rig | undefined;
let th: TestHub | undefined;
const peers: TsChargePoint[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.disconnect();
  await rig?.stop();
  rig = undefined;
  await th?.stop();
  th = undefined;
});

const profiles = (ts: TsChargePoint) => ts.calls.filter((c) => c.action === 'SetChargingProfile');

describe('charging profiles are sent on change', () => {
  it('three re-plans that change nothing send one profile', async () => {
    const port = await freePort();
    // a cheap window a few hours ahead: the car waits for it, so the plan's steps are at fixed wall-clock
    // times and a re-plan a moment later holds the charger to exactly the same (a flat rate would make
    // "charge now" steps that move with the moment of planning)
    const berlinHour = Number(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', hour12: false }).format(new Date()));
    const hh = (h: number) => `${String(h % 24).padStart(2, '0')}:00`;
    th = await startHub(`
site: { id: home, timezone: Europe/Berlin }
tariffs: { import: { type: time_of_use, rates: [ { from: "${hh(berlinHour + 3)}", to: "${hh(berlinHour + 6)}", rate: 0.10 }, { from: "${hh(berlinHour + 6)}", to: "${hh(berlinHour + 3)}", rate: 0.30 } ] } }
connections:
  ocpp: { host: 127.0.0.1, port: ${port} }
devices:
  - { id: ev1, adapter: ocpp, identity: CP-RESEND, configure: false, boot_wait_s: 0.1, target: { energy_wh: 5000, leave_time: "${hh(berlinHour + 8)}" } }
`);
    const ts = new TsChargePoint('CP-RESEND');
    peers.push(ts);
    expect(await ts.connect(`ws://127.0.0.1:${port}/ocpp`)).toBe(true);
    await ts.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'W' });
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
    await ts.call('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 0, timestamp: now() });
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging' });
    const control = th.hub.services.control!;
    // the plan inside the transaction has gone out (a TxProfile), and nothing else is on its way
    await until(() => profiles(ts).some((p) => (p.params.csChargingProfiles as { chargingProfilePurpose: string }).chargingProfilePurpose === 'TxProfile'), 10_000, 'TxProfile');
    await control.settled();
    await new Promise((r) => setTimeout(r, 500));
    const before = profiles(ts).length;
    for (let i = 0; i < 3; i++) {
      await control.replan(`test ${i}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(profiles(ts).length - before, JSON.stringify(profiles(ts).map((p) => p.params), null, 1)).toBe(0);
  }, 60_000);

  it('renews the same profile once it is in the second half of its validity, and sends a change at once', async () => {
    const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
    rig = await new Rig().listen();
    const cp = await rig.device({ id: 'ev1', identity: 'CP-RENEW' }, clock);
    const ts = new TsChargePoint('CP-RENEW');
    peers.push(ts);
    await ts.connect(rig.url);
    await ts.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'W' });
    await ts.waitFor('TriggerMessage');
    const charger = cp.device.caps.charger!;
    const t0 = clock.now();
    // each re-plan gives the same power with a validity 30 minutes from its own time
    const plan = (watts = 7360) => charger.setLimit({ watts, validUntil: clock.now() + 30 * 60_000, schedule: [{ start: t0 + 3600_000, watts: 0 }] });
    await plan();
    expect(profiles(ts)).toHaveLength(1);
    for (const minutes of [1, 5, 10]) {
      clock.set(t0 + minutes * 60_000);
      await plan();
    }
    expect(profiles(ts)).toHaveLength(1);
    clock.set(t0 + 16 * 60_000); // 14 of 30 minutes left: renewed before validTo
    await plan();
    expect(profiles(ts)).toHaveLength(2);
    expect(Date.parse(String((profiles(ts)[1].params.csChargingProfiles as { validTo: string }).validTo))).toBe(t0 + 46 * 60_000);
    clock.set(t0 + 17 * 60_000);
    await plan(4140); // a different power goes out at once
    expect(profiles(ts)).toHaveLength(3);
  });
});
