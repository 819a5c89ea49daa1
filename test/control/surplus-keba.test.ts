import { afterEach, describe, expect, it } from 'vitest';
import { KebaStandin } from '../../adapters/keba/standin.js';
import type { Device } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { startHub, type TestHub } from '../peers/hub.js';
import { until } from '../peers/mqtt.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const S = 1000;
const MIN = 60 * S;

/** A hub with a KEBA stand-in (real UDP on 127.0.0.1, port chosen at run time) and a grid meter the test feeds: grid = charger − surplus. */
async function siteWithKeba(mode: 'minpv' | 'pv') {
  const clock = new ManualClock('2026-06-01T10:00:00Z');
  const standin = new KebaStandin({ now: () => clock.now() });
  const port = await standin.listen(0);
  cleanups.push(() => standin.close());
  const yaml = `site: { id: home, timezone: Europe/Berlin }
tariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }
surplus: { interval_s: 10, enable_delay_s: 60, disable_delay_s: 180, phase_switch_delay_s: 300, source: grid }
devices:
  - { id: wallbox, adapter: keba, host: 127.0.0.1, port: ${port}, local_port: 0, poll_s: 10, phase_switching: true, charge_mode: ${mode} }
`;
  const h: TestHub = await startHub(yaml, { clock });
  cleanups.push(() => h.stop());
  const device = h.hub.registry.get('wallbox') as Device;
  await until(() => device.available, 'KEBA available');
  const control = h.hub.services.control!;
  let surplusW = 0;
  /** Ten seconds of site life: the grid meter reads, then the station is polled and the dispatcher decides. */
  const step = async () => {
    // the grid meter measured at the same instant as the station's last report 3
    const station = device.caps.meter!.last()!;
    h.hub.bus.emit('meter.reading', { deviceId: 'grid-meter', reading: { time: clock.now(), channel: 'grid', powerW: station.powerW! - surplusW } });
    await clock.advance(10 * S);
    const t = clock.now();
    await until(() => (device.caps.meter!.last()?.time ?? 0) >= t, 'the poll of this step');
    await control.surplus.idle();
  };
  const live = async (minutes: number, w: number | ((t: number) => number)) => {
    const end = clock.now() + minutes * MIN;
    while (clock.now() < end) {
      surplusW = typeof w === 'number' ? w : w(clock.now());
      await step();
    }
  };
  standin.plug(true);
  await live(0.2, 0);
  return { clock, standin, h, device, live, control };
}

describe('surplus dispatcher with a KEBA P30 stand-in (UDP, manual clock)', () => {
  it('min+PV on a 3-phase KEBA: charges from 1.4 kW on one phase, switches to three above 4.2 kW, and no more than one switch per phase_switch_delay', async () => {
    const { clock, standin, live, control } = await siteWithKeba('minpv');
    const t0 = clock.now();
    await live(5, 1400);
    expect([standin.x2src, standin.x2, standin.currUserMa, standin.enableUser]).toEqual([4, 0, 6000, 1]);
    expect(standin.activePhases()).toBe(1);
    expect(standin.powerW()).toBe(1380);
    expect(standin.ePres / 10).toBeGreaterThan(90);

    // 4.0 kW: below three phases' 4.14 kW minimum, so one phase at 16 A
    await live(2, 4000);
    expect(standin.activePhases()).toBe(1);
    expect(standin.currUserMa).toBe(16000);
    // 4.3 kW: three phases once it has held for the enable delay
    await live(0.8, 4300);
    expect(standin.activePhases()).toBe(1);
    await live(0.7, 4300);
    expect(standin.activePhases()).toBe(3);
    expect(standin.powerW()).toBe(4140);
    expect(control.surplus.view()[0]).toMatchObject({ id: 'wallbox', mode: 'minpv', phases: 3 });

    // twenty minutes of clouds passing every 3.5 minutes (each spell outlasts the enable and disable delays)
    await live(20, (t) => (Math.floor((t - t0) / (210 * S)) % 2 ? 4600 : 1500));
    const changes = standin.phaseChanges;
    expect(changes.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < changes.length; i++) expect(changes[i][0] - changes[i - 1][0]).toBeGreaterThanOrEqual(300 * S);
    expect(changes.length).toBeLessThanOrEqual(Math.floor((clock.now() - t0) / (300 * S)) + 1);
    // min+PV never disabled the station, and every datagram kept KEBA's 100 ms pause
    expect(standin.commands.filter(([, c]) => c === 'ena 0')).toEqual([]);
    expect(standin.received.filter((r) => !r.accepted)).toEqual([]);
  }, 180_000);

  it('PV only on a KEBA: disabled below the 1-phase minimum, starts at 1.5 kW after the enable delay on one phase, disabled again after the disable delay', async () => {
    const { standin, live } = await siteWithKeba('pv');
    // a P30 left enabled charges at its own Curr user (63 A, capped by Curr HW): pv disables it at once
    await live(0.5, 800);
    expect(standin.enableUser).toBe(0);
    expect(standin.powerW()).toBe(0);
    await live(0.8, 1500);
    expect(standin.powerW()).toBe(0);
    await live(0.5, 1500);
    expect([standin.enableUser, standin.activePhases(), standin.powerW()]).toEqual([1, 1, 1380]);
    await live(2.8, 500);
    expect(standin.powerW()).toBe(1380);
    await live(0.5, 500);
    expect([standin.enableUser, standin.powerW()]).toEqual([0, 0]);
    expect(standin.received.filter((r) => !r.accepted)).toEqual([]);
  }, 120_000);
});
