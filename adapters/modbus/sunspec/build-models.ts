/**
 * Regenerates `models.json` from the SunSpec model definitions (sunspec/models, `json/`,
 * Apache-2.0): `npx tsx adapters/modbus/sunspec/build-models.ts <path to sunspec models json dir>`.
 * Keeps what register decoding needs (point order, type, size, scale factor, units, access,
 * symbols) and drops descriptions; see LICENSE-NOTE.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODEL_IDS } from './models.js';

interface SourcePoint {
  name: string;
  type: string;
  size: number;
  sf?: string | number;
  units?: string;
  access?: string;
  mandatory?: string;
  symbols?: { name: string; value: number }[];
}
interface SourceGroup {
  name: string;
  label?: string;
  count?: number | string;
  points: SourcePoint[];
  groups?: SourceGroup[];
}

const TYPES: Record<string, string> = {
  uint16: 'u16', int16: 'i16', uint32: 'u32', int32: 'i32', uint64: 'u64', int64: 'i64', float32: 'f32',
  acc32: 'acc32', acc64: 'acc64', string: 'string', sunssf: 'sunssf', enum16: 'enum16', enum32: 'u32',
  bitfield16: 'bitfield16', bitfield32: 'bitfield32', count: 'u16', pad: 'pad',
};

const point = (p: SourcePoint) => {
  const type = TYPES[p.type];
  if (!type) throw new Error(`unknown SunSpec type ${p.type} of ${p.name}`);
  return {
    name: p.name,
    type,
    size: p.size,
    ...(p.sf !== undefined ? { sf: p.sf } : {}),
    ...(p.units ? { units: p.units } : {}),
    ...(p.access === 'RW' ? { rw: true } : {}),
    ...(p.mandatory === 'M' ? { mandatory: true } : {}),
    ...(p.symbols?.length ? { symbols: Object.fromEntries(p.symbols.map((s) => [s.name, s.value])) } : {}),
  };
};

const group = (g: SourceGroup): unknown => ({
  name: g.name,
  ...(g.count !== undefined ? { count: g.count } : {}),
  points: g.points.map(point),
  ...(g.groups?.length ? { groups: g.groups.map(group) } : {}),
});

const source = process.argv[2];
if (!source) throw new Error('usage: build-models.ts <sunspec models json dir>');
const models = MODEL_IDS.map((id) => {
  const m = JSON.parse(readFileSync(join(source, `model_${id}.json`), 'utf8')) as { id: number; group: SourceGroup };
  return { id: m.id, label: m.group.label ?? m.group.name, ...(group(m.group) as object) };
});
const out = join(fileURLToPath(new URL('.', import.meta.url)), 'models.json');
writeFileSync(out, JSON.stringify({ source: 'sunspec/models json/ @ 7abdf8982d5364f8ae916deee18aac86c11be36d (Apache-2.0)', models }) + '\n');
console.log(`wrote ${models.length} models to ${out}`);
