import { spawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../src/cli.js';
import { fmtMs } from './types.js';

/**
 * What the load benchmarks share: the built hub as a child process, its CPU and memory read from
 * /proc (so the load generator is never counted), latency summaries and error tallies.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port nobody listens on right now (the hub logs its ports at info only; the benches run it at warn). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res, rej) => srv.once('error', rej).listen(0, '127.0.0.1', () => res()));
  const port = (srv.address() as { port: number }).port;
  await new Promise((res) => srv.close(res));
  return port;
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds (fields 14 and 15 of /proc/<pid>/stat, after the command name). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident set size now and its high-water mark, in MB, from /proc/<pid>/status. */
export function memoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** Bytes the process has caused to be written to storage (write_bytes of /proc/<pid>/io; socket writes are not counted). */
export function diskWriteBytes(pid: number): number {
  return Number(/write_bytes:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

/** CPU of `pid` between two marks, as % of one core. */
export function cpuMeter(pid: number) {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  return () => ({ pct: ((cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100, seconds: cpuSeconds(pid) - cpu0 });
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function summary(xs: number[]): LatencySummary {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN };
}

export const fmtLatency = (s: LatencySummary) => `p50 ${fmtMs(s.p50)}, p99 ${fmtMs(s.p99)}, max ${fmtMs(s.max)}`;

/** Error tallies as `3 × TimeoutError, 1 × not connected`, or `none`. */
export const errText = (m: Map<string, number>) => ([...m].length ? [...m].map(([k, v]) => `${v} × ${k}`).join(', ') : 'none');
export const errCount = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
export const countError = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);

/** Times one call; failures are counted by their message. */
export async function timed(latencies: number[], errors: Map<string, number>, fn: () => Promise<unknown>): Promise<unknown> {
  const t0 = performance.now();
  try {
    const res = await fn();
    latencies.push(performance.now() - t0);
    return res;
  } catch (err) {
    const e = err as { rpcErrorCode?: string; name?: string; message?: string };
    countError(errors, e.rpcErrorCode ?? e.name ?? 'Error');
    return undefined;
  }
}

export interface HubHealth {
  status: string;
  devices: { total: number; available: number };
}

export async function health(url: string): Promise<HubHealth | undefined> {
  const r = await fetch(`${url}/api/v1/health`).catch(() => undefined);
  return r?.ok ? ((await r.json()) as HubHealth) : undefined;
}

export async function stopChild(child: ChildProcess): Promise<{ code: number | null; ms: number }> {
  if (child.exitCode !== null) return { code: child.exitCode, ms: 0 };
  const t0 = Date.now();
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  child.kill('SIGTERM');
  const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(hard);
  return { code, ms: Date.now() - t0 };
}

/** The environment and node flags `npm start` runs the hub with (from package.json), so a bench measures the hub users run. */
export function npmStartRuntime(): { script: string; env: Record<string, string>; flags: string[] } {
  const script = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const words = script.split(/\s+/);
  const env = Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split('=') as [string, string]));
  const flags = words.slice(words.indexOf('node') + 1).filter((w) => w.startsWith('--'));
  return { script, env, flags };
}

/** The hub's pino log as the benches read it: lines by level and the first few messages. */
export interface HubLog {
  lines: number;
  byLevel: Map<number, number>;
  first: string[];
}

const LEVEL_NAMES: Record<number, string> = { 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** `3 warn, 1 error (first: … | …)`, or `none`. */
export const logText = (log: HubLog) =>
  `${[...log.byLevel].map(([l, n]) => `${n} ${LEVEL_NAMES[l] ?? l}`).join(', ') || 'none'}${log.first.length ? ` (first: ${log.first.slice(0, 3).join(' | ')})` : ''}`;

export interface HubProcess {
  child: ChildProcess;
  pid: number;
  log: HubLog;
}

/**
 * Starts `node [nodeArgs] dist/src/cli.js start --config <configFile>` and tallies its log; `ipc`
 * opens a message channel to the child (for a probe loaded with `--import`).
 */
export function spawnHub(configFile: string, options: { nodeArgs?: string[]; env?: Record<string, string>; ipc?: boolean; root?: string } = {}): HubProcess {
  const stdio: StdioOptions = options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), join(options.root ?? packageRoot, 'dist', 'src', 'cli.js'), 'start', '--config', configFile], {
    stdio,
    env: { ...process.env, ...options.env },
  });
  const log: HubLog = { lines: 0, byLevel: new Map(), first: [] };
  let raw = '';
  const onLog = (b: Buffer) => {
    raw += b.toString();
    let nl;
    while ((nl = raw.indexOf('\n')) >= 0) {
      const line = raw.slice(0, nl);
      raw = raw.slice(nl + 1);
      if (!line.trim()) continue;
      log.lines++;
      let level = 0;
      let msg = line;
      try {
        const j = JSON.parse(line) as { level?: number; msg?: string };
        level = j.level ?? 0;
        msg = j.msg ?? line;
      } catch {
        // a line that is not pino JSON (a crash trace) is kept as it is
      }
      log.byLevel.set(level, (log.byLevel.get(level) ?? 0) + 1);
      if (log.first.length < 8) log.first.push(msg.slice(0, 200));
    }
  };
  child.stdout!.on('data', onLog);
  child.stderr!.on('data', onLog);
  return { child, pid: child.pid!, log };
}

/** Waits until the hub answers /api/v1/health; returns the milliseconds from `since`. */
export async function waitHealthy(hub: HubProcess, url: string, since: number, what: string, timeoutMs = 60_000): Promise<number> {
  while (Date.now() - since < timeoutMs) {
    if (hub.child.exitCode !== null) throw new Error(`hub exited with code ${hub.child.exitCode}: ${hub.log.first.join(' | ')}`);
    if (await health(url)) return Date.now() - since;
    await sleep(100);
  }
  throw new Error(`hub with ${what} did not answer /api/v1/health within ${timeoutMs / 1000} s: ${hub.log.first.join(' | ')}`);
}
