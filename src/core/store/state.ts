import { existsSync, readFileSync, copyFileSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { ApiError, type Logger } from '../../api/index.js';
import { DIR_MODE, writeFileAtomic } from './atomic.js';
import { WriteTimes } from './write-times.js';

/**
 * The hub's own state (devices seen, sessions, plans, imported tariffs, adapter memory) in one JSON
 * file under `storage.dir`, kept by lowdb. Meter records live elsewhere (metering/), not here.
 */
export interface HubState {
  schema_version: number;
  devices: Record<string, { adapter: string; name: string; first_seen: string; last_seen: string }>;
  sessions: Record<string, StoredSession>;
  plans: { latest?: unknown; history: { id: string; created_at: string; cost?: number }[] };
  tariffs: { imported: Record<string, unknown>; cache: Record<string, unknown> };
  /** Small key-value spaces of adapters and plugins, by `<kind>:<id>`. */
  kv: Record<string, Record<string, unknown>>;
  /** Targets, schedules and comfort bands changed at run time through the API, by device id. */
  overrides: Record<string, Record<string, unknown>>;
  limits: Record<string, unknown>;
}

export interface StoredSession {
  id: string;
  device_id: string;
  start: string;
  /** When the car was plugged in, where that was before the session started (the EV savings baseline). */
  plug_in?: string;
  end?: string;
  energy_wh: number;
  id_tag?: string;
  meter_start_wh?: number;
}

export const STATE_VERSION = 2;

export const emptyState = (): HubState => ({
  schema_version: STATE_VERSION,
  devices: {},
  sessions: {},
  plans: { history: [] },
  tariffs: { imported: {}, cache: {} },
  kv: {},
  overrides: {},
  limits: {},
});

/** migrations[n] turns a version-n state into version n+1. */
export const migrations: Record<number, (s: Record<string, unknown>) => Record<string, unknown>> = {
  // v1 kept the adapters' memory under "adapters" and had no run-time overrides or limits.
  1: (s) => {
    const { adapters, ...rest } = s as { adapters?: Record<string, Record<string, unknown>> };
    return { ...rest, kv: adapters ?? {}, overrides: {}, limits: {}, schema_version: 2 };
  },
};

/** Sections of the state and the shape each must have; a missing one is filled, a wrong one refused. */
const SECTIONS: Record<Exclude<keyof HubState, 'schema_version'>, 'object' | ((v: Record<string, unknown>) => string | null)> = {
  devices: 'object',
  sessions: 'object',
  plans: (v) => (v.history === undefined || Array.isArray(v.history) ? null : '"plans.history" must be a list'),
  tariffs: (v) => (['imported', 'cache'].find((k) => v[k] !== undefined && !isPlainObject(v[k])) ? '"tariffs.imported" and "tariffs.cache" must be objects' : null),
  kv: 'object',
  overrides: 'object',
  limits: 'object',
};

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Fills the sections a state file lacks (a hand-edited or truncated file) with empty ones and
 * refuses one of the wrong shape, naming the file and the section. Returns the sections filled.
 */
export function completeSections(state: Record<string, unknown>, file: string): string[] {
  const filled: string[] = [];
  const empty = emptyState() as unknown as Record<string, unknown>;
  for (const [key, rule] of Object.entries(SECTIONS)) {
    const v = state[key];
    if (v === undefined || v === null) {
      state[key] = empty[key];
      filled.push(key);
      continue;
    }
    if (!isPlainObject(v)) throw new StoreError(`${file}: section "${key}" must be an object, not ${Array.isArray(v) ? 'a list' : typeof v}. The file was not changed: fix or remove that section (an empty one is {}).`, file);
    const problem = rule === 'object' ? null : rule(v);
    if (problem) throw new StoreError(`${file}: section "${key}": ${problem}. The file was not changed.`, file);
  }
  const plans = state.plans as Record<string, unknown>;
  plans.history ??= [];
  const tariffs = state.tariffs as Record<string, unknown>;
  tariffs.imported ??= {};
  tariffs.cache ??= {};
  return filled;
}

/** A write of the state file failed; the change is kept in memory and written when storage recovers. */
export const stateUnavailable = (file: string, err: unknown) =>
  new ApiError(503, 'store_unavailable', `the change is in force but could not be saved to ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the hub saves it by itself as soon as the disk accepts writes again`);

/** How a store is doing: ok, or failing since a time with the last error. */
export interface StoreHealth {
  ok: boolean;
  error?: string;
  since?: string;
  file?: string;
}

export class StoreError extends Error {
  constructor(message: string, readonly file: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** lowdb adapter: reads refuse a corrupt file with a clear error; writes are atomic and fsync'd. */
class AtomicJsonFile implements Adapter<HubState> {
  /** Size of the last write. */
  bytes = 0;
  constructor(private readonly file: string) {}
  async read(): Promise<HubState | null> {
    if (!existsSync(this.file)) return null;
    const text = readFileSync(this.file, 'utf8');
    if (text.trim() === '') {
      throw new StoreError(`${this.file} is empty (a half-written file?). It was not replaced: restore it from a backup or move it away to start with an empty state.`, this.file);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new StoreError(`${this.file} is not valid JSON (${(err as Error).message}). It was not replaced: restore it from a backup or move it away to start with an empty state.`, this.file);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || typeof (parsed as HubState).schema_version !== 'number') {
      throw new StoreError(`${this.file} is not a homeflex state file (no schema_version). It was not replaced.`, this.file);
    }
    if ((parsed as HubState).schema_version >= STATE_VERSION) this.filled = completeSections(parsed as Record<string, unknown>, this.file);
    return parsed as HubState;
  }
  /** Sections the last read had to fill in. */
  filled: string[] = [];
  async write(data: HubState): Promise<void> {
    const text = JSON.stringify(data, null, 1);
    this.bytes = text.length;
    await writeFileAtomic(this.file, text);
  }
}

/**
 * Adapters' memory (hundreds of devices saving once a minute each) is written at most once a
 * second, and a big file less often: at most about MEMORY_WRITE_BYTES_PER_S on average, so the
 * 2.3 MB file of a site with 420 devices and their plan goes out every 23 s, not 60 times a minute.
 */
export const MEMORY_WRITE_GAP_MS = 1000;
export const MEMORY_WRITE_BYTES_PER_S = 100_000;

/** Retry delays of a failed state write: 1 s doubling to 30 s. */
export const RETRY_MIN_MS = 1000;
export const RETRY_MAX_MS = 30_000;

export class StateStore {
  readonly file: string;
  private failure?: { error: string; since: number; attempts: number };
  private retryTimer?: NodeJS.Timeout;
  private readonly log?: Logger;
  private readonly db: Low<HubState>;
  private readonly adapter: AtomicJsonFile;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  /** How many times the file was written (for diagnostics and tests). */
  writes = 0;
  /** How long the writes took (GET /metrics). */
  readonly writeTimes = new WriteTimes();
  private memoryWrite?: Promise<void>;
  private releaseMemoryWrite?: () => void;
  private lastMemoryWriteAt = -Infinity;
  private stopping = false;

  private constructor(file: string, log?: Logger) {
    this.file = file;
    this.log = log;
    this.adapter = new AtomicJsonFile(file);
    this.db = new Low<HubState>(this.adapter, emptyState());
  }

  /** Opens (or creates) the state file in `dir`, migrating older versions after keeping a backup. */
  static async open(dir: string, options: { log?: Logger } = {}): Promise<StateStore> {
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    const store = new StateStore(join(dir, 'state.json'), options.log);
    // temporary files of writes a crash interrupted: the state file itself is whole, they are not
    for (const f of readdirSync(dir)) if (f.startsWith('.state.json.') && f.endsWith('.tmp')) unlinkSync(join(dir, f));
    await store.db.read();
    if (store.adapter.filled.length) {
      store.log?.warn({ file: store.file, sections: store.adapter.filled }, `${store.file} lacked the section(s) ${store.adapter.filled.join(', ')}; they start empty`);
      store.dirty = true;
    }
    const version = store.db.data.schema_version;
    if (version > STATE_VERSION) {
      throw new StoreError(`${store.file} has schema_version ${version}, newer than this homeflex understands (${STATE_VERSION}). Upgrade homeflex.`, store.file);
    }
    if (version < STATE_VERSION) {
      copyFileSync(store.file, `${store.file}.v${version}.bak`);
      let s = store.db.data as unknown as Record<string, unknown>;
      for (let v = version; v < STATE_VERSION; v++) {
        const m = migrations[v];
        if (!m) throw new StoreError(`${store.file}: no migration from schema_version ${v}`, store.file);
        s = m(s);
      }
      completeSections(s, store.file);
      store.db.data = { ...emptyState(), ...(s as unknown as HubState) };
      await store.flush();
    }
    return store;
  }

  get data(): HubState {
    return this.db.data;
  }

  /**
   * Changes the state and writes it; writes are queued and never overlap. When the write fails
   * (full disk, no file descriptors) the change stays in force in memory, the store retries by
   * itself with backoff and reports itself in `health`, and the promise rejects with a 503
   * `store_unavailable` for callers that answer a client. Nobody has to catch it: a caller that
   * does not wait (adapters' memory, bookkeeping) cannot crash the hub with it.
   */
  update(fn: (s: HubState) => void): Promise<void> {
    try {
      fn(this.db.data);
    } catch (err) {
      return Promise.reject(err);
    }
    this.dirty = true;
    const next = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      try {
        await this.writeTimes.time(() => this.db.write());
      } catch (err) {
        this.dirty = true;
        this.failed(err);
        throw stateUnavailable(this.file, err);
      }
      this.writes++;
      this.recovered();
    });
    this.writing = next.catch(() => undefined);
    next.catch(() => undefined);
    return next;
  }

  private failed(err: unknown) {
    const error = `${(err as NodeJS.ErrnoException).code ?? 'error'}: ${(err as Error).message}`;
    if (!this.failure) {
      this.failure = { error, since: Date.now(), attempts: 0 };
      this.log?.error({ file: this.file, err }, `cannot write the state file ${this.file}; changes are kept in memory and saved when it can be written again (retrying)`);
    } else this.failure.error = error;
    this.failure.attempts++;
    if (this.retryTimer || this.stopping) return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(10, this.failure.attempts - 1));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.dirty) void this.update(() => undefined);
    }, delay);
    this.retryTimer.unref();
  }

  private recovered() {
    if (!this.failure) return;
    const { since, attempts } = this.failure;
    this.failure = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.log?.info({ file: this.file, failing_for_s: Math.round((Date.now() - since) / 1000), attempts }, `the state file ${this.file} is written again; the changes kept in memory are saved`);
  }

  /** Whether the last write of the state file succeeded; since when and why not. */
  get health(): StoreHealth {
    if (!this.failure) return { ok: true };
    return { ok: false, error: this.failure.error, since: new Date(this.failure.since).toISOString(), file: this.file };
  }

  async flush(): Promise<void> {
    this.releaseMemoryWrite?.();
    this.dirty = true;
    await this.update(() => undefined);
  }

  /**
   * Changes the state like `update`, but changes that come in bursts (adapters' memory: hundreds of
   * devices each saving once a minute) share one write, at most one per MEMORY_WRITE_GAP_MS (longer
   * for a big file); resolves once a write holding the change is done. The first change after a
   * quiet spell is written at once.
   */
  updateSoon(fn: (s: HubState) => void): Promise<void> {
    fn(this.db.data);
    this.dirty = true;
    // the hub writes the file once after every part stopped: stopping devices do not wait in turn
    if (this.stopping) return Promise.resolve();
    if (!this.memoryWrite) {
      const gap = Math.max(MEMORY_WRITE_GAP_MS, (this.adapter.bytes / MEMORY_WRITE_BYTES_PER_S) * 1000);
      const wait = this.lastMemoryWriteAt + gap - Date.now();
      const due = wait > 0 ? new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.releaseMemoryWrite = () => (clearTimeout(timer), resolve());
      }) : Promise.resolve();
      // a failed write is the store's problem (it retries and reports itself), never the saving adapter's
      this.memoryWrite = due.then(() => {
        this.memoryWrite = this.releaseMemoryWrite = undefined;
        this.lastMemoryWriteAt = Date.now();
        return this.update(() => undefined).catch(() => undefined);
      });
    }
    return this.memoryWrite;
  }

  /** From now on `updateSoon` resolves at once; the hub calls `flush` when everything has stopped. */
  beginStop() {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** A key-value space of one adapter or plugin. */
  kv(namespace: string) {
    return {
      get: <T>(key: string): T | undefined => this.db.data.kv[namespace]?.[key] as T | undefined,
      set: (key: string, value: unknown) =>
        this.updateSoon((s) => {
          (s.kv[namespace] ??= {})[key] = value;
        }),
    };
  }
}
