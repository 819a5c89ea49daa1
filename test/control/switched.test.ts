import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { ConfigError, formatProblem, parseConfig } from '../../src/core/config/load.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import type { PlanView } from '../../src/control/view.js';
import { hubApi } from '../peers/api.js';

/**
 * The switched-systems settings (FlatPeak's guide) as a user writes them, in the YAML and over
 * `PUT /devices/{id}/schedule`: daily hours, weekday and weekend hours, an end-by time, a price
 * threshold alone, a window whose `to` equals its `from` (a whole day).
 */

// cheapest 03:00-06:00, then 00:00-03:00; dear in the evening
const TARIFF = `
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "03:00", rate: 0.25 }, { from: "03:00", to: "06:00", rate: 0.20 },
                                        { from: "06:00", to: "17:00", rate: 0.30 }, { from: "17:00", to: "21:00", rate: 0.45 },
                                        { from: "21:00", to: "00:00", rate: 0.30 } ] }
  export: { type: fixed, rate: 0.08 }`;

const socket = (id: string, schedule: string) => `  - { id: ${id}, adapter: sim_socket, rated_power_w: 1000, tick_s: 60, schedule: ${schedule} }`;

const SITE = `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
${TARIFF}
devices:
${socket('weekly', '{ hours: { weekday: 1, weekend: 3 }, window: { from: "22:00", to: "07:00" } }')}
${socket('endby', '{ hours: 2, window: { from: "20:00", to: "08:00" }, end_by: "03:00" }')}
${socket('nightly', '{ hours: 2, window: { from: "20:00", to: "08:00" } }')}
${socket('windowed-rate', '{ max_rate: 0.22, window: { from: "04:00", to: "05:00" } }')}
${socket('any-rate', '{ max_rate: 0.22 }')}
${socket('allday', '{ hours: 1, window: { from: "12:00", to: "12:00" } }')}
${socket('spare', '{ hours: 1, window: { from: "09:00", to: "10:00" } }')}
`;

// Friday 12:10 in Berlin: the 48 h horizon holds Friday night (a weekday) and Saturday night (weekend)
const START = '2026-06-05T10:10:00Z';

/** A load's planned "on" time as local periods, e.g. "Sat 03:00-04:00". */
function onPeriods(plan: PlanView, id: string): string[] {
  const d = plan.devices.find((x) => x.id === id)!;
  const out: string[] = [];
  let from: number | undefined;
  plan.slots.forEach((s, t) => {
    const on = d.on![t];
    if (on && from === undefined) from = Date.parse(s.start_time);
    const next = d.on![t + 1];
    if (on && !next) {
      const a = DateTime.fromMillis(from!, { zone: 'Europe/Berlin' });
      const b = DateTime.fromMillis(Date.parse(s.end_time), { zone: 'Europe/Berlin' });
      out.push(`${a.toFormat('ccc HH:mm')}-${b.toFormat('HH:mm')}`);
      from = undefined;
    }
  });
  return out;
}

describe('switched loads: the guide settings from the YAML and over HTTP', () => {
  let hub: Hub;
  const api = hubApi(() => hub.url);
  const plan = async () => (await api('GET', '/plan')).body as unknown as PlanView;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-switched-'));
    hub = new Hub({ configText: SITE, clock: new ManualClock(START), logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
    await hub.start();
    await hub.services.control!.settled();
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it('plans weekday and weekend hours by the day the window starts', async () => {
    expect(onPeriods(await plan(), 'weekly')).toEqual(['Sat 03:00-04:00', 'Sun 03:00-06:00']);
  });

  it('finishes by the end-by time: the cheapest hours before it, not the cheapest of the window', async () => {
    const p = await plan();
    expect(onPeriods(p, 'nightly')).toEqual(['Sat 03:00-05:00', 'Sun 03:00-05:00']);
    expect(onPeriods(p, 'endby')).toEqual(['Sat 00:00-02:00', 'Sun 00:00-02:00']);
  });

  it('max_rate alone runs the load whenever the rate is at or below it, within the window if there is one', async () => {
    const p = await plan();
    expect(onPeriods(p, 'any-rate')).toEqual(['Sat 03:00-06:00', 'Sun 03:00-06:00']);
    expect(onPeriods(p, 'windowed-rate')).toEqual(['Sat 04:00-05:00', 'Sun 04:00-05:00']);
    expect(p.devices.find((d) => d.id === 'any-rate')!.reasons![p.slots.findIndex((s) => s.start_time.startsWith('2026-06-06T01:00'))]).toBe('price');
  });

  it('a window whose to equals its from is a whole day', async () => {
    expect(onPeriods(await plan(), 'allday')).toEqual(['Sat 03:00-04:00', 'Sun 03:00-04:00']);
  });

  it('accepts over HTTP what the YAML accepts, with the same plan', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['weekly', { hours: { weekday: 1, weekend: 3 }, window: { from: '22:00', to: '07:00' } }],
      ['endby', { hours: 2, window: { from: '20:00', to: '08:00' }, end_by: '03:00' }],
      ['windowed-rate', { max_rate: 0.22, window: { from: '04:00', to: '05:00' } }],
      ['any-rate', { max_rate: 0.22 }],
      ['allday', { hours: 1, window: { from: '12:00', to: '12:00' } }],
    ];
    for (const [like, body] of cases) {
      const yamlPlan = onPeriods(await plan(), like);
      const r = await api('PUT', '/devices/spare/schedule', body);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.schedule).toEqual(body);
      expect(onPeriods(await plan(), 'spare'), like).toEqual(yamlPlan);
    }
    // end_by without a window: the 24 h before it
    await api('PUT', '/devices/spare/schedule', { hours: 2, end_by: '03:00' });
    expect(onPeriods(await plan(), 'spare')).toEqual(['Sat 00:00-02:00', 'Sat 03:00-05:00']);
  });

  it('refuses over HTTP what the YAML refuses, naming the field, and keeps the stored schedule', async () => {
    await api('PUT', '/devices/spare/schedule', { hours: 1 });
    const bad: [Record<string, unknown>, string, RegExp][] = [
      [{ hours: { weekday: 1 } }, 'hours.weekend', /is required/],
      [{ hours: { weekday: 1, weekend: 30 } }, 'hours.weekend', /<= 24/],
      [{ hours: '2' }, 'hours', /number of hours/],
      [{ window: { from: '20:00', to: '06:00' } }, 'body', /give hours .* max_rate/],
      [{ hours: 5, window: { from: '22:00', to: '02:00' } }, 'hours', /5 h do not fit in the 4 h window 22:00–02:00/],
      [{ hours: 1, window: { from: '22:00', to: '06:00' }, end_by: '12:00' }, 'end_by', /12:00 is not inside the window 22:00–06:00/],
      [{ hours: 1, end_by: '7am' }, 'end_by', /HH:MM/],
      [{ max_rate: 0.2, continuous: true }, 'continuous', /needs hours/],
      [{ hours: 1, colour: 'red' }, 'colour', /unknown field/],
    ];
    for (const [body, field, message] of bad) {
      const r = await api('PUT', '/devices/spare/schedule', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.field, JSON.stringify(body)).toBe(field);
      expect(r.body.message, JSON.stringify(body)).toMatch(message);
    }
    expect((await api('GET', '/devices/spare/control')).body.schedule).toEqual({ hours: 1 });
  });

  it('refuses in the YAML what the API refuses, at the located key', () => {
    const text = `site: { id: home, timezone: Europe/Berlin, currency: EUR }\n${TARIFF}\ndevices:\n${socket('a', '{ window: { from: "20:00", to: "06:00" } }')}\n${socket('b', '{ hours: 5, window: { from: "22:00", to: "02:00" } }')}\n${socket('c', '{ hours: { weekday: 1, weekend: 2 }, end_by: "7am" }')}\n`;
    let problems: string[] = [];
    try {
      new Hub({ configText: text, logger: createLogger({ level: 'silent' }) });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems.map(formatProblem);
    }
    expect(problems).toEqual([
      expect.stringMatching(/^site\.yaml:9:\d+ devices\[0\]\.schedule: give hours/),
      expect.stringMatching(/^site\.yaml:10:\d+ devices\[1\]\.schedule\.hours: 5 h do not fit in the 4 h window 22:00–02:00$/),
      expect.stringMatching(/^site\.yaml:11:\d+ devices\[2\]\.schedule\.end_by: "7am" does not match/),
    ]);
  });

  it('takes the examples of docs/switched-loads.md as written', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'switched-loads.md'), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1];
    const config = parseConfig(`site: { id: home, timezone: Europe/Berlin, currency: EUR }\nconnections: { mqtt: { url: mqtt://127.0.0.1:1883 } }\n${yaml}`, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} });
    expect(config.devices.map((d) => d.id)).toEqual(['dishwasher', 'pool-pump', 'water-heater']);
  });
});
