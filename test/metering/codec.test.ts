import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeBuckets, decodeRows, decodeSegmentHeader, emptyColumns, encodeSegment, readSection, type BucketColumns, type RowColumns, type SegmentHeader } from '../../src/metering/codec.js';
import { deviceSubject, flagsOf } from '../../src/metering/records.js';
import { MeterStore } from '../../src/metering/store.js';

const T0 = Date.UTC(2024, 1, 10);
const IMP = flagsOf('IMPORT', 'IMPORT');
const FIXED = 16; // magic + u32 header length + u32 header CRC

function rowsOf(n: number, session: string | null, ref: string | null): RowColumns {
  const cols = emptyColumns(n);
  if (session !== null) cols.strings.push(session);
  if (ref !== null) cols.strings.push(ref);
  for (let i = 0; i < n; i++) {
    cols.start[i] = T0 + i * 60_000;
    cols.end[i] = cols.start[i] + 60_000;
    cols.value[i] = i + 0.25;
    cols.confidence[i] = 1;
    cols.flags[i] = IMP;
    cols.session[i] = session === null ? -1 : 0;
    cols.ref[i] = ref === null ? -1 : session === null ? 0 : 1;
  }
  return cols;
}

function bucketsOf(n: number): BucketColumns {
  const b: BucketColumns = { n, quarter: new Uint32Array(n), flow: new Uint8Array(n), energy: new Float64Array(n), confidence: new Float32Array(n) };
  for (let i = 0; i < n; i++) {
    b.quarter[i] = T0 / 900_000 + i;
    b.energy[i] = (i * 7919) % 1000 + 0.125;
    b.confidence[i] = 1;
  }
  return b;
}

const headerOf = (subject: string, sessions: string[], rows: number): Omit<SegmentHeader, 'sections'> => ({
  subject,
  month: '2024-02',
  generation: 1,
  rows,
  intervals: rows,
  firstTime: T0,
  lastTime: T0 + rows * 60_000,
  sessions,
  streams: [],
});

const reader = (buf: Buffer) => (offset: number, length: number) => buf.subarray(offset, offset + length);

/** The header exactly as written (not as the reader interprets it). */
function rawHeader(buf: Buffer): SegmentHeader {
  return JSON.parse(buf.subarray(FIXED, FIXED + buf.readUInt32LE(8)).toString('utf8')) as SegmentHeader;
}

describe('meter segment encoding', () => {
  it('states the offsets where its sections really are, for every header length across 1,000 and 10,000 bytes', () => {
    // a session name growing one character at a time walks the header through every length, so the
    // section offsets cross each power of ten (where settling the header's own length takes extra passes)
    const rows = rowsOf(3, null, null);
    const buckets = bucketsOf(2);
    const misplaced: number[] = [];
    for (let len = 0; len <= 10_200; len++) {
      if (len > 1_200 && len < 9_600) continue;
      const buf = encodeSegment(headerOf('d.dev1', ['s'.repeat(len)], rows.n), rows, buckets);
      const { sections } = rawHeader(buf);
      const headerEnd = FIXED + buf.readUInt32LE(8);
      if (sections.buckets.offset !== headerEnd || sections.rows.offset !== headerEnd + sections.buckets.length || sections.rows.offset + sections.rows.length !== buf.length) misplaced.push(len);
    }
    expect(misplaced).toEqual([]);
  });

  it('round-trips subjects, sessions and references that are not ASCII', () => {
    const subject = deviceSubject('küche-wärmepumpe');
    const rows = rowsOf(50, 'Ladevorgang–1 ⚡', 'réf-№7');
    const buckets = bucketsOf(4);
    const buf = encodeSegment(headerOf(subject, ['Ladevorgang–1 ⚡'], rows.n), rows, buckets);
    const raw = rawHeader(buf);
    expect(raw.sections.buckets.offset).toBe(FIXED + buf.readUInt32LE(8));
    const header = decodeSegmentHeader(reader(buf));
    expect(header.subject).toBe(subject);
    const back = decodeRows(readSection(reader(buf), header.sections.rows, 'rows'));
    expect(back.n).toBe(50);
    expect(back.strings).toEqual(['Ladevorgang–1 ⚡', 'réf-№7']);
    expect([...back.start]).toEqual([...rows.start]);
    expect([...back.value]).toEqual([...rows.value]);
    expect([...decodeBuckets(readSection(reader(buf), header.sections.buckets, 'buckets')).energy]).toEqual([...buckets.energy]);
  });

  it('reads a segment whose header states its offsets one byte short (as written before the header length was settled correctly)', async () => {
    const rows = rowsOf(120, 'k7', 'r');
    const buckets = bucketsOf(8);
    const good = encodeSegment(headerOf(deviceSubject('dev1'), ['k7'], rows.n), rows, buckets);
    // rewrite the header the way the old encoder left it: same length, offsets one short
    const header = rawHeader(good);
    header.sections.buckets.offset -= 1;
    header.sections.rows.offset -= 1;
    const len = good.readUInt32LE(8);
    const headerBytes = Buffer.alloc(len, 0x20);
    headerBytes.write(JSON.stringify(header), 'utf8');
    const old = Buffer.from(good);
    headerBytes.copy(old, FIXED);
    old.writeUInt32LE(crc32(headerBytes), 12);
    expect(crc32(old.subarray(header.sections.rows.offset, header.sections.rows.offset + header.sections.rows.length))).not.toBe(header.sections.rows.crc);

    const dir = mkdtempSync(join(tmpdir(), 'hf-codec-'));
    mkdirSync(join(dir, encodeURIComponent(deviceSubject('dev1'))));
    writeFileSync(join(dir, encodeURIComponent(deviceSubject('dev1')), '2024-02.seg'), old);
    const store = await MeterStore.open(dir, { readOnly: true });
    try {
      const set = store.intervals(deviceSubject('dev1'), -Infinity, Infinity, { labels: true });
      expect(set.n).toBe(120);
      expect(set.energy[119]).toBe(119.25);
      expect(set.session![0]).toBe('k7');
      expect(store.buckets(deviceSubject('dev1'), T0, T0 + 86_400_000).n).toBe(8);
      expect(store.problems).toEqual([]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
