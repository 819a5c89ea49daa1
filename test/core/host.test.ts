import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { defineAdapter, type Device } from '../../src/api/index.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';

const events: string[] = [];
const dev = (id: string, adapter: string): Device => ({ id, name: id, adapter, caps: {}, available: true });

const failing = [
  defineAdapter({ id: 'boom_create', description: 'throws in create', configSchema: {}, create: () => { throw new Error('cannot create'); } }),
  defineAdapter({
    id: 'boom_start',
    description: 'throws in start',
    configSchema: {},
    create: (_ctx, c) => ({ devices: [dev(c.id, 'boom_start')], start: async () => { throw new Error('port busy'); }, stop: async () => void events.push(`stop ${c.id}`) }),
  }),
  defineAdapter({
    id: 'boom_later',
    description: 'throws in a timer after starting',
    configSchema: {},
    create: (ctx, c) => ({
      devices: [dev(c.id, 'boom_later')],
      start: async () => {
        ctx.clock.every(1000, () => { throw new Error('poll exploded'); });
      },
      stop: async () => void events.push(`stop ${c.id}`),
    }),
  }),
  defineAdapter({
    id: 'recorder',
    description: 'records start and stop order',
    configSchema: {},
    create: (_ctx, c) => ({ devices: [dev(c.id, 'recorder')], start: async () => void events.push(`start ${c.id}`), stop: async () => void events.push(`stop ${c.id}`) }),
  }),
  defineAdapter({
    id: 'slow_stop',
    description: 'never finishes stopping',
    configSchema: {},
    create: (_ctx, c) => ({ devices: [dev(c.id, 'slow_stop')], start: async () => undefined, stop: () => new Promise<void>(() => undefined) }),
  }),
];

const catalog = { ...builtinCatalog, adapters: [...builtinCatalog.adapters, ...failing] };

function quietLogger() {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { log: createLogger({ destination, level: 'info' }), lines };
}

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
  events.length = 0;
});

const yaml = (devices: string) => `site: { id: home }\nhttp: { port: 0 }\ndevices:\n${devices}`;

describe('host', () => {
  it('isolates adapters that fail on create, on start and later; the rest goes on', async () => {
    const clock = new ManualClock('2026-06-01T10:00:00Z');
    const { log, lines } = quietLogger();
    hub = new Hub({
      configText: yaml('  - { id: a, adapter: boom_create }\n  - { id: b, adapter: boom_start }\n  - { id: c, adapter: boom_later }\n  - { id: d, adapter: recorder }\n  - { id: load, adapter: sim_load }\n'),
      catalog,
      clock,
      logger: log,
      override: (c) => void (c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-host-'))),
    });
    await hub.start();
    await clock.advance(1500);
    const health = await (await fetch(`${hub.url}/api/v1/health`)).json();
    expect(health).toMatchObject({ status: 'degraded', adapters: { failed: 3, running: 2 } });
    const devices = ((await (await fetch(`${hub.url}/api/v1/devices`)).json()) as { data: { id: string; available: boolean; adapter_status: string; error: string | null }[] }).data;
    const byId = Object.fromEntries(devices.map((d) => [d.id, d]));
    expect(byId.a).toBeUndefined(); // never created
    expect(byId.b).toMatchObject({ available: false, adapter_status: 'failed', error: 'port busy' });
    expect(byId.c).toMatchObject({ available: false, adapter_status: 'failed', error: 'poll exploded' });
    expect(byId.d).toMatchObject({ available: true, adapter_status: 'running' });
    expect(byId.load).toMatchObject({ available: true, adapter_status: 'running' });
    const failures = lines.map((l) => JSON.parse(l)).filter((l) => l.level >= 50 && l.adapter);
    expect(failures.map((f) => f.adapter).sort()).toEqual(['boom_create', 'boom_later', 'boom_start']);
  });

  it('stops adapters in reverse order within a bounded time, even when one hangs', async () => {
    const { log } = quietLogger();
    hub = new Hub({
      configText: yaml('  - { id: first, adapter: recorder }\n  - { id: hang, adapter: slow_stop }\n  - { id: second, adapter: recorder }\n'),
      catalog,
      logger: log,
      stopTimeoutMs: 200,
      override: (c) => void (c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-host-'))),
    });
    await hub.start();
    const t0 = Date.now();
    await hub.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(events).toEqual(['start first', 'start second', 'stop second', 'stop first']);
  });

  it('serves devices by id, 404s with the error shape, and remembers the devices it has seen', async () => {
    const { log } = quietLogger();
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-host-'));
    hub = new Hub({ configText: yaml('  - { id: bat, adapter: sim_battery, capacity_wh: 8000 }\n'), catalog, logger: log, override: (c) => void (c.storage.dir = dir) });
    await hub.start();
    const one = await (await fetch(`${hub.url}/api/v1/devices/bat`)).json();
    expect(one).toMatchObject({ id: 'bat', capabilities: ['meter', 'storage'], state: { storage: { capacity_wh: 8000, soc_pct: 50 } } });
    const missing = await fetch(`${hub.url}/api/v1/devices/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ object: 'error', type: 'invalid_request', code: 'device_not_found', message: 'no device "nope" (known: bat)' });
    const unknown = await fetch(`${hub.url}/api/v1/nothing-here`);
    expect(await unknown.json()).toMatchObject({ object: 'error', code: 'not_found' });
    await hub.stop();
    expect(hub.services.state.data.devices.bat).toMatchObject({ adapter: 'sim_battery' });
  });
});
