import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { demoYamlOnFreePorts } from '../../bench/demo-config.js';

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

  it('accepts the example site of DESIGN.md as written', () => {
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

  it('starts the demo, answers health, and exits cleanly within 5 s of SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-cli-'));
    const demo = await demoYamlOnFreePorts(dir);
    const file = join(dir, 'demo.yaml');
    writeFileSync(file, demo);
    const t0 = Date.now();
    const child = spawn(process.execPath, [...cli, 'start', '--config', file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    // a failed assertion must not leave the demo running
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    let url: string | undefined;
    while (!url && Date.now() - t0 < 10_000) {
      url = /"url":"(http:[^"]+)"/.exec(out)?.[1];
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(url, out).toBeDefined();
    const health = await (await fetch(`${url}/api/v1/health`)).json();
    expect(health).toMatchObject({ status: 'ok', site_id: 'demo-home' });
    expect(Date.now() - t0).toBeLessThan(10_000);
    const s0 = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(Date.now() - s0).toBeLessThan(5000);
    expect(out).toContain('homeflex stopped');
  });
});
