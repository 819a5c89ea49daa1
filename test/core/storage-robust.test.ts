import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCK_FILE, StorageLock, StorageLockedError, lockHolder, processStartTicks } from '../../src/core/store/lock.js';
import { StateStore, StoreError } from '../../src/core/store/state.js';
import { recordingLogger } from '../peers/mqtt.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'homeflex-storage-'));

describe('state file sections', () => {
  it('fills sections a state file lacks and says which, naming the file', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ schema_version: 2, devices: {} }));
    const rec = recordingLogger();
    const store = await StateStore.open(dir, { log: rec.log });
    // before: a TypeError naming no file as soon as anything touched limits or adapter memory
    await store.kv('device:ev').set('n', 1);
    await store.update((s) => void (s.limits.home = { updated_at: 'x' }));
    expect(store.data.plans.history).toEqual([]);
    expect(rec.text()).toContain(`${join(dir, 'state.json')} lacked the section(s) sessions, plans, tariffs, kv, overrides, limits`);
  });

  it('refuses a section of the wrong shape with the file and the section, and leaves the file alone', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ schema_version: 2, devices: [], kv: {} }));
    const err = await StateStore.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(`${join(dir, 'state.json')}: section "devices" must be an object, not a list. The file was not changed: fix or remove that section (an empty one is {}).`);
  });

  it('writes the state file 0600 in a 0700 directory', async () => {
    const dir = join(tmp(), 'data');
    const store = await StateStore.open(dir);
    await store.flush();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'state.json')).mode & 0o777).toBe(0o600);
  });
});

describe('a state write that fails', () => {
  it('is the store problem: kept in memory, reported, retried with backoff, and written once it can be, leaving no .tmp', async () => {
    const dir = tmp();
    const rec = recordingLogger();
    const store = await StateStore.open(dir, { log: rec.log });
    await store.flush();
    // the state file's place taken by a non-empty directory: every rename onto it fails, as on a full disk
    rmSync(join(dir, 'state.json'));
    mkdirSync(join(dir, 'state.json', 'x'), { recursive: true });
    const saved = store.kv('device:ev').set('n', 42);
    // an adapter saving its memory is not failed by it
    await expect(saved).resolves.toBeUndefined();
    // a client changing a limit learns it was not saved (503), and nobody has to catch a promise it ignores
    const answered = await store.update((s) => void (s.limits.home = { updated_at: 'now' })).catch((e: { status: number; code: string }) => e);
    expect(answered).toMatchObject({ status: 503, code: 'store_unavailable' });
    void store.update((s) => void (s.limits.other = { updated_at: 'now' }));
    expect(store.health).toMatchObject({ ok: false, file: join(dir, 'state.json') });
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(rec.text().match(/cannot write the state file/g)).toHaveLength(1);
    // space again: the store writes by itself
    rmSync(join(dir, 'state.json'), { recursive: true });
    const end = Date.now() + 10_000;
    while (!store.health.ok && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(store.health).toEqual({ ok: true });
    const reopened = await StateStore.open(dir);
    expect(reopened.kv('device:ev').get('n')).toBe(42);
    expect(Object.keys(reopened.data.limits).sort()).toEqual(['home', 'other']);
    expect(rec.text()).toContain('is written again');
  });
});

describe('storage lock', () => {
  it('lets one process hold the storage directory and names the holder to the next', () => {
    const dir = tmp();
    const lock = StorageLock.acquire(dir);
    expect(readlinkSync(join(dir, LOCK_FILE))).toMatch(new RegExp(`^${process.pid}:`));
    expect(() => StorageLock.acquire(dir)).toThrow(StorageLockedError);
    expect(lockHolder(dir)?.pid).toBe(process.pid);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
    StorageLock.acquire(dir).release();
  });

  it('takes over the lock of a process that is gone', async () => {
    const dir = tmp();
    const child = spawn(process.execPath, ['-e', '0']);
    const pid = child.pid!;
    await new Promise((r) => child.once('exit', r));
    symlinkSync(`${pid}:123:2026-01-01T00:00:00.000Z`, join(dir, LOCK_FILE));
    expect(lockHolder(dir)).toBeNull();
    const lock = StorageLock.acquire(dir);
    expect(readlinkSync(join(dir, LOCK_FILE))).toMatch(new RegExp(`^${process.pid}:`));
    lock.release();
  });

  it('takes over a lock whose pid now belongs to another process (started at another time)', () => {
    const ticks = processStartTicks(process.ppid);
    if (ticks === null) return void console.log('skipped: needs /proc (Linux) to tell a reused pid');
    const dir = tmp();
    symlinkSync(`${process.ppid}:${ticks + 1}:2026-01-01T00:00:00.000Z`, join(dir, LOCK_FILE));
    StorageLock.acquire(dir).release();
  });
});
