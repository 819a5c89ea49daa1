import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../src/cli.js';
import { countError, errCount, errText, fmtLatency, freePort, logText, memoryMb, npmStartRuntime, sleep, spawnHub, stopChild, summary, timed, waitHealthy, type HubProcess } from './hub-process.js';
import { CALL_TIMEOUT_MS, chargerDeviceLines, LoadCharger } from './ocpp-charger.js';
import { fmtMs, type BenchSection } from './types.js';

/** Issue 19: 500 chargers connected while the site re-plans; the cadence is shortened so several re-plans fall in a few minutes. */
const CHARGERS = Number(process.env.BENCH_PLANSOAK_CHARGERS) || 500;
const BATTERIES = 20;
const METER_INTERVAL_S = 10;
/** Minutes of MeterValues after the connect storm; the hub re-plans every minute (planner.replan_minutes: 1). */
const MINUTES = Number(process.env.BENCH_PLANSOAK_MINUTES) || 3;
/** The probe in the hub is asked for its event-loop delay this often (it resets it at each question). */
const PROBE_S = 2;
/** Another build of homeflex to measure the same way (e.g. the commit before the planning thread), built into <root>/dist. */
const ROOT = process.env.BENCH_PLANSOAK_ROOT || packageRoot;
const MB = 2 ** 20;

interface ProbeReply {
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

function probe(child: ChildProcess, gc = false): Promise<ProbeReply | undefined> {
  const id = Math.random();
  return new Promise((resolve) => {
    const t = setTimeout(() => (child.off('message', on), resolve(undefined)), 10_000);
    const on = (m: { type?: string; id?: number } & ProbeReply) => {
      if (m?.type !== 'heap' || m.id !== id) return;
      clearTimeout(t);
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
    child.send({ type: 'heap', id, gc });
  });
}

function hubConfig(ports: { http: number; ocpp: number }, dataDir: string): string {
  return [
    'site: { id: plansoak, name: Planning soak, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: 400000 } }',
    `http: { host: 127.0.0.1, port: ${ports.http} }`,
    `storage: { dir: ${JSON.stringify(dataDir)} }`,
    'log: { level: warn, format: json }',
    'planner: { replan_minutes: 1 }',
    'tariffs:',
    '  import: { type: time_of_use, rates: [ { from: "00:00", to: "06:00", rate: 0.20 }, { from: "06:00", to: "17:00", rate: 0.30 }, { from: "17:00", to: "21:00", rate: 0.45 }, { from: "21:00", to: "00:00", rate: 0.30 } ] }',
    '  export: { type: fixed, rate: 0.08 }',
    `connections:`,
    `  ocpp: { host: 127.0.0.1, port: ${ports.ocpp} }`,
    'devices:',
    ...chargerDeviceLines(CHARGERS, METER_INTERVAL_S),
    ...Array.from({ length: BATTERIES }, (_, i) => `  - { id: battery${String(i + 1).padStart(2, '0')}, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: ${30 + i}, tick_s: 10 }`),
    '  - { id: pv, adapter: sim_pv, kwp: 60, tick_s: 10 }',
    '  - { id: house, adapter: sim_load, annual_kwh: 200000, tick_s: 10 }',
    '',
  ].join('\n');
}

/**
 * The hub with 500 OCPP chargers (real ocpp-rpc clients), 20 batteries and a PV array re-planning
 * every minute: event-loop delay in the hub (monitorEventLoopDelay, from the soak probe), peak RSS
 * with the connect storm, MeterValues and /health latency, and the plans made.
 */
export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bench-plansoak-'));
  const progress = (line: string) => process.stderr.write(`plansoak: ${line}\n`);
  const chargers: LoadCharger[] = [];
  let hub: HubProcess | undefined;
  try {
    const [httpPort, ocppPort] = [await freePort(), await freePort()];
    const file = join(dir, 'hub.yaml');
    writeFileSync(file, hubConfig({ http: httpPort, ocpp: ocppPort }, join(dir, 'data')));
    const url = `http://127.0.0.1:${httpPort}`;
    const endpoint = `ws://127.0.0.1:${ocppPort}/ocpp`;
    const runtime = npmStartRuntime();
    const t0 = Date.now();
    // BENCH_PLANSOAK_HUB_NODE_ARGS: extra node flags for the hub, e.g. --cpu-prof when looking into a problem
    const extraArgs = (process.env.BENCH_PLANSOAK_HUB_NODE_ARGS ?? '').split(' ').filter(Boolean);
    hub = spawnHub(file, { root: ROOT, nodeArgs: [...runtime.flags, ...extraArgs, '--expose-gc', '--import', pathToFileURL(join(packageRoot, 'dist', 'bench', 'soak-probe.js')).href], env: runtime.env, ipc: true });
    const { pid, child } = hub;
    const started = await waitHealthy(hub, url, t0, `${CHARGERS} chargers`, 120_000);
    await sleep(3000);
    const idle = { ...memoryMb(pid), probe: await probe(child, true) };
    progress(`healthy after ${started} ms, idle RSS ${idle.rss.toFixed(0)} MB`);

    // ---- from here on: event-loop delay, RSS and plans are sampled all the time
    const loopSamples: { atS: number; maxMs: number; p99Ms: number }[] = [];
    const rssSamples: number[] = [];
    const plans = new Map<string, { solveMs: number; createdAt: string; status: string; notes: number }>();
    const healthMs: number[] = [];
    const apiErrors = new Map<string, number>();
    const tStart = performance.now();
    let stopSampling = false;
    const sampler = (async () => {
      for (let k = 1; !stopSampling; k++) {
        await sleep(Math.max(0, tStart + k * PROBE_S * 1000 - performance.now()));
        rssSamples.push(memoryMb(pid).rss);
        const p = await probe(child);
        if (p) loopSamples.push({ atS: (performance.now() - tStart) / 1000, maxMs: p.loopMaxMs, p99Ms: p.loopP99Ms });
        await timed(healthMs, apiErrors, async () => {
          const r = await fetch(`${url}/api/v1/health`);
          if (!r.ok) throw Object.assign(new Error(), { name: `/health HTTP ${r.status}` });
          await r.arrayBuffer();
        });
        const r = await fetch(`${url}/api/v1/plan`).catch(() => undefined);
        if (r?.ok) {
          const v = (await r.json()) as { id: string; created_at: string; status: string; notes: string[]; solver: { solve_ms: number } };
          if (!plans.has(v.id)) plans.set(v.id, { solveMs: v.solver.solve_ms, createdAt: v.created_at, status: v.status, notes: v.notes.filter((n) => /shifted to now/.test(n)).length });
        } else await r?.arrayBuffer();
      }
    })();

    // ---- the connect storm: all chargers at once, boot, start a transaction
    for (let i = 0; i < CHARGERS; i++) chargers.push(new LoadCharger(i, endpoint));
    const connectMs: number[] = [];
    const setupErrors = new Map<string, number>();
    const tc = performance.now();
    await Promise.all(chargers.map((c) => timed(connectMs, setupErrors, () => c.client.connect())));
    const connected = chargers.filter((c) => c.client.state === 1);
    const setupMs: number[] = [];
    await Promise.all(connected.map((c) => c.bootAndStart(setupMs, setupErrors)));
    while (connected.some((c) => !c.configuredByHub) && performance.now() - tc < 90_000) await sleep(200);
    const stormS = (performance.now() - tc) / 1000;
    const afterStorm = { ...memoryMb(pid), probe: await probe(child, true) };
    const stormLoopMax = Math.max(0, ...loopSamples.map((s) => s.maxMs));
    progress(`${connected.length} connected and configured in ${stormS.toFixed(1)} s; RSS ${afterStorm.rss.toFixed(0)} MB, peak ${afterStorm.hwm.toFixed(0)} MB; loop max ${fmtMs(stormLoopMax)}; ${plans.size} plans`);
    const stormSamples = loopSamples.length;

    // ---- MINUTES of MeterValues every 10 s from every charger while the hub re-plans every minute
    const meterMs: number[] = [];
    const meterErrors = new Map<string, number>();
    const disconnectsBefore = chargers.reduce((n, c) => n + c.disconnects, 0);
    const windowStart = performance.now();
    let expected = 0;
    await Promise.all(
      connected.map(async (c, i) => {
        const offset = (i / connected.length) * METER_INTERVAL_S * 1000;
        for (let k = 0; offset + k * METER_INTERVAL_S * 1000 < MINUTES * 60_000; k++) {
          await sleep(Math.max(0, windowStart + offset + k * METER_INTERVAL_S * 1000 - performance.now()));
          expected++;
          if (c.client.state !== 1) {
            countError(meterErrors, 'not connected');
            continue;
          }
          c.charge(METER_INTERVAL_S);
          void timed(meterMs, meterErrors, () => c.meterValues());
        }
      }),
    );
    await sleep(Math.max(0, windowStart + MINUTES * 60_000 - performance.now()));
    const waitUntil = performance.now() + CALL_TIMEOUT_MS;
    while (meterMs.length + errCount(meterErrors) < expected && performance.now() < waitUntil) await sleep(100);
    stopSampling = true;
    await sampler;
    const end = { ...memoryMb(pid), probe: await probe(child, true) };
    const disconnects = chargers.reduce((n, c) => n + c.disconnects, 0) - disconnectsBefore;
    const stopped = await stopChild(child);

    const windowSamples = loopSamples.slice(stormSamples);
    const loopMax = Math.max(0, ...loopSamples.map((s) => s.maxMs));
    const p99s = loopSamples.map((s) => s.p99Ms).sort((a, b) => a - b);
    const worstP99 = p99s[p99s.length - 1] ?? NaN;
    const over50 = loopSamples.filter((s) => s.maxMs >= 50);
    const meter = summary(meterMs);
    const hl = summary(healthMs);
    const planList = [...plans.values()];
    const solve = summary(planList.map((p) => p.solveMs));
    const mem = (m: typeof idle) =>
      `RSS ${m.rss.toFixed(0)} MB (V8 heap ${((m.probe?.heapUsed ?? NaN) / MB).toFixed(0)} of ${((m.probe?.heapTotal ?? NaN) / MB).toFixed(0)} MB, external ${((m.probe?.external ?? NaN) / MB).toFixed(0)} MB of which array buffers ${((m.probe?.arrayBuffers ?? NaN) / MB).toFixed(0)} MB)`;
    const which = ROOT === packageRoot ? 'this build' : `the build in ${ROOT}`;
    const rows: BenchSection['rows'] = [
      { name: `hub start with ${CHARGERS} ocpp, ${BATTERIES} sim_battery, 1 sim_pv, 1 sim_load to /api/v1/health`, value: `${(started / 1000).toFixed(1)} s` },
      {
        name: `${CHARGERS} chargers connect at once, boot, start a transaction and are configured by the hub`,
        value: `${connected.length} connected; connect ${fmtLatency(summary(connectMs))}; boot/start calls ${fmtLatency(summary(setupMs))}; all configured in ${stormS.toFixed(1)} s; errors ${errText(setupErrors)}`,
        target: `${CHARGERS} connected, no errors`,
        ok: connected.length === CHARGERS && errCount(setupErrors) === 0,
      },
      {
        name: `hub event-loop delay (monitorEventLoopDelay in the hub, resolution 10 ms, read every ${PROBE_S} s): max over the run / in the connect storm / in the ${MINUTES}-min window; worst ${PROBE_S}-s p99`,
        value: `${fmtMs(loopMax)} / ${fmtMs(stormLoopMax)} / ${fmtMs(Math.max(0, ...windowSamples.map((s) => s.maxMs)))}; p99 ${fmtMs(worstP99)}; ${over50.length} of ${loopSamples.length} samples ≥ 50 ms${over50.length ? ` (${over50.slice(0, 8).map((s) => `${fmtMs(s.maxMs)} at ${s.atS.toFixed(0)} s`).join(', ')})` : ''}`,
        target: 'max < 50 ms',
        ok: loopMax < 50,
      },
      {
        name: 'hub RSS (/proc): idle with the devices → after the connect storm → end; peak (VmHWM)',
        value: `${idle.rss.toFixed(0)} → ${afterStorm.rss.toFixed(0)} → ${end.rss.toFixed(0)} MB; peak ${end.hwm.toFixed(0)} MB`,
        target: 'peak < 300 MB',
        ok: end.hwm < 300,
      },
      { name: 'hub memory after a full GC: idle → after the storm → end', value: `${mem(idle)} → ${mem(afterStorm)} → ${mem(end)}` },
      {
        name: `plans made (GET /api/v1/plan every ${PROBE_S} s; the hub re-plans every minute and on devices connecting): count, solve time (building + solving, solver.solve_ms)`,
        value: `${planList.length} plans; solve ${fmtLatency(solve)}; statuses ${[...new Set(planList.map((p) => p.status))].join(', ')}; stand-ins (previous plan shifted) ${planList.filter((p) => p.notes).length}`,
        target: `≥ ${MINUTES} plans`,
        ok: planList.length >= MINUTES,
      },
      {
        name: `MeterValues round trip, ${connected.length} chargers every ${METER_INTERVAL_S} s for ${MINUTES} min`,
        value: `${meter.n} of ${expected}: ${fmtLatency(meter)}; errors ${errText(meterErrors)}; ${disconnects} disconnects`,
        target: 'all answered, max < 200 ms',
        ok: meter.n === expected && meter.max < 200 && disconnects === 0,
      },
      { name: `GET /api/v1/health every ${PROBE_S} s over the run`, value: `${fmtLatency(hl)}; errors ${errText(apiErrors)}`, target: 'max < 100 ms', ok: hl.max < 100 },
      { name: 'hub log lines at warn and above; SIGTERM to exit', value: `${logText(hub.log)}; ${stopped.ms} ms, exit code ${stopped.code}` },
    ];
    const notes = [
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${which}; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' / ')} (a machine shared with other engineers' builds and tests). \`npm run bench -- plansoak\` (opt-in; BENCH_PLANSOAK_MINUTES, default 3; BENCH_PLANSOAK_ROOT=<another checkout, built> measures that build the same way).`,
      `The hub runs as \`npm start\` runs it (${runtime.script.replace(/ dist\/src\/cli\.js start$/, '')}) plus \`--expose-gc\` and the soak probe (\`bench/soak-probe.ts\`), which reports V8's heap and the event-loop delay since its last question over IPC. Log level warn; HTTP and OCPP on free 127.0.0.1 ports; storage in a temporary directory; planner.replan_minutes 1 (48 h of 15-min slots).`,
      `Load: ${CHARGERS} OCPP 1.6J chargers (ocpp-rpc clients in this process, strict mode, Basic auth) connect at once, boot, start a transaction, answer the hub's configuration calls and then send MeterValues every ${METER_INTERVAL_S} s; ${BATTERIES} simulated batteries, a 60 kWp PV array and a house load in the hub (sim adapters). /health and /plan are asked every ${PROBE_S} s.`,
      `RSS every ${PROBE_S} s (MB): ${rssSamples.map((r) => r.toFixed(0)).join(', ')}.`,
      `Plans: ${planList.map((p) => `${p.createdAt.slice(11, 19)} ${p.solveMs} ms`).join(', ')}.`,
    ];
    return { title: `Planning off the event loop (issue 19): ${CHARGERS} chargers while the site re-plans every minute`, rows, notes };
  } finally {
    await Promise.all(chargers.map((c) => c.close()));
    if (hub) await stopChild(hub.child);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run()
    .then((s) => {
      process.stdout.write(`## ${s.title}\n\n| measure | value | target | met |\n|---|---|---|---|\n`);
      for (const r of s.rows) process.stdout.write(`| ${r.name} | ${r.value} | ${r.target ?? ''} | ${r.ok === undefined ? '' : r.ok ? 'yes' : '**no**'} |\n`);
      process.stdout.write(`\n${(s.notes ?? []).map((n) => `- ${n}`).join('\n')}\n`);
    })
    .catch((err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
}
