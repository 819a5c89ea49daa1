import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { jsonRequest } from '../peers/api.js';

const quiet = () => createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: 'warn' });

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

const SITE = (days: string) => `site: { id: loc_home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
storage: { ${days} }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.2137 }, { from: "07:00", to: "00:00", rate: 0.3411 } ] }
  export: { type: fixed, rate: 0.0791 }
`;

async function start(dir: string, days = 'minute_records_days: 30') {
  hub = new Hub({ configText: SITE(days), logger: quiet(), override: (c) => void (c.storage.dir = dir) });
  await hub.start();
  return `${hub.url}/api/v1`;
}

const call = jsonRequest;

const OLD = Date.UTC(2025, 2, 3, 5, 7); // a March 2025 morning across the 07:00 rate change (Berlin), off the quarter grid
const RECENT = Date.now() - 3_600_000; // this month (or the last one in its first hour): not rolled up

/** Minute records: import with a varying value and export every third minute; 150 minutes. */
function minutes(t0: number, prefix: string) {
  const recs = [];
  for (let m = 0; m < 150; m++) {
    const start = t0 + m * 60_000;
    recs.push({ device_id: 'house', units: 'WH', value: 3 + ((m * 37) % 29), start_time: new Date(start).toISOString(), end_time: new Date(start + 60_000).toISOString(), record_reference_id: `${prefix}-i${m}` });
    if (m % 3 === 0) recs.push({ device_id: 'house', units: 'WH', direction: 'EXPORT', value: 1 + (m % 7), start_time: new Date(start).toISOString(), end_time: new Date(start + 60_000).toISOString(), record_reference_id: `${prefix}-e${m}` });
  }
  return recs;
}

const window = (t0: number) => ({ start_time: new Date(t0 - 3_600_000).toISOString(), end_time: new Date(t0 + 4 * 3_600_000).toISOString() });

async function costs(api: string, t0: number) {
  const out: Record<string, { wh: number; cost: number; rows: number }> = {};
  for (const direction of ['IMPORT', 'EXPORT']) {
    const none = await call('POST', `${api}/costs/interval/house?direction=${direction}&aggregation=NONE`, window(t0));
    expect(none.status, JSON.stringify(none.body)).toBe(200);
    const day = await call('POST', `${api}/costs/interval/house?direction=${direction}&aggregation=DAY`, window(t0));
    out[direction] = { wh: day.body.total.energy.value, cost: day.body.total.tariff.value, rows: none.body.data.length };
  }
  return out;
}

describe('retention of minute-level records (storage.minute_records_days)', () => {
  it('rolls months past the retention up to 15-minute records with energy and costs unchanged to the cent, and keeps recent ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-retention-'));
    let api = await start(dir);
    for (const [t0, p] of [[OLD, 'old'], [RECENT, 'new']] as const) {
      const r = await call('PUT', `${api}/meters/interval`, minutes(t0, p));
      expect(r.body.failed_records).toEqual([]);
    }
    const before = await costs(api, OLD);
    const recentBefore = await costs(api, RECENT);
    expect(before.IMPORT.rows).toBe(150);
    expect(before.EXPORT.rows).toBe(50);

    await hub!.services.metering!.store.rollUpNow();
    const after = await costs(api, OLD);
    expect(after.IMPORT.wh).toBe(before.IMPORT.wh);
    expect(after.EXPORT.wh).toBe(before.EXPORT.wh);
    expect(Math.round(after.IMPORT.cost * 100)).toBe(Math.round(before.IMPORT.cost * 100));
    expect(Math.round(after.EXPORT.cost * 100)).toBe(Math.round(before.EXPORT.cost * 100));
    expect(after.IMPORT.cost).toBeCloseTo(before.IMPORT.cost, 6);
    // 05:07-07:37 UTC spans 11 quarter hours (05:00 … 07:30); no minute is left
    expect(after.IMPORT.rows).toBe(11);
    expect(after.EXPORT.rows).toBe(11);
    const rows = await call('POST', `${api}/costs/interval/house?aggregation=NONE`, window(OLD));
    for (const r of rows.body.data) {
      expect(Date.parse(r.end_time) - Date.parse(r.start_time)).toBe(900_000);
      expect(Date.parse(r.start_time) % 900_000).toBe(0);
      expect(r.record_reference_id).toBeNull();
    }
    // the recent month is as it was recorded
    expect(await costs(api, RECENT)).toEqual(recentBefore);
    expect(recentBefore.IMPORT.rows).toBe(150);

    // a late minute record for the rolled-up month would be counted twice: refused, naming why
    const late = await call('PUT', `${api}/meters/interval`, [minutes(OLD, 'late')[0]]);
    expect(late.body.failed_records?.[0]?.error, JSON.stringify(late)).toBeDefined();
    expect(late.body.failed_records[0].error).toMatch(/2025-03 .* past storage\.minute_records_days and was rolled up to 15-minute records/);

    // the roll-up is on disk: after a restart the same
    await hub!.stop();
    api = await start(dir);
    expect(await costs(api, OLD)).toEqual(after);
  }, 60_000);

  it('keeps everything as recorded when the key is not set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-retention-off-'));
    const api = await start(dir, 'dir: ./data');
    await call('PUT', `${api}/meters/interval`, minutes(OLD, 'old'));
    await hub!.services.metering!.store.rollUpNow();
    expect((await costs(api, OLD)).IMPORT.rows).toBe(150);
  });
});
