import { existsSync, readFileSync, copyFileSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { writeFileAtomic } from './atomic.js';

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
    return parsed as HubState;
  }
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

export class StateStore {
  readonly file: string;
  private readonly db: Low<HubState>;
  private readonly adapter: AtomicJsonFile;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  /** How many times the file was written (for diagnostics and tests). */
  writes = 0;
  private memoryWrite?: Promise<void>;
  private releaseMemoryWrite?: () => void;
  private lastMemoryWriteAt = -Infinity;
  private stopping = false;

  private constructor(file: string) {
    this.file = file;
    this.adapter = new AtomicJsonFile(file);
    this.db = new Low<HubState>(this.adapter, emptyState());
  }

  /** Opens (or creates) the state file in `dir`, migrating older versions after keeping a backup. */
  static async open(dir: string): Promise<StateStore> {
    mkdirSync(dir, { recursive: true });
    const store = new StateStore(join(dir, 'state.json'));
    // temporary files of writes a crash interrupted: the state file itself is whole, they are not
    for (const f of readdirSync(dir)) if (f.startsWith('.state.json.') && f.endsWith('.tmp')) unlinkSync(join(dir, f));
    await store.db.read();
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
      store.db.data = { ...emptyState(), ...(s as unknown as HubState) };
      await store.flush();
    }
    return store;
  }

  get data(): HubState {
    return this.db.data;
  }

  /** Changes the state and writes it; writes are queued and never overlap. */
  async update(fn: (s: HubState) => void): Promise<void> {
    fn(this.db.data);
    this.dirty = true;
    const next = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      await this.db.write();
      this.writes++;
    });
    this.writing = next.catch(() => undefined);
    return next;
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
      this.memoryWrite = due.then(() => {
        this.memoryWrite = this.releaseMemoryWrite = undefined;
        this.lastMemoryWriteAt = Date.now();
        return this.update(() => undefined);
      });
    }
    return this.memoryWrite;
  }

  /** From now on `updateSoon` resolves at once; the hub calls `flush` when everything has stopped. */
  beginStop() {
    this.stopping = true;
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
