import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { initCommand } from '../../src/core/service/init.js';
import { journalLine } from '../../src/core/service/journal.js';
import { readEnvFile, serviceUnit } from '../../src/core/service/unit.js';
import { parseConfig } from '../../src/core/config/load.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { freePort, until } from '../peers/mqtt.js';
import { describeWithPeers } from '../peers/system.js';

const root = resolve(import.meta.dirname, '..', '..');
const cli = ['--import', 'tsx', join(root, 'src', 'cli.ts')];
const run = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) =>
  spawnSync(process.execPath, [...cli, ...args], { cwd: root, encoding: 'utf8', input: options.input, env: { ...process.env, NODE_NO_WARNINGS: '1', ...options.env } });
const check = (text: string, file: string, env: NodeJS.ProcessEnv) => parseConfig(text, file, { catalog: builtinCatalog, env, checks: hubChecks(builtinCatalog) });

describe('homeflex init', { timeout: 120_000 }, () => {
  it('asks the questions of a first site, asks again after a bad answer, and writes a file check-config passes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-init-'));
    const out = join(dir, 'site.yaml');
    const input = new PassThrough();
    let said = '';
    const answers = ['villa', 'Villa Kunterbunt', 'Europe/Berlln', 'Europe/Vienna', 'eur', 'AT', '0.15', '20', '0.07', '', '', ''];
    input.end(answers.join('\n') + '\n');
    const code = await initCommand(['--out', out], { out: (t) => (said += t), err: (t) => (said += t), input, check });
    expect(code, said).toBe(0);
    expect(said).toContain('"Europe/Berlln" is not an IANA time zone');
    const text = readFileSync(out, 'utf8');
    const config = check(text, out, {});
    expect(config.site).toMatchObject({ id: 'villa', name: 'Villa Kunterbunt', timezone: 'Europe/Vienna', currency: 'EUR' });
    expect(config.tariffs.import).toMatchObject({ type: 'energy_charts', bzn: 'AT', surcharge: { fixed: 0.15, vat: 20 } });
    expect(config.tariffs.export).toMatchObject({ type: 'fixed', rate: 0.07 });
    expect(config.http).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(text).toMatch(/^# homeflex site file, written by `homeflex init`/);
    // the same file through the CLI's own check
    const r = run(['check-config', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('takes flags; serving the LAN generates a token kept out of the site file, in a 0600 environment file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-init-'));
    const out = join(dir, 'site.yaml');
    const r = run(['init', '--yes', '--out', out, '--host', '0.0.0.0', '--import', '0.28', '--timezone', 'Europe/London', '--currency', 'GBP']);
    expect(r.status, r.stderr).toBe(0);
    const env = readEnvFile(join(dir, 'site.env'));
    expect(env.HOMEFLEX_TOKEN).toMatch(/^[\w-]{32}$/);
    expect(statSync(join(dir, 'site.env')).mode & 0o777).toBe(0o600);
    expect(readFileSync(out, 'utf8')).not.toContain(env.HOMEFLEX_TOKEN);
    expect(check(readFileSync(out, 'utf8'), out, env).http).toMatchObject({ host: '0.0.0.0', token: env.HOMEFLEX_TOKEN });
    // a second init does not overwrite the file
    const again = run(['init', '--yes', '--out', out]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('exists; choose another --out, or --force');
    const bad = run(['init', '--yes', '--out', join(dir, 'b.yaml'), '--timezone', 'Mars/Olympus']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--timezone Mars/Olympus: "Mars/Olympus" is not an IANA time zone');
  });
});

describe('journal log lines', () => {
  it('carry the syslog priority journald reads and the fields after the message', () => {
    expect(journalLine('{"level":50,"time":1,"pid":2,"hostname":"h","adapter":"ocpp","device":"ev 1","msg":"charger refused the profile"}')).toBe('<3>charger refused the profile adapter=ocpp device="ev 1"\n');
    expect(journalLine('{"level":30,"msg":"homeflex is running"}')).toBe('<6>homeflex is running\n');
    expect(journalLine('{"level":40,"msg":"slow","err":{"type":"Error","message":"timeout","stack":"..."}}')).toBe('<4>slow err="Error: timeout"\n');
    expect(journalLine('{"level":60,"msg":"boom"}')).toMatch(/^<2>/);
  });
});

describe('the systemd unit', () => {
  it('is hardened: own user, restart on failure, read-only system but the storage, no new privileges, a memory cap', () => {
    const unit = serviceUnit({ configFile: '/etc/homeflex/site.yaml', storageDir: '/var/lib/homeflex', user: 'homeflex', group: 'homeflex', node: '/usr/bin/node', entry: ['/opt/homeflex/dist/src/cli.js'], workingDirectory: '/opt/homeflex', memoryMax: '1G', environmentFile: '/etc/homeflex/env' });
    for (const line of ['User=homeflex', 'Restart=on-failure', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/homeflex', 'NoNewPrivileges=yes', 'MemoryMax=1G', 'EnvironmentFile=-/etc/homeflex/env'])
      expect(unit.split('\n')).toContain(line);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node .* \/opt\/homeflex\/dist\/src\/cli\.js start --config \/etc\/homeflex\/site\.yaml$/m);
  });
});

describeWithPeers(['systemd', 'root'], 'from homeflex init to a running service', () => {
  it('init, install-service (creating the user), systemd-analyze verify, and ExecStart run as that user serves health', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-service-'));
    chmodSync(dir, 0o755); // the service user reads the site file
    const site = join(dir, 'site.yaml');
    const user = `hf${process.pid % 100000}t`;
    onTestFinished(() => void spawnSync('userdel', [user]));
    const port = await freePort();
    const init = run(['init', '--yes', '--out', site, '--host', '0.0.0.0', '--port', String(port), '--storage', join(dir, 'var')]);
    expect(init.status, init.stderr).toBe(0);
    const unitFile = join(dir, 'homeflex.service');
    const install = run(['install-service', '--config', site, '--user', user, '--out', unitFile, '--memory-max', '768M']);
    expect(install.status, install.stderr).toBe(0);
    expect(install.stdout).toContain(`created system user ${user}`);
    const verify = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stderr).toBe('');
    const storage = statSync(join(dir, 'var'));
    expect(storage.mode & 0o777).toBe(0o700);
    expect(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim()).toBe(String(storage.uid));

    // ExecStart exactly as the unit has it, as the unit's user, with the unit's environment file
    const unit = readFileSync(unitFile, 'utf8');
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1].split(' ');
    const env = readEnvFile(/^EnvironmentFile=-(.*)$/m.exec(unit)![1]);
    const child = spawn('runuser', ['-u', user, '--', ...exec], { cwd: /^WorkingDirectory=(.*)$/m.exec(unit)![1], env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => void child.kill('SIGKILL'));
    let log = '';
    child.stdout.on('data', (b) => (log += b));
    child.stderr.on('data', (b) => (log += b));
    const poll = async () => {
      for (let i = 0; i < 600 && child.exitCode === null; i++) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
          if (res.ok) return (await res.json()) as { status?: string };
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`no health answer; the service said:\n${log}`);
    };
    const health = await poll();
    expect(health.status).toBe('ok');
    // it runs as the unit's user, and its state went where the unit lets it write
    const pidUser = spawnSync('ps', ['-o', 'user=', '-p', String(child.pid)], { encoding: 'utf8' }).stdout.trim();
    expect(['root', user]).toContain(pidUser); // runuser itself stays root; its child is the hub
    const hubUser = spawnSync('ps', ['-o', 'user=', '--ppid', String(child.pid)], { encoding: 'utf8' }).stdout.trim();
    expect(hubUser).toBe(user);
    // systemd's stop: SIGTERM to the main process; the hub stops its parts and exits 0
    const hubPid = Number(spawnSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).stdout.trim());
    process.kill(hubPid, 'SIGTERM');
    await until(() => child.exitCode !== null, 'service stop', 30_000);
    expect(child.exitCode, log).toBe(0);
  });
});
