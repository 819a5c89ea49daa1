import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STATE_VERSION, StateStore, StoreError } from '../../src/core/store/state.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'homeflex-store-'));

describe('state store', () => {
  it('creates, writes atomically and reopens the state', async () => {
    const dir = tmp();
    const store = await StateStore.open(dir);
    await store.update((s) => {
      s.devices.ev = { adapter: 'sim_ev', name: 'EV', first_seen: 'a', last_seen: 'b' };
    });
    await store.kv('device:ev').set('session_seq', 7);
    const again = await StateStore.open(dir);
    expect(again.data.devices.ev.name).toBe('EV');
    expect(again.kv('device:ev').get('session_seq')).toBe(7);
    expect(again.data.schema_version).toBe(STATE_VERSION);
    // no temporary files are left behind
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('migrates a version 1 file after keeping a backup', async () => {
    const dir = tmp();
    const v1 = { schema_version: 1, devices: {}, sessions: {}, plans: { history: [] }, tariffs: { imported: {}, cache: {} }, adapters: { 'device:ev': { session_seq: 3 } } };
    writeFileSync(join(dir, 'state.json'), JSON.stringify(v1));
    const store = await StateStore.open(dir);
    expect(store.data.schema_version).toBe(2);
    expect(store.kv('device:ev').get('session_seq')).toBe(3);
    expect(store.data.overrides).toEqual({});
    expect(JSON.parse(readFileSync(join(dir, 'state.json.v1.bak'), 'utf8'))).toEqual(v1);
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).schema_version).toBe(2);
  });

  it.each([
    ['half-written JSON', '{"schema_version": 2, "devices": {"ev": {"adap', /is not valid JSON/],
    ['an empty file', '', /is empty \(a half-written file\?\)/],
    ['foreign JSON', '[1,2,3]', /is not a homeflex state file/],
    ['a newer version', '{"schema_version": 99}', /newer than this homeflex understands/],
  ])('refuses %s with a clear error and leaves the file as it was', async (_name, content, message) => {
    const dir = tmp();
    const file = join(dir, 'state.json');
    writeFileSync(file, content);
    const err = await StateStore.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(file);
    expect(readFileSync(file, 'utf8')).toBe(content);
  });

  it('queues overlapping writes so the last change wins and the file stays valid', async () => {
    const dir = tmp();
    const store = await StateStore.open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.kv('x').set('n', i)));
    const disk = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    expect(disk.kv.x.n).toBe(49);
    expect(existsSync(join(dir, 'state.json'))).toBe(true);
  });
});
