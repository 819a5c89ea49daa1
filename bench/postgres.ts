import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgMeterStore } from '../src/metering/pg-store.js';
import { deviceSubject, flagsOf, type RowOp } from '../src/metering/records.js';
import type { MeterRecordStore } from '../src/metering/store-api.js';
import { MeterStore } from '../src/metering/store.js';
import { startPostgres } from '../test/peers/postgres.js';
import type { BenchSection } from './types.js';

const METERS = Number(process.env.BENCH_PG_METERS ?? 40);
const DAYS = Number(process.env.BENCH_PG_DAYS ?? 30);
const BATCH = 1000;
const Q = 900_000;
const T0 = Date.UTC(2026, 0, 1);

/** 15-minute import records of METERS meters over DAYS days, meter by meter in time order, in batches as a fleet's gateways would send them. */
function* batches(): Generator<RowOp[]> {
  const flags = flagsOf('IMPORT', 'IMPORT');
  let batch: RowOp[] = [];
  for (let q = 0; q < DAYS * 96; q++) {
    for (let m = 0; m < METERS; m++) {
      batch.push({ op: 'put', subject: deviceSubject(`meter${m}`), start: T0 + q * Q, end: T0 + (q + 1) * Q, flags, value: 50 + ((m * 7 + q) % 200), confidence: 1, session: null, ref: null });
      if (batch.length === BATCH) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length) yield batch;
}

async function writeAll(store: MeterRecordStore): Promise<{ records: number; ms: number }> {
  let records = 0;
  const t0 = performance.now();
  for (const b of batches()) {
    const out = await store.write(b);
    if (out.some((o) => o !== 'stored')) throw new Error(`not stored: ${JSON.stringify(out.find((o) => o !== 'stored'))}`);
    records += b.length;
  }
  return { records, ms: performance.now() - t0 };
}

/** Write throughput of the PostgreSQL meter store against the file store, same records, one acknowledged batch after the other. */
export async function run(): Promise<BenchSection> {
  const server = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'hf-bench-pg-'));
  try {
    const files = await MeterStore.open(join(dir, 'metering'));
    const f = await writeAll(files);
    await files.close();
    const pg = await PgMeterStore.open({ url: server.url, siteId: 'bench' });
    const p = await writeAll(pg);
    await pg.close();
    const t0 = performance.now();
    const reopened = await PgMeterStore.open({ url: server.url, siteId: 'bench', readOnly: true });
    const loadMs = performance.now() - t0;
    const n = reopened.intervals(deviceSubject('meter0'), -Infinity, Infinity).n;
    await reopened.close();
    if (n !== DAYS * 96) throw new Error(`meter0 holds ${n} records after the run, expected ${DAYS * 96}`);
    const rate = (r: { records: number; ms: number }) => `${Math.round(r.records / (r.ms / 1000)).toLocaleString('en')} records/s (${r.records.toLocaleString('en')} in ${(r.ms / 1000).toFixed(1)} s)`;
    return {
      title: 'PostgreSQL meter store (issue 19): write throughput',
      rows: [
        { name: `PostgreSQL store, batches of ${BATCH} (one transaction each, acknowledged after COMMIT)`, value: rate(p) },
        { name: `file store, same batches (fsync'd log per meter and month)`, value: rate(f) },
        { name: `hub start on PostgreSQL: ${p.records.toLocaleString('en')} records loaded`, value: `${(loadMs / 1000).toFixed(1)} s` },
      ],
      notes: [
        `${METERS} meters × ${DAYS} days of 15-minute records (BENCH_PG_METERS, BENCH_PG_DAYS), a PostgreSQL 15 server started by the benchmark in a temp directory (initdb, default settings, fsync on), on the same machine.`,
        'Each PostgreSQL batch upserts the records and recomputes their 15-minute buckets in the same transaction.',
      ],
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
