import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flagsOf, deviceSubject, type RowOp } from '../../src/metering/records.js';
import { MeterStore } from '../../src/metering/store.js';
import { meterStoresAfterEach } from './stores.js';

/**
 * A damaged byte in a meter log or segment loses only the records of the damaged range: the range
 * is kept in `<file>.damaged-<offset>`, reported (file, offset, records, time range), the frames
 * after it are found again, and the partition is read and written as before.
 */

const MIN = 60_000;
const T0 = Date.UTC(2024, 7, 1);
const IMP = flagsOf('IMPORT', 'IMPORT');
const ev = deviceSubject('ev');
const put = (k: number): RowOp => ({ op: 'put', subject: ev, start: T0 + k * MIN, end: T0 + (k + 1) * MIN, flags: IMP, value: k + 0.5, confidence: 1, session: null, ref: `r${k}` });
/** Batch b holds records 10b .. 10b+9: one log frame each. */
const batch = (b: number) => Array.from({ length: 10 }, (_, i) => put(b * 10 + i));

const open = meterStoresAfterEach();

const kept = (s: MeterStore) => {
  const set = s.intervals(ev, T0 - 86_400_000, T0 + 86_400_000, { labels: true });
  return set.ref!.map((r) => Number(r!.slice(1))).sort((a, b) => a - b);
};
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

async function threeFrames() {
  const dir = mkdtempSync(join(tmpdir(), 'hf-damage-'));
  const s = await open(dir);
  const sizes: number[] = [];
  const log = join(dir, encodeURIComponent(ev), '2024-08.log');
  for (let b = 0; b < 3; b++) {
    await s.write(batch(b));
    sizes.push(statSync(log).size);
  }
  await s.close();
  return { dir, log, frameStarts: [0, sizes[0], sizes[1]], size: sizes[2] };
}

const flip = (file: string, offset: number) => {
  const buf = readFileSync(file);
  buf[offset] ^= 0x10;
  writeFileSync(file, buf);
};

describe('a damaged byte in a meter log', () => {
  it('loses only the records of the damaged middle frame, keeps its bytes aside and says where and when', async () => {
    const { dir, log, frameStarts, size } = await threeFrames();
    const original = readFileSync(log);
    const middle = frameStarts[1];
    // a byte among the middle frame's values
    flip(log, middle + (frameStarts[2] - middle) - 20);
    const s = await open(dir);
    expect(kept(s)).toEqual([...range(0, 10), ...range(20, 30)]);
    const [d] = s.damage;
    expect(s.damage).toHaveLength(1);
    expect(d).toMatchObject({ kind: 'log', file: log, offset: middle, length: frameStarts[2] - middle, records: 10, firstTime: new Date(T0 + 10 * MIN).toISOString(), lastTime: new Date(T0 + 20 * MIN).toISOString(), aside: `${log}.damaged-${middle}` });
    // every byte kept: the damaged range as it was, the good frames in the log
    const aside = readFileSync(`${log}.damaged-${middle}`);
    expect(aside.length).toBe(frameStarts[2] - middle);
    expect(Buffer.concat([readFileSync(log).subarray(0, middle), aside, readFileSync(log).subarray(middle)]).length).toBe(size);
    expect(readFileSync(log).subarray(middle).equals(original.subarray(frameStarts[2]))).toBe(true);
    expect(s.health.ok).toBe(false);
    expect(s.problems.join('\n')).toMatch(/10 records, 2024-08-01T00:10:00.000Z to 2024-08-01T00:20:00.000Z/);
    // the partition takes writes again, and they survive a reopen
    expect(await s.write(batch(3))).toEqual(Array(10).fill('stored'));
    await s.close();
    const again = await open(dir);
    expect(kept(again)).toEqual([...range(0, 10), ...range(20, 40)]);
    // the damage set aside is still reported (from its description) until the user deletes it
    expect(again.damage).toEqual([expect.objectContaining({ file: log, offset: middle, records: 10, aside: `${log}.damaged-${middle}` })]);
  });

  it('never overwrites damage kept aside earlier when the same offset is damaged again', async () => {
    const { dir, log, frameStarts } = await threeFrames();
    flip(log, frameStarts[1] + 30);
    await (await open(dir)).close();
    const first = readFileSync(`${log}.damaged-${frameStarts[1]}`);
    // the third frame now sits where the second was; damage it too
    flip(log, frameStarts[1] + 30);
    const s = await open(dir);
    expect(kept(s)).toEqual(range(0, 10));
    expect(readFileSync(`${log}.damaged-${frameStarts[1]}`).equals(first)).toBe(true);
    expect(existsSync(`${log}.damaged-${frameStarts[1]}-2`)).toBe(true);
    expect(s.damage.map((d) => d.aside).sort()).toEqual([`${log}.damaged-${frameStarts[1]}`, `${log}.damaged-${frameStarts[1]}-2`]);
  });

  it('finds the frames again after a flipped bit in the first frame length field (the whole month was discarded before)', async () => {
    const { dir, log, frameStarts } = await threeFrames();
    flip(log, 1);
    const s = await open(dir);
    expect(kept(s)).toEqual(range(10, 30));
    expect(s.damage).toEqual([expect.objectContaining({ offset: 0, length: frameStarts[1], aside: `${log}.damaged-0` })]);
  });

  it('treats a whole last frame that fails its checksum as damage, not as a torn write', async () => {
    const { dir, log, frameStarts, size } = await threeFrames();
    flip(log, size - 3);
    const s = await open(dir);
    expect(kept(s)).toEqual(range(0, 20));
    expect(s.damage).toEqual([expect.objectContaining({ offset: frameStarts[2], records: 10, aside: `${log}.damaged-${frameStarts[2]}` })]);
  });

  it('only reports, and changes nothing, when opened read-only', async () => {
    const { dir, log, frameStarts } = await threeFrames();
    flip(log, frameStarts[1] + 30);
    const before = readFileSync(log);
    const s = await open(dir, { readOnly: true });
    expect(kept(s)).toEqual([...range(0, 10), ...range(20, 30)]);
    expect(s.damage).toEqual([expect.objectContaining({ offset: frameStarts[1], aside: null })]);
    expect(readFileSync(log).equals(before)).toBe(true);
    expect(readdirSync(join(dir, encodeURIComponent(ev)))).toEqual(['2024-08.log']);
  });
});

describe('a damaged compacted segment', () => {
  it('answers queries and takes writes, reports the records and time range it held, and keeps the file aside', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-damage-seg-'));
    const s = await open(dir);
    for (let b = 0; b < 3; b++) await s.write(batch(b));
    await s.compactAll();
    await s.close();
    const seg = join(dir, encodeURIComponent(ev), '2024-08.seg');
    // the last byte belongs to the rows section
    flip(seg, statSync(seg).size - 1);
    const again = await open(dir);
    // before: per-record queries threw (500 internal_error) and writes were refused
    expect(kept(again)).toEqual([]);
    expect(await again.write(batch(5))).toEqual(Array(10).fill('stored'));
    expect(kept(again)).toEqual(range(50, 60));
    const [d] = again.damage;
    expect(d).toMatchObject({ kind: 'segment', file: seg, records: 30, firstTime: new Date(T0).toISOString(), lastTime: new Date(T0 + 30 * MIN).toISOString() });
    expect(d.aside).toBe(`${seg}.damaged-${d.offset}`);
    expect(existsSync(d.aside!)).toBe(true);
    expect(again.health.ok).toBe(false);
  });

  it('is found by verify() even when no query touched it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-damage-seg-'));
    const s = await open(dir);
    await s.write(batch(0));
    await s.compactAll();
    await s.close();
    const seg = join(dir, encodeURIComponent(ev), '2024-08.seg');
    flip(seg, statSync(seg).size - 1);
    const ro = await open(dir, { readOnly: true });
    expect(ro.damage).toEqual([]);
    expect(ro.verify()).toEqual([expect.objectContaining({ kind: 'segment', file: seg, records: 10, aside: null })]);
  });
});

describe('meter store files', () => {
  it('are readable by the hub user only (0700 directories, 0600 files)', async () => {
    const { dir, log } = await threeFrames();
    expect(statSync(log).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, encodeURIComponent(ev))).mode & 0o777).toBe(0o700);
  });
});
