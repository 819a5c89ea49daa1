import { spawnSync } from 'node:child_process';
import { accessSync, appendFileSync, constants, existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'vitest';

/**
 * System programs that some tests use as real protocol peers (Debian packages that `npm ci` cannot
 * install). On a machine without one, the tests that need it are skipped with one line naming the
 * peer and how to install it, and the run ends with a summary (test/peers/global-setup.ts).
 * `.ci/run` installs every peer and sets HOMEFLEX_REQUIRE_PEERS=1, which turns a missing peer into
 * a failing test, so CI never passes with interop tests silently skipped.
 */
export type PeerName = 'mosquitto' | 'pymodbus' | 'socat' | 'chromium' | 'postgresql' | 'systemd' | 'root' | 'aiosmtpd' | 'openssl';

interface PeerSpec {
  what: string;
  install: string;
  /** Why it is not usable, or undefined when it is. */
  probe(): string | undefined;
}

const onPath = (cmd: string): string | undefined => {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const file = join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
};

const needCommands = (...cmds: string[]) => () => {
  const missing = cmds.filter((c) => !onPath(c));
  return missing.length ? `${missing.join(', ')} not found on PATH` : undefined;
};

/** The PostgreSQL server binaries of Debian's package (not on PATH there). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    try {
      accessSync(join(bin, 'postgres'), constants.X_OK);
      accessSync(join(bin, 'initdb'), constants.X_OK);
      return bin;
    } catch {
      // not this version
    }
  }
  return undefined;
}

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SYSTEM_PYTHON = '/usr/bin/python3';

const PEERS: Record<PeerName, PeerSpec> = {
  mosquitto: {
    what: 'the mosquitto MQTT broker and its clients',
    install: 'apt-get install mosquitto mosquitto-clients',
    probe: needCommands('mosquitto', 'mosquitto_passwd', 'mosquitto_pub', 'mosquitto_sub'),
  },
  pymodbus: {
    what: "Debian's python3-pymodbus (an independent Modbus implementation)",
    install: 'apt-get install python3-pymodbus',
    probe: () => {
      const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import pymodbus'], { stdio: 'ignore', timeout: 20_000 });
      return r.status === 0 ? undefined : `${SYSTEM_PYTHON} cannot import pymodbus`;
    },
  },
  openssl: {
    what: 'the openssl command (certificates made at test time for HTTPS)',
    install: 'apt-get install openssl',
    probe: needCommands('openssl'),
  },
  socat: {
    what: 'socat (pseudo-terminal pairs for Modbus RTU)',
    install: 'apt-get install socat',
    probe: needCommands('socat'),
  },
  chromium: {
    what: 'a Chromium browser for the dashboard tests',
    install: 'apt-get install chromium (or set CHROMIUM_PATH)',
    probe: () => {
      try {
        accessSync(CHROMIUM_PATH, constants.X_OK);
        return undefined;
      } catch {
        return `${CHROMIUM_PATH} not found`;
      }
    },
  },
  aiosmtpd: {
    what: "Debian's python3-aiosmtpd (an SMTP server used as a mail sink)",
    install: 'apt-get install python3-aiosmtpd',
    probe: () => {
      const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import aiosmtpd'], { stdio: 'ignore', timeout: 20_000 });
      return r.status === 0 ? undefined : `${SYSTEM_PYTHON} cannot import aiosmtpd`;
    },
  },
  systemd: {
    what: "systemd's systemd-analyze (checks unit files)",
    install: 'apt-get install systemd',
    probe: needCommands('systemd-analyze'),
  },
  root: {
    what: 'root, with useradd and runuser (creates a system user and runs a command as it)',
    install: 'run the tests as root (CI does)',
    probe: () => (process.getuid?.() !== 0 ? 'not running as root' : needCommands('useradd', 'userdel', 'runuser')()),
  },
  postgresql: {
    what: 'a PostgreSQL server',
    install: 'apt-get install postgresql',
    probe: () => (postgresBinDir() ? undefined : 'no /usr/lib/postgresql/<version>/bin/postgres'),
  },
};

const cache = new Map<PeerName, string | undefined>();

/** Why `name` cannot be used on this machine, or undefined when it can. */
export function peerMissing(name: PeerName): string | undefined {
  if (!cache.has(name)) cache.set(name, PEERS[name].probe());
  return cache.get(name);
}

export const peersRequired = () => process.env.HOMEFLEX_REQUIRE_PEERS === '1';

/** The file that registered the tests, for the skip line and the summary. */
function callerFile(): string {
  const stack = new Error().stack?.split('\n') ?? [];
  for (const line of stack.slice(2)) {
    const m = /(\/[^\s()]+\.test\.ts)/.exec(line);
    if (m) return relative(process.cwd(), m[1]);
  }
  return 'a test file';
}

function recordSkip(file: string, title: string, peers: PeerName[], reasons: string[]) {
  const install = peers.map((p) => PEERS[p].install).join('; ');
  process.stderr.write(`skipped: ${file} › ${title}: needs ${peers.join(' + ')} (${reasons.join('; ')}); install: ${install}\n`);
  const log = process.env.HOMEFLEX_PEER_SKIP_LOG;
  if (log) appendFileSync(log, `${JSON.stringify({ file, title, peers, install })}\n`);
}

/**
 * `describe` for tests that need system peers: runs when they are all there; otherwise skipped with
 * one line naming them (or failed, under HOMEFLEX_REQUIRE_PEERS=1).
 */
export function describeWithPeers(peers: PeerName[], title: string, ...rest: unknown[]): void {
  const missing = peers.filter((p) => peerMissing(p) !== undefined);
  const d = describe as unknown as (...a: unknown[]) => void;
  if (!missing.length) return d(title, ...rest);
  const reasons = missing.map((p) => peerMissing(p)!);
  if (peersRequired()) {
    describe(title, () => {
      it(`has its system peers (${missing.join(', ')})`, () => {
        throw new Error(`HOMEFLEX_REQUIRE_PEERS=1 but ${missing.map((p, i) => `${PEERS[p].what}: ${reasons[i]}`).join('; ')} — install with: ${missing.map((p) => PEERS[p].install).join('; ')}`);
      });
    });
    return;
  }
  recordSkip(callerFile(), title, missing, reasons);
  (describe.skip as unknown as (...a: unknown[]) => void)(`${title} [skipped: needs ${missing.join(' + ')}]`, ...rest);
}
