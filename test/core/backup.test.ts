import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { loadConfigFile } from '../../src/core/config/load.js';
import { backupCommand, restoreCommand } from '../../src/core/store/backup-cli.js';
import { nextRun } from '../../src/core/store/backup-part.js';
import { nightlyName, pruneBackups } from '../../src/core/store/backup.js';
import type { MeterStore } from '../../src/metering/store.js';

const quiet = () => createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: 'warn' });

const hubs: Hub[] = [];
afterEach(async () => {
  for (const h of hubs.splice(0)) await h.stop();
});

const SITE = `site: { id: loc_home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.2137 }, { from: "07:00", to: "18:00", rate: 0.3411 }, { from: "18:00", to: "00:00", rate: 0.2893 } ] }
`;

async function startHub(dir: string) {
  const hub = new Hub({ configText: SITE, clock: new ManualClock('2026-06-01T10:00:00Z'), logger: quiet(), override: (c) => void (c.storage.dir = dir) });
  hubs.push(hub);
  await hub.start();
  return hub;
}

function io(configFile?: string) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      out: (t: string) => void out.push(t),
      err: (t: string) => void err.push(t),
      defaultConfig: configFile ?? '/nonexistent.yaml',
      loadConfig: (file: string) => loadConfigFile(file, { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) }),
      env: {},
    },
  };
}

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 20); // batches run over a month boundary: two partitions per meter
const DEVICES = ['heatpump', 'ev'];

/** Batch i: one day of 15-minute records for each device, with values that differ per slot. */
function batch(i: number) {
  const recs = [];
  for (const device of DEVICES) {
    for (let s = 0; s < 96; s++) {
      const start = T0 + i * DAY + s * 900_000;
      recs.push({ device_id: device, units: 'WH', value: 10 + ((i * 131 + s * 17 + device.length * 7) % 503), start_time: new Date(start).toISOString(), end_time: new Date(start + 900_000).toISOString(), record_reference_id: `${device}-${i}-${s}` });
    }
  }
  return recs;
}

const dayWindow = (i: number) => ({ start_time: new Date(T0 + i * DAY).toISOString(), end_time: new Date(T0 + (i + 1) * DAY).toISOString() });

async function costOf(api: string, device: string, i: number): Promise<{ wh: number; cost: number }> {
  const res = await fetch(`${api}/costs/interval/${device}?aggregation=DAY`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(dayWindow(i)) });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { total: { energy: { value: number }; tariff: { value: number } } };
  return { wh: body.total.energy.value, cost: body.total.tariff.value };
}

describe('homeflex backup and restore', () => {
  it('a backup taken under ingestion restores every record acknowledged before it began, with costs equal to the cent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-backup-src-'));
    const hub = await startHub(dir);
    const api = `${hub.url}/api/v1`;
    const acked: { i: number; at: number }[] = [];
    let stop = false;
    let sent = 0;
    // two writers, as several meters would send at once
    const writer = async (first: number) => {
      for (let i = first; !stop && i < 200; i += 2) {
        const res = await fetch(`${api}/meters/interval`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch(i)) });
        const body = (await res.json()) as { records_processed: number };
        expect(res.status).toBe(200);
        expect(body.records_processed).toBe(192);
        acked.push({ i, at: performance.now() });
        sent++;
      }
    };
    const writers = [writer(0), writer(1)];
    const store = hub.services.metering!.store;
    // the first days go into segments, the later ones stay in the logs
    while (sent < 10) await new Promise((r) => setTimeout(r, 5));
    await store.compactAll();
    while (sent < 24) await new Promise((r) => setTimeout(r, 5));
    const out = join(mkdtempSync(join(tmpdir(), 'hf-backup-out-')), 'site.tar.gz');
    const began = performance.now();
    const before = acked.filter((a) => a.at < began).map((a) => a.i);
    const cli = io();
    const backingUp = backupCommand(['--out', out, '--url', hub.url], cli.io);
    // a compaction while the backup runs must not empty a log the backup still reads
    const compacting = new Promise((r) => setTimeout(r, 50)).then(() => store.compactAll());
    const code = await backingUp;
    expect(cli.err.join('')).toBe('');
    expect(code).toBe(0);
    const ended = performance.now();
    stop = true;
    await Promise.all([...writers, compacting]);
    expect(before.length).toBeGreaterThanOrEqual(24);
    // the backup really ran under ingestion: writes were acknowledged while it was being made
    const during = acked.filter((a) => a.at >= began && a.at <= ended).length;
    console.log(`backup under ingestion: ${before.length} batches acknowledged before, ${during} during (${Math.round(ended - began)} ms), ${acked.length} in all`);
    expect(during).toBeGreaterThan(0);

    // the original's costs for the days acknowledged before the backup began
    const expected = new Map<string, { wh: number; cost: number }>();
    for (const i of before) for (const d of DEVICES) expected.set(`${d}/${i}`, await costOf(api, d, i));
    await hub.stop();

    // a standard tar reads the archive; the manifest comes last
    const listing = execFileSync('tar', ['tzf', out], { encoding: 'utf8' }).trim().split('\n');
    expect(listing).toContain('state.json');
    expect(listing.some((f) => /^metering\/d\.heatpump\/2026-01\.(log|seg)$/.test(f))).toBe(true);
    expect(listing.at(-1)).toBe('homeflex-backup.json');

    const fresh = join(mkdtempSync(join(tmpdir(), 'hf-backup-dst-')), 'data');
    const r = io();
    expect(await restoreCommand([out, '--dir', fresh], r.io)).toBe(0);
    expect(r.out.join('')).toMatch(/restored .* into .*: \d+ files, 2 meters/);
    const restored = await startHub(fresh);
    const rapi = `${restored.url}/api/v1`;
    for (const i of before) {
      for (const d of DEVICES) {
        const want = expected.get(`${d}/${i}`)!;
        const got = await costOf(rapi, d, i);
        // every one of the day's 96 records is back
        const wh = batch(i).filter((x) => x.device_id === d).reduce((a, x) => a + x.value, 0);
        expect(got.wh, `${d} day ${i}`).toBe(wh);
        expect(want.wh).toBe(wh);
        expect(Math.round(got.cost * 100), `${d} day ${i} cost`).toBe(Math.round(want.cost * 100));
        expect(got.cost).toBe(want.cost);
      }
    }
  }, 120_000);

  it('refuses to restore over a running hub or over data, and moves old data aside with --replace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-backup-busy-'));
    const hub = await startHub(dir);
    await fetch(`${hub.url}/api/v1/meters/interval`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch(0)) });
    // a snapshot holds compaction off: the logs it noted keep their bytes until it is released
    const store = hub.services.metering!.store as MeterStore;
    const snap = await store.snapshot();
    const logs = snap.files.filter((f) => f.name.endsWith('.log'));
    expect(logs.map((f) => f.name).sort()).toEqual(['d.ev/2026-01.log', 'd.heatpump/2026-01.log']);
    await store.compactAll();
    for (const f of logs) {
      const buf = Buffer.alloc(f.size);
      expect(readSync(f.fd, buf, 0, f.size, 0), f.name).toBe(f.size);
      expect(buf.equals(readFileSync(join(dir, 'metering', f.name)).subarray(0, f.size)), f.name).toBe(true);
    }
    snap.release();
    await store.compactAll();
    expect(statSync(join(dir, 'metering', 'd.ev', '2026-01.log')).size).toBe(0);
    const out = join(dir, '..', `${dir.split('/').pop()}.tar.gz`);
    expect(await backupCommand(['--out', out, '--url', hub.url], io().io)).toBe(0);
    const busy = io();
    expect(await restoreCommand([out, '--dir', dir], busy.io)).toBe(1);
    expect(busy.err.join('')).toMatch(/hub.lock: a homeflex \(pid \d+, started .*\) is using this storage; stop it before restoring/);
    await hub.stop();
    const full = io();
    expect(await restoreCommand([out, '--dir', dir], full.io)).toBe(1);
    expect(full.err.join('')).toMatch(/already holds a hub's data; .* --replace/);
    writeFileSync(join(dir, 'marker'), 'was here');
    const replace = io();
    expect(await restoreCommand([out, '--dir', dir, '--replace'], replace.io)).toBe(0);
    const aside = /kept in (\S+)/.exec(replace.out.join(''))![1];
    expect(readFileSync(join(aside, 'marker'), 'utf8')).toBe('was here');
    expect(existsSync(join(dir, 'marker'))).toBe(false);
    expect(existsSync(join(dir, 'metering', 'd.heatpump', '2026-01.seg'))).toBe(true);
  }, 60_000);

  it('backs up a stopped hub from its site file, migrates an older state on restore, and refuses a newer one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hf-backup-old-'));
    mkdirSync(join(root, 'data'));
    // a version-1 state: adapters' memory under "adapters", no overrides or limits
    writeFileSync(join(root, 'data', 'state.json'), JSON.stringify({ schema_version: 1, devices: {}, sessions: {}, plans: { history: [] }, tariffs: { imported: {}, cache: {} }, adapters: { 'device:ev': { soc: 41 } } }));
    const site = join(root, 'site.yaml');
    writeFileSync(site, 'site: { id: old_home }\nstorage: { dir: ./data }\n');
    const out = join(root, 'old.tar.gz');
    const b = io(site);
    expect(await backupCommand(['--out', out, '--config', site], b.io)).toBe(0);
    expect(b.out.join('')).toMatch(/no hub was running/);
    const dest = join(root, 'restored');
    const r = io();
    expect(await restoreCommand([out, '--dir', dest], r.io)).toBe(0);
    expect(r.out.join('')).toMatch(/state migrated from schema 1 to 2/);
    const state = JSON.parse(readFileSync(join(dest, 'state.json'), 'utf8'));
    expect(state).toMatchObject({ schema_version: 2, kv: { 'device:ev': { soc: 41 } }, overrides: {}, limits: {} });

    // a state written by a newer homeflex
    writeFileSync(join(root, 'data', 'state.json'), JSON.stringify({ schema_version: 99, devices: {} }));
    const newer = join(root, 'newer.tar.gz');
    expect(await backupCommand(['--out', newer, '--config', site], io(site).io)).toBe(0);
    const refused = io();
    expect(await restoreCommand([newer, '--dir', join(root, 'nowhere')], refused.io)).toBe(1);
    expect(refused.err.join('')).toMatch(/schema_version 99, newer than this homeflex understands \(2\): upgrade homeflex/);
    expect(existsSync(join(root, 'nowhere', 'state.json'))).toBe(false);

    // an archive of a newer backup format (made with tar, as a future homeflex might)
    const future = join(root, 'future');
    mkdirSync(future);
    writeFileSync(join(future, 'homeflex-backup.json'), JSON.stringify({ format: 'homeflex-backup', version: 7, files: [] }));
    execFileSync('tar', ['czf', join(root, 'future.tar.gz'), '-C', future, 'homeflex-backup.json']);
    const f = io();
    expect(await restoreCommand([join(root, 'future.tar.gz'), '--dir', join(root, 'nowhere2')], f.io)).toBe(1);
    expect(f.err.join('')).toMatch(/written by a newer homeflex \(backup format 7; this one reads up to 1\)/);

    // a damaged archive is refused, not half restored
    const bytes = readFileSync(out);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(join(root, 'damaged.tar.gz'), bytes);
    const d = io();
    expect(await restoreCommand([join(root, 'damaged.tar.gz'), '--dir', join(root, 'nowhere3')], d.io)).toBe(1);
    expect(d.err.join('')).toMatch(/damaged\.tar\.gz: /);
    expect(readdirSync(root).filter((x) => x.includes('.restore-'))).toEqual([]);
  }, 60_000);

  it('schedules the nightly backup at local time across DST changes and keeps the newest N', () => {
    // 2026-03-29: Berlin skips 02:00-03:00; 03:30 local is 01:30 UTC
    expect(new Date(nextRun(Date.parse('2026-03-28T12:00:00Z'), '03:30', 'Europe/Berlin')).toISOString()).toBe('2026-03-29T01:30:00.000Z');
    // 2026-10-25: 03:30 local is 02:30 UTC (after the change back)
    expect(new Date(nextRun(Date.parse('2026-10-24T12:00:00Z'), '03:30', 'Europe/Berlin')).toISOString()).toBe('2026-10-25T02:30:00.000Z');
    // just past today's run: tomorrow
    expect(new Date(nextRun(Date.parse('2026-06-01T01:30:00Z'), '03:30', 'Europe/Berlin')).toISOString()).toBe('2026-06-02T01:30:00.000Z');
    const dir = mkdtempSync(join(tmpdir(), 'hf-backup-keep-'));
    const names = Array.from({ length: 10 }, (_, i) => nightlyName('home', Date.parse('2026-06-01T01:30:00Z') + i * DAY));
    for (const n of names) writeFileSync(join(dir, n), 'x');
    writeFileSync(join(dir, 'my-own-backup.tar.gz'), 'mine');
    expect(pruneBackups(dir, 7)).toEqual(names.slice(0, 3));
    expect(readdirSync(dir).sort()).toEqual([...names.slice(3), 'my-own-backup.tar.gz'].sort());
  });
});
