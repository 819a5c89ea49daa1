import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import type { PlanView } from '../../src/control/view.js';
import { hubApi } from '../peers/api.js';

const SITE = `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.30 }
devices:
  - { id: ev, adapter: sim_ev, arrive: "00:00", leave: "23:59", tick_s: 60 }
  - { id: ac, adapter: sim_hvac, comfort: { min_c: 22, max_c: 25 }, tick_s: 60 }
`;

let hub: Hub;
let api: ReturnType<typeof hubApi>;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bodies-'));
  hub = new Hub({ configText: SITE, clock: new ManualClock('2026-06-01T10:00:00Z'), logger: createLogger({ level: 'silent' }), override: (c) => void (c.storage.dir = dir) });
  await hub.start();
  await hub.services.control!.settled();
  api = hubApi(() => hub.url);
});
afterAll(async () => {
  await hub.stop();
});

describe('control route bodies, validated by fastify with the src/api schemas', () => {
  const refused: [string, string, unknown, string, RegExp][] = [
    ['a mode not in the list', '/devices/ev/mode', { mode: 'solar' }, 'mode', /^mode: must be one of plan, off, now, minpv, pv \(got "solar"\)$/],
    ['paused as text (JSON has booleans: no coercion)', '/devices/ev/pause', { paused: 'true' }, 'paused', /^paused: must be boolean$/],
    ['a missing key', '/devices/ev/pause', {}, 'paused', /^paused: is required$/],
    ['an unknown key', '/devices/ac/comfort', { min_c: 20, max_c: 24, colour: 'red' }, 'colour', /^colour: unknown field "colour"$/],
    ['a number as text', '/devices/ac/comfort', { min_c: '20', max_c: 24 }, 'min_c', /^min_c: must be number$/],
    ['a body that is no object', '/devices/ev/target', [1, 2], 'body', /^body: must be a JSON object$/],
    ['a leave time in neither form', '/devices/ev/target', { leave_time: 'tomorrow' }, 'leave_time', /^leave_time: must match pattern/],
    ['an empty target', '/devices/ev/target', {}, 'body', /^body: give at least one of energy_wh/],
    ['a band upside down', '/devices/ac/comfort', { min_c: 25, max_c: 22 }, 'min_c', /^min_c: must be below max_c \(22\)$/],
  ];
  it.each(refused)('refuses %s with a 400 naming the field, storing nothing', async (_what, path, body, field, message) => {
    const r = await api('PUT', path, body);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ object: 'error', type: 'invalid_request', code: 'invalid_parameter', field });
    expect(r.body.message).toMatch(message);
    expect(hub.services.state.data.overrides).toEqual({});
  });

  it('takes a target whose leave time is an RFC 3339 instant, and a passed one plans with no deadline', async () => {
    const soon = await api('PUT', '/devices/ev/target', { energy_wh: 3000, leave_time: '2026-06-01T14:00:00+02:00' });
    expect(soon.status).toBe(200);
    expect(soon.body.target).toEqual({ energy_wh: 3000, leave_time: '2026-06-01T14:00:00+02:00' });
    const plan = (await api('GET', '/plan')).body as unknown as PlanView & { notes?: string[] };
    expect(plan.devices.find((d) => d.id === 'ev')).toMatchObject({ leave_time: '2026-06-01T12:00:00.000Z' });

    const passed = await api('PUT', '/devices/ev/target', { energy_wh: 3000, leave_time: '2026-06-01T09:00:00Z' });
    expect(passed.status).toBe(200);
    const after = (await api('GET', '/plan')).body as unknown as PlanView;
    expect(after.devices.find((d) => d.id === 'ev')).toMatchObject({ leave_time: null });
    expect(JSON.stringify(after)).toContain('ev: leave_time 2026-06-01T09:00:00Z has passed; planning to the horizon end');
    expect((await api('DELETE', '/devices/ev/target')).status).toBe(200);
  });
});
