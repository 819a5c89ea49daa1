import { existsSync, mkdtempSync, readlinkSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SunSpecInverterSim } from '../../adapters/modbus/sim/inverter-sim.js';
import { freePort } from '../peers/mqtt.js';
import { sleep, until } from './helpers.js';
import { cleanupsAfterEach } from '../peers/cleanups.js';
import { spawnCli } from '../peers/hub-process.js';

/**
 * Two hubs on one site. Before: the second start printed EADDRINUSE but kept running, connected
 * to the inverter and commanded it against the first hub. Now it finds the storage locked (or a
 * port taken) before any adapter runs, stops what it started and exits non-zero; the inverter (a
 * real Modbus TCP peer) sees no connection and no write from it.
 */

const cleanups = cleanupsAfterEach();

function run(file: string, command = 'start') {
  const startedAt = Date.now();
  const cli = spawnCli([command, ...(command === 'start' ? ['--config'] : []), file]);
  const proc = cli.child;
  const exited = new Promise<{ code: number | null | string; ms: number }>((r) => proc.once('exit', (code) => r({ code, ms: Date.now() - startedAt })));
  /** The exit, or 'still running' after `ms`. */
  const exitWithin = (ms: number) => Promise.race([exited, sleep(ms).then(() => ({ code: 'still running', ms: Infinity }))]);
  return { proc, output: () => cli.out, exited, exitWithin };
}

const site = (o: { httpPort: number; ocppPort: number; mqttPort: number; modbusPort: number; storage: string }) => `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { host: 127.0.0.1, port: ${o.httpPort} }
storage: { dir: ${o.storage} }
log: { level: info, format: json }
tariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }
connections:
  ocpp: { host: 127.0.0.1, port: ${o.ocppPort} }
  mqtt: { embedded: { host: 127.0.0.1, port: ${o.mqttPort} } }
  modbus: [ { id: inv, tcp: { host: 127.0.0.1, port: ${o.modbusPort} }, timeout_ms: 1000 } ]
devices:
  - { id: battery, adapter: modbus, connection: inv, unit: 1, profile: sunspec, capacity_wh: 10000, poll_s: 1 }
`;

describe('a second hub on the same site', () => {
  it('exits non-zero within 5 s and never reaches the inverter, whether the storage is locked or a port is taken', async () => {
    const inverter = new SunSpecInverterSim({ initialSocPct: 50, maxChargeW: 5000, maxDischargeW: 5000 });
    const modbusPort = await inverter.listen(0);
    cleanups.push(() => inverter.close());
    // every TCP connection the inverter accepts, as the device sees it
    const connections: { at: number; port: number }[] = [];
    (inverter as unknown as { server: { _server: { on(e: 'connection', f: (s: Socket) => void): void } } }).server._server.on('connection', (s) => connections.push({ at: Date.now(), port: s.remotePort ?? 0 }));

    const dir = mkdtempSync(join(tmpdir(), 'homeflex-two-hubs-'));
    const ports = { httpPort: await freePort(), ocppPort: await freePort(), mqttPort: await freePort(), modbusPort };
    const file = join(dir, 'site.yaml');
    writeFileSync(file, site({ ...ports, storage: './data' }));
    const first = run(file);
    await until(() => /homeflex is running/.test(first.output()), 'the first hub to start', 60_000);
    await until(() => connections.length > 0 && inverter.writes.length > 0, 'the first hub to drive the inverter', 30_000);
    // the lock is a symbolic link to a name that is no file: existsSync would follow it and say no
    const lockOf = (d: string) => {
      try {
        return readlinkSync(join(d, 'hub.lock'));
      } catch {
        return null;
      }
    };
    const lock = lockOf(join(dir, 'data'));

    // loading the program alone (the same modules, tsx compiling them) takes this long on this machine now
    const load = (await run(file, 'check-config').exited).ms;
    const budget = 5000 + load;

    // the same site file again: the storage is locked
    const seen = { connections: connections.length, writesBefore: inverter.writes.filter((w) => w.at).length };
    const second = run(file);
    const r2 = await second.exitWithin(budget + 1000);
    expect(r2.code, second.output()).toBe(1);
    expect(r2.ms, `second start exit time (loading the program takes ${load} ms)`).toBeLessThan(budget);
    console.log(`second start exited after ${r2.ms} ms (loading the program: ${load} ms)`);
    expect(second.output()).toContain(`is held by another homeflex (pid ${first.proc.pid}`);
    // the first hub's lock is untouched, and it goes on
    expect(lock).toMatch(new RegExp(`^${first.proc.pid}:`));
    expect(lockOf(join(dir, 'data'))).toBe(lock);

    // another storage directory but the same ports: refused at the listeners, before any adapter
    const other = join(dir, 'other.yaml');
    writeFileSync(other, site({ ...ports, httpPort: 0, storage: './other-data' }));
    const third = run(other);
    const r3 = await third.exitWithin(budget + 1000);
    expect(r3.code, third.output()).toBe(1);
    expect(r3.ms, `third start exit time (loading the program takes ${load} ms)`).toBeLessThan(budget);
    expect(third.output()).toMatch(/OCPP server cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    expect(third.output()).not.toMatch(/"adapter":"modbus"/);
    // its lock was given back
    expect(existsSync(join(dir, 'other-data', 'state.json')) || existsSync(join(dir, 'other-data'))).toBe(true);
    expect(lockOf(join(dir, 'other-data'))).toBeNull();

    await sleep(1500);
    // the inverter saw only the first hub: no new connection since (the first hub keeps its one)
    expect(connections.length).toBe(seen.connections);
    expect(first.proc.exitCode).toBeNull();
    const health = (await (await fetch(`http://127.0.0.1:${ports.httpPort}/api/v1/health`)).json()) as { status: string };
    expect(health.status).toBe('ok');
    first.proc.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect(lockOf(join(dir, 'data'))).toBeNull();
    // four starts of the program: on a loaded machine each takes a while to load
  }, 400_000);
});
