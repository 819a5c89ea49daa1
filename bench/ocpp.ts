import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { RPCClient } from 'ocpp-rpc';
import { packageRoot } from '../src/cli.js';
import { fmtMs, type BenchSection } from './types.js';

/** Chargers connected at once (issue 6); the environment may ask for fewer or more when looking into a problem. */
const CHARGERS = Number(process.env.BENCH_OCPP_CHARGERS) || 500;
/** Each charger sends MeterValues this often. */
const METER_INTERVAL_S = 10;
/** Measuring window: every charger sends WINDOW_S / METER_INTERVAL_S MeterValues in it. */
const WINDOW_S = Number(process.env.BENCH_OCPP_WINDOW_S) || 120;
const CALL_TIMEOUT_MS = 30_000;
const PHASE_A = 16;
const VOLTAGE = 230;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const identity = (i: number) => `CP${String(i + 1).padStart(4, '0')}`;
const password = (i: number) => `bench-${identity(i)}-secret`;
const ocppTime = (t: number) => new Date(t).toISOString();

/** A port nobody listens on right now (the hub logs its ports at info only; the bench runs it at warn). */
async function freePort(): Promise<number> {
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
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function memoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** CPU of `pid` between two marks, as % of one core. */
function cpuMeter(pid: number) {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  return () => ({ pct: ((cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100, seconds: cpuSeconds(pid) - cpu0 });
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN };
}

const fmtLatency = (s: ReturnType<typeof summary>) => `p50 ${fmtMs(s.p50)}, p99 ${fmtMs(s.p99)}, max ${fmtMs(s.max)}`;

interface RpcClientLike {
  connect(): Promise<unknown>;
  close(o?: { code?: number; reason?: string; force?: boolean }): Promise<unknown>;
  call(method: string, params: unknown): Promise<unknown>;
  handle(method: string, fn: (c: { params: Record<string, unknown> }) => unknown): void;
  on(event: string, fn: (...a: never[]) => void): unknown;
  readonly state: number;
}

/**
 * One benchmark charger: a real OCPP 1.6J client (ocpp-rpc, strict mode, Basic auth) with a car
 * charging at 3 × 16 A, answering the hub's configuration, trigger and profile calls like a wallbox.
 */
class LoadCharger {
  readonly client: RpcClientLike;
  registerWh: number;
  transactionId?: number;
  sampleIntervalS = 60;
  hubCalls = new Map<string, number>();
  disconnects = 0;
  private opened = false;

  constructor(readonly index: number, endpoint: string) {
    this.registerWh = 1_000_000 + index * 1000;
    this.client = new RPCClient({
      endpoint,
      identity: identity(index),
      password: password(index),
      protocols: ['ocpp1.6'],
      // a charger's firmware checks what the central system sends: invalid replies count as errors
      strictMode: true,
      reconnect: false,
      callTimeoutMs: CALL_TIMEOUT_MS,
    } as unknown as ConstructorParameters<typeof RPCClient>[0]) as unknown as RpcClientLike;
    this.client.on('open', () => (this.opened = true));
    this.client.on('close', () => {
      if (this.opened) this.disconnects++;
    });
    const seen = (action: string) => this.hubCalls.set(action, (this.hubCalls.get(action) ?? 0) + 1);
    this.client.handle('GetConfiguration', () => {
      seen('GetConfiguration');
      return {
        configurationKey: [
          { key: 'MeterValueSampleInterval', readonly: false, value: String(this.sampleIntervalS) },
          { key: 'MeterValuesSampledData', readonly: false, value: 'Energy.Active.Import.Register' },
          { key: 'ChargingScheduleAllowedChargingRateUnit', readonly: true, value: 'Current,Power' },
          { key: 'ChargingScheduleMaxPeriods', readonly: true, value: '96' },
          { key: 'ChargeProfileMaxStackLevel', readonly: true, value: '8' },
          { key: 'NumberOfConnectors', readonly: true, value: '1' },
        ],
      };
    });
    this.client.handle('ChangeConfiguration', ({ params }) => {
      seen('ChangeConfiguration');
      if (params.key === 'MeterValueSampleInterval') this.sampleIntervalS = Number(params.value);
      return { status: 'Accepted' };
    });
    this.client.handle('TriggerMessage', ({ params }) => {
      seen('TriggerMessage');
      // answered first, sent after, like a real charger
      if (params.requestedMessage === 'StatusNotification') setImmediate(() => void this.status(this.transactionId ? 'Charging' : 'Available').catch(() => undefined));
      else if (params.requestedMessage === 'MeterValues') setImmediate(() => void this.meterValues('Trigger').catch(() => undefined));
      else return { status: 'NotImplemented' };
      return { status: 'Accepted' };
    });
    this.client.handle('SetChargingProfile', () => (seen('SetChargingProfile'), { status: 'Accepted' }));
    this.client.handle('ClearChargingProfile', () => (seen('ClearChargingProfile'), { status: 'Accepted' }));
  }

  status(status: string) {
    return this.client.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status, timestamp: ocppTime(Date.now()) });
  }

  meterValues(context: 'Sample.Periodic' | 'Trigger' = 'Sample.Periodic') {
    const current = PHASE_A.toFixed(1);
    const sampledValue = [
      { value: this.registerWh.toFixed(1), context, measurand: 'Energy.Active.Import.Register', unit: 'Wh', location: 'Outlet' },
      { value: String(PHASE_A * VOLTAGE * 3), context, measurand: 'Power.Active.Import', unit: 'W', location: 'Outlet' },
      ...['L1', 'L2', 'L3'].map((phase) => ({ value: current, context, measurand: 'Current.Import', unit: 'A', phase, location: 'Outlet' })),
      { value: '55', context, measurand: 'SoC', unit: 'Percent', location: 'EV' },
    ];
    return this.client.call('MeterValues', { connectorId: 1, ...(this.transactionId ? { transactionId: this.transactionId } : {}), meterValue: [{ timestamp: ocppTime(Date.now()), sampledValue }] });
  }
}

/** Times one call; failures are counted by their message. */
async function timed(latencies: number[], errors: Map<string, number>, fn: () => Promise<unknown>): Promise<unknown> {
  const t0 = performance.now();
  try {
    const res = await fn();
    latencies.push(performance.now() - t0);
    return res;
  } catch (err) {
    const e = err as { rpcErrorCode?: string; name?: string; message?: string };
    const key = e.rpcErrorCode ?? e.name ?? 'Error';
    errors.set(key, (errors.get(key) ?? 0) + 1);
    return undefined;
  }
}

function hubConfig(httpPort: number, ocppPort: number, dataDir: string): string {
  const devices = Array.from(
    { length: CHARGERS },
    (_, i) => `  - { id: ${identity(i).toLowerCase()}, adapter: ocpp, identity: ${identity(i)}, password: ${password(i)}, meter_interval_s: ${METER_INTERVAL_S} }`,
  );
  return [
    'site: { id: bench, name: OCPP load bench, timezone: Europe/Berlin, currency: EUR }',
    `http: { host: 127.0.0.1, port: ${httpPort} }`,
    `storage: { dir: ${JSON.stringify(dataDir)} }`,
    'log: { level: warn, format: json }',
    'tariffs:',
    '  import: { type: fixed, rate: 0.30 }',
    '  export: { type: fixed, rate: 0.08 }',
    `connections:`,
    `  ocpp: { host: 127.0.0.1, port: ${ocppPort} }`,
    'devices:',
    ...devices,
    '',
  ].join('\n');
}

async function health(url: string): Promise<{ devices: { total: number; available: number } } | undefined> {
  const r = await fetch(`${url}/api/v1/health`).catch(() => undefined);
  return r?.ok ? ((await r.json()) as { devices: { total: number; available: number } }) : undefined;
}

async function stopChild(child: ChildProcess): Promise<{ code: number | null; ms: number }> {
  if (child.exitCode !== null) return { code: child.exitCode, ms: 0 };
  const t0 = Date.now();
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  child.kill('SIGTERM');
  const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(hard);
  return { code, ms: Date.now() - t0 };
}

/**
 * 500 OCPP 1.6J chargers dial a hub running in its own process (the built CLI) and send MeterValues
 * every 10 s: reply latency, connect time, errors, and the hub's CPU and memory read from /proc.
 */
export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bench-ocpp-'));
  const [httpPort, ocppPort] = [await freePort(), await freePort()];
  const file = join(dir, 'hub.yaml');
  writeFileSync(file, hubConfig(httpPort, ocppPort, join(dir, 'data')));
  const url = `http://127.0.0.1:${httpPort}`;
  const endpoint = `ws://127.0.0.1:${ocppPort}/ocpp`;

  const t0 = Date.now();
  // BENCH_OCPP_HUB_NODE_ARGS: extra node flags for the hub, e.g. --cpu-prof when looking into a problem
  const nodeArgs = (process.env.BENCH_OCPP_HUB_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(packageRoot, 'dist', 'src', 'cli.js'), 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const hubLog = { lines: 0, byLevel: new Map<number, number>(), first: [] as string[], raw: '' };
  const onLog = (b: Buffer) => {
    hubLog.raw += b.toString();
    let nl;
    while ((nl = hubLog.raw.indexOf('\n')) >= 0) {
      const line = hubLog.raw.slice(0, nl);
      hubLog.raw = hubLog.raw.slice(nl + 1);
      if (!line.trim()) continue;
      hubLog.lines++;
      let level = 0;
      let msg = line;
      try {
        const j = JSON.parse(line) as { level?: number; msg?: string };
        level = j.level ?? 0;
        msg = j.msg ?? line;
      } catch {
        // a line that is not pino JSON (a crash trace) is kept as it is
      }
      hubLog.byLevel.set(level, (hubLog.byLevel.get(level) ?? 0) + 1);
      if (hubLog.first.length < 8) hubLog.first.push(msg.slice(0, 200));
    }
  };
  child.stdout!.on('data', onLog);
  child.stderr!.on('data', onLog);
  const pid = child.pid!;

  const chargers: LoadCharger[] = [];
  const rows: BenchSection['rows'] = [];
  const notes: string[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  try {
    let started = 0;
    while (Date.now() - t0 < 60_000) {
      if (child.exitCode !== null) throw new Error(`hub exited with code ${child.exitCode}: ${hubLog.first.join(' | ')}`);
      const h = await health(url);
      if (h) {
        started = Date.now() - t0;
        break;
      }
      await sleep(100);
    }
    if (!started) throw new Error(`hub with ${CHARGERS} ocpp devices did not answer /api/v1/health within 60 s: ${hubLog.first.join(' | ')}`);
    await sleep(3000);
    const idle = memoryMb(pid);

    // ---- connect all at once, then boot, status, start a transaction
    loop.enable();
    const connectCpu = cpuMeter(pid);
    for (let i = 0; i < CHARGERS; i++) chargers.push(new LoadCharger(i, endpoint));
    const connectMs: number[] = [];
    const connectErrors = new Map<string, number>();
    const tc = performance.now();
    await Promise.all(chargers.map((c) => timed(connectMs, connectErrors, () => c.client.connect())));
    const allConnectedMs = performance.now() - tc;
    const connected = chargers.filter((c) => c.client.state === 1);

    const setupMs: number[] = [];
    const setupErrors = new Map<string, number>();
    await Promise.all(
      connected.map(async (c) => {
        const boot = (await timed(setupMs, setupErrors, () => c.client.call('BootNotification', { chargePointVendor: 'homeflex-bench', chargePointModel: 'LoadBox', firmwareVersion: '1.0' }))) as { status?: string } | undefined;
        if (boot?.status !== 'Accepted') setupErrors.set(`boot ${boot?.status ?? 'failed'}`, (setupErrors.get(`boot ${boot?.status ?? 'failed'}`) ?? 0) + 1);
        await timed(setupMs, setupErrors, () => c.status('Preparing'));
        const start = (await timed(setupMs, setupErrors, () => c.client.call('StartTransaction', { connectorId: 1, idTag: `TAG${c.index}`, meterStart: Math.round(c.registerWh), timestamp: ocppTime(Date.now()) }))) as { transactionId?: number } | undefined;
        c.transactionId = start?.transactionId;
        await timed(setupMs, setupErrors, () => c.status('Charging'));
      }),
    );
    const bootedMs = performance.now() - tc;
    // the hub configures each charger after its boot (GetConfiguration, ChangeConfiguration, TriggerMessage): wait for that to finish
    const configured = () => connected.filter((c) => (c.hubCalls.get('TriggerMessage') ?? 0) >= 1).length;
    while (configured() < connected.length && performance.now() - tc < 60_000) await sleep(200);
    const configuredMs = performance.now() - tc;
    await sleep(2000);
    const connectPhase = connectCpu();
    const afterConnect = memoryMb(pid);
    const hubView = await health(url);
    const transactions = new Set(connected.map((c) => c.transactionId).filter((x) => x !== undefined));

    // ---- the measuring window: each charger sends MeterValues every 10 s, staggered over the interval
    const meterMs: number[] = [];
    const meterErrors = new Map<string, number>();
    const disconnectsBefore = chargers.reduce((n, c) => n + c.disconnects, 0);
    loop.reset();
    const windowCpu = cpuMeter(pid);
    const windowStart = performance.now();
    const rssSamples: number[] = [afterConnect.rss];
    const sampler = setInterval(() => rssSamples.push(memoryMb(pid).rss), 10_000);
    const sends = connected.map(async (c, i) => {
      const offset = (i / connected.length) * METER_INTERVAL_S * 1000;
      for (let k = 0; offset + k * METER_INTERVAL_S * 1000 < WINDOW_S * 1000; k++) {
        const due = windowStart + offset + k * METER_INTERVAL_S * 1000;
        await sleep(Math.max(0, due - performance.now()));
        if (c.client.state !== 1) {
          meterErrors.set('not connected', (meterErrors.get('not connected') ?? 0) + 1);
          continue;
        }
        c.registerWh += (PHASE_A * VOLTAGE * 3 * METER_INTERVAL_S) / 3600;
        // a call still waiting from the last round would be counted late, not skipped: like a charger's queue
        void timed(meterMs, meterErrors, () => c.meterValues());
      }
    });
    await Promise.all(sends);
    await sleep(Math.max(0, windowStart + WINDOW_S * 1000 - performance.now()));
    const windowPhase = windowCpu();
    clearInterval(sampler);
    const afterWindow = memoryMb(pid);
    const generatorLoopP99 = loop.percentile(99) / 1e6;
    loop.disable();
    // let calls still on their way finish before the counts are read
    const expected = connected.length * Math.ceil(WINDOW_S / METER_INTERVAL_S);
    const waitUntil = performance.now() + CALL_TIMEOUT_MS;
    while (meterMs.length + [...meterErrors.values()].reduce((a, b) => a + b, 0) < expected && performance.now() < waitUntil) await sleep(100);
    const hubAfter = await health(url);
    const disconnects = chargers.reduce((n, c) => n + c.disconnects, 0) - disconnectsBefore;
    // the hub stops while every charger is still connected, as a restart on a busy site would
    const stopped = await stopChild(child);

    const meter = summary(meterMs);
    const setup = summary(setupMs);
    const conn = summary(connectMs);
    const errText = (m: Map<string, number>) => ([...m].length ? [...m].map(([k, v]) => `${v} × ${k}`).join(', ') : 'none');
    const meterErrCount = [...meterErrors.values()].reduce((a, b) => a + b, 0);
    const setupErrCount = [...setupErrors.values()].reduce((a, b) => a + b, 0) + [...connectErrors.values()].reduce((a, b) => a + b, 0);
    const profiles = chargers.reduce((n, c) => n + (c.hubCalls.get('SetChargingProfile') ?? 0), 0);
    const changeConfig = chargers.reduce((n, c) => n + (c.hubCalls.get('ChangeConfiguration') ?? 0), 0);

    rows.push(
      { name: `hub start with ${CHARGERS} ocpp devices (built CLI, child process) to /api/v1/health`, value: `${(started / 1000).toFixed(1)} s`, target: '< 10 s', ok: started < 10_000 },
      { name: `${CHARGERS} WebSocket connections (Basic auth) opened at once: each / all`, value: `${fmtLatency(conn)} / all in ${fmtMs(allConnectedMs)}`, target: `${CHARGERS} connected, all < 5 s`, ok: connected.length === CHARGERS && allConnectedMs < 5000 },
      {
        name: 'BootNotification, StatusNotification ×2, StartTransaction from all at once: per call',
        value: `${fmtLatency(setup)}; all booted and started in ${(bootedMs / 1000).toFixed(1)} s, configured by the hub in ${(configuredMs / 1000).toFixed(1)} s`,
        // chargers give a call 30–60 s before they give up and redial
        target: 'no errors, max < 10 s',
        ok: setup.max < 10_000 && setupErrCount === 0,
      },
      {
        name: 'hub CPU / RSS during connect, boot, start and the hub’s setup calls',
        value: `${connectPhase.pct.toFixed(0)} % of a core over ${((configuredMs + 2000) / 1000).toFixed(0)} s; RSS ${idle.rss.toFixed(0)} → ${afterConnect.rss.toFixed(0)} MB`,
      },
      {
        name: `MeterValues round trip, ${connected.length} chargers × every ${METER_INTERVAL_S} s for ${WINDOW_S} s (${meter.n} calls)`,
        value: fmtLatency(meter),
        target: 'p50 < 20 ms, p99 < 200 ms',
        ok: meter.p50 < 20 && meter.p99 < 200,
      },
      { name: 'MeterValues errors and dropped connections in the window', value: `${errText(meterErrors)}; ${disconnects} disconnects`, target: '0', ok: meterErrCount === 0 && disconnects === 0 && meter.n === expected },
      { name: `hub CPU in the window (utime+stime from /proc/<pid>/stat over ${WINDOW_S} s)`, value: `${windowPhase.pct.toFixed(1)} % of one core (${windowPhase.seconds.toFixed(1)} s CPU)`, target: '< 100 % (1 core)', ok: windowPhase.pct < 100 },
      {
        name: `hub RSS: idle with ${CHARGERS} devices → all connected → end of window (peak)`,
        value: `${idle.rss.toFixed(0)} → ${afterConnect.rss.toFixed(0)} → ${afterWindow.rss.toFixed(0)} MB (peak ${afterWindow.hwm.toFixed(0)} MB)`,
        target: '< 300 MB',
        ok: afterWindow.hwm < 300,
      },
      { name: `SIGTERM to exit with ${connected.length} chargers connected`, value: `${stopped.ms} ms, exit code ${stopped.code}`, target: '< 5 s, code 0', ok: stopped.ms < 5000 && stopped.code === 0 },
      {
        name: 'hub’s own view (/api/v1/health) after connect / after the window',
        value: `${hubView?.devices.available ?? '?'} / ${hubAfter?.devices.available ?? '?'} of ${hubAfter?.devices.total ?? '?'} devices available; ${transactions.size} distinct transaction ids`,
        ok: hubView?.devices.available === CHARGERS && hubAfter?.devices.available === CHARGERS && transactions.size === CHARGERS,
      },
    );
    const levels: Record<number, string> = { 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
    notes.push(
      `The hub runs as \`node dist/src/cli.js start --config <temp yaml>\` in a child process (log level warn, JSON; ${CHARGERS} \`ocpp\` devices CP0001…CP${String(CHARGERS).padStart(4, '0')} with passwords and meter_interval_s ${METER_INTERVAL_S}; fixed tariffs; HTTP and OCPP on free 127.0.0.1 ports picked at run time); CPU and RSS are the child's, from /proc, so the load generator is not counted.`,
      `The load generator is this process: ${CHARGERS} ocpp-rpc RPCClient connections (OCPP 1.6J, strict mode, Basic auth, no reconnect). Each charger boots, reports Preparing, starts a transaction, reports Charging, answers the hub's GetConfiguration / ChangeConfiguration / TriggerMessage / SetChargingProfile, then sends MeterValues (energy register, power, current on 3 phases, SoC: 6 sampled values) every ${METER_INTERVAL_S} s, the chargers' sends spread evenly over the interval (${(connected.length / METER_INTERVAL_S).toFixed(0)} calls/s).`,
      `Latency is from \`call()\` to its answer in the generator, so it includes the generator's own event loop (its p99 delay in the window: ${fmtMs(generatorLoopP99)}). The hub sent ${changeConfig} ChangeConfiguration and ${profiles} SetChargingProfile calls during the run.`,
      `Connect/setup errors: ${errText(new Map([...connectErrors, ...setupErrors]))}. Hub log lines at warn and above: ${[...hubLog.byLevel].map(([l, n]) => `${n} ${levels[l] ?? l}`).join(', ') || 'none'}${hubLog.first.length ? ` (first: ${hubLog.first.slice(0, 3).join(' | ')})` : ''}.`,
      `RSS every 10 s in the window (MB): ${rssSamples.map((r) => r.toFixed(0)).join(', ')}, ${afterWindow.rss.toFixed(0)}.`,
    );
  } finally {
    loop.disable();
    await Promise.all(chargers.map((c) => c.client.close({ code: 1000, reason: 'bench done', force: true }).catch(() => undefined)));
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
  return { title: `OCPP (issue 6): ${CHARGERS} chargers sending MeterValues every ${METER_INTERVAL_S} s`, rows, notes };
}
