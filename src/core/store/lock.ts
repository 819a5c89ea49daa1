import { readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One hub per storage directory. The lock is `<storage.dir>/hub.lock`, a symbolic link whose
 * target names the holder: `<pid>:<process start ticks>:<start time ISO>`. A link is created
 * atomically (it fails if one exists) and needs no data block, so the lock is taken on a full disk
 * too. A lock whose process is gone (or whose pid now belongs to another process) is stale and
 * taken over.
 */
export const LOCK_FILE = 'hub.lock';

export interface LockHolder {
  pid: number;
  /** Start time of the process in clock ticks since boot (Linux), to tell a reused pid; null elsewhere. */
  ticks: number | null;
  startedAt: string;
}

export class StorageLockedError extends Error {
  constructor(message: string, readonly holder: LockHolder) {
    super(message);
    this.name = 'StorageLockedError';
  }
}

/** Start time of a process in clock ticks since boot, from /proc (null where there is none). */
export function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

const encode = (h: LockHolder) => `${h.pid}:${h.ticks ?? '-'}:${h.startedAt}`;

function decode(target: string): LockHolder | null {
  const m = /^(\d+):(\d+|-):(.*)$/.exec(target);
  if (!m) return null;
  return { pid: Number(m[1]), ticks: m[2] === '-' ? null : Number(m[2]), startedAt: m[3] };
}

/** Whether the process that wrote the lock still runs (same pid, same start time). */
export function holderAlive(h: LockHolder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (h.ticks === null) return true;
  const now = processStartTicks(h.pid);
  return now === null || now === h.ticks;
}

/** Who holds the lock of `dir` now, or null when nobody (no lock, or a stale one). */
export function lockHolder(dir: string): LockHolder | null {
  let target: string;
  try {
    target = readlinkSync(join(dir, LOCK_FILE));
  } catch {
    return null;
  }
  const h = decode(target);
  return h && holderAlive(h) ? h : null;
}

const describe = (dir: string, h: LockHolder) =>
  `${join(dir, LOCK_FILE)} is held by another homeflex (pid ${h.pid}, started ${h.startedAt}) using the same storage.dir; ` +
  'stop that one first (two hubs on one site would command the same devices)';

export class StorageLock {
  private released = false;
  private constructor(readonly dir: string, readonly holder: LockHolder) {}

  /** Takes the lock of `dir` for this process; throws StorageLockedError naming the holder when another live process has it. */
  static acquire(dir: string): StorageLock {
    const file = join(dir, LOCK_FILE);
    const me: LockHolder = { pid: process.pid, ticks: processStartTicks(process.pid), startedAt: new Date().toISOString() };
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        symlinkSync(encode(me), file);
        return new StorageLock(dir, me);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let target: string;
      try {
        target = readlinkSync(file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue; // released meanwhile
        if (code === 'EINVAL') throw new Error(`${file} is not a homeflex lock (not a symbolic link); move it away`, { cause: err });
        throw err;
      }
      const h = decode(target);
      if (h && h.pid === process.pid && h.ticks === me.ticks) throw new StorageLockedError(`${file}: this process already holds the storage lock`, h);
      if (h && holderAlive(h)) throw new StorageLockedError(describe(dir, h), h);
      // stale: move it to a name of our own first, so that of two processes taking it over only one wins
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      let moved: string | null = null;
      try {
        moved = readlinkSync(aside);
      } catch {
        // nothing
      }
      if (moved !== null && moved !== target) {
        // another process took the stale lock between our look and our move: give its fresh lock back
        try {
          symlinkSync(moved, file);
        } catch {
          // a third one holds it now; the next round tells
        }
      }
      unlinkSync(aside);
    }
    throw new Error(`${file}: could not take the storage lock (it keeps changing); is another homeflex starting?`);
  }

  /** Gives the lock up (only if it is still ours). */
  release() {
    if (this.released) return;
    this.released = true;
    const file = join(this.dir, LOCK_FILE);
    try {
      if (readlinkSync(file) === encode(this.holder)) unlinkSync(file);
    } catch {
      // gone already
    }
  }
}
