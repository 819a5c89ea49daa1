import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, visit, type Document, type Node, type Pair } from 'yaml';
import type { JsonSchema } from '../../api/index.js';
import { yamlNodeAt } from '../../api/yaml.js';
import { composeSchema, type Catalog } from './compose.js';
import { HTTP_DEFAULTS, SURPLUS_DEFAULTS, type HubConfig } from './schema.js';

/** One problem in a configuration file, located by line, column and key path. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  /** `devices[2].adapter` */
  path: string;
  message: string;
}

export const formatProblem = (p: ConfigProblem) =>
  `${p.file}:${p.line}:${p.col} ${p.path ? `${p.path}: ` : ''}${p.message}`;

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(`configuration has ${problems.length} error${problems.length === 1 ? '' : 's'}:\n` + problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A semantic check beyond the schema (duplicate ids, references). Returns problems by key path. */
export type ConfigCheck = (config: HubConfig) => { path: (string | number)[]; message: string }[];

type PathSeg = string | number;

export const pathToString = (path: PathSeg[]) =>
  path.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : seg), '');

/** `${VAR}` or `${VAR:-default}`, and `$${…}`, which stands for the literal text `${…}`. */
const ENV_REF = /(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Before parsing, `${VAR}` is written as `<mark><VAR>` and `$${VAR}` as `<esc><esc><VAR>` (same
 * length, so lines and columns stay right): braces would otherwise open a YAML flow mapping in
 * `{ token: ${TOKEN} }`. The marks are private-use characters the file does not contain, so text the
 * user wrote (a password holding `$<HOME>`) is never taken for a reference.
 */
function envMarks(text: string) {
  const free: string[] = [];
  for (let c = 0xe000; free.length < 2; c++) if (!text.includes(String.fromCharCode(c))) free.push(String.fromCharCode(c));
  const [mark, esc] = free;
  const body = (name: string, fallback?: string) => `<${name}${fallback !== undefined ? `:-${fallback}` : ''}>`;
  const marked = text.replace(ENV_REF, (_m, dollar: string, name: string, fallback?: string) => (dollar ? esc + esc : mark) + body(name, fallback));
  return { marked, mark, esc, any: new RegExp(`(${mark}|${esc}${esc})<([A-Za-z_][A-Za-z0-9_]*)(?::-([^>]*))?>`, 'g') };
}
type EnvMarks = ReturnType<typeof envMarks>;

interface Located {
  doc: Document;
  lines: LineCounter;
  file: string;
}

/** The YAML node at `path`, or the nearest ancestor that exists; `key` locates a map key instead. */
function locate(loc: Located, path: PathSeg[], key?: string): { line: number; col: number } {
  let best = yamlNodeAt(loc.doc, path);
  if (key !== undefined && isMap(best)) {
    const pair = best.items.find((p: Pair) => (isScalar(p.key) ? p.key.value : p.key) === key);
    if (pair && (pair.key as Node).range) best = pair.key;
  }
  const range = (best as Node | undefined)?.range;
  const pos = loc.lines.linePos(range ? range[0] : 0);
  return { line: pos.line, col: pos.col };
}

function parsePointer(pointer: string): PathSeg[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

const valueAt = (root: unknown, path: PathSeg[]): unknown =>
  path.reduce<unknown>((v, seg) => (v && typeof v === 'object' ? (v as Record<PathSeg, unknown>)[seg] : undefined), root);

/** Resolves a `$ref`-free schema fragment by following instance path segments. */
function schemaAt(schema: JsonSchema, schemaPath: string, root: JsonSchema): JsonSchema | undefined {
  const segs = schemaPath.replace(/^#\//, '').split('/').slice(0, -1);
  let s: unknown = root;
  for (const seg of segs) s = s && typeof s === 'object' ? (s as Record<string, unknown>)[seg.replace(/~1/g, '/')] : undefined;
  return (s as JsonSchema | undefined) ?? schema;
}

const describeType = (t: unknown) => (Array.isArray(t) ? t.join(' or ') : String(t)).replace('integer', 'whole number');

function explain(err: ErrorObject, root: JsonSchema, data: unknown, path: PathSeg[]): { path: PathSeg[]; key?: string; message: string } {
  const params = err.params as Record<string, unknown>;
  const last = path[path.length - 1];
  switch (err.keyword) {
    case 'additionalProperties': {
      const parent = schemaAt(root, err.schemaPath, root);
      const allowed = Object.keys((parent?.properties as Record<string, unknown>) ?? {});
      const prop = String(params.additionalProperty);
      return {
        path: [...path, prop],
        key: prop,
        message: `unknown key "${prop}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`,
      };
    }
    case 'required':
      return { path, message: `missing required key "${String(params.missingProperty)}"` };
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v).replace(/"/g, ''));
      const value = JSON.stringify(valueAt(data, path));
      const what = last === 'adapter' ? 'adapter' : last === 'type' ? (path[0] === 'forecasts' ? 'forecast source' : 'tariff type') : last === 'id' && path.includes('plugins') ? 'plugin' : 'value';
      return { path, message: `unknown ${what} ${value} (known: ${allowed.join(', ')})` };
    }
    case 'const':
      return { path, message: `must be ${JSON.stringify(params.allowedValue)}` };
    case 'type':
      return { path, message: `must be a ${describeType(params.type)}, got ${JSON.stringify(valueAt(data, path))}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { path, message: `${err.message} (got ${JSON.stringify(valueAt(data, path))})` };
    case 'pattern':
      return { path, message: `${JSON.stringify(valueAt(data, path))} does not match the allowed form ${String(params.pattern)}` };
    case 'anyOf': {
      const parent = schemaAt(root, err.schemaPath + '/x', root);
      const options = ((parent?.anyOf as JsonSchema[] | undefined) ?? []).map((o) => ('const' in o ? JSON.stringify(o.const) : describeType(o.type)));
      return { path, message: `must be one of: ${options.join(', ')} (got ${JSON.stringify(valueAt(data, path))})` };
    }
    default:
      return { path, message: err.message ?? err.keyword };
  }
}

function substituteEnv(loc: Located, marks: EnvMarks, env: NodeJS.ProcessEnv, problems: ConfigProblem[]) {
  visit(loc.doc, {
    Scalar(_key, node, ancestry) {
      if (typeof node.value !== 'string' || !(node.value.includes(marks.mark) || node.value.includes(marks.esc))) return;
      node.value = node.value.replace(marks.any, (_m, kind: string, name: string, fallback?: string) => {
        // `$${X}` is the literal text `${X}`, not a reference
        if (kind !== marks.mark) return `\${${name}${fallback !== undefined ? `:-${fallback}` : ''}}`;
        const v = env[name];
        if (v !== undefined && v !== '') return v;
        if (fallback !== undefined) return fallback;
        const pos = loc.lines.linePos(node.range?.[0] ?? 0);
        const path: PathSeg[] = [];
        for (let i = 1; i < ancestry.length; i++) {
          const a = ancestry[i];
          const parent = ancestry[i - 1];
          if (isSeq(parent)) path.push(parent.items.indexOf(a as never));
          else if ((a as Pair).key !== undefined) {
            const k = (a as Pair).key;
            path.push(String(isScalar(k) ? k.value : k));
          }
        }
        problems.push({ file: loc.file, line: pos.line, col: pos.col, path: pathToString(path), message: `environment variable ${name} is not set (write \${${name}:-default} for a default)` });
        return '';
      });
    },
  });
}

export interface LoadOptions {
  catalog: Catalog;
  env?: NodeJS.ProcessEnv;
  checks?: ConfigCheck[];
  /** Name used in messages; defaults to the file's base name. */
  displayName?: string;
}

const validators = new WeakMap<Catalog, { schema: JsonSchema; validate: ValidateFunction }>();

function validatorFor(catalog: Catalog) {
  let v = validators.get(catalog);
  if (!v) {
    const schema = composeSchema(catalog);
    const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, allowUnionTypes: true });
    v = { schema, validate: ajv.compile(schema) };
    validators.set(catalog, v);
  }
  return v;
}

/** Parses, substitutes `${VAR}`, validates and applies defaults. Throws ConfigError with every problem. */
export function parseConfig(text: string, file: string, options: LoadOptions): HubConfig {
  const displayName = options.displayName ?? basename(file);
  const lines = new LineCounter();
  const marks = envMarks(text);
  const doc = parseDocument(marks.marked, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const loc: Located = { doc, lines, file: displayName };
  const problems: ConfigProblem[] = [];
  // later syntax errors are mostly echoes of the first ones
  for (const e of doc.errors.slice(0, 3)) {
    const pos = lines.linePos(e.pos[0]);
    problems.push({ file: displayName, line: pos.line, col: pos.col, path: '', message: `YAML syntax: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}` });
  }
  if (problems.length) throw new ConfigError(problems);
  substituteEnv(loc, marks, options.env ?? process.env, problems);

  let data: Record<string, unknown>;
  try {
    data = (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>;
  } catch (err) {
    // unresolved or excessive aliases: point at the first alias the document cannot resolve
    let pos = { line: 1, col: 1 };
    visit(doc, {
      Alias(_k, node) {
        if (node.resolve(doc) === undefined || pos.line === 1) {
          pos = lines.linePos(node.range?.[0] ?? 0);
          if (node.resolve(doc) === undefined) return visit.BREAK;
        }
      },
    });
    throw new ConfigError([{ file: displayName, line: pos.line, col: pos.col, path: '', message: `YAML alias: ${(err as Error).message.split('\n')[0]}` }]);
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([{ file: displayName, line: 1, col: 1, path: '', message: 'the file must be a YAML mapping with at least a "site" key' }]);
  }
  const envPaths = new Set(problems.map((p) => p.path));
  const { schema, validate } = validatorFor(options.catalog);
  if (!validate(data)) {
    const seen = new Set<string>();
    for (const err of validate.errors ?? []) {
      if (err.keyword === 'if' || err.keyword === 'allOf') continue; // the branch's own errors say what was wrong
      const located = explain(err, schema, data, parsePointer(err.instancePath));
      const pos = locate(loc, located.key ? located.path.slice(0, -1) : located.path, located.key);
      if (envPaths.has(pathToString(located.path))) continue; // already reported as a missing variable
      const problem = { file: displayName, line: pos.line, col: pos.col, path: pathToString(located.path), message: located.message };
      const k = formatProblem(problem);
      if (!seen.has(k)) {
        seen.add(k);
        problems.push(problem);
      }
    }
  }
  const config = withSections(data, file);
  // the checks across sections run on a file with schema errors too, so every error shows in one pass;
  // a key the schema already faulted is not reported twice, and a check the malformed data trips is skipped
  const faulted = new Set(problems.map((p) => p.path));
  for (const check of options.checks ?? []) {
    let found: ReturnType<ConfigCheck>;
    try {
      found = check(config);
    } catch {
      continue;
    }
    for (const p of found) {
      const path = pathToString(p.path);
      if (faulted.has(path)) continue;
      const pos = locate(loc, p.path);
      problems.push({ file: displayName, line: pos.line, col: pos.col, path, message: p.message });
    }
  }
  if (problems.length) {
    problems.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ConfigError(problems);
  }
  return config;
}

/** Fills sections the file left out with their schema defaults. */
function withSections(data: Record<string, unknown>, file: string): HubConfig {
  const d = data as Partial<HubConfig> & Record<string, unknown>;
  const site = (d.site && typeof d.site === 'object' ? d.site : {}) as HubConfig['site'];
  site.circuits ??= [];
  return {
    site,
    http: { ...HTTP_DEFAULTS, ...(d.http ?? {}) },
    storage: { dir: './data', ...(d.storage ?? {}) },
    log: { level: 'info', format: 'auto', ...(d.log ?? {}) },
    planner: { horizon_hours: 48, replan_minutes: 15, slot_minutes: 15, ...(d.planner ?? {}) },
    surplus: { ...SURPLUS_DEFAULTS, ...(d.surplus ?? {}) },
    tariffs: (d.tariffs as HubConfig['tariffs']) ?? {},
    forecasts: { pv: [], ...((d.forecasts as Partial<HubConfig['forecasts']>) ?? {}) },
    connections: { modbus: [], ...(d.connections ?? {}) } as HubConfig['connections'],
    devices: d.devices ?? [],
    plugins: d.plugins ?? [],
    source: file,
  };
}

/** The text of a site file; a file that cannot be read is a located ConfigError. */
export function readSiteFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: 1, col: 1, path: '', message: `cannot read the file: ${(err as Error).message}` }]);
  }
}

export function loadConfigFile(file: string, options: LoadOptions): HubConfig {
  return parseConfig(readSiteFile(file), file, options);
}

export { composeSchema };
