import { billSchemaProperties } from '../../tariff/bill-config.js';
import type { AdapterDefinition, ForecastSourceDefinition, JsonSchema, PluginDefinition, TariffSourceDefinition } from '../../api/index.js';
import { CalibrationSchema, DeviceBaseProperties, HubSchemaBase, LoadForecastSchema, PvArraySchema, PvUncertaintySchema } from './schema.js';

export interface Catalog {
  adapters: AdapterDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  plugins: PluginDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  tariffSources: TariffSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Sources of `forecasts.source` (none: the hub's clear-sky and history forecasts only). */
  forecastSources?: ForecastSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Plugins loaded from outside the build for one site file (`plugins[].package` / `.path`); also in `plugins`. */
  external?: ExternalPlugin[];
  /** Plugins the site file names by package or path that were refused, with the located reason. */
  refused?: { index: number; key: 'package' | 'path'; spec: string; problem: { file: string; line: number; col: number; path: string; message: string } }[];
}

/** A plugin the site file names by package or folder, found and checked (src/core/plugins/external.ts). */
export interface ExternalPlugin {
  key: 'package' | 'path';
  /** The package name or folder as the site file writes it. */
  spec: string;
  /** The folder it was loaded from. */
  dir: string;
  name: string;
  version: string;
  /** The homeflex SDK range its package.json declares. */
  range: string;
  /** Where the site file names it: `site.yaml:12:5 plugins[1].path`. */
  where: string;
  def: PluginDefinition<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The plugin definition a `plugins[]` entry selects, by `id` (built in) or by `package` / `path`. */
export function pluginFor(entry: { id?: unknown; package?: unknown; path?: unknown }, catalog: Catalog): PluginDefinition<any> | undefined { // eslint-disable-line @typescript-eslint/no-explicit-any
  if (typeof entry.package === 'string') return catalog.external?.find((e) => e.key === 'package' && e.spec === entry.package)?.def;
  if (typeof entry.path === 'string') return catalog.external?.find((e) => e.key === 'path' && e.spec === entry.path)?.def;
  return (catalog.external ?? []).some((e) => e.def.id === entry.id) ? undefined : catalog.plugins.find((p) => p.id === entry.id);
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** Tariff types that may be a `fallback`: they need no fetching, so they cannot be down. */
export const FALLBACK_TARIFF_TYPES = ['fixed', 'time_of_use'];

/** An object schema whose own properties are `extra` plus `base`, closed to unknown keys. */
function closedObject(base: Record<string, unknown>, extra: JsonSchema): JsonSchema {
  const props = (extra.properties as Record<string, unknown> | undefined) ?? {};
  const required = [...new Set([...(extra.required as string[] | undefined ?? [])])];
  const out: JsonSchema = { ...extra, type: 'object', properties: { ...base, ...props }, additionalProperties: false };
  if (required.length) out.required = required;
  return out;
}

/** `enum` of the values, or a schema nothing matches when there are none (an empty enum is not valid JSON Schema). */
const oneOfOrNone = (values: string[]) => (values.length ? { enum: values } : { not: {} });

/** One "if key == value then schema" branch per definition: editors and ajv both follow it. */
function discriminated(key: string, branches: [string, JsonSchema][]): JsonSchema[] {
  if (!branches.length) return [{}];
  return branches.map(([value, then]) => ({
    if: { type: 'object', properties: { [key]: { const: value } }, required: [key] },
    then,
  }));
}

/**
 * The one JSON Schema of a homeflex YAML file: the hub's own schema with every adapter's,
 * plugin's and tariff source's schema composed in.
 */
export function composeSchema(catalog: Catalog): JsonSchema {
  const schema = clone(HubSchemaBase) as JsonSchema & { properties: Record<string, JsonSchema> };
  const deviceBase = clone(DeviceBaseProperties) as Record<string, JsonSchema>;
  const adapterIds = catalog.adapters.map((a) => a.id);
  deviceBase.adapter = { ...deviceBase.adapter, enum: adapterIds };

  schema.properties.devices = {
    type: 'array',
    default: [],
    description: 'The devices of the house, each driven by one adapter',
    items: {
      type: 'object',
      required: ['id', 'adapter'],
      properties: deviceBase,
      allOf: discriminated(
        'adapter',
        catalog.adapters.map((a) => [a.id, closedObject(deviceBase, { description: a.description, ...a.configSchema })]),
      ),
    },
  };

  const tariffTypes = catalog.tariffSources.map((t) => t.type);
  // a source that cannot fail (fixed, time_of_use) stands in while a dynamic one is down
  const fallbackSources = catalog.tariffSources.filter((t) => FALLBACK_TARIFF_TYPES.includes(t.type));
  const fallbackSchema: JsonSchema = {
    type: 'object',
    required: ['type'],
    description: 'Prices used where the source has none while it is failing (its last refresh failed, or its prices do not reach the present)',
    properties: { type: { type: 'string', ...oneOfOrNone(fallbackSources.map((t) => t.type)), description: 'fixed or time_of_use' } },
    allOf: discriminated('type', fallbackSources.map((t) => [t.type, closedObject({ type: { const: t.type } }, { description: t.description, ...t.configSchema })])),
  };
  const tariffSchema: JsonSchema = {
    type: 'object',
    required: ['type'],
    properties: { type: { type: 'string', ...oneOfOrNone(tariffTypes), description: 'Which tariff source resolves the prices' } },
    allOf: discriminated(
      'type',
      catalog.tariffSources.map((t) => [
        t.type,
        closedObject({ type: { const: t.type } }, { description: t.description, ...t.configSchema, properties: { ...(t.configSchema.properties as Record<string, unknown>), fallback: fallbackSchema } }),
      ]),
    ),
  };
  schema.properties.tariffs = {
    type: 'object',
    additionalProperties: false,
    description: 'Import and export tariffs (each resolving to one energy price series) and the parts of the bill beside energy',
    properties: { import: tariffSchema, export: clone(tariffSchema), ...clone(billSchemaProperties) },
  };

  const forecastSources = catalog.forecastSources ?? [];
  schema.properties.forecasts = {
    type: 'object',
    additionalProperties: false,
    description: 'PV arrays and where their forecast comes from; how the base load is forecast',
    properties: {
      pv: { type: 'array', default: [], items: clone(PvArraySchema), description: 'The PV arrays of the site (roof planes)' },
      source: {
        type: 'object',
        required: ['type'],
        description: 'Where the PV forecast comes from; while it fails, the clear-sky forecast scaled by recent production stands in',
        properties: { type: { type: 'string', ...oneOfOrNone(forecastSources.map((f) => f.type)), description: 'Which forecast source' } },
        allOf: discriminated('type', forecastSources.map((f) => [f.type, closedObject({ type: { const: f.type } }, { description: f.description, ...f.configSchema })])),
      },
      calibration: clone(CalibrationSchema),
      load: clone(LoadForecastSchema),
      uncertainty: clone(PvUncertaintySchema),
    },
  };

  const external = catalog.external ?? [];
  const builtin = catalog.plugins.filter((p) => !external.some((e) => e.def === p));
  const pluginIds = builtin.map((p) => p.id);
  const pluginBase = {
    id: { type: 'string', ...(pluginIds.length ? { enum: pluginIds } : { not: {} }), description: 'Which built-in plugin to load' },
    package: { type: 'string', minLength: 1, description: 'An installed npm package that is a homeflex plugin (the hub never installs it)' },
    path: { type: 'string', minLength: 1, description: 'A folder holding a homeflex plugin (its package.json), relative to this file' },
    enabled: { type: 'boolean', default: true, description: 'false turns the plugin off (the dashboard runs unless turned off so)' },
  };
  const branch = (key: 'package' | 'path', spec: string): JsonSchema => ({ type: 'object', properties: { [key]: { const: spec } }, required: [key] });
  schema.properties.plugins = {
    type: 'array',
    default: [],
    description: 'Plugins: built-in ones by id, others by package or path',
    items: {
      type: 'object',
      properties: pluginBase,
      allOf: [
        ...discriminated('id', builtin.map((p) => [p.id, closedObject(pluginBase, { description: p.description, ...p.configSchema })])),
        ...external.map((e) => ({ if: branch(e.key, e.spec), then: closedObject(pluginBase, { description: e.def.description, ...e.def.configSchema }) })),
      ],
    },
  };

  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://homeflex.local/schema/site.json',
    title: 'homeflex site configuration',
    ...schema,
  };
}
