import { describe, expect, it } from 'vitest';
import { hasCap, type Device } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, until } from '../../test/peers/mqtt.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { goeActivePhases, goeCommand, goeStatus } from './index.js';
import { GoeStandin } from './standin.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

const cleanups = cleanupsAfterEach();

const cfg = { phases: 3 as const, phase_switching: true, min_current_a: 6, max_current_a: 16, voltage: 230 };

describe('go-e key mapping (apikeys-en.md / apikeys-de.md)', () => {
  it('maps carState to the charger status, with a plugged car held off as suspended by the charger', () => {
    expect(goeStatus({ car: 1 })).toBe('available');
    expect(goeStatus({ car: 2 })).toBe('charging');
    expect(goeStatus({ car: 3, frc: 1 })).toBe('suspended_evse');
    expect(goeStatus({ car: 3, frc: 2, alw: true })).toBe('suspended_ev');
    expect(goeStatus({ car: 4 })).toBe('suspended_ev');
    expect(goeStatus({ car: 5 })).toBe('faulted');
    expect(goeStatus({ car: null })).toBe('unknown');
  });

  it('reads the phases in use from psm (Force_1=1, Force_3=2), else pnp', () => {
    expect(goeActivePhases({ psm: 1 }, 3)).toBe(1);
    expect(goeActivePhases({ psm: 2 }, 3)).toBe(3);
    expect(goeActivePhases({ psm: 0, pnp: 1 }, 3)).toBe(1);
    expect(goeActivePhases({}, 3)).toBe(3);
  });

  it('turns a limit in W into frc, amp and psm, writing only what differs', () => {
    // 1.4 kW on one phase: 6 A (1380 W), phases forced to one
    expect(goeCommand({ watts: 1400, phases: 1 }, { frc: 0, amp: 16, psm: 0 }, cfg)).toEqual({ psm: 1, amp: 6, frc: 2 });
    // 5 kW on three phases: 7 A (rounded down, so no more than the limit is drawn)
    expect(goeCommand({ watts: 5000, phases: 3 }, { frc: 2, amp: 6, psm: 1 }, cfg)).toEqual({ psm: 2, amp: 7 });
    // nothing to write when the charger already does it
    expect(goeCommand({ watts: 5000, phases: 3 }, { frc: 2, amp: 7, psm: 2 }, cfg)).toEqual({});
    // below the minimum current: forced off, the rest left alone
    expect(goeCommand({ watts: 1000, phases: 1 }, { frc: 2, amp: 7, psm: 2 }, cfg)).toEqual({ frc: 1 });
    expect(goeCommand({ watts: 0 }, { frc: 1 }, cfg)).toEqual({});
    // capped at max_current_a; no psm without phase switching
    expect(goeCommand({ watts: 20000, phases: 1 }, { frc: 2, amp: 6 }, { ...cfg, phase_switching: false })).toEqual({ amp: 16 });
  });
});

const site = (device: string, extra = '') => `site: { id: home, timezone: Europe/Berlin }\n${extra}devices:\n  - ${device}\n`;

async function httpRig(options: { variant?: 11 | 22; yaml?: string } = {}) {
  const clock = new ManualClock('2026-06-01T10:00:00Z');
  const standin = new GoeStandin({ now: () => clock.now(), variant: options.variant });
  const url = await standin.listen(0);
  cleanups.push(() => standin.close());
  const h = await startHub(site(`{ id: wallbox, adapter: goe, host: "${url}", poll_s: 5${options.yaml ?? ''} }`), { clock });
  cleanups.push(() => h.stop());
  const device = h.hub.registry.get('wallbox')! as Device;
  await until(() => device.available, 'go-e available');
  return { clock, standin, h, device };
}

describe('go-e adapter over HTTP against the stand-in (127.0.0.1, port 0)', () => {
  it('sees a car plug in, starts it on one phase at 6 A, switches to three, stops it, and meters the session', async () => {
    const { clock, standin, h, device } = await httpRig();
    expect(hasCap(device, 'charger') && hasCap(device, 'meter')).toBe(true);
    const charger = device.caps.charger!;
    expect(charger.status()).toBe('available');
    expect(charger.phaseSwitching?.activePhases()).toBe(3);

    // a go-e in forceState Neutral charges a car at once at its requested current (16 A here)
    standin.plug(true);
    await clock.advance(5000);
    await until(() => charger.status() === 'charging', 'car plugged');
    const session = charger.session()!;
    expect(session).toBeDefined();

    await charger.setLimit({ watts: 1400, phases: 1 });
    expect(standin.keys.psm).toBe(1);
    expect(standin.keys.amp).toBe(6);
    expect(standin.keys.frc).toBe(2);
    expect(standin.powerW()).toBe(1380);

    await clock.advance(600_000);
    await until(() => device.caps.meter!.last()?.powerW === 1380, 'reading of 1380 W');
    expect(charger.status()).toBe('charging');
    expect(charger.phaseSwitching!.activePhases()).toBe(1);
    // 10 min at 1380 W, after 5 s at the 11 kW the go-e began with by itself
    expect(charger.session()!.energyWh).toBeGreaterThan(240);
    expect(charger.session()!.energyWh).toBeLessThan(250);

    await charger.setLimit({ watts: 7000, phases: 3 });
    expect([standin.keys.psm, standin.keys.amp]).toEqual([2, 10]);
    expect(standin.powerW()).toBe(6900);
    // the same limit again writes nothing (go-e keeps amp in flash)
    const writes = standin.writes.length;
    await charger.setLimit({ watts: 7000, phases: 3 });
    expect(standin.writes.length).toBe(writes);

    await charger.setLimit({ watts: 0 });
    expect(standin.keys.frc).toBe(1);
    expect(standin.powerW()).toBe(0);
    await clock.advance(5000);
    await until(() => charger.status() === 'suspended_evse', 'held off');

    standin.plug(false);
    await clock.advance(5000);
    await until(() => charger.status() === 'available', 'car gone');
    expect(charger.session()).toBeUndefined();
    expect(h.readings.filter((r) => r.deviceId === 'wallbox' && r.reading.sessionId === session.id).length).toBeGreaterThan(0);
  });

  it('marks the charger unavailable once when it stops answering, and available again when it answers', async () => {
    const { clock, standin, h, device } = await httpRig();
    await standin.close();
    await clock.advance(5000);
    await until(() => !device.available, 'unavailable');
    await clock.advance(5000);
    await clock.advance(5000);
    const downs = h.states.filter((s) => s.deviceId === 'wallbox' && !s.available);
    expect(downs.length).toBe(1);
    expect(device.error).toMatch(/no answer/);
    await expect(device.caps.charger!.setLimit({ watts: 5000 })).rejects.toThrow(/not answering/);
    await standin.listen(Number(new URL(standin.url!).port));
    await clock.advance(5000);
    await until(() => device.available, 'available again');
    expect(h.states.filter((s) => s.deviceId === 'wallbox' && s.available).length).toBeGreaterThanOrEqual(1);
  });

  it('fails a command the charger refuses, naming the charger, the key and its answer, and changes nothing', async () => {
    // an 11 kW unit (16 A) configured as if it took 32 A
    const { standin, device } = await httpRig({ variant: 11, yaml: ', max_current_a: 32' });
    standin.plug(true);
    const before = { ...standin.keys };
    await expect(device.caps.charger!.setLimit({ watts: 30 * 230 * 1, phases: 1 })).rejects.toThrow(/go-e wallbox refused .*amp=30 \(value must be an integer between 6 and 16\)/);
    expect([standin.keys.amp, standin.keys.psm, standin.keys.frc]).toEqual([before.amp, before.psm, before.frc]);
    expect(device.available).toBe(true);
  });
});

describeWithPeers(['mosquitto'], 'go-e adapter over MQTT against the stand-in on Debian mosquitto', () => {
  it('reads the retained keys, writes on <key>/set and waits for <key>/result, and follows the last will', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const standin = new GoeStandin({ serial: '204242' });
    await standin.connect(broker.url);
    cleanups.push(() => standin.close());
    const h = await startHub(site(`{ id: wallbox, adapter: goe, transport: mqtt, serial: "204242" }`, `connections:\n  mqtt: { url: "${broker.url}" }\n`));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('wallbox')!;
    await until(() => device.available, 'go-e available over MQTT');
    standin.plug(true);
    await standin.publishAll();
    await until(() => device.caps.charger!.status() === 'charging', 'car plugged (MQTT)');

    await device.caps.charger!.setLimit({ watts: 2000, phases: 1 });
    expect([standin.keys.psm, standin.keys.amp, standin.keys.frc]).toEqual([1, 8, 2]);
    await until(() => device.caps.meter!.last()?.powerW === 1840, 'reading of 1840 W over MQTT');
    expect(device.caps.charger!.phaseSwitching!.activePhases()).toBe(1);

    standin.dropMqtt();
    await until(() => !device.available, 'unavailable after the last will (mcc false)', 15000);
    expect(device.error).toMatch(/mcc false/);
  });
});
