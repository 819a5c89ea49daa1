import { decodeRaw, encodeRaw, encodeString, isNotImplemented, notImplementedWords, type ValueType } from '../codec.js';
import { SUNS } from '../sunspec/discovery.js';
import { layoutModel, sunspecModels, type PointLayout, type SunSpecModelDef } from '../sunspec/models.js';

/** A model of the chain and how many times its repeating group repeats (MPPT modules, DC ports). */
export interface ModelSpec {
  id: number;
  repeats?: number;
}

interface PlacedModel {
  id: number;
  start: number;
  length: number;
  layout: Map<string, PointLayout>;
}

const groupLen = (points: { size: number }[]) => points.reduce((n, p) => n + p.size, 0);

/** Registers a model instance needs: its points, its fixed groups and `repeats` of its repeating group. */
function modelLength(def: SunSpecModelDef, repeats: number): number {
  let n = groupLen(def.points) - 2;
  for (const g of def.groups ?? []) {
    const len = groupLen(g.points) + (g.groups ?? []).reduce((m, s) => m + groupLen(s.points), 0);
    n += g.count === undefined || g.count === 1 ? len : len * repeats;
  }
  return n;
}

/**
 * A SunSpec register map built from the model definitions: the "SunS" marker, a chain of models
 * with their ID and L headers, and the end marker. Points hold "not implemented" until set.
 * Used by the simulator and by tests that need a device image.
 */
export class SunSpecImage {
  readonly base: number;
  readonly words = new Map<number, number>();
  private readonly models: PlacedModel[] = [];

  constructor(specs: ModelSpec[], base = 40000) {
    this.base = base;
    const defs = sunspecModels();
    this.words.set(base, SUNS[0]);
    this.words.set(base + 1, SUNS[1]);
    let addr = base + 2;
    for (const spec of specs) {
      const def = defs.get(spec.id);
      if (!def) throw new Error(`SunSpec model ${spec.id} has no definition`);
      const length = modelLength(def, spec.repeats ?? 1);
      const layout = layoutModel(def, length);
      for (const lay of layout.values()) {
        const type = lay.def.type === 'pad' ? 'u16' : lay.def.type;
        notImplementedWords(type as ValueType, lay.def.size).forEach((w, i) => this.words.set(addr + lay.offset + i, lay.def.type === 'pad' ? 0x8000 : w));
      }
      this.words.set(addr, spec.id);
      this.words.set(addr + 1, length);
      this.models.push({ id: spec.id, start: addr, length, layout });
      addr += 2 + length;
    }
    this.words.set(addr, 0xffff);
    this.words.set(addr + 1, 0);
  }

  has(modelId: number): boolean {
    return this.models.some((m) => m.id === modelId);
  }

  private find(modelId: number, path: string, instance = 0): { model: PlacedModel; lay: PointLayout } {
    const model = this.models.filter((m) => m.id === modelId)[instance];
    if (!model) throw new Error(`model ${modelId} is not in this image`);
    const lay = model.layout.get(path);
    if (!lay) throw new Error(`model ${modelId} has no point ${path}`);
    return { model, lay };
  }

  address(modelId: number, path: string, instance = 0): number {
    const { model, lay } = this.find(modelId, path, instance);
    return model.start + lay.offset;
  }

  /** The model and point at a register address, for write checks. */
  pointAt(address: number): { modelId: number; path: string; layout: PointLayout; start: number } | undefined {
    for (const m of this.models) {
      if (address < m.start || address >= m.start + 2 + m.length) continue;
      for (const lay of m.layout.values()) {
        if (address >= m.start + lay.offset && address < m.start + lay.offset + lay.def.size) return { modelId: m.id, path: lay.path, layout: lay, start: m.start + lay.offset };
      }
    }
    return undefined;
  }

  setRaw(modelId: number, path: string, raw: number | string, instance = 0) {
    const { model, lay } = this.find(modelId, path, instance);
    const at = model.start + lay.offset;
    const words = typeof raw === 'string' ? encodeString(raw, lay.def.size) : encodeRaw(lay.def.type as ValueType, raw);
    words.forEach((w, i) => this.words.set(at + i, w));
  }

  getRaw(modelId: number, path: string, instance = 0): number | undefined {
    const { model, lay } = this.find(modelId, path, instance);
    const at = model.start + lay.offset;
    const words = Array.from({ length: lay.def.size }, (_, i) => this.words.get(at + i) ?? 0);
    const type = lay.def.type as ValueType;
    const raw = decodeRaw(type, words);
    return isNotImplemented(type, raw) ? undefined : raw;
  }

  /** Sets an engineering value through the point's scale factor (which must be set first). */
  set(modelId: number, path: string, value: number, instance = 0) {
    const { lay } = this.find(modelId, path, instance);
    const exp = this.exponent(modelId, lay, instance);
    this.setRaw(modelId, path, lay.def.type === 'f32' ? value : Math.round(value / 10 ** exp), instance);
  }

  /** The engineering value of a point, undefined when not implemented. */
  get(modelId: number, path: string, instance = 0): number | undefined {
    const { lay } = this.find(modelId, path, instance);
    const raw = this.getRaw(modelId, path, instance);
    if (raw === undefined) return undefined;
    return raw * 10 ** this.exponent(modelId, lay, instance);
  }

  private exponent(modelId: number, lay: PointLayout, instance: number): number {
    if (lay.sf === undefined) return 0;
    if (typeof lay.sf === 'number') return lay.sf;
    const sf = this.getRaw(modelId, lay.sf, instance);
    if (sf === undefined) throw new Error(`scale factor ${lay.sf} of model ${modelId} is not set`);
    return sf;
  }

  /** Registers from `address`, or undefined when any lies outside the map. */
  read(address: number, count: number): number[] | undefined {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const w = this.words.get(address + i);
      if (w === undefined) return undefined;
      out.push(w);
    }
    return out;
  }
}
