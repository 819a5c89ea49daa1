import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { PlanView } from '../../src/control/view.js';
import { TsChargePoint } from '../../adapters/ocpp/test/harness.js';
import { startHub, type TestHub } from '../peers/hub.js';
import { freePort } from '../peers/mqtt.js';
import { api, meteredWh, until } from './helpers.js';

/**
 * OCPP faults in a whole hub, from the charger to the cost (the adapter's own tests cover the
 * protocol details: adapters/ocpp/test/ocpp16.test.ts and smart.test.ts). The charger is ocpp-ts,
 * an independent 1.6J implementation. Checked: a charger that drops mid-transaction and returns
 * with the same or a new transaction id, one that refuses every charging profile, and registers
 * that go backwards; each through the plan and the metered energy.
 */

const running: { h: TestHub; peers: TsChargePoint[] }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    for (const p of r.peers) p.disconnect();
    await r.h.stop();
  }
});

async function start() {
  const port = await freePort();
  // the hub's clock is real time as the chargers see it; the test moves it on for slot boundaries
  const clock = new ManualClock(Math.floor(Date.now() / 60_000) * 60_000);
  const h = await startHub(
    `site: { id: home, timezone: Europe/Berlin, currency: EUR }
tariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }
connections:
  ocpp: { host: 127.0.0.1, port: ${port} }
devices:
  - { id: ev, adapter: ocpp, identity: CP1, password: cp1-secret-pass, boot_wait_s: 0.1, target: { energy_wh: 30000, leave_time: "07:00" } }
  - { id: stubborn, adapter: ocpp, identity: CP2, boot_wait_s: 0.1 }
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 60 }
`,
    { clock },
  );
  const peers: TsChargePoint[] = [];
  running.push({ h, peers });
  const url = `ws://127.0.0.1:${port}/ocpp`;
  const at = () => new Date(clock.now()).toISOString();
  /** A charger dialling in (with Boot unless it only reconnects). */
  const charger = async (identity: string, password?: string, boot = true) => {
    const ts = new TsChargePoint(identity);
    peers.push(ts);
    expect(await ts.connect(url, password)).toBe(true);
    if (boot) await ts.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'W1' });
    return ts;
  };
  const mv = (tx: number, wh: number) => ({ connectorId: 1, transactionId: tx, meterValue: [{ timestamp: at(), sampledValue: [{ value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }] }] });
  const control = h.hub.services.control!;
  const plan = async () => {
    await control.settled();
    return (await api(h.hub, 'GET', '/plan')).body as unknown as PlanView;
  };
  /** Energy metered per session over HTTP, after metering stored what it held back. */
  const sessionWh = async (tx: number) => {
    await h.hub.services.metering!.drain();
    const r = await api(h.hub, 'POST', `/costs/session/${tx}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return (r.body as { total: { energy: { value: number } } }).total.energy.value;
  };
  const deviceWh = (from: number, to: number) => meteredWh(h.hub, 'ev', from, to);
  const tick = async (ms: number) => {
    await clock.advance(ms);
    await control.settled();
  };
  return { h, clock, charger, mv, plan, sessionWh, deviceWh, tick, at };
}

describe('OCPP chargers misbehaving in a running hub', () => {
  it('drops mid-transaction and returns with the same id: the plan lets it go and takes it back, the session is metered whole and once', async () => {
    const { h, charger, mv, plan, sessionWh, tick, at } = await start();
    const ev = h.hub.registry.get('ev')!;
    let ts = await charger('CP1', 'cp1-secret-pass');
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
    const { transactionId: tx } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'CAR', meterStart: 10_000, timestamp: at() });
    await tick(60_000);
    await ts.call('MeterValues', mv(tx, 10_600));
    await until(async () => (await plan()).devices.some((d) => d.id === 'ev'), 'the car in the plan');

    ts.disconnect();
    await until(() => !ev.available, 'the charger gone');
    await tick(60_000);
    let p = await plan();
    expect(p.devices.map((d) => d.id)).not.toContain('ev');
    expect(p.notes.join('\n')).toMatch(/ev: unavailable \(charger disconnected\), left out of the plan/);

    // back without a boot (a network blip): the hub asks for its state, the transaction goes on
    ts = await charger('CP1', 'cp1-secret-pass', false);
    await tick(1000); // boot_wait_s
    await ts.waitFor('TriggerMessage');
    await until(() => ev.available, 'the charger back');
    await tick(60_000);
    await ts.call('MeterValues', mv(tx, 11_200));
    await tick(60_000);
    await ts.call('StopTransaction', { transactionId: tx, meterStop: 11_500, timestamp: at(), reason: 'EVDisconnected' });
    expect(ev.caps.charger!.session()).toMatchObject({ id: String(tx), energyWh: 1500 });
    expect(await sessionWh(tx)).toBe(1500);
    p = await plan();
    expect(p.notes.join('\n')).not.toMatch(/ev: unavailable/);
  });

  it('returns with a new transaction id after losing the old one: the old session is closed, energy is counted once across both', async () => {
    const { h, charger, mv, sessionWh, deviceWh, tick, at, clock } = await start();
    const ev = h.hub.registry.get('ev')!;
    const t0 = clock.now();
    let ts = await charger('CP1', 'cp1-secret-pass');
    const { transactionId: tx1 } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'CAR', meterStart: 20_000, timestamp: at() });
    await tick(60_000);
    await ts.call('MeterValues', mv(tx1, 20_800));
    ts.disconnect();
    await until(() => !ev.available, 'the charger gone');
    await tick(120_000);
    // it rebooted and forgot tx1: a new boot and a new transaction, the stop of tx1 never comes
    ts = await charger('CP1', 'cp1-secret-pass');
    const { transactionId: tx2 } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'CAR', meterStart: 21_000, timestamp: at() });
    expect(tx2).not.toBe(tx1);
    expect(h.logText()).toMatch(new RegExp(`transaction ${tx1} was never stopped; closed as ${tx2} begins`));
    await tick(60_000);
    await ts.call('MeterValues', mv(tx2, 21_600));
    // the old id arrives late once more (a queued frame): it must not reopen tx1
    await ts.call('MeterValues', mv(tx1, 21_650));
    await tick(60_000);
    await ts.call('StopTransaction', { transactionId: tx2, meterStop: 22_000, timestamp: at() });
    expect(ev.caps.charger!.session()).toMatchObject({ id: String(tx2), energyWh: 1000 });
    // the register moved 2000 Wh: all of it metered, none twice, the gap while away with the old session
    expect((await sessionWh(tx1)) + (await sessionWh(tx2))).toBe(2000);
    expect(await sessionWh(tx2)).toBe(1000);
    expect(await deviceWh(t0 - 60_000, clock.now() + 60_000)).toBe(2000);
  });

  it('registers going backwards: within a session the lower reading is ignored, a new meter counts from zero, nothing negative is stored', async () => {
    const { h, charger, mv, sessionWh, deviceWh, tick, at, clock } = await start();
    const t0 = clock.now();
    const ts = await charger('CP1', 'cp1-secret-pass');
    const { transactionId: tx } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'CAR', meterStart: 30_000, timestamp: at() });
    for (const wh of [30_500, 30_100, 29_000, 30_700]) {
      await tick(60_000);
      await ts.call('MeterValues', mv(tx, wh));
    }
    await ts.call('StopTransaction', { transactionId: tx, meterStop: 30_700, timestamp: at() });
    expect(await sessionWh(tx)).toBe(700);
    expect(h.logText()).toMatch(/energy register went backwards \(30500 → 30100 Wh\)/);
    // the meter was replaced: the next session starts at 500 Wh (below 90 % of 30700: a counter reset)
    await tick(60_000);
    const { transactionId: tx2 } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'CAR', meterStart: 500, timestamp: at() });
    await tick(60_000);
    await ts.call('MeterValues', mv(tx2, 900));
    await ts.call('StopTransaction', { transactionId: tx2, meterStop: 900, timestamp: at() });
    expect(await sessionWh(tx2)).toBe(400);
    // what metering counted for the device: 700 + the reset's 500 (from zero) + 400, never below zero
    expect(await deviceWh(t0 - 60_000, clock.now() + 60_000)).toBe(1600);
  });

  it('a charger that refuses every profile: shown on the device, logged once, retried each slot, and the other devices still follow the plan', async () => {
    const { h, charger, tick, plan } = await start();
    const ts = await charger('CP2');
    ts.answers.SetChargingProfile = { status: 'Rejected' };
    const stubborn = h.hub.registry.get('stubborn')!;
    await until(() => stubborn.available, 'the charger connected');
    await ts.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
    await ts.call('StartTransaction', { connectorId: 1, idTag: 'CAR', meterStart: 0, timestamp: new Date(h.hub.clock.now()).toISOString() });
    await tick(60_000);
    await until(() => ts.calls.some((c) => c.action === 'SetChargingProfile'), 'a profile sent');
    const sent = () => ts.calls.filter((c) => c.action === 'SetChargingProfile').length;
    const before = sent();
    const battery = h.hub.registry.get('battery')!;
    for (let slot = 0; slot < 4; slot++) {
      await tick(15 * 60_000);
      // the battery is in the mode the plan has for the slot in force
      const p = await plan();
      const k = p.slots.findIndex((s) => Date.parse(s.start_time) <= h.hub.clock.now() && h.hub.clock.now() < Date.parse(s.end_time));
      expect(battery.caps.storage!.state().mode).toBe(p.devices.find((d) => d.id === 'battery')!.modes![k]);
    }
    expect(sent()).toBeGreaterThan(before);
    expect(stubborn.available).toBe(true);
    const view = await api(h.hub, 'GET', '/devices/stubborn');
    expect(String(view.body.error)).toMatch(/charging profile Rejected by the charger/);
    expect(h.logText().match(/"msg":"charger CP2: charging profile Rejected/g)).toHaveLength(1);
    // the control loop says it once too, not at every slot
    expect(h.logText().match(/could not send a charging limit to stubborn/g)).toHaveLength(1);
    // accepted again: the error clears
    ts.answers.SetChargingProfile = { status: 'Accepted' };
    await tick(15 * 60_000);
    await until(() => !stubborn.error, 'the error cleared');
    expect(h.logText()).toMatch(/stubborn takes its commands again/);
  });
});
