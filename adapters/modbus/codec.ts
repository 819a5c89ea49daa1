/**
 * Register value codecs: how a point's registers become a number (or string) and back. Pure
 * functions, shared by the adapter, the SunSpec simulator and the tests.
 */

export type ValueType =
  | 'u16'
  | 'i16'
  | 'u32'
  | 'i32'
  | 'f32'
  | 'u64'
  | 'i64'
  | 'acc32'
  | 'acc64'
  | 'string'
  | 'sunssf'
  | 'enum16'
  | 'bitfield16'
  | 'bitfield32';

/** `high_first` (big-endian words, Modbus convention) or `low_first` ("word-swapped": Sungrow, SolarEdge floats). */
export type WordOrder = 'high_first' | 'low_first';

/** Registers a value of this type occupies (strings give their own size). */
export function registerCount(type: ValueType, size?: number): number {
  switch (type) {
    case 'u16':
    case 'i16':
    case 'sunssf':
    case 'enum16':
    case 'bitfield16':
      return 1;
    case 'u32':
    case 'i32':
    case 'f32':
    case 'acc32':
    case 'bitfield32':
      return 2;
    case 'u64':
    case 'i64':
    case 'acc64':
      return 4;
    case 'string':
      if (!size || size < 1) throw new Error('a string point needs its size in registers');
      return size;
  }
}

const ordered = (words: number[], order: WordOrder) => (order === 'low_first' ? [...words].reverse() : words);

/** The raw integer (or float) value of the registers, before "not implemented" checks and scaling. */
export function decodeRaw(type: ValueType, words: number[], order: WordOrder = 'high_first'): number {
  const w = ordered(words, order);
  switch (type) {
    case 'u16':
    case 'enum16':
    case 'bitfield16':
      return w[0] & 0xffff;
    case 'i16':
    case 'sunssf':
      return (w[0] << 16) >> 16;
    case 'u32':
    case 'acc32':
    case 'bitfield32':
      return (w[0] * 0x10000 + w[1]) >>> 0;
    case 'i32':
      return ((w[0] << 16) | w[1]) | 0;
    case 'f32': {
      const b = Buffer.alloc(4);
      b.writeUInt16BE(w[0], 0);
      b.writeUInt16BE(w[1], 2);
      return b.readFloatBE(0);
    }
    case 'u64':
    case 'acc64':
    case 'i64': {
      const b = Buffer.alloc(8);
      w.forEach((x, i) => b.writeUInt16BE(x, i * 2));
      return Number(type === 'i64' ? b.readBigInt64BE(0) : b.readBigUInt64BE(0));
    }
    case 'string':
      throw new Error('decodeRaw: use decodeString for string points');
  }
}

/**
 * SunSpec's "not implemented" values: 0x8000 (int16), 0xFFFF (uint16, enum16, bitfield16),
 * 0x80000000 (int32), 0xFFFFFFFF (uint32, bitfield32), 0 (acc32/acc64: not accumulated), NaN (float32).
 */
export function isNotImplemented(type: ValueType, raw: number): boolean {
  switch (type) {
    case 'i16':
    case 'sunssf':
      return raw === -0x8000;
    case 'u16':
    case 'enum16':
    case 'bitfield16':
      return raw === 0xffff;
    case 'i32':
      return raw === -0x80000000;
    case 'u32':
    case 'bitfield32':
      return raw === 0xffffffff;
    case 'acc32':
    case 'acc64':
      return raw === 0;
    case 'u64':
      return raw === Number(0xffffffffffffffffn);
    case 'i64':
      return raw === Number(-0x8000000000000000n);
    case 'f32':
      return Number.isNaN(raw);
    case 'string':
      return false;
  }
}

/** ASCII/UTF-8 text of string registers, NUL padding removed. */
export function decodeString(words: number[]): string {
  const b = Buffer.alloc(words.length * 2);
  words.forEach((x, i) => b.writeUInt16BE(x & 0xffff, i * 2));
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8').trim();
}

export function encodeString(text: string, size: number): number[] {
  const b = Buffer.alloc(size * 2);
  b.write(text.slice(0, size * 2), 'utf8');
  return Array.from({ length: size }, (_, i) => b.readUInt16BE(i * 2));
}

const RANGES: Partial<Record<ValueType, [number, number]>> = {
  u16: [0, 0xffff],
  enum16: [0, 0xffff],
  bitfield16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  sunssf: [-10, 10],
  u32: [0, 0xffffffff],
  acc32: [0, 0xffffffff],
  bitfield32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
  u64: [0, Number.MAX_SAFE_INTEGER],
  acc64: [0, Number.MAX_SAFE_INTEGER],
  i64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Registers for a raw value; throws a RangeError naming the type when it does not fit. */
export function encodeRaw(type: ValueType, raw: number, order: WordOrder = 'high_first'): number[] {
  if (!Number.isFinite(raw) && type !== 'f32') throw new RangeError(`${raw} is not a finite number`);
  const range = RANGES[type];
  if (range) {
    raw = Math.round(raw);
    if (raw < range[0] || raw > range[1]) throw new RangeError(`${raw} does not fit a ${type} register (${range[0]} to ${range[1]})`);
  }
  let words: number[];
  switch (type) {
    case 'u16':
    case 'i16':
    case 'sunssf':
    case 'enum16':
    case 'bitfield16':
      words = [raw & 0xffff];
      break;
    case 'u32':
    case 'i32':
    case 'acc32':
    case 'bitfield32': {
      const u = raw >>> 0;
      words = [(u >>> 16) & 0xffff, u & 0xffff];
      break;
    }
    case 'f32': {
      const b = Buffer.alloc(4);
      b.writeFloatBE(raw, 0);
      words = [b.readUInt16BE(0), b.readUInt16BE(2)];
      break;
    }
    case 'u64':
    case 'acc64':
    case 'i64': {
      const b = Buffer.alloc(8);
      if (type === 'i64') b.writeBigInt64BE(BigInt(raw));
      else b.writeBigUInt64BE(BigInt(raw));
      words = [0, 1, 2, 3].map((i) => b.readUInt16BE(i * 2));
      break;
    }
    case 'string':
      throw new Error('encodeRaw: use encodeString for string points');
  }
  return ordered(words, order);
}

/** The "not implemented" registers of a type, for images and simulators. */
export function notImplementedWords(type: ValueType, size?: number): number[] {
  switch (type) {
    case 'i16':
    case 'sunssf':
      return [0x8000];
    case 'i32':
      return [0x8000, 0];
    case 'i64':
      return [0x8000, 0, 0, 0];
    case 'acc32':
      return [0, 0];
    case 'acc64':
      return [0, 0, 0, 0];
    case 'f32':
      return [0x7fc0, 0];
    case 'string':
      return new Array<number>(size ?? 1).fill(0);
    default:
      return new Array<number>(registerCount(type, size)).fill(0xffff);
  }
}
