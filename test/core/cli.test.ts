import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { spawnCli } from '../peers/hub-process.js';

const root = resolve(import.meta.dirname, '..', '..');
const cli = ['--import', 'tsx', join(root, 'src', 'cli.ts')];
const run = (...args: string[]) => runEnv({}, ...args);
const runEnv = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [...cli, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1', ...env } });

describe('homeflex CLI', () => {
  it('check-config prints every located error and exits 1, or a summary and exits 0', () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-cli-'));
    const bad = join(dir, 'site.yaml');
    writeFileSync(bad, 'site: { id: home, currency: eur }\nhttp: { port: -1, tokn: x }\ndevices:\n  - { id: a, adapter: sim_pv, kwp: 0 }\n  - { id: b, adapter: nope }\n');
    const r = run('check-config', bad);
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe('5 errors');
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/^site\.yaml:\d+:\d+ \S+: /);
    const ok = run('check-config', join(root, 'config', 'demo.yaml'));
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/demo\.yaml: OK\n {2}site demo-home/);
  });

  it('accepts config/example-site.yaml as written', () => {
    const r = runEnv({ HOMEFLEX_TOKEN: 'a-token-of-twenty-chars', CP001_PASSWORD: 'cp-secret' }, 'check-config', join(root, 'config', 'example-site.yaml'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('devices: 4 (1 ocpp, 1 modbus, 1 tasmota, 1 zigbee2mqtt)');
    expect(r.status).toBe(0);
  });

  it('schema writes the composed JSON Schema', () => {
    const r = run('schema');
    expect(r.status).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.title).toBe('homeflex site configuration');
    expect(schema.properties.devices.items.properties.adapter.enum).toContain('sim_ev');
    // the copy shipped for editors (config/*.yaml point at it) is the current one
    expect(readFileSync(join(root, 'schema', 'site.schema.json'), 'utf8'), 'run: homeflex schema --out schema/site.schema.json').toBe(r.stdout);
  });

  it('starts the demo on ports given as flags, answers health, and exits cleanly within 5 s of SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-cli-'));
    // the demo file as shipped (fixed ports 8080, 9000, 1502), only its storage moved
    const file = join(dir, 'demo.yaml');
    writeFileSync(file, readFileSync(join(root, 'config', 'demo.yaml'), 'utf8').replace(/dir: \.\.\/data\/demo/, `dir: ${JSON.stringify(dir)}`));
    const [ocpp, modbus] = await freePorts(2);
    const t0 = Date.now();
    const flags = ['--port', '0', '--ocpp-port', String(ocpp), '--modbus-port', String(modbus), '--mqtt-port', '0'];
    // a failed assertion must not leave the demo running (spawnCli kills it)
    const proc = spawnCli(['start', '--config', file, ...flags]);
    const child = proc.child;
    let url: string | undefined;
    while (!url && Date.now() - t0 < 10_000) {
      url = /"url":"(http:[^"]+)"/.exec(proc.out)?.[1];
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(url, proc.out).toBeDefined();
    const health = await (await fetch(`${url}/api/v1/health`)).json();
    expect(health).toMatchObject({ status: 'ok', site_id: 'demo-home' });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(url).not.toContain(':8080');
    // the simulated charge point dialled the moved OCPP port, the Modbus device read the moved inverter
    const available = async () => ((await (await fetch(`${url}/api/v1/devices`)).json()) as { data: { id: string; available: boolean }[] }).data.filter((d) => d.available).map((d) => d.id);
    await expect.poll(available, { timeout: 15_000, interval: 250 }).toEqual(expect.arrayContaining(['wallbox', 'garage-battery']));
    const s0 = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(Date.now() - s0).toBeLessThan(5000);
    expect(proc.out).toContain('homeflex stopped');
  });

  it('refuses a port flag it cannot apply, saying why', () => {
    expect(run('start', '--port', 'eighty').stderr).toContain('--port must be a port number from 0 to 65535 (got eighty)');
    const r = run('start', '--config', join(root, 'config', 'example-site.yaml'), '--modbus-port', '1503');
    expect(r.status).toBe(1);
  });
});

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<Server>((r) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => r(srv));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
