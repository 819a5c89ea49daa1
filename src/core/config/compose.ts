import { billSchemaProperties } from '../../tariff/bill-config.js';
import type { AdapterDefinition, ForecastSourceDefinition, JsonSchema, PluginDefinition, TariffSourceDefinition } from '../../api/index.js';
import { CalibrationSchema, DeviceBaseProperties, HubSchemaBase, LoadForecastSchema, PvArraySchema } from './schema.js';

export interface Catalog {
  adapters: AdapterDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  plugins: PluginDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  tariffSources: TariffSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Sources of `forecasts.source` (none: the hub's clear-sky and history forecasts only). */
  forecastSources?: ForecastSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
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
    properties: { type: { type: 'string', enum: fallbackSources.map((t) => t.type), description: 'fixed or time_of_use' } },
    allOf: discriminated('type', fallbackSources.map((t) => [t.type, closedObject({ type: { const: t.type } }, { description: t.description, ...t.configSchema })])),
  };
  const tariffSchema: JsonSchema = {
    type: 'object',
    required: ['type'],
    properties: { type: { type: 'string', enum: tariffTypes, description: 'Which tariff source resolves the prices' } },
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
        properties: { type: { type: 'string', enum: forecastSources.map((f) => f.type), description: 'Which forecast source' } },
        allOf: discriminated('type', forecastSources.map((f) => [f.type, closedObject({ type: { const: f.type } }, { description: f.description, ...f.configSchema })])),
      },
      calibration: clone(CalibrationSchema),
      load: clone(LoadForecastSchema),
    },
  };

  const pluginIds = catalog.plugins.map((p) => p.id);
  const pluginBase = { id: { type: 'string', ...(pluginIds.length ? { enum: pluginIds } : { not: {} }), description: 'Which plugin to load' } };
  schema.properties.plugins = {
    type: 'array',
    default: [],
    items: {
      type: 'object',
      required: ['id'],
      properties: pluginBase,
      allOf: discriminated(
        'id',
        catalog.plugins.map((p) => [p.id, closedObject(pluginBase, { description: p.description, ...p.configSchema })]),
      ),
    },
  };

  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://homeflex.local/schema/site.json',
    title: 'homeflex site configuration',
    ...schema,
  };
}
