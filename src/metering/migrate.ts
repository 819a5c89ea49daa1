import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { HubConfig } from '../core/config/schema.js';
import { lockHolder } from '../core/store/lock.js';
import { PgMeterStore, redactUrl } from './pg-store.js';
import { FLAG_REGISTER, type RowOp } from './records.js';
import type { MeterRecordStore } from './store-api.js';
import { MeterStore } from './store.js';

export interface MigrateIo {
  out(text: string): void;
  err(text: string): void;
  defaultConfig: string;
  loadConfig(file: string): HubConfig;
}

const USAGE = `Usage:
  homeflex migrate-store --to postgres [--url postgresql://…] [--config FILE]
      copies the meter records under <storage.dir>/metering into PostgreSQL (under the site id)
  homeflex migrate-store --to files [--url postgresql://…] [--config FILE]
      copies the site's meter records from PostgreSQL into <storage.dir>/metering
  The url defaults to storage.meters.postgres.url. The target must hold no records of the site yet;
  the source is left as it was. Both refuse while a hub runs on the storage directory.
`;

/** Every row of a store as put operations: interval rows with their labels, and register points. */
export function* storeRows(store: MeterRecordStore): Generator<RowOp> {
  const FAR = 8.64e15;
  for (const subject of store.subjectIds()) {
    const set = store.intervals(subject, -Infinity, Infinity, { labels: true });
    for (let i = 0; i < set.n; i++) {
      yield { op: 'put', subject, start: set.start[i], end: set.end[i], flags: set.flags[i], value: set.energy[i], confidence: set.confidence[i], session: set.session?.[i] ?? null, ref: set.ref?.[i] ?? null };
    }
    for (let flow = 0; flow < 6; flow++) {
      for (const p of store.pointsAround(subject, flow | FLAG_REGISTER, -FAR, FAR)) {
        yield { op: 'put', subject, start: p.time, end: p.time, flags: flow | FLAG_REGISTER, value: p.valueWh, confidence: 1, session: p.session, ref: p.ref };
      }
    }
  }
}

/** What a store holds, per subject: interval rows, register points, energy per flow (rounded to µWh). */
export function storeSummary(store: MeterRecordStore): Map<string, string> {
  const out = new Map<string, string>();
  const FAR = 8.64e15;
  for (const subject of [...store.subjectIds()].sort()) {
    const set = store.intervals(subject, -Infinity, Infinity);
    const energy = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < set.n; i++) energy[set.flags[i] & 7] += set.energy[i];
    let points = 0;
    for (let flow = 0; flow < 6; flow++) points += store.pointsAround(subject, flow | FLAG_REGISTER, -FAR, FAR).length;
    out.set(subject, `${set.n} intervals, ${points} register readings, Wh by flow ${energy.map((e) => e.toFixed(3)).join('/')}`);
  }
  return out;
}

/** Copies every row of `from` into `to` (in batches, each acknowledged), then compares what both hold. */
export async function copyStore(from: MeterRecordStore, to: MeterRecordStore, progress?: (rows: number) => void): Promise<{ rows: number; mismatches: string[] }> {
  let batch: RowOp[] = [];
  let rows = 0;
  const flush = async () => {
    if (!batch.length) return;
    const outcomes = await to.write(batch);
    const failed = outcomes.find((o) => typeof o === 'object');
    if (failed) throw new Error(`the target refused records: ${(failed as { error: string }).error}`);
    rows += batch.length;
    batch = [];
    progress?.(rows);
  };
  for (const op of storeRows(from)) {
    batch.push(op);
    if (batch.length >= 20_000) await flush();
  }
  await flush();
  const a = storeSummary(from);
  const b = storeSummary(to);
  const mismatches: string[] = [];
  for (const [subject, s] of a) if (b.get(subject) !== s) mismatches.push(`${subject}: source ${s}; target ${b.get(subject) ?? 'nothing'}`);
  for (const subject of b.keys()) if (!a.has(subject)) mismatches.push(`${subject}: only in the target`);
  return { rows, mismatches };
}

export async function migrateStoreCommand(argv: string[], io: MigrateIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { to: { type: 'string' }, url: { type: 'string' }, config: { type: 'string', short: 'c' } } }));
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.to !== 'postgres' && values.to !== 'files') {
    io.err(`--to: must be postgres or files${values.to ? ` (got "${values.to}")` : ''}\n${USAGE}`);
    return 2;
  }
  const configFile = values.config ?? io.defaultConfig;
  const config = io.loadConfig(configFile);
  const url = values.url ?? config.storage.meters?.postgres.url;
  if (!url) {
    io.err(`--url: needed (${configFile} has no storage.meters.postgres.url)\n`);
    return 2;
  }
  const dir = resolve(dirname(resolve(configFile)), config.storage.dir);
  const holder = existsSync(dir) ? lockHolder(dir) : null;
  if (holder) {
    io.err(`${dir} is in use by a running hub (pid ${holder.pid}); stop it first, then migrate\n`);
    return 1;
  }
  const siteId = config.site.id;
  const filesDir = join(dir, 'metering');
  let files: MeterStore | undefined;
  let pg: PgMeterStore | undefined;
  try {
    files = await MeterStore.open(filesDir, { readOnly: values.to === 'postgres' });
    pg = await PgMeterStore.open({ url, siteId, readOnly: values.to === 'files', writeWaitMs: 30_000 });
    const [from, to, fromName, toName] = values.to === 'postgres' ? [files, pg, filesDir, `${redactUrl(url)} (site ${siteId})`] : [pg, files, `${redactUrl(url)} (site ${siteId})`, filesDir];
    if (to.subjectIds().length) {
      io.err(`${toName} already holds meter records of ${to.subjectIds().length} meter(s); migrate into an empty store (move ${values.to === 'files' ? 'the directory' : "the site's rows"} away first)\n`);
      return 1;
    }
    io.out(`copying meter records from ${fromName} to ${toName}\n`);
    const t0 = Date.now();
    const { rows, mismatches } = await copyStore(from, to);
    if (mismatches.length) {
      for (const m of mismatches) io.err(`MISMATCH ${m}\n`);
      io.err(`the copy differs from the source (above); the source is unchanged\n`);
      return 1;
    }
    const meters = storeSummary(from);
    for (const [subject, s] of meters) io.out(`  ${subject}: ${s}\n`);
    io.out(`${rows} rows of ${meters.size} meter(s) copied and compared in ${((Date.now() - t0) / 1000).toFixed(1)} s; the source is unchanged.\n`);
    io.out(values.to === 'postgres' ? `Now set in ${configFile}:\n  storage:\n    meters:\n      postgres: { url: "${redactUrl(url)}" }\n` : `Now remove storage.meters from ${configFile}.\n`);
    return 0;
  } catch (err) {
    io.err(`migrate-store: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await files?.close();
    await pg?.close();
  }
}
