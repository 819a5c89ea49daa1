import { describe, expect, it } from 'vitest';
import { GoeStandin } from '../../adapters/goe/standin.js';
import type { Device } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { followSurplus, type FollowerSpec, type FollowerState, type FollowerTiming } from '../../src/control/surplus.js';
import { startHub, type TestHub } from '../peers/hub.js';
import { until } from '../peers/mqtt.js';
import { cleanupsAfterEach } from '../peers/cleanups.js';
import { hubApi } from '../peers/api.js';

const cleanups = cleanupsAfterEach();

const S = 1000;
const MIN = 60 * S;
const timing: FollowerTiming = { enableDelayMs: 60 * S, disableDelayMs: 180 * S, phaseSwitchDelayMs: 300 * S, phaseHysteresisW: 200, stopHysteresisW: 300 };
const goe3: FollowerSpec = { mode: 'minpv', voltage: 230, minCurrentA: 6, maxCurrentA: 16, phases: 3, canSwitch: true };

/** Runs a follower through a surplus profile, one decision every 5 s; returns the decisions and the switch times. */
function run(spec: FollowerSpec, surplusAt: (t: number) => number, minutes: number, start: FollowerState = { on: false, phases: 3 }) {
  let st = start;
  const out: { t: number; watts: number; phases: 1 | 3 }[] = [];
  const switches: number[] = [];
  for (let t = 0; t <= minutes * MIN; t += 5 * S) {
    const d = followSurplus(spec, st, surplusAt(t), t, timing);
    if (d.state.lastSwitch !== st.lastSwitch) switches.push(t);
    st = d.state;
    out.push({ t, watts: d.watts, phases: d.phases });
  }
  return { out, switches, at: (t: number) => out.find((o) => o.t >= t)! };
}

describe('followSurplus (pure)', () => {
  it('minpv on a 3-phase charger that switches: 1.4 kW of surplus charges 6 A on one phase at once', () => {
    const r = run(goe3, () => 1400, 5);
    expect(r.at(0)).toMatchObject({ watts: 1380, phases: 1 });
    expect(r.switches).toEqual([0]);
  });

  it('goes to three phases once 4.14 kW (3 × 6 A × 230 V) has held for the enable delay, not at 4.0 kW', () => {
    const r = run(goe3, (t) => (t < 10 * MIN ? 1400 : t < 15 * MIN ? 4000 : 4300), 25);
    expect(r.at(14 * MIN)).toMatchObject({ phases: 1, watts: 16 * 230 });
    expect(r.at(15 * MIN + 55 * S)).toMatchObject({ phases: 1 });
    expect(r.at(16 * MIN + 5 * S)).toMatchObject({ phases: 3, watts: 6 * 230 * 3 });
    expect(r.switches).toEqual([0, 16 * MIN]);
  });

  it('clouds passing every 3.5 minutes do not toggle the contactor: at most one switch per phase_switch_delay', () => {
    // each sunny and each cloudy spell outlasts the enable and disable delays: without the phase-switch delay this switches every 210 s
    const cloudy = (t: number) => (Math.floor(t / (210 * S)) % 2 ? 4600 : 1500);
    const r = run(goe3, cloudy, 120);
    for (let i = 1; i < r.switches.length; i++) expect(r.switches[i] - r.switches[i - 1]).toBeGreaterThanOrEqual(300 * S);
    expect(r.switches.length).toBeLessThanOrEqual(120 / 5 + 1);
    // minpv never stops
    expect(r.out.every((o) => o.watts >= 1380)).toBe(true);
  });

  it('pv starts after the enable delay, stops after the disable delay, and tolerates stop_hysteresis_w of import', () => {
    const spec = { ...goe3, mode: 'pv' as const };
    const r = run(spec, (t) => (t < 5 * MIN ? 1000 : t < 20 * MIN ? 1500 : t < 30 * MIN ? 1200 : 500), 40, { on: false, phases: 1 });
    expect(r.at(4 * MIN).watts).toBe(0);
    expect(r.at(5 * MIN + 55 * S).watts).toBe(0);
    expect(r.at(6 * MIN + 5 * S).watts).toBe(1380);
    // 1200 W is within 300 W of the 1380 W minimum: goes on at 6 A
    expect(r.at(29 * MIN).watts).toBe(1380);
    expect(r.at(32 * MIN + 55 * S).watts).toBe(1380);
    expect(r.at(33 * MIN + 5 * S).watts).toBe(0);
  });

  it('a 3-phase charger that cannot switch needs 4.14 kW: pv at 4.0 kW never charges (the 0 Wh of issue 18)', () => {
    const r = run({ ...goe3, mode: 'pv', canSwitch: false }, () => 4000, 60);
    expect(r.out.every((o) => o.watts === 0)).toBe(true);
    const switching = run({ ...goe3, mode: 'pv' }, () => 4000, 60);
    expect(switching.at(60 * MIN)).toMatchObject({ phases: 1, watts: 16 * 230 });
  });
});

/** A hub with a go-e stand-in (real HTTP on 127.0.0.1, port 0) and a grid meter the test feeds: grid = charger − surplus. */
async function siteWithGoe(mode: 'minpv' | 'pv', extra = '') {
  const clock = new ManualClock('2026-06-01T10:00:00Z');
  const standin = new GoeStandin({ now: () => clock.now() });
  const url = await standin.listen(0);
  cleanups.push(() => standin.close());
  const yaml = `site: { id: home, timezone: Europe/Berlin }
tariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }
surplus: { interval_s: 5, enable_delay_s: 60, disable_delay_s: 180, phase_switch_delay_s: 300, source: grid }
devices:
  - { id: wallbox, adapter: goe, host: "${url}", poll_s: 5, charge_mode: ${mode}${extra} }
`;
  const h: TestHub = await startHub(yaml, { clock });
  cleanups.push(() => h.stop());
  const device = h.hub.registry.get('wallbox') as Device;
  await until(() => device.available, 'go-e available');
  const control = h.hub.services.control!;
  let surplusW = 0;
  /** Five seconds of site life: the grid meter reads, then the charger is polled and the dispatcher decides. */
  const step = async () => {
    standin.tick();
    h.hub.bus.emit('meter.reading', { deviceId: 'grid-meter', reading: { time: clock.now(), channel: 'grid', powerW: standin.powerW() - surplusW } });
    await clock.advance(5 * S);
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
  await live(0.1, 0);
  return { clock, standin, h, device, live, control };
}

const psmWrites = (s: GoeStandin) => s.writes.filter(([, k]) => k === 'psm');

describe('surplus dispatcher with a go-e stand-in (HTTP, manual clock)', () => {
  it('min+PV on a 3-phase go-e: charges from 1.4 kW on one phase, switches to three above 4.2 kW, and no more than one switch per phase_switch_delay', async () => {
    const { clock, standin, live, control } = await siteWithGoe('minpv');
    const t0 = clock.now();
    await live(10, 1400);
    expect([standin.keys.psm, standin.keys.amp, standin.keys.frc]).toEqual([1, 6, 2]);
    expect(standin.powerW()).toBe(1380);
    const whAfter10 = standin.keys.eto as number;
    expect(whAfter10).toBeGreaterThan(200);

    // 4.0 kW: below three phases' 4.14 kW minimum, so one phase at 16 A
    await live(3, 4000);
    expect(standin.activePhases()).toBe(1);
    expect(standin.keys.amp).toBe(16);
    // 4.3 kW: three phases after the enable delay
    await live(0.9, 4300);
    expect(standin.activePhases()).toBe(1);
    await live(0.5, 4300);
    expect(standin.activePhases()).toBe(3);
    expect(standin.powerW()).toBe(4140);
    expect(control.surplus.view()[0]).toMatchObject({ id: 'wallbox', mode: 'minpv', phases: 3 });

    // an hour of clouds passing every 3.5 minutes (each spell outlasts the enable and disable delays)
    await live(60, (t) => (Math.floor((t - t0) / (210 * S)) % 2 ? 4600 : 1500));
    const writes = psmWrites(standin);
    for (let i = 1; i < writes.length; i++) expect(writes[i][0] - writes[i - 1][0]).toBeGreaterThanOrEqual(300 * S);
    const minutes = (clock.now() - t0) / MIN;
    expect(standin.phaseSwitches()).toBeLessThanOrEqual(Math.floor(minutes / 5) + 1);
    expect(standin.phaseSwitches()).toBeGreaterThanOrEqual(2);
    // minpv never stopped the car
    expect(standin.writes.filter(([, k, v]) => k === 'frc' && v === 1)).toEqual([]);
  }, 120_000);

  it('PV only: nothing below the 1-phase minimum, starts at 1.5 kW after the enable delay, stops after the disable delay', async () => {
    const { standin, live } = await siteWithGoe('pv');
    // the go-e began charging by itself (forceState neutral): held off at once
    await live(2, 800);
    expect(standin.keys.frc).toBe(1);
    expect(standin.powerW()).toBe(0);
    await live(0.9, 1500);
    expect(standin.powerW()).toBe(0);
    await live(0.5, 1500);
    expect(standin.powerW()).toBe(1380);
    expect(standin.activePhases()).toBe(1);
    await live(2.9, 500);
    expect(standin.powerW()).toBe(1380);
    await live(0.5, 500);
    expect(standin.powerW()).toBe(0);
  }, 60_000);
});

describe('charge modes in the plan and the API', () => {
  it('plans off as nothing, now at full power, pv from surplus only, minpv as its 1-phase minimum in every slot plus surplus', async () => {
    const { parseConfig } = await import('../../src/core/config/load.js');
    const { builtinCatalog } = await import('../../src/core/catalog.js');
    const { buildSiteProblem } = await import('../../src/control/model.js');
    const { EnergyHistory } = await import('../../src/control/history.js');
    const config = parseConfig(`site: { id: home, timezone: Europe/Berlin }\ntariffs: { import: { type: fixed, rate: 0.3 } }\n`, 'site.yaml', { catalog: builtinCatalog, env: {} });
    const charger = (switching: boolean): Device => ({
      id: 'ev', name: 'ev', adapter: 'goe', available: true,
      caps: { charger: { status: () => 'suspended_evse', session: () => undefined, evSocPct: () => undefined, setLimit: async () => {}, phases: 3, voltage: 230, minCurrentA: 6, maxCurrentA: 16, ...(switching ? { phaseSwitching: { activePhases: () => 3 as const } } : {}) } },
    });
    const problemOf = (mode: string, switching = true) => buildSiteProblem({ now: Date.parse('2026-06-01T10:00:00Z'), config, devices: [{ device: charger(switching), config: { charge_mode: mode }, settings: {} }], limits: new Map(), history: new EnergyHistory() });
    const off = problemOf('off').problem.evs[0];
    expect(off.sessions).toEqual([]);
    const now = problemOf('now').problem.evs[0];
    expect(now.limits!.setpointW!.every((w) => w === 11040)).toBe(true);
    const pv = problemOf('pv');
    expect(pv.problem.evs[0]).toMatchObject({ solarOnly: true, minPowerW: 1380, maxPowerW: 11040 });
    expect(pv.notes.notes.join()).toMatch(/charge_mode pv/);
    // without phase switching a 3-phase charger needs three phases' minimum
    expect(problemOf('pv', false).problem.evs[0].minPowerW).toBe(4140);
    const minpv = problemOf('minpv').problem;
    expect(minpv.flows.find((f) => f.id === 'ev:min')!.powerW.every((w) => w === 1380)).toBe(true);
    expect(minpv.evs[0]).toMatchObject({ solarOnly: true, maxPowerW: 11040 - 1380 });
    // plan (the default) is the planner's own: no solar-only, three phases' minimum
    expect(problemOf('plan', false).problem.evs[0].solarOnly).toBeUndefined();
  });

  it('PUT /devices/{id}/mode sets the mode (the dispatcher takes the charger), refuses an unknown one naming the field, DELETE returns to the YAML', async () => {
    const { h, standin, live } = await siteWithGoe('pv', '');
    const api = hubApi(() => h.hub.url);
    const bad = await api('PUT', '/devices/wallbox/mode', { mode: 'solar' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: 'mode' });
    const set = await api('PUT', '/devices/wallbox/mode', { mode: 'minpv' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ charge_mode: 'minpv', overridden: ['charge_mode'] });
    // no surplus at all: minpv still charges its minimum on one phase
    await live(1, 0);
    expect(standin.powerW()).toBe(1380);
    const list = await api('GET', '/surplus');
    expect((list.body.data as { id: string; mode: string }[])[0]).toMatchObject({ id: 'wallbox', mode: 'minpv' });
    const back = await api('DELETE', '/devices/wallbox/mode');
    expect(back.body).toMatchObject({ charge_mode: 'pv' });
    expect((await api('PUT', '/devices/nope/mode', { mode: 'pv' })).status).toBe(404);
  }, 60_000);
});

describe('the plan on a charger that switches phases', () => {
  it('sends a slot below three phases\' minimum on one phase (else the charger would be paused), and above it on three', async () => {
    const { applySlot } = await import('../../src/control/apply.js');
    const { createLogger } = await import('../../src/core/logging.js');
    const sent: { watts: number; phases?: 1 | 3 }[] = [];
    const device: Device = {
      id: 'ev', name: 'ev', adapter: 'goe', available: true,
      caps: { charger: { status: () => 'charging', session: () => undefined, evSocPct: () => undefined, setLimit: async (l) => void sent.push({ watts: l.watts, phases: l.phases }), phases: 3, voltage: 230, minCurrentA: 6, maxCurrentA: 16, phaseSwitching: { activePhases: () => 3 } } },
    };
    const slots = [0, 1, 2].map((i) => ({ start: i * 900_000, end: (i + 1) * 900_000 }));
    const plan = { slots, devices: [{ id: 'ev', kind: 'ev', powerW: [2000, 5000, 0] }] } as never;
    for (const k of [0, 1, 2]) await applySlot({ plan, k, devices: new Map([['ev', device]]), validUntil: slots[k].end + 900_000, sent: new Map(), log: createLogger({ level: 'silent' }), paused: new Set() });
    expect(sent).toEqual([{ watts: 2000, phases: 1 }, { watts: 5000, phases: 3 }, { watts: 0, phases: 3 }]);
  });
});
