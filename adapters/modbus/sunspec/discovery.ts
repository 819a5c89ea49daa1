import { ModbusExceptionError, permanentError, type HomeflexError } from '../../../src/api/index.js';
import { decodeString } from '../codec.js';
import { layoutModel, sunspecModels, type PointLayout, type SunSpecModelDef } from './models.js';

/** The SunSpec marker "SunS" as two registers. */
export const SUNS = [0x5375, 0x6e53] as const;
/** Where SunSpec maps start, in the order SunSpec tells clients to look (0-based addresses). */
export const SUNSPEC_BASES = [40000, 0, 50000] as const;
const END_ID = 0xffff;

export interface DiscoveredModel {
  id: number;
  /** Address of the model's ID register. */
  start: number;
  /** Registers after the ID and L registers. */
  length: number;
  /** Known to homeflex (in `models.json`); unknown models are walked over. */
  def?: SunSpecModelDef;
  layout?: Map<string, PointLayout>;
}

export interface SunSpecMap {
  unit: number;
  base: number;
  models: DiscoveredModel[];
  manufacturer?: string;
  model?: string;
  serial?: string;
  version?: string;
}

export type RegisterReader = (address: number, count: number) => Promise<number[]>;

/** Exceptions that mean "nothing here", so the next base address is worth trying. */
const absent = (err: unknown) => err instanceof ModbusExceptionError && err.exceptionCode >= 1 && err.exceptionCode <= 4;

/**
 * Finds "SunS" at 40000, 0 or 50000 and walks the chain of [ID, L] headers to the end marker.
 * Timeouts and lost connections propagate (the device is not answering); a device that answers
 * but has no marker gets a permanent error that says what was found at each base.
 */
export async function discoverSunSpec(read: RegisterReader, unit: number, bases: readonly number[] = SUNSPEC_BASES): Promise<SunSpecMap> {
  const tried: string[] = [];
  for (const base of bases) {
    let marker: number[];
    try {
      marker = await read(base, 2);
    } catch (err) {
      if (!absent(err)) throw err;
      tried.push(`${base}: exception ${(err as ModbusExceptionError).exceptionCode} ${(err as ModbusExceptionError).exceptionName}`);
      continue;
    }
    if (marker[0] !== SUNS[0] || marker[1] !== SUNS[1]) {
      tried.push(`${base}: ${marker.map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(' ')}`);
      continue;
    }
    return walk(read, unit, base);
  }
  throw permanentError('sunspec_not_found', `unit ${unit}: no SunSpec marker "SunS" (0x5375 0x6E53) found (${tried.join('; ')})`);
}

async function walk(read: RegisterReader, unit: number, base: number): Promise<SunSpecMap> {
  const map: SunSpecMap = { unit, base, models: [] };
  const defs = sunspecModels();
  let addr = base + 2;
  for (let guard = 0; guard < 200; guard++) {
    let header: number[];
    try {
      header = await read(addr, 2);
    } catch (err) {
      // a map that stops without the end marker: some devices answer "illegal address" past the last model
      if (absent(err) && map.models.length) break;
      throw err;
    }
    const [id, length] = header;
    if (id === END_ID || id === 0) break;
    if (addr + 2 + length > 0x10000) throw bad(unit, `model ${id} at ${addr} claims ${length} registers, past the end of the address space`);
    const def = defs.get(id);
    map.models.push({ id, start: addr, length, def, layout: def ? layoutModel(def, length) : undefined });
    addr += 2 + length;
  }
  if (!map.models.length) throw bad(unit, `the SunSpec map at ${base} has no models`);
  const common = map.models.find((m) => m.id === 1);
  if (common && common.length >= 65) {
    // the common model names the device in every log line about it
    const words = await read(common.start + 2, Math.min(common.length, 66));
    map.manufacturer = decodeString(words.slice(0, 16)) || undefined;
    map.model = decodeString(words.slice(16, 32)) || undefined;
    map.version = decodeString(words.slice(40, 48)) || undefined;
    map.serial = decodeString(words.slice(48, 64)) || undefined;
  }
  return map;
}

const bad = (unit: number, message: string): HomeflexError => permanentError('sunspec_bad_map', `unit ${unit}: ${message}`);

/** The n-th instance (0-based) of the first of `ids` present in the map. */
export function findModel(map: SunSpecMap, ids: readonly number[], instance = 0): DiscoveredModel | undefined {
  for (const id of ids) {
    const found = map.models.filter((m) => m.id === id);
    if (found[instance]) return found[instance];
  }
  return undefined;
}

export const describeMap = (map: SunSpecMap) =>
  `SunSpec at ${map.base}: models ${map.models.map((m) => m.id).join(', ')}`;
