import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import type { Flexibility } from '../../src/control/flexibility.js';
import type { PlanView } from '../../src/control/view.js';
import { hubApi } from '../peers/api.js';

const SITE = `
site: { id: home, timezone: Europe/Berlin, currency: EUR,
        grid: { max_import_w: 11000, fallback_import_w: 3000 },
        circuits: [ { id: garage, max_import_w: 7400, fallback_import_w: 2000 } ] }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.30 }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: ev, adapter: sim_ev, circuit: garage, arrive: "18:00", leave: "07:30", arrival_soc_pct: 40, tick_s: 60,
      target: { energy_wh: 15000, leave_time: "07:30" } }
`;

const running: Hub[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) await h.stop();
});

async function start(at: string) {
  const clock = new ManualClock(at);
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-expiry-'));
  const hub = new Hub({ configText: SITE, clock, logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
  running.push(hub);
  await hub.start();
  await hub.services.control!.settled();
  return { hub, clock, api: hubApi(() => hub.url) };
}

const limitsOf = (plan: PlanView, id: string) => plan.limits.find((l) => l.id === id)!.max_import_w!;

describe('limits with valid_until', () => {
  it('hold until valid_until, then the configured fallback; without valid_until they hold for ever', async () => {
    const { api } = await start('2026-06-01T21:00:00Z');
    const put = await api('PUT', '/limits/home', { schedule_import: [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: 6000 }], valid_until: '2026-06-01T23:00:00Z' });
    expect(put.status).toBe(200);
    expect(put.body.valid_until).toBe('2026-06-01T23:00:00.000Z');
    await api('PUT', '/limits/garage', { schedule_import: [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: 5000 }], valid_until: '2026-06-02T01:00:00Z' });
    const plan = (await api('GET', '/plan')).body as unknown as PlanView;
    const site = limitsOf(plan, 'home');
    const garage = limitsOf(plan, 'garage');
    plan.slots.forEach((s, t) => {
      const at = Date.parse(s.start_time);
      expect(site[t]).toBe(at < Date.parse('2026-06-01T23:00:00Z') ? 6000 : 3000);
      expect(garage[t]).toBe(at < Date.parse('2026-06-02T01:00:00Z') ? 5000 : 2000);
      expect(plan.import_w[t]).toBeLessThanOrEqual(site[t]! + 1);
    });
    // a PUT without valid_until: the old contract, the last entry holds for ever
    const forever = await api('PUT', '/limits/home', { schedule_import: [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: 6000 }] });
    expect(forever.body.valid_until).toBeUndefined();
    const plan2 = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(limitsOf(plan2, 'home').every((w) => w === 6000)).toBe(true);
  });

  it('refuses a valid_until that is not a zoned RFC 3339 time or is already past, naming the field', async () => {
    const { api } = await start('2026-06-01T21:00:00Z');
    // before any external limit, the configured fallbacks hold (a child hub whose parent has not spoken yet)
    const fresh = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(limitsOf(fresh, 'home').every((w) => w === 3000)).toBe(true);
    expect(limitsOf(fresh, 'garage').every((w) => w === 2000)).toBe(true);
    const imp = [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: 6000 }];
    const bad = await api('PUT', '/limits/home', { schedule_import: imp, valid_until: '23:00' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: 'valid_until' });
    const past = await api('PUT', '/limits/home', { schedule_import: imp, valid_until: '2026-06-01T20:00:00Z' });
    expect(past.status).toBe(400);
    expect(String(past.body.message)).toMatch(/not in the future/);
    expect((await api('GET', '/limits')).body.data).toEqual([]);
  });
});

describe('GET /flexibility', () => {
  it('says what the hub needs by when: the EV target before its leave time, min/max/planned import per slot', async () => {
    const { api } = await start('2026-06-01T21:00:00Z');
    // a parent's tight limit must not shrink what the hub says it could use
    await api('PUT', '/limits/home', { schedule_import: [{ timestamp: '2026-06-01T21:00:00Z', total_power_W: 1000 }], valid_until: '2026-06-01T22:00:00Z' });
    const { status, body } = await api('GET', '/flexibility');
    expect(status).toBe(200);
    const flex = body as unknown as Flexibility;
    const plan = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(flex).toMatchObject({ object: 'flexibility', site_id: 'home', plan_id: plan.id, slot_minutes: 15 });
    expect(flex.needs).toEqual([{ device_id: 'ev', energy_wh: 15000, from: '2026-06-01T21:00:00.000Z', deadline: '2026-06-02T05:30:00.000Z', max_w: 11040 }]);
    expect(flex.slots.length).toBe(plan.slots.length);
    flex.slots.forEach((s, t) => {
      expect(s.start_time).toBe(plan.slots[t].start_time);
      expect(s.planned_w).toBeCloseTo(plan.import_w[t]!, 0);
      expect(s.min_w).toBeGreaterThanOrEqual(0);
      // the car (11 kW) is plugged in until 05:30Z; the site's own connection caps it at 11 kW
      if (Date.parse(s.end_time) <= Date.parse('2026-06-02T05:30:00Z')) expect(s.max_w).toBe(11000);
    });
  });
});
