import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { ConfigError, composeSchema, formatProblem, parseConfig } from '../../src/core/config/load.js';

const opts = (env: NodeJS.ProcessEnv = {}) => ({ catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env });

const problemsOf = (text: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig(text, '/x/site.yaml', opts(env));
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
};

describe('configuration', () => {
  it('gives five located messages for a file with five mistakes', () => {
    const text = [
      'site:', //                                           1
      '  id: home', //                                      2
      '  timezone: Europe/Berlin', //                       3
      '  currency: euro', //                                4  mistake 1: pattern
      'http:', //                                           5
      '  port: "eighty"', //                                6  mistake 2: type
      '  colour: blue', //                                  7  mistake 3: unknown key
      'devices:', //                                        8
      '  - { id: ev, adapter: sim_ev, phases: 2 }', //      9  mistake 4: enum
      '  - { id: dw, adapter: ocpp2 }', //                  10 mistake 5: unknown adapter
    ].join('\n');
    const problems = problemsOf(text);
    expect(problems).toHaveLength(5);
    expect(problems[4]).toMatch(/^site\.yaml:10:24 devices\[1\]\.adapter: unknown adapter "ocpp2" \(known: sim_ev, sim_battery, .*\)$/);
    expect(problems.slice(0, 4)).toEqual([
      'site.yaml:4:13 site.currency: "euro" does not match the allowed form ^[A-Z]{3}$',
      'site.yaml:6:9 http.port: must be a whole number, got "eighty"',
      'site.yaml:7:3 http.colour: unknown key "colour" (allowed: host, port, token, body_limit_bytes, json_max_depth, allowed_hosts, trusted_proxies, headers_timeout_ms, request_timeout_ms, keep_alive_timeout_ms, max_connections, max_connections_per_client, tls)',
      'site.yaml:9:40 devices[0].phases: unknown value 2 (known: 1, 3)',
    ]);
  });

  it('reports schema errors and the checks across sections in one pass', () => {
    const text = [
      'site:', //                                                                   1
      '  id: home', //                                                              2
      '  timezone: Europe/Berlin', //                                               3
      '  currency: EUR', //                                                         4
      '  circuits: [ { id: garage, parent: nowhere } ]', //                         5  check: unknown parent
      'http: { port: "eighty" }', //                                                6  schema: type
      'tariffs:', //                                                                7
      '  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.2 } ] }', // 8 check: gap
      'devices:', //                                                                9
      '  - { id: ev, adapter: sim_ev, circuit: shed, phases: 2 }', //              10 schema: enum; check: unknown circuit
      '  - { id: ev, adapter: sim_load }', //                                       11 check: duplicate id
      '  - { id: dw, adapter: sim_socket, schedule: { hours: 5, window: { from: "22:00", to: "02:00" } } }', // 12 check: hours do not fit
      '  - { id: dw2, adapter: sim_socket, schedule: { continuous: true, colour: 1 } }', // 13 schema: unknown key; check: needs hours
    ].join('\n');
    const problems = problemsOf(text);
    expect(problems.map((p) => p.split(' ').slice(0, 2).join(' '))).toEqual([
      'site.yaml:5:37 site.circuits[0].parent:',
      'site.yaml:6:15 http.port:',
      'site.yaml:8:62 tariffs.import.rates[0].to:',
      'site.yaml:10:41 devices[0].circuit:',
      'site.yaml:10:55 devices[0].phases:',
      'site.yaml:11:11 devices[1].id:',
      'site.yaml:12:55 devices[2].schedule.hours:',
      'site.yaml:13:47 devices[3].schedule:',
      'site.yaml:13:61 devices[3].schedule.continuous:',
      'site.yaml:13:67 devices[3].schedule.colour:',
    ]);
    expect(problems.find((p) => p.includes('schedule.hours'))).toMatch(/5 h do not fit in the 4 h window 22:00–02:00/);
  });

  it('rejects unknown keys inside a device with the keys the adapter allows', () => {
    const problems = problemsOf('site: { id: home }\ndevices:\n  - id: b\n    adapter: sim_battery\n    capacity: 10000\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^site\.yaml:5:5 devices\[0\]\.capacity: unknown key "capacity" \(allowed: id, adapter, name, circuit, capacity_wh, /);
  });

  it('substitutes ${VAR} and reports a missing variable at its line', () => {
    const text = 'site: { id: home }\nhttp:\n  token: ${HOMEFLEX_TOKEN}\n  host: ${HOST:-127.0.0.1}\n';
    const config = parseConfig(text, 'site.yaml', opts({ HOMEFLEX_TOKEN: 'a-very-secret-token-123' }));
    expect(config.http.token).toBe('a-very-secret-token-123');
    expect(config.http.host).toBe('127.0.0.1');
    const problems = problemsOf(text, {});
    expect(problems[0]).toBe('site.yaml:3:10 http.token: environment variable HOMEFLEX_TOKEN is not set (write ${HOMEFLEX_TOKEN:-default} for a default)');
  });

  it('substitutes ${VAR} inside a flow mapping, as in DESIGN.md', () => {
    const text = 'site: { id: home }\nhttp: { host: 127.0.0.1, port: 8080, token: ${HOMEFLEX_TOKEN} }\n';
    expect(parseConfig(text, 'site.yaml', opts({ HOMEFLEX_TOKEN: 'flow-style-secret-value' })).http.token).toBe('flow-style-secret-value');
    expect(problemsOf(text)).toEqual(['site.yaml:2:45 http.token: environment variable HOMEFLEX_TOKEN is not set (write ${HOMEFLEX_TOKEN:-default} for a default)']);
  });

  it('keeps a literal $ in a value: only ${VAR} is a reference, and $${VAR} is the text ${VAR}', () => {
    const text = 'site: { id: home, name: "cost $<HOME> and $HOME" }\nhttp:\n  token: "pa$$w0rd-$<HOME>-$${HOME}-$${HOME:-x}"\n  host: ${HOST:-127.0.0.1}\n';
    const config = parseConfig(text, 'site.yaml', opts({ HOME: '/root' }));
    expect(config.site.name).toBe('cost $<HOME> and $HOME');
    expect(config.http.token).toBe('pa$$w0rd-$<HOME>-${HOME}-${HOME:-x}');
    expect(config.http.host).toBe('127.0.0.1');
    // in a flow mapping too, with columns unchanged
    const flow = 'site: { id: home }\nhttp: { token: $${NOT_A_VAR}-padding-123, host: ${HOST} }\n';
    expect(parseConfig(flow, 'site.yaml', opts({ HOST: '::1' })).http).toMatchObject({ token: '${NOT_A_VAR}-padding-123', host: '::1' });
    expect(problemsOf(flow)).toEqual(['site.yaml:2:49 http.host: environment variable HOST is not set (write ${HOST:-default} for a default)']);
  });

  it('refuses an unknown time zone or currency at its key', () => {
    const text = (tz: string, cur: string) => `site:\n  id: home\n  timezone: ${tz}\n  currency: ${cur}\n`;
    expect(problemsOf(text('Europe/Berlln', 'EUR'))).toEqual(['site.yaml:3:13 site.timezone: unknown time zone "Europe/Berlln" (did you mean Europe/Berlin?)']);
    expect(problemsOf(text('Mars/Olympus', 'XYZ'))).toEqual([
      'site.yaml:3:13 site.timezone: unknown time zone "Mars/Olympus" (an IANA name such as Europe/Berlin, America/New_York or UTC)',
      'site.yaml:4:13 site.currency: unknown currency "XYZ" (an ISO 4217 code such as EUR, GBP, USD, CHF)',
    ]);
    for (const [tz, cur] of [['UTC', 'GBP'], ['America/New_York', 'USD'], ['Europe/Zurich', 'CHF'], ['Australia/Sydney', 'AUD']]) expect(problemsOf(text(tz, cur))).toEqual([]);
  });

  it('refuses a file tariff whose price file does not exist, at its path key', () => {
    const text = (path: string) => `site: { id: home }\ntariffs:\n  import:\n    type: file\n    path: ${path}\n  export: { type: file, path: gone.csv }\n`;
    expect(problemsOf(text('prices/missing.csv'))).toEqual([
      'site.yaml:5:11 tariffs.import.path: the price file /x/prices/missing.csv does not exist',
      'site.yaml:6:31 tariffs.export.path: the price file /x/gone.csv does not exist',
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-config-'));
    writeFileSync(join(dir, 'p.csv'), 'valid_from,valid_to,rate\n');
    writeFileSync(join(dir, 'gone.csv'), 'valid_from,valid_to,rate\n');
    expect(() => parseConfig(text('p.csv'), join(dir, 'site.yaml'), opts())).not.toThrow();
  });

  it('applies defaults from the schemas of the hub and the adapters', () => {
    const config = parseConfig('site: { id: home }\ndevices: [ { id: b, adapter: sim_battery } ]\n', 'site.yaml', opts());
    expect(config.http).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(config.site).toMatchObject({ timezone: 'Europe/Berlin', currency: 'EUR', circuits: [] });
    expect(config.devices[0]).toMatchObject({ capacity_wh: 10000, charge_efficiency: 0.95, tick_s: 10 });
    expect(config.planner.horizon_hours).toBe(48);
  });

  it('locates YAML syntax errors', () => {
    const problems = problemsOf('site:\n  id: home\n  name: [unclosed\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/^site\.yaml:\d+:\d+ YAML syntax: /);
  });

  it('reports duplicate ids, unknown circuits and a missing site', () => {
    expect(problemsOf('devices: []\n')).toEqual(['site.yaml:1:1 missing required key "site"']);
    const problems = problemsOf('site: { id: home }\ndevices:\n  - { id: a, adapter: sim_load }\n  - { id: a, adapter: sim_load, circuit: garage }\n');
    expect(problems).toEqual([
      'site.yaml:4:11 devices[1].id: duplicate device id "a" (first used by devices[0])',
      'site.yaml:4:42 devices[1].circuit: unknown circuit "garage" (known: none; add site.circuits)',
    ]);
  });

  it('runs adapter checks and refuses a public listener without a token', () => {
    const problems = problemsOf('site: { id: home }\nhttp: { host: 0.0.0.0 }\ndevices:\n  - { id: ac, adapter: sim_hvac, comfort: { min_c: 26, max_c: 24 } }\n');
    expect(problems).toEqual([
      'site.yaml:2:15 http.host: listening on 0.0.0.0 (not loopback) needs http.token',
      'site.yaml:4:52 devices[0].comfort.min_c: must be below comfort.max_c (24)',
    ]);
  });

  it('refuses an adapter whose connection is not configured, at the adapter key', () => {
    expect(problemsOf('site: { id: home }\ndevices:\n  - { id: wb, adapter: ocpp, identity: CP1 }\n')).toEqual([
      'site.yaml:3:24 devices[0].adapter: adapter "ocpp" needs connections.ocpp, which this file does not configure',
    ]);
  });

  it('composes one JSON Schema naming every adapter', () => {
    const schema = composeSchema(builtinCatalog) as { properties: { devices: { items: { properties: { adapter: { enum: string[] } } } } } };
    expect(schema.properties.devices.items.properties.adapter.enum).toContain('sim_battery');
  });
});
