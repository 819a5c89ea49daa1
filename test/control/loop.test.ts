import { describe, expect, it } from 'vitest';
import type { PlanView } from '../../src/control/view.js';
import { hubApi, minuteStepper } from '../peers/api.js';
import { quietHubs } from '../peers/hub.js';

const SITE = `
site: { id: home, timezone: Europe/Berlin, currency: EUR, latitude: 50.1,
        grid: { max_import_w: 11000, max_export_w: 7000 }, circuits: [ { id: garage, max_import_w: 7400 } ] }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "06:00", rate: 0.20 }, { from: "06:00", to: "17:00", rate: 0.30 },
                                        { from: "17:00", to: "21:00", rate: 0.45 }, { from: "21:00", to: "00:00", rate: 0.30 } ] }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: ev, adapter: sim_ev, circuit: garage, arrive: "18:00", leave: "07:30", arrival_soc_pct: 40, tick_s: 60,
      target: { energy_wh: 15000, leave_time: "07:30" } }
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 50, tick_s: 60 }
  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 60 }
  - { id: pv, adapter: sim_pv, kwp: 6, tick_s: 60 }
  - { id: ac, adapter: sim_hvac, comfort: { min_c: 22, max_c: 25 }, tick_s: 60 }
  - { id: dishwasher, adapter: sim_socket, rated_power_w: 1800, tick_s: 60,
      schedule: { hours: 2, window: { from: "20:00", to: "06:00" } } }
`;

const hubOf = quietHubs('homeflex-control-');

/** 18:10 Berlin summer time: the car has just plugged in. */
async function start(at = '2026-06-01T16:10:00Z') {
  const { hub, clock, dir } = await hubOf(SITE, { at });
  const control = hub.services.control!;
  const api = hubApi(() => hub.url);
  /** Moves the hub clock forward, letting the simulators tick and the loop re-plan. */
  const advance = minuteStepper(clock, control);
  return { hub, clock, control, api, advance, dir };
}

const device = (plan: PlanView, id: string) => plan.devices.find((d) => d.id === id)!;

describe('control loop on simulated devices', () => {
  it('plans at start, serves the plan with reasons and limits, and drives every device by it', async () => {
    const { hub, api, control } = await start();
    const { status, body } = await api('GET', '/plan');
    expect(status).toBe(200);
    const plan = body as unknown as PlanView;
    expect(plan.object).toBe('plan');
    expect(Date.parse(plan.valid_until)).toBeGreaterThan(Date.parse(plan.created_at));
    expect(plan.slots[0].start_time).toBe('2026-06-01T16:10:00.000Z');
    expect(plan.slots[1].start_time).toBe('2026-06-01T16:15:00.000Z');
    expect(Date.parse(plan.slots.at(-1)!.end_time) - Date.parse(plan.slots[0].start_time)).toBeGreaterThanOrEqual(48 * 3_600_000);
    expect(plan.devices.map((d) => d.id).sort()).toEqual(['ac', 'battery', 'dishwasher', 'ev']);
    for (const d of plan.devices) expect(d.reasons).toHaveLength(plan.slots.length);
    expect(plan.limits.find((l) => l.id === 'garage')!.max_import_w![0]).toBe(7400);
    // the car gets its 15 kWh before 07:30, in the night's cheap hours, not at 45 ct
    const ev = device(plan, 'ev');
    expect(ev.shortfall_wh).toBe(0);
    expect(ev.energy_wh).toBeGreaterThanOrEqual(15000 - 1);
    expect(ev.leave_time).toBe('2026-06-02T05:30:00.000Z');
    plan.slots.forEach((s, t) => {
      const hour = new Date(Date.parse(s.start_time) + 2 * 3_600_000).getUTCHours();
      if (ev.power_w[t] > 0) expect(hour < 6 || hour >= 21).toBe(true);
    });
    // the dishwasher runs its 2 hours in the window, at night's cheapest rate
    const dw = device(plan, 'dishwasher');
    expect(dw.on!.filter(Boolean).length).toBe(8 * 2);
    // the first slot went to the devices: the battery is in the plan's inverter mode
    const battery = hub.registry.get('battery')!.caps.storage!;
    expect(battery.state().mode).toBe(device(plan, 'battery').modes![0]);
    expect(hub.services.state.data.plans.latest).toMatchObject({ id: plan.id });
    expect(control.latest!.solveMs).toBeGreaterThan(0);
  });

  it('applies each slot at its boundary and re-plans every 15 minutes', async () => {
    const { hub, control, advance } = await start('2026-06-01T20:50:00Z'); // 22:50 local
    const first = control.latest!;
    const ids = new Set([first.id]);
    hub.bus.on('plan.updated', (e) => ids.add(e.planId));
    await advance(60 * 60_000);
    expect(ids.size).toBeGreaterThanOrEqual(4);
    // the car charges as the current plan says (the simulator draws what it was told)
    const now = control.latest!;
    const k = now.plan.slots.findIndex((s) => s.start <= hub.clock.now() && hub.clock.now() < s.end);
    await advance(2 * 60_000);
    const ev = hub.registry.get('ev')!;
    const planned = now.plan.devices.find((d) => d.id === 'ev')!.powerW[k];
    expect(Math.abs((ev.caps.meter!.last()?.powerW ?? -1) - planned)).toBeLessThan(5);
  });

  it('external limits constrain the plan at once and show in it; bad bodies say which field is wrong', async () => {
    const { api, control } = await start('2026-06-01T21:00:00Z');
    const before = control.latest!.id;
    const put = await api('PUT', '/limits/home', { schedule_import: [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: 4000 }, { timestamp: '2026-06-02T03:00:00Z', total_power_W: 2500 }] });
    expect(put.status).toBe(200);
    expect(put.body.plan_id).not.toBe(before);
    const plan = (await api('GET', '/plan')).body as unknown as PlanView;
    const site = plan.limits.find((l) => l.id === 'home')!;
    plan.slots.forEach((s, t) => {
      const cap = Date.parse(s.start_time) < Date.parse('2026-06-02T03:00:00Z') ? 4000 : 2500;
      expect(site.max_import_w![t]).toBe(cap);
      expect(plan.import_w[t]).toBeLessThanOrEqual(cap + 1);
    });
    expect(site.external).toMatchObject({ schedule_import: [{ total_power_W: 4000 }, { total_power_W: 2500 }] });
    // a fixed setpoint for a device, the same way
    const sp = await api('PUT', '/limits/battery', { schedule_setpoints: [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: -1500 }, { timestamp: '2026-06-01T23:00:00Z', total_power_W: null }] });
    expect(sp.status).toBe(200);
    const fixed = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(device(fixed, 'battery').power_w.slice(0, 8)).toEqual(new Array(8).fill(-1500));
    expect(device(fixed, 'battery').reasons.slice(0, 9)).toEqual([...new Array(8).fill('setpoint'), expect.not.stringMatching('setpoint')]);

    const bad = await api('PUT', '/limits/home', { schedule_import: [{ timestamp: '21:00', total_power_W: 4000 }] });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ object: 'error', type: 'invalid_request', field: 'schedule_import[0].timestamp' });
    const neg = await api('PUT', '/limits/garage', { schedule_import: [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: -5 }] });
    expect(neg.body.field).toBe('schedule_import[0].total_power_W');
    const setp = await api('PUT', '/limits/garage', { schedule_setpoints: [] });
    expect(setp.body.field).toBe('schedule_setpoints');
    expect((await api('PUT', '/limits/attic', { schedule_import: [] })).status).toBe(404);
    // clearing the site's limit lifts it
    await api('DELETE', '/limits/home');
    const lifted = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(lifted.limits.find((l) => l.id === 'home')!.max_import_w![0]).toBe(11000);
  });

  it('a target, schedule or comfort change is stored as an override and re-plans at once', async () => {
    const { api, hub, control } = await start();
    const before = control.latest!.id;
    const r = await api('PUT', '/devices/ev/target', { energy_wh: 25000, leave_time: '06:00' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ target: { energy_wh: 25000, leave_time: '06:00' }, overridden: ['target'] });
    expect(r.body.plan_id).not.toBe(before);
    expect(hub.services.state.data.overrides.ev).toEqual({ target: { energy_wh: 25000, leave_time: '06:00' } });
    const plan = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(device(plan, 'ev').leave_time).toBe('2026-06-02T04:00:00.000Z');
    expect(device(plan, 'ev').energy_needed_wh).toBeGreaterThan(24000);

    // charge now: full power from now on, keeping the leave time
    await api('PUT', '/devices/ev/target', { charge_now: true });
    const now = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(device(now, 'ev').power_w.slice(0, 4)).toEqual([11040, 11040, 11040, 11040].map((w) => Math.min(w, 7400)));
    expect(device(now, 'ev').target).toMatchObject({ charge_now: true, leave_time: '06:00' });

    const comfort = await api('PUT', '/devices/ac/comfort', { min_c: 23, max_c: 24 });
    expect(comfort.body.comfort).toEqual({ min_c: 23, max_c: 24 });
    const cooler = (await api('GET', '/plan')).body as unknown as PlanView;
    for (const c of device(cooler, 'ac').temperature_c!.slice(8)) expect(c).toBeLessThanOrEqual(24 + 0.01);

    const sched = await api('PUT', '/devices/dishwasher/schedule', { hours: 1, window: { from: '02:00', to: '05:00' }, continuous: true });
    expect(sched.status).toBe(200);
    const dw = device((await api('GET', '/plan')).body as unknown as PlanView, 'dishwasher');
    expect(dw.on!.filter(Boolean).length).toBe(4 * 2);

    const pause = await api('PUT', '/devices/battery/pause', { paused: true });
    expect(pause.body.paused).toBe(true);
    const paused = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(device(paused, 'battery').power_w.every((w) => w === 0)).toBe(true);

    // errors name the field, and a device without the capability says so
    expect((await api('PUT', '/devices/ev/target', { energy_wh: -1 })).body.field).toBe('energy_wh');
    expect((await api('PUT', '/devices/ev/target', { leave: '06:00' })).body.field).toBe('leave');
    expect((await api('PUT', '/devices/ac/comfort', { min_c: 25, max_c: 22 })).body.field).toBe('min_c');
    expect((await api('PUT', '/devices/dishwasher/schedule', { hours: 2, window: { from: '8pm', to: '06:00' } })).body.field).toBe('window.from');
    const wrong = await api('PUT', '/devices/battery/comfort', { min_c: 20, max_c: 24 });
    expect(wrong.status).toBe(422);
    expect(wrong.body.message).toMatch(/no thermostat capability/);
    // the stored override is still the good one
    expect(hub.services.state.data.overrides.ac).toEqual({ comfort: { min_c: 23, max_c: 24 } });

    // dropping an override goes back to the YAML
    await api('DELETE', '/devices/ev/target');
    expect(((await api('GET', '/devices/ev/control')).body.target as Record<string, unknown>).energy_wh).toBe(15000);
  });

  it('fails safe: when the hub stops renewing, the battery and charger fall back by themselves', async () => {
    const { hub, clock, control } = await start('2026-06-01T21:00:00Z');
    await hub.services.control!.settled();
    // charge the battery from the grid on purpose, then stop the loop as if the hub hung
    hub.services.state.data.limits.battery = { schedule_setpoints: [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: 2000 }], updated_at: '2026-06-01T21:00:00Z' };
    await control.replan('test');
    const storage = hub.registry.get('battery')!.caps.storage!;
    expect(storage.state().mode).toBe('charge');
    const ev = hub.registry.get('ev')!;
    await control.stop();
    await clock.advance(40 * 60_000);
    expect(storage.state().mode).toBe('auto');
    // the charger's limit expired too: the car charges at the charger's own default (full power)
    expect(ev.caps.meter!.last()!.powerW).toBe(16 * 230 * 3);
  });

  it('answers 503 with the reason while it cannot plan', async () => {
    const { hub } = await hubOf(SITE.replace(/tariffs:[\s\S]*?devices:/, 'devices:'));
    const r = await fetch(`${hub.url}/api/v1/plan`);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ object: 'error', type: 'api_error', code: 'no_plan', message: expect.stringMatching(/no prices/) });
  });
});
