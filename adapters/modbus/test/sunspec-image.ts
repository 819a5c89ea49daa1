import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { emptyUnit, type UnitImage } from './peers.js';

/**
 * SunSpec register maps for the tests' independent peers (python3-pymodbus), laid out here from the
 * SunSpec model JSON (fixtures/sunspec-models) by this file's own code: it shares nothing with the
 * adapter's discovery or its models.json.
 */

interface ModelPoint {
  name: string;
  type: string;
  size: number;
}
const model = (id: number) => JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'sunspec-models', `model_${id}.json`), 'utf8')) as { id: number; group: { points: ModelPoint[] } };

/** Words of one value of a SunSpec type: integers two's complement, big-endian words; strings padded with NUL. */
function encode(type: string, size: number, value: number | string): number[] {
  if (typeof value === 'string') {
    const bytes = Buffer.alloc(size * 2);
    bytes.write(value, 'ascii');
    return Array.from({ length: size }, (_, i) => bytes.readUInt16BE(i * 2));
  }
  if (size === 1) return [value < 0 ? 0x10000 + value : value];
  const big = BigInt.asUintN(16 * size, BigInt(value));
  return Array.from({ length: size }, (_, i) => Number((big >> BigInt(16 * (size - 1 - i))) & 0xffffn));
}

/** "Not implemented" per type (SunSpec: 0x8000 for int16, 0xFFFF for uint16, 0 for acc, 0x80000000 for int32 …). */
function unimplemented(type: string, size: number): number[] {
  if (type.startsWith('int') || type === 'sunssf') return [0x8000, ...Array(size - 1).fill(0)];
  if (type.startsWith('acc') || type === 'string' || type === 'pad') return Array(size).fill(0);
  return Array(size).fill(0xffff);
}

/** A register map: "SunS", then each model (ID, L, points laid out by size), then the end marker. */
export function sunspecMap(models: { id: number; values: Record<string, number | string> }[]): UnitImage {
  const unit = emptyUnit();
  let at = 40000;
  const put = (words: number[]) => words.forEach((w) => unit.holding.set(at++, w));
  put([0x5375, 0x6e53]);
  for (const m of models) {
    const points = model(m.id).group.points;
    const length = points.slice(2).reduce((a, p) => a + p.size, 0);
    put([m.id, length]);
    for (const p of points.slice(2)) put(p.name in m.values ? encode(p.type, p.size, m.values[p.name]) : unimplemented(p.type, p.size));
  }
  put([0xffff, 0]);
  return unit;
}

