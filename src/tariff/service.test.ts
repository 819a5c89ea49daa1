import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger, PriceSeries } from '../api/index.js';
import { HubBus } from '../core/bus.js';
import { builtinCatalog } from '../core/catalog.js';
import { ManualClock } from '../core/clock.js';
import type { TariffConfig } from '../core/config/schema.js';
import { StateStore } from '../core/store/state.js';
import { TariffService } from './service.js';
import { joined } from '../../test/peers/series.js';

const T = (s: string) => Date.parse(s);
const H = 3_600_000;
const quietLog: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quietLog };
const site = { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' };
const rates = (s: PriceSeries) => s.map((x) => [new Date(x.start).toISOString().slice(11, 16), new Date(x.end).toISOString().slice(11, 16), x.rate]);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function service(dir: string, clock: ManualClock, importTariff: TariffConfig, bus = new HubBus()) {
  const state = await StateStore.open(dir);
  const s = new TariffService({ site, clock, bus, log: quietLog, state, storageDir: dir, tariffs: { import: importTariff }, configSource: join(dir, 'site.yaml'), sources: builtinCatalog.tariffSources });
  await s.start();
  return { s, state };
}

describe('price history', () => {
  it('costs keep the tariff in force at the time after the YAML tariff changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-history-'));
    dirs.push(dir);
    // Monday 2026-01-05, 09:30 local (08:30Z)
    const clock = new ManualClock('2026-01-05T08:30:00Z');
    const first = await service(dir, clock, { type: 'fixed', rate: 0.3 });
    await clock.advance(3 * H); // the minute tick records each hour as it begins
    await first.s.stop();
    // the user edits the YAML at 11:30Z and restarts
    const second = await service(dir, clock, { type: 'fixed', rate: 0.4 });
    const day = { start: T('2026-01-04T23:00Z'), end: T('2026-01-05T15:00Z') };
    // recorded from the start of the local day: 0.30 until the end of the 11:00Z hour in force at the edit, 0.40 after
    expect(rates(joined(second.s.series('IMPORT', day)))).toEqual([
      ['23:00', '12:00', 0.3],
      ['12:00', '15:00', 0.4],
    ]);
    // the live price for the same past hours is the new one
    expect(rates(joined(second.s.live('IMPORT', { start: T('2026-01-05T09:00Z'), end: T('2026-01-05T10:00Z') })))).toEqual([['09:00', '10:00', 0.4]]);
    await second.s.stop();
    expect(readdirSync(join(dir, 'tariff-history')).sort()).toEqual(['export-2026-01.json', 'import-2026-01.json', 'meta.json']);
  });

  it('imported past prices replace what was recorded; a damaged month file is moved aside, not lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-history-'));
    dirs.push(dir);
    const clock = new ManualClock('2026-01-05T12:00:00Z');
    const bus = new HubBus();
    const events: string[] = [];
    bus.on('tariff.updated', (e) => events.push(e.direction));
    const first = await service(dir, clock, { type: 'fixed', rate: 0.3 });
    await first.s.stop();
    // the tariff changes to 0.40; the morning was recorded at 0.30
    const { s } = await service(dir, clock, { type: 'fixed', rate: 0.4 }, bus);
    await s.importSeries('IMPORT', [
      { start: T('2026-01-05T08:00Z'), end: T('2026-01-05T09:00Z'), rate: 0.05, confidence: 1 },
      { start: T('2026-01-05T10:00Z'), end: T('2026-01-05T11:00Z'), rate: 0.07, confidence: 1 },
    ]);
    expect(events).toEqual(['IMPORT']);
    // the recorded 09:00 hour between the two sent slots is kept
    expect(rates(joined(s.series('IMPORT', { start: T('2026-01-05T07:00Z'), end: T('2026-01-05T12:00Z') })))).toEqual([
      ['07:00', '08:00', 0.3],
      ['08:00', '09:00', 0.05],
      ['09:00', '10:00', 0.3],
      ['10:00', '11:00', 0.07],
      ['11:00', '12:00', 0.3],
    ]);
    await s.stop();
    writeFileSync(join(dir, 'tariff-history', 'export-2026-01.json'), '{"slots": [[1,');
    const again = await service(dir, clock, { type: 'fixed', rate: 0.4 });
    expect(readdirSync(join(dir, 'tariff-history')).some((f) => f.startsWith('export-2026-01.json.damaged-'))).toBe(true);
    expect(rates(joined(again.s.series('IMPORT', { start: T('2026-01-05T08:00Z'), end: T('2026-01-05T09:00Z') })))).toEqual([['08:00', '09:00', 0.05]]);
    await again.s.stop();
  });

  it('with no tariff configured, a direction has only what was imported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-history-'));
    dirs.push(dir);
    const clock = new ManualClock('2026-01-05T12:00:00Z');
    const state = await StateStore.open(dir);
    const s = new TariffService({ site, clock, bus: new HubBus(), log: quietLog, state, storageDir: dir, tariffs: {}, configSource: 'site.yaml', sources: builtinCatalog.tariffSources });
    await s.start();
    expect(s.series('EXPORT', { start: T('2026-01-05T12:00Z'), end: T('2026-01-06T12:00Z') })).toEqual([]);
    expect(s.status('EXPORT')).toMatchObject({ type: null, error: null, last_updated: null });
    await s.stop();
  });

  it('a refresh that brings new prices is announced on the bus; a failed one keeps the last prices and shows the error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-history-'));
    dirs.push(dir);
    const file = join(dir, 'prices.csv');
    writeFileSync(file, 'valid_from,valid_to,rate\n2026-01-06T00:00:00Z,2026-01-06T01:00:00Z,0.2\n');
    const clock = new ManualClock('2026-01-05T12:00:00Z');
    const bus = new HubBus();
    const events: { direction: string; source: string }[] = [];
    bus.on('tariff.updated', (e) => events.push({ direction: e.direction, source: e.source }));
    const { s } = await service(dir, clock, { type: 'file', path: 'prices.csv' }, bus);
    const night = { start: T('2026-01-06T00:00Z'), end: T('2026-01-06T01:00Z') };
    expect(rates(s.series('IMPORT', night))).toEqual([['00:00', '01:00', 0.2]]);
    await s.refresh('IMPORT'); // the file did not change: nothing new
    expect(events).toEqual([]);
    clock.set('2026-01-05T12:05:00Z');
    writeFileSync(file, 'valid_from,valid_to,rate\n2026-01-06T00:00:00Z,2026-01-06T01:00:00Z,0.15\n');
    await s.refresh('IMPORT');
    expect(events).toEqual([{ direction: 'IMPORT', source: 'file' }]);
    expect(rates(s.series('IMPORT', night))).toEqual([['00:00', '01:00', 0.15]]);
    writeFileSync(file, 'valid_from,valid_to,rate\n2026-01-06T00:00:00Z,2026-01-06T01:00:00Z,lots\n');
    await expect(s.refresh('IMPORT')).rejects.toThrow('prices.csv:2 rate "lots" is not a number');
    expect(s.status('IMPORT')).toMatchObject({ type: 'file', error: 'prices.csv:2 rate "lots" is not a number' });
    expect(rates(s.series('IMPORT', night))).toEqual([['00:00', '01:00', 0.15]]);
    await s.stop();
  });
});
