import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { RPCClient } from 'ocpp-rpc';
import { afterEach, describe, expect, it } from 'vitest';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { parseConfig } from '../../src/core/config/load.js';
import { Discovery, MAX_DISCOVERED, appendDevice, deviceEntry } from '../../src/core/discovery.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { Mosquitto } from '../peers/mqtt.js';
import { describeWithPeers } from '../peers/system.js';
import { freePort } from '../peers/mqtt.js';

const quiet = () => createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: 'silent' });

let hub: Hub | undefined;
const clients: { close(o: { force: boolean }): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close({ force: true }).catch(() => undefined);
  await hub?.stop();
  hub = undefined;
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

const SITE = (ocppPort: number) => `# my house
site:
  id: home
  name: \${HF_SITE_NAME}   # from the environment
  timezone: Europe/Berlin

http: { port: 0 }

connections:
  # the wallbox dials in here
  ocpp: { host: 127.0.0.1, port: ${ocppPort}, allow_unknown: true }

devices: []   # none yet
`;

describe('discovery', () => {
  it('lists a charger dialling in with an unknown identity, and Add writes it into the site file and drives it without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-discovery-'));
    const file = join(dir, 'site.yaml');
    const port = await freePort();
    writeFileSync(file, SITE(port));
    const env = { ...process.env, HF_SITE_NAME: 'Test home' };
    hub = new Hub({ configFile: file, env, logger: quiet(), override: (c) => void (c.storage.dir = join(dir, 'data')) });
    await hub.start();
    const api = `${hub.url}/api/v1`;

    // a real OCPP 1.6 client under an identity no device has
    const cp = new RPCClient({ endpoint: `ws://127.0.0.1:${port}/ocpp`, identity: 'EVB-P2234', protocols: ['ocpp1.6'], reconnect: true, backoff: { initialDelay: 200, maxDelay: 500 } } as never) as unknown as {
      connect(): Promise<unknown>;
      call(m: string, p: unknown): Promise<unknown>;
      handle(m: string, fn: (c: { params: unknown }) => unknown): void;
      close(o: { force: boolean }): Promise<unknown>;
    };
    clients.push(cp);
    cp.handle('GetConfiguration', () => ({ configurationKey: [], unknownKey: [] }));
    cp.handle('ChangeConfiguration', () => ({ status: 'Accepted' }));
    cp.handle('TriggerMessage', () => ({ status: 'Accepted' }));
    cp.handle('SetChargingProfile', () => ({ status: 'Accepted' }));
    cp.handle('ClearChargingProfile', () => ({ status: 'Accepted' }));
    await cp.connect();
    const boot = () => cp.call('BootNotification', { chargePointVendor: 'Elecq', chargePointModel: 'AutoEC' }).catch(() => undefined);
    await boot();

    const found = await until(async () => {
      const r = (await (await fetch(`${api}/discovered`)).json()) as { data: { id: string; source: string; adapter: string; details: Record<string, unknown>; suggested_id: string }[] };
      return r.data.find((d) => d.source === 'ocpp');
    }, 10_000, 'the charger listed');
    expect(found).toMatchObject({ id: 'ocpp:EVB-P2234', adapter: 'ocpp', suggested_id: 'EVB-P2234', details: { identity: 'EVB-P2234', address: '127.0.0.1', protocols: ['ocpp1.6'] } });

    // a bad id is refused naming the field, and nothing is written
    const bad = await fetch(`${api}/discovered/${encodeURIComponent(found.id)}/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'no spaces' }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { field: string }).field).toBe('id');
    expect(readFileSync(file, 'utf8')).toBe(SITE(port));

    const add = await fetch(`${api}/discovered/${encodeURIComponent(found.id)}/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'garage', name: 'Garage wallbox' }) });
    const added = (await add.json()) as Record<string, unknown>;
    expect(add.status, JSON.stringify(added)).toBe(201);
    expect(added).toMatchObject({ object: 'device_added', id: 'garage', adapter: 'ocpp' });

    // the site file keeps its comments, layout and ${VAR}; the device is appended and it passes check-config
    const text = readFileSync(file, 'utf8');
    for (const kept of ['# my house', 'name: ${HF_SITE_NAME}   # from the environment', '# the wallbox dials in here', `ocpp: { host: 127.0.0.1, port: ${port}, allow_unknown: true }`]) expect(text).toContain(kept);
    expect(text).toMatch(/\ndevices: +# none yet\n {2}# added from the dashboard \(found by ocpp\) on \d{4}-\d\d-\d\d\n {2}- id: garage\n {4}adapter: ocpp\n {4}name: Garage wallbox\n {4}identity: EVB-P2234\n$/);
    // everything before the list is byte for byte what it was
    expect(text.startsWith(SITE(port).slice(0, SITE(port).indexOf('devices:')))).toBe(true);
    const config = parseConfig(text, file, { catalog: builtinCatalog, env, checks: hubChecks(builtinCatalog) });
    expect(config.devices.map((d) => d.id)).toEqual(['garage']);
    expect(config.site.name).toBe('Test home');

    // applied without a restart: the charger is let go, dials again and is the new device
    const device = await until(() => hub!.registry.get('garage'), 5_000, 'device registered');
    await until(async () => {
      if (!device.available) await boot();
      return device.available;
    }, 20_000, 'the added charger connected');
    expect(((await (await fetch(`${api}/discovered`)).json()) as { data: unknown[] }).data).toEqual([]);
  }, 60_000);

  it('caps the list, moves a device seen again to the top, and generates a charger password where the port is open to the network', () => {
    let t = 0;
    const d = new Discovery((source, key) => source === 'ocpp' && key === 'KNOWN', () => ++t);
    d.report({ source: 'ocpp', adapter: 'ocpp', key: 'KNOWN', name: 'KNOWN', details: {} });
    for (let i = 0; i < MAX_DISCOVERED + 5; i++) d.report({ source: 'ocpp', adapter: 'ocpp', key: `CP${i}`, name: `CP${i}`, details: {} });
    d.report({ source: 'ocpp', adapter: 'ocpp', key: 'CP10', name: 'CP10', details: {} });
    const list = d.list();
    expect(list).toHaveLength(MAX_DISCOVERED);
    expect(list[0]).toMatchObject({ id: 'ocpp:CP10', seen: 2 });
    expect(list.some((x) => x.key === 'KNOWN' || x.key === 'CP0')).toBe(false);

    const open = parseConfig('site: { id: home }\nconnections: { ocpp: { port: 9000 } }\n', 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });
    const { entry, secrets } = deviceEntry(list[0], open, 'cp10');
    expect(secrets.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(entry).toEqual({ id: 'cp10', adapter: 'ocpp', identity: 'CP10', password: secrets.password });
    // the file with it passes check-config (a charger without a password on an open port would not)
    const text = appendDevice('site: { id: home }\nconnections: { ocpp: { port: 9000 } }\n', entry, 'added');
    expect(parseConfig(text, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) }).devices).toHaveLength(1);
    const without = appendDevice('site: { id: home }\nconnections: { ocpp: { port: 9000 } }\n', { id: 'cp10', adapter: 'ocpp', identity: 'CP10' }, 'added');
    expect(() => parseConfig(without, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) })).toThrow(/has no password/);
  });
});

describeWithPeers(['mosquitto'], 'discovery on the MQTT broker', () => {
  it('lists Tasmota, Shelly and Zigbee2MQTT devices announcing themselves, not the configured ones, and adds one', async () => {
    const broker = await Mosquitto.start();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'hf-discovery-mqtt-'));
      const file = join(dir, 'site.yaml');
      const site = `site: { id: home }\nhttp: { port: 0 }\nconnections:\n  mqtt: { url: "${broker.url}" }\ndevices:\n  # the dishwasher socket\n  - { id: dishwasher, adapter: tasmota, topic: tasmota_KNOWN }\n`;
      writeFileSync(file, site);
      const tasmota = (mac: string, t: string, dn: string) => JSON.stringify({ ip: '192.168.1.50', dn, fn: [dn], hn: `${t}-1234`, mac, md: 'Gosund SP111', ty: 0, if: 0, ofln: 'Offline', onln: 'Online', state: ['OFF', 'ON', 'TOGGLE', 'HOLD'], sw: '13.2.0', t, ft: '%prefix%/%topic%/', tp: ['cmnd', 'stat', 'tele'] });
      broker.pub('tasmota/discovery/A1B2C3D4E5F6/config', tasmota('A1B2C3D4E5F6', 'tasmota_D4E5F6', 'Washer'), { retain: true });
      broker.pub('tasmota/discovery/0A0B0C0D0E0F/config', tasmota('0A0B0C0D0E0F', 'tasmota_KNOWN', 'Dishwasher'), { retain: true });
      broker.pub('zigbee2mqtt/bridge/devices', JSON.stringify([
        { ieee_address: '0x00124b0000000001', type: 'Coordinator', friendly_name: 'Coordinator' },
        { ieee_address: '0x84fd27fffe000001', type: 'EndDevice', friendly_name: 'living_trv', definition: { model: 'TS0601_thermostat', vendor: 'TuYa', description: 'Radiator valve', exposes: [{ type: 'climate' }, { type: 'numeric', name: 'battery' }] } },
        { ieee_address: '0x84fd27fffe000002', type: 'EndDevice', friendly_name: 'door', definition: { model: 'SNZB-04', vendor: 'SONOFF', exposes: [{ type: 'binary', name: 'contact' }] } },
      ]), { retain: true });
      hub = new Hub({ configFile: file, logger: quiet(), override: (c) => void (c.storage.dir = join(dir, 'data')) });
      await hub.start();
      const api = `${hub.url}/api/v1`;
      // announced while the hub runs (not retained: a Gen1 announces again when asked or reconnecting,
      // so it is repeated until the hub's subscription, made after start, has heard it)
      const announce = () => broker.pub('shellies/announce', JSON.stringify({ id: 'shellyplug-s-4022D8', model: 'SHPLG-S', mac: '4022D8', ip: '192.168.1.51', new_fw: false, fw_ver: '20230913-114008/v1.14.0-gcb84623' }));
      broker.pub('shellyplus1pm-441793d69718/online', 'true', { retain: true });
      let polls = 0;
      const list = await until(async () => {
        if (polls++ % 10 === 0) announce();
        const r = (await (await fetch(`${api}/discovered`)).json()) as { data: { id: string; source: string; name: string; details: Record<string, unknown> }[] };
        return r.data.length >= 4 ? r.data : undefined;
      }, 20_000, 'four devices found');
      expect(list.map((d) => d.id).sort()).toEqual(['shelly:shellyplug-s-4022D8', 'shelly:shellyplus1pm-441793d69718', 'tasmota:tasmota_D4E5F6', 'zigbee2mqtt:living_trv']);
      expect(list.find((d) => d.source === 'tasmota')).toMatchObject({ name: 'Washer', details: { module: 'Gosund SP111', ip: '192.168.1.50', mac: 'A1B2C3D4E5F6' } });
      expect(list.find((d) => d.source === 'zigbee2mqtt')).toMatchObject({ details: { vendor: 'TuYa', model: 'TS0601_thermostat' } });

      const add = await fetch(`${api}/discovered/${encodeURIComponent('tasmota:tasmota_D4E5F6')}/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'washer', name: 'Washer' }) });
      expect(add.status, await add.clone().text()).toBe(201);
      const text = readFileSync(file, 'utf8');
      expect(text.startsWith(site)).toBe(true);
      expect(text.slice(site.length)).toMatch(/^ {2}# added from the dashboard \(found by tasmota\) on [\d-]+\n {2}- id: washer\n {4}adapter: tasmota\n {4}name: Washer\n {4}topic: tasmota_D4E5F6\n$/);
      await until(() => hub!.registry.get('washer'), 5_000, 'washer registered');
      const after = (await (await fetch(`${api}/discovered`)).json()) as { data: { id: string }[] };
      expect(after.data.map((d) => d.id)).not.toContain('tasmota:tasmota_D4E5F6');
    } finally {
      await hub?.stop();
      hub = undefined;
      await broker.stop();
    }
  }, 60_000);
});
