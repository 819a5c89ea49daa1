import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');
const cli = ['--import', 'tsx', join(root, 'src', 'cli.ts')];
const TOKEN = 'tok-9f8e7d6c5b4a3210-secret';

async function startHub(yaml: string, env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-sec-'));
  const file = join(dir, 'site.yaml');
  writeFileSync(file, yaml.replace('STORAGE', JSON.stringify(join(dir, 'data'))));
  const child = spawn(process.execPath, [...cli, 'start', '--config', file], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const t0 = Date.now();
  let url: string | undefined;
  while (!url && Date.now() - t0 < 15_000 && child.exitCode === null) {
    url = /"url":"(http:[^"]+)"/.exec(out)?.[1];
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.on('exit', r));
      return out;
    },
  };
}

describe('security', () => {
  it('never writes configured secrets to the log, whatever the requests', async () => {
    const yaml = `site: { id: home }\nhttp: { port: 0, token: \${HOMEFLEX_TOKEN} }\nstorage: { dir: STORAGE }\nlog: { level: trace, format: json }\ndevices:\n  - { id: house, adapter: sim_load, tick_s: 1 }\n`;
    const hub = await startHub(yaml, { HOMEFLEX_TOKEN: TOKEN });
    expect(hub.url, hub.output()).toBeDefined();
    const auth = { authorization: `Bearer ${TOKEN}` };
    await fetch(`${hub.url}/api/v1/health`, { headers: auth });
    await fetch(`${hub.url}/api/v1/devices`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
    await fetch(`${hub.url}/api/v1/devices`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}x` } });
    await fetch(`${hub.url}/api/v1/devices/${TOKEN}`, { headers: auth });
    await new Promise((r) => setTimeout(r, 1500));
    const log = await hub.stop();
    expect(log).toContain('homeflex is running');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain(TOKEN.slice(4, 20));
  });

  it('enforces the request body limit with a clear error', async () => {
    const yaml = `site: { id: home }\nhttp: { port: 0, body_limit_bytes: 2048 }\nstorage: { dir: STORAGE }\nlog: { format: json }\n`;
    const hub = await startHub(yaml, {});
    const r = await fetch(`${hub.url}/api/v1/devices`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'a'.repeat(5000) }) });
    expect(r.status).toBe(413);
    expect(await r.json()).toMatchObject({ object: 'error', type: 'invalid_request', code: 'body_too_large' });
    await hub.stop();
  });

  it('refuses to start on a public address without a token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-sec-'));
    const file = join(dir, 'site.yaml');
    writeFileSync(file, `site: { id: home }\nhttp: { host: 0.0.0.0, port: 0 }\nstorage: { dir: data }\n`);
    const r = spawnSync(process.execPath, [...cli, 'start', '--config', file], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('site.yaml:2:15 http.host: listening on 0.0.0.0 (not loopback) needs http.token');
  });
});
