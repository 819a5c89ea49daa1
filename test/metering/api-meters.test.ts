import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Hub } from '../../src/core/host.js';
import { quietLog } from '../peers/http-server.js';

/**
 * Meters only the API feeds (device ids no device in the site file names) are accepted, up to
 * storage.max_api_meters: before, 2,000 made-up device ids in one batch made 2,000 directories.
 */

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

const rec = (device: string, i = 0) => ({ device_id: device, units: 'WH', value: 10, start_time: new Date(Date.UTC(2026, 0, 1) + i * 3_600_000).toISOString(), end_time: new Date(Date.UTC(2026, 0, 1) + (i + 1) * 3_600_000).toISOString() });

async function start(storage: string) {
  const dir = mkdtempSync(join(tmpdir(), 'hf-api-meters-'));
  hub = new Hub({
    configText: `site: { id: home }\nhttp: { port: 0 }\nstorage: ${storage}\ndevices:\n  - { id: house, adapter: sim_load, tick_s: 3600 }\n`,
    logger: quietLog,
    override: (c) => void (c.storage.dir = dir),
  });
  await hub.start();
  const put = async (body: unknown) => {
    const res = await fetch(`${hub!.url}/api/v1/meters/interval`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { failed_records: { record_num: number; error: string }[] } };
  };
  return { dir, put };
}

describe('meters fed only through the API', () => {
  it('are capped by storage.max_api_meters: past it a clear 422 naming the limit, and configured devices are never refused', async () => {
    const { dir, put } = await start('{ max_api_meters: 3 }');
    // five new ids in one batch: three get a meter, two are refused by name
    const first = await put(['m1', 'm2', 'm3', 'm4', 'm5'].map((d) => rec(d)));
    expect(first.status).toBe(200);
    expect(first.body.records_processed).toBe(3);
    expect(first.body.failed_records.map((f) => f.record_num)).toEqual([3, 4]);
    expect(first.body.failed_records[0].error).toMatch(/device_id "m4": this site already has 3 meters fed only through the API .* storage\.max_api_meters \(3\)/);
    // only new ones: a 422
    const more = await put([rec('m6'), rec('m7')]);
    expect(more.status).toBe(422);
    expect(more.body).toMatchObject({ object: 'error', code: 'too_many_meters', max_api_meters: 3 });
    expect(String(more.body.message)).toContain('storage.max_api_meters (3)');
    // meters already there, the site and configured devices (and their channels) go on
    const known = await put([rec('m1', 1), rec('house', 1), rec('house:heating', 1), { ...rec('x'), device_id: undefined, location_id: 'home' }]);
    expect(known.status).toBe(200);
    expect(known.body.records_processed).toBe(4);
    const cumulative = await fetch(`${hub!.url}/api/v1/meters/cumulative/epoch`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: 'm8', direction: 'IMPORT', units: 'WH', data: [{ time: 1767225600, value: 1 }, { time: 1767229200, value: 5 }] }),
    });
    expect(cumulative.status).toBe(422);
    expect(readdirSync(join(dir, 'metering')).filter((f) => f.startsWith('d.m'))).toHaveLength(3);
  });

  it('default to 200: 2,000 made-up device ids in one batch make 200 meters, not 2,000 directories', async () => {
    const { dir, put } = await start('{}');
    const res = await put(Array.from({ length: 2000 }, (_, i) => rec(`api-${i}`)));
    expect(res.body.records_processed).toBe(200);
    expect(res.body.failed_records).toHaveLength(1800);
    expect(readdirSync(join(dir, 'metering')).filter((f) => f.startsWith('d.api-'))).toHaveLength(200);
  });
});
