import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flagsOf, deviceSubject, type RowOp } from '../../src/metering/records.js';
import { MeterStore } from '../../src/metering/store.js';
import { meterStoresAfterEach } from './stores.js';

const H = 3_600_000;
const T0 = Date.UTC(2024, 7, 1);
const IMP = flagsOf('IMPORT', 'IMPORT');
const ev = deviceSubject('ev');

const put = (start: number, end: number, value: number, extra: Partial<RowOp> = {}): RowOp => ({ op: 'put', subject: ev, start, end, flags: IMP, value, confidence: 1, session: null, ref: null, ...extra });

const open = meterStoresAfterEach();

const sum = (s: MeterStore, subject = ev, from = T0 - 40 * 24 * H, to = T0 + 400 * 24 * H) => {
  const set = s.intervals(subject, from, to);
  let e = 0;
  for (let i = 0; i < set.n; i++) e += set.energy[i];
  return { n: set.n, energy: e };
};

describe('meter store', () => {
  it('replaces a record sent again for the same key instead of doubling it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-meter-'));
    const s = await open(dir);
    expect(await s.write([put(T0, T0 + H, 1000), put(T0 + H, T0 + 2 * H, 500)])).toEqual(['stored', 'stored']);
    expect(await s.write([put(T0, T0 + H, 1000)])).toEqual(['same']);
    expect(await s.write([put(T0, T0 + H, 1200)])).toEqual(['stored']);
    expect(sum(s)).toEqual({ n: 2, energy: 1700 });
    // same start, other end or other tariff rate: a different record
    await s.write([put(T0, T0 + 2 * H, 10), put(T0, T0 + H, 7, { flags: flagsOf('IMPORT', 'LOCAL') })]);
    expect(sum(s)).toEqual({ n: 4, energy: 1717 });
  });

  it('lets an actual replace a forecast but never a forecast replace an actual', async () => {
    const s = await open(mkdtempSync(join(tmpdir(), 'hf-meter-')));
    expect(await s.write([put(T0, T0 + H, 900, { confidence: 0.5 })])).toEqual(['stored']);
    expect(await s.write([put(T0, T0 + H, 800, { confidence: 0.7 })])).toEqual(['stored']);
    expect(await s.write([put(T0, T0 + H, 1000)])).toEqual(['stored']);
    expect(await s.write([put(T0, T0 + H, 500, { confidence: 0.9 })])).toEqual(['ignored']);
    expect(sum(s).energy).toBe(1000);
    // within one batch too
    expect(await s.write([put(T0 + H, T0 + 2 * H, 5), put(T0 + H, T0 + 2 * H, 6, { confidence: 0.2 })])).toEqual(['stored', 'ignored']);
    expect(sum(s).energy).toBe(1005);
  });

  it('keeps every row across reopen and compaction, with references and sessions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-meter-'));
    const s = await open(dir);
    const ops: RowOp[] = [];
    for (let i = 0; i < 3000; i++) ops.push(put(T0 + i * 60_000, T0 + (i + 1) * 60_000, i % 7, { session: i < 1500 ? 's1' : 's2', ref: `r${i}` }));
    await s.write(ops);
    await s.write([put(T0, T0 + 60_000, 99, { session: 's1', ref: 'r0b' })]);
    const before = s.intervals(ev, T0, T0 + 100 * H, { labels: true });
    await s.close();
    const again = await open(dir);
    const reopened = again.intervals(ev, T0, T0 + 100 * H, { labels: true });
    expect(reopened.n).toBe(3000);
    expect([...reopened.energy].reduce((a, b) => a + b)).toBe([...before.energy].reduce((a, b) => a + b));
    await again.compactAll();
    const files = readdirSync(join(dir, 'd.ev'));
    expect(files).toContain('2024-08.seg');
    expect(statSync(join(dir, 'd.ev', '2024-08.log')).size).toBe(0);
    await again.close();
    const third = await open(dir);
    const compacted = third.intervals(ev, T0, T0 + 100 * H, { labels: true });
    expect(compacted.n).toBe(3000);
    const i0 = [...compacted.start].indexOf(T0);
    expect(compacted.energy[i0]).toBe(99);
    expect(compacted.ref![i0]).toBe('r0b');
    expect(third.sessionSubjects('s2')).toEqual([ev]);
    expect(third.intervals(ev, -Infinity, Infinity, { session: 's2' }).n).toBe(1500);
    await third.close();
    // buckets straight from the segment, without loading rows
    const fourth = await open(dir);
    const b = fourth.buckets(ev, T0, T0 + 60 * H);
    expect(fourth.rowsInMemory).toBe(0);
    expect([...b.energy].reduce((x, y) => x + y)).toBeCloseTo([...compacted.energy].reduce((x, y) => x + y), 9);
    expect(b.n).toBe(200); // 3000 minutes = 200 quarter hours
  });

  it('spreads a long record pro rata over 15-minute buckets, also across a month boundary', async () => {
    const s = await open(mkdtempSync(join(tmpdir(), 'hf-meter-')));
    const end = Date.UTC(2024, 7, 1, 1);
    await s.write([put(end - 2 * H, end, 2000)]); // 23:00 Jul 31 → 01:00 Aug 1 UTC
    const aug = s.buckets(ev, Date.UTC(2024, 7, 1), Date.UTC(2024, 8, 1));
    expect(aug.n).toBe(4);
    expect([...aug.energy].reduce((a, b) => a + b)).toBeCloseTo(1000, 9);
    const both = s.intervals(ev, Date.UTC(2024, 7, 1), Date.UTC(2024, 7, 2));
    expect(both.n).toBe(1);
  });

  it('truncates a torn log tail left by a crash and keeps it aside; the acknowledged rows survive', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-meter-'));
    const s = await open(dir);
    await s.write([put(T0, T0 + H, 1), put(T0 + H, T0 + 2 * H, 2)]);
    await s.close();
    const log = join(dir, 'd.ev', '2024-08.log');
    const good = statSync(log).size;
    // a frame header promising more bytes than follow: an interrupted write
    const torn = Buffer.alloc(20);
    torn.writeUInt32LE(5000, 0);
    appendFileSync(log, torn);
    const again = await open(dir);
    expect(again.problems.join('\n')).toMatch(/incomplete write of 20 bytes/);
    expect(statSync(log).size).toBe(good);
    expect(readdirSync(join(dir, 'd.ev')).some((f) => f.startsWith('2024-08.log.torn-'))).toBe(true);
    expect(sum(again).energy).toBe(3);
    // and writing goes on after it
    await again.write([put(T0 + 2 * H, T0 + 3 * H, 4)]);
    await again.close();
    expect(sum(await open(dir)).energy).toBe(7);
  });

  it('skips a torn tail without touching the file when opened read-only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-meter-'));
    const s = await open(dir);
    await s.write([put(T0, T0 + H, 1)]);
    await s.close();
    const log = join(dir, 'd.ev', '2024-08.log');
    appendFileSync(log, Buffer.from([1, 2, 3]));
    const size = statSync(log).size;
    const ro = await open(dir, { readOnly: true });
    expect(sum(ro).energy).toBe(1);
    expect(statSync(log).size).toBe(size);
    await expect(ro.write([put(T0, T0 + H, 2)])).rejects.toThrow(/read-only/);
  });

  it('moves a damaged segment aside with a clear problem instead of refusing to start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-meter-'));
    const s = await open(dir);
    await s.write([put(T0, T0 + H, 1)]);
    await s.compactAll();
    await s.close();
    const seg = join(dir, 'd.ev', '2024-08.seg');
    const bytes = readFileSync(seg);
    bytes[20] ^= 0xff;
    writeFileSync(seg, bytes);
    const again = await open(dir);
    expect(again.problems[0]).toMatch(/2024-08\.seg: segment header fails its checksum; moved to .*damaged/);
    expect(existsSync(seg)).toBe(false);
  });

  it('refuses a store written by a newer version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-meter-'));
    writeFileSync(join(dir, 'FORMAT'), JSON.stringify({ format: 'homeflex-meter-store', version: 9 }));
    await expect(MeterStore.open(dir)).rejects.toThrow(/newer homeflex .*version 9/);
  });

  it('drops least recently used partitions from memory over its budget and reads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-meter-'));
    const s = await open(dir, { maxLoadedRows: 5000 });
    for (let m = 0; m < 4; m++) {
      const start = Date.UTC(2024, m, 1);
      const ops: RowOp[] = [];
      for (let i = 0; i < 3000; i++) ops.push(put(start + i * 60_000, start + (i + 1) * 60_000, 1));
      await s.write(ops);
    }
    expect(s.rowsInMemory).toBeLessThanOrEqual(5000);
    expect(sum(s, ev, Date.UTC(2024, 0, 1), Date.UTC(2025, 0, 1))).toEqual({ n: 12000, energy: 12000 });
  });
});
