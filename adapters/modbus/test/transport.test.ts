import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HomeflexError, ModbusExceptionError } from '../../../src/api/index.js';
import { ManualClock } from '../../../src/core/clock.js';
import { ModbusConnection } from '../../../src/core/transports/modbus.js';
import { SunSpecInverterSim } from '../sim/inverter-sim.js';
import { captureLogger, said, tcpConnection } from './harness.js';
import { emptyUnit, ImageServer, ptyPair, putWords, startPymodbus, type PymodbusPeer } from './peers.js';
import { describeWithPeers } from '../../../test/peers/system.js';
import { cleanupsAfterEach } from '../../../test/peers/cleanups.js';

const cleanups = cleanupsAfterEach();

const caught = async (p: Promise<unknown>): Promise<HomeflexError> => {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HomeflexError);
    return err as HomeflexError;
  }
  throw new Error('expected the request to fail');
};

describe('Modbus TCP connection', () => {
  it('queues requests from several devices so they never overlap, and all get their own answers', async () => {
    const unit = emptyUnit();
    putWords(unit.holding, 0, Array.from({ length: 200 }, (_, i) => i * 3));
    const server = new ImageServer(new Map([[1, unit], [2, unit]]));
    const port = await server.listen();
    cleanups.push(() => server.close());
    const conn = tcpConnection(port);
    cleanups.push(() => conn.stop());
    let inFlight = 0;
    let maxInFlight = 0;
    // count requests between leaving the queue and their answer
    const exec = (conn as unknown as { execute: (r: unknown) => Promise<unknown> }).execute.bind(conn);
    (conn as unknown as { execute: (r: unknown) => Promise<unknown> }).execute = async (r) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await exec(r);
      } finally {
        inFlight--;
      }
    };
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => conn.readHolding(1 + (i % 2), i, 3)));
    expect(maxInFlight).toBe(1);
    results.forEach((words, i) => expect(words).toEqual([i * 3, (i + 1) * 3, (i + 2) * 3]));
  });

  it('reports exception responses with the unit, registers and the exception name', async () => {
    const sim = new SunSpecInverterSim();
    const port = await sim.listen(0);
    cleanups.push(() => sim.close());
    const conn = tcpConnection(port);
    cleanups.push(() => conn.stop());
    const err = await caught(conn.readHolding(1, 100, 4));
    expect(err).toBeInstanceOf(ModbusExceptionError);
    expect(err.message).toBe('modbus lan unit 1: reading registers 100-103 (function 3) failed with exception 2 ILLEGAL DATA ADDRESS');
    expect(err.kind).toBe('permanent');
    expect((err as ModbusExceptionError).exceptionName).toBe('ILLEGAL DATA ADDRESS');
    // writing a read-only register of model 1
    const write = await caught(conn.writeRegisters(1, 40004, [1]));
    expect(write.message).toBe('modbus lan unit 1: writing register 40004 (function 16) failed with exception 2 ILLEGAL DATA ADDRESS');
    // a value the inverter refuses
    const storCtl = sim.image.address(124, 'StorCtl_Mod');
    const value = await caught(conn.writeRegisters(1, storCtl, [9]));
    expect(value.message).toMatch(new RegExp(`register ${storCtl} \\(function 16\\) failed with exception 3 ILLEGAL DATA VALUE`));
    sim.faults.set(40002, 6);
    const busy = await caught(conn.readHolding(1, 40000, 4));
    expect(busy.message).toMatch(/exception 6 SERVER DEVICE BUSY/);
    expect(busy.kind).toBe('retryable');
  });

  it('times out on a unit that does not answer while the unit next to it keeps answering', async () => {
    const sim = new SunSpecInverterSim({ units: [1] });
    const port = await sim.listen(0);
    cleanups.push(() => sim.close());
    const conn = tcpConnection(port, { timeoutMs: 200 });
    cleanups.push(() => conn.stop());
    const dead = await caught(conn.readHolding(7, 40000, 2));
    expect(dead.code).toBe('modbus_timeout');
    expect(dead.kind).toBe('retryable');
    expect(dead.message).toBe('modbus lan unit 7 (reading registers 40000-40001): no answer within 200 ms');
    expect(await conn.readHolding(1, 40000, 2)).toEqual([0x5375, 0x6e53]);
    const again = await caught(conn.readHolding(7, 40000, 2));
    expect(again.code).toBe('modbus_timeout');
    expect(await conn.readHolding(1, 40000, 2)).toEqual([0x5375, 0x6e53]);
  });

  it('keeps the socket open through timeouts at unit ids that never answered while another unit does (discovery), and reopens it when the live unit falls silent', async () => {
    const sim = new SunSpecInverterSim({ units: [1] });
    const port = await sim.listen(0);
    cleanups.push(() => sim.close());
    const conn = tcpConnection(port, { timeoutMs: 150 });
    cleanups.push(() => conn.stop());
    expect(await conn.readHolding(1, 40000, 2)).toEqual([0x5375, 0x6e53]);
    for (const unit of [2, 126, 200, 240, 3]) expect((await caught(conn.readHolding(unit, 40000, 2))).code).toBe('modbus_timeout');
    expect(conn.connected).toBe(true);
    // the live unit stops answering: three timeouts in a row and the socket is reopened
    sim.silent = true;
    for (let i = 0; i < 3; i++) expect((await caught(conn.readHolding(1, 40000, 2))).code).toBe('modbus_timeout');
    expect(conn.connected).toBe(false);
  });

  it('reconnects after the server restarts, waiting out its backoff between attempts and logging down and back once', async () => {
    const clock = new ManualClock();
    const log = captureLogger();
    const sim = new SunSpecInverterSim();
    const port = await sim.listen(0);
    const conn = tcpConnection(port, { clock, log });
    cleanups.push(() => conn.stop());
    expect(await conn.readHolding(1, 40000, 2)).toEqual([0x5375, 0x6e53]);
    expect(conn.connected).toBe(true);
    await sim.close();
    const lost = await caught(conn.readHolding(1, 40000, 2));
    expect(['modbus_disconnected', 'modbus_timeout']).toContain(lost.code);
    const refused = await caught(conn.readHolding(1, 40000, 2));
    expect(refused.code).toBe('modbus_disconnected');
    // while the backoff runs, requests fail at once without touching the network
    const waiting = await caught(conn.readHolding(1, 40000, 2));
    expect(waiting.message).toMatch(/is not connected, next attempt in \d+ s: connection refused/);
    await sim.listen(port);
    cleanups.push(() => sim.close());
    const stillWaiting = await caught(conn.readHolding(1, 40000, 2));
    expect(stillWaiting.code).toBe('modbus_disconnected');
    await clock.advance(8000);
    expect(await conn.readHolding(1, 40000, 2)).toEqual([0x5375, 0x6e53]);
    expect(said(log, 'warn', /modbus connection lan is down/)).toHaveLength(1);
    expect(said(log, 'info', /modbus connection lan is back/)).toHaveLength(1);
  });

  it('fails the request in flight at once when the connection stops', async () => {
    const sim = new SunSpecInverterSim();
    const port = await sim.listen(0);
    cleanups.push(() => sim.close());
    const conn = tcpConnection(port, { timeoutMs: 5000 });
    expect(await conn.readHolding(1, 40000, 2)).toEqual([0x5375, 0x6e53]);
    sim.silent = true;
    const pending = conn.readHolding(1, 40000, 2);
    const queued = conn.readHolding(1, 40002, 2);
    await conn.stop();
    await expect(pending).rejects.toThrow('modbus lan: connection is stopped');
    await expect(queued).rejects.toThrow('modbus lan: connection is stopped');
  });

  it('refuses requests it cannot send, naming what is wrong', async () => {
    const conn = tcpConnection(1);
    await expect(conn.readHolding(1, 65535, 2)).rejects.toThrow('modbus lan unit 1: address 65535 (+2) is outside 0-65535');
    await expect(conn.readHolding(1, 0, 126)).rejects.toThrow('126 registers in one request (1-125 allowed)');
    await expect(conn.writeRegisters(300, 0, [1])).rejects.toThrow('unit id must be 0-255');
    await expect(conn.writeRegisters(1, 0, [70000])).rejects.toThrow('register values must be integers 0-65535');
    await conn.stop();
    await expect(conn.readHolding(1, 0, 1)).rejects.toThrow('modbus lan: connection is stopped');
  });

  it('says why it cannot connect', async () => {
    const probe = new ImageServer(new Map());
    const port = await probe.listen();
    await probe.close();
    const conn = tcpConnection(port);
    const err = await caught(conn.readHolding(1, 0, 1));
    expect(err.message).toMatch(new RegExp(`modbus lan \\(tcp 127.0.0.1:${port}\\): cannot connect: connection refused \\(is Modbus TCP enabled on the device, and the port right\\?\\)`));
    await conn.stop();
  });
});

describeWithPeers(['pymodbus'], 'Modbus against python3-pymodbus (an independent implementation)', () => {
  it('reads and writes over TCP, with exceptions for unmapped registers and silence for absent units', async () => {
    const unit = emptyUnit();
    putWords(unit.holding, 40000, [0x5375, 0x6e53, 1, 2, 3]);
    putWords(unit.input, 30000, [11, 12, 13]);
    const peer = await startPymodbus(new Map([[126, unit]]), { tcp: true });
    cleanups.push(() => peer.stop());
    const conn = tcpConnection(peer.port!, { timeoutMs: 300 });
    cleanups.push(() => conn.stop());
    expect(await conn.readHolding(126, 40000, 5)).toEqual([0x5375, 0x6e53, 1, 2, 3]);
    expect(await conn.readInput(126, 30001, 2)).toEqual([12, 13]);
    await conn.writeRegisters(126, 40002, [7, 8]);
    expect(await conn.readHolding(126, 40000, 5)).toEqual([0x5375, 0x6e53, 7, 8, 3]);
    const unmapped = await caught(conn.readHolding(126, 40004, 3));
    expect(unmapped.message).toBe('modbus lan unit 126: reading registers 40004-40006 (function 3) failed with exception 2 ILLEGAL DATA ADDRESS');
    const absent = await caught(conn.readHolding(9, 40000, 2));
    expect(absent.code).toBe('modbus_timeout');
    expect(await conn.readHolding(126, 40000, 2)).toEqual([0x5375, 0x6e53]);
  });
});

describeWithPeers(['pymodbus', 'socat'], 'Modbus RTU over a pseudo-terminal pair (socat) with pymodbus on the far end', () => {
  let peer: PymodbusPeer | undefined;

  it('talks to two units on one bus, frames CRC-checked, while a third unit stays silent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-rtu-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pty = await ptyPair(dir);
    cleanups.push(() => pty.stop());
    const a = emptyUnit();
    putWords(a.holding, 40000, [0x5375, 0x6e53, 101]);
    const b = emptyUnit();
    putWords(b.holding, 40000, [0x5375, 0x6e53, 202]);
    putWords(b.input, 13022, [873]);
    peer = await startPymodbus(new Map([[1, a], [2, b]]), { rtu: pty.b, baud: 19200 });
    cleanups.push(() => peer!.stop());
    const log = captureLogger();
    const conn = new ModbusConnection({
      config: { id: 'bus', rtu: { path: pty.a, baud: 19200, parity: 'none' }, timeout_ms: 500 },
      log,
      clock: new ManualClock(),
    });
    cleanups.push(() => conn.stop());
    // requests from devices on both units, interleaved as their polls would be
    const [r1, r2, r3] = await Promise.all([conn.readHolding(1, 40000, 3), conn.readHolding(2, 40000, 3), conn.readInput(2, 13022, 1)]);
    expect(r1).toEqual([0x5375, 0x6e53, 101]);
    expect(r2).toEqual([0x5375, 0x6e53, 202]);
    expect(r3).toEqual([873]);
    const dead = await caught(conn.readHolding(3, 40000, 2));
    expect(dead.code).toBe('modbus_timeout');
    expect(dead.message).toBe('modbus bus unit 3 (reading registers 40000-40001): no answer within 500 ms');
    // the live units still answer after the silent one, and writes reach them
    await conn.writeRegisters(2, 40002, [303]);
    expect(await conn.readHolding(2, 40000, 3)).toEqual([0x5375, 0x6e53, 303]);
    expect(await conn.readHolding(1, 40002, 1)).toEqual([101]);
    const unmapped = await caught(conn.readHolding(1, 40003, 1));
    expect(unmapped.message).toBe('modbus bus unit 1: reading register 40003 (function 3) failed with exception 2 ILLEGAL DATA ADDRESS');
    expect(conn.describe).toBe(`rtu ${pty.a} 19200 8N1`);
  });

  it('says so when the serial device does not exist', async () => {
    const conn = new ModbusConnection({
      config: { id: 'bus', rtu: { path: '/dev/ttyHOMEFLEX-NONE', baud: 9600, parity: 'even' }, timeout_ms: 300 },
      log: captureLogger(),
      clock: new ManualClock(),
    });
    const err = await caught(conn.readHolding(1, 0, 1));
    expect(err.message).toMatch(/modbus bus \(rtu \/dev\/ttyHOMEFLEX-NONE 9600 8E1\): cannot connect: serial device \/dev\/ttyHOMEFLEX-NONE does not exist/);
    await conn.stop();
  });
});
