import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { demoYamlOnFreePorts } from '../../bench/demo-config.js';

/**
 * What leaves the house: the hub is run as a user runs it, with a recorder preloaded that notes
 * every TCP connection, UDP datagram and name lookup it makes. The demo makes none beyond this
 * machine; a site with a price provider and a notification channel reaches those two servers and
 * nothing else (both are local sinks here, on 127.0.0.2 and 127.0.0.3, so nothing really leaves).
 */
const ROOT = resolve(import.meta.dirname, '..', '..');
const RECORDER = join(ROOT, 'test', 'fixtures', 'outbound', 'recorder.mjs');

interface Outbound {
  kind: 'tcp' | 'udp' | 'dns';
  host: string;
  port?: number;
}

const children: ChildProcess[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

const isThisMachine = (host: string) => host === 'localhost' || host === '::1' || host === '127.0.0.1' || host === '0.0.0.0' || host === '::';

async function runHub(yaml: string, seconds: number): Promise<{ outbound: Outbound[]; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-outbound-'));
  const file = join(dir, 'site.yaml');
  writeFileSync(file, yaml);
  const logFile = join(dir, 'outbound.jsonl');
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', RECORDER, join(ROOT, 'src', 'cli.ts'), 'start', '--config', file], {
    cwd: ROOT,
    env: { ...process.env, HOMEFLEX_OUTBOUND_LOG: logFile, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stdout!.on('data', (b) => (log += b));
  child.stderr!.on('data', (b) => (log += b));
  const end = Date.now() + 90_000;
  while (!/homeflex is running/.test(log)) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`the hub did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const outbound = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Outbound) : [];
  return { outbound, log };
}

/** An HTTP server on `host` answering every request with `body`; the paths it was asked for. */
async function sink(host: string, body: (path: string) => string) {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(body(req.url ?? '')));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return { asked, port: (server.address() as { port: number }).port };
}

describe('what leaves the house', { timeout: 180_000 }, () => {
  it('the demo connects to nothing beyond this machine and looks up no name', async () => {
    const yaml = await demoYamlOnFreePorts(mkdtempSync(join(tmpdir(), 'homeflex-outbound-demo-')));
    const { outbound, log } = await runHub(yaml, 8);
    const beyond = outbound.filter((o) => o.kind === 'dns' ? !isThisMachine(o.host) : !isThisMachine(o.host));
    expect(beyond, log).toEqual([]);
    // the recorder works: the demo's own simulators dial the hub on this machine
    expect(outbound.some((o) => o.kind === 'tcp' && isThisMachine(o.host))).toBe(true);
  });

  it('a site with a price provider and a notification channel reaches exactly those servers', async () => {
    const day = Math.floor(Date.now() / 86_400_000) * 86_400;
    const prices = await sink('127.0.0.2', () => JSON.stringify({ unix_seconds: Array.from({ length: 96 }, (_, i) => day - 86_400 + i * 1800), price: Array.from({ length: 96 }, (_, i) => 80 + (i % 24)), unit: 'EUR / MWh' }));
    const ntfy = await sink('127.0.0.3', () => '{}');
    const yaml = `
site: { id: home, name: Home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
storage: { dir: ./data }
tariffs:
  import: { type: energy_charts, bzn: DE-LU, url: "http://127.0.0.2:${prices.port}", surcharge: { fixed: 0.17, vat: 19 } }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 5 }
plugins:
  - { id: notify, offline_after_minutes: 1, channels: [ { id: phone, type: ntfy, url: "http://127.0.0.3:${ntfy.port}", topic: home } ] }
`;
    const { outbound, log } = await runHub(yaml, 4);
    expect(prices.asked.length, log).toBeGreaterThan(0);
    const beyond = outbound.filter((o) => !isThisMachine(o.host));
    const where = new Set(beyond.map((o) => `${o.kind} ${o.host}${o.port ? `:${o.port}` : ''}`));
    // the configured price service (and the notification server, had there been something to tell), nothing else
    expect([...where].filter((w) => w.startsWith('tcp')), log).toContain(`tcp 127.0.0.2:${prices.port}`);
    expect([...where].filter((w) => w.startsWith('tcp') && w !== `tcp 127.0.0.2:${prices.port}` && w !== `tcp 127.0.0.3:${ntfy.port}`), log).toEqual([]);
    expect(beyond.filter((o) => o.kind === 'udp')).toEqual([]);
    expect(beyond.filter((o) => o.kind === 'dns').map((o) => o.host).filter((h) => !/^127\./.test(h))).toEqual([]);
  });
});
