import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MeterStore } from '../../src/metering/store.js';
import { CRASH_BATCH, crashBatch } from './fixtures/crash-batch.js';

const child = join(import.meta.dirname, 'fixtures', 'ingest-child.ts');

/** Runs the ingesting child until it has acknowledged `acks` batches (plus a little), then SIGKILLs it. */
function ingestAndKill(dir: string, first: number, acks: number, extraMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dir, String(first)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let err = '';
    let buf = '';
    let killing = false;
    p.stderr.on('data', (b) => (err += b));
    p.stdout.on('data', (b) => {
      buf += b;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ack (\d+)$/.exec(line);
        if (m) acked.push(Number(m[1]));
      }
      if (!killing && acked.length >= acks) {
        killing = true;
        setTimeout(() => p.kill('SIGKILL'), extraMs);
      }
    });
    p.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`child exited with ${code}: ${err}`));
    });
  });
}

describe('meter store crash safety', () => {
  it('keeps every acknowledged record when the process is killed with SIGKILL mid-ingestion, again and again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-crash-'));
    const acked: number[] = [];
    let next = 0;
    for (const extraMs of [0, 3, 11, 27]) {
      const got = await ingestAndKill(dir, next, 12, extraMs);
      acked.push(...got);
      // the next run continues after the last batch it may have started
      next = Math.max(next, ...got) + 2;
      const store = await MeterStore.open(dir);
      try {
        const byKey = new Map<string, { value: number; ref: string | null }>();
        for (const d of ['dev0', 'dev1', 'dev2']) {
          const set = store.intervals(`d.${d}`, -Infinity, Infinity, { labels: true });
          for (let i = 0; i < set.n; i++) {
            // nothing but whole, well-formed records of batches that were written
            expect(set.ref![i]).toBe(`n${set.energy[i] - 0.5}`);
            byKey.set(`${d}|${set.start[i]}|${set.end[i]}`, { value: set.energy[i], ref: set.ref![i] });
          }
        }
        for (const k of acked) {
          for (const op of crashBatch(k)) {
            expect(byKey.get(`${op.subject.slice(2)}|${op.start}|${op.end}`), `batch ${k} record ${op.ref} after kill`).toEqual({ value: op.value, ref: op.ref });
          }
        }
        expect(byKey.size).toBeGreaterThanOrEqual(acked.length * CRASH_BATCH);
      } finally {
        await store.close();
      }
    }
    expect(acked.length).toBeGreaterThanOrEqual(48);
  }, 120_000);
});
