import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { builtinCatalog } from '../../../src/core/catalog.js';
import { hubChecks } from '../../../src/core/config/checks.js';
import { ConfigError, parseConfig } from '../../../src/core/config/load.js';
import { Hub } from '../../../src/core/host.js';
import { createLogger } from '../../../src/core/logging.js';
import { freePort } from '../../../test/peers/mqtt.js';

const load = (text: string) => parseConfig(text, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });

const problems = (text: string): string[] => {
  try {
    load(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n').slice(1);
  }
  throw new Error('expected configuration errors');
};

const site = (devices: string, connections = 'modbus: [ { id: lan, tcp: { host: 127.0.0.1, port: 1502 } } ]') =>
  ['site: { id: home }', 'connections:', `  ${connections}`, 'devices:', ...devices.split('\n').map((l) => `  ${l}`)].join('\n');

describe('modbus devices in the site YAML', () => {
  it('accepts a SunSpec battery as the design document writes it', () => {
    const config = load(site('- { id: battery, adapter: modbus, connection: lan, unit: 1, profile: sunspec, capacity_wh: 10000 }'));
    expect(config.devices[0]).toMatchObject({ profile: 'sunspec', poll_s: 10, soc_min_pct: 5, read_only: false });
  });

  it('names the file, line and key of every mistake', () => {
    expect(problems(site('- { id: battery, adapter: modbus, connection: lan, profile: sunspek }'))).toEqual([
      expect.stringMatching(/^site\.yaml:5:\d+ devices\[0\]\.profile: unknown profile "sunspek" \(shipped: fronius-gen24, goodwe-et, huawei-sun2000, solaredge-storedge, sungrow-sh, sunspec, victron-gx; or give the path of a \.yaml profile\)/),
    ]);
    expect(problems(site('- { id: battery, adapter: modbus, connection: wan, profile: sunspec }'))).toEqual([expect.stringMatching(/^site\.yaml:5:\d+ devices\[0\]\.connection: unknown Modbus connection "wan" \(known: lan\)/)]);
    expect(problems(site('- { id: battery, adapter: modbus, connection: lan, profile: sunspec, poll_s: 60, watchdog_s: 90 }'))).toEqual([
      expect.stringMatching(/devices\[0\]\.watchdog_s: must be at least twice poll_s \(60 s\)/),
    ]);
    expect(problems(site('- { id: battery, adapter: modbus, connection: lan, profile: victron-gx, meter_unit: 200 }'))).toEqual([
      expect.stringMatching(/devices\[0\]\.meter_unit: profile victron-gx reads no separate meter unit/),
    ]);
    expect(problems(site('- { id: battery, adapter: modbus, connection: lan, profile: sunspec, unit: 300 }')).join('\n')).toMatch(/devices\[0\]\.unit: must be <= 255/);
    expect(problems(site('- { id: battery, adapter: modbus, profile: sunspec }')).join('\n')).toMatch(/devices\[0\]: missing required key "connection"/);
  });

  it('points into the user\'s own profile file when it is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-profile-'));
    try {
      const file = join(dir, 'mine.yaml');
      // a profile whose grid power forgets its sign convention
      writeFileSync(file, ['id: mine', 'name: Mine', 'points:', '  w: { address: 5, type: i16 }', 'measures:', '  grid_power: w'].join('\n'));
      expect(problems(site(`- { id: battery, adapter: modbus, connection: lan, profile: "${file}" }`))).toEqual([
        expect.stringContaining(`${file}:6:15 measures.grid_power: grid_power needs "positive: import" or "positive: export"`),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});


describe('the hub with a simulated SunSpec inverter and a modbus device', () => {
  let hub: Hub | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await hub?.stop();
    hub = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the device with storage, meter and pv through the HTTP API, commands it, and writes auto on stop', async () => {
    dir = mkdtempSync(join(tmpdir(), 'hf-modbus-hub-'));
    const port = await freePort();
    const lines: string[] = [];
    const destination = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
    const text = [
      'site: { id: home, timezone: Europe/Berlin }',
      'http: { port: 0 }',
      `storage: { dir: ${JSON.stringify(dir)} }`,
      'connections:',
      `  modbus: [ { id: sim, tcp: { host: 127.0.0.1, port: ${port} }, timeout_ms: 500 } ]`,
      'devices:',
      `  - { id: sim-inverter, adapter: sunspec_sim, port: ${port}, initial_soc_pct: 55, capacity_wh: 8000, pv_kwp: 0 }`,
      '  - { id: battery, adapter: modbus, connection: sim, profile: sunspec, capacity_wh: 8000, max_charge_w: 4000, max_discharge_w: 4000, pv_kwp: 5 }',
    ].join('\n');
    hub = new Hub({ configText: text, logger: createLogger({ destination, level: 'info' }) });
    await hub.start();
    const battery = hub.registry.get('battery')!;
    expect(battery.available).toBe(true);
    expect(battery.caps.storage!.state()).toMatchObject({ socPct: 55, mode: 'auto' });
    expect(battery.caps.meter!.channels).toEqual(['battery', 'pv', 'grid']);
    expect(battery.caps.pv!.params.kWp).toBe(5);
    const res = await fetch(`${hub.url}/api/v1/devices/battery`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { available: boolean; capabilities: string[] };
    expect(body.available).toBe(true);
    expect(body.capabilities).toEqual(expect.arrayContaining(['storage', 'meter', 'pv']));
    await battery.caps.storage!.command({ mode: 'charge', powerW: 2000 });
    expect(battery.caps.storage!.state().mode).toBe('charge');
    await hub.stop();
    hub = undefined;
    expect(lines.join('')).toMatch(/handed battery back to the inverter's own mode/);
  });
});
