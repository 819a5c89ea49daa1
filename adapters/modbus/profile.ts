import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { yamlNodeAt } from '../../src/api/yaml.js';
import { assetPath } from './assets.js';
import { registerCount, type ValueType, type WordOrder } from './codec.js';
import { compile, ExpressionError, type Expression } from './expr.js';
import { sunspecModels } from './sunspec/models.js';

/**
 * A device profile: the register map of one inverter family as data. Points say where a value
 * lives (a fixed register, or a SunSpec model point found by discovery) and how to decode it;
 * measures turn points into homeflex's quantities with an explicit sign convention; modes list
 * the writes that set auto / charge / discharge / hold.
 */

export const MEASURES = {
  battery_soc: { unit: '%', signed: false },
  battery_power: { unit: 'W', signed: true },
  battery_charge_wh: { unit: 'Wh', signed: false },
  battery_discharge_wh: { unit: 'Wh', signed: false },
  battery_capacity_wh: { unit: 'Wh', signed: false },
  pv_power: { unit: 'W', signed: false },
  pv_energy_wh: { unit: 'Wh', signed: false },
  grid_power: { unit: 'W', signed: true },
  grid_import_wh: { unit: 'Wh', signed: false },
  grid_export_wh: { unit: 'Wh', signed: false },
  grid_power_l1: { unit: 'W', signed: true },
  grid_power_l2: { unit: 'W', signed: true },
  grid_power_l3: { unit: 'W', signed: true },
} as const;
export type MeasureName = keyof typeof MEASURES;

/** What a positive raw value means; the adapter turns it into battery + = charging, grid + = import. */
export type Positive = 'charging' | 'discharging' | 'import' | 'export';

export const MODES = ['auto', 'charge', 'discharge', 'hold'] as const;
export type ModeName = (typeof MODES)[number];

/** Names a write value may use besides the profile's points and measures. */
export const COMMAND_VARIABLES = ['power', 'watchdog_s', 'max_charge_w', 'max_discharge_w', 'capacity_wh', 'soc_min_pct', 'soc_max_pct', 'limit_w', 'rated_w'] as const;

export interface FixedPoint {
  kind: 'fixed';
  name: string;
  address: number;
  function: 'holding' | 'input';
  type: ValueType;
  size: number;
  wordOrder: WordOrder;
  scale: number;
  scaleFactor?: string;
  unit?: string;
  readable: boolean;
  writable: boolean;
  notImplemented: number[];
  onMeter: boolean;
}

export interface SunSpecPointRef {
  kind: 'sunspec';
  name: string;
  models: number[];
  /** Path inside the model: `ChaState`, or `module.DCW` with `index`. */
  point: string;
  index?: number;
  /** Which instance of the model when the chain holds it more than once (SolarEdge's second meter). */
  instance: number;
  readable: boolean;
  writable: boolean;
  onMeter: boolean;
}

export type ProfilePoint = FixedPoint | SunSpecPointRef;

export interface MeasureAlternative {
  expr: Expression;
  positive?: Positive;
}

export interface Write {
  point: string;
  value: Expression;
}

export interface ModeVariant {
  when?: Expression;
  /** Re-send on every poll: its values follow live readings. */
  refreshEachPoll: boolean;
  writes: Write[];
}

export interface Profile {
  id: string;
  name: string;
  description: string;
  /** Where the profile was read from. */
  source: string;
  sunspec: boolean;
  defaultUnit: number;
  /** Default unit of `on: meter` points when the device YAML gives no `meter_unit`. */
  meterUnit?: number;
  watchdogS: number;
  /** Re-send a non-auto mode on every poll (setpoints that follow live readings), not only before the watchdog runs out. */
  refreshEachPoll: boolean;
  maxRead: number;
  maxGap: number;
  points: Map<string, ProfilePoint>;
  measures: Map<MeasureName, MeasureAlternative[]>;
  modes: Map<ModeName, ModeVariant[]>;
  /** PV power limit (curtailment): how to set a limit of `limit_w` (W) and how to lift it. */
  pvLimit?: { limit: ModeVariant[]; release: ModeVariant[] };
  quirks: string[];
}

/** A problem in a profile file, located by line and column. */
export class ProfileError extends Error {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`profile ${source} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${problems.join('\n  ')}`);
    this.name = 'ProfileError';
    this.problems = problems;
  }
}

const TYPE_NAMES: ValueType[] = ['u16', 'i16', 'u32', 'i32', 'f32', 'u64', 'i64', 'acc32', 'acc64', 'string', 'sunssf', 'enum16', 'bitfield16', 'bitfield32'];
const NAME = '^[a-z][a-z0-9_]*$';

const exprSchema = { anyOf: [{ type: 'string', minLength: 1 }, { type: 'number' }] };
const alternativeSchema = {
  anyOf: [
    exprSchema,
    {
      type: 'object',
      additionalProperties: false,
      required: ['expr'],
      properties: { expr: exprSchema, positive: { enum: ['charging', 'discharging', 'import', 'export'] } },
    },
  ],
};
const writeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['point', 'value'],
  properties: { point: { type: 'string', pattern: NAME }, value: exprSchema },
};
const variantSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['writes'],
  properties: {
    when: exprSchema,
    refresh_each_poll: { type: 'boolean', default: false, description: 'Re-send on every poll (values that follow live readings)' },
    writes: { type: 'array', minItems: 1, items: writeSchema },
  },
};

/** JSON Schema of a profile file (`profiles/*.yaml`). */
export const PROFILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'points', 'measures'],
  properties: {
    id: { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
    name: { type: 'string' },
    description: { type: 'string' },
    sunspec: { type: 'boolean', default: false, description: 'Discover the SunSpec map of the unit (and of the meter unit)' },
    default_unit: { type: 'integer', minimum: 0, maximum: 255, default: 1 },
    meter_unit: { type: 'integer', minimum: 0, maximum: 255 },
    watchdog_s: { type: 'integer', minimum: 10, maximum: 86400, default: 120 },
    refresh_each_poll: { type: 'boolean', default: false },
    max_read: { type: 'integer', minimum: 1, maximum: 125, default: 125 },
    max_gap: { type: 'integer', minimum: 0, maximum: 125, default: 16 },
    quirks: { type: 'array', items: { type: 'string' }, default: [] },
    points: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: NAME },
      additionalProperties: {
        // a point with an address is a fixed register, otherwise a SunSpec model point: errors speak of one kind only
        type: 'object',
        if: { required: ['address'] },
        then: {
          type: 'object',
          additionalProperties: false,
          required: ['address', 'type'],
          properties: {
            address: { type: 'integer', minimum: 0, maximum: 65535 },
            function: { enum: ['holding', 'input'], default: 'holding' },
            type: { enum: TYPE_NAMES },
            size: { type: 'integer', minimum: 1, maximum: 125 },
            word_order: { enum: ['high_first', 'low_first'] },
            scale: { type: 'number', default: 1 },
            scale_factor: { type: 'string', pattern: NAME },
            unit: { type: 'string' },
            access: { enum: ['r', 'rw', 'w'], default: 'r' },
            not_implemented: { type: 'array', items: { type: 'number' } },
            on: { enum: ['meter'] },
          },
        },
        else: {
          type: 'object',
          additionalProperties: false,
          required: ['model', 'point'],
          properties: {
            model: { anyOf: [{ type: 'integer' }, { type: 'array', minItems: 1, items: { type: 'integer' } }] },
            point: { type: 'string', minLength: 1 },
            index: { type: 'integer', minimum: 0 },
            instance: { type: 'integer', minimum: 0, default: 0 },
            access: { enum: ['r', 'rw', 'w'], default: 'r' },
            on: { enum: ['meter'] },
          },
        },
      },
    },
    measures: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(Object.keys(MEASURES).map((m) => [m, { anyOf: [alternativeSchema, { type: 'array', minItems: 1, items: alternativeSchema }] }])),
    },
    modes: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(MODES.map((m) => [m, { type: 'array', minItems: 1, items: variantSchema }])),
    },
    pv_limit: {
      type: 'object',
      additionalProperties: false,
      required: ['limit', 'release'],
      description: 'PV power limit (curtailment): `limit` writes a limit of limit_w watts (rated_w = the rated power), `release` lifts it',
      properties: { limit: { type: 'array', minItems: 1, items: variantSchema }, release: { type: 'array', minItems: 1, items: variantSchema } },
    },
  },
} as const;

interface RawProfile {
  id: string;
  name: string;
  description?: string;
  sunspec: boolean;
  default_unit: number;
  meter_unit?: number;
  watchdog_s: number;
  refresh_each_poll: boolean;
  max_read: number;
  max_gap: number;
  quirks: string[];
  points: Record<string, Record<string, unknown>>;
  measures: Partial<Record<MeasureName, unknown>>;
  modes?: Partial<Record<ModeName, RawVariant[]>>;
  pv_limit?: { limit: RawVariant[]; release: RawVariant[] };
}
type RawVariant = { when?: string | number; refresh_each_poll: boolean; writes: { point: string; value: string | number }[] };

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validate = ajv.compile(PROFILE_SCHEMA);

type PathSeg = string | number;

function locate(doc: Document, lines: LineCounter, path: PathSeg[]): string {
  const best = yamlNodeAt(doc, path);
  const range = (best as Node | undefined)?.range;
  if (!range) return '1:1';
  const { line, col } = lines.linePos(range[0]);
  return `${line}:${col}`;
}

const pathString = (path: PathSeg[]) => path.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : String(seg)), '');

const ajvProblem = (e: ErrorObject): { path: PathSeg[]; message: string } => {
  const path: PathSeg[] = e.instancePath.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
  if (e.keyword === 'additionalProperties') return { path, message: `unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"` };
  if (e.keyword === 'enum') return { path, message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` };
  return { path, message: e.message ?? e.keyword };
};

/** Parses and checks a profile; every problem names file:line:col and the key. */
export function parseProfile(text: string, source: string): Profile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (path: PathSeg[], message: string) => `${source}:${locate(doc, lines, path)} ${path.length ? `${pathString(path)}: ` : ''}${message}`;
  if (doc.errors.length) {
    throw new ProfileError(source, doc.errors.map((e) => `${source}:${e.linePos?.[0].line ?? 1}:${e.linePos?.[0].col ?? 1} ${e.message.split('\n')[0]}`));
  }
  const raw = doc.toJS() as RawProfile;
  if (!validate(raw)) {
    // anyOf failures repeat themselves per branch; the first message per path is the useful one
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const e of validate.errors ?? []) {
      if (e.keyword === 'if') continue;
      const p = ajvProblem(e);
      const key = pathString(p.path);
      if (seen.has(key)) continue;
      seen.add(key);
      problems.push(at(p.path, p.message));
    }
    throw new ProfileError(source, problems);
  }
  const problems: string[] = [];
  const points = new Map<string, ProfilePoint>();
  const defs = sunspecModels();

  for (const [name, p] of Object.entries(raw.points)) {
    const access = (p.access as string | undefined) ?? 'r';
    const onMeter = p.on === 'meter';
    if ('address' in p) {
      const type = p.type as ValueType;
      let size = 0;
      try {
        size = registerCount(type, p.size as number | undefined);
      } catch (err) {
        problems.push(at(['points', name, 'size'], (err as Error).message));
      }
      if (p.size !== undefined && type !== 'string' && p.size !== size) problems.push(at(['points', name, 'size'], `a ${type} has ${size} registers, not ${String(p.size)}`));
      if (p.scale_factor !== undefined && p.scale !== 1) problems.push(at(['points', name], 'give scale or scale_factor, not both'));
      points.set(name, {
        kind: 'fixed',
        name,
        address: p.address as number,
        function: (p.function as 'holding' | 'input') ?? 'holding',
        type,
        size,
        wordOrder: (p.word_order as WordOrder | undefined) ?? 'high_first',
        scale: (p.scale as number) ?? 1,
        scaleFactor: p.scale_factor as string | undefined,
        unit: p.unit as string | undefined,
        readable: access !== 'w',
        writable: access !== 'r',
        notImplemented: (p.not_implemented as number[] | undefined) ?? [],
        onMeter,
      });
      if ((p.address as number) + size > 65536) problems.push(at(['points', name, 'address'], 'the value runs past register 65535'));
      if (p.function === 'input' && access !== 'r') problems.push(at(['points', name, 'access'], 'input registers cannot be written'));
    } else {
      if (!raw.sunspec) problems.push(at(['points', name, 'model'], 'SunSpec points need "sunspec: true" at the top of the profile'));
      const models = Array.isArray(p.model) ? (p.model as number[]) : [p.model as number];
      const pointPath = p.point as string;
      for (const id of models) {
        const def = defs.get(id);
        if (!def) {
          problems.push(at(['points', name, 'model'], `SunSpec model ${id} is not known to homeflex (known: ${[...defs.keys()].join(', ')})`));
          continue;
        }
        const [groupName, pointName] = pointPath.includes('.') ? pointPath.split('.', 2) : [undefined, pointPath];
        const group = groupName === undefined ? def : def.groups?.find((g) => g.name === groupName);
        const pointDef = group?.points.find((x) => x.name === pointName);
        if (!pointDef) {
          const known = [...def.points.map((x) => x.name), ...(def.groups ?? []).flatMap((g) => g.points.map((x) => `${g.name}.${x.name}`))];
          problems.push(at(['points', name, 'point'], `model ${id} has no point "${pointPath}" (it has ${known.join(', ')})`));
        } else if (access !== 'r' && !pointDef.rw) {
          problems.push(at(['points', name, 'access'], `model ${id} point ${pointPath} is read-only`));
        }
        const repeating = group !== def && group?.count !== undefined && group.count !== 1;
        if (repeating && p.index === undefined) problems.push(at(['points', name], `${pointPath} is in a repeating group: give "index"`));
        if (!repeating && p.index !== undefined) problems.push(at(['points', name, 'index'], `${pointPath} is not in a repeating group`));
      }
      points.set(name, {
        kind: 'sunspec',
        name,
        models,
        point: pointPath,
        index: p.index as number | undefined,
        instance: (p.instance as number) ?? 0,
        readable: access !== 'w',
        writable: access !== 'r',
        onMeter,
      });
    }
  }
  for (const [name, p] of points) {
    if (p.kind === 'fixed' && p.scaleFactor) {
      const sf = points.get(p.scaleFactor);
      if (!sf) problems.push(at(['points', name, 'scale_factor'], `no point named "${p.scaleFactor}"`));
      else if (sf.kind === 'fixed' && sf.type !== 'sunssf' && sf.type !== 'i16') problems.push(at(['points', name, 'scale_factor'], `"${p.scaleFactor}" must be an i16 or sunssf point`));
    }
  }

  const measureNames = Object.keys(MEASURES) as MeasureName[];
  for (const n of measureNames) if (points.has(n)) problems.push(at(['points', n], `"${n}" is a measure name; give the point another name`));
  for (const n of COMMAND_VARIABLES) if (points.has(n)) problems.push(at(['points', n], `"${n}" is a command variable; give the point another name`));
  const isPoint = (n: string) => points.has(n);
  const compileAt = (path: PathSeg[], src: string | number, known: (n: string) => boolean): Expression | undefined => {
    try {
      return compile(src, known);
    } catch (err) {
      problems.push(at(path, err instanceof ExpressionError ? err.message : String(err)));
      return undefined;
    }
  };

  const measures = new Map<MeasureName, MeasureAlternative[]>();
  for (const m of measureNames) {
    const spec = raw.measures[m];
    if (spec === undefined) continue;
    const list = Array.isArray(spec) ? spec : [spec];
    const alts: MeasureAlternative[] = [];
    list.forEach((alt, i) => {
      const path: PathSeg[] = Array.isArray(spec) ? ['measures', m, i] : ['measures', m];
      const obj = typeof alt === 'object' && alt !== null ? (alt as { expr: string | number; positive?: Positive }) : { expr: alt as string | number };
      const expr = compileAt(path, obj.expr, isPoint);
      if (m === 'battery_power' && obj.positive !== 'charging' && obj.positive !== 'discharging') problems.push(at(path, 'battery_power needs "positive: charging" or "positive: discharging"'));
      else if (m === 'grid_power' && obj.positive !== 'import' && obj.positive !== 'export') problems.push(at(path, 'grid_power needs "positive: import" or "positive: export"'));
      else if (!MEASURES[m].signed && obj.positive !== undefined) problems.push(at(path, `${m} is not signed; remove "positive"`));
      if (expr) alts.push({ expr, positive: obj.positive });
    });
    measures.set(m, alts);
  }

  const modes = new Map<ModeName, ModeVariant[]>();
  const knownInWrites = (n: string) => points.has(n) || (measureNames as string[]).includes(n) || (COMMAND_VARIABLES as readonly string[]).includes(n);
  const compileVariants = (where: PathSeg[], variants: RawVariant[]): ModeVariant[] =>
    variants.map((v, i) => {
      const when = v.when !== undefined ? compileAt([...where, i, 'when'], v.when, knownInWrites) : undefined;
      const writes: Write[] = [];
      v.writes.forEach((w, j) => {
        const p = points.get(w.point);
        if (!p) problems.push(at([...where, i, 'writes', j, 'point'], `no point named "${w.point}"`));
        else if (!p.writable) problems.push(at([...where, i, 'writes', j, 'point'], `point "${w.point}" is read-only (give it access: rw or w)`));
        const value = compileAt([...where, i, 'writes', j, 'value'], w.value, knownInWrites);
        if (value) writes.push({ point: w.point, value });
      });
      return { when, refreshEachPoll: v.refresh_each_poll, writes };
    });
  for (const mode of MODES) {
    const variants = raw.modes?.[mode];
    if (!variants) continue;
    modes.set(mode, compileVariants(['modes', mode], variants));
  }
  const pvLimit = raw.pv_limit ? { limit: compileVariants(['pv_limit', 'limit'], raw.pv_limit.limit), release: compileVariants(['pv_limit', 'release'], raw.pv_limit.release) } : undefined;
  if (modes.size && !modes.has('auto')) problems.push(at(['modes'], 'a profile that commands the inverter must say how to return it to "auto"'));
  const hasMeter = [...points.values()].some((p) => p.onMeter);
  if (raw.meter_unit !== undefined && !hasMeter) problems.push(at(['meter_unit'], 'no point is "on: meter"'));
  if (problems.length) throw new ProfileError(source, problems);

  return {
    id: raw.id,
    name: raw.name,
    description: raw.description ?? '',
    source,
    sunspec: raw.sunspec,
    defaultUnit: raw.default_unit,
    meterUnit: raw.meter_unit,
    watchdogS: raw.watchdog_s,
    refreshEachPoll: raw.refresh_each_poll,
    maxRead: raw.max_read,
    maxGap: raw.max_gap,
    points,
    measures,
    modes,
    pvLimit,
    quirks: raw.quirks,
  };
}

const loaded = new Map<string, Profile>();

/** Ids of the profiles shipped in `adapters/modbus/profiles/`. */
export function shippedProfileIds(): string[] {
  const dir = assetPath('profiles');
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => basename(f, extname(f)))
    .sort();
}

const isPath = (ref: string) => /[/\\]/.test(ref) || /\.(ya?ml|json)$/i.test(ref);

/** A shipped profile by id, or the user's own profile file by path (relative to the working directory). */
export function loadProfile(ref: string): Profile {
  const file = isPath(ref) ? resolve(ref) : join(assetPath('profiles'), `${ref}.yaml`);
  const cached = loaded.get(file);
  if (cached) return cached;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ProfileError(ref, [isPath(ref) ? `cannot read profile file ${file}` : `unknown profile "${ref}" (shipped: ${shippedProfileIds().join(', ')}; or give the path of a .yaml profile)`]);
  }
  const profile = parseProfile(text, isPath(ref) ? file : `adapters/modbus/profiles/${ref}.yaml`);
  if (!isPath(ref) && profile.id !== ref) throw new ProfileError(ref, [`profiles/${ref}.yaml says id "${profile.id}"; the id must match the file name`]);
  loaded.set(file, profile);
  return profile;
}

/** The channels a profile can fill, for the meter capability. */
export function profileChannels(profile: Profile): ('battery' | 'pv' | 'grid')[] {
  const has = (prefix: string) => [...profile.measures.keys()].some((m) => m.startsWith(prefix));
  return (['battery', 'pv', 'grid'] as const).filter((c) => has(`${c}_`));
}
