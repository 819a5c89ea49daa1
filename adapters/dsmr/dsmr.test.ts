import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, writeSync, closeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startHub } from '../../test/peers/hub.js';
import { sleep, until } from '../../test/peers/mqtt.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { TelegramFramer, crc16, gridValues, parseTelegram } from './telegram.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

// The stand-ins below (socat's pseudo-terminal, a TCP server) send the fixture bytes and nothing else:
// they share no code with the adapter. See fixtures/README.md for where each telegram comes from.
const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'latin1');
/** A telegram as a meter sends it: every line ends in CR LF. */
const wire = (name: string) => fixture(name).replace(/\n/g, '\r\n');
/** The same telegram with its CRC computed here (for published examples whose CRC is a placeholder), by a CRC written for the test. */
function withOwnCrc(text: string) {
  const body = text.slice(0, text.lastIndexOf('!') + 1);
  let c = 0;
  for (const byte of Buffer.from(body, 'latin1')) {
    c ^= byte;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  }
  return `${body}${c.toString(16).toUpperCase().padStart(4, '0')}\r\n`;
}

const cleanups = cleanupsAfterEach();

describe('DSMR telegrams', () => {
  it('CRC-16 is CRC-16/ARC (check value of "123456789" is BB3D)', () => {
    expect(crc16('123456789')).toBe(0xbb3d);
  });

  // expected values read off each telegram by hand: import/export = sum of tariff registers (or the x.8.0 total), power = 1.7.0 − 2.7.0
  const cases = [
    { file: 'dsmr-4.2-kfm-1.txt', crc: true, importWh: 4726494 + 4844281, exportWh: 3284320 + 7764691, powerW: -1869, phasesW: [-688, -778, -403], version: '42' },
    { file: 'dsmr-5.0-ndokter.txt', crc: true, importWh: 4426 + 2399, exportWh: 2444, powerW: 244, phasesW: [70, 32, 142], version: '50' },
    { file: 'dsmr-luxembourgh-spec-example.txt', crc: true, importWh: 25653, exportWh: 40, powerW: 5, phasesW: [5, 0, 0], version: '42' },
    { file: 'sweden-han-ell5.txt', crc: true, importWh: 119841, exportWh: 533758, powerW: 532, phasesW: [-85, 584, 33], version: undefined },
    { file: 'dsmr-3.0-spec-example.txt', crc: false, importWh: 2 * 12345678, exportWh: 2 * 12345678, powerW: 1190, phasesW: undefined, version: undefined },
    { file: 'dsmr-2.2-ndokter.txt', crc: false, importWh: 2002, exportWh: 2002, powerW: 1010, phasesW: undefined, version: undefined },
  ];
  for (const c of cases) {
    it(`${c.file}: framed ${c.crc ? 'with its CRC checked' : 'without CRC'}, booked as import ${c.importWh} Wh, power ${c.powerW} W`, () => {
      const frames = new TelegramFramer().push(wire(c.file));
      expect(frames).toHaveLength(1);
      const f = frames[0];
      expect(f).toMatchObject({ ok: true, crc: c.crc });
      const t = parseTelegram((f as { text: string }).text, !c.crc);
      expect(t.version).toBe(c.version);
      const v = gridValues(t);
      expect(v.importWh).toBeCloseTo(c.importWh, 6);
      expect(v.exportWh).toBeCloseTo(c.exportWh, 6);
      expect(v.powerW).toBeCloseTo(c.powerW, 6);
      if (c.phasesW) v.phasesW!.forEach((w, i) => expect(w).toBeCloseTo(c.phasesW[i], 6));
      else expect(v.phasesW).toBeUndefined();
    });
  }

  it('arrives byte by byte as well as in one piece', () => {
    const framer = new TelegramFramer();
    const all = wire('dsmr-4.2-kfm-1.txt') + wire('sweden-han-ell5.txt');
    const out = [...all].flatMap((ch) => framer.push(ch));
    expect(out.map((f) => f.ok)).toEqual([true, true]);
  });

  it('the P1 5.0.2 example telegram as published fails its own CRC and is dropped', () => {
    const [f] = new TelegramFramer().push(wire('dsmr-5.0-spec-example.txt'));
    expect(f).toMatchObject({ ok: false, kind: 'crc' });
    // its values still parse (the spec's numbers): 2 × 123456.789 kWh, 1.193 kW, phases 1.111 − 4.444 kW …
    const t = parseTelegram(fixture('dsmr-5.0-spec-example.txt').replace(/!EF2F\n$/, '!'), false);
    expect(gridValues(t)).toMatchObject({ importWh: 246913578, powerW: 1193 });
    expect(gridValues(t).phasesW!.map(Math.round)).toEqual([-3333, -3333, -3333]);
  });

  it('Belgian e-MUCS: the peak objects (1.4.0, 1.6.0, 98.1.0) are read past; the placeholder CRC drops it, a real one passes', () => {
    const framer = new TelegramFramer();
    expect(framer.push(wire('emucs-p1-v2.1.1-spec-example-1.txt'))[0]).toMatchObject({ ok: false, kind: 'crc' });
    const [f] = framer.push(withOwnCrc(wire('emucs-p1-v2.1.1-spec-example-1.txt')));
    expect(f.ok).toBe(true);
    const t = parseTelegram((f as { text: string }).text, false);
    expect(t.version).toBe('50221');
    expect(gridValues(t)).toEqual({ importWh: 34 + 15758, exportWh: 11, powerW: 0, phasesW: [0, 0, 0] });
  });

  it('a torn telegram (cut off by the next header) is reported and the next one still read', () => {
    const a = wire('dsmr-4.2-kfm-1.txt');
    const out = new TelegramFramer().push(a.slice(0, 300) + wire('sweden-han-ell5.txt'));
    expect(out.map((f) => (f.ok ? 'ok' : f.kind))).toEqual(['torn', 'ok']);
  });

  it('a flipped digit fails the CRC; without a CRC a broken line refuses the telegram', () => {
    const bad = wire('dsmr-4.2-kfm-1.txt').replace('1-0:1.8.1(004726.494', '1-0:1.8.1(004726.495');
    expect(new TelegramFramer().push(bad)[0]).toMatchObject({ ok: false, kind: 'crc' });
    const noCrc = wire('dsmr-2.2-ndokter.txt').replace('1-0:1.8.1(00001.001*kWh)', '1-0:1.8.1(00001.0\x0001*kWh');
    const [f] = new TelegramFramer().push(noCrc);
    expect(f.ok).toBe(true);
    expect(() => parseTelegram((f as { text: string }).text, true)).toThrow(/line 4 .* is not a COSEM object/);
  });

  it('a port that never sends a header (wrong baud rate, an encrypted meter) says so once per 4 KB', () => {
    const noise = Buffer.alloc(5000, 0xdb);
    const out = new TelegramFramer().push(noise);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ ok: false, kind: 'no_header' });
  });
});

const siteYaml = (device: string) => `site: { id: home, timezone: Europe/Amsterdam }\ntariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }\ndevices:\n  - ${device}\n`;
const lines = (text: string, needle: string) => text.split('\n').filter((l) => l.includes(needle));

describeWithPeers(['socat'], 'dsmr over a serial port (a pseudo-terminal pair made by socat)', () => {
  it('reads telegrams from the port, books the grid meter, and drops a garbled telegram with one log line, changing nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-dsmr-'));
    const meterEnd = join(dir, 'meter');
    const hubEnd = join(dir, 'ttyP1');
    const socat: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${meterEnd}`, `pty,raw,echo=0,link=${hubEnd}`], { stdio: 'ignore' });
    cleanups.push(() => socat.kill());
    await until(() => existsSync(meterEnd) && existsSync(hubEnd), 'socat made the pty pair');
    const fd = openSync(meterEnd, 'w');
    cleanups.push(() => closeSync(fd));
    const send = (text: string) => writeSync(fd, Buffer.from(text, 'latin1'));

    const h = await startHub(siteYaml(`{ id: p1, adapter: dsmr, serial: { path: ${hubEnd} } }`));
    cleanups.push(() => h.stop());
    const p1 = h.hub.registry.get('p1')!;
    expect(p1.caps.meter!.channels).toEqual(['grid']);

    send(wire('dsmr-4.2-kfm-1.txt'));
    await until(() => p1.available && p1.caps.meter!.last('grid')?.importWh === 9570775, 'first telegram booked');
    const first = p1.caps.meter!.last('grid')!;
    expect(first).toMatchObject({ channel: 'grid', powerW: -1869, exportWh: 11049011, phasesW: [-688, -778, -403] });
    expect(lines(h.logText(), 'first telegram from KFM5KAIFA-METER')).toHaveLength(1);

    // a garbled telegram: one digit changed, CRC as before
    const readingsBefore = h.readings.length;
    send(wire('dsmr-4.2-kfm-1.txt').replace('1-0:1.7.0(00.000*kW)', '1-0:1.7.0(09.000*kW)'));
    send(wire('dsmr-4.2-kfm-1.txt').replace('1-0:2.8.2(007764.691', '1-0:2.8.2(997764.691'));
    await until(() => lines(h.logText(), 'telegram dropped').length >= 1, 'the drop logged');
    await sleep(300);
    expect(lines(h.logText(), 'telegram dropped: CRC mismatch')).toHaveLength(1);
    expect(h.readings.length).toBe(readingsBefore);
    expect(p1.caps.meter!.last('grid')).toBe(first);
    expect(p1.available).toBe(true);

    // a good one after it is read
    send(wire('dsmr-5.0-ndokter.txt'));
    await until(() => p1.caps.meter!.last('grid')?.importWh === 6825, 'next good telegram');

    // the grid channel is the site's meter: metering books it to the location, not to a device
    await h.hub.services.metering!.drain();
    const subjects = h.hub.services.metering!.store.subjects().map((s) => s.subject);
    expect(subjects.some((s) => s.includes('home'))).toBe(true);
    expect(subjects.some((s) => s.includes('p1'))).toBe(false);
  });
});

describe('dsmr over TCP (a P1 dongle / ser2net stand-in on 127.0.0.1)', () => {
  it('reads telegrams, survives a torn one, and reconnects when the dongle drops the connection', async () => {
    const sockets: Socket[] = [];
    const server: Server = createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    cleanups.push(() => sockets.forEach((s) => s.destroy()));
    const port = (server.address() as AddressInfo).port;

    const h = await startHub(siteYaml(`{ id: p1, adapter: dsmr, tcp: { host: 127.0.0.1, port: ${port} }, require_crc: true }`));
    cleanups.push(() => h.stop());
    const p1 = h.hub.registry.get('p1')!;
    await until(() => sockets.length === 1, 'the hub connected');
    // a dongle joined mid-telegram: the tail is skipped silently; then a torn one, then a good one
    const sweden = wire('sweden-han-ell5.txt');
    sockets[0].write(sweden.slice(200) + wire('dsmr-4.2-kfm-1.txt').slice(0, 250) + sweden);
    await until(() => p1.caps.meter!.last('grid')?.importWh === 119841, 'Swedish telegram booked');
    expect(p1.caps.meter!.last('grid')!.phasesW).toEqual([-85, 584, 33]);
    expect(lines(h.logText(), 'telegram dropped: a telegram was cut off')).toHaveLength(1);
    // require_crc refuses DSMR 3 style telegrams
    sockets[0].write(wire('dsmr-3.0-spec-example.txt'));
    await until(() => lines(h.logText(), 'it has no CRC and require_crc is set').length === 1, 'no-CRC telegram refused');
    expect(p1.caps.meter!.last('grid')!.importWh).toBe(119841);

    sockets[0].destroy();
    await until(() => !p1.available, 'unavailable when the dongle hangs up');
    expect(p1.error).toMatch(/tcp 127\.0\.0\.1:\d+: connection closed by the peer/);
    await until(() => sockets.length === 2, 'reconnected', 10_000);
    sockets[1].write(wire('dsmr-luxembourgh-spec-example.txt'));
    await until(() => p1.available && p1.caps.meter!.last('grid')?.importWh === 25653, 'available again with the next telegram');
  });

  it('refuses a device with both or neither of serial and tcp, naming the file and key', async () => {
    await expect(startHub(siteYaml('{ id: p1, adapter: dsmr }'))).rejects.toThrow(/give exactly one of serial/);
  });
});
