import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresBinDir } from './system.js';

/** A real PostgreSQL server of Debian's package, in a temp directory, on 127.0.0.1 at a port chosen at run time. */
export interface PgServer {
  url: string;
  port: number;
  /** Kills the server (SIGKILL: no clean shutdown, as a crash). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and deletes its files. */
  stop(): Promise<void>;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** initdb refuses to run as root: under root the server runs as Debian's `postgres` user. */
function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) throw new Error('running as root and there is no postgres user to run PostgreSQL as');
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Starts a fresh PostgreSQL server (user `homeflex`, trust authentication on 127.0.0.1 only, database `homeflex`). */
export async function startPostgres(): Promise<PgServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries (apt-get install postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-pg-'));
  const as = runAs();
  if (as.uid !== undefined) chownSync(dir, as.uid, as.gid!);
  const data = join(dir, 'data');
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'homeflex', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], { ...as, encoding: 'utf8', timeout: 120_000 });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let output = '';
  const base = `postgresql://homeflex@127.0.0.1:${port}`;
  const start = async () => {
    proc = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', dir, '-c', 'max_connections=40', '-c', 'shared_buffers=32MB'], { ...as, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-4000)));
    proc.stderr!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-4000)));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`postgres exited: ${output}`);
      const c = new pg.Client({ connectionString: `${base}/postgres` });
      try {
        await c.connect();
        await c.end();
        return;
      } catch {
        await c.end().catch(() => undefined);
        if (Date.now() > deadline) throw new Error(`postgres did not start within 60 s: ${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const kill = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    // the postmaster's children notice it is gone and exit; the next start waits for them via the lock file
    await new Promise((r) => setTimeout(r, 300));
  };
  try {
    await start();
    const c = new pg.Client({ connectionString: `${base}/postgres` });
    await c.connect();
    await c.query('CREATE DATABASE homeflex');
    await c.end();
  } catch (err) {
    await kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `${base}/homeflex`,
    port,
    kill,
    start,
    async stop() {
      const p = proc;
      if (p && p.exitCode === null && p.signalCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGINT'); // fast shutdown
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
