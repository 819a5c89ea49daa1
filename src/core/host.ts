import { metricsPart } from './metrics.js';
import { startTelemetry } from './telemetry.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { tariffPart } from '../tariff/part.js';
import { meteringPart } from '../metering/part.js';
import { controlPart } from '../control/part.js';
import { forecastPart } from '../forecast/part.js';
import { ApiError, withTimeout, type AdapterInstance, type Clock, type Device, type Logger, type PartStatus, type PluginContext, type PluginDefinition, type PluginInstance, type PluginRoutes, type RouteAccessLevel, type SiteInfo } from '../api/index.js';
import { HubBus } from './bus.js';
import { builtinCatalog } from './catalog.js';
import { systemClock } from './clock.js';
import { hubChecks } from './config/checks.js';
import { pluginFor, type Catalog } from './config/compose.js';
import { ConfigError, formatProblem, loadConfigFile, parseConfig } from './config/load.js';
import type { HubConfig, PluginConfig } from './config/schema.js';
import { access, createHttpServer, type RouteModule } from './http.js';
import { createHubView } from './hub-view.js';
import { loadSitePlugins } from './plugins/external.js';
import { createLogger } from './logging.js';
import { DeviceRegistry } from './registry.js';
import { coreRoutes } from './routes.js';
import type { HubPart, HubServices, PartFactory } from './services.js';
import { DIR_MODE } from './store/atomic.js';
import { StorageLock, StorageLockedError } from './store/lock.js';
import { StateStore } from './store/state.js';
import { backupPart } from './store/backup-part.js';
import { storageNoticePart } from './store/notices.js';
import { Discovery, configuredMatcher, discoveryRoutes } from './discovery.js';
import { watchAnnouncements } from './discovery-mqtt.js';
import { watchModbusUnits } from './discovery-modbus.js';
import { createTransports, type HubTransports } from './transports/index.js';

export interface HubOptions {
  /** A YAML file, or the YAML text itself with `configText`. */
  configFile?: string;
  configText?: string;
  catalog?: Catalog;
  clock?: Clock;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Overrides applied after loading (tests pick ports and directories at run time). */
  override?: (config: HubConfig) => void;
  /** Per adapter or plugin stop budget (ms). */
  stopTimeoutMs?: number;
  /** With `configText`: resolve `storage.dir` relative to `configFile` as if the file had been read. */
  storageBesideFile?: boolean;
}

/** Status of a plugin for /health: by plugin id (or by package / path when it was refused before it had one). */
export interface PluginStatus extends PartStatus {
  source: string;
}

/**
 * The hub's own parts (tariffs, metering, control, ...), created before the adapters so they hear
 * the first events, started after them, and stopped before them.
 */
const PARTS: PartFactory[] = [tariffPart(), meteringPart, forecastPart(), controlPart(), backupPart, storageNoticePart, metricsPart];

interface Running {
  kind: 'adapter' | 'plugin';
  name: string;
  ids: string[];
  instance: AdapterInstance | PluginInstance;
  abort: AbortController;
}

/** Who owns running code: an adapter (with its devices) or a plugin; what to undo when it fails. */
interface Owner {
  kind: string;
  name: string;
  ids: string[];
  /** A plugin's timers and bus handlers, cancelled when it fails. */
  disposers?: (() => void)[];
  abort?: AbortController;
}

/** A plugin the site file enables, on its way to running. */
interface PluginRun {
  def: PluginDefinition<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  config: Record<string, unknown>;
  who: Owner;
  ctx: PluginContext;
}

const ROUTE_ACCESS: readonly RouteAccessLevel[] = ['public', 'read', 'write'];


/** Which adapter or plugin the running code belongs to, so late failures are blamed correctly. */
const owner = new AsyncLocalStorage<Owner>();

/** How the site file names a plugin, for /health. */
const sourceOf = (entry: PluginConfig) => (entry.package !== undefined ? `package ${entry.package}` : entry.path !== undefined ? `path ${entry.path}` : 'built in');

/** Secrets of a configuration (tokens, passwords) so the logger can scrub them from every line. */
function secretsOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => secretsOf(v, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' && /pass(word)?|token|secret|api_?key/i.test(k)) out.push(v);
      else secretsOf(v, out);
    }
  }
  return out;
}

/**
 * The one composition root: reads the configuration, creates the shared transports, loads the
 * adapters and plugins the YAML names, registers their devices, serves HTTP, and stops it all in
 * reverse order.
 */
export class Hub {
  readonly config: HubConfig;
  readonly catalog: Catalog;
  readonly log: Logger;
  readonly clock: Clock;
  readonly bus: HubBus;
  readonly registry = new DeviceRegistry();
  services!: HubServices;
  http?: FastifyInstance;
  private running: Running[] = [];
  private stopping?: Promise<void>;
  private readonly stopTimeoutMs: number;
  private onProcessError = (err: unknown) => this.blame(err);

  constructor(options: HubOptions) {
    this.catalog = options.catalog ?? builtinCatalog;
    const loadOptions = { catalog: this.catalog, env: options.env, checks: hubChecks(this.catalog) };
    this.loadOptions = loadOptions;
    this.configFile = options.configFile && options.configText === undefined ? resolve(options.configFile) : undefined;
    this.config = options.configText !== undefined
      ? parseConfig(options.configText, options.configFile ?? 'site.yaml', loadOptions)
      : loadConfigFile(options.configFile ?? 'config/demo.yaml', loadOptions);
    options.override?.(this.config);
    if (options.configFile && (options.configText === undefined || options.storageBesideFile)) {
      // storage.dir is relative to the configuration file, not to where the hub was started
      this.config.storage.dir = resolve(dirname(resolve(options.configFile)), this.config.storage.dir);
      if (this.config.storage.backup) this.config.storage.backup.dir = resolve(dirname(resolve(options.configFile)), this.config.storage.backup.dir);
      const tls = this.config.http.tls;
      if (tls) this.config.http.tls = { cert: resolve(dirname(resolve(options.configFile)), tls.cert), key: resolve(dirname(resolve(options.configFile)), tls.key) };
    }
    this.log = options.logger ?? createLogger({ level: this.config.log.level, format: this.config.log.format, secrets: secretsOf(this.config) });
    this.clock = options.clock ?? systemClock;
    this.bus = new HubBus(this.log.child({ component: 'bus' }));
    this.stopTimeoutMs = options.stopTimeoutMs ?? 3000;
  }

  /**
   * Reads the site file, loads the plugins it names by package or path (refused ones are reported
   * with their place in the file and marked failed; the hub runs on without them), then makes the hub.
   */
  static async load(options: HubOptions): Promise<Hub> {
    const file = options.configFile ?? (options.configText !== undefined ? 'site.yaml' : 'config/demo.yaml');
    let text = options.configText;
    if (text === undefined) {
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new ConfigError([{ file, line: 1, col: 1, path: '', message: `cannot read the file: ${(err as Error).message}` }]);
      }
    }
    const site = await loadSitePlugins(text, file, options.catalog ?? builtinCatalog);
    return new Hub({ ...options, configFile: file, configText: text, catalog: site.catalog, storageBesideFile: options.configText === undefined || options.storageBesideFile });
  }

  /** Plugins by id (refused ones by package or path) with their status, for /health. */
  readonly pluginStatus = new Map<string, PluginStatus>();

  get site(): SiteInfo {
    const { id, name, timezone, currency } = this.config.site;
    return { id, name, timezone, currency };
  }

  /** The clock and bus an adapter sees: its timer callbacks and event handlers are blamed on it when they throw. */
  private guarded(who: Owner): { clock: Clock; bus: HubBus } {
    const guard = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A) => {
      try {
        owner.run(who, () => fn(...a));
      } catch (err) {
        owner.run(who, () => this.blame(err));
      }
    };
    const keep = (undo: () => void) => {
      who.disposers?.push(undo);
      return undo;
    };
    const clock: Clock = { now: () => this.clock.now(), sleep: (ms, signal) => this.clock.sleep(ms, signal), every: (ms, fn) => keep(this.clock.every(ms, guard(fn))) };
    const bus = Object.create(this.bus) as HubBus;
    bus.on = (topic, handler) => keep(this.bus.on(topic, guard(handler)));
    return { clock, bus };
  }

  /** Marks the adapter or plugin that owns the failing code as failed; the hub goes on. */
  private blame(err: unknown) {
    const who = owner.getStore();
    if (!who) {
      // not an adapter's fault: the hub itself is in an unknown state, so stop it rather than limp on
      this.log.fatal({ err }, 'unhandled error in the hub itself; stopping');
      process.exitCode = 1;
      void this.stop().finally(() => process.exit(1));
      return;
    }
    this.log.error({ err, [who.kind]: who.name }, `${who.kind} ${who.name} failed`);
    if (who.kind === 'plugin') this.pluginFailed(who, err);
    for (const id of who.ids) this.services.adapterStatus.set(id, { adapter: who.name, status: 'failed', error: String((err as Error)?.message ?? err) });
    for (const id of who.ids) {
      const d = this.registry.get(id);
      if (d) {
        d.available = false;
        d.error = String((err as Error)?.message ?? err);
        this.bus.emit('device.state', { deviceId: id, available: false, error: d.error });
      }
    }
  }

  /** Marks a plugin failed, stops its timers and event handlers, and aborts its signal; the hub goes on. */
  private pluginFailed(who: Owner, err: unknown) {
    const entry = this.pluginStatus.get(who.name);
    if (entry?.status === 'failed') return;
    this.pluginStatus.set(who.name, { source: entry?.source ?? who.name, status: 'failed', error: String((err as Error)?.message ?? err) });
    for (const undo of who.disposers?.splice(0) ?? []) {
      try {
        undo();
      } catch {
        // already gone
      }
    }
    who.abort?.abort(new Error(`plugin ${who.name} failed`));
  }

  /** The plugins the site file enables: those it lists (not `enabled: false`) and built-ins that run unless turned off. */
  private enabledPlugins(): { def: PluginDefinition<any>; entry: PluginConfig }[] { // eslint-disable-line @typescript-eslint/no-explicit-any
    const out: { def: PluginDefinition<any>; entry: PluginConfig }[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const entry of this.config.plugins) {
      const def = pluginFor(entry, this.catalog);
      if (!def) continue; // refused: reported when the hub started
      if (entry.enabled === false) {
        this.pluginStatus.set(def.id, { source: sourceOf(entry), status: 'disabled' });
        continue;
      }
      out.push({ def, entry });
    }
    for (const def of this.catalog.plugins) {
      if (def.enabledByDefault && !this.config.plugins.some((e) => pluginFor(e, this.catalog) === def)) out.push({ def, entry: { id: def.id } });
    }
    return out;
  }

  /** A plugin's routes as a route module under its prefix, each handler run as the plugin's code. */
  private pluginRoutes(run: PluginRun): RouteModule {
    const routes: { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; path: string; level: RouteAccessLevel; handler: Parameters<PluginRoutes['get']>[2] }[] = [];
    const closers: (() => void | Promise<void>)[] = [];
    const add = (method: (typeof routes)[number]['method']) => (path: string, level: RouteAccessLevel, handler: Parameters<PluginRoutes['get']>[2]) => {
      if (!ROUTE_ACCESS.includes(level)) throw new Error(`route ${method} ${path} must declare its access: 'public', 'read' or 'write' (got ${JSON.stringify(level)})`);
      if (typeof path !== 'string' || !path.startsWith('/')) throw new Error(`route path ${JSON.stringify(path)} must start with /`);
      routes.push({ method, path, level, handler });
    };
    const registrar: PluginRoutes = { get: add('GET'), post: add('POST'), put: add('PUT'), delete: add('DELETE'), onClose: (fn) => void closers.push(fn) };
    owner.run(run.who, () => run.def.routes!(registrar, run.ctx, run.config));
    const log = run.ctx.log;
    const module: RouteModule = (app) => {
      for (const r of routes) {
        app.route({
          method: r.method,
          url: r.path,
          ...access(r.level),
          handler: (req, reply) =>
            owner.run(run.who, async () => {
              try {
                return await r.handler(req as never, reply as never);
              } catch (err) {
                if (err instanceof ApiError) throw err;
                log.error({ err, url: req.url }, `plugin ${run.def.id}: route ${r.method} ${r.path} failed`);
                throw new ApiError(500, 'plugin_error', `plugin ${run.def.id} could not answer; the hub log has the details`);
              }
            }),
        });
      }
      for (const close of closers) app.addHook('preClose', async () => close());
    };
    module.prefix = run.def.mountAtRoot ? '' : `/api/v1/plugins/${run.def.id}`;
    return module;
  }

  private parts: HubPart[] = [];
  private transports?: HubTransports;
  private stopTelemetry?: () => void;
  private lock?: StorageLock;
  private readonly loadOptions: Parameters<typeof parseConfig>[2];
  /** The site file the hub was started from (discovery's Add writes to it). */
  private readonly configFile?: string;
  discovery = new Discovery(() => false);
  private stopModbusDiscovery?: () => void;

  /**
   * Takes the storage lock, opens the stores, binds every listener (HTTP, OCPP, embedded MQTT) and
   * only then starts the adapters, so a hub that cannot have its site to itself never talks to a
   * device. Any failure on the way stops whatever was started and rejects.
   */
  async start(): Promise<void> {
    try {
      await this.startAll();
    } catch (err) {
      // a refusal the message explains in full (storage locked) needs no stack trace
      this.log.error(err instanceof StorageLockedError ? {} : { err }, `homeflex could not start: ${(err as Error).message}`);
      await this.stop();
      throw err;
    }
  }

  private openStorageDir() {
    const dir = this.config.storage.dir;
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077) {
      // meter data and the state (limits, sessions) are nobody else's business on a shared machine
      try {
        chmodSync(dir, DIR_MODE);
        this.log.info({ dir, was: mode.toString(8) }, 'storage directory made private to the hub user (0700)');
      } catch (err) {
        this.log.warn({ dir, err }, 'could not make the storage directory private (0700)');
      }
    }
    this.lock = StorageLock.acquire(dir);
  }

  private async startAll(): Promise<void> {
    this.openStorageDir();
    const state = await StateStore.open(this.config.storage.dir, { log: this.log.child({ component: 'state' }) });
    this.services = {
      config: this.config,
      site: this.site,
      clock: this.clock,
      bus: this.bus,
      log: this.log,
      state,
      registry: this.registry,
      adapterStatus: new Map(),
      startedAt: Date.now(),
      catalog: this.catalog,
    };
    process.on('uncaughtException', this.onProcessError);
    process.on('unhandledRejection', this.onProcessError);
    const discovery = (this.discovery = new Discovery(configuredMatcher(this.config, this.catalog.adapters), () => this.clock.now()));
    const transports = (this.transports = createTransports({ config: this.config, log: this.log.child({ component: 'transport' }), clock: this.clock, catalog: this.catalog, onDiscovered: (f) => discovery.report(f) }));
    this.services.pluginStatus = this.pluginStatus;
    for (const make of PARTS) this.parts.push(await make(this.services));

    // plugins refused at load (SDK range, not found): said where, and the hub goes on without them
    for (const r of this.catalog.refused ?? []) {
      this.log.error({ plugin: r.spec }, `plugin refused: ${formatProblem(r.problem)}`);
      this.pluginStatus.set(r.spec, { source: `${r.key} ${r.spec}`, status: 'failed', error: formatProblem(r.problem) });
    }
    // each enabled plugin gets its context now, and adds its routes before the hub listens
    const runs: PluginRun[] = [];
    const pluginRoutes: RouteModule[] = [];
    for (const { def, entry } of this.enabledPlugins()) {
      const who: Owner = { kind: 'plugin', name: def.id, ids: [], disposers: [], abort: new AbortController() };
      const { clock, bus } = this.guarded(who);
      const { id: _id, package: _p, path: _path, enabled: _e, ...config } = entry;
      const metering = this.services.metering;
      const ctx: PluginContext = {
        log: this.log.child({ plugin: def.id }),
        bus,
        clock,
        site: this.site,
        store: state.kv(`plugin:${def.id}`),
        transports,
        hub: createHubView(this.services, bus, this.pluginStatus),
        ...(metering ? { meters: { ingestIntervals: (records: unknown) => metering.ingestIntervals(records) } } : {}),
      };
      const run: PluginRun = { def, config, who, ctx };
      this.pluginStatus.set(def.id, { source: sourceOf(entry), status: 'starting' });
      runs.push(run);
      if (!def.routes) continue;
      try {
        pluginRoutes.push(this.pluginRoutes(run));
      } catch (err) {
        const where = this.catalog.external?.find((e) => e.def === def)?.where;
        const message = `plugin ${def.id}${where ? ` (${where})` : ''} failed to add its routes: ${(err as Error)?.message ?? String(err)}`;
        ctx.log.error({ err }, message);
        this.pluginFailed(who, new Error(message, { cause: err }));
      }
    }

    // every listener is bound before any adapter runs: a port in use stops the start here
    const discoveryHost = { configFile: this.configFile, check: (text: string, file: string) => parseConfig(text, file, this.loadOptions), addDevice: (c: HubConfig['devices'][number]) => this.addDevice(c) };
    const routes: RouteModule[] = [coreRoutes, discoveryRoutes(discovery, discoveryHost), ...this.parts.flatMap((p) => (p.routes ? [p.routes] : [])), ...pluginRoutes];
    this.http = await createHttpServer(this.services, routes);
    try {
      await this.http.listen({ host: this.config.http.host, port: this.config.http.port });
    } catch (err) {
      throw new Error(`HTTP cannot listen on ${this.config.http.host}:${this.config.http.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    await transports.listen();
    // devices announcing themselves on the site's broker (Tasmota, Shelly, Zigbee2MQTT) are listed as found
    if (this.config.connections.mqtt) watchAnnouncements(transports.mqtt(), (f) => discovery.report(f));

    for (const deviceConfig of this.config.devices) await this.startDevice(deviceConfig, transports, state);
    // SunSpec devices on the site's Modbus connections that no device uses are listed as found
    this.stopModbusDiscovery = watchModbusUnits({ config: this.config, adapters: this.catalog.adapters, modbus: (id) => transports.modbus(id), clock: this.clock, log: this.log.child({ component: 'discovery' }), report: (f) => discovery.report(f) });
    // device states and meter readings under homeflex/<site>/telemetry/… (docs/telemetry.md)
    if (this.config.connections.mqtt?.telemetry) this.stopTelemetry = startTelemetry(transports.mqtt(), this.services);

    for (const run of runs) {
      const { def, who, ctx } = run;
      if (this.pluginStatus.get(def.id)?.status === 'failed') continue;
      try {
        await owner.run(who, async () => {
          const inst = (await def.create?.(ctx, run.config)) ?? {};
          this.running.push({ kind: 'plugin', name: def.id, ids: [], instance: inst, abort: who.abort! });
          await withTimeout(inst.start?.(who.abort!.signal) ?? Promise.resolve(), 10_000, `plugin ${def.id} start`);
        });
        if (this.pluginStatus.get(def.id)?.status === 'starting') this.pluginStatus.set(def.id, { source: this.pluginStatus.get(def.id)!.source, status: 'running' });
      } catch (err) {
        const where = this.catalog.external?.find((e) => e.def === def)?.where;
        const message = `plugin ${def.id}${where ? ` (${where})` : ''} failed to start: ${(err as Error)?.message ?? String(err)}`;
        ctx.log.error({ err }, message);
        this.pluginFailed(who, new Error(message, { cause: err }));
      }
    }

    for (const part of this.parts) await part.start?.();
    this.log.info({ url: this.url, devices: this.registry.all().length }, `homeflex is running for site ${this.site.id}`);
  }

  /** Creates and starts the adapter of one device of the site file (at start, or added at run time). */
  private async startDevice(deviceConfig: HubConfig['devices'][number], transports: HubTransports, state: StateStore): Promise<void> {
    const def = this.catalog.adapters.find((a) => a.id === deviceConfig.adapter)!;
    const log = this.log.child({ adapter: def.id, device: deviceConfig.id });
    const ids = [deviceConfig.id];
    const markFailed = (err: unknown) => {
      log.error({ err }, `adapter ${def.id} failed for device ${deviceConfig.id}`);
      for (const id of ids) this.services.adapterStatus.set(id, { adapter: def.id, status: 'failed', error: String((err as Error)?.message ?? err) });
    };
    this.services.adapterStatus.set(deviceConfig.id, { adapter: def.id, status: 'starting' });
    let instance: AdapterInstance;
    try {
      const who = { kind: 'adapter', name: def.id, ids };
      const { clock, bus } = this.guarded(who);
      instance = await owner.run(who, () =>
        def.create({ log, bus, transports, store: state.kv(`device:${deviceConfig.id}`), clock, site: this.site }, deviceConfig),
      );
    } catch (err) {
      markFailed(err);
      return;
    }
    for (const device of instance.devices) {
      device.circuit ??= deviceConfig.circuit;
      this.register(device, deviceConfig);
      if (!ids.includes(device.id)) ids.push(device.id);
    }
    const abort = new AbortController();
    this.running.push({ kind: 'adapter', name: def.id, ids, instance, abort });
    try {
      await owner.run({ kind: 'adapter', name: def.id, ids }, () => withTimeout(instance.start(abort.signal), 10_000, `adapter ${def.id} start`));
      for (const id of ids) this.services.adapterStatus.set(id, { adapter: def.id, status: 'running' });
    } catch (err) {
      markFailed(err);
      for (const d of instance.devices) {
        d.available = false;
        d.error = String((err as Error)?.message ?? err);
      }
    }
  }

  /**
   * Adds a device to the running hub (discovery's Add, after the site file was written and checked):
   * its adapter is created and started as at start-up, without a restart.
   */
  async addDevice(deviceConfig: HubConfig['devices'][number]): Promise<void> {
    if (!this.transports || !this.services) throw new Error('the hub is not running');
    if (this.config.devices.some((d) => d.id === deviceConfig.id)) throw new Error(`a device with id "${deviceConfig.id}" exists already`);
    this.config.devices.push(deviceConfig);
    await this.startDevice(deviceConfig, this.transports, this.services.state);
  }

  private register(device: Device, config: Record<string, unknown>) {
    this.registry.add(device, config);
    const now = new Date(this.clock.now()).toISOString();
    void this.services.state.update((s) => {
      const seen = s.devices[device.id];
      s.devices[device.id] = { adapter: device.adapter, name: device.name, first_seen: seen?.first_seen ?? now, last_seen: now };
    });
  }

  get url(): string {
    const addr = this.http?.server.address();
    if (!addr || typeof addr === 'string') return '';
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `${this.config.http.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  }

  /** Stops HTTP, then plugins and adapters in reverse start order, each within a bounded time. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopModbusDiscovery?.();
      // adapters' memory saved while stopping goes into the one write at the end (waiting in turn made 100 sockets miss the stop budget)
      this.services?.state.beginStop();
      this.stopTelemetry?.();
      await this.http?.close().catch((err: unknown) => this.log.warn({ err }, 'HTTP server did not close cleanly'));
      for (const part of [...this.parts].reverse()) {
        await withTimeout(part.stop?.() ?? Promise.resolve(), this.stopTimeoutMs, `${part.name} stop`).catch((err: unknown) =>
          this.log.warn({ err, part: part.name }, `${part.name} did not stop cleanly`),
        );
      }
      for (const r of [...this.running].reverse()) {
        r.abort.abort(new Error('hub stopping'));
        try {
          await withTimeout(r.instance.stop?.() ?? Promise.resolve(), this.stopTimeoutMs, `${r.kind} ${r.name} stop`);
        } catch (err) {
          this.log.warn({ err, [r.kind]: r.name }, `${r.kind} ${r.name} did not stop cleanly`);
        }
        for (const id of r.ids) this.services.adapterStatus.set(id, { adapter: r.name, status: 'stopped' });
        if (r.kind === 'plugin' && this.pluginStatus.get(r.name)?.status === 'running') this.pluginStatus.set(r.name, { ...this.pluginStatus.get(r.name)!, status: 'stopped' });
      }
      await this.transports?.stop();
      await this.services?.state.flush().catch((err: unknown) => this.log.error({ err }, 'could not write the state file'));
      process.off('uncaughtException', this.onProcessError);
      process.off('unhandledRejection', this.onProcessError);
      this.lock?.release();
      this.log.info('homeflex stopped');
    })();
    return this.stopping;
  }
}
