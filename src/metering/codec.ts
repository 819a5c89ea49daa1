import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * Binary layouts of the meter store. Rows travel as columns (one typed array per field) so that
 * encoding, decoding and scanning a month of 1-minute records is a handful of memory copies.
 *
 * Log frame:  u32 payload length | u32 CRC-32 of payload | payload (a row batch)
 * Row batch:  u8 version | u8 layout | u16 0 | u32 rows | u32 strings | strings (u16 length + UTF-8)
 *             | pad to 8 | f64 start | f64 end | f64 value | f32 confidence | i32 session | i32 ref | u8 flags
 *             Layout 1 stores start and end as they are; layout 2 (segments) stores the difference of
 *             each start from the one before and the duration, which repeat for regular records and deflate well.
 * Segment:    "HFSEG001" | u32 header length | u32 header CRC | header JSON | deflated sections
 */

export const FLAG_DELETE = 16;

export interface RowColumns {
  n: number;
  start: Float64Array;
  end: Float64Array;
  value: Float64Array;
  confidence: Float32Array;
  flags: Uint8Array;
  /** Index into `strings`, or -1. */
  session: Int32Array;
  ref: Int32Array;
  strings: string[];
}

export class CorruptDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptDataError';
  }
}

const pad8 = (n: number) => (n + 7) & ~7;

type Column = Float64Array | Float32Array | Uint8Array | Int32Array;

/** A copy of a column in a longer array of the same type (the rest zero). */
export function grownColumn<T extends Column>(a: T, Type: { new (n: number): T }, cap: number): T {
  const b = new Type(cap);
  b.set(a);
  return b;
}

export function emptyColumns(n: number): RowColumns {
  return {
    n,
    start: new Float64Array(n),
    end: new Float64Array(n),
    value: new Float64Array(n),
    confidence: new Float32Array(n),
    flags: new Uint8Array(n),
    session: new Int32Array(n),
    ref: new Int32Array(n),
    strings: [],
  };
}

/** Encodes a row batch; `delta` selects the segment layout (start deltas and durations). */
export function encodeRows(cols: RowColumns, delta = false): Buffer {
  const { n } = cols;
  const encodedStrings = cols.strings.map((s) => Buffer.from(s, 'utf8'));
  let stringBytes = 0;
  for (const b of encodedStrings) {
    if (b.length > 0xffff) throw new Error('string too long for the meter store');
    stringBytes += 2 + b.length;
  }
  const head = pad8(12 + stringBytes);
  const size = head + n * (8 + 8 + 8 + 4 + 4 + 4 + 1);
  const ab = new ArrayBuffer(size);
  const buf = Buffer.from(ab);
  buf[0] = 1;
  buf[1] = delta ? 2 : 1;
  buf.writeUInt32LE(n, 4);
  buf.writeUInt32LE(encodedStrings.length, 8);
  let off = 12;
  for (const b of encodedStrings) {
    buf.writeUInt16LE(b.length, off);
    b.copy(buf, off + 2);
    off += 2 + b.length;
  }
  off = head;
  const start = new Float64Array(ab, off, n);
  const end = new Float64Array(ab, off + 8 * n, n);
  if (delta) {
    let prev = 0;
    for (let i = 0; i < n; i++) {
      start[i] = cols.start[i] - prev;
      prev = cols.start[i];
      end[i] = cols.end[i] - cols.start[i];
    }
  } else {
    start.set(cols.start.subarray(0, n));
    end.set(cols.end.subarray(0, n));
  }
  off += 16 * n;
  new Float64Array(ab, off, n).set(cols.value.subarray(0, n));
  off += 8 * n;
  new Float32Array(ab, off, n).set(cols.confidence.subarray(0, n));
  off += 4 * n;
  new Int32Array(ab, off, n).set(cols.session.subarray(0, n));
  off += 4 * n;
  new Int32Array(ab, off, n).set(cols.ref.subarray(0, n));
  off += 4 * n;
  new Uint8Array(ab, off, n).set(cols.flags.subarray(0, n));
  return buf;
}

/** Copies `count` elements of a typed-array type out of `buf` at `off`, whatever its alignment. */
function column<T extends Float64Array | Float32Array | Int32Array | Uint32Array | Uint8Array>(
  Type: { new (buffer: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
  buf: Buffer,
  off: number,
  count: number,
): T {
  const bytes = count * Type.BYTES_PER_ELEMENT;
  if (off + bytes > buf.length) throw new CorruptDataError('row batch is shorter than its row count says');
  const copy = new ArrayBuffer(bytes);
  new Uint8Array(copy).set(buf.subarray(off, off + bytes));
  return new Type(copy);
}

export function decodeRows(buf: Buffer): RowColumns {
  if (buf.length < 12 || buf[0] !== 1 || (buf[1] !== 1 && buf[1] !== 2)) throw new CorruptDataError('unknown row batch version');
  const delta = buf[1] === 2;
  const n = buf.readUInt32LE(4);
  const ns = buf.readUInt32LE(8);
  const strings: string[] = new Array(ns);
  let off = 12;
  for (let i = 0; i < ns; i++) {
    if (off + 2 > buf.length) throw new CorruptDataError('string table runs past the end');
    const len = buf.readUInt16LE(off);
    strings[i] = buf.toString('utf8', off + 2, off + 2 + len);
    off += 2 + len;
  }
  off = pad8(off);
  const start = column(Float64Array, buf, off, n);
  const end = column(Float64Array, buf, off + 8 * n, n);
  off += 16 * n;
  if (delta) {
    let prev = 0;
    for (let i = 0; i < n; i++) {
      prev += start[i];
      start[i] = prev;
      end[i] += prev;
    }
  }
  const value = column(Float64Array, buf, off, n);
  off += 8 * n;
  const confidence = column(Float32Array, buf, off, n);
  off += 4 * n;
  const session = column(Int32Array, buf, off, n);
  off += 4 * n;
  const ref = column(Int32Array, buf, off, n);
  off += 4 * n;
  const flags = column(Uint8Array, buf, off, n);
  for (let i = 0; i < n; i++) {
    if (session[i] >= ns || ref[i] >= ns) throw new CorruptDataError('row refers to a string that is not in the batch');
  }
  return { n, start, end, value, confidence, flags, session, ref, strings };
}

// ------------------------------------------------------------------ log frames

export const FRAME_HEADER = 8;
/** No frame is larger than this; a larger length field is garbage from a torn write. */
export const MAX_FRAME = 64 * 1024 * 1024;

export function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  payload.copy(out, FRAME_HEADER);
  return out;
}

/**
 * Splits a log into its frames. Stops at the first frame that is incomplete or fails its CRC: after
 * a crash that is the torn tail of an unacknowledged write. `goodLength` is where the valid frames end.
 */
export function scanFrames(buf: Buffer): { payloads: Buffer[]; goodLength: number } {
  const payloads: Buffer[] = [];
  let off = 0;
  while (off + FRAME_HEADER <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len === 0 || len > MAX_FRAME || off + FRAME_HEADER + len > buf.length) break;
    const payload = buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len);
    if (crc32(payload) !== buf.readUInt32LE(off + 4)) break;
    payloads.push(payload);
    off += FRAME_HEADER + len;
  }
  return { payloads, goodLength: off };
}

/** A byte range of a log that holds no valid frame. */
export interface BadRange {
  offset: number;
  length: number;
}

export interface LogScan {
  /** Valid frames in order, with where each starts. */
  frames: { offset: number; payload: Buffer }[];
  /** Ranges followed by a valid frame: damaged acknowledged data (a flipped bit, a bad sector). */
  damaged: BadRange[];
  /** A last range with no valid frame after it: the torn end of an interrupted write, or damage to the last frame. */
  tail: BadRange | null;
}

/** Whether a valid frame starts at `off`: a plausible length, a row batch header, and a matching CRC. */
function frameAt(buf: Buffer, off: number): Buffer | null {
  if (off + FRAME_HEADER + 12 > buf.length) return null;
  const len = buf.readUInt32LE(off);
  if (len < 12 || len > MAX_FRAME || off + FRAME_HEADER + len > buf.length) return null;
  const p = off + FRAME_HEADER;
  // cheap checks first, so that hunting for the next frame byte by byte rarely computes a CRC
  if (buf[p] !== 1 || (buf[p + 1] !== 1 && buf[p + 1] !== 2) || buf[p + 2] !== 0 || buf[p + 3] !== 0) return null;
  if (12 + buf.readUInt32LE(p + 4) * 37 > len) return null;
  const payload = buf.subarray(p, p + len);
  return crc32(payload) === buf.readUInt32LE(off + 4) ? payload : null;
}

/**
 * Splits a log into its frames, stepping over damage: where a frame fails its checks, the next
 * valid frame is searched for byte by byte (its header and CRC), and the bytes in between are
 * reported as damaged. Bytes after the last valid frame are the `tail`.
 */
export function scanLog(buf: Buffer): LogScan {
  const frames: LogScan['frames'] = [];
  const damaged: BadRange[] = [];
  let off = 0;
  while (off < buf.length) {
    const payload = frameAt(buf, off);
    if (payload) {
      frames.push({ offset: off, payload });
      off += FRAME_HEADER + payload.length;
      continue;
    }
    let next = -1;
    for (let o = off + 1; o + FRAME_HEADER + 12 <= buf.length; o++) {
      if (frameAt(buf, o)) {
        next = o;
        break;
      }
    }
    if (next < 0) return { frames, damaged, tail: { offset: off, length: buf.length - off } };
    damaged.push({ offset: off, length: next - off });
    off = next;
  }
  return { frames, damaged, tail: null };
}

/** What a damaged range most likely held: the row count and times its first frame header states, when they look sane. */
export function describeDamage(bytes: Buffer): { records: number | null; firstTime: number | null; lastTime: number | null } {
  const none = { records: null, firstTime: null, lastTime: null };
  if (bytes.length < FRAME_HEADER + 12) return none;
  const len = bytes.readUInt32LE(0);
  if (len < 12 || len > bytes.length - FRAME_HEADER) return none;
  const payload = bytes.subarray(FRAME_HEADER, FRAME_HEADER + len);
  const n = payload.readUInt32LE(4);
  const records = payload[0] === 1 && 12 + n * 37 <= len ? n : null;
  try {
    const cols = decodeRows(payload);
    let first = Infinity;
    let last = -Infinity;
    for (let i = 0; i < cols.n; i++) {
      if (!(cols.start[i] > 0 && cols.end[i] >= cols.start[i] && cols.end[i] < 8.64e15)) return { ...none, records };
      first = Math.min(first, cols.start[i]);
      last = Math.max(last, cols.end[i]);
    }
    return cols.n ? { records: cols.n, firstTime: first, lastTime: last } : { ...none, records };
  } catch {
    return { ...none, records };
  }
}

// ------------------------------------------------------------------ segments

const SEG_MAGIC = Buffer.from('HFSEG001', 'latin1');

export interface SectionRef {
  offset: number;
  length: number;
  crc: number;
}

/** Per register stream: the first and last reading kept in the segment. */
export interface StreamSummary {
  flags: number;
  first: number;
  last: [time: number, valueWh: number, session: string | null];
}

export interface SegmentHeader {
  subject: string;
  month: string;
  generation: number;
  rows: number;
  /** Interval rows only (register points excluded). */
  intervals: number;
  firstTime: number | null;
  lastTime: number | null;
  sessions: string[];
  streams: StreamSummary[];
  sections: { rows: SectionRef; buckets: SectionRef };
  /** When the month's minute-level records were rolled up to 15-minute ones (epoch ms); absent: never. */
  rolled_up?: number;
}

/** 15-minute buckets of one partition: energy per bucket and flow (direction × tariff rate). */
export interface BucketColumns {
  n: number;
  /** Bucket start as a multiple of 15 minutes since the epoch. */
  quarter: Uint32Array;
  flow: Uint8Array;
  energy: Float64Array;
  /** Lowest confidence of the records in the bucket. */
  confidence: Float32Array;
}

export function encodeBuckets(b: BucketColumns): Buffer {
  const { n } = b;
  const ab = new ArrayBuffer(8 + n * (8 + 4 + 4 + 1));
  const buf = Buffer.from(ab);
  buf.writeUInt32LE(n, 0);
  let off = 8;
  new Float64Array(ab, off, n).set(b.energy.subarray(0, n));
  off += 8 * n;
  new Float32Array(ab, off, n).set(b.confidence.subarray(0, n));
  off += 4 * n;
  // quarters as differences from the previous one: mostly 1, which deflates to almost nothing
  const q = new Uint32Array(ab, off, n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    q[i] = b.quarter[i] - prev;
    prev = b.quarter[i];
  }
  off += 4 * n;
  new Uint8Array(ab, off, n).set(b.flow.subarray(0, n));
  return buf;
}

export function decodeBuckets(buf: Buffer): BucketColumns {
  if (buf.length < 8) throw new CorruptDataError('bucket section too short');
  const n = buf.readUInt32LE(0);
  let off = 8;
  const energy = column(Float64Array, buf, off, n);
  off += 8 * n;
  const confidence = column(Float32Array, buf, off, n);
  off += 4 * n;
  const quarter = column(Uint32Array, buf, off, n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    prev += quarter[i];
    quarter[i] = prev;
  }
  off += 4 * n;
  const flow = column(Uint8Array, buf, off, n);
  return { n, quarter, flow, energy, confidence };
}

/** Builds a segment file's bytes: the header, then the deflated buckets and rows. */
export function encodeSegment(header: Omit<SegmentHeader, 'sections'>, rows: RowColumns, buckets: BucketColumns): Buffer {
  const bucketBytes = deflateRawSync(encodeBuckets(buckets), { level: 6 });
  const rowBytes = deflateRawSync(encodeRows(rows, true), { level: 6 });
  // the header's length depends on the offsets it holds: grow the reserved length until the JSON fits
  // (it may take several passes when an offset gains a digit each time), then pad the rest in bytes
  const fixedLen = SEG_MAGIC.length + 8;
  let headerLen = 0;
  let json: string;
  for (let pass = 0; ; pass++) {
    if (pass === 16) throw new Error('segment header length does not settle');
    const base = fixedLen + headerLen;
    const sections = {
      buckets: { offset: base, length: bucketBytes.length, crc: crc32(bucketBytes) },
      rows: { offset: base + bucketBytes.length, length: rowBytes.length, crc: crc32(rowBytes) },
    };
    json = JSON.stringify({ ...header, sections });
    const len = Buffer.byteLength(json);
    if (len <= headerLen) break;
    headerLen = len;
  }
  const headerBytes = Buffer.alloc(headerLen, 0x20);
  // a header cut short would not match its section offsets: fail the compaction (the log keeps the rows) rather than write it
  if (headerBytes.write(json, 'utf8') !== Buffer.byteLength(json)) throw new Error('segment header does not fit the length it was settled to');
  const fixed = Buffer.alloc(fixedLen);
  SEG_MAGIC.copy(fixed);
  fixed.writeUInt32LE(headerBytes.length, 8);
  fixed.writeUInt32LE(crc32(headerBytes), 12);
  return Buffer.concat([fixed, headerBytes, bucketBytes, rowBytes]);
}

/** Reads a segment header through `read(offset, length)` (a file or a buffer). */
export function decodeSegmentHeader(read: (offset: number, length: number) => Buffer): SegmentHeader {
  const fixed = read(0, SEG_MAGIC.length + 8);
  if (fixed.length < SEG_MAGIC.length + 8 || !fixed.subarray(0, SEG_MAGIC.length).equals(SEG_MAGIC)) throw new CorruptDataError('not a homeflex meter segment (bad magic)');
  const len = fixed.readUInt32LE(8);
  if (len > MAX_FRAME) throw new CorruptDataError('segment header length is garbage');
  const headerBytes = read(SEG_MAGIC.length + 8, len);
  if (headerBytes.length !== len || crc32(headerBytes) !== fixed.readUInt32LE(12)) throw new CorruptDataError('segment header fails its checksum');
  let header: SegmentHeader;
  try {
    header = JSON.parse(headerBytes.toString('utf8')) as SegmentHeader;
  } catch {
    throw new CorruptDataError('segment header is not readable JSON');
  }
  // the sections always follow the header, buckets first; segments written before the header length
  // was settled correctly state offsets a few bytes short (intact data, each section still has its CRC)
  const { buckets, rows } = header.sections;
  buckets.offset = SEG_MAGIC.length + 8 + len;
  rows.offset = buckets.offset + buckets.length;
  return header;
}

export function readSection(read: (offset: number, length: number) => Buffer, ref: SectionRef, what: string): Buffer {
  const bytes = read(ref.offset, ref.length);
  if (bytes.length !== ref.length || crc32(bytes) !== ref.crc) throw new CorruptDataError(`${what} section fails its checksum`);
  try {
    return inflateRawSync(bytes);
  } catch (err) {
    throw new CorruptDataError(`${what} section does not inflate (${(err as Error).message})`);
  }
}
