/**
 * homeflex/testing: the contract test kit. Runs an adapter the way the hub does and checks it keeps
 * the SDK's promises: its definition and schema load, bad configuration is refused with a place in
 * the site file, it starts and stops within the hub's budgets, its devices' capabilities behave as
 * declared (a switch that is told to turn on reports on), and what it throws is a typed error.
 * Works under any test runner: `assertAdapterContract` throws one error listing every failed check.
 */
import { stringify } from 'yaml';
import {
  ApiError,
  HomeflexError,
  withTimeout,
  type AdapterDefinition,
  type AdapterInstance,
  type AdapterStore,
  type Clock,
  type Device,
  type Logger,
  type Transports,
} from '../api/index.js';
import { HubBus } from '../core/bus.js';
import { systemClock } from '../core/clock.js';
import { ConfigError, parseConfig } from '../core/config/load.js';

export interface BadConfig {
  /** Keys of the device entry (besides id and adapter) that the adapter must refuse. */
  config: Record<string, unknown>;
  /** Where the refusal must point, relative to the entry: `port`, `auth.user`. */
  path: string;
}

export interface ContractOptions {
  adapter: AdapterDefinition<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** A working device entry's own keys (besides id and adapter), reaching a real device or stand-in. */
  config: Record<string, unknown>;
  /** Entries the schema or the adapter's `check` must refuse, each with the key it must name. */
  badConfigs?: BadConfig[];
  /**
   * An entry whose device cannot be reached (a closed port): start may resolve with the device
   * unavailable or reject, and commands must reject, always with a typed error.
   */
  unreachableConfig?: Record<string, unknown>;
  /** Shared transports, for adapters that use MQTT, OCPP or Modbus. */
  transports?: Transports;
  clock?: Clock;
  /** The hub's budgets: 10 s to start, 3 s to stop. */
  startBudgetMs?: number;
  stopBudgetMs?: number;
  /** How long a state change after a command may take to show (default 3 s). */
  settleMs?: number;
  /** Send commands (switch on and off) to check they are honoured; default true. */
  exercise?: boolean;
}

export interface ContractCheck {
  name: string;
  ok: boolean;
  message?: string;
  ms?: number;
}

export interface ContractReport {
  adapter: string;
  ok: boolean;
  checks: ContractCheck[];
  /** What the adapter logged, one line per call. */
  log: string[];
}

const SITE = { id: 'contract', name: 'Contract', timezone: 'UTC', currency: 'EUR' };

function memoryStore(): AdapterStore {
  const data = new Map<string, unknown>();
  return { get: <T>(k: string) => structuredClone(data.get(k)) as T | undefined, set: async (k, v) => void data.set(k, structuredClone(v)) };
}

function recordingLogger(lines: string[], bindings: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (obj: unknown, msg?: string) => lines.push(JSON.stringify({ level, ...bindings, ...(typeof obj === 'object' && obj ? (obj instanceof Error ? { err: obj.message } : obj) : { msg: obj }), ...(msg ? { msg } : {}) }, (_k, v: unknown) => (v instanceof Error ? v.message : v)));
  return { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), child: (b) => recordingLogger(lines, { ...bindings, ...b }) };
}

const noTransports: Transports = {
  mqtt: () => {
    throw new Error('the contract kit was given no transports: pass options.transports for an MQTT adapter');
  },
  ocpp: () => {
    throw new Error('the contract kit was given no transports: pass options.transports for an OCPP adapter');
  },
  modbus: () => {
    throw new Error('the contract kit was given no transports: pass options.transports for a Modbus adapter');
  },
};


const typed = (err: unknown) => err instanceof HomeflexError || err instanceof ApiError;
const describe = (err: unknown) => (err instanceof HomeflexError ? `${err.kind} ${err.code}: ${err.message}` : `${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`);

/** The device entry as YAML text in a minimal site file, and the line it starts on. */
function siteText(adapter: string, config: Record<string, unknown>): string {
  return stringify({ site: SITE, devices: [{ id: 'dut', adapter, ...config }] });
}

async function until(test: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (test()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return test();
}

/** Runs every check and reports each; never throws for a failed check. */
export async function runAdapterContract(options: ContractOptions): Promise<ContractReport> {
  const def = options.adapter;
  const checks: ContractCheck[] = [];
  const log: string[] = [];
  const check = async (name: string, fn: () => Promise<string | void> | string | void) => {
    const t0 = Date.now();
    try {
      const note = await fn();
      checks.push({ name, ok: true, ms: Date.now() - t0, ...(note ? { message: note } : {}) });
      return true;
    } catch (err) {
      checks.push({ name, ok: false, ms: Date.now() - t0, message: (err as Error)?.message ?? String(err) });
      return false;
    }
  };
  const catalog = { adapters: [def], plugins: [], tariffSources: [] };
  const startBudget = options.startBudgetMs ?? 10_000;
  const stopBudget = options.stopBudgetMs ?? 3_000;
  const settle = options.settleMs ?? 3_000;

  await check('definition: id, description and a JSON Schema object', () => {
    if (!/^[a-z][a-z0-9_-]*$/.test(def.id)) throw new Error(`id "${def.id}" must be lower-case letters, digits, - or _`);
    if (!def.description) throw new Error('description is empty');
    if (!def.configSchema || typeof def.configSchema !== 'object') throw new Error('configSchema is not an object');
  });

  // the hub's own loader validates the entry, applies defaults and runs the adapter's check
  let config: Record<string, unknown> | undefined;
  await check('config: a working entry loads, with defaults applied', () => {
    const loaded = parseConfig(siteText(def.id, options.config), 'contract.yaml', { catalog, env: {} });
    config = loaded.devices[0];
    const problems = def.check?.(config as never) ?? [];
    if (problems.length) throw new Error(`check() refused the working entry: ${problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; ')}`);
  });

  for (const bad of options.badConfigs ?? []) {
    await check(`config: refuses a bad entry at ${bad.path}`, () => {
      const want = `devices[0].${bad.path}`;
      let problems: { line: number; path: string; message: string }[];
      try {
        const loaded = parseConfig(siteText(def.id, bad.config), 'contract.yaml', { catalog, env: {} });
        problems = (def.check?.(loaded.devices[0] as never) ?? []).map((p) => ({ line: 0, path: `devices[0].${p.path.join('.')}`, message: p.message }));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems = err.problems;
      }
      if (!problems.length) throw new Error(`the entry ${JSON.stringify(bad.config)} was accepted`);
      const hit = problems.find((p) => p.path === want || p.path.startsWith(`${want}.`) || p.path.startsWith(`${want}[`));
      if (!hit) throw new Error(`refused, but not at ${want}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
      return `${hit.line ? `contract.yaml:${hit.line} ` : ''}${hit.path}: ${hit.message}`;
    });
  }

  if (!config) return { adapter: def.id, ok: false, checks, log };

  const bus = new HubBus();
  const ctx = (id: string) => ({ log: recordingLogger(log, { adapter: def.id, device: id }), bus, transports: options.transports ?? noTransports, store: memoryStore(), clock: options.clock ?? systemClock, site: SITE });
  let instance: AdapterInstance | undefined;
  await check('create: returns devices, the first with the entry\'s id', async () => {
    instance = await def.create(ctx('dut'), config as never);
    if (!Array.isArray(instance?.devices) || !instance.devices.length) throw new Error('create() returned no devices');
    if (instance.devices[0].id !== 'dut') throw new Error(`the first device's id is "${instance.devices[0].id}", not the entry's id "dut"`);
    for (const d of instance.devices) {
      if (typeof d.name !== 'string' || !d.caps || typeof d.caps !== 'object') throw new Error(`device ${d.id} has no name or no caps`);
      if (typeof d.available !== 'boolean') throw new Error(`device ${d.id}: available must be a boolean`);
    }
  });
  if (!instance) return { adapter: def.id, ok: false, checks, log };
  const inst = instance;
  const abort = new AbortController();

  const started = await check(`start: resolves within ${startBudget} ms`, () => withTimeout(inst.start(abort.signal), startBudget, 'start()'));

  if (started) {
    for (const d of inst.devices) await capabilityChecks(d, check, settle, options.exercise ?? true);
  }

  let eventsAfterStop = 0;
  await check(`stop: resolves within ${stopBudget} ms, and nothing runs afterwards`, async () => {
    abort.abort(new Error('contract: stopping'));
    await withTimeout(inst.stop(), stopBudget, 'stop()');
    const count = () => eventsAfterStop++;
    const offs = [bus.on('meter.reading', count), bus.on('device.state', count)];
    await new Promise((r) => setTimeout(r, 300));
    offs.forEach((off) => off());
    if (eventsAfterStop) throw new Error(`${eventsAfterStop} events after stop(): a timer or connection is still running`);
  });

  if (options.unreachableConfig) await unreachableChecks(def, options, catalog, ctx, check, startBudget, stopBudget);

  return { adapter: def.id, ok: checks.every((c) => c.ok), checks, log };
}

type Check = (name: string, fn: () => Promise<string | void> | string | void) => Promise<boolean>;

async function capabilityChecks(d: Device, check: Check, settle: number, exercise: boolean) {
  const caps = d.caps;
  if (!Object.values(caps).some(Boolean)) await check(`${d.id}: declares at least one capability`, () => {
    throw new Error('caps is empty');
  });
  if (caps.meter) {
    const meter = caps.meter;
    await check(`${d.id}: meter gives readings with a time`, async () => {
      if (!Array.isArray(meter.channels) || !meter.channels.length) throw new Error('meter.channels is empty');
      await until(() => meter.last(meter.channels[0]) !== undefined, settle);
      const r = meter.last(meter.channels[0]);
      if (!r) throw new Error(`no reading within ${settle} ms of start`);
      if (!Number.isFinite(r.time)) throw new Error('reading.time is not a number');
      for (const k of ['powerW', 'importWh', 'exportWh'] as const) if (r[k] !== undefined && !Number.isFinite(r[k])) throw new Error(`reading.${k} is not a number`);
    });
  }
  if (caps.switch) {
    const sw = caps.switch;
    await check(`${d.id}: switch reports its state and rated power`, () => {
      const on = sw.isOn();
      if (on !== undefined && typeof on !== 'boolean') throw new Error('isOn() must be true, false or undefined');
      if (!(sw.ratedPowerW >= 0)) throw new Error('ratedPowerW must be a number ≥ 0');
    });
    if (exercise) {
      for (const want of [true, false]) {
        await check(`${d.id}: switch.set(${want}) is honoured`, async () => {
          await sw.set(want).catch((err: unknown) => {
            throw new Error(`set(${want}) rejected: ${describe(err)}`);
          });
          if (!(await until(() => sw.isOn() === want, settle))) throw new Error(`isOn() is ${String(sw.isOn())} ${settle} ms after set(${want})`);
        });
      }
    }
  }
  if (caps.storage) {
    const st = caps.storage;
    await check(`${d.id}: storage states its parameters`, () => {
      if (!(st.params.capacityWh > 0)) throw new Error('params.capacityWh must be above 0');
      if (typeof st.state !== 'function' || typeof st.command !== 'function') throw new Error('state() and command() are required');
    });
  }
  if (caps.charger) {
    const ch = caps.charger;
    await check(`${d.id}: charger states its status and limits`, () => {
      if (typeof ch.status() !== 'string') throw new Error('status() must be a string');
      if (!(ch.maxCurrentA >= ch.minCurrentA)) throw new Error('maxCurrentA must be ≥ minCurrentA');
    });
  }
  if (caps.thermostat) {
    const th = caps.thermostat;
    await check(`${d.id}: thermostat states its band`, () => {
      if (!(th.band.maxC >= th.band.minC)) throw new Error('band.maxC must be ≥ band.minC');
    });
  }
  if (caps.pv) {
    const pv = caps.pv;
    await check(`${d.id}: pv states its peak power`, () => {
      if (!(pv.params.kWp > 0)) throw new Error('params.kWp must be above 0');
    });
  }
}

async function unreachableChecks(
  def: AdapterDefinition<any>, // eslint-disable-line @typescript-eslint/no-explicit-any
  options: ContractOptions,
  catalog: { adapters: AdapterDefinition<any>[]; plugins: never[]; tariffSources: never[] }, // eslint-disable-line @typescript-eslint/no-explicit-any
  ctx: (id: string) => Parameters<AdapterDefinition['create']>[0],
  check: Check,
  startBudget: number,
  stopBudget: number,
) {
  let inst: AdapterInstance | undefined;
  const abort = new AbortController();
  await check('unreachable device: start fails typed or marks the device unavailable', async () => {
    const config = parseConfig(siteText(def.id, options.unreachableConfig!), 'contract.yaml', { catalog, env: {} }).devices[0];
    inst = await def.create(ctx('dut'), config as never);
    try {
      await withTimeout(inst.start(abort.signal), startBudget, 'start()');
    } catch (err) {
      if (!typed(err)) throw new Error(`start() rejected with an untyped error (use permanentError / retryableError): ${describe(err)}`, { cause: err });
      return `start rejected: ${describe(err)}`;
    }
    if (!(await until(() => inst!.devices.every((d) => !d.available), options.settleMs ?? 3_000))) throw new Error('start() resolved but the devices say available');
    return `unavailable: ${inst.devices[0].error ?? '(no error text)'}`;
  });
  const sw = inst?.devices[0]?.caps.switch;
  if (sw) {
    await check('unreachable device: a command rejects with a typed error', async () => {
      try {
        await sw.set(true);
      } catch (err) {
        if (!typed(err)) throw new Error(`set() rejected with an untyped error: ${describe(err)}`, { cause: err });
        return describe(err);
      }
      throw new Error('set(true) resolved although the device cannot be reached');
    });
  }
  if (inst) {
    const i = inst;
    await check(`unreachable device: stop resolves within ${stopBudget} ms`, async () => {
      abort.abort(new Error('contract: stopping'));
      await withTimeout(i.stop(), stopBudget, 'stop()');
    });
  }
}

/** Runs the contract and throws one error listing every failed check (for any test runner). */
export async function assertAdapterContract(options: ContractOptions): Promise<ContractReport> {
  const report = await runAdapterContract(options);
  if (!report.ok) {
    const failed = report.checks.filter((c) => !c.ok);
    throw new Error(`adapter ${report.adapter} breaks the homeflex contract in ${failed.length} check${failed.length === 1 ? '' : 's'}:\n${failed.map((c) => `  ✗ ${c.name}: ${c.message}`).join('\n')}`);
  }
  return report;
}

export { HubBus } from '../core/bus.js';
export { ManualClock, systemClock } from '../core/clock.js';
