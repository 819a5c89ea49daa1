import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { builtinCatalog } from '../../src/core/catalog.js';
import { ManualClock } from '../../src/core/clock.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { loadConfigFile } from '../../src/core/config/load.js';
import { Hub } from '../../src/core/host.js';
import { ForecastStore } from '../../src/forecast/store.js';
import { PriceHistory, TARIFF_HISTORY_VERSION } from '../../src/tariff/history.js';
import { quietLog } from '../peers/http-server.js';

/**
 * Upgrades (issue 16 item 7): a site file and the storage directory the v0.1.0 hub wrote with it
 * (test/fixtures/v0.1.0/, written on 2026-12-02 by `homeflex start --config site.yaml --speed 20`
 * for 8 minutes: about 2 h 40 min of simulated meter records, plans, a charging session, tariff
 * history and forecasts) still load with this code, migrate where their format changed, and answer
 * the costs that v0.1.0 answered. The figures below were read from v0.1.0 (commit 58106cc) by this
 * same test before any later change; they are not computed here.
 */
const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'v0.1.0');
// 2026-12-02, local (Europe/Berlin) day: every record of the fixture lies inside it
const WINDOW = { start_time: '2026-12-02T00:00:00+01:00', end_time: '2026-12-03T00:00:00+01:00' };

/** Per device and direction: energy (Wh) and cost (EUR) over WINDOW, as v0.1.0 answered them. */
const V010_COSTS: Record<string, { IMPORT: [number, number]; EXPORT: [number, number] }> = {
  ev: { IMPORT: [241.04, 0.08195], EXPORT: [0, 0] },
  battery: { IMPORT: [613.529, 0.2086], EXPORT: [314.399, 0.1069] },
  pv: { IMPORT: [0, 0], EXPORT: [3257.638, 0] },
  house: { IMPORT: [1007.885, 0.34268], EXPORT: [0, 0] },
  dishwasher: { IMPORT: [3610.14, 1.22745], EXPORT: [0, 0] },
};
/** Records per meter as v0.1.0 listed them (GET /meters). */
const V010_RECORDS: Record<string, number> = { battery: 67, dishwasher: 120, ev: 10, house: 159, pv: 159 };

/** A copy of the fixture in a fresh directory (the hub writes to its storage). */
function copyFixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hf-v010-'));
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

async function api(path: string, init?: { method: string; body: unknown }) {
  const res = await fetch(`${hub!.url}/api/v1${path}`, init ? { method: init.method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) } : undefined);
  expect(res.status, `${path}: ${res.status}`).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe('the v0.1.0 fixtures (issue 16 item 7)', { timeout: 60_000 }, () => {
  it('the v0.1.0 site file passes check-config unchanged', () => {
    const config = loadConfigFile(join(FIXTURE, 'site.yaml'), { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });
    expect(config.site.id).toBe('fixture-home');
    expect(config.devices.map((d) => d.id)).toEqual(['ev', 'battery', 'pv', 'house', 'dishwasher']);
  });

  it('a hub on the v0.1.0 storage lists the same meters and answers the same costs', async () => {
    const dir = copyFixture();
    // a day after the records, so the simulated devices write nothing inside the window
    hub = new Hub({ configFile: join(dir, 'site.yaml'), clock: new ManualClock('2026-12-03T12:00:00Z'), logger: quietLog });
    await hub.start();

    const meters = (await api('/meters')).data as { id: string; records: number }[];
    const records = Object.fromEntries(meters.map((m) => [m.id, m.records]));
    if (process.env.HOMEFLEX_PRINT_FIXTURE) console.log(JSON.stringify(records));
    const costs: typeof V010_COSTS = {};
    for (const id of ['ev', 'battery', 'pv', 'house', 'dishwasher']) {
      const both = { IMPORT: [0, 0], EXPORT: [0, 0] } as { IMPORT: [number, number]; EXPORT: [number, number] };
      for (const direction of ['IMPORT', 'EXPORT'] as const) {
        const r = (await api(`/costs/interval/${id}?aggregation=DAY&direction=${direction}`, { method: 'POST', body: WINDOW })) as { total: { energy: { value: number }; tariff: { value: number } } };
        both[direction] = [r.total.energy.value, r.total.tariff.value];
      }
      costs[id] = both;
    }
    if (process.env.HOMEFLEX_PRINT_FIXTURE) console.log(JSON.stringify(costs));
    for (const [id, n] of Object.entries(V010_RECORDS)) expect(records[id], `records of ${id}`).toBe(n);
    expect(costs).toEqual(V010_COSTS);
  });

  it('after the hub opened it, every stored document carries its version; a newer one is refused', async () => {
    const dir = copyFixture();
    const storage = join(dir, 'storage');
    // what v0.1.0 left without a version: the tariff history files and the forecast store
    expect(JSON.parse(readFileSync(join(storage, 'tariff-history', 'meta.json'), 'utf8')).version).toBeUndefined();
    expect(readdirSync(join(storage, 'forecasts'))).not.toContain('FORMAT');
    hub = new Hub({ configFile: join(dir, 'site.yaml'), clock: new ManualClock('2026-12-03T12:00:00Z'), logger: quietLog });
    await hub.start();
    await hub.stop();
    hub = undefined;
    const json = (...p: string[]) => JSON.parse(readFileSync(join(storage, ...p), 'utf8')) as Record<string, unknown>;
    expect(json('state.json').schema_version).toBe(2);
    expect(json('metering', 'FORMAT')).toEqual({ format: 'homeflex-meter-store', version: 1 });
    expect(json('forecasts', 'FORMAT')).toEqual({ format: 'homeflex-forecast-store', version: 1 });
    const tariffFiles = readdirSync(join(storage, 'tariff-history')).filter((f) => f.endsWith('.json'));
    expect(tariffFiles.sort()).toEqual(['export-2026-12.json', 'import-2026-12.json', 'meta.json']);
    for (const f of tariffFiles) expect(json('tariff-history', f).version, f).toBe(TARIFF_HISTORY_VERSION);

    // a newer homeflex's files are refused, naming the file, and nothing is set aside
    const month = join(storage, 'tariff-history', 'import-2026-12.json');
    writeFileSync(month, JSON.stringify({ ...json('tariff-history', 'import-2026-12.json'), version: 99 }));
    expect(() => PriceHistory.open(join(storage, 'tariff-history'))).toThrow(`${month} was written by a newer homeflex (tariff history version 99, this one reads 1); upgrade homeflex`);
    expect(readdirSync(join(storage, 'tariff-history')).filter((f) => f.includes('damaged'))).toEqual([]);
    writeFileSync(join(storage, 'forecasts', 'FORMAT'), JSON.stringify({ format: 'homeflex-forecast-store', version: 99 }));
    await expect(ForecastStore.open(join(storage, 'forecasts'), Date.parse('2026-12-03T12:00:00Z'))).rejects.toThrow('was written by a newer homeflex (homeflex-forecast-store version 99, this one reads 1)');
  });
});
