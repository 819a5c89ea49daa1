import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { loadConfigFile } from '../../src/core/config/load.js';
import { Hub } from '../../src/core/host.js';
import { migrateStoreCommand } from '../../src/metering/migrate.js';
import { reportCommand } from '../../src/metering/report.js';
import { PgMeterStore } from '../../src/metering/pg-store.js';
import { deviceSubject, flagsOf, type RowOp } from '../../src/metering/records.js';
import { MeterStore } from '../../src/metering/store.js';
import type { MeterRecordStore } from '../../src/metering/store-api.js';
import { quietLog } from '../peers/http-server.js';
import { startPostgres, type PgServer } from '../peers/postgres.js';
import { describeWithPeers } from '../peers/system.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const SITE = (id: string) => `site: { id: ${id}, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.21 }, { from: "07:00", to: "00:00", rate: 0.34 } ] }
  export: { type: fixed, rate: 0.08 }
`;

const call = async (method: string, url: string, body?: unknown): Promise<{ status: number; body: Json }> => {
  const res = await fetch(url, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
};

const H = 3_600_000;
const T0 = Date.UTC(2026, 4, 30, 20); // crosses a month boundary (May/June, local and UTC)
const iso = (t: number) => new Date(t).toISOString();
const rec = (device: string, start: number, ms: number, value: number, extra: Record<string, unknown> = {}) => ({
  location_id: 'loc_home',
  device_id: device,
  units: 'WH',
  value,
  start_time: iso(start),
  end_time: iso(start + ms),
  record_reference_id: `${device}-${start}-${ms}`,
  ...extra,
});

let server: PgServer;
const hubs: Hub[] = [];

async function startHub(kind: 'files' | 'postgres', opts: { dir?: string; site?: string; waitS?: number; clock?: ManualClock } = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'hf-pgstore-'));
  const meters = kind === 'postgres' ? `storage: { meters: { postgres: { url: "${server.url}", write_wait_s: ${opts.waitS ?? 10} } } }\n` : '';
  const hub = new Hub({ configText: SITE(opts.site ?? 'loc_home') + meters, clock: opts.clock ?? new ManualClock('2026-06-03T10:00:00Z'), logger: quietLog, override: (c) => void (c.storage.dir = dir) });
  await hub.start();
  hubs.push(hub);
  return { hub, url: `${hub.url}/api/v1`, dir };
}

function cliIo() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t), defaultConfig: '', loadConfig: (file: string) => loadConfigFile(file, { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) }) },
  };
}

async function stopHubs() {
  for (const h of hubs.splice(0)) await h.stop();
}

/** The same inputs for either store: intervals of several lengths, a forecast then its actual, a resubmission, register readings (one late). */
async function feed(url: string) {
  const batches: unknown[][] = [];
  const hourly = [];
  for (let i = 0; i < 48; i++) hourly.push(rec('heatpump', T0 + i * H, H, 500 + 37 * i));
  batches.push(hourly);
  const minutes = [];
  for (let i = 0; i < 240; i++) minutes.push(rec('ev', T0 + 3 * H + i * 60_000, 60_000, 180 + (i % 7)));
  batches.push(minutes);
  batches.push([rec('pv', T0 + 10 * H, 2.5 * H, 4200, { direction: 'EXPORT' })]);
  // a forecast, then the actual replaces it; a later forecast does not replace the actual
  batches.push([rec('battery', T0 + 30 * H, H, 900, { confidence: 0.5 })]);
  batches.push([rec('battery', T0 + 30 * H, H, 1000)]);
  batches.push([rec('battery', T0 + 30 * H, H, 1, { confidence: 0.4 })]);
  // resubmission replaces
  batches.push([rec('heatpump', T0 + 5 * H, H, 9999)]);
  for (const b of batches) {
    const r = await call('PUT', `${url}/meters/interval`, b);
    expect(r.status).toBe(200);
  }
  const reading = (t: number, wh: number) => ({ time: t / 1000, value: wh });
  const cum = (data: unknown[]) => ({ location_id: 'loc_home', device_id: 'meter1', units: 'WH', data });
  expect((await call('PUT', `${url}/meters/cumulative/epoch`, cum([reading(T0, 1000), reading(T0 + H, 1600), reading(T0 + 3 * H, 2600)]))).body.records_processed).toBe(3);
  // a late reading splits the interval it falls in
  expect((await call('PUT', `${url}/meters/cumulative/epoch`, cum([reading(T0 + 2 * H, 2000)]))).body.records_processed).toBe(1);
}

async function answers(url: string) {
  const w = { start_time: '2026-05-30T00:00:00+02:00', end_time: '2026-06-03T00:00:00+02:00' };
  const out: Record<string, unknown> = {};
  for (const d of ['heatpump', 'ev', 'pv', 'battery', 'meter1']) {
    for (const agg of ['NONE', 'DAY', 'MONTH']) {
      const r = await call('POST', `${url}/costs/interval/${d}?aggregation=${agg}&include_tariff=true`, w);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      out[`${d} ${agg}`] = r.body;
    }
    out[`${d} export`] = (await call('POST', `${url}/costs/interval/${d}?direction=EXPORT&aggregation=DAY`, w)).body;
    out[`${d} savings`] = (await call('GET', `${url}/savings/${d}?start_time=2026-05-30T00:00:00Z&end_time=2026-06-03T00:00:00Z`)).body;
  }
  const meters = (await call('GET', `${url}/meters`)).body;
  // the list's order is not part of the answer
  meters.data.sort((a: Json, b: Json) => a.id.localeCompare(b.id));
  out.meters = meters;
  // answers carry a fresh id each time
  return JSON.parse(JSON.stringify(out, (k, v) => (k === 'id' && typeof v === 'string' && /^[a-z]+_[0-9a-f]{24}$/.test(v) ? '(id)' : v)));
}

describeWithPeers(['postgresql'], 'the PostgreSQL meter store against a real server', () => {
  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await stopHubs();
    await server?.stop();
  }, 60_000);

  it('answers costs, savings and meter lists exactly as the file store on the same inputs, also after a restart', async () => {
    const files = await startHub('files');
    await feed(files.url);
    const fromFiles = await answers(files.url);
    const pgDir = mkdtempSync(join(tmpdir(), 'hf-pgstore-'));
    const pgHub = await startHub('postgres', { dir: pgDir });
    await feed(pgHub.url);
    const fromPg = await answers(pgHub.url);
    expect(fromPg).toEqual(fromFiles);
    // the inputs did what they say (so equal answers are not two empty ones)
    const hp = fromPg['heatpump DAY'] as Json;
    expect(hp.total.energy?.value ?? hp.total.energy).toBeDefined();
    const battery = (fromPg['battery NONE'] as Json).data;
    expect(JSON.stringify(battery)).toContain('1000');
    expect(JSON.stringify(fromPg['heatpump NONE'])).toContain('9999');
    expect((fromPg.meters as Json).data.map((m: Json) => m.id).sort()).toEqual(['battery', 'ev', 'heatpump', 'meter1', 'pv']);
    // rows are in the database, under the site id, and nothing wrote files
    const store = await PgMeterStore.open({ url: server.url, siteId: 'loc_home', readOnly: true });
    expect(store.intervals(deviceSubject('heatpump'), -Infinity, Infinity).n).toBe(48);
    expect(store.intervals(deviceSubject('ev'), -Infinity, Infinity).n).toBe(240);
    await store.close();
    // a restart reads everything back from PostgreSQL
    await stopHubs();
    const again = await startHub('postgres', { dir: pgDir });
    expect(await answers(again.url)).toEqual(fromFiles);
    await stopHubs();
  }, 120_000);

  it('keeps sites apart in one database', async () => {
    const a = await startHub('postgres', { site: 'loc_a' });
    const b = await startHub('postgres', { site: 'loc_b' });
    const ra = await call('PUT', `${a.url}/meters/interval`, [{ ...rec('heatpump', T0, H, 111), location_id: 'loc_a' }]);
    const rb = await call('PUT', `${b.url}/meters/interval`, [{ ...rec('heatpump', T0, H, 222), location_id: 'loc_b' }]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    const w = { start_time: iso(T0), end_time: iso(T0 + H) };
    const ca = await call('POST', `${a.url}/costs/interval/heatpump`, w);
    const cb = await call('POST', `${b.url}/costs/interval/heatpump`, w);
    expect(JSON.stringify(ca.body)).toContain('111');
    expect(JSON.stringify(ca.body)).not.toContain('222');
    expect(JSON.stringify(cb.body)).toContain('222');
    // hub a answers for site b's meters as hub b does: `device@site`, and the site's own location id
    const noId = (x: unknown) => JSON.parse(JSON.stringify(x, (k, v) => (k === 'id' ? undefined : v)));
    const across = await call('POST', `${a.url}/costs/interval/heatpump@loc_b?aggregation=DAY`, w);
    expect(across.status).toBe(200);
    expect(noId(across.body)).toEqual(noId((await call('POST', `${b.url}/costs/interval/heatpump?aggregation=DAY`, w)).body));
    expect(JSON.stringify(across.body)).toContain('222');
    const site = await call('POST', `${a.url}/costs/interval/loc_b?aggregation=DAY`, w);
    expect(site.status).toBe(200);
    expect(noId(site.body)).toEqual(noId((await call('POST', `${b.url}/costs/interval/loc_b?aggregation=DAY`, w)).body));
    // homeflex report --sites: each site's meter, asked of hub a
    const loc = (site: string, wh: number) => ({ location_id: site, units: 'WH', value: wh, start_time: iso(T0), end_time: iso(T0 + H) });
    expect((await call('PUT', `${a.url}/meters/interval`, [loc('loc_a', 3000)])).body.records_processed).toBe(1);
    expect((await call('PUT', `${b.url}/meters/interval`, [loc('loc_b', 5000)])).body.records_processed).toBe(1);
    const rep = cliIo();
    const code = await reportCommand(['--from', '2026-05-30', '--to', '2026-05-31', '--by', 'day', '--sites', 'loc_a,loc_b', '--csv', '--url', a.hub.url], { ...rep.io, env: {} });
    expect(code, rep.err.join('')).toBe(0);
    const csv = rep.out.join('').trim().split('\n');
    expect(csv.filter((l) => /,[35]\.000,/.test(l)).map((l) => l.split(',').slice(1, 3).join(' '))).toEqual(['loc_a 3.000', 'loc_b 5.000']);
    // a site the database does not hold is not found
    expect((await call('POST', `${a.url}/costs/interval/loc_nowhere`, w)).status).toBe(404);
    await stopHubs();
  }, 60_000);

  it('loses no acknowledged record while PostgreSQL is killed during ingestion; writes are refused with store_unavailable meanwhile and /health says so', async () => {
    const { url } = await startHub('postgres', { site: 'loc_kill', waitS: 1 });
    const acked = new Map<number, number>();
    const refused: string[] = [];
    let health: Json;
    let i = 0;
    const send = async () => {
      const batch = [];
      for (let k = 0; k < 20; k++, i++) batch.push({ ...rec('ev', T0 + i * 60_000, 60_000, 100 + (i % 50)), location_id: 'loc_kill' });
      const r = await call('PUT', `${url}/meters/interval`, batch);
      if (r.status === 200 && r.body.records_processed === 20) batch.forEach((b) => acked.set(Date.parse(b.start_time), b.value));
      else {
        expect(r.status).toBe(503);
        expect(r.body.error?.code ?? r.body.code).toBe('store_unavailable');
        refused.push(JSON.stringify(r.body));
      }
    };
    for (let n = 0; n < 10; n++) await send();
    const killed = server.kill();
    // writes go on while the server dies: some may be committed just before, the rest refused
    for (let n = 0; n < 3; n++) await send();
    await killed;
    for (let n = 0; n < 3; n++) await send();
    health = (await call('GET', `${url}/health`)).body;
    expect(JSON.stringify(health)).toMatch(/meter records cannot be stored/);
    await server.start();
    for (let n = 0; n < 10; n++) await send();
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatch(/PostgreSQL at postgresql:\/\/homeflex@127\.0\.0\.1:\d+\/homeflex is not reachable/);
    health = (await call('GET', `${url}/health`)).body;
    expect(JSON.stringify(health)).not.toMatch(/meter records cannot be stored/);
    await stopHubs();
    // every acknowledged record is in the database, with its value
    const store = await PgMeterStore.open({ url: server.url, siteId: 'loc_kill', readOnly: true });
    const set = store.intervals(deviceSubject('ev'), -Infinity, Infinity);
    const stored = new Map<number, number>();
    for (let k = 0; k < set.n; k++) stored.set(set.start[k], set.energy[k]);
    await store.close();
    expect(acked.size).toBeGreaterThanOrEqual(400);
    for (const [t, v] of acked) expect(stored.get(t), iso(t)).toBe(v);
  }, 120_000);

  it('migrate-store moves a file store into PostgreSQL and back, with the same answers', async () => {
    const filesHub = await startHub('files', { site: 'loc_home' });
    await feed(filesHub.url);
    const before = await answers(filesHub.url);
    await stopHubs();
    const site = SITE('loc_home').replace('http: { port: 0 }\n', '');
    // a site id no other test uses: the database is shared by the tests of this file
    const config = join(filesHub.dir, 'site.yaml');
    writeFileSync(config, site.replace('id: loc_home', 'id: loc_mig') + `storage: { dir: ${filesHub.dir} }\n`);
    // the records were written as loc_home: the migration keeps subjects, the site id is the config's
    const cli = cliIo();
    expect(await migrateStoreCommand(['--to', 'postgres', '--url', server.url, '--config', config], cli.io), cli.err.join('')).toBe(0);
    expect(cli.out.join('')).toMatch(/rows of 5 meter\(s\) copied and compared/);
    // into a store that already holds the site's records: refused, nothing changed
    const again = cliIo();
    expect(await migrateStoreCommand(['--to', 'postgres', '--url', server.url, '--config', config], again.io)).toBe(1);
    expect(again.err.join('')).toMatch(/already holds meter records of 5 meter\(s\)/);
    const pgHub = await startHub('postgres', { site: 'loc_mig' });
    const onPg = await answers(pgHub.url.replace('loc_home', 'loc_mig'));
    await stopHubs();
    const strip = (x: unknown) => JSON.parse(JSON.stringify(x).replaceAll('loc_mig', 'loc_home'));
    expect(strip(onPg)).toEqual(before);
    // and back into an empty storage directory
    const back = mkdtempSync(join(tmpdir(), 'hf-pgstore-'));
    const config2 = join(back, 'site.yaml');
    writeFileSync(config2, site.replace('id: loc_home', 'id: loc_mig') + `storage: { dir: ${back} }\n`);
    const cli2 = cliIo();
    expect(await migrateStoreCommand(['--to', 'files', '--url', server.url, '--config', config2], cli2.io), cli2.err.join('')).toBe(0);
    const filesAgain = await startHub('files', { dir: back, site: 'loc_mig' });
    expect(strip(await answers(filesAgain.url))).toEqual(before);
    await stopHubs();
  }, 120_000);

  it('rolls up old months as the file store does, keeps them rolled up after reopening, and refuses late records of them', async () => {
    const now = () => Date.UTC(2026, 5, 15);
    const ops: RowOp[] = [];
    for (let i = 0; i < 600; i++) ops.push({ op: 'put', subject: deviceSubject('ev'), start: Date.UTC(2026, 3, 3) + i * 60_000, end: Date.UTC(2026, 3, 3) + (i + 1) * 60_000, flags: flagsOf('IMPORT', 'IMPORT'), value: 10 + (i % 13), confidence: 1, session: null, ref: null });
    const opts = { rollUpAfterMs: 30 * 86_400_000, now };
    const files = await MeterStore.open(mkdtempSync(join(tmpdir(), 'hf-pgstore-')), opts);
    const pgStore = await PgMeterStore.open({ url: server.url, siteId: 'loc_roll', ...opts });
    const dump = (st: MeterRecordStore) => {
      const set = st.intervals(deviceSubject('ev'), -Infinity, Infinity);
      return Array.from({ length: set.n }, (_, k) => [set.start[k], set.end[k], Math.round(set.energy[k] * 1e6)]);
    };
    for (const st of [files, pgStore]) {
      expect(await st.write(ops)).toEqual(ops.map(() => 'stored'));
      await st.rollUpNow();
    }
    expect(dump(pgStore)).toEqual(dump(files));
    expect(dump(pgStore)).toHaveLength(40);
    const late = await pgStore.write([{ ...ops[0], value: 99 }]);
    expect(late[0]).toMatchObject({ refused: true, error: expect.stringMatching(/2026-04 of d\.ev .* rolled up to 15-minute records/) });
    await pgStore.close();
    await files.close();
    const again = await PgMeterStore.open({ url: server.url, siteId: 'loc_roll', ...opts });
    expect(dump(again)).toHaveLength(40);
    expect((await again.write([{ ...ops[0], value: 99 }]))[0]).toMatchObject({ refused: true });
    await again.close();
  }, 60_000);

  it('a write while the server restarts waits for it (within write_wait_s) and is acknowledged once committed', async () => {
    const store = await PgMeterStore.open({ url: server.url, siteId: 'loc_wait', writeWaitMs: 60_000 });
    const op: RowOp = { op: 'put', subject: deviceSubject('heatpump'), start: T0, end: T0 + H, flags: flagsOf('IMPORT', 'IMPORT'), value: 777, confidence: 1, session: null, ref: null };
    await server.kill();
    let settled = false;
    const writing = store.write([op]).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 1500));
    // still waiting: not acknowledged, not refused
    expect(settled).toBe(false);
    expect(store.health.writeError?.error).toMatch(/is not reachable/);
    await server.start();
    expect(await writing).toEqual(['stored']);
    expect(store.health.writeError).toBeNull();
    await store.close();
    const again = await PgMeterStore.open({ url: server.url, siteId: 'loc_wait', readOnly: true });
    expect(again.intervals(deviceSubject('heatpump'), -Infinity, Infinity).energy[0]).toBe(777);
    await again.close();
  }, 90_000);
});
