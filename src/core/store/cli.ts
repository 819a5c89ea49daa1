import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { HubConfig } from '../config/schema.js';
import { MeterStore, type DamageReport } from '../../metering/store.js';
import { StorageLock, StorageLockedError, lockHolder, LOCK_FILE } from './lock.js';
import { completeSections, StoreError, StateStore } from './state.js';

export interface StoreCommandIo {
  out(text: string): void;
  err(text: string): void;
  defaultConfig: string;
  loadConfig(file: string): HubConfig;
}

const USAGE = `usage: homeflex store check [--config FILE]    list damaged meter data and state problems; exit 1 when there are any
       homeflex store repair [--config FILE]   move damaged ranges aside (nothing is deleted) so the rest is read and written again
Both refuse to run while a hub uses the storage directory.
`;

const line = (d: DamageReport) =>
  `DAMAGED ${d.file} at byte ${d.offset} (${d.length} bytes): ${d.records ?? 'an unknown number of'} records, ${d.firstTime ?? '?'} to ${d.lastTime ?? '?'}` +
  (d.aside ? `; kept in ${d.aside}` : '; still in place (homeflex store repair moves it aside)');

/** Problems of the state file, without changing it. */
function checkState(dir: string): string[] {
  const file = join(dir, 'state.json');
  if (!existsSync(file)) return [];
  try {
    const text = readFileSync(file, 'utf8');
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if (typeof parsed?.schema_version !== 'number') return [`${file}: not a homeflex state file (no schema_version)`];
    const filled = completeSections(parsed, file);
    return filled.length ? [`${file}: section(s) ${filled.join(', ')} missing (the hub starts them empty)`] : [];
  } catch (err) {
    return [err instanceof StoreError ? err.message : `${file}: not valid JSON (${(err as Error).message})`];
  }
}

/**
 * `homeflex store check|repair`: looks at (or mends) the storage directory of a site file while no
 * hub runs on it. Exit codes: 0 nothing damaged, 1 damage found (check) or left (repair), 2 could
 * not run (usage, a running hub, unreadable storage).
 */
export async function storeCommand(argv: string[], io: StoreCommandIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action !== 'check' && action !== 'repair') {
    io.err(USAGE);
    return 2;
  }
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
  const configFile = values.config ?? io.defaultConfig;
  const config = io.loadConfig(configFile);
  const dir = resolve(dirname(resolve(configFile)), config.storage.dir);
  if (!existsSync(dir)) {
    io.out(`${dir}: no storage yet (the hub creates it when it first starts); nothing to ${action}\n`);
    return 0;
  }
  const holder = lockHolder(dir);
  if (holder) {
    io.err(`${join(dir, LOCK_FILE)}: a homeflex (pid ${holder.pid}, started ${holder.startedAt}) is using this storage; stop it before homeflex store ${action}\n`);
    return 2;
  }
  let lock: StorageLock;
  try {
    // held while we look, so no hub starts on the storage meanwhile
    lock = StorageLock.acquire(dir);
  } catch (err) {
    io.err(`${err instanceof StorageLockedError ? '' : 'cannot lock the storage: '}${(err as Error).message}\n`);
    return 2;
  }
  try {
    return action === 'check' ? await check(dir, io) : await repair(dir, io);
  } finally {
    lock.release();
  }
}

async function check(dir: string, io: StoreCommandIo): Promise<number> {
  const problems = checkState(dir);
  const store = await MeterStore.open(join(dir, 'metering'), { readOnly: true });
  const damage = store.verify();
  await store.close();
  for (const p of problems) io.out(`STATE ${p}\n`);
  for (const d of damage) io.out(`${line(d)}\n`);
  for (const p of store.problems.filter((x) => x.includes('incomplete write'))) io.out(`NOTE ${p}\n`);
  const affected = damage.reduce((n, d) => n + (d.records ?? 0), 0);
  if (!problems.length && !damage.length) {
    io.out(`${dir}: no damage found (${store.subjectIds().length} meters checked)\n`);
    return 0;
  }
  io.out(`${damage.length} damaged range(s), ${affected} records affected${damage.some((d) => d.records === null) ? ' at least' : ''}; ${problems.length} state problem(s)\n`);
  if (damage.some((d) => !d.aside)) io.out('homeflex store repair moves the damaged ranges aside so the records after them are read and written again (nothing is deleted).\n');
  if (damage.some((d) => d.aside)) io.out('Ranges already kept aside hold records no query sees: restore them from a backup if you have one, then delete the .damaged-* files (and their .json) to clear this.\n');
  return 1;
}

async function repair(dir: string, io: StoreCommandIo): Promise<number> {
  let left = 0;
  const problems = checkState(dir);
  if (problems.some((p) => p.includes('missing'))) {
    // opening fills the missing sections; writing it keeps them
    const state = await StateStore.open(dir);
    await state.flush();
    io.out(`STATE ${join(dir, 'state.json')}: missing sections added (empty)\n`);
  } else {
    for (const p of problems) io.out(`STATE ${p} (not repaired: restore it from a backup or move it away)\n`);
    left += problems.length;
  }
  const store = await MeterStore.open(join(dir, 'metering'));
  const damage = store.verify();
  await store.close();
  for (const d of damage) {
    io.out(`${line(d)}\n`);
    if (!d.aside) left++;
  }
  for (const p of store.problems.filter((x) => x.includes('incomplete write'))) io.out(`NOTE ${p}\n`);
  if (left) {
    io.out(`${left} problem(s) could not be repaired (see above)\n`);
    return 1;
  }
  io.out(damage.length ? `${dir}: damaged ranges kept aside; every other record is read and written again\n` : `${dir}: nothing to repair\n`);
  return 0;
}
