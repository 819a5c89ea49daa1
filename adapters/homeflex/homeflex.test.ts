import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import type { StoredLimits } from '../../src/control/limits.js';
import type { PlanView } from '../../src/control/view.js';

/**
 * An energy tree of real hubs in one process, each with its own HTTP server on a run-time port:
 * a parent with a 24 kW connection and two floor hubs as `homeflex` devices. Floor A has two cars
 * that need 15 kWh each by 07:30 local (05:30Z), an hour and a half away: 20 kW on average, more
 * than an equal half of the parent's connection; floor B is idle.
 */
const START = '2026-06-01T04:00:00Z';
const DEADLINE = Date.parse('2026-06-01T05:30:00Z');
const TOKEN = 'floor-token-0123456789';

const floor = (id: string, devices: string) => `
site: { id: ${id}, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: 30000, fallback_import_w: 5000 } }
http: { port: 0, token: ${TOKEN} }
tariffs:
  import: { type: fixed, rate: 0.30 }
  export: { type: fixed, rate: 0.08 }
devices:
${devices}`;

const FLOOR_A = floor('floor-a', `  - { id: ev1, adapter: sim_ev, arrive: "18:00", leave: "07:30", arrival_soc_pct: 40, tick_s: 60, target: { energy_wh: 15000, leave_time: "07:30" } }
  - { id: ev2, adapter: sim_ev, arrive: "18:00", leave: "07:30", arrival_soc_pct: 40, tick_s: 60, target: { energy_wh: 15000, leave_time: "07:30" } }
`);
const FLOOR_B = floor('floor-b', `  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 60 }
`);

const parent = (a: string, b: string) => `
site: { id: building, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: 24000 } }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.30 }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: floor_a, adapter: homeflex, url: "${a}", token: "\${FLOOR_TOKEN}", poll_s: 30, limits_valid_minutes: 120 }
  - { id: floor_b, adapter: homeflex, url: "${b}", token: "\${FLOOR_TOKEN}", poll_s: 30, limits_valid_minutes: 120 }
`;

const running: Hub[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) await h.stop().catch(() => undefined);
});

async function start(yaml: string) {
  const clock = new ManualClock(START);
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-tree-'));
  const hub = new Hub({ configText: yaml, clock, logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
  running.push(hub);
  await hub.start();
  await hub.services.control!.settled();
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${hub.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    return (await r.json()) as Record<string, unknown>;
  };
  return { hub, clock, api, control: hub.services.control! };
}

const siteLimit = (plan: PlanView, id: string) => plan.limits.find((l) => l.id === id)!.max_import_w!;
const scheduleOf = async (api: (m: string, p: string) => Promise<Record<string, unknown>>, id: string) => ((await api('GET', '/limits')).data as (StoredLimits & { id: string })[]).find((l) => l.id === id);

describe('homeflex adapter: hubs as nodes of an energy tree', () => {
  it('shares the parent connection by need, never above its limit, and the limits expire to the fallback', async () => {
    process.env.FLOOR_TOKEN = TOKEN;
    const a = await start(FLOOR_A);
    const b = await start(FLOOR_B);
    const p = await start(parent(a.hub.url!, b.hub.url!));

    // the parent sees both floors, plans them and sends each its import limit per slot
    const pplan = (await p.api('GET', '/plan')) as unknown as PlanView;
    expect(pplan.devices.map((d) => d.id)).toEqual(expect.arrayContaining(['floor_a', 'floor_b']));
    await a.control.settled();
    await b.control.settled();
    const la = await scheduleOf(a.api, 'floor-a');
    const lb = await scheduleOf(b.api, 'floor-b');
    expect(la?.valid_until).toBe('2026-06-01T06:00:00.000Z');
    expect(lb?.valid_until).toBe('2026-06-01T06:00:00.000Z');
    const at = (l: StoredLimits, t: number) => [...l.schedule_import!].reverse().find((e) => Date.parse(e.timestamp) <= t)!.total_power_W;
    // the sum of the children's limits never exceeds the parent's connection, in any slot
    for (const s of pplan.slots) {
      const t = Date.parse(s.start_time);
      expect(at(la!, t) + at(lb!, t)).toBeLessThanOrEqual(24000);
    }
    // floor A gets what it needs before the deadline (30 kWh), more than an equal half (12 kW × 1.5 h = 18 kWh)
    const slotH = 0.25;
    const givenA = pplan.slots.filter((s) => Date.parse(s.end_time) <= DEADLINE).reduce((e, s) => e + at(la!, Date.parse(s.start_time)) * slotH, 0);
    expect(givenA).toBeGreaterThanOrEqual(30000);
    // and floor A's own plan delivers both cars' 15 kWh under those limits
    const aplan = (await a.api('GET', '/plan')) as unknown as PlanView;
    const limA = siteLimit(aplan, 'floor-a');
    aplan.slots.forEach((s, t) => {
      if (Date.parse(s.start_time) < Date.parse('2026-06-01T06:00:00Z')) expect(limA[t]).toBe(at(la!, Date.parse(s.start_time)));
      expect(aplan.import_w[t]!).toBeLessThanOrEqual(limA[t]! + 1);
    });
    for (const ev of ['ev1', 'ev2']) {
      const d = aplan.devices.find((x) => x.id === ev)!;
      const wh = aplan.slots.reduce((e, s, t) => e + (Date.parse(s.end_time) <= DEADLINE ? d.power_w[t] * slotH : 0), 0);
      expect(wh).toBeGreaterThanOrEqual(15000 - 1);
    }

    // the parent stops: the floors keep their limits until valid_until, then fall back to 5 kW
    await p.hub.stop();
    await a.clock.advance(60 * 60_000);
    await a.control.replan('test: an hour later, no parent');
    const kept = (await a.api('GET', '/plan')) as unknown as PlanView;
    expect(siteLimit(kept, 'floor-a')[0]).toBe(at(la!, Date.parse(kept.slots[0].start_time)));
    await a.clock.advance(61 * 60_000);
    await a.control.replan('test: after valid_until');
    const after = (await a.api('GET', '/plan')) as unknown as PlanView;
    expect(siteLimit(after, 'floor-a').every((w) => w === 5000)).toBe(true);
  }, 120_000);

  it('an unreachable child is an unavailable device, left out of the plan', async () => {
    process.env.FLOOR_TOKEN = TOKEN;
    const p = await start(parent('http://127.0.0.1:9', 'http://127.0.0.1:9'));
    const dev = (await p.api('GET', '/devices/floor_a')) as { available?: boolean; error?: string };
    expect(dev.available).toBe(false);
    expect(dev.error).toMatch(/fetch failed|ECONNREFUSED/);
    const plan = (await p.api('GET', '/plan')) as unknown as PlanView;
    expect(plan.devices.map((d) => d.id)).not.toContain('floor_a');
  });
});
