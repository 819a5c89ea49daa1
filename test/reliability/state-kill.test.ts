import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateStore } from '../../src/core/store/state.js';

const root = resolve(import.meta.dirname, '..', '..');

describe('state store under SIGKILL', () => {
  it('opens after 20 kills at random moments during plan writes, with every acknowledged plan present', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-kill-'));
    let lastAck = 0;
    for (let round = 0; round < 20; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'reliability', 'fixtures', 'state-writer.ts'), dir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b) => (out += b));
      child.stderr.on('data', (b) => (err += b));
      // wait for the first acknowledged write, then kill at a random moment
      while (!out.includes('ack') && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
      expect(err).toBe('');
      await new Promise((r) => setTimeout(r, Math.random() * 150));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      const acks = [...out.matchAll(/ack (\d+)/g)].map((m) => Number(m[1]));
      const acked = Math.max(...acks);
      expect(acked).toBeGreaterThan(lastAck);
      const store = await StateStore.open(dir);
      const last = store.data.plans.history.at(-1) as unknown as { n: number };
      // the acknowledged write is there; at most the one in flight after it
      expect(last.n).toBeGreaterThanOrEqual(acked);
      expect(last.n).toBeLessThanOrEqual(acked + 1);
      expect((store.data.plans.latest as { id: string }).id).toBe(`plan-${last.n}`);
      lastAck = last.n;
    }
    // temporary files of interrupted writes are cleaned up when the store opens
    await StateStore.open(dir);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
