/**
 * Energy-tree benchmark (issue 19 item 3): `children` hubs of `cars` simulated cars each under one
 * parent hub with a shared 1 MW connection, all real hubs in this process with their HTTP servers on
 * 127.0.0.1 run-time ports, on manual clocks moved a minute at a time for `minutes` simulated
 * minutes. Measures per 15-minute slot the sum of the children's limits in force, of their planned
 * import and of their metered import (the simulated cars' power, sampled every minute), against
 * the parent's limit.
 *
 *   node --import tsx bench/energy-tree.ts [--children 4] [--cars 30] [--minutes 120]
 *
 * The simulated chargers wait for a command before they draw (failsafe_w 0, as a managed car park's
 * chargers with a default profile of 0 W); FAILSAFE_W=11040 has them draw full power until the hub
 * first commands them, as a charger without one does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { inForce, fromStored, type StoredLimits } from '../src/control/limits.js';
import { ManualClock } from '../src/core/clock.js';
import { Hub } from '../src/core/host.js';
import { createLogger } from '../src/core/logging.js';

const { values } = parseArgs({ options: { children: { type: 'string', default: '4' }, cars: { type: 'string', default: '30' }, minutes: { type: 'string', default: '120' } } });
const CHILDREN = Number(values.children);
const CARS = Number(values.cars);
const MINUTES = Number(values.minutes);
const LIMIT_W = 1_000_000;
const START = '2026-06-01T04:00:00Z';
const TOKEN = 'bench-token-0123456789';

const tariffs = `tariffs:
  import: { type: fixed, rate: 0.30 }
  export: { type: fixed, rate: 0.08 }
`;
const child = (i: number) => `site: { id: floor-${i}, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: ${CARS * 11040}, fallback_import_w: ${Math.floor(LIMIT_W / CHILDREN / 2)} } }
http: { port: 0, token: ${TOKEN} }
${tariffs}devices:
${Array.from({ length: CARS }, (_, k) => `  - { id: ev${k}, adapter: sim_ev, arrive: "18:00", leave: "07:30", arrival_soc_pct: ${20 + (k % 5) * 10}, tick_s: 60, failsafe_w: ${process.env.FAILSAFE_W ?? 0}, target: { energy_wh: ${10000 + (k % 4) * 5000}, leave_time: "${k % 2 ? '07:30' : '09:00'}" } }`).join('\n')}
`;
const parent = (urls: string[]) => `site: { id: building, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: ${LIMIT_W} } }
http: { port: 0 }
${tariffs}devices:
${urls.map((u, i) => `  - { id: floor_${i}, adapter: homeflex, url: "${u}", token: ${TOKEN}, poll_s: 60, limits_valid_minutes: 60 }`).join('\n')}
`;

const dirs: string[] = [];
async function start(yaml: string) {
  const clock = new ManualClock(START);
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bench-tree-'));
  dirs.push(dir);
  const hub = new Hub({ configText: yaml, clock, logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
  await hub.start();
  await hub.services.control!.settled();
  return { hub, clock, control: hub.services.control! };
}

const t0 = Date.now();
const children = [];
for (let i = 0; i < CHILDREN; i++) children.push(await start(child(i)));
const top = await start(parent(children.map((c) => c.hub.url!)));
const startedMs = Date.now() - t0;

type SlotStat = { limitW: number; plannedW: number; meteredSum: number; samples: number };
const slots = new Map<number, SlotStat>();
let peakRss = process.memoryUsage().rss;
for (let m = 0; m < MINUTES; m++) {
  const now = Date.parse(START) + m * 60_000;
  const slotStart = now - (now % (15 * 60_000));
  const s = slots.get(slotStart) ?? { limitW: 0, plannedW: 0, meteredSum: 0, samples: 0 };
  let limit = 0;
  let planned = 0;
  let metered = 0;
  for (const [i, c] of children.entries()) {
    const stored = c.hub.services.state.data.limits[`floor-${i}`] as StoredLimits | undefined;
    const l = stored ? fromStored(stored) : undefined;
    // in force now: the parent's limit before valid_until, else the fallback (the child's own plan says which)
    const lim = l && (l.validUntil === undefined || now < l.validUntil) ? inForce(l.import, now) : Math.floor(LIMIT_W / CHILDREN / 2);
    limit += lim ?? Infinity;
    const plan = c.control.latest?.plan;
    const k = plan ? plan.slots.findIndex((x) => x.start <= now && now < x.end) : -1;
    planned += k >= 0 ? plan!.importW[k] : 0;
    for (const d of c.hub.services.registry.all()) metered += Math.max(0, d.caps.meter?.last()?.powerW ?? 0);
  }
  s.limitW = Math.max(s.limitW, limit);
  s.plannedW = Math.max(s.plannedW, planned);
  if (m < 3) console.error(`minute ${m}: metered ${Math.round(metered)} W, limits ${limit} W`);
  s.meteredSum += metered;
  s.samples++;
  slots.set(slotStart, s);
  for (const c of [...children, top]) await c.clock.advance(60_000);
  for (const c of [...children, top]) await c.control.settled();
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}
const wallS = (Date.now() - t0) / 1000;
const rows = [...slots.entries()].map(([t, s]) => ({ slot: new Date(t).toISOString().slice(11, 16), limit_sum_w: s.limitW, planned_sum_w: Math.round(s.plannedW), metered_mean_w: Math.round(s.meteredSum / s.samples) }));
console.table(rows);
const worst = (k: 'limit_sum_w' | 'planned_sum_w' | 'metered_mean_w') => Math.max(...rows.map((r) => r[k]));
const over = rows.filter((r) => r.limit_sum_w > LIMIT_W || r.planned_sum_w > LIMIT_W + 1 || r.metered_mean_w > LIMIT_W + 1).length;
console.log(JSON.stringify({ children: CHILDREN, cars_each: CARS, simulated_minutes: MINUTES, slots: rows.length, limit_w: LIMIT_W, max_limit_sum_w: worst('limit_sum_w'), max_planned_sum_w: worst('planned_sum_w'), max_metered_slot_mean_w: worst('metered_mean_w'), slots_over_limit: over, start_s: startedMs / 1000, wall_s: wallS, peak_rss_mb: Math.round(peakRss / 1e6) }));
for (const c of [top, ...children]) await c.hub.stop();
for (const d of dirs) rmSync(d, { recursive: true, force: true });
