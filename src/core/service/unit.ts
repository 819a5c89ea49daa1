import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { HubConfig } from '../config/schema.js';

/** What a systemd unit for the hub is made from. */
export interface UnitOptions {
  /** Absolute path of the site file. */
  configFile: string;
  /** Absolute storage directory (the only place the service may write). */
  storageDir: string;
  /** Absolute folder of the nightly backups (storage.backup.dir), also writable. */
  backupDir?: string;
  user: string;
  group: string;
  /** The node binary and the arguments that run homeflex's CLI (`dist/src/cli.js`, or tsx + src/cli.ts in a checkout). */
  node: string;
  entry: string[];
  workingDirectory: string;
  memoryMax: string;
  /** Optional file of `VAR=value` lines for the site file's `${VAR}` secrets. */
  environmentFile: string;
}

/** systemd quotes: an argument with spaces or quotes in double quotes, backslashes escaped. */
const q = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);

/**
 * The unit text: a dedicated user, restart on failure, and a hardened sandbox in which the whole
 * file system is read-only except the storage directory.
 */
export function serviceUnit(o: UnitOptions): string {
  const exec = [o.node, '--max-semi-space-size=1', '--optimize-for-size', '--v8-pool-size=1', ...o.entry, 'start', '--config', o.configFile].map(q).join(' ');
  return `# homeflex hub, written by \`homeflex install-service\`. Check with: systemd-analyze verify <this file>
[Unit]
Description=homeflex home-energy hub (${o.configFile})
Documentation=file://${o.workingDirectory}/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${o.user}
Group=${o.group}
WorkingDirectory=${o.workingDirectory}
# secrets for \${VAR} in the site file (optional file: VAR=value per line, readable by root only)
EnvironmentFile=-${o.environmentFile}
Environment=NODE_ENV=production MALLOC_ARENA_MAX=2
ExecStart=${exec}
Restart=on-failure
RestartSec=5
# the hub stops its adapters within a few seconds and hands batteries back to their own mode
TimeoutStopSec=20
KillMode=mixed
SyslogIdentifier=homeflex
# hardening: nothing but the storage directory is writable; no privilege can be gained
ProtectSystem=strict
ReadWritePaths=${o.storageDir}${o.backupDir ? ` ${o.backupDir}` : ''}
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=no
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0077
MemoryMax=${o.memoryMax}

[Install]
WantedBy=multi-user.target
`;
}

/** How this very process runs the CLI, so the unit runs the same code: built (dist) or a checkout with tsx. */
export function cliEntry(cliFile: string): { entry: string[]; workingDirectory: string } {
  const root = existsSync(join(dirname(cliFile), '..', 'package.json')) ? resolve(dirname(cliFile), '..') : resolve(dirname(cliFile), '..', '..');
  if (cliFile.endsWith('.ts')) return { entry: ['--import', 'tsx', cliFile], workingDirectory: root };
  return { entry: [cliFile], workingDirectory: root };
}

const SYSTEM_UNIT_DIR = '/etc/systemd/system';

export interface InstallIo {
  out(text: string): void;
  err(text: string): void;
  /** Loads and checks the site file as check-config does, with `env` for its `${VAR}`s. */
  loadConfig(file: string, env: NodeJS.ProcessEnv): HubConfig;
  cliFile: string;
}

/** `VAR=value` lines of a systemd environment file (comments and blank lines skipped; quotes removed). */
export function readEnvFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    env[m[1]] = m[2].replace(/^"(.*)"$|^'(.*)'$/, '$1$2');
  }
  return env;
}

/** The secrets file `homeflex init` writes beside the site file, else the system's usual place. */
function defaultEnvFile(configFile: string): string {
  const beside = join(dirname(configFile), `${basename(configFile).replace(/\.ya?ml$/, '')}.env`);
  return existsSync(beside) ? beside : '/etc/homeflex/env';
}

const userExists = (user: string) => spawnSync('id', ['-u', user], { stdio: 'ignore' }).status === 0;

function idsOf(user: string): { uid: number; gid: number } | undefined {
  const u = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (u.status !== 0 || g.status !== 0) return undefined;
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * `homeflex install-service`: writes the unit (to /etc/systemd/system/homeflex.service, or --out),
 * creates the dedicated system user when it does not exist (unless --no-create-user), and gives it
 * the storage directory. It does not start anything: it prints the systemctl commands.
 */
export async function installServiceCommand(argv: string[], io: InstallIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      user: { type: 'string', default: 'homeflex' },
      out: { type: 'string' },
      name: { type: 'string', default: 'homeflex' },
      'memory-max': { type: 'string', default: '1G' },
      'environment-file': { type: 'string' },
      'no-create-user': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  if (!values.config) {
    io.err('usage: homeflex install-service --config SITE.yaml [--user homeflex] [--out FILE | --name homeflex] [--memory-max 1G] [--environment-file FILE] [--no-create-user] [--dry-run]\n');
    return 2;
  }
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(values.user!)) {
    io.err(`--user "${values.user}" is not a valid system user name (lower-case letters, digits, _ and -, at most 32)\n`);
    return 2;
  }
  if (!/^\d+[KMGT]?$|^infinity$/.test(values['memory-max']!)) {
    io.err(`--memory-max "${values['memory-max']}" is not a size systemd accepts (e.g. 512M, 1G)\n`);
    return 2;
  }
  const configFile = resolve(values.config);
  const environmentFile = resolve(values['environment-file'] ?? defaultEnvFile(configFile));
  // a site file with errors is refused here, with its located errors; its secrets come from the environment file
  const config = io.loadConfig(configFile, { ...process.env, ...readEnvFile(environmentFile) });
  const storageDir = resolve(dirname(configFile), config.storage.dir);
  const { entry, workingDirectory } = cliEntry(io.cliFile);
  const unit = serviceUnit({
    configFile,
    storageDir,
    backupDir: config.storage.backup ? resolve(dirname(configFile), config.storage.backup.dir) : undefined,
    user: values.user!,
    group: values.user!,
    node: process.execPath,
    entry,
    workingDirectory,
    memoryMax: values['memory-max']!,
    environmentFile,
  });
  if (values['dry-run']) {
    io.out(unit);
    return 0;
  }
  const out = resolve(values.out ?? join(SYSTEM_UNIT_DIR, `${values.name}.service`));
  if (!userExists(values.user!)) {
    if (values['no-create-user']) {
      io.err(`user ${values.user} does not exist (create it, or leave out --no-create-user)\n`);
      return 1;
    }
    const r = spawnSync('useradd', ['--system', '--user-group', '--home-dir', storageDir, '--no-create-home', '--shell', '/usr/sbin/nologin', values.user!], { encoding: 'utf8' });
    if (r.status !== 0) {
      io.err(`could not create the system user ${values.user}: ${(r.stderr || r.error?.message || '').trim()} (run as root, or create it and pass --no-create-user)\n`);
      return 1;
    }
    io.out(`created system user ${values.user}\n`);
  }
  mkdirSync(storageDir, { recursive: true });
  const ids = idsOf(values.user!);
  if (ids) {
    try {
      chownSync(storageDir, ids.uid, ids.gid);
      chmodSync(storageDir, 0o700);
    } catch (err) {
      io.err(`could not give ${storageDir} to ${values.user}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, unit, { mode: 0o644 });
  io.out(
    `wrote ${out} (runs as ${values.user}, writes only ${storageDir})\n` +
      `check it:  systemd-analyze verify ${out}\n` +
      (out.startsWith(SYSTEM_UNIT_DIR) ? `start it:  systemctl daemon-reload && systemctl enable --now ${values.name}\nlogs:      journalctl -u ${values.name} -f\n` : ''),
  );
  return 0;
}
