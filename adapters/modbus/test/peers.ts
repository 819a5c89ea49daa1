import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import modbusSerial from 'modbus-serial';

/** Register words by address, per function, per unit. */
export interface UnitImage {
  holding: Map<number, number>;
  input: Map<number, number>;
}
export type DeviceImage = Map<number, UnitImage>;

export const emptyUnit = (): UnitImage => ({ holding: new Map(), input: new Map() });

export function putWords(map: Map<number, number>, address: number, words: number[]) {
  words.forEach((w, i) => map.set(address + i, w));
}

/**
 * A Modbus TCP server (modbus-serial's ServerTCP) serving fixed register images: reads of unmapped
 * registers answer exception 2, units without an image never answer, writes land in the image.
 */
export class ImageServer {
  readonly writes: { unit: number; address: number; words: number[] }[] = [];
  private server?: { close(cb: () => void): void; socks: Map<Socket, unknown>; _server: { address(): { port: number } }; on(e: string, f: (...a: unknown[]) => void): void };
  constructor(readonly units: DeviceImage) {}

  private read(unit: number, fn: 'holding' | 'input', address: number, count: number): number[] | { exception: number } | undefined {
    const img = this.units.get(unit);
    if (!img) return undefined;
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const w = img[fn].get(address + i);
      if (w === undefined) return { exception: 2 };
      out.push(w);
    }
    return out;
  }

  async listen(): Promise<number> {
    type Cb = (err: unknown, v?: unknown) => void;
    const answer = (r: ReturnType<ImageServer['read']>, cb: Cb, single = false) => {
      if (r === undefined) return;
      // an empty array with the error: modbus-serial's FC4 path indexes the values even on errors
      if (!Array.isArray(r)) return cb({ modbusErrorCode: r.exception }, single ? undefined : []);
      cb(null, single ? r[0] : r);
    };
    const vector = {
      getHoldingRegister: (a: number, u: number, cb: Cb) => answer(this.read(u, 'holding', a, 1), cb, true),
      getMultipleHoldingRegisters: (a: number, n: number, u: number, cb: Cb) => answer(this.read(u, 'holding', a, n), cb),
      getInputRegister: (a: number, u: number, cb: Cb) => answer(this.read(u, 'input', a, 1), cb, true),
      getMultipleInputRegisters: (a: number, n: number, u: number, cb: Cb) => answer(this.read(u, 'input', a, n), cb),
      setRegisterArray: (a: number, values: number[], u: number, cb: (err: unknown) => void) => {
        const img = this.units.get(u);
        if (!img) return;
        putWords(img.holding, a, values);
        this.writes.push({ unit: u, address: a, words: [...values] });
        cb(null);
      },
    };
    const server = new modbusSerial.ServerTCP(vector as unknown as ConstructorParameters<typeof modbusSerial.ServerTCP>[0], { host: '127.0.0.1', port: '0' as unknown as number, unitID: 255 });
    this.server = server as unknown as NonNullable<ImageServer['server']>;
    await new Promise<void>((resolve, reject) => {
      server.on('initialized', () => resolve());
      server.on('serverError', (e) => reject(e));
    });
    server.on('socketError', () => undefined);
    return this.server._server.address().port;
  }

  async close() {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    for (const sock of s.socks.keys()) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** The words of the SMA SB3.6 dump from 40000 on; words the author did not read ("----") become 0. */
export function smaDump(): number[] {
  const text = readFileSync(fileURLToPath(new URL('./fixtures/sma-sb3.6-sunspec-dump.txt', import.meta.url)), 'utf8');
  const body = text.slice(text.indexOf('rawValues'));
  const words: number[] = [];
  for (const line of body.split('\n').slice(1)) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    for (const w of t.split(/\s+/)) words.push(w === '----' ? 0 : parseInt(w, 16));
  }
  return words;
}

/** Registers of a GoodWe AA55 response frame: `AA 55 <unit> 03 <bytes> <data…> <crc>`. */
export function goodweFrame(file: string): number[] {
  const hex = readFileSync(fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url)), 'utf8').trim();
  const bytes = Buffer.from(hex, 'hex');
  if (bytes[0] !== 0xaa || bytes[1] !== 0x55 || bytes[3] !== 0x03) throw new Error(`${file} is not an AA55 read response`);
  const n = bytes[4];
  return Array.from({ length: n / 2 }, (_, i) => bytes.readUInt16BE(5 + i * 2));
}

/** Debian's python3-pymodbus (system python, not a venv), installed by .ci/run. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface PymodbusPeer {
  port?: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `pymodbus_server.py` serving the images: on TCP 127.0.0.1 (a free port) or as an RTU
 * server on a serial device. Resolves when the server says it is ready.
 */
export async function startPymodbus(image: DeviceImage, transport: { tcp: true; port?: number } | { rtu: string; baud: number }): Promise<PymodbusPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'hf-pymodbus-'));
  const file = join(dir, 'image.json');
  const json: Record<string, { holding: Record<string, number>; input: Record<string, number> }> = {};
  for (const [unit, img] of image) json[unit] = { holding: Object.fromEntries(img.holding), input: Object.fromEntries(img.input) };
  writeFileSync(file, JSON.stringify(json));
  const script = fileURLToPath(new URL('./pymodbus_server.py', import.meta.url));
  const args = [script, '--image', file, ...('tcp' in transport ? ['--tcp', '--port', String(transport.port ?? 0)] : ['--rtu', transport.rtu, '--baud', String(transport.baud)])];
  const child = spawn(SYSTEM_PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number | undefined>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`pymodbus did not start within 10 s: ${stderr}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready(?: (\d+))?/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1] ? Number(m[1]) : undefined);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`pymodbus exited with ${code}: ${stderr}`));
    });
  });
  return {
    port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A pseudo-terminal pair from socat: what one end writes, the other reads, like two ends of an RS485 bus. */
export async function ptyPair(dir: string): Promise<{ a: string; b: string; stop(): Promise<void> }> {
  const a = join(dir, 'ttyA');
  const b = join(dir, 'ttyB');
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`socat did not start: ${err}`)), 5000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/starting data transfer loop/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  return {
    a,
    b,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
