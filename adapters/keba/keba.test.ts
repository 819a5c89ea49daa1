import { afterEach, describe, expect, it } from 'vitest';
import type { Device } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { startHub } from '../../test/peers/hub.js';
import { sleep, until } from '../../test/peers/mqtt.js';
import { kebaActivePhases, kebaCommands, kebaStatus } from './index.js';
import { KebaStandin, T_UDP_PAUSE_MS } from './standin.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const cfg = { phases: 3 as const, phase_switching: true, min_current_a: 6, max_current_a: 16, voltage: 230 };

describe('KEBA report fields (UDP Programmers Guide §3.2.3, §3.2.4)', () => {
  it('maps State and Plug to the charger status', () => {
    expect(kebaStatus({ State: 1, Plug: 3 })).toBe('available');
    expect(kebaStatus({ State: 1, Plug: 7 })).toBe('suspended_evse');
    expect(kebaStatus({ State: 2, Plug: 7, 'Enable user': 1, 'Max curr': 6000 })).toBe('suspended_ev');
    expect(kebaStatus({ State: 2, Plug: 7, 'Enable user': 0 })).toBe('suspended_evse');
    expect(kebaStatus({ State: 3, Plug: 7 })).toBe('charging');
    expect(kebaStatus({ State: 4, Plug: 7 })).toBe('faulted');
    expect(kebaStatus({ State: 5, Plug: 7 })).toBe('suspended_evse');
    expect(kebaStatus({})).toBe('unknown');
  });

  it('reads the phases in use from X2 when UDP is the phase-switch source', () => {
    expect(kebaActivePhases({ 'X2 phaseSwitch source': 4, 'X2 phaseSwitch': 0 }, 3)).toBe(1);
    expect(kebaActivePhases({ 'X2 phaseSwitch source': 4, 'X2 phaseSwitch': 1 }, 3)).toBe(3);
    expect(kebaActivePhases({ 'X2 phaseSwitch source': 0, 'X2 phaseSwitch': 0 }, 3)).toBe(3);
  });

  it('turns a limit in W into ena, curr (mA) and x2/x2src, sending only what differs', () => {
    const idle = { 'Enable user': 1, 'Curr user': 63000, 'X2 phaseSwitch source': 0, 'X2 phaseSwitch': 0, Setenergy: 0 };
    // 1.4 kW on one phase: 6 A; x2 0 before UDP becomes the source, so three phases are never asked for on the way
    expect(kebaCommands({ watts: 1400, phases: 1 }, idle, cfg)).toEqual(['x2src 4', 'curr 6000']);
    expect(kebaCommands({ watts: 5000, phases: 3 }, { ...idle, 'X2 phaseSwitch source': 4, 'Curr user': 6000 }, cfg)).toEqual(['x2 1', 'curr 7000']);
    expect(kebaCommands({ watts: 5000, phases: 3 }, { ...idle, 'X2 phaseSwitch source': 4, 'X2 phaseSwitch': 1, 'Curr user': 7000 }, cfg)).toEqual([]);
    // below the minimum: disabled, nothing else touched
    expect(kebaCommands({ watts: 1000, phases: 1 }, idle, cfg)).toEqual(['ena 0']);
    expect(kebaCommands({ watts: 0 }, { ...idle, 'Enable user': 0 }, cfg)).toEqual([]);
    // a disabled station is enabled after its current is set; a reached setenergy limit is cleared
    expect(kebaCommands({ watts: 20000 }, { ...idle, 'Enable user': 0, Setenergy: 100000, 'E pres': 100000 }, { ...cfg, phase_switching: false })).toEqual(['curr 16000', 'setenergy 0', 'ena 1']);
  });
});

const site = (device: string) => `site: { id: home, timezone: Europe/Berlin }\ndevices:\n  - ${device}\n`;

async function rig(extra = '') {
  const clock = new ManualClock('2026-06-01T10:00:00Z');
  const standin = new KebaStandin({ now: () => clock.now() });
  const port = await standin.listen(0);
  cleanups.push(() => standin.close());
  const h = await startHub(site(`{ id: wallbox, adapter: keba, host: 127.0.0.1, port: ${port}, local_port: 0, poll_s: 5, timeout_ms: 400, phase_switching: true${extra} }`), { clock });
  cleanups.push(() => h.stop());
  const device = h.hub.registry.get('wallbox')! as Device;
  await until(() => device.available, 'KEBA available').catch((e) => {
    console.log(h.logText().slice(-3000), standin.received);
    throw e;
  });
  return { clock, standin, h, device };
}

/** No two datagrams reached the stand-in closer than t_UDP_pause, and it turned none away. */
function expectPaced(standin: KebaStandin) {
  expect(standin.received.filter((r) => !r.accepted && r.why !== 'dropped')).toEqual([]);
  for (let i = 1; i < standin.received.length; i++) expect(standin.received[i].at - standin.received[i - 1].at).toBeGreaterThanOrEqual(T_UDP_PAUSE_MS - 2);
}

describe('keba adapter against the UDP stand-in (127.0.0.1, port chosen at run time)', () => {
  it('sees a car plug in, charges it on one phase at 6 A, switches to three, disables it, and meters the session', async () => {
    const { clock, standin, h, device } = await rig(', display: true');
    const charger = device.caps.charger!;
    expect(charger.status()).toBe('available');
    expect(charger.phaseSwitching!.activePhases()).toBe(3);

    standin.plug(true);
    await clock.advance(5000);
    await until(() => charger.status() === 'charging', 'car charging');
    const session = charger.session()!;

    await charger.setLimit({ watts: 1400, phases: 1 });
    expect([standin.x2src, standin.x2, standin.currUserMa, standin.enableUser]).toEqual([4, 0, 6000, 1]);
    expect(standin.powerW()).toBe(1380);
    expect(standin.displayText).toBe('homeflex 6A 1ph');
    expect(charger.phaseSwitching!.activePhases()).toBe(1);

    await clock.advance(600_000);
    await until(() => device.caps.meter!.last()?.powerW === 1380, 'a reading of 1380 W (P in mW)');
    // 10 min at 1380 W after 5 s at 11 kW: E pres in 0.1 Wh
    expect(charger.session()!.energyWh).toBeGreaterThan(240);
    expect(charger.session()!.energyWh).toBeLessThan(250);

    await charger.setLimit({ watts: 7000, phases: 3 });
    expect([standin.x2, standin.currUserMa]).toEqual([1, 10000]);
    expect(standin.powerW()).toBe(6900);
    const sent = standin.commands.length;
    await charger.setLimit({ watts: 7000, phases: 3 });
    expect(standin.commands.length).toBe(sent);

    const t0 = Date.now();
    await charger.setLimit({ watts: 0 });
    expect(standin.enableUser).toBe(0);
    expect(standin.powerW()).toBe(0);
    // guide §3.3.1: nothing for 2 s after ena 0 (the read-back of report 2 waited)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1990);
    await clock.advance(5000);
    await until(() => charger.status() === 'suspended_evse', 'held off');

    standin.plug(false);
    await clock.advance(5000);
    await until(() => charger.status() === 'available', 'car gone');
    expect(charger.session()).toBeUndefined();
    expect(h.readings.filter((r) => r.deviceId === 'wallbox' && r.reading.sessionId === session.id).length).toBeGreaterThan(0);
    expectPaced(standin);
  }, 30_000);

  it('an unanswered request is logged once and changes nothing; only missed_polls in a row make the station unavailable', async () => {
    const { clock, standin, h, device } = await rig();
    standin.plug(true);
    await clock.advance(5000);
    await until(() => device.caps.charger!.status() === 'charging', 'charging');
    const before = { status: device.caps.charger!.status(), session: device.caps.charger!.session()!.id, reading: device.caps.meter!.last() };
    const warnings = () => h.logText().split('\n').filter((l) => l.includes('the last reports stay in force'));

    standin.drop(1);
    await clock.advance(5000);
    await until(() => warnings().length === 1, 'the unanswered request logged');
    await sleep(500);
    expect(device.available).toBe(true);
    expect(device.caps.charger!.status()).toBe(before.status);
    expect(device.caps.charger!.session()!.id).toBe(before.session);
    expect(device.caps.meter!.last()).toEqual(before.reading);

    // the next poll is answered: nothing more is logged about it, and the reading moves on
    await clock.advance(5000);
    await until(() => device.caps.meter!.last()!.time > before.reading!.time, 'answered again');
    expect(h.logText()).toMatch(/KEBA answers again/);

    // silent for good: one warning, one unavailability after three polls
    standin.drop(1000);
    for (let i = 0; i < 4; i++) {
      await clock.advance(5000);
      await sleep(500);
    }
    await until(() => !device.available, 'unavailable');
    expect(warnings().length).toBe(2);
    expect(h.states.filter((s) => s.deviceId === 'wallbox' && !s.available).length).toBe(1);
    expect(device.caps.charger!.session()!.id).toBe(before.session);
    await expect(device.caps.charger!.setLimit({ watts: 5000 })).rejects.toThrow(/not answering/);
  }, 30_000);

  it('reports a command the station confirms but does not take, naming the field', async () => {
    const { standin, device } = await rig();
    standin.plug(true);
    // a station whose UDP interface takes no current setting (e.g. a DIP switch forbids it): curr is confirmed, Curr user stays
    const original = standin.currUserMa;
    Object.defineProperty(standin, 'currUserMa', { get: () => original, set: () => undefined });
    await expect(device.caps.charger!.setLimit({ watts: 2000, phases: 1 })).rejects.toThrow(/report 2 shows "Curr user" = 63000 after "curr 8000"/);
  }, 15_000);
});
