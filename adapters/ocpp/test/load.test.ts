import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { SESSION_SAVE_MS, type OpenSession } from '../charge-point.js';
import { Rig, TsChargePoint, until } from './harness.js';

let rig: Rig;
const peers: TsChargePoint[] = [];

afterEach(async () => {
  for (const p of peers.splice(0)) p.disconnect();
  await rig?.stop();
});

describe('OCPP chargers reporting often', () => {
  it('saves a running session when it starts, at most once a minute while readings arrive, and when the hub stops', async () => {
    rig = await new Rig().listen();
    const clock = new ManualClock(Date.now());
    const cp = await rig.device({ id: 'ev1', identity: 'CP100', configure: false }, clock);
    const store = rig.store('ev1');
    const ts = new TsChargePoint('CP100');
    peers.push(ts);
    expect(await ts.connect(rig.url)).toBe(true);
    const at = () => new Date(clock.now()).toISOString();
    const { transactionId: tx } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 10_000, timestamp: at() });
    expect(store.writes.get('session')).toBe(1);
    const reading = (wh: number) => ts.call('MeterValues', { connectorId: 1, transactionId: tx, meterValue: [{ timestamp: at(), sampledValue: [{ value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }] }] });

    // a reading every 10 s: the session changes in memory, the state file is not rewritten each time
    let wh = 10_000;
    for (let t = 10_000; t < SESSION_SAVE_MS; t += 10_000) {
      await clock.advance(10_000);
      await reading((wh += 30));
    }
    expect(store.writes.get('session')).toBe(1);
    expect(cp.device.caps.charger!.session()).toMatchObject({ id: String(tx), energyWh: wh - 10_000 });

    // a minute after the last save the next reading is saved
    await clock.advance(10_000);
    await reading((wh += 30));
    expect(store.writes.get('session')).toBe(2);
    expect(store.get<OpenSession>('session')).toMatchObject({ id: String(tx), lastRegisterWh: wh, energyWh: wh - 10_000 });

    // readings after that are kept when the hub stops, so a restart adopts the session with them
    await clock.advance(10_000);
    await reading((wh += 30));
    expect(store.get<OpenSession>('session')!.lastRegisterWh).toBe(wh - 30);
    await cp.stop();
    expect(store.writes.get('session')).toBe(3);
    expect(store.get<OpenSession>('session')).toMatchObject({ id: String(tx), lastRegisterWh: wh, energyWh: wh - 10_000 });
  });

  it('saves the session at once when it ends, and does not save again on stop', async () => {
    rig = await new Rig().listen();
    const clock = new ManualClock(Date.now());
    const cp = await rig.device({ id: 'ev2', identity: 'CP101', configure: false }, clock);
    const store = rig.store('ev2');
    const ts = new TsChargePoint('CP101');
    peers.push(ts);
    expect(await ts.connect(rig.url)).toBe(true);
    const at = () => new Date(clock.now()).toISOString();
    const { transactionId: tx } = await ts.call<{ transactionId: number }>('StartTransaction', { connectorId: 1, idTag: 'T', meterStart: 500, timestamp: at() });
    await clock.advance(10_000);
    await ts.call('MeterValues', { connectorId: 1, transactionId: tx, meterValue: [{ timestamp: at(), sampledValue: [{ value: '700' }] }] });
    await ts.call('StopTransaction', { transactionId: tx, meterStop: 900, timestamp: at() });
    expect(store.get('session')).toBeNull();
    expect(store.get<OpenSession>('last_session')).toMatchObject({ id: String(tx), energyWh: 400 });
    expect(store.get<string[]>('closed_tx')).toEqual([String(tx)]);
    const writes = store.writes.get('session');
    await cp.stop();
    expect(store.writes.get('session')).toBe(writes);
  });

  it('warns when a charger drops, but not when the hub stopping closes every charger', async () => {
    rig = await new Rig().listen();
    const devices = [await rig.device({ id: 'ev3', identity: 'CP102', configure: false }), await rig.device({ id: 'ev4', identity: 'CP103', configure: false })];
    const chargers = ['CP102', 'CP103'].map((id) => new TsChargePoint(id));
    peers.push(...chargers);
    for (const c of chargers) expect(await c.connect(rig.url)).toBe(true);
    chargers[0].disconnect();
    await until(() => !devices[0].device.available, 5000, 'CP102 gone');
    for (const d of devices) await d.stop();
    await until(() => chargers[1].closed !== undefined, 5000, 'CP103 closed by the hub');
    const warned = rig.logs.lines.filter((l) => l.level === 40 && /disconnected/.test(l.msg)).map((l) => l.msg);
    expect(warned).toEqual(['charger CP102 disconnected']);
    expect(rig.logged(/charger CP103 disconnected \(hub stopping\)/)).toHaveLength(1);
  });
});
