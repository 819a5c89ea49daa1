#!/usr/bin/env node
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { builtinCatalog } from './core/catalog.js';
import { hubChecks } from './core/config/checks.js';
import { ConfigError, composeSchema, formatProblem, loadConfigFile, parseConfig, readSiteFile } from './core/config/load.js';
import { Hub } from './core/host.js';
import { loadSitePlugins } from './core/plugins/external.js';
import type { HubConfig } from './core/config/schema.js';
import type { Catalog } from './core/config/compose.js';
import { scaledClock, systemClock } from './core/clock.js';
import { carsHomeAtStart } from '../plugins/demo/index.js';
import { StoreError } from './core/store/state.js';
import { storeCommand } from './core/store/cli.js';
import { migrateStoreCommand } from './metering/migrate.js';
import { backupCommand, restoreCommand } from './core/store/backup-cli.js';
import { reportCommand } from './metering/report.js';
import type { BillConfig } from './tariff/bill-config.js';
import { openapiCommand } from './core/openapi.js';
import { forecastCheckCommand } from './forecast/cli.js';
import { fitThermalCommand } from './core/thermal-fit-cli.js';
import { planCommand } from './control/cli.js';
import { backtestCommand } from './backtest/cli.js';
import { installServiceCommand } from './core/service/unit.js';
import { initCommand } from './core/service/init.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The package root, whether running from src/ (tsx, tests) or dist/src/ (built). */
export const packageRoot = existsSync(join(here, '..', 'package.json')) ? resolve(here, '..') : resolve(here, '..', '..');
export const demoConfig = join(packageRoot, 'config', 'demo.yaml');

const USAGE = `homeflex — self-hosted home-energy hub

Usage:
  homeflex start [--config FILE] [--speed N] [--port N] [--ocpp-port N] [--mqtt-port N] [--modbus-port N] [--goe-port N]
                                        run the hub (the demo on simulated devices without --config);
                                        --speed runs the clock N times faster (simulations); the port
                                        flags move the HTTP, OCPP, embedded MQTT and simulated Modbus listeners
                                        (--modbus-port N moves the simulated P1 meter to N+1)
  homeflex check-config FILE            validate a site file: every error with file:line:col, exit 1 on errors
  homeflex schema [--out FILE] [--config FILE]  write the JSON Schema of the site file (for editor autocompletion; with --config, its plugins' keys too)
  homeflex openapi [--out FILE]         write the OpenAPI document of the HTTP API (docs/openapi.json)
  homeflex plan [--config FILE]         print the current site plan
  homeflex store check [--config FILE]  list damaged meter data (file, offset, time range, records); exit 1 if any
  homeflex store repair [--config FILE] move damaged ranges aside (nothing is deleted); both refuse while a hub runs
  homeflex migrate-store --to postgres|files [--url URL] [--config FILE]
                                        move the meter records between the files and PostgreSQL (docs/postgres.md)
  homeflex backup --out FILE [--config FILE]
                                        archive the state and meter records (asks the running hub if one is)
  homeflex restore FILE [--config FILE | --dir DIR] [--replace]
                                        restore a backup into the storage directory (the hub stopped)
  homeflex report --from --to --by day|week|month|year [--device ID] [--csv] [--config FILE | --url URL]
  homeflex report --bill --month YYYY-MM [--csv] [--config FILE | --url URL]
                                        energy, cost and savings per period, asked of the running hub
  homeflex forecast-check --from --to [--json] [--config FILE | --url URL]
                                        PV and base-load forecast errors by lead time (MAE, bias), asked of the running hub
  homeflex backtest --prices FILE ...   replay a period with rolling planning (see docs/backtest.md)
  homeflex init [--out site.yaml] [--yes] [--timezone Z --import 0.30|DE-LU --export R ...]
                                        ask the few questions of a first site and write a commented site file
  homeflex install-service --config FILE [--user homeflex] [--out FILE] [--memory-max 1G]
                                        write a hardened systemd unit that runs the hub as its own user
  homeflex fit-thermal --history FILE.csv --mode heat|cool [--cop N] [--max-electric-w W]
                                        learn a room's R, C and gains from its thermostat history
`;

/** `start` flags that move a listener, so the demo (or any site) runs beside something on its ports. */
const PORT_FLAGS = ['port', 'ocpp-port', 'modbus-port', 'mqtt-port', 'goe-port'] as const;
type PortFlags = Partial<Record<(typeof PORT_FLAGS)[number], number>>;

class PortFlagError extends Error {}

/**
 * `--port` (HTTP), `--ocpp-port` (the OCPP central system), `--mqtt-port` (the embedded broker),
 * `--modbus-port` (the simulated SunSpec inverter, and the Modbus TCP connections on this machine
 * that read it) and `--goe-port` (the simulated go-e Charger, and the goe devices that read it) over
 * the site file's values.
 */
export function applyPortFlags(config: HubConfig, ports: PortFlags): void {
  if (ports.port !== undefined) config.http.port = ports.port;
  if (ports['ocpp-port'] !== undefined) {
    if (!config.connections.ocpp) throw new PortFlagError('--ocpp-port: the site file has no connections.ocpp');
    config.connections.ocpp.port = ports['ocpp-port'];
  }
  if (ports['mqtt-port'] !== undefined) {
    if (!config.connections.mqtt?.embedded) throw new PortFlagError('--mqtt-port: the site file has no embedded broker (connections.mqtt.embedded); an external broker is set by its url');
    config.connections.mqtt.embedded.port = ports['mqtt-port'];
  }
  const modbusPort = ports['modbus-port'];
  if (modbusPort !== undefined) {
    const sims = config.devices.filter((d) => d.adapter === 'sunspec_sim') as { port?: number; host?: string }[];
    if (!sims.length) throw new PortFlagError('--modbus-port moves the simulated inverter (a sunspec_sim device), and the site file has none');
    if (modbusPort === 0) throw new PortFlagError('--modbus-port must be a fixed port: the Modbus connection dials it');
    for (const sim of sims) {
      const old = sim.port ?? 1502;
      sim.port = modbusPort;
      for (const m of config.connections.modbus) {
        if (m.tcp && m.tcp.port === old && ['127.0.0.1', 'localhost', '::1', sim.host ?? '127.0.0.1'].includes(m.tcp.host)) m.tcp.port = modbusPort;
      }
    }
    // the simulated P1 meter moves along, to the next port, with the dsmr devices that read it
    for (const p1 of config.devices.filter((d) => d.adapter === 'sim_p1') as { port?: number }[]) {
      const old = p1.port ?? 2323;
      p1.port = modbusPort + 1;
      for (const d of config.devices as { adapter: string; tcp?: { host: string; port: number } }[]) {
        if (d.adapter === 'dsmr' && d.tcp?.port === old && ['127.0.0.1', 'localhost', '::1'].includes(d.tcp.host)) d.tcp.port = modbusPort + 1;
      }
    }
  }
  const goePort = ports['goe-port'];
  if (goePort !== undefined) {
    const sims = config.devices.filter((d) => d.adapter === 'goe_sim') as { port?: number }[];
    if (!sims.length) throw new PortFlagError('--goe-port moves the simulated go-e Charger (a goe_sim device), and the site file has none');
    if (goePort === 0) throw new PortFlagError('--goe-port must be a fixed port: the goe device dials it');
    for (const sim of sims) {
      const old = sim.port ?? 8091;
      sim.port = goePort;
      // the goe devices that read it on this machine follow
      for (const d of config.devices as { adapter: string; host?: string }[]) {
        if (d.adapter === 'goe' && typeof d.host === 'string') d.host = d.host.replace(new RegExp(`^(https?://)?(127\\.0\\.0\\.1|localhost):${old}(?=/|$)`), `$1$2:${goePort}`);
      }
    }
  }
}

interface SiteCommandIo {
  out(text: string): void;
  err(text: string): void;
  defaultConfig: string;
  loadConfig(file: string): HubConfig;
}

/** Runs a command that reads the site file, printing its configuration errors as the other commands do. */
async function withSiteConfig(command: (argv: string[], io: SiteCommandIo) => Promise<number>, argv: string[]): Promise<number> {
  // the site files the command may read (arguments naming YAML files, or the demo) have their
  // plugins named by package or path loaded first, so their adapters and keys are known
  const catalogs = new Map<string, Catalog>();
  for (const file of [demoConfig, ...argv.filter((a) => /\.ya?ml$/i.test(a) && existsSync(a))]) {
    try {
      catalogs.set(resolve(file), (await loadSitePlugins(readFileSync(file, 'utf8'), file, builtinCatalog)).catalog);
    } catch {
      // unreadable: loading it below says so
    }
  }
  try {
    return await command(argv, {
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
      defaultConfig: demoConfig,
      loadConfig: (file) => {
        const catalog = catalogs.get(resolve(file)) ?? builtinCatalog;
        return loadConfigFile(file, { catalog, checks: hubChecks(catalog) });
      },
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
}

/** Subcommands the later parts of the hub add (plan, report, backtest). */
export const commands: Record<string, (argv: string[]) => Promise<number>> = {
  async start(argv) {
    const portFlags = Object.fromEntries(PORT_FLAGS.map((f) => [f, { type: 'string' as const }]));
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, speed: { type: 'string' }, ...portFlags } });
    const configFile = values.config ?? demoConfig;
    const speed = values.speed === undefined ? undefined : Number(values.speed);
    if (speed !== undefined && !(speed > 0)) {
      process.stderr.write(`--speed must be a number above 0 (got ${values.speed})\n`);
      return 2;
    }
    const ports: PortFlags = {};
    for (const flag of PORT_FLAGS) {
      const text = (values as Record<string, string | undefined>)[flag];
      if (text === undefined) continue;
      const port = Number(text);
      if (!/^\d+$/.test(text) || port > 65535) {
        process.stderr.write(`--${flag} must be a port number from 0 to 65535 (got ${text})\n`);
        return 2;
      }
      ports[flag] = port;
    }
    let hub: Hub;
    try {
      const clock = speed ? scaledClock(speed) : systemClock;
      hub = await Hub.load({
        configFile,
        clock,
        override: (config) => {
          applyPortFlags(config, ports);
          carsHomeAtStart(config, clock.now(), config.site.timezone);
        },
      });
    } catch (err) {
      if (err instanceof ConfigError || err instanceof StoreError || err instanceof PortFlagError) {
        process.stderr.write(`${err.message}\n`);
        return 1;
      }
      throw err;
    }
    // signals are handled from the first moment: a stop asked for while the hub is still starting
    // (HTTP answers before the adapters are up) waits for the start to settle, then stops it all
    let starting: Promise<void> = Promise.resolve();
    const stopped = new Promise<void>((resolveStop) => {
      let signalled = false;
      const onSignal = (sig: string) => {
        if (signalled) return process.exit(130); // a second signal: stop waiting
        signalled = true;
        hub.log.info({ signal: sig }, 'stopping');
        const hard = setTimeout(() => {
          hub.log.error('stop took longer than 4.5 s; exiting anyway');
          process.exit(1);
        }, 4500);
        hard.unref();
        starting.catch(() => undefined).then(() => hub.stop()).then(resolveStop, resolveStop);
      };
      process.once('SIGINT', () => onSignal('SIGINT'));
      process.once('SIGTERM', () => onSignal('SIGTERM'));
    });
    try {
      starting = hub.start();
      await starting;
    } catch (err) {
      // the hub stopped what it had started; nothing else may keep this process (and its devices) going
      process.stderr.write(`homeflex start: ${(err as Error).message}\n`);
      process.exit(1);
    }
    await stopped;
    return 0;
  },

  async 'check-config'(argv) {
    const file = argv[0];
    if (!file) {
      process.stderr.write('usage: homeflex check-config FILE\n');
      return 2;
    }
    try {
      const text = readSiteFile(file);
      // plugins named by package or path are found and checked first: their keys join the schema
      const site = await loadSitePlugins(text, file, builtinCatalog);
      let config: HubConfig | undefined;
      let problems = site.refused.map((r) => r.problem);
      try {
        config = parseConfig(text, file, { catalog: site.catalog, checks: hubChecks(site.catalog) });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems = [...problems, ...err.problems];
      }
      if (problems.length || !config) throw new ConfigError(problems.sort((a, b) => a.line - b.line || a.col - b.col));
      const byAdapter = new Map<string, number>();
      for (const d of config.devices) byAdapter.set(d.adapter, (byAdapter.get(d.adapter) ?? 0) + 1);
      const pluginName = (p: HubConfig['plugins'][number]) => {
        const ext = site.loaded.find((e) => (e.key === 'package' ? p.package : p.path) === e.spec && (p.package ?? p.path) !== undefined);
        const name = ext ? `${ext.def.id} (${ext.name}@${ext.version}, SDK ${ext.range})` : String(p.id);
        return p.enabled === false ? `${name} [disabled]` : name;
      };
      process.stdout.write(
        `${file}: OK\n` +
          `  site ${config.site.id} (${config.site.name}), ${config.site.timezone}, ${config.site.currency}\n` +
          `  http ${config.http.host}:${config.http.port}${config.http.token ? ' with token' : ''}\n` +
          `  tariffs: import ${config.tariffs.import?.type ?? 'none'}, export ${config.tariffs.export?.type ?? 'none'}${billSummary(config.tariffs)}\n` +
          `  devices: ${config.devices.length} (${[...byAdapter].map(([a, n]) => `${n} ${a}`).join(', ') || 'none'})\n` +
          `  plugins: ${config.plugins.map(pluginName).join(', ') || 'none'}\n`,
      );
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) {
        for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
        process.stderr.write(`${err.problems.length} error${err.problems.length === 1 ? '' : 's'}\n`);
        return 1;
      }
      throw err;
    }
  },

  async schema(argv) {
    const { values } = parseArgs({ args: argv, options: { out: { type: 'string', short: 'o' }, config: { type: 'string', short: 'c' } } });
    // with --config, the plugins that site file names by package or path add their keys
    let catalog = builtinCatalog;
    if (values.config) {
      const site = await loadSitePlugins(readFileSync(values.config, 'utf8'), values.config, builtinCatalog);
      for (const r of site.refused) process.stderr.write(`${formatProblem(r.problem)}\n`);
      catalog = site.catalog;
    }
    const text = JSON.stringify(composeSchema(catalog), null, 2) + '\n';
    if (values.out) {
      writeFileSync(values.out, text);
      process.stderr.write(`wrote ${values.out}\n`);
    } else process.stdout.write(text);
    return 0;
  },

  openapi: (argv) => openapiCommand(argv, packageRoot),

  report: (argv) => withSiteConfig(reportCommand, argv),

  plan: (argv) => withSiteConfig(planCommand, argv),

  'forecast-check': (argv) => withSiteConfig(forecastCheckCommand, argv),
  store: (argv) => withSiteConfig(storeCommand, argv),
  'migrate-store': (argv) => withSiteConfig(migrateStoreCommand, argv),
  backup: (argv) => withSiteConfig(backupCommand, argv),
  restore: (argv) => withSiteConfig(restoreCommand, argv),

  backtest: (argv) => backtestCommand(argv),

  'fit-thermal': (argv) => fitThermalCommand(argv),

  init: async (argv) => {
    try {
      return await initCommand(argv, {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
        input: process.stdin,
        check: (text, file, env) => parseConfig(text, file, { catalog: builtinCatalog, env, checks: hubChecks(builtinCatalog) }),
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`the site file init made does not pass check-config (a bug in init; please report it):\n${err.problems.map(formatProblem).join('\n')}\n`);
      return 1;
    }
  },

  'install-service': (argv) =>
    withSiteConfig(
      (args, io) =>
        installServiceCommand(args, {
          out: io.out,
          err: io.err,
          loadConfig: (file, env) => loadConfigFile(file, { catalog: builtinCatalog, env, checks: hubChecks(builtinCatalog) }),
          cliFile: fileURLToPath(import.meta.url),
        }),
      argv,
    ),
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  const run = commands[cmd];
  if (!run) {
    process.stderr.write(`unknown command "${cmd}" (known: ${Object.keys(commands).join(', ')})\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    process.stderr.write(`homeflex ${cmd}: ${(err as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

/** The bill parts of a site file in a few words for check-config ('' without any). */
function billSummary(t: BillConfig): string {
  const parts = [
    t.vat !== undefined ? `VAT ${t.vat} %` : '',
    t.grid_fees?.length ? `grid fees (${t.grid_fees.map((g) => g.operator ?? 'unnamed').join(', ')})` : '',
    t.levies?.length ? `${t.levies.length} lev${t.levies.length === 1 ? 'y' : 'ies'}` : '',
    t.standing_charges?.length ? `${t.standing_charges.length} standing charge${t.standing_charges.length === 1 ? '' : 's'}` : '',
    t.capacity_charge ? `capacity charge ${t.capacity_charge.type}` : '',
    t.export_rules ? 'export rules' : '',
  ].filter(Boolean);
  return parts.length ? `; bill: ${parts.join(', ')}` : '';
}
