import { X509Certificate } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { isIP } from 'node:net';
import { once } from 'node:events';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { HubConfig } from '../config/schema.js';
import { DIR_MODE, FILE_MODE } from './atomic.js';
import { BackupError, restoreArchive, takeSnapshot, writeArchive } from './backup.js';
import { LOCK_FILE, StorageLock, StorageLockedError, lockHolder } from './lock.js';

export interface BackupCommandIo {
  out(text: string): void;
  err(text: string): void;
  defaultConfig: string;
  loadConfig(file: string): HubConfig;
  env?: NodeJS.ProcessEnv;
}

export const BACKUP_USAGE = `usage: homeflex backup --out FILE [--config FILE] [--url URL] [--token TOKEN]
  Writes a consistent archive (.tar.gz) of the state and the meter records. While a hub runs on the
  storage it is asked over its HTTP API (address and token from the site file, or --url/--token or
  HOMEFLEX_TOKEN); otherwise the storage directory is read directly (holding its lock).
`;

export const RESTORE_USAGE = `usage: homeflex restore FILE [--config FILE | --dir DIR] [--replace]
  Restores a backup into the site's storage directory (or DIR). Refuses while a hub uses it, refuses
  a backup written by a newer homeflex, migrates an older one. A directory that already holds data is
  refused unless --replace, which moves its content to <dir>.before-restore-<time> (nothing is deleted).
`;

const storageDir = (configFile: string, config: HubConfig) => resolve(dirname(resolve(configFile)), config.storage.dir);

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e6 ? 3 : 1)} MB`;

/** `homeflex backup`: exit 0 written, 1 failed, 2 usage. */
export async function backupCommand(argv: string[], io: BackupCommandIo): Promise<number> {
  let values: { out?: string; config?: string; url?: string; token?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { out: { type: 'string', short: 'o' }, config: { type: 'string', short: 'c' }, url: { type: 'string' }, token: { type: 'string' } } }));
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${BACKUP_USAGE}`);
    return 2;
  }
  if (!values.out) {
    io.err(`homeflex backup needs --out FILE\n\n${BACKUP_USAGE}`);
    return 2;
  }
  const out = resolve(values.out);
  if (!existsSync(dirname(out))) {
    io.err(`--out ${values.out}: the folder ${dirname(out)} does not exist\n`);
    return 1;
  }
  const started = Date.now();
  const env = io.env ?? process.env;
  let base = values.url;
  let token = values.token ?? env.HOMEFLEX_TOKEN;
  let pinnedCert: Buffer | undefined;
  if (base && values.config) {
    // --url with the site file: its certificate still pins the hub's
    const config = io.loadConfig(values.config);
    if (config.http.tls) pinnedCert = readFileSync(resolve(dirname(resolve(values.config)), config.http.tls.cert));
  }
  if (!base) {
    const configFile = values.config ?? io.defaultConfig;
    const config = io.loadConfig(configFile);
    const dir = storageDir(configFile, config);
    const holder = lockHolder(dir);
    if (!holder) {
      if (!existsSync(dir)) {
        io.err(`${dir}: no storage yet (the hub creates it when it first starts); nothing to back up\n`);
        return 1;
      }
      let lock: StorageLock;
      try {
        lock = StorageLock.acquire(dir);
      } catch (err) {
        io.err(`${err instanceof StorageLockedError ? '' : 'cannot lock the storage: '}${(err as Error).message}\n`);
        return 1;
      }
      try {
        const snap = await takeSnapshot(dir, { siteId: config.site.id });
        try {
          const bytes = await writeArchive(snap, out, started);
          io.out(`wrote ${out} (${mb(bytes)}, ${snap.sources.length} files) from ${dir}; no hub was running\n`);
        } finally {
          snap.release();
        }
        return 0;
      } finally {
        lock.release();
      }
    }
    if (!config.http.port) {
      io.err(`${join(dir, LOCK_FILE)}: a hub (pid ${holder.pid}) is running, and ${configFile} has http.port 0; pass --url with the address it logged\n`);
      return 1;
    }
    const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
    const scheme = config.http.tls ? 'https' : 'http';
    // the hub's own certificate, by fingerprint: it need not name 127.0.0.1 nor come from a public CA
    if (config.http.tls) pinnedCert = readFileSync(resolve(dirname(resolve(configFile)), config.http.tls.cert));
    base = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
    token ??= config.http.token;
  }
  const url = `${base.replace(/\/+$/, '')}/api/v1/backup`;
  let res: { status: number; body: AsyncIterable<Uint8Array> };
  try {
    res = await postToHub(url, token, pinnedCert);
  } catch (err) {
    io.err(`no hub answers at ${base} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})\n`);
    return 1;
  }
  if (res.status !== 200) {
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(Buffer.from(c));
    let message = '';
    try {
      message = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { message?: string }).message ?? '';
    } catch {
      // not JSON
    }
    io.err(`POST ${url}: ${res.status} ${message}\n`);
    return 1;
  }
  const tmp = `${out}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', FILE_MODE);
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      bytes += chunk.length;
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, out);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // closed
    }
    rmSync(tmp, { force: true });
    io.err(`the backup from ${base} broke off after ${bytes} bytes (${(err as Error).message}); nothing was written to ${out}\n`);
    return 1;
  }
  io.out(`wrote ${out} (${mb(bytes)}) from the hub at ${base}\n`);
  return 0;
}

/** `homeflex restore`: exit 0 restored, 1 refused or failed, 2 usage. */
export async function restoreCommand(argv: string[], io: BackupCommandIo): Promise<number> {
  let values: { config?: string; dir?: string; replace?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, dir: { type: 'string' }, replace: { type: 'boolean', default: false } } }));
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${RESTORE_USAGE}`);
    return 2;
  }
  if (positionals.length !== 1) {
    io.err(RESTORE_USAGE);
    return 2;
  }
  const file = resolve(positionals[0]);
  let dir: string;
  if (values.dir) dir = resolve(values.dir);
  else {
    const configFile = values.config ?? io.defaultConfig;
    dir = storageDir(configFile, io.loadConfig(configFile));
  }
  const holder = lockHolder(dir);
  if (holder) {
    io.err(`${join(dir, LOCK_FILE)}: a homeflex (pid ${holder.pid}, started ${holder.startedAt}) is using this storage; stop it before restoring\n`);
    return 1;
  }
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  let lock: StorageLock;
  try {
    lock = StorageLock.acquire(dir);
  } catch (err) {
    io.err(`${(err as Error).message}\n`);
    return 1;
  }
  try {
    const r = await restoreArchive(file, dir, { replace: values.replace });
    const migrated = r.stateFrom !== null && r.stateFrom !== r.stateTo ? `; state migrated from schema ${r.stateFrom} to ${r.stateTo}` : '';
    io.out(`restored ${file} (made ${r.manifest.created_at}${r.manifest.site_id ? ` on site ${r.manifest.site_id}` : ''}) into ${dir}: ${r.manifest.files.length} files, ${r.meters} meters${migrated}\n`);
    if (r.previous) io.out(`what was in ${dir} before is kept in ${r.previous}\n`);
    return 0;
  } catch (err) {
    if (err instanceof BackupError) {
      io.err(`${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    lock.release();
  }
}

/**
 * POSTs to the hub and answers its status and body stream. Over HTTPS with `pinned`, the hub must
 * present exactly that certificate (the one its site file names), whatever name it was reached by;
 * the token is sent only once it has.
 */
async function postToHub(url: string, token: string | undefined, pinned?: Buffer): Promise<{ status: number; body: AsyncIterable<Uint8Array> }> {
  const u = new URL(url);
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  let socket: TLSSocket | undefined;
  if (u.protocol === 'https:') {
    const want = pinned ? new X509Certificate(pinned).fingerprint256 : undefined;
    const host = u.hostname.replace(/^\[|\]$/g, '');
    socket = tlsConnect({ host, port: Number(u.port || 443), servername: isIP(host) ? undefined : host, rejectUnauthorized: !want });
    await once(socket, 'secureConnect');
    const got = socket.getPeerCertificate().fingerprint256;
    if (want && got !== want) {
      socket.destroy();
      throw new Error(`the hub presented certificate ${got}, not the one in http.tls.cert (${want})`);
    }
  }
  return new Promise((resolvePost, reject) => {
    const target = { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (socket ? 443 : 80)), path: `${u.pathname}${u.search}` };
    const req = httpRequest({ ...target, method: 'POST', headers, ...(socket ? { createConnection: () => socket } : {}) }, (res) => resolvePost({ status: res.statusCode ?? 0, body: res }));
    req.on('error', reject);
    req.end();
  });
}
