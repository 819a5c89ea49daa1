/**
 * Runs inside a network namespace the test creates (`unshare -rn`, loopback up, a multicast route):
 * a hub with an sma-em device, and a stand-in meter multicasting datagrams to 239.12.255.254:9522.
 * Prints one JSON line with what the hub read and logged.
 */
import { createSocket } from 'node:dgram';
import { startHub } from '../../../test/peers/hub.js';
import { emeterDatagram } from './datagram.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const h = await startHub('site: { id: home }\ndevices:\n  - { id: grid, adapter: sma-em, interface: lo, serial: 3004906321 }\n');
const grid = h.hub.registry.get('grid')!;
const sender = createSocket('udp4');
await new Promise<void>((r) => sender.bind(() => r()));
sender.setMulticastInterface('127.0.0.1');
sender.setMulticastLoopback(true);
const send = (b: Buffer) => new Promise<void>((r) => sender.send(b, 9522, '239.12.255.254', () => r()));
const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await sleep(20);
};
const out: Record<string, unknown> = {};
await send(emeterDatagram({ serial: 3004906321, importW: 0, exportW: 2345.6, importWh: 1_234_567.5, exportWh: 765_432.25, phases: [{ importW: 500, exportW: 0 }, { importW: 0, exportW: 1400 }, { importW: 0, exportW: 1445.6 }] }));
await waitFor(() => grid.caps.meter!.last('grid') !== undefined);
out.first = grid.caps.meter!.last('grid');
out.available = grid.available;
// another meter on the LAN (a second serial) is ignored; garbage is dropped and logged once
await send(emeterDatagram({ serial: 1900000001, importW: 9999, exportW: 0, importWh: 1, exportWh: 1 }));
await send(Buffer.from('SMA\0garbage that is not a datagram'));
await send(Buffer.from('SMA\0garbage that is not a datagram either'));
await sleep(300);
out.afterGarbage = grid.caps.meter!.last('grid');
out.readings = h.readings.length;
await send(emeterDatagram({ serial: 3004906321, importW: 812.3, exportW: 0, importWh: 1_234_600, exportWh: 765_432.25 }));
await waitFor(() => grid.caps.meter!.last('grid')?.powerW === 812.3);
out.second = grid.caps.meter!.last('grid');
out.log = h.logText().split('\n').filter((l) => l.includes('datagram') || l.includes('energy meter'));
sender.close();
await h.stop();
process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
process.exit(0);
