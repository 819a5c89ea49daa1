import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { Readable, Writable, pipeline as pipelineCb } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { MeterStore, METER_STORE_VERSION, type MeterStoreSnapshot } from '../../metering/store.js';
import { DIR_MODE, FILE_MODE, fsyncDirSync } from './atomic.js';
import { LOCK_FILE } from './lock.js';
import { STATE_VERSION, StateStore, type HubState } from './state.js';

/**
 * Backups of a storage directory: a gzip'd tar (readable with `tar xzf`) holding the state, the
 * meter store, the tariff history and the stored forecasts, with `homeflex-backup.json` last: the
 * versions it was written with and the size and SHA-256 of every file.
 */
export const BACKUP_FORMAT = 'homeflex-backup';
export const BACKUP_VERSION = 1;
export const MANIFEST = 'homeflex-backup.json';

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  version: number;
  created_at: string;
  site_id: string | null;
  state_schema_version: number | null;
  meter_store_version: number;
  files: { name: string; size: number; sha256: string }[];
}

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

/** One file of an archive: its bytes in memory, or `size` bytes of an open file. */
type Source = { name: string; data: Buffer } | { name: string; fd: number; size: number };

/** What a backup holds, taken at one moment; `release` must be called once it is written. */
export interface BackupSnapshot {
  sources: Source[];
  siteId: string | null;
  stateVersion: number | null;
  meterVersion: number;
  release(): void;
}

/** Files and folders of a storage directory a backup never holds. */
const SKIP_TOP = new Set([LOCK_FILE, 'state.json', 'metering']);
const SKIP_NAME = /\.tmp$|^\.state\.json\..*\.tmp$/;

/** The other files of the storage directory (tariff history, forecasts …): small, each written atomically or appended by lines. */
function otherFiles(dir: string, rel = ''): Source[] {
  const out: Source[] = [];
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!rel && SKIP_TOP.has(entry.name)) continue;
    if (SKIP_NAME.test(entry.name)) continue;
    const name = rel ? `${rel}/${entry.name}` : entry.name;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...otherFiles(path, name));
    else if (entry.isFile()) {
      let data: Buffer;
      try {
        data = readFileSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // replaced meanwhile
        throw err;
      }
      // a line-appended file (forecasts) may be read while a line is half written: keep whole lines
      if (name.endsWith('.jsonl')) {
        const end = data.lastIndexOf(0x0a);
        data = data.subarray(0, end + 1);
      }
      out.push({ name, data });
    }
  }
  return out;
}

/**
 * Takes a backup snapshot of a storage directory. `state` is the hub's state as it is in memory
 * (a running hub), else the state file is read; `meters` is the open meter store (a running hub),
 * else the store is opened read-only (the caller holds the storage lock).
 */
export async function takeSnapshot(dir: string, opts: { state?: HubState; meters?: MeterStore; siteId?: string | null } = {}): Promise<BackupSnapshot> {
  let own: MeterStore | undefined;
  const meters = opts.meters ?? (own = await MeterStore.open(join(dir, 'metering'), { readOnly: true }));
  let snap: MeterStoreSnapshot;
  try {
    snap = await meters.snapshot();
  } catch (err) {
    await own?.close();
    throw err;
  }
  try {
    const sources: Source[] = [];
    let stateVersion: number | null = null;
    let stateText: string | null = null;
    if (opts.state) stateText = JSON.stringify(opts.state, null, 1);
    else if (existsSync(join(dir, 'state.json'))) stateText = readFileSync(join(dir, 'state.json'), 'utf8');
    if (stateText !== null) {
      try {
        stateVersion = (JSON.parse(stateText) as { schema_version?: number }).schema_version ?? null;
      } catch {
        throw new BackupError(`${join(dir, 'state.json')} is not valid JSON: repair or restore it before backing up`);
      }
      sources.push({ name: 'state.json', data: Buffer.from(stateText) });
    }
    for (const f of snap.files) sources.push({ name: `metering/${f.name}`, fd: f.fd, size: f.size });
    sources.push(...otherFiles(dir));
    return {
      sources,
      siteId: opts.siteId ?? null,
      stateVersion,
      meterVersion: snap.version,
      release: () => {
        snap.release();
        void own?.close();
      },
    };
  } catch (err) {
    snap.release();
    await own?.close();
    throw err;
  }
}

// ------------------------------------------------------------------ tar

const BLOCK = 512;

function octal(buf: Buffer, offset: number, length: number, value: number) {
  buf.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

/** A ustar header for a regular file (names up to 255 bytes, split at a slash into prefix and name). */
function tarHeader(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new BackupError(`file name too long for the archive: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, 'utf8');
  octal(h, 100, 8, FILE_MODE);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, Math.floor(mtime / 1000));
  h.fill(0x20, 148, 156); // checksum counted as spaces
  h.write('0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

const padding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/** The archive as a stream of gzip'd bytes; the manifest (with every file's checksum) comes last. */
export function archiveStream(snap: BackupSnapshot, now = Date.now()): Readable {
  async function* tar(): AsyncGenerator<Buffer> {
    const files: BackupManifest['files'] = [];
    for (const src of snap.sources) {
      const size = 'data' in src ? src.data.length : src.size;
      yield tarHeader(src.name, size, now);
      const hash = createHash('sha256');
      if ('data' in src) {
        hash.update(src.data);
        yield src.data;
      } else {
        for (let pos = 0; pos < size; ) {
          const chunk = Buffer.allocUnsafe(Math.min(1 << 20, size - pos));
          const n = readSync(src.fd, chunk, 0, chunk.length, pos);
          if (n <= 0) throw new BackupError(`${src.name} ended at byte ${pos} while ${size} were expected`);
          pos += n;
          const part = chunk.subarray(0, n);
          hash.update(part);
          yield part;
        }
      }
      yield padding(size);
      files.push({ name: src.name, size, sha256: hash.digest('hex') });
    }
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      created_at: new Date(now).toISOString(),
      site_id: snap.siteId,
      state_schema_version: snap.stateVersion,
      meter_store_version: snap.meterVersion,
      files,
    };
    const text = Buffer.from(JSON.stringify(manifest, null, 1) + '\n');
    yield tarHeader(MANIFEST, text.length, now);
    yield text;
    yield padding(text.length);
    yield Buffer.alloc(BLOCK * 2);
  }
  // pipeline, not pipe: an error reading a file ends the archive stream with that error (no hang)
  const gz = createGzip({ level: 6 });
  pipelineCb(Readable.from(tar(), { objectMode: false }), gz, () => undefined);
  return gz;
}

/** Writes a snapshot to `file` (via a temporary file renamed into place, so a failed backup leaves no half archive). */
export async function writeArchive(snap: BackupSnapshot, file: string, now = Date.now()): Promise<number> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', FILE_MODE);
  let bytes = 0;
  try {
    await pipeline(
      archiveStream(snap, now),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          try {
            for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
            bytes += chunk.length;
            cb();
          } catch (err) {
            cb(err as Error);
          }
        },
      }),
    );
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
    fsyncDirSync(dirname(resolve(file)));
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  return bytes;
}

// ------------------------------------------------------------------ reading an archive

/** A file name from an archive that stays inside the directory it is extracted to. */
function safeName(name: string): string {
  const norm = posix.normalize(name);
  if (!name || name.startsWith('/') || norm.startsWith('..') || norm !== name || name.includes('\\') || name.includes('\0')) throw new BackupError(`the archive holds a file named ${JSON.stringify(name)}, which a backup never does: not restored`);
  return norm;
}

/**
 * Extracts a homeflex backup into `dest` (which must not exist) and checks it against its
 * manifest: every file listed, of its size and SHA-256, nothing else. Returns the manifest.
 */
export async function extractArchive(file: string, dest: string): Promise<BackupManifest> {
  if (!existsSync(file)) throw new BackupError(`${file}: no such file`);
  mkdirSync(dest, { mode: DIR_MODE });
  const seen = new Map<string, { size: number; sha256: string }>();
  let manifestText: string | null = null;
  let pending: Buffer = Buffer.alloc(0);
  // the entry being read: its remaining bytes, where they go
  let cur: { name: string; left: number; pad: number; fd: number | null; hash: ReturnType<typeof createHash>; size: number; text: Buffer[] | null } | null = null;
  let ended = false;
  const take = () => {
    for (;;) {
      if (cur) {
        if (cur.left > 0) {
          if (!pending.length) return;
          const n = Math.min(cur.left, pending.length);
          const part = pending.subarray(0, n);
          cur.hash.update(part);
          if (cur.fd !== null) for (let off = 0; off < part.length; ) off += writeSync(cur.fd, part, off, part.length - off);
          else cur.text!.push(Buffer.from(part));
          pending = pending.subarray(n);
          cur.left -= n;
          if (cur.left > 0) return;
        }
        if (pending.length < cur.pad) return;
        pending = pending.subarray(cur.pad);
        if (cur.fd !== null) {
          fsyncSync(cur.fd);
          closeSync(cur.fd);
          seen.set(cur.name, { size: cur.size, sha256: cur.hash.digest('hex') });
        } else manifestText = Buffer.concat(cur.text!).toString('utf8');
        cur = null;
      }
      if (ended) {
        pending = Buffer.alloc(0);
        return;
      }
      if (pending.length < BLOCK) return;
      const h = pending.subarray(0, BLOCK);
      pending = pending.subarray(BLOCK);
      if (h.every((b) => b === 0)) {
        ended = true;
        continue;
      }
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
      const stored = parseInt(h.toString('ascii', 148, 156).replace(/[\0 ]+$/, '').trim(), 8);
      if (sum !== stored) throw new BackupError(`${file}: not a homeflex backup (a tar header checksum does not match)`);
      const str = (o: number, l: number) => h.toString('utf8', o, o + l).replace(/\0.*$/s, '');
      const type = String.fromCharCode(h[156] || 0x30);
      const prefix = str(345, 155);
      const name = safeName(prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
      const size = parseInt(str(124, 12).trim() || '0', 8);
      if (type !== '0') throw new BackupError(`${file}: ${name} is not a regular file; a homeflex backup holds only files`);
      if (seen.has(name)) throw new BackupError(`${file}: ${name} appears twice`);
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (name === MANIFEST) cur = { name, left: size, pad, fd: null, hash: createHash('sha256'), size, text: [] };
      else {
        const path = join(dest, name);
        mkdirSync(dirname(path), { recursive: true, mode: DIR_MODE });
        cur = { name, left: size, pad, fd: openSync(path, 'wx', FILE_MODE), hash: createHash('sha256'), size, text: null };
      }
    }
  };
  try {
    await pipeline(
      Readable.from(readChunks(file)),
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          try {
            pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
            take();
            cb();
          } catch (err) {
            cb(err as Error);
          }
        },
      }),
    );
  } catch (err) {
    const open = cur as { fd: number | null } | null;
    if (open?.fd) closeSync(open.fd);
    if (err instanceof BackupError) throw err;
    throw new BackupError(`${file}: not a readable homeflex backup (${(err as Error).message})`);
  }
  if (cur) throw new BackupError(`${file}: the archive ends inside ${(cur as { name: string }).name} (cut short?)`);
  if (manifestText === null) throw new BackupError(`${file}: no ${MANIFEST} in the archive: not a homeflex backup, or one cut short`);
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(manifestText) as BackupManifest;
  } catch (err) {
    throw new BackupError(`${file}: ${MANIFEST} is not valid JSON (${(err as Error).message})`);
  }
  if (manifest.format !== BACKUP_FORMAT) throw new BackupError(`${file}: not a homeflex backup (${MANIFEST} says format ${JSON.stringify(manifest.format)})`);
  if (!(manifest.version <= BACKUP_VERSION)) throw new BackupError(`${file} was written by a newer homeflex (backup format ${manifest.version}; this one reads up to ${BACKUP_VERSION}): upgrade homeflex to restore it`);
  for (const f of manifest.files ?? []) {
    const got = seen.get(f.name);
    if (!got) throw new BackupError(`${file}: ${f.name} is listed in ${MANIFEST} but missing from the archive`);
    if (got.size !== f.size || got.sha256 !== f.sha256) throw new BackupError(`${file}: ${f.name} does not match its checksum in ${MANIFEST} (damaged archive)`);
    seen.delete(f.name);
  }
  if (seen.size) throw new BackupError(`${file}: ${[...seen.keys()][0]} is in the archive but not in ${MANIFEST}`);
  return manifest;
}

async function* readChunks(file: string): AsyncGenerator<Buffer> {
  const fd = openSync(file, 'r');
  try {
    for (let pos = 0; ; ) {
      const buf = Buffer.allocUnsafe(1 << 20);
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) return;
      pos += n;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/** What `restore` did. */
export interface RestoreResult {
  manifest: BackupManifest;
  /** Where the storage directory's previous content was moved (null: it was empty). */
  previous: string | null;
  /** The state's schema version in the archive and after restoring (migrated when they differ). */
  stateFrom: number | null;
  stateTo: number | null;
  meters: number;
}

const hasData = (dir: string) => existsSync(dir) && readdirSync(dir).some((f) => f !== LOCK_FILE);

/**
 * Restores an archive into the storage directory `dir` (the caller holds its lock): extracted and
 * checked beside it first, a newer schema refused, an older state migrated, the meter store opened
 * once to prove it reads; only then does it take the directory's place. Data already in `dir` is
 * refused unless `replace`, which moves it to `<dir>.before-restore-<time>` (nothing is deleted).
 */
export async function restoreArchive(file: string, dir: string, opts: { replace?: boolean; now?: number } = {}): Promise<RestoreResult> {
  const stamp = new Date(opts.now ?? Date.now()).toISOString().replace(/[:.]/g, '-');
  if (hasData(dir) && !opts.replace) {
    throw new BackupError(`${dir} already holds a hub's data; restore into an empty directory, or pass --replace to move what is there to ${dir}.before-restore-<time> first`);
  }
  const staging = `${dir}.restore-${stamp}`;
  try {
    const manifest = await extractArchive(file, staging);
    const stateFile = join(staging, 'state.json');
    let stateFrom: number | null = null;
    let stateTo: number | null = null;
    if (existsSync(stateFile)) {
      stateFrom = (JSON.parse(readFileSync(stateFile, 'utf8')) as { schema_version?: number }).schema_version ?? null;
      if (stateFrom !== null && stateFrom > STATE_VERSION) {
        throw new BackupError(`${file} holds a state of schema_version ${stateFrom}, newer than this homeflex understands (${STATE_VERSION}): upgrade homeflex to restore it`);
      }
      // opening migrates an older state (keeping the original beside it as state.json.v<N>.bak)
      const state = await StateStore.open(staging);
      stateTo = state.data.schema_version;
    }
    if (manifest.meter_store_version > METER_STORE_VERSION) {
      throw new BackupError(`${file} holds a meter store of version ${manifest.meter_store_version}, newer than this homeflex reads (${METER_STORE_VERSION}): upgrade homeflex to restore it`);
    }
    const store = await MeterStore.open(join(staging, 'metering'));
    const meters = store.subjectIds().length;
    const problems = [...store.problems];
    await store.close();
    if (store.damage.length) throw new BackupError(`${file}: the meter store in the archive is damaged (${problems[0] ?? store.damage[0].file})`);
    let previous: string | null = null;
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    if (hasData(dir)) {
      previous = `${dir}.before-restore-${stamp}`;
      mkdirSync(previous, { mode: DIR_MODE });
      for (const f of readdirSync(dir)) if (f !== LOCK_FILE) renameSync(join(dir, f), join(previous, f));
    }
    for (const f of readdirSync(staging)) renameSync(join(staging, f), join(dir, f));
    fsyncDirSync(dir);
    rmSync(staging, { recursive: true, force: true });
    return { manifest, previous, stateFrom, stateTo, meters };
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/** Backups made by the nightly job in a folder: `homeflex-<site>-<YYYYMMDDTHHMMSSZ>.tar.gz`. */
export const NIGHTLY = /^homeflex-.+-(\d{8}T\d{6}Z)\.tar\.gz$/;

export const nightlyName = (siteId: string, at: number) => `homeflex-${siteId}-${new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.tar.gz`;

/** Deletes the oldest nightly backups in `dir` past `keep`; other files are never touched. Returns the names deleted. */
export function pruneBackups(dir: string, keep: number): string[] {
  const ours = readdirSync(dir)
    .filter((f) => NIGHTLY.test(f) && statSync(join(dir, f)).isFile())
    .sort((a, b) => NIGHTLY.exec(a)![1].localeCompare(NIGHTLY.exec(b)![1]));
  const gone = ours.slice(0, Math.max(0, ours.length - keep));
  for (const f of gone) rmSync(join(dir, f));
  return gone;
}
