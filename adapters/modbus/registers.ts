import { decodeRaw, encodeRaw, isNotImplemented, type ValueType, type WordOrder } from './codec.js';
import type { Profile, ProfilePoint } from './profile.js';
import { findModel, type SunSpecMap } from './sunspec/discovery.js';

/** A point pinned to registers of one unit: the profile's point after SunSpec discovery. */
export interface ResolvedPoint {
  name: string;
  unit: number;
  function: 'holding' | 'input';
  address: number;
  type: ValueType;
  size: number;
  wordOrder: WordOrder;
  /** Engineering value = raw × scale (when no scale factor point). */
  scale: number;
  /** Key of the scale-factor point in the same resolution (engineering = raw × 10^sf), or a fixed exponent. */
  sf?: string | number;
  readable: boolean;
  writable: boolean;
  /** Apply SunSpec's "not implemented" values. */
  sunspecSentinels: boolean;
  notImplemented: number[];
  /** For messages: `holding 40371` or `SunSpec 124.ChaState (holding 40371)`. */
  label: string;
}

/** A register that must hold a given value, or the map has changed (a SunSpec model ID). */
export interface RegisterCheck {
  unit: number;
  address: number;
  expect: number;
  label: string;
}

export interface Resolution {
  points: Map<string, ResolvedPoint>;
  checks: RegisterCheck[];
  /** Profile points the device does not have (model missing from its SunSpec map). */
  missing: Set<string>;
}

export interface UnitMaps {
  /** SunSpec map per unit id, for profiles with `sunspec: true`. */
  maps: Map<number, SunSpecMap>;
  unit: number;
  meterUnit: number;
}

/** Pins every profile point to registers; SunSpec points through the discovered maps. */
export function resolvePoints(profile: Profile, units: UnitMaps): Resolution {
  const points = new Map<string, ResolvedPoint>();
  const checks = new Map<string, RegisterCheck>();
  const missing = new Set<string>();
  for (const p of profile.points.values()) {
    const unit = p.onMeter ? units.meterUnit : units.unit;
    if (p.kind === 'fixed') {
      points.set(p.name, {
        name: p.name,
        unit,
        function: p.function,
        address: p.address,
        type: p.type,
        size: p.size,
        wordOrder: p.wordOrder,
        scale: p.scale,
        sf: p.scaleFactor,
        readable: p.readable,
        writable: p.writable,
        sunspecSentinels: p.type === 'sunssf' || p.type === 'acc32' || p.type === 'acc64',
        notImplemented: p.notImplemented,
        label: `${p.function} ${p.address}${unit !== units.unit ? ` unit ${unit}` : ''}`,
      });
      continue;
    }
    const resolved = resolveSunSpec(p, unit, units.maps.get(unit), points, checks);
    if (!resolved) missing.add(p.name);
  }
  return { points, checks: [...checks.values()], missing };
}

function resolveSunSpec(p: Extract<ProfilePoint, { kind: 'sunspec' }>, unit: number, map: SunSpecMap | undefined, points: Map<string, ResolvedPoint>, checks: Map<string, RegisterCheck>): boolean {
  if (!map) return false;
  const model = findModel(map, p.models, p.instance);
  if (!model?.layout) return false;
  const [group, leaf] = p.point.includes('.') ? p.point.split('.', 2) : [undefined, p.point];
  const path = group === undefined ? leaf : p.index !== undefined ? `${group}[${p.index}].${leaf}` : `${group}.${leaf}`;
  const layout = model.layout.get(path);
  if (!layout || layout.def.type === 'pad') return false;
  const add = (key: string, lay: typeof layout, writable: boolean, readable: boolean) => {
    const sfKey = typeof lay.sf === 'string' ? `${key}#sf` : lay.sf;
    points.set(key, {
      name: key,
      unit,
      function: 'holding',
      address: model.start + lay.offset,
      type: lay.def.type as ValueType,
      size: lay.def.size,
      wordOrder: 'high_first',
      scale: 1,
      sf: sfKey,
      readable,
      writable,
      sunspecSentinels: true,
      notImplemented: [],
      label: `SunSpec ${model.id}.${lay.path} (unit ${unit}, holding ${model.start + lay.offset})`,
    });
    if (typeof lay.sf === 'string') {
      const sfLayout = model.layout!.get(lay.sf);
      if (sfLayout) add(`${key}#sf`, sfLayout, false, true);
      else points.delete(key);
    }
  };
  add(p.name, layout, p.writable, p.readable);
  if (!points.has(p.name)) return false;
  checks.set(`${unit}:${model.start}`, { unit, address: model.start, expect: model.id, label: `SunSpec model ${model.id} header at ${model.start} (unit ${unit})` });
  return true;
}

/** One read request: contiguous registers of one unit and function. */
export interface ReadBlock {
  unit: number;
  function: 'holding' | 'input';
  address: number;
  count: number;
  /** Point keys (and check labels) whose registers lie in the block. */
  members: string[];
}

interface Span {
  key: string;
  unit: number;
  function: 'holding' | 'input';
  address: number;
  count: number;
}

/**
 * Groups the registers to read into as few requests as the profile allows: same unit and function,
 * gaps of at most `maxGap` registers, at most `maxRead` registers a request. `single` names the
 * points that must be read alone (their device refused a joined read).
 */
export function planReads(spans: Span[], maxRead: number, maxGap: number, single: ReadonlySet<string> = new Set()): ReadBlock[] {
  const sorted = [...spans].sort((a, b) => a.unit - b.unit || a.function.localeCompare(b.function) || a.address - b.address);
  const blocks: ReadBlock[] = [];
  let cur: ReadBlock | undefined;
  for (const s of sorted) {
    const alone = single.has(s.key);
    const fits =
      cur &&
      !alone &&
      !cur.members.some((m) => single.has(m)) &&
      cur.unit === s.unit &&
      cur.function === s.function &&
      s.address - (cur.address + cur.count) <= maxGap &&
      Math.max(cur.address + cur.count, s.address + s.count) - cur.address <= maxRead;
    if (cur && fits) {
      cur.count = Math.max(cur.address + cur.count, s.address + s.count) - cur.address;
      cur.members.push(s.key);
    } else {
      cur = { unit: s.unit, function: s.function, address: s.address, count: s.count, members: [s.key] };
      blocks.push(cur);
    }
  }
  return blocks;
}

export const spanOf = (p: ResolvedPoint): Span => ({ key: p.name, unit: p.unit, function: p.function, address: p.address, count: p.size });
export const checkSpan = (c: RegisterCheck): Span => ({ key: `check:${c.unit}:${c.address}`, unit: c.unit, function: 'holding', address: c.address, count: 1 });

/** Register words by `unit:function:address`. */
export type RegisterImage = Map<string, number>;
export const regKey = (unit: number, fn: 'holding' | 'input', address: number) => `${unit}:${fn}:${address}`;

export function wordsOf(image: RegisterImage, p: { unit: number; function: 'holding' | 'input'; address: number; size: number }): number[] | undefined {
  const out: number[] = [];
  for (let i = 0; i < p.size; i++) {
    const w = image.get(regKey(p.unit, p.function, p.address + i));
    if (w === undefined) return undefined;
    out.push(w);
  }
  return out;
}

/** A point's raw integer value (before scaling), undefined when unread or "not implemented". */
export function rawValue(p: ResolvedPoint, words: number[]): number | undefined {
  if (p.type === 'string') return undefined;
  const raw = decodeRaw(p.type, words, p.wordOrder);
  if (p.sunspecSentinels && isNotImplemented(p.type, raw)) return undefined;
  if (p.notImplemented.includes(raw)) return undefined;
  return raw;
}

/** Decodes every point of the resolution from the register image into engineering values. */
export function decodePoints(points: Map<string, ResolvedPoint>, image: RegisterImage): Map<string, number | undefined> {
  const raws = new Map<string, number | undefined>();
  for (const p of points.values()) {
    const words = p.readable ? wordsOf(image, p) : undefined;
    raws.set(p.name, words ? rawValue(p, words) : undefined);
  }
  const values = new Map<string, number | undefined>();
  for (const p of points.values()) {
    const raw = raws.get(p.name);
    if (raw === undefined) {
      values.set(p.name, undefined);
      continue;
    }
    const exp = typeof p.sf === 'number' ? p.sf : p.sf !== undefined ? raws.get(p.sf) : undefined;
    if (p.sf !== undefined && exp === undefined) values.set(p.name, undefined);
    else values.set(p.name, exp !== undefined ? raw * 10 ** exp : raw * p.scale);
  }
  return values;
}

/** Registers that write `value` (engineering units) to the point; throws when it does not fit. */
export function encodePoint(p: ResolvedPoint, value: number, sfExponent: number | undefined): number[] {
  if (p.sf !== undefined && sfExponent === undefined) throw new Error(`the scale factor of ${p.name} (${p.label}) is unknown: it could not be read`);
  const divisor = p.sf !== undefined ? 10 ** sfExponent! : p.scale;
  const raw = p.type === 'f32' ? value / divisor : Math.round((value / divisor) * 1e6) / 1e6;
  try {
    return encodeRaw(p.type, raw, p.wordOrder);
  } catch (err) {
    throw new Error(`value ${value} for ${p.name} (${p.label}): ${(err as Error).message}`, { cause: err });
  }
}
