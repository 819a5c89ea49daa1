import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterDefinition, PluginDefinition } from '../../src/api/index.js';
import { Hub } from '../../src/core/host.js';
import { recordingLogger } from '../peers/mqtt.js';

/**
 * The plugin host end to end: the template plugin (examples/plugin-template, written from
 * docs/plugins.md only) installed by path into a hub, driving a real HTTP socket stand-in on
 * 127.0.0.1; a plugin that throws on start and one built for another SDK, both refused with their
 * place in the site file while the hub runs on; and the contract kit, loaded through the package's
 * `homeflex/testing` export as a plugin author would.
 */
const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** A smart socket that speaks the template's HTTP/JSON: GET /status, POST /relay. */
function socketStandIn() {
  const state = { on: false, energy_wh: 1000, requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    const answer = () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ on: state.on, power_w: state.on ? 1850 : 0.6, energy_wh: state.energy_wh }));
    };
    if (req.method === 'GET' && req.url === '/status') return answer();
    if (req.method === 'POST' && req.url === '/relay') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        try {
          state.on = (JSON.parse(body) as { on: boolean }).on === true;
          answer();
        } catch {
          res.statusCode = 400;
          res.end('{}');
        }
      });
      return;
    }
    res.statusCode = 404;
    res.end('{}');
  });
  return { state, server };
}

const listen = (server: Server) => new Promise<string>((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));

/** A port nothing listens on: bound and closed again. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

let dir: string;
let socket: ReturnType<typeof socketStandIn>;
let socketUrl: string;
let siteFile: string;
let siteText: string;
let hub: Hub;
let logs: ReturnType<typeof recordingLogger>;

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

beforeAll(async () => {
  // the SDK as the package exports it (homeflex/sdk, homeflex/testing): what an installed plugin imports
  await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.sdk.json')], { cwd: root });
  dir = mkdtempSync(join(tmpdir(), 'homeflex-plugins-'));
  // "npm install" of the template's devDependency on homeflex by path makes exactly this link
  const template = join(dir, 'plugins/http-socket');
  cpSync(join(root, 'examples/plugin-template'), template, { recursive: true, filter: (src) => !src.includes('node_modules') });
  mkdirSync(join(template, 'node_modules'));
  symlinkSync(root, join(template, 'node_modules/homeflex'), 'dir');

  // a plugin that throws on start
  mkdirSync(join(dir, 'plugins/boom'));
  writeFileSync(join(dir, 'plugins/boom/package.json'), JSON.stringify({ name: 'homeflex-plugin-boom', version: '1.0.0', type: 'module', main: 'index.js', engines: { homeflex: '>=0.1.0 <1' } }));
  writeFileSync(
    join(dir, 'plugins/boom/index.js'),
    `export default { id: 'boom', description: 'throws on start', configSchema: { properties: { licence: { type: 'string' } } },
       create: () => ({ async start() { throw new Error('kaboom: the licence key is missing'); } }) };\n`,
  );
  // a plugin built for another SDK: never imported (its module would throw if it were)
  mkdirSync(join(dir, 'plugins/old'));
  writeFileSync(join(dir, 'plugins/old/package.json'), JSON.stringify({ name: 'homeflex-plugin-old', version: '3.2.0', type: 'module', main: 'index.js', peerDependencies: { homeflex: '^2.0.0' } }));
  writeFileSync(join(dir, 'plugins/old/index.js'), `throw new Error('an SDK-mismatched plugin must not be imported');\n`);

  // a plugin whose timer throws after a few ticks, and that probes whether the hub's view is read-only
  mkdirSync(join(dir, 'plugins/ticker'));
  writeFileSync(join(dir, 'plugins/ticker/package.json'), JSON.stringify({ name: 'homeflex-plugin-ticker', version: '0.0.1', type: 'module', engines: { homeflex: '^0.1.0' } }));
  writeFileSync(
    join(dir, 'plugins/ticker/index.js'),
    `export const ticks = { n: 0 };
     const attempt = (fn) => { try { fn(); return 'allowed'; } catch (err) { return err.constructor.name + ': ' + err.message; } };
     export default { id: 'ticker', description: 'throws in its timer', configSchema: {},
       routes(routes, ctx) {
         routes.get('/probe', 'read', () => ({
           ticks: ticks.n,
           device_write: attempt(() => { ctx.hub.devices.get('dishwasher').available = false; }),
           caps_write: attempt(() => { ctx.hub.devices.get('dishwasher').caps.switch.ratedPowerW = 1; }),
           site_write: attempt(() => { ctx.hub.site.name = 'mine'; }),
           plan_frozen: Object.isFrozen(ctx.hub.plan.latest() ?? {}),
           still_available: ctx.hub.devices.get('dishwasher').available,
         }));
       },
       create: (ctx) => ({ async start() { ctx.clock.every(50, () => { if (++ticks.n === 3) throw new Error('tick 3 went wrong'); }); } }) };\n`,
  );
  socket = socketStandIn();
  socketUrl = await listen(socket.server);
  siteText = [
    'site: { id: home, name: Plugin home, timezone: Europe/Berlin, currency: EUR }',
    'tariffs:',
    '  import: { type: fixed, rate: 0.30 }',
    '  export: { type: fixed, rate: 0.08 }',
    'devices:',
    '  - id: dishwasher',
    '    adapter: http_socket',
    `    url: ${socketUrl}`,
    '    poll_s: 1',
    '    rated_power_w: 1850',
    '    schedule: { hours: 2, window: { from: "00:00", to: "00:00" } }',
    'plugins:',
    '  - path: ./plugins/http-socket',
    '  - path: ./plugins/boom',
    '    licence: ""',
    '  - path: ./plugins/old',
    '  - { id: dashboard, enabled: false }',
    '  - path: ./plugins/ticker',
    '',
  ].join('\n');
  siteFile = join(dir, 'site.yaml');
  writeFileSync(siteFile, siteText);
  logs = recordingLogger('info');
  hub = await Hub.load({
    configFile: siteFile,
    logger: logs.log,
    override: (c) => {
      c.http.port = 0;
      c.storage.dir = join(dir, 'data');
    },
  });
  await hub.start();
}, 240_000);

afterAll(async () => {
  await hub?.stop();
  await new Promise((r) => socket?.server.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const get = async (path: string) => {
  const res = await fetch(`${hub.url}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('plugins from outside the build', () => {
  it('loads the template by path: its socket appears in the API with its state read over HTTP', async () => {
    const { status, body } = await get('/api/v1/devices/dishwasher');
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: 'dishwasher', adapter: 'http_socket', available: true, adapter_status: 'running', capabilities: ['meter', 'switch'] });
    // what the hub shows is what the socket says (the plan may have switched it on already)
    expect((body.state as { switch: unknown }).switch).toEqual({ on: socket.state.on, rated_power_w: 1850 });
    expect(socket.state.requests).toBeGreaterThan(0);
    const mine = await get('/api/v1/plugins/http-socket/sockets');
    expect(mine.body).toEqual({ object: 'list', data: [{ id: 'dishwasher', available: true, on: socket.state.on, power_w: socket.state.on ? 1850 : 0.6 }] });
  });

  it('puts the socket in the plan as a switched load', async () => {
    let plan: { devices?: { id: string; kind: string; on?: boolean[] }[] } = {};
    for (let i = 0; i < 100 && !plan.devices?.some((d) => d.id === 'dishwasher'); i++) {
      const r = await get('/api/v1/plan');
      if (r.status === 200) plan = r.body as typeof plan;
      else await new Promise((res) => setTimeout(res, 200));
    }
    const dp = plan.devices?.find((d) => d.id === 'dishwasher');
    expect(dp).toMatchObject({ id: 'dishwasher', kind: 'load' });
    // 2 h a day: at least 8 quarter-hour slots on within the horizon
    expect(dp!.on!.filter(Boolean).length).toBeGreaterThanOrEqual(8);
  });

  it('keeps plugin routes behind the same authorisation: a LAN client without a token is refused', async () => {
    const res = await hub.http!.inject({ url: '/api/v1/plugins/http-socket/sockets', remoteAddress: '192.168.1.50' });
    expect(res.statusCode).toBe(401);
  });

  it('marks a plugin that throws on start failed, says where the site file names it, and runs on', async () => {
    const { body } = await get('/api/v1/health');
    const plugins = (body.plugins as { list: { id: string; status: string; error: string | null }[] }).list;
    const boom = plugins.find((p) => p.id === 'boom');
    const line = lineOf(siteText, 'path: ./plugins/boom');
    expect(boom).toMatchObject({ status: 'failed' });
    expect(boom!.error).toBe(`plugin boom (site.yaml:${line}:5 plugins[1].path) failed to start: kaboom: the licence key is missing`);
    expect(body.status).toBe('degraded');
    expect(plugins.find((p) => p.id === 'http-socket')).toMatchObject({ status: 'running' });
    expect(logs.text()).toContain('kaboom: the licence key is missing');
  });

  it('refuses a plugin built for another SDK range with a located message, without importing it, and runs on', async () => {
    const { body } = await get('/api/v1/health');
    const plugins = (body.plugins as { list: { id: string; status: string; error: string | null }[] }).list;
    const line = lineOf(siteText, 'path: ./plugins/old');
    expect(plugins.find((p) => p.id === './plugins/old')).toEqual({
      id: './plugins/old',
      source: 'path ./plugins/old',
      status: 'failed',
      error: `site.yaml:${line}:5 plugins[2].path: plugin path "./plugins/old": homeflex-plugin-old@3.2.0 was built for homeflex SDK ^2.0.0, but this hub provides SDK 0.1.0; install a version of the plugin made for it`,
    });
    expect((await get('/api/v1/devices')).status).toBe(200);
  });

  it('marks a plugin whose timer throws failed, stops its timer, and runs on', async () => {
    let ticker: { status: string; error: string | null } | undefined;
    for (let i = 0; i < 100 && ticker?.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      ticker = ((await get('/api/v1/plugins')).body.data as { id: string; status: string; error: string | null }[]).find((p) => p.id === 'ticker');
    }
    expect(ticker).toMatchObject({ status: 'failed', error: 'tick 3 went wrong' });
    const probe = async () => (await get('/api/v1/plugins/ticker/probe')).body as Record<string, unknown>;
    const first = await probe();
    await new Promise((r) => setTimeout(r, 300));
    expect((await probe()).ticks).toBe(first.ticks);
    expect(first.ticks).toBe(3);
    expect((await get('/api/v1/devices/dishwasher')).body).toMatchObject({ available: true });
  });

  it('gives plugins a read-only view of the hub', async () => {
    const probe = (await get('/api/v1/plugins/ticker/probe')).body;
    expect(probe).toEqual({
      ticks: 3,
      device_write: 'TypeError: device dishwasher is read-only for plugins',
      caps_write: 'TypeError: device dishwasher is read-only for plugins',
      site_write: "TypeError: Cannot assign to read only property 'name' of object '#<Object>'",
      plan_frozen: true,
      still_available: true,
    });
  });

  it('lets the site file turn the dashboard off', async () => {
    expect((await fetch(`${hub.url}/`)).status).toBe(404);
    const { body } = await get('/api/v1/plugins');
    expect((body.data as { id: string; status: string }[]).find((p) => p.id === 'dashboard')).toMatchObject({ status: 'disabled' });
  });

  it('check-config loads the plugins: their keys pass, the SDK mismatch is an error at its line', async () => {
    const out = await run(process.execPath, ['--import', 'tsx', join(root, 'src/cli.ts'), 'check-config', siteFile], { cwd: root }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(out.code).toBe(1);
    const line = lineOf(siteText, 'path: ./plugins/old');
    expect(out.stderr).toBe(`site.yaml:${line}:5 plugins[2].path: plugin path "./plugins/old": homeflex-plugin-old@3.2.0 was built for homeflex SDK ^2.0.0, but this hub provides SDK 0.1.0; install a version of the plugin made for it\n1 error\n`);
  }, 60_000);

  it('check-config refuses a plugin key its schema does not know, at its line', async () => {
    const bad = siteText.replace('    poll_s: 1', '    poll_s: 0').replace('    licence: ""', '    licence: ""\n    colour: red');
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, bad);
    const out = await run(process.execPath, ['--import', 'tsx', join(root, 'src/cli.ts'), 'check-config', file], { cwd: root }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`bad.yaml:${lineOf(bad, 'poll_s: 0')}:13 devices[0].poll_s: must be >= 1`);
    expect(out.stderr).toContain(`bad.yaml:${lineOf(bad, 'colour: red')}:5 plugins[1].colour: unknown key "colour"`);
  }, 60_000);
});

describe('the contract kit (homeflex/testing)', () => {
  /** The kit and the template's adapter as a plugin author gets them: through the package's exports. */
  async function kit() {
    const from = createRequire(join(dir, 'plugins/http-socket/package.json'));
    const testing = (await import(pathToFileURL(from.resolve('homeflex/testing')).href)) as typeof import('../../src/testing/index.js');
    const plugin = (await import(pathToFileURL(join(dir, 'plugins/http-socket/index.js')).href)) as { default: PluginDefinition };
    return { testing, adapter: plugin.default.adapters![0] };
  }

  it('passes the template: start, stop within budget, switch honoured, bad config located, errors typed', async () => {
    const { testing, adapter } = await kit();
    const report = await testing.assertAdapterContract({
      adapter,
      config: { url: socketUrl, poll_s: 1 },
      badConfigs: [
        { config: { url: 'ftp://socket.local' }, path: 'url' },
        { config: { url: socketUrl, poll_s: 0 }, path: 'poll_s' },
        { config: { url: socketUrl, colour: 'red' }, path: 'colour' },
      ],
      unreachableConfig: { url: `http://127.0.0.1:${await closedPort()}`, timeout_ms: 300 },
    });
    const names = report.checks.map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'start: resolves within 10000 ms',
        'stop: resolves within 3000 ms, and nothing runs afterwards',
        'dishwasher: switch.set(true) is honoured'.replace('dishwasher', 'dut'),
        'config: refuses a bad entry at url',
        'unreachable device: a command rejects with a typed error',
      ]),
    );
    expect(report.checks.find((c) => c.name === 'config: refuses a bad entry at poll_s')!.message).toMatch(/^contract\.yaml:\d+ devices\[0\]\.poll_s: must be >= 1/);
    expect(report.checks.find((c) => c.name === 'unreachable device: a command rejects with a typed error')!.message).toMatch(/^retryable unreachable: socket dut/);
  }, 60_000);

  it('fails an adapter that breaks the contract, naming each broken promise', async () => {
    const { testing } = await kit();
    let on = false;
    const broken: AdapterDefinition = {
      id: 'broken_socket',
      description: 'ignores commands, throws untyped errors, keeps a timer after stop',
      configSchema: { properties: { url: { type: 'string' } } },
      create: (ctx, config) => {
        const device = { id: config.id, name: config.id, adapter: 'broken_socket', available: true, caps: { switch: { ratedPowerW: 100, isOn: () => on, set: async () => undefined } } };
        return {
          devices: [device],
          start: async () => {
            if ((config as { url?: string }).url === 'dead') throw new Error('ECONNREFUSED');
            setInterval(() => ctx.bus.emit('device.state', { deviceId: config.id, available: true }), 50).unref();
          },
          stop: async () => undefined,
        };
      },
    };
    const report = await testing.runAdapterContract({ adapter: broken, config: { url: 'x' }, badConfigs: [{ config: { url: 5 }, path: 'port' }], unreachableConfig: { url: 'dead' }, settleMs: 200 });
    on = true;
    expect(report.ok).toBe(false);
    const failed = Object.fromEntries(report.checks.filter((c) => !c.ok).map((c) => [c.name, c.message]));
    expect(Object.keys(failed).sort()).toEqual([
      'config: refuses a bad entry at port',
      'dut: switch.set(true) is honoured',
      'stop: resolves within 3000 ms, and nothing runs afterwards',
      'unreachable device: a command rejects with a typed error',
      'unreachable device: start fails typed or marks the device unavailable',
    ]);
    expect(failed['unreachable device: start fails typed or marks the device unavailable']).toBe('start() rejected with an untyped error (use permanentError / retryableError): Error: ECONNREFUSED');
    await expect(testing.assertAdapterContract({ adapter: broken, config: { url: 'x' }, settleMs: 100 })).rejects.toThrow(/adapter broken_socket breaks the homeflex contract/);
  }, 60_000);
});
