import { expect } from 'vitest';
import type { PlanRecord } from '../../src/control/view.js';
import type { Hub } from '../../src/core/host.js';
import type { MeterStore } from '../../src/metering/store.js';

/** JSON over the hub's real HTTP listener, as a client on this machine sends it. */
export async function api(hub: Hub, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> & { data?: unknown } }> {
  const res = await fetch(`${hub.url}/api/v1${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Polls `check` every 20 ms until it is truthy; fails naming `what` after `ms`. */
export async function until<T>(check: () => T | undefined | null | false | Promise<T | undefined | null | false>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stack trace or source path leaking into what a client sees. */
export const STACK_TRACE = /\n\s+at |\.ts:\d+|\.js:\d+|node_modules|\/work\/|file:\/\//;

/** The routes the running app serves, read from fastify's route tree. */
export function routesOf(tree: string): { method: string; url: string }[] {
  const out: { method: string; url: string }[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[└├]── (\S+) \(([^)]+)\)/.exec(line);
    if (!m) continue;
    const depth = m[1].length / 4;
    const path = (depth ? stack[depth - 1] : '').replace(/\/$/, '') + (m[2].startsWith('/') || !depth ? '' : '/') + m[2];
    stack[depth] = path;
    stack.length = depth + 1;
    for (const method of m[3].split(',').map((s) => s.trim())) if (method !== 'HEAD') out.push({ method, url: path });
  }
  return out;
}

/** After a fuzz run: every stored interval of every meter holds a finite energy between 0 and 1 GWh. */
export async function expectSaneMeterStore(hub: Hub): Promise<void> {
  await hub.services.metering!.drain();
  const store = hub.services.metering!.store as MeterStore;
  for (const { subject } of store.subjects()) {
    const set = store.intervals(subject, -Infinity, Infinity);
    for (let i = 0; i < set.n; i++) expect(Number.isFinite(set.energy[i]) && set.energy[i] >= 0 && set.energy[i] <= 1e9, `${subject} ${set.energy[i]} Wh`).toBe(true);
  }
}

/**
 * The energy a device's meter records hold over `[from, to)` (Wh), through the cost API after every
 * reading is stored; each record must be non-negative (a reset or a replay never meters negative energy).
 */
export async function meteredWh(hub: Hub, deviceId: string, from: number, to: number): Promise<number> {
  await hub.services.metering!.drain();
  const r = await api(hub, 'POST', `/costs/interval/${deviceId}?aggregation=NONE`, { start_time: new Date(from).toISOString(), end_time: new Date(to).toISOString() });
  const rows = (r.body as { data: { energy: { value: number } }[] }).data;
  for (const row of rows) expect(row.energy.value).toBeGreaterThanOrEqual(0);
  return rows.reduce((a, row) => a + row.energy.value, 0);
}

/**
 * Counts the requests a simulated Modbus device serves; `quiet()` resolves once none has come for
 * three 10 ms looks in a row (the polls a clock step started have finished over real TCP).
 */
export function requestCounter(device: { readRegisters: (...a: never[]) => unknown; writeRegisters: (...a: never[]) => unknown }) {
  let requests = 0;
  for (const name of ['readRegisters', 'writeRegisters'] as const) {
    const original = device[name].bind(device) as (...a: never[]) => unknown;
    device[name] = (...a: never[]) => (requests++, original(...a));
  }
  return {
    quiet: async () => {
      for (let seen = -1, quiet = 0; quiet < 3; await sleep(10)) {
        quiet = requests === seen ? quiet + 1 : 0;
        seen = requests;
      }
    },
  };
}

/** Every plan the hub's control loop makes from now on, in order (`plan.updated`). */
export function recordPlans(hub: Hub): PlanRecord[] {
  const plans: PlanRecord[] = [];
  hub.bus.on('plan.updated', () => plans.push(hub.services.control!.latest!));
  return plans;
}
