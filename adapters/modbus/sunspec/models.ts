import { readFileSync } from 'node:fs';
import { assetPath } from '../assets.js';
import type { ValueType } from '../codec.js';

/** The SunSpec models homeflex reads or writes; `models.json` holds their point layouts. */
export const MODEL_IDS = [1, 101, 102, 103, 111, 112, 113, 120, 121, 123, 124, 160, 201, 202, 203, 204, 211, 212, 213, 214, 701, 702, 704, 713, 714, 802] as const;

export interface SunSpecPointDef {
  name: string;
  type: ValueType | 'pad';
  size: number;
  /** Name of the scale-factor point (same group first, then the model's top level), or a fixed exponent. */
  sf?: string | number;
  units?: string;
  rw?: boolean;
  mandatory?: boolean;
  symbols?: Record<string, number>;
}

export interface SunSpecGroupDef {
  name: string;
  /** Repetitions: a number (0 = as many as the model length holds) or the name of a count point. */
  count?: number | string;
  points: SunSpecPointDef[];
  groups?: SunSpecGroupDef[];
}

export interface SunSpecModelDef extends SunSpecGroupDef {
  id: number;
  label: string;
}

/** Where a point of one model instance lives, relative to the model's first register (its ID). */
export interface PointLayout {
  /** `W`, or `module[1].DCW` for a point of a repeating group. */
  path: string;
  offset: number;
  def: SunSpecPointDef;
  /** Path of the scale-factor point, or a fixed exponent. */
  sf?: string | number;
}

let cache: Map<number, SunSpecModelDef> | undefined;

/** The model definitions, keyed by model id. */
export function sunspecModels(): Map<number, SunSpecModelDef> {
  if (!cache) {
    const file = JSON.parse(readFileSync(assetPath('sunspec/models.json'), 'utf8')) as { models: SunSpecModelDef[] };
    cache = new Map(file.models.map((m) => [m.id, m]));
  }
  return cache;
}

const groupLength = (g: SunSpecGroupDef): number =>
  g.points.reduce((n, p) => n + p.size, 0) + (g.groups ?? []).reduce((n, sub) => n + groupLength(sub) * (typeof sub.count === 'number' && sub.count > 0 ? sub.count : 1), 0);

/**
 * Lays out a model instance whose header says `length` registers follow the ID and L registers.
 * Repeating groups repeat as often as the length holds, as the SunSpec spec defines it.
 */
export function layoutModel(def: SunSpecModelDef, length: number): Map<string, PointLayout> {
  const out = new Map<string, PointLayout>();
  const total = length + 2;
  let offset = 0;
  const place = (points: SunSpecPointDef[], prefix: string, siblings: Set<string>) => {
    for (const p of points) {
      let sf: string | number | undefined = p.sf;
      if (typeof sf === 'string' && prefix && siblings.has(sf)) sf = `${prefix}${sf}`;
      out.set(`${prefix}${p.name}`, { path: `${prefix}${p.name}`, offset, def: p, sf });
      offset += p.size;
    }
  };
  const top = new Set(def.points.map((p) => p.name));
  place(def.points, '', top);
  const fixed = offset + (def.groups ?? []).filter((g) => g.count === undefined).reduce((n, g) => n + groupLength(g), 0);
  for (const g of def.groups ?? []) {
    const len = groupLength(g);
    let repeats = 1;
    if (g.count !== undefined && g.count !== 1) {
      const repeating = (def.groups ?? []).filter((x) => x.count !== undefined && x.count !== 1);
      // several repeating groups cannot share the remaining length unambiguously; SunSpec has none
      repeats = repeating.length === 1 && len > 0 ? Math.max(0, Math.floor((total - fixed) / len)) : 0;
      if (typeof g.count === 'number' && g.count > 0) repeats = Math.min(repeats, g.count);
    }
    for (let i = 0; i < repeats; i++) {
      const prefix = g.count !== undefined && g.count !== 1 ? `${g.name}[${i}].` : `${g.name}.`;
      place(g.points, prefix, new Set(g.points.map((p) => p.name)));
      for (const sub of g.groups ?? []) place(sub.points, `${prefix}${sub.name}.`, new Set(sub.points.map((p) => p.name)));
    }
  }
  return out;
}
