import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emeterValues, parseDatagram } from './speedwire.js';
import { emeterDatagram } from './test/datagram.js';

describe('SMA Speedwire energy-meter datagrams', () => {
  it('reads net power, per-phase power and the Ws counters as Wh', () => {
    const d = parseDatagram(emeterDatagram({ serial: 3004906321, susyId: 372, importW: 1500.4, exportW: 0, importWh: 1000, exportWh: 250.5, phases: [{ importW: 1000, exportW: 0 }, { importW: 600, exportW: 0 }, { importW: 0, exportW: 99.6 }] }))!;
    expect(d).toMatchObject({ serial: 3004906321, susyId: 372, tickerMs: 123456 });
    expect(emeterValues(d)).toEqual({ powerW: 1500.4, phasesW: [1000, 600, -99.6], importWh: 1000, exportWh: 250.5 });
  });

  it('other Speedwire traffic is not an error; garbage is', () => {
    const inverter = emeterDatagram({ serial: 1, importW: 0, exportW: 0, importWh: 0, exportWh: 0 });
    inverter.writeUInt16BE(0x6065, 16);
    expect(parseDatagram(inverter)).toBeNull();
    expect(() => parseDatagram(Buffer.from('hello'))).toThrow(/does not start with "SMA\\0"/);
    const cut = emeterDatagram({ serial: 1, importW: 5, exportW: 0, importWh: 0, exportWh: 0 }).subarray(0, 40);
    expect(() => parseDatagram(cut)).toThrow(/says \d+ bytes of data, has 24/);
  });
});

// the multicast test needs a network namespace of its own (so it neither needs nor disturbs the machine's LAN)
const probe = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo'], { encoding: 'utf8' });
const netnsReason = probe.error ? `unshare not available (${probe.error.message})` : probe.status !== 0 ? `cannot create a network namespace with a multicast route: ${(probe.stderr || '').trim().split('\n')[0]}` : undefined;

describe('sma-em over Speedwire multicast (239.12.255.254:9522 on loopback, inside a network namespace)', () => {
  it.skipIf(netnsReason !== undefined)(`reads the meter with its serial, ignores another meter, drops garbled datagrams with one log line${netnsReason ? ` — skipped: ${netnsReason}` : ''}`, () => {
    const runner = join(import.meta.dirname, 'test', 'netns-run.ts');
    const r = spawnSync('unshare', ['-rn', 'sh', '-c', `ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "${process.execPath}" --import tsx "${runner}"`], { encoding: 'utf8', timeout: 60_000, cwd: join(import.meta.dirname, '..', '..') });
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, `runner failed: ${r.stderr}`).toBeDefined();
    const out = JSON.parse(line!.slice(7)) as { first: Record<string, unknown>; second: Record<string, unknown>; afterGarbage: unknown; available: boolean; readings: number; log: string[] };
    expect(out.available).toBe(true);
    expect(out.first).toMatchObject({ channel: 'grid', powerW: -2345.6, phasesW: [500, -1400, -1445.6], importWh: 1_234_567.5, exportWh: 765_432.25 });
    expect(out.afterGarbage).toEqual(out.first);
    expect(out.second).toMatchObject({ powerW: 812.3, importWh: 1_234_600 });
    expect(out.log.filter((l) => l.includes('datagram from 127.0.0.1 dropped'))).toHaveLength(1);
    expect(out.log.filter((l) => l.includes('energy meter 3004906321 (SUSy 349) heard'))).toHaveLength(1);
  }, 90_000);
});
