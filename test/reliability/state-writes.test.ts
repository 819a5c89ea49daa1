import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TasmotaSimulator } from '../../adapters/tasmota/simulator.js';
import { StateStore } from '../../src/core/store/state.js';
import { startHub } from '../peers/hub.js';
import { freePort, until } from '../peers/mqtt.js';
import { cleanupsAfterEach } from '../peers/cleanups.js';

/**
 * Found by the soak bench (bench/soak.ts, 420 devices): every adapter's once-a-minute save rewrote
 * the whole state file on its own (about 150 writes of 2.3 MB a minute, 340 MB/min, most of the
 * hub's CPU), and at stop 100 sockets each waited for their own write, past the 4.5 s stop budget.
 */

const cleanups = cleanupsAfterEach();

const onDisk = (dir: string) => JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { kv: Record<string, Record<string, unknown>> };
const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('state file writes under many devices', () => {
  it('lets a burst of adapter-memory changes share one write, and resolves each change once the file holds it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-state-writes-'));
    const store = await StateStore.open(dir);
    const before = store.writes;
    // 60 devices saving their memory one after the other, a few milliseconds apart, as their readings arrive
    const saved: Promise<void>[] = [];
    for (let i = 0; i < 60; i++) {
      saved.push(store.kv(`device:plug${i}`).set('energy_register', { lastRawWh: i }));
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(saved);
    // the first change is written at once, the rest together in the next write (one more if the machine is slow)
    expect(store.writes - before).toBeLessThanOrEqual(3);
    const disk = onDisk(dir);
    expect(Array.from({ length: 60 }, (_, i) => disk.kv[`device:plug${i}`]?.energy_register)).toEqual(Array.from({ length: 60 }, (_, i) => ({ lastRawWh: i })));
  });

  it('writes a big state file less often: about 100 kB a second at most, however many devices save', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-state-writes-'));
    const store = await StateStore.open(dir);
    // a plan of a big site: 500 kB in the file, so adapter memory goes out at most every 5 s
    await store.update((s) => void (s.plans.latest = { devices: 'x'.repeat(500_000) }));
    await store.kv('device:first').set('n', 0);
    const before = store.writes;
    const saved: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      saved.push(store.kv(`device:cp${i}`).set('session', { n: i }));
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all(saved);
    // two seconds of saves: one write, not one a second
    expect(store.writes - before).toBe(1);
    expect(onDisk(dir).kv['device:cp39']).toEqual({ session: { n: 39 } });
  });

  it('while the hub stops, adapter memory is taken at once and written by the final flush', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-state-writes-'));
    const store = await StateStore.open(dir);
    await store.kv('device:a').set('n', 1);
    store.beginStop();
    const before = store.writes;
    let taken = 0;
    for (let i = 0; i < 50; i++) void store.kv(`device:s${i}`).set('n', i).then(() => taken++);
    await settle();
    expect(taken).toBe(50);
    expect(store.writes).toBe(before);
    await store.flush();
    expect(store.writes - before).toBeLessThanOrEqual(2);
    expect(onDisk(dir).kv['device:s49']).toEqual({ n: 49 });
  });

  it('stops a hub with 20 sockets in one state write, with every socket register in the file', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const topics = Array.from({ length: 20 }, (_, i) => `plug_${i}`);
    const devices = topics.map((t) => `  - { id: ${t}, adapter: tasmota, topic: ${t}, rated_power_w: 1000 }`).join('\n');
    const h = await startHub(`site: { id: home }\nconnections:\n  mqtt: { embedded: { host: 127.0.0.1, port: ${port} } }\ndevices:\n${devices}\n`);
    cleanups.push(() => h.stop());
    const sims = topics.map((topic, i) => new TasmotaSimulator({ url, topic, ratedPowerW: 1000, totalKwh: 10 + i, autoTele: false }));
    await Promise.all(sims.map((s) => s.start()));
    cleanups.push(() => Promise.all(sims.map((s) => s.stop())));
    // the hub asks STATUS 10 when a socket comes online: each register gets its device's counter
    await until(() => topics.every((t) => h.readings.some((r) => r.deviceId === t)), 'a reading from every socket');
    // later counts, held back from the file (registers save at most once a minute) until the hub stops
    for (const s of sims) s.totalKwh += 0.5;
    for (const s of sims) s.publishSensor();
    await until(() => topics.every((t, i) => h.readings.some((r) => r.deviceId === t && r.reading.importWh === (10.5 + i) * 1000)), 'the later counts');

    const state = h.hub.services.state;
    const before = state.writes;
    await h.stop();
    // one socket after the other each waited for a write of its own before
    expect(state.writes - before).toBeLessThanOrEqual(2);
    const disk = onDisk(h.hub.config.storage.dir);
    expect(topics.map((t) => disk.kv[`device:${t}`]?.energy_register)).toEqual(topics.map((_, i) => ({ offsetWh: 0, lastRawWh: (10.5 + i) * 1000 })));
  });
});
