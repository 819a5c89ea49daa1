import { describe, expect, it } from 'vitest';
import { GoeStandin } from '../../adapters/goe/standin.js';
import { HeatPumpSimulator } from '../../adapters/sg-ready/simulator.js';
import type { Device } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { followSgReady, type FollowerState, type FollowerTiming } from '../../src/control/surplus.js';
import { startHub } from '../peers/hub.js';
import { Mosquitto, until } from '../peers/mqtt.js';
import { describeWithPeers } from '../peers/system.js';
import { cleanupsAfterEach } from '../peers/cleanups.js';

const cleanups = cleanupsAfterEach();
const S = 1000;
const MIN = 60 * S;
const timing: FollowerTiming = { enableDelayMs: 60 * S, disableDelayMs: 180 * S, phaseSwitchDelayMs: 300 * S, phaseHysteresisW: 200, stopHysteresisW: 300 };

describe('followSgReady (pure)', () => {
  it('raises a 2 kW heat pump once 2 kW of surplus has held the enable delay, lets it go after the disable delay below 1.7 kW', () => {
    let st: FollowerState = { on: false, phases: 1 };
    const at = (t: number, w: number) => (st = followSgReady(st, w, 2000, t, timing).state);
    at(0, 2100);
    expect(at(59 * S, 2100).on).toBe(false);
    expect(at(60 * S, 2100).on).toBe(true);
    // within the stop hysteresis it keeps running
    expect(at(10 * MIN, 1750).on).toBe(true);
    at(11 * MIN, 1600);
    expect(at(11 * MIN + 179 * S, 1600).on).toBe(true);
    expect(at(14 * MIN, 1600).on).toBe(false);
    // a dip shorter than the enable delay does not raise it
    at(15 * MIN, 2500);
    at(15 * MIN + 30 * S, 1000);
    expect(at(15 * MIN + 70 * S, 2500).on).toBe(false);
  });
});

describeWithPeers(['mosquitto'], 'surplus dispatcher: SG-Ready heat pump and go-e share the surplus by priority', () => {
  it('the heat pump (priority 60) takes 2 kW first, the go-e in pv (50) charges from what is left on one phase; without surplus the heat pump goes back to the plan', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const clock = new ManualClock('2026-06-01T10:00:00Z');
    const sim = new HeatPumpSimulator({ url: broker.url, topic: 'tasmota_HP', initialC: 47, now: () => clock.now(), teleS: 5 });
    await sim.start();
    cleanups.push(() => sim.stop());
    const standin = new GoeStandin({ now: () => clock.now() });
    const url = await standin.listen(0);
    cleanups.push(() => standin.close());
    const h = await startHub(
      `site: { id: home, timezone: Europe/Berlin }
tariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }
surplus: { interval_s: 5, enable_delay_s: 60, disable_delay_s: 180, phase_switch_delay_s: 300, source: grid }
connections: { mqtt: { url: "${broker.url}" } }
devices:
  - { id: wallbox, adapter: goe, host: "${url}", poll_s: 5, charge_mode: pv, surplus_priority: 50 }
  - { id: hp, adapter: sg_ready, power_w: 2000, min_dwell_s: 0, surplus: { state: 3 }, surplus_priority: 60,
      relays: { a: { tasmota: tasmota_HP, relay: 1 }, b: { tasmota: tasmota_HP, relay: 2 } },
      meter: { tasmota: tasmota_HP },
      tank: { min_c: 40, max_c: 60, temperature: { tasmota: tasmota_HP, sensor: DS18B20 } } }
`,
      { clock },
    );
    cleanups.push(() => h.stop());
    const goe = h.hub.registry.get('wallbox') as Device;
    const hp = h.hub.registry.get('hp') as Device;
    await until(() => goe.available && hp.available, 'go-e and heat pump available');
    const control = h.hub.services.control!;
    await control.settled();
    // with a flat tariff and the tank well above 40 °C, the plan leaves the heat pump to itself
    await until(() => hp.caps.heatPump!.sgReadyState() === 2, 'plan state normal');
    let surplusW = 0;
    const step = async () => {
      standin.tick();
      sim.step();
      h.hub.bus.emit('meter.reading', { deviceId: 'grid-meter', reading: { time: clock.now(), channel: 'grid', powerW: standin.powerW() + sim.powerW - surplusW } });
      await clock.advance(5 * S);
      const t = clock.now();
      await until(() => (goe.caps.meter!.last()?.time ?? 0) >= t, 'the poll of this step');
      await control.surplus.idle();
    };
    const live = async (minutes: number, w: number) => {
      surplusW = w;
      const end = clock.now() + minutes * MIN;
      while (clock.now() < end) await step();
    };
    standin.plug(true);
    await live(3, 3600);
    expect(hp.caps.heatPump!.sgReadyState()).toBe(3);
    expect([sim.relayA, sim.relayB]).toEqual([false, true]);
    expect(sim.running).toBe(true);
    // 3.6 kW − 2 kW for the heat pump leaves 1.6 kW: the go-e charges 6 A on one phase
    expect(standin.activePhases()).toBe(1);
    expect(standin.powerW()).toBe(1380);
    const views = control.surplus.view();
    expect(views.map((v) => v.id)).toEqual(['hp', 'wallbox']);
    expect(views[0]).toMatchObject({ mode: 'sg_ready', watts: 2000 });

    // the surplus goes: both stop after the disable delay, and the heat pump takes the plan's state again
    await live(4, 0);
    expect(standin.powerW()).toBe(0);
    await until(() => hp.caps.heatPump!.sgReadyState() === 2, 'back to the plan state');
    expect([sim.relayA, sim.relayB]).toEqual([false, false]);
  }, 120_000);
});
