import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateStore } from '../../src/core/store/state.js';
import { MeterStore } from '../../src/metering/store.js';
import { spawnCli } from '../peers/hub-process.js';

/**
 * The real hub, as `homeflex start` runs it, SIGKILLed 20 times at random moments while meter
 * records arrive over its HTTP API and external limits make it re-plan (each a write of the state
 * file). After each kill: every acknowledged record is in the meter store exactly once and nothing
 * else is, the state store opens with the last acknowledged limits, and the restarted hub has a
 * plan again at once, made with those limits.
 */

const KILLS = 20;
const T0 = Date.parse('2026-01-05T00:00:00Z');
const MIN = 60_000;
const BATCH = 40;

const SITE = `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
storage: { dir: ./data }
log: { level: info, format: json }
tariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 5 }
  - { id: house, adapter: sim_load, tick_s: 5 }
`;

/** A small seeded generator, so a failing run can be repeated. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1_664_525 + 1_013_904_223) >>> 0) / 2 ** 32);
}

/** Record k: minute k after T0, k + 0.5 Wh, reference r<k>. */
const record = (k: number) => ({
  device_id: 'ext-meter',
  units: 'WH',
  value: k + 0.5,
  start_time: new Date(T0 + k * MIN).toISOString(),
  end_time: new Date(T0 + (k + 1) * MIN).toISOString(),
  record_reference_id: `r${k}`,
});

interface Child {
  proc: ChildProcess;
  url: string;
  startedAt: number;
  output: () => string;
}


async function startHub(file: string): Promise<Child> {
  const startedAt = Date.now();
  const cli = spawnCli(['start', '--config', file]);
  const proc = cli.child;
  const end = Date.now() + 60_000;
  for (;;) {
    const url = /"url":"(http:[^"]+)"/.exec(cli.out)?.[1];
    if (url) return { proc, url, startedAt, output: () => cli.out };
    if (proc.exitCode !== null || Date.now() > end) throw new Error(`the hub did not start:\n${cli.out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const json = { 'content-type': 'application/json' };

describe('the hub killed with SIGKILL during meter ingestion and plan writes', () => {
  it(`keeps every acknowledged record once, opens its stores and plans again, ${KILLS} times`, async () => {
    const seed = Number(process.env.HOMEFLEX_KILL_SEED ?? 20261123);
    const random = prng(seed);
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-hub-kill-'));
    const file = join(dir, 'site.yaml');
    writeFileSync(file, SITE);
    const acked = new Set<number>();
    let sent = 0; // records 0..sent-1 were sent at least once
    let limitSent = 0;
    let limitAcked = 0;
    let interrupted = 0;
    const where = (round: number) => `round ${round} (seed ${seed})`;

    for (let round = 0; round <= KILLS; round++) {
      const hub = await startHub(file);

      // restarted: the stores opened and the plan is there at once, made with the stored limits
      const planRes = await fetch(`${hub.url}/api/v1/plan`);
      expect(planRes.status, `${where(round)}: ${hub.output()}`).toBe(200);
      const plan = (await planRes.json()) as { created_at: string; limits: { id: string; max_import_w: (number | null)[] }[] };
      expect(Date.parse(plan.created_at)).toBeGreaterThanOrEqual(hub.startedAt - 1000);
      if (limitAcked) {
        const cap = plan.limits.find((l) => l.id === 'home')!.max_import_w[0]!;
        expect(cap, where(round)).toBeGreaterThanOrEqual(5000 + limitAcked);
        expect(cap, where(round)).toBeLessThanOrEqual(5000 + limitSent);
      }
      if (round === KILLS) {
        // the last start: every acknowledged record over the API, once, then a clean stop
        const r = await fetch(`${hub.url}/api/v1/costs/interval/ext-meter?aggregation=NONE`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ start_time: new Date(T0).toISOString(), end_time: new Date(T0 + sent * MIN).toISOString() }),
        });
        const body = (await r.json()) as { data: { record_reference_id: string; energy: { value: number } }[] };
        const refs = body.data.map((d) => d.record_reference_id);
        expect(new Set(refs).size).toBe(refs.length);
        const byRef = new Map(body.data.map((d) => [d.record_reference_id, d.energy.value]));
        for (const k of acked) expect(byRef.get(`r${k}`), `record ${k}`).toBe(k + 0.5);
        hub.proc.kill('SIGTERM');
        const code = await new Promise((r) => hub.proc.once('exit', (c) => r(c)));
        expect(code).toBe(0);
        break;
      }

      // ingest (two writers) and re-plan (one writer) until the kill
      let killed = false;
      let firstAck!: () => void;
      const gotFirstAck = new Promise<void>((r) => (firstAck = r));
      const ingest = async () => {
        while (!killed) {
          const from = sent;
          sent += BATCH;
          const batch = Array.from({ length: BATCH }, (_, i) => record(from + i));
          try {
            const res = await fetch(`${hub.url}/api/v1/meters/interval`, { method: 'PUT', headers: json, body: JSON.stringify(batch) });
            const b = (await res.json()) as { records_processed?: number };
            expect(res.status, JSON.stringify(b)).toBe(200);
            expect(b.records_processed).toBe(BATCH);
            for (let i = 0; i < BATCH; i++) acked.add(from + i);
            firstAck();
          } catch (err) {
            if (killed) return; // in flight when the hub died: not acknowledged
            throw err;
          }
        }
      };
      const replan = async () => {
        while (!killed) {
          const n = ++limitSent;
          try {
            const res = await fetch(`${hub.url}/api/v1/limits/home`, { method: 'PUT', headers: json, body: JSON.stringify({ schedule_import: [{ timestamp: new Date().toISOString(), total_power_W: 5000 + n }] }) });
            expect(res.status).toBe(200);
            await res.json();
            limitAcked = Math.max(limitAcked, n);
          } catch (err) {
            if (killed) return;
            throw err;
          }
        }
      };
      const writers = [ingest(), ingest(), replan()];
      await gotFirstAck;
      await new Promise((r) => setTimeout(r, random() * 800));
      killed = true;
      hub.proc.kill('SIGKILL');
      await new Promise((r) => (hub.proc.exitCode !== null || hub.proc.signalCode !== null ? r(null) : hub.proc.once('exit', r)));
      await Promise.all(writers);

      // the dead hub's stores: the meter store opens and holds exactly the records sent, each once
      const store = await MeterStore.open(join(dir, 'data', 'metering'));
      try {
        const set = store.intervals('d.ext-meter', -Infinity, Infinity, { labels: true });
        const seen = new Set<number>();
        for (let i = 0; i < set.n; i++) {
          const k = (set.start[i] - T0) / MIN;
          expect(Number.isInteger(k) && k >= 0 && k < sent, `${where(round)}: a row at ${new Date(set.start[i]).toISOString()}`).toBe(true);
          expect(seen.has(k), `${where(round)}: record ${k} twice`).toBe(false);
          seen.add(k);
          expect([set.end[i] - set.start[i], set.energy[i], set.ref![i]]).toEqual([MIN, k + 0.5, `r${k}`]);
        }
        for (const k of acked) expect(seen.has(k), `${where(round)}: acknowledged record ${k} lost`).toBe(true);
        // the kill landed inside a write: a batch on disk whose answer never came, or one that never got there
        if (seen.size > acked.size || sent > seen.size) interrupted++;
      } finally {
        await store.close();
      }
      const state = await StateStore.open(join(dir, 'data'));
      const limit = (state.data.limits.home as { schedule_import: { total_power_W: number }[] } | undefined)?.schedule_import[0].total_power_W;
      if (limitAcked) {
        expect(limit, where(round)).toBeGreaterThanOrEqual(5000 + limitAcked);
        expect(limit, where(round)).toBeLessThanOrEqual(5000 + limitSent);
      }
      expect(state.data.plans.latest, where(round)).toBeTruthy();
    }
    expect(acked.size).toBeGreaterThan(KILLS * BATCH);
    expect(interrupted).toBeGreaterThanOrEqual(KILLS / 2);
    expect(limitAcked).toBeGreaterThan(KILLS);
  }, 400_000);
});
