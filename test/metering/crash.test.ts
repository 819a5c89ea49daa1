import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MeterStore } from '../../src/metering/store.js';
import { CRASH_BATCH, crashBatch } from './fixtures/crash-batch.js';

const child = join(import.meta.dirname, 'fixtures', 'ingest-child.ts');
const DEVICES = ['dev0', 'dev1', 'dev2'];

interface Round {
  /** The child compacts after every this many batches. */
  compactEvery: number;
  /** Batches to acknowledge before the kill is armed. */
  acks: number;
  /** Armed, the kill waits for the next "compacting" line instead of the next ack. */
  duringCompaction: boolean;
  /** Milliseconds between the trigger and the SIGKILL. */
  delayMs: number;
}

/** Runs the ingesting child until the round's trigger, then SIGKILLs it; resolves with the batches it acknowledged. */
function ingestAndKill(dir: string, first: number, round: Round): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dir, String(first), String(round.compactEvery)], { stdio: ['ignore', 'pipe', 'pipe'] });
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
        if (!killing && acked.length >= round.acks && (!round.duringCompaction || line.startsWith('compacting '))) {
          killing = true;
          setTimeout(() => p.kill('SIGKILL'), round.delayMs);
        }
      }
    });
    p.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`child exited with ${code}: ${err}`));
    });
  });
}

/** Files left in the store that are neither FORMAT, a partition's segment or log, nor a kept-aside torn tail. */
function strayFiles(dir: string): string[] {
  const out: string[] = [];
  for (const sub of readdirSync(dir, { withFileTypes: true })) {
    if (!sub.isDirectory()) continue;
    for (const f of readdirSync(join(dir, sub.name))) if (!/^\d{4}-\d{2}\.(seg|log)(\.torn-\d+)?$/.test(f)) out.push(`${sub.name}/${f}`);
  }
  return out;
}

describe('meter store crash safety', () => {
  it('keeps every acknowledged record exactly once when the process is killed with SIGKILL mid-ingestion and mid-compaction, again and again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-crash-'));
    const rounds: Round[] = [
      // killed at some moment after an acknowledgement, compacting now and then
      ...[0, 3, 11, 27].map((delayMs) => ({ compactEvery: 5, acks: 12, duringCompaction: false, delayMs })),
      // compacting after every batch and killed while a compaction runs: writing the new segment,
      // renaming it, or emptying the log
      ...[0, 1, 2, 4, 0, 3].map((delayMs) => ({ compactEvery: 1, acks: 6, duringCompaction: true, delayMs })),
    ];
    const acked: number[] = [];
    let next = 0;
    for (const [r, round] of rounds.entries()) {
      const got = await ingestAndKill(dir, next, round);
      expect(got.length, `round ${r} acknowledged`).toBeGreaterThanOrEqual(round.acks);
      acked.push(...got);
      // the next run continues after the last batch it may have started
      next = Math.max(next, ...got) + 2;
      const store = await MeterStore.open(dir);
      try {
        // an interrupted write may leave a torn log tail, never a damaged segment
        expect(store.problems.filter((p) => !p.includes('removed an incomplete write')), `round ${r} problems`).toEqual([]);
        expect(strayFiles(dir), `round ${r} files`).toEqual([]);
        const byKey = new Map<string, { value: number; ref: string | null }>();
        const malformed: string[] = [];
        let rows = 0;
        for (const d of DEVICES) {
          // the bucket sections first, while the partitions are not loaded (read from the segment when its log is empty)
          const buckets = store.buckets(`d.${d}`, Date.UTC(2024, 0, 1), Date.UTC(2025, 0, 1));
          const set = store.intervals(`d.${d}`, -Infinity, Infinity, { labels: true });
          let energy = 0;
          for (let i = 0; i < set.n; i++) {
            // nothing but whole, well-formed records of batches that were written
            if (set.ref![i] !== `n${set.energy[i] - 0.5}`) malformed.push(`${d} ${set.start[i]}: ${set.energy[i]} ${set.ref![i]}`);
            byKey.set(`${d}|${set.start[i]}|${set.end[i]}`, { value: set.energy[i], ref: set.ref![i] });
            energy += set.energy[i];
          }
          rows += set.n;
          // half-Wh values inside one quarter hour each: the bucket sums are exact
          expect([...buckets.energy].reduce((a, b) => a + b, 0), `round ${r} ${d} buckets`).toBe(energy);
        }
        expect(malformed.slice(0, 5), `round ${r} malformed records`).toEqual([]);
        // each record once
        expect(byKey.size, `round ${r} distinct records`).toBe(rows);
        const lost: string[] = [];
        for (const k of acked) {
          for (const op of crashBatch(k)) {
            const got = byKey.get(`${op.subject.slice(2)}|${op.start}|${op.end}`);
            if (got?.value !== op.value || got.ref !== op.ref) lost.push(`batch ${k} record ${op.ref}: ${JSON.stringify(got)}`);
          }
        }
        expect(lost.slice(0, 5), `round ${r}: acknowledged records missing or changed after the kill (${lost.length})`).toEqual([]);
        expect(byKey.size).toBeGreaterThanOrEqual(acked.length * CRASH_BATCH);
      } finally {
        await store.close();
      }
    }
    expect(acked.length).toBeGreaterThanOrEqual(84);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
