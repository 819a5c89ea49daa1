import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/cli.js';
import { demoYamlOnFreePorts } from './demo-config.js';
import { npmStartRuntime } from './hub-process.js';
import type { BenchSection } from './types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the built demo hub in a child process on a free port and measures start time, idle RSS and stop time. */
export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bench-'));
  const demo = await demoYamlOnFreePorts(join(dir, 'data'));
  const file = join(dir, 'demo.yaml');
  writeFileSync(file, demo);
  const t0 = Date.now();
  // start the hub exactly as `npm start` does: its environment and node flags come from package.json
  const { script, env, flags } = npmStartRuntime();
  const child = spawn(process.execPath, [...flags, join(packageRoot, 'dist', 'src', 'cli.js'), 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  let url = '';
  while (!url && Date.now() - t0 < 15000) {
    const m = out.match(/"url":"(http:[^"]+)"/);
    if (m) url = m[1];
    else await sleep(20);
  }
  if (!url) throw new Error(`demo did not start:\n${out}`);
  let healthy = 0;
  while (Date.now() - t0 < 15000) {
    const r = await fetch(`${url}/api/v1/health`).catch(() => undefined);
    if (r?.ok) {
      healthy = Date.now() - t0;
      break;
    }
    await sleep(20);
  }
  // idle for a while, then read the resident set size from /proc
  await sleep(30_000);
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  // the same site started again while it runs: the storage lock turns it away before any adapter starts
  const a0 = Date.now();
  const second = spawn(process.execPath, [...flags, join(packageRoot, 'dist', 'src', 'cli.js'), 'start', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let secondErr = '';
  second.stderr.on('data', (b) => (secondErr += b));
  const secondCode = await Promise.race([new Promise<number | null>((r) => second.on('exit', (c) => r(c))), sleep(15_000).then(() => 'still running' as const)]);
  const secondMs = Date.now() - a0;
  if (secondCode === 'still running') second.kill('SIGKILL');
  const firstOk = (await fetch(`${url}/api/v1/health`).catch(() => undefined))?.ok ?? false;
  const s0 = Date.now();
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const stopMs = Date.now() - s0;
  rmSync(dir, { recursive: true, force: true });
  return {
    title: 'Hub (issue 2): demo start, idle memory, stop',
    rows: [
      { name: `demo start to healthy /api/v1/health (as npm start: ${script})`, value: `${healthy} ms`, target: '< 10 s', ok: healthy > 0 && healthy < 10_000 },
      { name: 'idle demo RSS after 30 s', value: `${(rssKb / 1024).toFixed(1)} MB (peak ${(hwmKb / 1024).toFixed(1)} MB)`, target: '< 150 MB', ok: rssKb / 1024 < 150 },
      { name: 'SIGTERM to exit', value: `${stopMs} ms, exit code ${code}`, target: '< 5 s, code 0', ok: stopMs < 5000 && code === 0 },
      {
        name: 'second start on the same storage while the demo runs (issue 13): time to exit',
        value: `${secondMs} ms, exit code ${secondCode}${/is held by another homeflex/.test(secondErr) ? ', storage lock named the running hub' : ''}; first hub ${firstOk ? 'still healthy' : 'NOT healthy'}`,
        target: '< 5 s, non-zero',
        ok: secondMs < 5000 && typeof secondCode === 'number' && secondCode !== 0 && firstOk,
      },
    ],
  };
}
