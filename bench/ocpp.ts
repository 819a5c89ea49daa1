import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { countError, cpuMeter, errCount, errText, fmtLatency, freePort, health, logText, memoryMb, sleep, spawnHub, stopChild, summary, timed, waitHealthy } from './hub-process.js';
import { CALL_TIMEOUT_MS, chargerDeviceLines, LoadCharger } from './ocpp-charger.js';
import { fmtMs, type BenchSection } from './types.js';

/** Chargers connected at once (issue 6); the environment may ask for fewer or more when looking into a problem. */
const CHARGERS = Number(process.env.BENCH_OCPP_CHARGERS) || 500;
/** Each charger sends MeterValues this often. */
const METER_INTERVAL_S = 10;
/** Measuring window: every charger sends WINDOW_S / METER_INTERVAL_S MeterValues in it. */
const WINDOW_S = Number(process.env.BENCH_OCPP_WINDOW_S) || 120;

function hubConfig(httpPort: number, ocppPort: number, dataDir: string): string {
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
    ...chargerDeviceLines(CHARGERS, METER_INTERVAL_S),
    '',
  ].join('\n');
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
  const hub = spawnHub(file, { nodeArgs });
  const { child, pid } = hub;

  const chargers: LoadCharger[] = [];
  const rows: BenchSection['rows'] = [];
  const notes: string[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  try {
    const started = await waitHealthy(hub, url, t0, `${CHARGERS} ocpp devices`);
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
    await Promise.all(connected.map((c) => c.bootAndStart(setupMs, setupErrors)));
    const bootedMs = performance.now() - tc;
    // the hub configures each charger after its boot (GetConfiguration, ChangeConfiguration, TriggerMessage): wait for that to finish
    const configured = () => connected.filter((c) => c.configuredByHub).length;
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
          countError(meterErrors, 'not connected');
          continue;
        }
        c.charge(METER_INTERVAL_S);
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
    while (meterMs.length + errCount(meterErrors) < expected && performance.now() < waitUntil) await sleep(100);
    const hubAfter = await health(url);
    const disconnects = chargers.reduce((n, c) => n + c.disconnects, 0) - disconnectsBefore;
    // the hub stops while every charger is still connected, as a restart on a busy site would
    const stopped = await stopChild(child);

    const meter = summary(meterMs);
    const setup = summary(setupMs);
    const conn = summary(connectMs);
    const meterErrCount = errCount(meterErrors);
    const setupErrCount = errCount(setupErrors) + errCount(connectErrors);
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
    notes.push(
      `The hub runs as \`node dist/src/cli.js start --config <temp yaml>\` in a child process (log level warn, JSON; ${CHARGERS} \`ocpp\` devices CP0001…CP${String(CHARGERS).padStart(4, '0')} with passwords and meter_interval_s ${METER_INTERVAL_S}; fixed tariffs; HTTP and OCPP on free 127.0.0.1 ports picked at run time); CPU and RSS are the child's, from /proc, so the load generator is not counted.`,
      `The load generator is this process: ${CHARGERS} ocpp-rpc RPCClient connections (OCPP 1.6J, strict mode, Basic auth, no reconnect). Each charger boots, reports Preparing, starts a transaction, reports Charging, answers the hub's GetConfiguration / ChangeConfiguration / TriggerMessage / SetChargingProfile, then sends MeterValues (energy register, power, current on 3 phases, SoC: 6 sampled values) every ${METER_INTERVAL_S} s, the chargers' sends spread evenly over the interval (${(connected.length / METER_INTERVAL_S).toFixed(0)} calls/s).`,
      `Latency is from \`call()\` to its answer in the generator, so it includes the generator's own event loop (its p99 delay in the window: ${fmtMs(generatorLoopP99)}). The hub sent ${changeConfig} ChangeConfiguration and ${profiles} SetChargingProfile calls during the run.`,
      `Connect/setup errors: ${errText(new Map([...connectErrors, ...setupErrors]))}. Hub log lines at warn and above: ${logText(hub.log)}.`,
      `RSS every 10 s in the window (MB): ${rssSamples.map((r) => r.toFixed(0)).join(', ')}, ${afterWindow.rss.toFixed(0)}.`,
    );
  } finally {
    loop.disable();
    await Promise.all(chargers.map((c) => c.close()));
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
  return { title: `OCPP (issue 6): ${CHARGERS} chargers sending MeterValues every ${METER_INTERVAL_S} s`, rows, notes };
}
