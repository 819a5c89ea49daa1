import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ManualClock } from './clock.js';
import { Hub } from './host.js';
import type { RouteEntry } from './http.js';

/**
 * The OpenAPI 3.1 document of the hub's HTTP API, generated from the route table the running
 * server declares (method, path, `access(...)` level and whatever JSON schemas a route gives
 * fastify), so it cannot drift from the code: `homeflex openapi --out docs/openapi.json`, and a
 * test compares the committed file with a fresh one.
 */

/** The site the route table is read from: every part of the hub, no device, no port taken. */
export const ROUTE_SITE = `site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { host: 127.0.0.1, port: 0 }
tariffs:
  import: { type: fixed, rate: 0.30 }
  export: { type: fixed, rate: 0.08 }
`;

const silent = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

/** Starts a hub without devices in a temporary directory and returns the routes its HTTP server declared. */
export async function hubRouteTable(): Promise<RouteEntry[]> {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-openapi-'));
  const hub = new Hub({ configText: ROUTE_SITE, clock: new ManualClock('2026-01-01T00:00:00Z'), logger: silent, override: (c) => void (c.storage.dir = dir) });
  try {
    await hub.start();
    return [...hub.http!.routeTable];
  } finally {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** fastify's `/devices/:id/target` as OpenAPI's `/devices/{id}/target`; a trailing `*` as `{path}`. */
export function openApiPath(url: string): { path: string; params: string[] } {
  const params: string[] = [];
  const path = url
    .replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => (params.push(name), `{${name}}`))
    .replace(/\*$/, () => (params.push('path'), '{path}'));
  return { path, params };
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['object', 'type', 'code', 'message'],
  properties: {
    object: { const: 'error' },
    type: { enum: ['invalid_request', 'api_error'] },
    code: { type: 'string' },
    message: { type: 'string' },
    field: { type: 'string', description: 'The parameter or body field at fault, where there is one' },
  },
};

const ACCESS_TEXT: Record<RouteEntry['access'], string> = {
  public: 'public: anyone who reaches the port',
  read: 'read: this machine without the token (when no proxy forwarded the request); anyone else with `Authorization: Bearer <http.token>`',
  write: 'write: with http.token set, everyone needs it; without one, only this machine',
};

/** The OpenAPI 3.1 document for a route table. */
export function openApiDocument(routes: readonly RouteEntry[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const sorted = [...routes].sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method));
  for (const r of sorted) {
    const { path, params } = openApiPath(r.url);
    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()} ${path}`,
      description: `Access level ${ACCESS_TEXT[r.access]}.`,
      'x-homeflex-access': r.access,
      security: r.access === 'public' ? [] : r.access === 'read' ? [{}, { bearer: [] }] : [{ bearer: [] }],
    };
    const parameters: Record<string, unknown>[] = params.map((name) => ({ name, in: 'path', required: true, schema: (r.schema?.params as { properties?: Record<string, unknown> } | undefined)?.properties?.[name] ?? { type: 'string' } }));
    const query = r.schema?.querystring as { properties?: Record<string, unknown>; required?: string[] } | undefined;
    for (const [name, schema] of Object.entries(query?.properties ?? {})) parameters.push({ name, in: 'query', required: query?.required?.includes(name) ?? false, schema });
    if (parameters.length) op.parameters = parameters;
    if (r.schema?.body) op.requestBody = { required: true, content: { 'application/json': { schema: r.schema.body } } };
    else if (['PUT', 'POST'].includes(r.method)) op.requestBody = { required: false, content: { 'application/json': { schema: {} } } };
    const response = (r.schema?.response as Record<string, unknown> | undefined)?.['200'];
    op.responses = {
      '200': { description: 'Success', content: { 'application/json': { schema: response ?? {} } } },
      default: { description: 'An error: 4xx for the request, 5xx for the hub', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'homeflex HTTP API',
      version,
      description: 'Generated from the hub\'s route table by `homeflex openapi --out docs/openapi.json`; see docs/api.md. Field names follow the FlatPeak API; times are RFC 3339.',
    },
    servers: [{ url: 'http://127.0.0.1:8080' }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'http.token of the site file' } },
      schemas: { Error: ERROR_SCHEMA },
    },
  };
}

/** The document as written to disk: stable key order, two-space indent, a final newline. */
export const openApiText = (doc: Record<string, unknown>) => JSON.stringify(doc, null, 2) + '\n';

/** The package version the document names. */
export function packageVersion(root: string): string {
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

/** `homeflex openapi [--out FILE]`: the document to a file, or to stdout. */
export async function openapiCommand(argv: string[], root: string): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string', short: 'o' } } });
  const text = openApiText(openApiDocument(await hubRouteTable(), packageVersion(root)));
  if (values.out) {
    writeFileSync(values.out, text);
    process.stderr.write(`wrote ${values.out}\n`);
  } else process.stdout.write(text);
  return 0;
}
