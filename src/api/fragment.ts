import { Kind, Type, TypeRegistry, type SchemaOptions, type Static, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import type { ValueError } from '@sinclair/typebox/errors';
import type { ConfigIssue, JsonSchema } from './adapter.js';

/**
 * Config fragments (an adapter's keys in a `devices[]` entry, a plugin's entry, an API body) are
 * TypeBox schemas: the JSON Schema the YAML loader, the editor and fastify check; the TypeScript
 * type (`Static<>`) the code reads; and the defaults, all from one definition.
 *
 * A key with a `default` is never required of the user (the YAML leaves it out), but is always
 * there once the defaults are applied: so write it without `Type.Optional` and `Static<>` types it
 * as present. `configSchema()` drops such keys from the JSON Schema's `required`.
 */

const ENUM_KIND = 'homeflex.Enum';
if (!TypeRegistry.Has(ENUM_KIND)) TypeRegistry.Set(ENUM_KIND, (schema: { enum: unknown[] }, value) => schema.enum.includes(value));

/** One value of a fixed list, written in JSON Schema as `enum` (the YAML loader names the allowed values). */
export const Enum = <const T extends readonly (string | number | boolean)[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> =>
  Type.Unsafe<T[number]>({ ...options, [Kind]: ENUM_KIND, enum: [...values] });

/** An object that refuses keys it does not list (as every config fragment and API body does). */
export const StrictObject = <T extends TProperties>(properties: T, options: SchemaOptions = {}): TObject<T> =>
  Type.Object(properties, { ...options, additionalProperties: false });

/** `HH:MM`, local time of the site. */
export const HHMM_PATTERN = '^([01]\\d|2[0-3]):[0-5]\\d$';
export const Hhmm = (options: SchemaOptions = {}) => Type.String({ ...options, pattern: HHMM_PATTERN });

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Plain forms already made, by the schema's `properties`: a shared part (the switched-load schedule) stays one object. */
const plainByProperties = new WeakMap<object, JsonSchema>();

/** The plain JSON Schema of a fragment: what `configSchema` holds and `homeflex schema` writes. */
export function configSchema(schema: TSchema | JsonSchema): JsonSchema {
  const plainOf = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(plainOf);
    if (!isRecord(node)) return node;
    const props = node.properties;
    const shared = isRecord(props) ? plainByProperties.get(props) : undefined;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = plainOf(v);
    if (isRecord(props) && Array.isArray(out.required)) {
      const required = (out.required as string[]).filter((k) => !(isRecord(props[k]) && 'default' in props[k]));
      if (required.length) out.required = required;
      else delete out.required;
    }
    // the same schema used again (wrapped in Type.Optional, which copies its top) gives the same object
    return shared && JSON.stringify(shared) === JSON.stringify(out) ? shared : out;
  };
  const plain = plainOf(schema) as JsonSchema;
  if (isRecord(schema.properties) && !plainByProperties.has(schema.properties)) plainByProperties.set(schema.properties, plain);
  return plain;
}

/**
 * The fragment with the schema's defaults filled in, for values built in code (tests, other
 * adapters) rather than loaded from YAML, where the loader has applied them already. Not validated:
 * `parseFragment` checks too. Keys the schema does not know (a device's `id`) are kept; the value given is not changed.
 */
export function applyDefaults<T extends TSchema, V extends object>(schema: T, value: V): Omit<V, keyof Static<T>> & Static<T> {
  return Value.Default(schema, Value.Clone(value)) as Omit<V, keyof Static<T>> & Static<T>;
}

const show = (v: unknown) => JSON.stringify(v) ?? String(v);
const typeNames: Partial<Record<ValueErrorType, string>> = {
  [ValueErrorType.Number]: 'number',
  [ValueErrorType.Integer]: 'whole number',
  [ValueErrorType.String]: 'string',
  [ValueErrorType.Boolean]: 'boolean',
  [ValueErrorType.Object]: 'object',
  [ValueErrorType.Array]: 'array',
};
const bounds: Partial<Record<ValueErrorType, [string, string]>> = {
  [ValueErrorType.NumberMinimum]: ['>=', 'minimum'],
  [ValueErrorType.IntegerMinimum]: ['>=', 'minimum'],
  [ValueErrorType.NumberMaximum]: ['<=', 'maximum'],
  [ValueErrorType.IntegerMaximum]: ['<=', 'maximum'],
  [ValueErrorType.NumberExclusiveMinimum]: ['>', 'exclusiveMinimum'],
  [ValueErrorType.IntegerExclusiveMinimum]: ['>', 'exclusiveMinimum'],
  [ValueErrorType.NumberExclusiveMaximum]: ['<', 'exclusiveMaximum'],
  [ValueErrorType.IntegerExclusiveMaximum]: ['<', 'exclusiveMaximum'],
};

const pointerPath = (pointer: string): (string | number)[] =>
  pointer
    ? pointer
        .slice(1)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
    : [];

/** One TypeBox error in the words the YAML loader uses, at the key it is about. */
function issueOf(e: ValueError): ConfigIssue {
  const path = pointerPath(e.path);
  const s = e.schema as Record<string, unknown>;
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return { path: path.slice(0, -1), message: `missing required key "${String(path[path.length - 1])}"` };
    case ValueErrorType.ObjectAdditionalProperties: {
      const allowed = Object.keys((s.properties as Record<string, unknown> | undefined) ?? {});
      return { path, message: `unknown key "${String(path[path.length - 1])}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}` };
    }
    case ValueErrorType.Kind:
      if (Array.isArray(s.enum)) return { path, message: `unknown value ${show(e.value)} (known: ${s.enum.map((v) => show(v).replace(/"/g, '')).join(', ')})` };
      break;
    case ValueErrorType.StringPattern:
      return { path, message: `${show(e.value)} does not match the allowed form ${String(s.pattern)}` };
    case ValueErrorType.Union: {
      const options = ((s.anyOf as Record<string, unknown>[] | undefined) ?? []).map((o) => ('const' in o ? show(o.const) : String(o.type)));
      return { path, message: `must be one of: ${options.join(', ')} (got ${show(e.value)})` };
    }
  }
  const type = typeNames[e.type];
  if (type === 'object' && !path.length) return { path, message: 'must be a JSON object' };
  if (type) return { path, message: `must be ${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}, got ${show(e.value)}` };
  const bound = bounds[e.type];
  if (bound) return { path, message: `must be ${bound[0]} ${String(s[bound[1]])} (got ${show(e.value)})` };
  return { path, message: e.message };
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: ConfigIssue[] };

/**
 * Parses a config fragment or an API body: applies the schema's defaults, validates, and returns
 * the typed value or every problem located at its key (paths relative to the fragment).
 */
export function parseFragment<T extends TSchema>(schema: T, value: unknown): Parsed<Static<T>> {
  const filled = Value.Default(schema, Value.Clone(value));
  if (Value.Check(schema, filled)) return { ok: true, value: filled as Static<T> };
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, filled)) {
    // a union's members each report; the union's own error says it in one line
    if (issues.some((i) => e.path.startsWith(pointerOf(i.path) + '/') && i.message.startsWith('must be one of'))) continue;
    const issue = issueOf(e);
    const key = `${issue.path.join('.')}: ${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      issues.push(issue);
    }
  }
  return { ok: false, issues };
}

const pointerOf = (path: (string | number)[]) => path.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

/** An issue as one line: `target.leave_time: "7" does not match …`. */
export const issueText = (issue: ConfigIssue) => {
  const path = pathText(issue.path);
  return `${path ? `${path}: ` : ''}${issue.message}`;
};

/** A key path as the hub writes it in messages: `devices[2].target.leave_time`. */
export const pathText = (path: readonly (string | number)[]) =>
  path.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : seg), '');

export type { Static, TSchema } from '@sinclair/typebox';
export { Type } from '@sinclair/typebox';
