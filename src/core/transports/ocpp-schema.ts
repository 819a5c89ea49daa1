import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import type { OcppProtocol } from '../../api/index.js';

const require = createRequire(import.meta.url);
// ajv-formats is CommonJS whose typings do not describe its callable export under NodeNext
const addFormats = require('ajv-formats') as (ajv: Ajv) => Ajv;

/**
 * OCPP message schemas: 1.6 from the OCA files kept unchanged in `ocpp-schemas/1.6` (CC BY-ND,
 * see NOTICE.md there), 2.0.1 from the bundle that ships with ocpp-rpc.
 */
export interface OcppSchemas {
  /** Problems of `payload` as the request (`kind` 'req') or response ('conf') of `action`; [] when valid or no schema is known. */
  check(protocol: OcppProtocol, action: string, kind: 'req' | 'conf', payload: unknown): string[];
  has(protocol: OcppProtocol, action: string, kind: 'req' | 'conf'): boolean;
}

/** The folder with the 1.6 JSON files, from src/ when running the sources and from dist/ after a build. */
function schemaDir16(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'ocpp-schemas', '1.6'), resolve(here, '../../../../src/core/transports/ocpp-schemas/1.6')];
  const found = candidates.find((d) => existsSync(d));
  if (!found) throw new Error(`OCPP 1.6 schemas not found (looked in ${candidates.join(', ')})`);
  return found;
}

const newAjv = () => {
  // multipleOfPrecision: OCPP's `multipleOf: 0.1` must accept 7.1, which is not exactly a multiple in binary
  const ajv = new Ajv({ strict: false, validateSchema: false, allErrors: true, multipleOfPrecision: 6 });
  addFormats(ajv);
  return ajv;
};

function describe(fn: ValidateFunction): string[] {
  return (fn.errors ?? []).map((e) => {
    const at = e.instancePath || '(message)';
    const extra = e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : '';
    return `${at} ${e.message}${extra}`;
  });
}

let loaded: OcppSchemas | undefined;

export function ocppSchemas(): OcppSchemas {
  if (loaded) return loaded;
  // schemas are compiled on first use: a hub talks only a handful of the ~120 messages, and each
  // compiled validator costs memory on a small home server
  const sources = new Map<string, { ajv: Ajv; schema: Record<string, unknown> }>();
  const validators = new Map<string, ValidateFunction>();
  const key = (p: OcppProtocol, action: string, kind: 'req' | 'conf') => `${p}|${action}|${kind}`;
  const validator = (k: string) => {
    let fn = validators.get(k);
    const src = sources.get(k);
    if (!fn && src) {
      fn = src.ajv.compile(src.schema);
      validators.set(k, fn);
    }
    return fn;
  };

  const ajv16 = newAjv();
  const dir = schemaDir16();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    // draft-04 files: ajv (draft-07) reads them once `$schema` and the draft-04 `id` are left out
    const { $schema: _s, id: _id, ...schema } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
    const name = file.replace(/\.json$/, '');
    const isConf = name.endsWith('Response');
    sources.set(key('ocpp1.6', isConf ? name.slice(0, -'Response'.length) : name, isConf ? 'conf' : 'req'), { ajv: ajv16, schema });
  }

  const bundle201 = require('ocpp-rpc/lib/schemas/ocpp2_0_1.json') as Record<string, unknown>[];
  const ajv201 = newAjv();
  for (const entry of bundle201) {
    // the bundle's "urn:Action.req" ids trip ajv's URI parser; its refs are all local, so the ids can go
    const { $schema: _s, $id, ...schema } = entry;
    const m = /^urn:(\w+)\.(req|conf)$/.exec(String($id));
    if (m) sources.set(key('ocpp2.0.1', m[1], m[2] as 'req' | 'conf'), { ajv: ajv201, schema });
  }

  loaded = {
    has: (p, action, kind) => sources.has(key(p, action, kind)),
    check(p, action, kind, payload) {
      const fn = validator(key(p, action, kind));
      if (!fn || fn(payload)) return [];
      return describe(fn);
    },
  };
  return loaded;
}
