import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { builtinCatalog } from '../../../src/core/catalog.js';
import { hubChecks } from '../../../src/core/config/checks.js';
import { parseConfig } from '../../../src/core/config/load.js';
import { discoverySettings } from '../../../src/core/discovery-modbus.js';
import { Hub } from '../../../src/core/host.js';
import { createLogger } from '../../../src/core/logging.js';
import { recordingLogger } from '../../../test/peers/mqtt.js';
import { describeWithPeers } from '../../../test/peers/system.js';
import { startPymodbus } from './peers.js';
import { sunspecMap } from './sunspec-image.js';

/**
 * Discovery on a configured Modbus connection (issue 20): python3-pymodbus serves a SunSpec hybrid
 * inverter with a battery at unit 1 and a SunSpec meter at unit 240; unit 2 answers nothing. The
 * hub lists what no device of its site file uses, and Add writes it into the file and drives it.
 */

const quiet = () => createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: 'silent' });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const until = async <T>(fn: () => T | Promise<T>, ms: number, what: string): Promise<NonNullable<T>> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

type Model = { id: number; values: Record<string, number | string> };
const inverter: Model[] = [
  { id: 1, values: { Mn: 'Acme Solar', Md: 'HY-10K', SN: 'A1B2C3', Vr: '2.4.1' } },
  { id: 103, values: { W: 2500, W_SF: 0, WH: 1_234_567, WH_SF: 0 } },
  { id: 120, values: { DERTyp: 82, WRtg: 1000, WRtg_SF: 1 } },
  { id: 124, values: { WChaMax: 500, WChaMax_SF: 1, StorCtl_Mod: 0, ChaState: 55, ChaState_SF: 0 } },
  { id: 802, values: { AHRtg: 200, WHRtg: 1000, WHRtg_SF: 1, SoC: 55, SoC_SF: 0 } },
];
const meter: Model[] = [
  { id: 1, values: { Mn: 'Carlo Gavazzi', Md: 'EM24DINAV53DISX', SN: 'KT2340123', Vr: 'A.17' } },
  { id: 203, values: { W: 640, WphA: 200, WphB: 220, WphC: 220, W_SF: 0, TotWhExp: 1000, TotWhImp: 2000, TotWh_SF: 0 } },
];

const SITE = (port: number) => `# the house
site: { id: home, timezone: Europe/Berlin }
http: { port: 0 }
connections:
  modbus:
    # the inverter's LAN port
    - { id: lan, tcp: { host: 127.0.0.1, port: ${port} }, timeout_ms: 300, discover: { units: [1, 2, 240], first_look_s: 0 } }
devices:
  - { id: grid, adapter: modbus, connection: lan, unit: 240, profile: sunspec }   # the meter, configured by hand
`;

describeWithPeers(['pymodbus'], 'discovery of SunSpec devices on a Modbus connection, against python3-pymodbus', () => {
  it('lists the unit no device uses with what it is, and Add writes it into the site file and reads it without a restart', async () => {
    const peer = await startPymodbus(new Map([[1, sunspecMap(inverter)], [240, sunspecMap(meter)]]), { tcp: true });
    cleanups.push(() => peer.stop());
    const dir = mkdtempSync(join(tmpdir(), 'hf-modbus-discovery-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'site.yaml');
    writeFileSync(file, SITE(peer.port!));
    const hub = new Hub({ configFile: file, logger: quiet(), override: (c) => void (c.storage.dir = join(dir, 'data')) });
    cleanups.push(() => hub.stop());
    await hub.start();
    const api = `${hub.url}/api/v1`;
    type Found = { id: string; source: string; adapter: string; name: string; details: Record<string, unknown>; config: Record<string, unknown>; suggested_id: string };
    const list = async () => ((await (await fetch(`${api}/discovered`)).json()) as { data: Found[] }).data;

    const found = await until(async () => (await list()).find((d) => d.source === 'sunspec'), 15_000, 'the inverter listed');
    expect(found).toMatchObject({
      id: 'sunspec:lan:1',
      adapter: 'modbus',
      name: 'Acme Solar HY-10K',
      details: { connection: 'lan', unit: 1, roles: ['inverter', 'battery'], base: 40000, models: [1, 103, 120, 124, 802], serial: 'A1B2C3', firmware: '2.4.1', rated_w: 10000, capacity_wh: 10000 },
      config: { connection: 'lan', unit: 1, profile: 'sunspec', capacity_wh: 10000, max_charge_w: 5000, max_discharge_w: 5000 },
    });
    // the meter at 240 is the configured "grid"; unit 2 did not answer
    await new Promise((r) => setTimeout(r, 1000));
    expect((await list()).map((d) => d.id)).toEqual(['sunspec:lan:1']);

    const add = await fetch(`${api}/discovered/${encodeURIComponent(found.id)}/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'battery' }) });
    const added = (await add.json()) as Record<string, unknown>;
    expect(add.status, JSON.stringify(added)).toBe(201);
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith(SITE(peer.port!))).toBe(true);
    const config = parseConfig(text, file, { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });
    expect(config.devices.find((d) => d.id === 'battery')).toMatchObject({ adapter: 'modbus', connection: 'lan', unit: 1, profile: 'sunspec', capacity_wh: 10000, max_charge_w: 5000 });

    // driven at once: the battery's SoC is read from model 802 / 124
    const device = await until(() => hub.registry.get('battery'), 5_000, 'device registered');
    expect(device.caps.storage?.params).toMatchObject({ capacityWh: 10000, maxChargeW: 5000 });
    const state = await until(async () => {
      const r = (await (await fetch(`${api}/devices/battery`)).json()) as { state?: { storage?: { soc_pct: number | null } } };
      return typeof r.state?.storage?.soc_pct === 'number' ? r : undefined;
    }, 15_000, 'the battery read');
    expect(state.state!.storage!.soc_pct).toBe(55);
    expect(await list()).toEqual([]);
  }, 60_000);

  it('holds the connection at an absent unit for discover.timeout_ms, not the connection timeout_ms', async () => {
    const peer = await startPymodbus(new Map([[240, sunspecMap(meter)]]), { tcp: true });
    cleanups.push(() => peer.stop());
    const dir = mkdtempSync(join(tmpdir(), 'hf-modbus-discovery-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const site = `site: { id: home, timezone: Europe/Berlin }
http: { port: 0 }
connections:
  modbus:
    - { id: lan, tcp: { host: 127.0.0.1, port: ${peer.port} }, timeout_ms: 4000, discover: { units: [2, 3, 4], first_look_s: 0, timeout_ms: 200 } }
devices:
  - { id: grid, adapter: modbus, connection: lan, unit: 240, profile: sunspec }
`;
    const rec = recordingLogger('debug');
    const hub = new Hub({ configText: site, logger: rec.log, override: (c) => void (c.storage.dir = join(dir, 'data')) });
    cleanups.push(() => hub.stop());
    const started = Date.now();
    await hub.start();
    await until(() => rec.text().includes('discovery: looked at units 2, 3, 4'), 20_000, 'the look to end');
    // three absent units: 3 × 200 ms (+ the meter's polls between them); at the connection's 4 s it would be 12 s
    expect(Date.now() - started).toBeLessThan(8_000);
    const nothing = rec.lines.filter((l) => l.includes('discovery: nothing at unit'));
    expect(nothing.length).toBe(3);
    for (const l of nothing) expect(l).toContain('no answer within 200 ms');
    expect(rec.text()).toContain('nothing new');
  }, 60_000);
});

it('looks at TCP connections by default, at RTU buses only when asked, never when told not to', () => {
  const tcp = { id: 'lan', tcp: { host: 'x', port: 502 }, timeout_ms: 2000 };
  const rtu = { id: 'bus', rtu: { path: '/dev/ttyUSB0', baud: 9600, parity: 'none' as const }, timeout_ms: 2000 };
  expect(discoverySettings(tcp)).toEqual({ units: [1, 2, 126, 200, 240], everyMs: 86_400_000, firstMs: 10_000, timeoutMs: 500 });
  expect(discoverySettings(rtu)).toBeUndefined();
  expect(discoverySettings({ ...rtu, discover: { units: [3, 4], every_h: 2, first_look_s: 0, timeout_ms: 300 } })).toEqual({ units: [3, 4], everyMs: 7_200_000, firstMs: 0, timeoutMs: 300 });
  expect(discoverySettings({ ...rtu, discover: { every_h: 24, first_look_s: 10, timeout_ms: 500 } })).toEqual({ units: [1, 2, 126, 200, 240], everyMs: 86_400_000, firstMs: 10_000, timeoutMs: 500 });
  expect(discoverySettings({ ...tcp, discover: { units: [], every_h: 24, first_look_s: 10, timeout_ms: 500 } })).toBeUndefined();
  // a look never waits longer than the connection itself would
  expect(discoverySettings({ ...tcp, timeout_ms: 200, discover: { every_h: 24, first_look_s: 10, timeout_ms: 500 } })?.timeoutMs).toBe(200);
});
