import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { openApiDocument, openApiPath, openApiText, packageVersion, ROUTE_SITE } from '../../src/core/openapi.js';
import { quietLog } from '../peers/http-server.js';
import { routesOf } from '../reliability/helpers.js';

/**
 * docs/openapi.json is generated from the route table (`homeflex openapi --out docs/openapi.json`);
 * it must be what the code declares now, and hold every route the running server answers.
 */
const ROOT = join(import.meta.dirname, '..', '..');
let hub: Hub;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-openapi-'));
  hub = new Hub({ configText: ROUTE_SITE, clock: new ManualClock('2026-01-01T00:00:00Z'), logger: quietLog, override: (c) => void (c.storage.dir = dir) });
  await hub.start();
});
afterAll(() => hub?.stop());

describe('docs/openapi.json', () => {
  it('is current: regenerate it with `homeflex openapi --out docs/openapi.json` after changing a route', () => {
    const committed = readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8');
    expect(committed).toBe(openApiText(openApiDocument(hub.http!.routeTable, packageVersion(ROOT))));
  });

  it('holds every route of the running server, with its access level', () => {
    const doc = JSON.parse(readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8')) as { paths: Record<string, Record<string, { 'x-homeflex-access': string }>> };
    const served = routesOf(hub.http!.printRoutes({ commonPrefix: false })).filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS');
    expect(served.length).toBeGreaterThanOrEqual(30);
    const missing = served.filter((r) => !doc.paths[openApiPath(r.url).path]?.[r.method.toLowerCase()]).map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
    for (const r of hub.http!.routeTable) expect(doc.paths[openApiPath(r.url).path][r.method.toLowerCase()]['x-homeflex-access'], `${r.method} ${r.url}`).toBe(r.access);
    // the API's writes need the token; the dashboard's files are public
    expect(doc.paths['/api/v1/limits/{id}'].put['x-homeflex-access']).toBe('write');
    expect(doc.paths['/index.html'].get['x-homeflex-access']).toBe('public');
  });
});
