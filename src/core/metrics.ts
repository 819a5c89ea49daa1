import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { access } from './http.js';
import type { HubServices, PartFactory } from './services.js';

/**
 * GET /metrics: the hub's health for Prometheus, in its text exposition format (version 0.0.4).
 * Hand-written: a dozen gauges and counters read from the hub's own state at scrape time need no
 * registry, and prom-client's default process metrics would add little to what /proc gives.
 */

type Sample = [labels: Record<string, string>, value: number];
interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter' | 'summary';
  samples: Sample[];
  /** Extra series of a summary (`_sum`, `_count`). */
  extra?: [suffix: string, labels: Record<string, string>, value: number][];
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const num = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));
const labelText = (labels: Record<string, string>) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

/** Families in the text format: HELP, TYPE, then one line per series. */
export function exposition(families: Family[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const [labels, value] of f.samples) lines.push(`${f.name}${labelText(labels)} ${num(value)}`);
    for (const [suffix, labels, value] of f.extra ?? []) lines.push(`${f.name}${suffix}${labelText(labels)} ${num(value)}`);
  }
  return lines.join('\n') + '\n';
}

/** What the hub reports, read at scrape time. */
export function hubMetrics(hub: HubServices, loop: IntervalHistogram): Family[] {
  const devices = hub.registry.all();
  const control = hub.control;
  const latest = control?.latest;
  const now = hub.clock.now();
  const s = (ns: number) => ns / 1e9;
  const stores = [
    ['state', hub.state.writeTimes],
    ...(hub.metering ? [['meters', hub.metering.store.writeTimes] as const] : []),
  ] as const;
  const families: Family[] = [
    {
      name: 'homeflex_device_up',
      help: 'Whether the device is available (1) or not (0).',
      type: 'gauge',
      samples: devices.map((d) => [{ device: d.id, adapter: hub.adapterStatus.get(d.id)?.adapter ?? '' }, d.available ? 1 : 0]),
    },
    { name: 'homeflex_devices', help: 'Configured devices.', type: 'gauge', samples: [[{}, devices.length]] },
    { name: 'homeflex_devices_available', help: 'Devices available now.', type: 'gauge', samples: [[{}, devices.filter((d) => d.available).length]] },
  ];
  if (control) {
    families.push(
      { name: 'homeflex_plan_age_seconds', help: 'Time since the plan in force was made (NaN before the first plan).', type: 'gauge', samples: [[{}, latest ? Math.max(0, (now - latest.createdAt) / 1000) : NaN]] },
      { name: 'homeflex_plan_solve_seconds', help: 'How long building and solving the plan in force took.', type: 'gauge', samples: [[{}, latest ? latest.solveMs / 1000 : NaN]] },
      { name: 'homeflex_plans_total', help: 'Plans made since start, stand-ins included.', type: 'counter', samples: [[{}, control.counts.plans]] },
      { name: 'homeflex_plan_timeouts_total', help: 'Plans not solved within planner.time_limit_s, replaced by the previous plan shifted to now.', type: 'counter', samples: [[{}, control.counts.standIns]] },
      { name: 'homeflex_plan_failing', help: 'Whether the last attempt to plan failed (1) or not (0).', type: 'gauge', samples: [[{}, control.lastError ? 1 : 0]] },
      { name: 'homeflex_command_failures_total', help: 'Times a device started refusing the plan’s commands (or refused them for another reason).', type: 'counter', samples: [[{}, control.counts.commandFailures]] },
      { name: 'homeflex_devices_refusing_commands', help: 'Devices whose last command failed.', type: 'gauge', samples: [[{}, control.failing.size]] },
    );
    if (control.thread) {
      families.push(
        { name: 'homeflex_planner_threads_started_total', help: 'Planning threads started (a new one after a timeout or when HiGHS memory outgrew its bound).', type: 'counter', samples: [[{}, control.thread.stats.started]] },
        { name: 'homeflex_planner_wasm_bytes', help: 'HiGHS WebAssembly memory of the planning thread after its last plan.', type: 'gauge', samples: [[{}, control.thread.stats.wasmBytes]] },
      );
    }
  }
  families.push(
    {
      name: 'homeflex_event_loop_delay_seconds',
      help: 'How late the hub’s event loop ran timers since start (monitorEventLoopDelay, 10 ms resolution).',
      type: 'summary',
      samples: [0.5, 0.9, 0.99].map((q) => [{ quantile: String(q) }, loop.count ? s(loop.percentile(q * 100)) : NaN] as Sample),
      extra: [
        ['_sum', {}, loop.count ? s(loop.mean * loop.count) : 0],
        ['_count', {}, loop.count],
      ],
    },
    { name: 'homeflex_event_loop_delay_max_seconds', help: 'The longest the hub’s event loop was late since start.', type: 'gauge', samples: [[{}, loop.count ? s(loop.max) : 0]] },
    {
      name: 'homeflex_store_write_seconds',
      help: 'Time of store writes: state = the state file (atomic, fsync), meters = an acknowledged batch of meter records (append, fsync).',
      type: 'summary',
      samples: [],
      extra: stores.flatMap(([store, t]) => [
        ['_sum', { store }, t.sumS],
        ['_count', { store }, t.count],
      ]) as Family['extra'],
    },
    { name: 'homeflex_store_write_max_seconds', help: 'The slowest store write since start.', type: 'gauge', samples: stores.map(([store, t]) => [{ store }, t.maxS]) },
    { name: 'homeflex_uptime_seconds', help: 'Seconds since the hub started.', type: 'gauge', samples: [[{}, Math.round((Date.now() - hub.startedAt) / 1000)]] },
  );
  return families;
}

/** The metrics part: measures the event loop from start, serves GET /metrics (read access, like the API). */
export const metricsPart: PartFactory = (hub) => {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  return {
    name: 'metrics',
    routes: (app) => {
      app.get('/metrics', access('read'), async (_req, reply) => {
        void reply.type('text/plain; version=0.0.4; charset=utf-8');
        return exposition(hubMetrics(hub, loop));
      });
    },
    async stop() {
      loop.disable();
    },
  };
};
