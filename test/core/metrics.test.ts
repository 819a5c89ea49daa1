import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { exposition } from '../../src/core/metrics.js';

const TOKEN = 'metrics-test-token-0123456789abcdef';
const SITE = `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0, token: "${TOKEN}" }
tariffs:
  import: { type: fixed, rate: 0.30 }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 50, tick_s: 60 }
  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 60 }
  - { id: pv, adapter: sim_pv, kwp: 5, tick_s: 60 }
`;

// the Prometheus text exposition format 0.0.4, line by line
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|NaN|[+-]Inf)';
const HELP = new RegExp(`^# HELP (${NAME}) (?:[^\\\\\\n]|\\\\[\\\\n])*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|summary|histogram|untyped)$`);
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(?:${LABEL})(?:,${LABEL})*\\})? (${VALUE})(?: -?\\d+)?$`);

/** Parses an exposition: every line must follow the grammar, every series belong to a family typed before it. */
function parse(text: string): Map<string, { type: string; samples: { line: string; name: string; value: number }[] }> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, { type: string; samples: { line: string; name: string; value: number }[] }>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (HELP.test(line)) continue;
    const t = TYPE.exec(line);
    if (t) {
      expect(families.has(t[1]), `${t[1]} typed twice`).toBe(false);
      families.set(t[1], { type: t[2], samples: [] });
      continue;
    }
    const s = SAMPLE.exec(line);
    expect(s, `not an exposition line: ${line}`).not.toBeNull();
    const name = s![1];
    const family = families.get(name) ?? families.get(name.replace(/_(sum|count)$/, ''));
    expect(family, `${name} has no TYPE before it`).toBeDefined();
    if (!families.has(name)) expect(family!.type).toBe('summary');
    family!.samples.push({ line, name, value: Number(s![2].replace('Inf', 'Infinity')) });
  }
  return families;
}

const hubs: Hub[] = [];
afterEach(async () => {
  for (const h of hubs.splice(0)) await h.stop();
});

describe('GET /metrics', () => {
  it('answers in the Prometheus text format what the hub is doing, behind the API token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-metrics-'));
    const hub = new Hub({ configText: SITE, clock: new ManualClock('2026-06-01T10:00:00Z'), logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
    hubs.push(hub);
    await hub.start();
    await hub.services.control!.settled();
    await hub.services.state.update(() => undefined);
    const url = `${hub.url}/api/v1/metrics`;
    // from another machine (a forwarded request) it needs the token, like the rest of the API
    const remote = { 'x-forwarded-for': '203.0.113.7' };
    expect((await fetch(url, { headers: remote })).status).toBe(401);
    expect((await fetch(url, { headers: { ...remote, authorization: 'Bearer wrong' } })).status).toBe(401);
    const res = await fetch(url, { headers: { ...remote, authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parse(await res.text());
    const value = (name: string, match = '') => (families.get(name) ?? families.get(name.replace(/_(sum|count)$/, '')))!.samples.find((s) => s.name === name && s.line.includes(match))!.value;

    expect(value('homeflex_devices')).toBe(3);
    expect(value('homeflex_devices_available')).toBe(hub.services.registry.all().filter((d) => d.available).length);
    expect(families.get('homeflex_device_up')!.samples.map((s) => s.line)).toContain('homeflex_device_up{device="battery",adapter="sim_battery"} 1');
    const latest = hub.services.control!.latest!;
    expect(value('homeflex_plan_solve_seconds')).toBeCloseTo(latest.solveMs / 1000, 6);
    expect(value('homeflex_plan_age_seconds')).toBe(0);
    expect(value('homeflex_plans_total')).toBeGreaterThanOrEqual(1);
    expect(value('homeflex_plan_timeouts_total')).toBe(0);
    expect(value('homeflex_command_failures_total')).toBe(0);
    expect(value('homeflex_planner_wasm_bytes')).toBeGreaterThan(0);
    expect(families.get('homeflex_event_loop_delay_seconds')!.type).toBe('summary');
    expect(value('homeflex_event_loop_delay_seconds_count')).toBeGreaterThan(0);
    expect(value('homeflex_event_loop_delay_max_seconds')).toBeGreaterThan(0);
    expect(value('homeflex_store_write_seconds_count', 'store="state"')).toBeGreaterThanOrEqual(1);
    expect(value('homeflex_store_write_seconds_sum', 'store="state"')).toBeGreaterThan(0);
    expect(families.get('homeflex_store_write_max_seconds')!.samples.map((s) => s.line.split(' ')[0])).toEqual(['homeflex_store_write_max_seconds{store="state"}', 'homeflex_store_write_max_seconds{store="meters"}']);

    // the plan ages with the hub's clock
    await (hub.services.clock as ManualClock).advance(5 * 60_000);
    const later = parse(await (await fetch(url)).text());
    expect(later.get('homeflex_plan_age_seconds')!.samples[0].value).toBeGreaterThanOrEqual(300);
  });

  it('writes the special values and escapes as the format wants them', () => {
    const text = exposition([{ name: 'x_total', help: 'back\\slash\nnewline', type: 'counter', samples: [[{ a: 'q"\\\n' }, NaN], [{}, Infinity]] }]);
    expect(text).toBe('# HELP x_total back\\\\slash\\nnewline\n# TYPE x_total counter\nx_total{a="q\\"\\\\\\n"} NaN\nx_total +Inf\n');
    expect(() => parse(text)).not.toThrow();
    expect(() => parse('x_total 1\n')).toThrow(/no TYPE before it/);
    expect(() => parse('# TYPE x gauge\nx{a=b} 1\n')).toThrow(/not an exposition line/);
  });
});
