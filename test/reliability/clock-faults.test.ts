import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { afterEach, describe, expect, it } from 'vitest';
import type { MeterReading } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import type { PlanRecord } from '../../src/control/view.js';
import { MeterStore } from '../../src/metering/store.js';

/**
 * The wall clock jumping forward and back (an NTP correction, a Raspberry Pi without RTC booting
 * in 1970 and then syncing) and the DST nights, under a running plan. ManualClock.jump moves
 * `now()` while timers keep what they had left, as the system clock does to setTimeout.
 */

const TZ = 'Europe/Berlin';
const SITE = `
site: { id: home, timezone: ${TZ}, currency: EUR, latitude: 50.1, grid: { max_import_w: 17000, max_export_w: 7000 } }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "06:00", rate: 0.20 }, { from: "06:00", to: "17:00", rate: 0.30 },
                                        { from: "17:00", to: "21:00", rate: 0.45 }, { from: "21:00", to: "00:00", rate: 0.30 } ] }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: ev, adapter: sim_ev, arrive: "18:00", leave: "07:30", arrival_soc_pct: 30, tick_s: 60,
      target: { energy_wh: 15000, leave_time: "07:30" } }
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 50, tick_s: 60 }
  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 60 }
  - { id: pv, adapter: sim_pv, kwp: 6, tick_s: 60 }
`;

const touAt = (t: number) => {
  const h = DateTime.fromMillis(t, { zone: TZ }).hour;
  return h < 6 ? 0.2 : h < 17 ? 0.3 : h < 21 ? 0.45 : 0.3;
};

const running: Hub[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) await h.stop();
});

async function start(at: string) {
  const clock = new ManualClock(at);
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-clock-'));
  const hub = new Hub({ configText: SITE, clock, logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
  running.push(hub);
  const readings: { deviceId: string; reading: MeterReading }[] = [];
  hub.bus.on('meter.reading', (e) => readings.push(e));
  const plans: PlanRecord[] = [];
  await hub.start();
  const control = hub.services.control!;
  await control.settled();
  plans.push(control.latest!);
  hub.bus.on('plan.updated', () => plans.push(control.latest!));
  /** Moves the hub clock forward minute by minute, letting the simulators tick and the loop re-plan. */
  const advance = async (ms: number, stop?: () => boolean) => {
    for (let left = ms; left > 0 && !stop?.(); left -= 60_000) {
      await clock.advance(Math.min(60_000, left));
      await control.settled();
    }
  };
  return { hub, clock, control, advance, readings, plans, dir };
}

/** The slot of the latest plan in force now, and the battery mode the plan wants there. */
function slotNow(hub: Hub) {
  const rec = hub.services.control!.latest!;
  const now = hub.clock.now();
  const k = rec.plan.slots.findIndex((s) => s.start <= now && now < s.end);
  return { rec, k, mode: k < 0 ? undefined : rec.plan.devices.find((d) => d.id === 'battery')!.modes![k] };
}

/** Every meter register only grows, and the store holds no negative or non-finite energy. */
async function checkMeters(h: Awaited<ReturnType<typeof start>>) {
  const last = new Map<string, number>();
  for (const { deviceId, reading } of h.readings) {
    for (const [kind, v] of [['import', reading.importWh], ['export', reading.exportWh]] as const) {
      if (v === undefined) continue;
      const key = `${deviceId}|${reading.channel}|${kind}`;
      expect(v, `${key} at ${new Date(reading.time).toISOString()}`).toBeGreaterThanOrEqual(last.get(key) ?? 0);
      last.set(key, v);
    }
  }
  await h.hub.services.metering!.settled();
  const store = h.hub.services.metering!.store as MeterStore;
  let rows = 0;
  for (const { subject } of store.subjects()) {
    const set = store.intervals(subject, -Infinity, Infinity);
    for (let i = 0; i < set.n; i++) {
      rows++;
      expect(Number.isFinite(set.energy[i]) && set.energy[i] >= 0, `${subject} row ${i}: ${set.energy[i]} Wh`).toBe(true);
      expect(set.end[i]).toBeGreaterThanOrEqual(set.start[i]);
    }
  }
  expect(rows).toBeGreaterThan(0);
}

describe('clock jumps under a running plan', () => {
  it('plans again within one slot after the clock jumps forward 3.5 h and back 3 h, drives the devices by it, and meters nothing backwards', async () => {
    const h = await start('2026-06-01T16:10:00Z');
    const { hub, clock, control, advance } = h;
    await advance(20 * 60_000);
    expect(hub.registry.get('battery')!.caps.storage!.state().mode).toBe(slotNow(hub).mode);

    for (const [label, to] of [['forward', '2026-06-01T19:40:00Z'], ['back', '2026-06-01T17:00:00Z']] as const) {
      const before = control.latest!.id;
      clock.jump(to);
      const target = Date.parse(to);
      // the slot timer keeps what it had left (at most one slot), then the loop must notice
      await advance(16 * 60_000, () => control.latest!.id !== before && control.latest!.createdAt >= target);
      const rec = control.latest!;
      expect(rec.id, `a new plan after the jump ${label}`).not.toBe(before);
      expect(rec.createdAt).toBeGreaterThanOrEqual(target);
      expect(rec.createdAt).toBeLessThanOrEqual(target + 15 * 60_000);
      expect(rec.plan.slots[0].start).toBe(rec.createdAt);
      // the plan prices the local hours it covers and commands the slot in force
      rec.plan.slots.forEach((s, t) => expect(rec.plan.importRate[t], `slot ${t} after the jump ${label}`).toBe(touAt(s.start)));
      await advance(60_000);
      const { k, mode } = slotNow(hub);
      expect(k).toBeGreaterThanOrEqual(0);
      expect(hub.registry.get('battery')!.caps.storage!.state().mode).toBe(mode);
    }
    // after the jump back the hub keeps planning every 15 minutes
    const n = h.plans.length;
    await advance(60 * 60_000);
    expect(h.plans.length - n).toBeGreaterThanOrEqual(3);
    // the car stayed plugged in all along: every plan came from the clock, none from a device event
    expect(h.plans.every((p) => p.trigger === 'start' || p.trigger === 'schedule')).toBe(true);
    await checkMeters(h);
  });
});

describe('DST nights under a running plan', () => {
  for (const night of [
    { name: 'spring forward (23-hour day)', start: '2026-03-28T22:30:00Z', leave: '2026-03-29T05:30:00Z', at: ['2026-03-29T00:45:00Z', '2026-03-29T01:00:00Z', '2026-03-29T03:45:00Z', '2026-03-29T04:00:00Z'] },
    { name: 'fall back (25-hour day)', start: '2026-10-24T22:30:00Z', leave: '2026-10-25T06:30:00Z', at: ['2026-10-25T00:45:00Z', '2026-10-25T01:00:00Z', '2026-10-25T04:45:00Z', '2026-10-25T05:00:00Z'] },
  ]) {
    it(`${night.name}: the rates follow the local clock, the car leaves at 07:30 local with its energy, and re-plans go on every 15 minutes`, async () => {
      const h = await start(night.start);
      const { hub, control, advance } = h;
      const first = control.latest!;
      const ev = first.plan.devices.find((d) => d.id === 'ev')!;
      expect(first.problem.evs[0].sessions[0].until).toBe(Date.parse(night.leave));
      // the local 06:00 rate change lands on the right UTC hour on both sides of the change
      const rateAt = (iso: string) => first.plan.importRate[first.plan.slots.findIndex((s) => s.start === Date.parse(iso))];
      expect(night.at.map(rateAt)).toEqual([0.2, 0.2, 0.2, 0.3]);
      void ev;
      const startWh = hub.registry.get('ev')!.caps.meter!.last()!.importWh!;
      await advance(Date.parse(night.leave) - Date.parse(night.start));
      const delivered = hub.registry.get('ev')!.caps.meter!.last()!.importWh! - startWh;
      expect(delivered).toBeGreaterThanOrEqual(15000 - 100);
      // no gap in planning across the changed hour
      const times = h.plans.map((p) => p.createdAt);
      for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeLessThanOrEqual(16 * 60_000);
      expect(times.length).toBeGreaterThanOrEqual(Math.floor((Date.parse(night.leave) - Date.parse(night.start)) / (15 * 60_000)));
      for (const p of h.plans) p.plan.slots.forEach((s, t) => expect(p.plan.importRate[t]).toBe(touAt(s.start)));
      await checkMeters(h);
    });
  }
});
