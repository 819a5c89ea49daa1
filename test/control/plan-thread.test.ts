import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PlanThread, PlanTimeout } from '../../src/control/plan-thread.js';
import { shiftedPlan } from '../../src/control/shift.js';
import { loadSolver } from '../../src/control/solver.js';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { exampleSite } from '../../src/optimiser/site/example.js';
import { planSite, type SiteProblem } from '../../src/optimiser/site/index.js';

/** The optimiser's example house with `n` more chargers on the garage circuit: a car park. */
function carPark(n: number): SiteProblem {
  const p = exampleSite(3);
  const ev = p.evs[0];
  for (let i = 0; i < n; i++) p.evs.push({ ...ev, id: `ev${i}`, sessions: ev.sessions.map((s) => ({ ...s, energyNeededWh: s.energyNeededWh * (0.5 + (i % 5) / 10) })) });
  p.circuits[0].maxImportW = p.circuits[0].maxImportW.map(() => 11000 * (1 + n / 4));
  p.grid.maxImportW = p.grid.maxImportW.map(() => 11000 * (1 + n / 4));
  return { ...p, options: { method: 'lp' } };
}

const threads: PlanThread[] = [];
const hubs: Hub[] = [];
afterEach(async () => {
  for (const t of threads.splice(0)) await t.close();
  for (const h of hubs.splice(0)) await h.stop();
});
const thread = (options?: ConstructorParameters<typeof PlanThread>[0]) => {
  const t = new PlanThread(options);
  threads.push(t);
  return t;
};

describe('the planning thread', () => {
  it('makes the same plan as the planner in-process, and the hub thread runs meanwhile', async () => {
    const problem = carPark(20);
    const inProcess = planSite(problem, await loadSolver());
    const t = thread();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const before = ticks;
    const { plan, solveMs } = await t.plan(problem, 120_000);
    clearInterval(timer);
    expect(plan.status).toBe(inProcess.status);
    expect(plan.cost).toBe(inProcess.cost);
    expect(plan.devices.map((d) => d.powerW)).toEqual(inProcess.devices.map((d) => d.powerW));
    expect(plan.solver.columns).toBe(inProcess.solver.columns);
    expect(solveMs).toBeGreaterThan(0);
    // timers of this thread fired while the other one planned
    expect(ticks - before).toBeGreaterThan(0);
    expect(t.stats).toMatchObject({ started: 1, recycled: 0, timeouts: 0 });
    expect(t.stats.wasmBytes).toBeGreaterThan(0);
  });

  it('gives up a plan past its time limit, stops that thread and plans again in a new one', async () => {
    const t = thread();
    await expect(t.plan(carPark(40), 1)).rejects.toBeInstanceOf(PlanTimeout);
    expect(t.stats).toMatchObject({ started: 1, timeouts: 1 });
    const { plan } = await t.plan(exampleSite(1), 120_000);
    expect(plan.status).toMatch(/optimal|within_gap/);
    expect(t.stats.started).toBe(2);
  });

  it("replaces the thread when HiGHS' memory grew past its bound, and the next plan is the same", async () => {
    const t = thread({ maxWasmBytes: 1 });
    const first = await t.plan(exampleSite(2), 120_000);
    expect(t.stats).toMatchObject({ started: 1, recycled: 1 });
    const second = await t.plan(exampleSite(2), 120_000);
    expect(t.stats).toMatchObject({ started: 2, recycled: 2 });
    expect(second.plan.devices).toEqual(first.plan.devices);
  });

  it('stops at once while a plan is being solved: the plan is given up with an error', async () => {
    const t = thread();
    const pending = t.plan(carPark(60), 120_000);
    const failed = expect(pending).rejects.toThrow(/planning thread is stopped/);
    await new Promise((r) => setTimeout(r, 300));
    await t.close();
    await failed;
    await expect(t.plan(exampleSite(1), 1000)).rejects.toThrow(/stopped/);
  });

  it('answers a failing plan with its error and keeps planning', async () => {
    const t = thread();
    const bad = exampleSite(1);
    bad.batteries[0].socMinWh = 20_000;
    bad.batteries[0].socMaxWh = 10_000;
    await expect(t.plan(bad, 120_000)).rejects.toThrow(/battery "battery": socMinWh above socMaxWh/);
    expect((await t.plan(exampleSite(1), 120_000)).plan.status).toMatch(/optimal|within_gap/);
    expect(t.stats.started).toBe(1);
  });
});

const SITE = `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "17:00", rate: 0.20 }, { from: "17:00", to: "00:00", rate: 0.45 } ] }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 50, tick_s: 60 }
  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 60 }
`;

async function startHub() {
  const clock = new ManualClock('2026-06-01T10:00:00Z');
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-plan-thread-'));
  const hub = new Hub({ configText: SITE, clock, logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
  hubs.push(hub);
  await hub.start();
  return { hub, clock };
}

describe('a plan not made in time', () => {
  it('is replaced by the previous plan shifted to now, with a note', async () => {
    const { hub, clock } = await startHub();
    const control = hub.services.control!;
    await control.settled();
    const first = control.latest!;
    expect(control.thread!.stats.started).toBe(1);
    // 45 minutes on, with a time limit no plan can meet
    clock.set(Date.parse('2026-06-01T10:45:00Z'));
    hub.config.planner.time_limit_s = 0.001;
    const stand = (await control.replan('test'))!;
    expect(control.thread!.stats.timeouts).toBe(1);
    expect(stand.id).not.toBe(first.id);
    expect(control.latest).toBe(stand);
    expect(stand.notes.notes[0]).toMatch(/not solved within its time limit.*kept, shifted to now/);
    // the slots from 10:45 on, with what the first plan had for them
    expect(stand.plan.slots[0].start).toBe(Date.parse('2026-06-01T10:45:00Z'));
    expect(stand.plan.slots).toEqual(first.plan.slots.slice(3));
    const battery = (r: typeof first) => r.plan.devices.find((d) => d.id === 'battery')!;
    expect(battery(stand).powerW).toEqual(battery(first).powerW.slice(3));
    expect(stand.plan.importW).toEqual(first.plan.importW.slice(3));
    expect(stand.problem.importRate).toEqual(first.problem.importRate.slice(3));
    // the plan served says so
    const res = await fetch(`${hub.url}/api/v1/plan`);
    const view = (await res.json()) as { id: string; notes: string[]; slots: unknown[]; devices: { device_id: string; power_w: number[] }[] };
    expect(view.id).toBe(stand.id);
    expect(view.notes[0]).toMatch(/shifted to now/);
    expect(view.slots.length).toBe(first.plan.slots.length - 3);
    // once planning is quick enough again, a fresh plan replaces it
    hub.config.planner.time_limit_s = 60;
    const fresh = (await control.replan('test'))!;
    expect(fresh.notes.notes.join(' ')).not.toMatch(/shifted to now/);
    expect(fresh.plan.slots.length).toBe(first.plan.slots.length);
  });

  it('shifts nothing it should not: a plan with no slot left stands in for nothing', async () => {
    const { hub } = await startHub();
    await hub.services.control!.settled();
    const rec = hub.services.control!.latest!;
    expect(shiftedPlan(rec, rec.plan.slots[rec.plan.slots.length - 1].end + 1, 'late')).toBeUndefined();
    const same = shiftedPlan(rec, rec.plan.slots[0].start, 'now')!;
    expect(same.plan.devices).toEqual(rec.plan.devices);
    expect(same.plan.warnings).toEqual(rec.plan.warnings);
    expect(same.notes.notes[0]).toBe('now');
  });
});
