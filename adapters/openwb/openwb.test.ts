import { afterEach, describe, expect, it } from 'vitest';
import type { Device } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, sleep, until } from '../../test/peers/mqtt.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { openWbStatus, openWbWrites } from './index.js';
import { OpenWbStandin } from './standin.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const cfg = { phases: 3 as const, phase_switching: true, min_current_a: 6, max_current_a: 16, voltage: 230 };

describe('openWB secondary topics (openWB/core external_openwb, setdata)', () => {
  it('maps plug_state, charge_state, fault_state and the current set to the charger status', () => {
    expect(openWbStatus({ plug_state: false, fault_state: 0 }, 0)).toBe('available');
    expect(openWbStatus({ plug_state: true, charge_state: true }, 16)).toBe('charging');
    expect(openWbStatus({ plug_state: true, charge_state: false }, 0)).toBe('suspended_evse');
    expect(openWbStatus({ plug_state: true, charge_state: false }, 10)).toBe('suspended_ev');
    expect(openWbStatus({ plug_state: true, fault_state: 2 }, 10)).toBe('faulted');
    expect(openWbStatus({}, undefined)).toBe('unknown');
  });

  it('turns a limit into set_current and a phase switch, writing only what differs', () => {
    expect(openWbWrites({ watts: 1400, phases: 1 }, { phases_in_use: 3 }, { set_current: 0 }, cfg)).toEqual([['phases_to_use', 1], ['trigger_phase_switch', true], ['set_current', 6]]);
    expect(openWbWrites({ watts: 5000, phases: 3 }, { phases_in_use: 3 }, { set_current: 6 }, cfg)).toEqual([['set_current', 7]]);
    expect(openWbWrites({ watts: 5000, phases: 3 }, { phases_in_use: 3 }, { set_current: 7 }, cfg)).toEqual([]);
    expect(openWbWrites({ watts: 900 }, { phases_in_use: 1 }, { set_current: 7 }, cfg)).toEqual([['set_current', 0]]);
    expect(openWbWrites({ watts: 20000, phases: 1 }, { phases_in_use: 3 }, {}, { ...cfg, phase_switching: false })).toEqual([['set_current', 16]]);
  });
});

describeWithPeers(['mosquitto'], 'openwb adapter against the openWB stand-in on Debian mosquitto', () => {
  async function rig(mode = 'plan', clock?: ManualClock, extra = '') {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const standin = new OpenWbStandin({ socPct: 41, now: clock ? () => clock.now() : undefined });
    await standin.connect(broker.url);
    cleanups.push(() => standin.close());
    const yaml = `site: { id: home, timezone: Europe/Berlin }
tariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }
connections:
  mqtt: { url: "${broker.url}" }
surplus: { interval_s: 5, enable_delay_s: 60, disable_delay_s: 180, phase_switch_delay_s: 300, source: grid }
devices:
  - { id: wallbox, adapter: openwb, chargepoint: 0, ev_capacity_wh: 60000, charge_mode: ${mode}${extra} }
`;
    const h = await startHub(yaml, clock ? { clock } : {});
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('wallbox')! as Device;
    await until(() => device.available, 'openWB available');
    return { broker, standin, h, device };
  }

  it('reads power, energy, plug state and SoC; sets the current, switches phases, stops; sends the heartbeat', async () => {
    const { standin, h, device } = await rig();
    const charger = device.caps.charger!;
    expect(charger.status()).toBe('available');
    expect(charger.phaseSwitching!.activePhases()).toBe(3);
    await until(() => standin.heartbeat !== undefined, 'the controller heartbeat');
    expect(standin.heartbeat).toMatchObject({ heartbeat: expect.any(Number) });

    standin.plug(true);
    await until(() => charger.status() === 'suspended_evse', 'car plugged, no current set');
    expect(charger.evSocPct()).toBe(41);
    const session = charger.session()!;

    await charger.setLimit({ watts: 1400, phases: 1 });
    expect(standin.writes.map(([, k, v]) => [k, v])).toEqual([['phases_to_use', 1], ['trigger_phase_switch', true], ['set_current', 6]]);
    expect(standin.powerW()).toBe(1380);
    await until(() => device.caps.meter!.last()?.powerW === 1380 && charger.status() === 'charging', 'charging at 1380 W on one phase');
    expect(charger.phaseSwitching!.activePhases()).toBe(1);

    await charger.setLimit({ watts: 7000, phases: 3 });
    expect([standin.phasesInUse, standin.setCurrentA]).toEqual([3, 10]);
    const writes = standin.writes.length;
    await until(() => device.caps.meter!.last()?.powerW === 6900, '6900 W');
    await charger.setLimit({ watts: 7000, phases: 3 });
    expect(standin.writes.length).toBe(writes);

    await charger.setLimit({ watts: 0 });
    expect(standin.setCurrentA).toBe(0);
    await until(() => charger.status() === 'suspended_evse', 'held off');

    standin.plug(false);
    await until(() => charger.status() === 'available', 'car gone');
    expect(charger.session()).toBeUndefined();
    expect(charger.evSocPct()).toBeUndefined();
    expect(h.readings.some((r) => r.deviceId === 'wallbox' && r.reading.sessionId === session.id)).toBe(true);
  }, 30_000);

  it('fails a write openWB does not publish back, naming the topic, and changes nothing', async () => {
    const { standin, device } = await rig('plan', undefined, ', max_current_a: 32, confirm_timeout_ms: 800');
    standin.plug(true);
    await until(() => device.caps.charger!.status() === 'suspended_evse', 'plugged');
    // 40 A is outside what openWB takes (6..32 A): refused, so never published back
    (standin as unknown as { check: (k: string, v: unknown) => string | undefined }).check = (k, v) => (k === 'set_current' && v === 32 ? 'too high for this unit' : undefined);
    await expect(device.caps.charger!.setLimit({ watts: 32 * 230, phases: 1 })).rejects.toThrow(/openWB\/set\/internal_chargepoint\/0\/data\/set_current = 32 was not published back/);
    expect(standin.setCurrentA).toBe(0);
    expect(device.available).toBe(true);
  }, 20_000);

  it('min+PV: 6 A on one phase from 1.4 kW of surplus, three phases once 4.3 kW has held for the enable delay and the phase-switch delay has passed', async () => {
    const clock = new ManualClock('2026-06-01T10:00:00Z');
    const { standin, h, device } = await rig('minpv', clock);
    const control = h.hub.services.control!;
    standin.plug(true);
    await until(() => device.caps.charger!.status() === 'suspended_evse', 'plugged');
    let surplusW = 0;
    const live = async (minutes: number, w: number) => {
      surplusW = w;
      const end = clock.now() + minutes * 60_000;
      while (clock.now() < end) {
        const station = device.caps.meter!.last()?.powerW ?? 0;
        h.hub.bus.emit('meter.reading', { deviceId: 'grid-meter', reading: { time: clock.now(), channel: 'grid', powerW: station - surplusW } });
        // openWB publishes its values every control cycle
        await standin.publishAll();
        await until(() => device.caps.meter!.last()!.time >= clock.now(), 'this cycle\'s values');
        await clock.advance(5000);
        await control.surplus.idle();
        // the stand-in publishes its new power after each write: let it arrive
        await until(() => device.caps.meter!.last()?.powerW === standin.powerW(), 'the new power');
      }
    };
    // five minutes: the switch to one phase at the start counts against phase_switch_delay_s too
    await live(5, 1400);
    expect([standin.phasesInUse, standin.setCurrentA, standin.powerW()]).toEqual([1, 6, 1380]);
    await live(0.9, 4300);
    expect(standin.phasesInUse).toBe(1);
    await live(0.5, 4300);
    expect([standin.phasesInUse, standin.setCurrentA, standin.powerW()]).toEqual([3, 6, 4140]);
    expect(standin.phaseChanges.map(([, p]) => p)).toEqual([1, 3]);

    // the wallbox goes quiet: unavailable once stale_after_s (60 s) has passed, logged once
    for (let i = 0; i < 14; i++) await clock.advance(5000);
    await until(() => !device.available, 'unavailable when openWB stops publishing');
    expect(device.error).toMatch(/no value from the wallbox/);
    await clock.advance(5000);
    await sleep(50);
    expect(h.states.filter((s) => s.deviceId === 'wallbox' && !s.available)).toHaveLength(1);
    await standin.publishAll();
    await until(() => device.available, 'available again');
  }, 60_000);
});
