import modbusSerial from 'modbus-serial';
import type { Clock, Logger, ModbusRequestOptions, ModbusTransport } from '../../api/index.js';
import { HomeflexError, ModbusExceptionError, permanentError, retryableError } from '../../api/index.js';
import type { ModbusConnectionConfig } from '../config/schema.js';
import type { Managed, TransportContext } from './index.js';

/** How the connection retries after it failed to open or was closed. */
export interface ModbusBackoff {
  initialMs: number;
  maxMs: number;
}

export interface ModbusConnectionOptions {
  config: ModbusConnectionConfig;
  log: Logger;
  clock: Clock;
  backoff?: ModbusBackoff;
  /** Consecutive timeouts (no answer from any unit) after which a TCP socket is reopened. */
  reopenAfterTimeouts?: number;
}

type FunctionCode = 1 | 3 | 4 | 5 | 16;

interface Request {
  unit: number;
  functionCode: FunctionCode;
  address: number;
  count: number;
  values?: number[];
  /** instead of the connection's timeout_ms */
  timeoutMs?: number;
}

// modbus-serial is CommonJS: its constructor is both module.exports and module.exports.default
const ModbusRTU = modbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusRTU>;

const DEFAULT_BACKOFF: ModbusBackoff = { initialMs: 1000, maxMs: 60_000 };

/** 3.5 character times of silence between RTU frames (11 bits a character), at least 2 ms. */
const rtuGapMs = (baud: number) => Math.max(2, Math.ceil((3.5 * 11 * 1000) / baud));

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * One Modbus connection shared by every device behind it: a TCP socket to an inverter or gateway,
 * or an RTU bus with several unit ids. Requests go through one queue so they never overlap; the
 * socket or port opens on first use and reopens with exponential backoff after failures, driven by
 * the requests themselves (no timers run while nobody asks).
 */
export class ModbusConnection implements ModbusTransport {
  readonly id: string;
  private readonly config: ModbusConnectionConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly backoff: ModbusBackoff;
  private readonly reopenAfterTimeouts: number;
  private client?: ModbusRTU;
  /** Rejects the request in flight when the port closes under it. */
  private onClosed?: (err: Error) => void;
  private tail: Promise<unknown> = Promise.resolve();
  private retryDelayMs = 0;
  private nextAttemptAt = 0;
  private lastFailure?: string;
  private down = false;
  private everOpened = false;
  private consecutiveTimeouts = 0;
  /** Units that answered on this connection: a timeout at a unit never heard from, while others answer, says nothing about the socket. */
  private readonly answered = new Set<number>();
  private stopped = false;
  private lastFrameEnd = 0;

  constructor(options: ModbusConnectionOptions) {
    this.config = options.config;
    this.id = options.config.id;
    this.log = options.log.child({ connection: options.config.id });
    this.clock = options.clock;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.reopenAfterTimeouts = options.reopenAfterTimeouts ?? 3;
    if (!options.config.tcp === !options.config.rtu) throw permanentError('bad_config', `modbus connection ${this.id}: give exactly one of "tcp" or "rtu"`);
  }

  get connected(): boolean {
    return this.client?.isOpen === true;
  }

  /** `tcp 192.168.1.20:502` or `rtu /dev/ttyUSB0 9600 8N1`, for messages. */
  get describe(): string {
    const { tcp, rtu } = this.config;
    if (tcp) return `tcp ${tcp.host}:${tcp.port}`;
    const parity = rtu!.parity === 'even' ? 'E' : rtu!.parity === 'odd' ? 'O' : 'N';
    return `rtu ${rtu!.path} ${rtu!.baud} 8${parity}1`;
  }

  readHolding(unit: number, address: number, count: number, opts?: ModbusRequestOptions): Promise<number[]> {
    return this.enqueue({ unit, functionCode: 3, address, count, timeoutMs: opts?.timeoutMs }) as Promise<number[]>;
  }

  readInput(unit: number, address: number, count: number, opts?: ModbusRequestOptions): Promise<number[]> {
    return this.enqueue({ unit, functionCode: 4, address, count, timeoutMs: opts?.timeoutMs }) as Promise<number[]>;
  }

  async writeRegisters(unit: number, address: number, values: number[]): Promise<void> {
    await this.enqueue({ unit, functionCode: 16, address, count: values.length, values });
  }

  readCoils(unit: number, address: number, count: number): Promise<boolean[]> {
    return this.enqueue({ unit, functionCode: 1, address, count }) as Promise<boolean[]>;
  }

  async writeCoil(unit: number, address: number, on: boolean): Promise<void> {
    await this.enqueue({ unit, functionCode: 5, address, count: 1, values: [on ? 1 : 0] });
  }

  /** Closes the port and fails every queued request; later requests fail at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    // the request in flight would otherwise wait out its timeout on a port that is gone
    this.onClosed?.(permanentError('modbus_stopped', `modbus ${this.id}: connection is stopped`));
    await this.close();
  }

  private enqueue(req: Request): Promise<unknown> {
    const check = this.validate(req);
    if (check) return Promise.reject(check);
    const run = this.tail.then(() => this.execute(req));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private validate(req: Request): HomeflexError | undefined {
    const where = `modbus ${this.id} unit ${req.unit}`;
    if (!Number.isInteger(req.unit) || req.unit < 0 || req.unit > 255) return permanentError('bad_request', `${where}: unit id must be 0-255`);
    if (!Number.isInteger(req.address) || req.address < 0 || req.address + req.count > 65536) return permanentError('bad_request', `${where}: address ${req.address} (+${req.count}) is outside 0-65535`);
    const max = req.functionCode === 16 ? 123 : req.functionCode === 1 ? 2000 : 125;
    if (!Number.isInteger(req.count) || req.count < 1 || req.count > max) return permanentError('bad_request', `${where}: ${req.count} ${req.functionCode === 1 || req.functionCode === 5 ? 'coils' : 'registers'} in one request (1-${max} allowed)`);
    if (req.values?.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffff)) return permanentError('bad_request', `${where}: register values must be integers 0-65535`);
    return undefined;
  }

  private async execute(req: Request): Promise<unknown> {
    if (this.stopped) throw permanentError('modbus_stopped', `modbus ${this.id}: connection is stopped`);
    const client = await this.open();
    if (this.config.rtu) await this.quietGap();
    client.setID(req.unit);
    client.setTimeout(this.timeoutOf(req));
    try {
      const result = await new Promise<unknown>((resolve, reject) => {
        this.onClosed = reject;
        const op =
          req.functionCode === 3
            ? client.readHoldingRegisters(req.address, req.count).then((r) => r.data)
            : req.functionCode === 4
              ? client.readInputRegisters(req.address, req.count).then((r) => r.data)
              : req.functionCode === 1
                ? client.readCoils(req.address, req.count).then((r) => r.data.slice(0, req.count))
                : req.functionCode === 5
                  ? client.writeCoil(req.address, req.values![0] === 1).then(() => undefined)
                  : client.writeRegisters(req.address, req.values!).then(() => undefined);
        op.then(resolve, reject);
      });
      this.consecutiveTimeouts = 0;
      this.answered.add(req.unit);
      if (req.functionCode !== 16 && req.functionCode !== 5 && (!Array.isArray(result) || result.length !== req.count)) {
        throw retryableError('modbus_bad_response', `modbus ${this.id} unit ${req.unit}: asked for ${req.count} registers at ${req.address}, got ${Array.isArray(result) ? result.length : 'none'}`);
      }
      return result;
    } catch (err) {
      throw await this.translate(req, err);
    } finally {
      this.onClosed = undefined;
      this.lastFrameEnd = Date.now();
    }
  }

  /** Turns modbus-serial's errors into typed ones that name the connection, unit and registers. */
  private async translate(req: Request, err: unknown): Promise<Error> {
    if (err instanceof HomeflexError) return err;
    const e = err as { modbusCode?: number; errno?: string; message?: string };
    if (typeof e.modbusCode === 'number') {
      this.consecutiveTimeouts = 0;
      this.answered.add(req.unit);
      return new ModbusExceptionError({ connection: this.id, ...req }, e.modbusCode);
    }
    const span = req.count > 1 ? `registers ${req.address}-${req.address + req.count - 1}` : `register ${req.address}`;
    const where = `modbus ${this.id} unit ${req.unit} (${req.functionCode === 16 || req.functionCode === 5 ? 'writing' : 'reading'} ${req.functionCode === 1 || req.functionCode === 5 ? span.replace('register', 'coil') : span})`;
    if (e.errno === 'ETIMEDOUT' || e.message === 'Timed out') {
      // a TCP peer that went away without closing answers nobody; a dead unit next to live ones does not
      // count, nor one that never answered while others do (discovery looking at absent unit ids)
      if (this.answered.has(req.unit) || this.answered.size === 0) this.consecutiveTimeouts += 1;
      if (this.config.tcp && this.consecutiveTimeouts >= this.reopenAfterTimeouts) {
        this.consecutiveTimeouts = 0;
        this.log.debug({ timeouts: this.reopenAfterTimeouts }, 'no answers on this socket: reopening it');
        await this.close();
      }
      return retryableError('modbus_timeout', `${where}: no answer within ${this.timeoutOf(req)} ms`, err);
    }
    if (!this.connected) {
      this.markDown(errText(err));
      await this.close();
      return retryableError('modbus_disconnected', `${where}: connection lost: ${errText(err)}`, err);
    }
    // CRC or framing trouble: the bus is noisy or two masters talk; the next request may pass
    return retryableError('modbus_bad_response', `${where}: ${errText(err)}`, err);
  }

  private timeoutOf(req: Request): number {
    return req.timeoutMs !== undefined ? Math.max(50, Math.min(req.timeoutMs, this.config.timeout_ms)) : this.config.timeout_ms;
  }

  /** Waits until the RTU bus has been quiet for 3.5 character times since the last frame. */
  private async quietGap() {
    const gap = rtuGapMs(this.config.rtu!.baud);
    const wait = this.lastFrameEnd + gap - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  private async open(): Promise<ModbusRTU> {
    if (this.client?.isOpen) return this.client;
    const now = this.clock.now();
    if (now < this.nextAttemptAt) {
      const inS = Math.ceil((this.nextAttemptAt - now) / 1000);
      throw retryableError('modbus_disconnected', `modbus ${this.id} (${this.describe}) is not connected, next attempt in ${inS} s: ${this.lastFailure ?? 'not opened yet'}`);
    }
    await this.close();
    const client = new ModbusRTU();
    try {
      await this.withConnectTimeout(client, this.connect(client));
    } catch (err) {
      await this.closeClient(client);
      const reason = this.explainOpenFailure(err);
      this.retryDelayMs = Math.min(this.backoff.maxMs, this.retryDelayMs ? this.retryDelayMs * 2 : this.backoff.initialMs);
      this.nextAttemptAt = this.clock.now() + this.retryDelayMs;
      this.markDown(reason);
      if (err instanceof HomeflexError && err.kind === 'permanent') throw err;
      throw retryableError('modbus_disconnected', `modbus ${this.id} (${this.describe}): cannot connect: ${reason}`, err);
    }
    client.on('close', () => this.handleClose(client));
    client.on('error', (err: unknown) => this.log.debug({ err }, 'modbus port error'));
    this.client = client;
    this.retryDelayMs = 0;
    this.nextAttemptAt = 0;
    this.consecutiveTimeouts = 0;
    if (this.down) this.log.info({ target: this.describe }, `modbus connection ${this.id} is back`);
    else if (!this.everOpened) this.log.debug({ target: this.describe }, `modbus connection ${this.id} opened`);
    this.down = false;
    this.everOpened = true;
    this.lastFailure = undefined;
    return client;
  }

  private connect(client: ModbusRTU): Promise<void> {
    const { tcp, rtu } = this.config;
    if (tcp) return client.connectTCP(tcp.host, { port: tcp.port });
    try {
      return client.connectRTUBuffered(rtu!.path, { baudRate: rtu!.baud, parity: rtu!.parity, dataBits: 8, stopBits: 1 });
    } catch (err) {
      // modbus-serial loads `serialport` lazily; a build without its native binding fails here
      throw permanentError('serial_unavailable', `modbus ${this.id}: serial ports are not available in this build (${errText(err)}); reinstall with the serialport native binding or use a Modbus TCP gateway`, err);
    }
  }

  private withConnectTimeout(client: ModbusRTU, connecting: Promise<void>): Promise<void> {
    const ms = Math.max(this.config.timeout_ms, 1000);
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        void this.closeClient(client);
        reject(new Error(`connecting took longer than ${ms} ms`));
      }, ms);
      connecting.then(
        () => (clearTimeout(t), resolve()),
        (err: unknown) => (clearTimeout(t), reject(err instanceof Error ? err : new Error(errText(err)))),
      );
    });
  }

  private explainOpenFailure(err: unknown): string {
    const e = err as { code?: string; message?: string };
    if (e?.code === 'ECONNREFUSED') return 'connection refused (is Modbus TCP enabled on the device, and the port right?)';
    if (e?.code === 'EHOSTUNREACH' || e?.code === 'ENETUNREACH') return `host unreachable (${e.code})`;
    if (e?.code === 'ENOENT' || /No such file/.test(e?.message ?? '')) return `serial device ${this.config.rtu?.path} does not exist`;
    if (e?.code === 'EACCES' || /Permission denied/.test(e?.message ?? '')) return `no permission to open ${this.config.rtu?.path} (add the hub's user to the dialout group)`;
    return errText(err) || 'unknown error';
  }

  private markDown(reason: string) {
    this.lastFailure = reason;
    if (this.down) return;
    this.down = true;
    this.log.warn({ target: this.describe, reason }, `modbus connection ${this.id} is down; retrying with backoff`);
  }

  private handleClose(client: ModbusRTU) {
    if (this.client !== client) return;
    this.client = undefined;
    this.onClosed?.(new Error('the connection closed'));
    if (!this.stopped) this.markDown('the peer closed the connection');
  }

  private async close() {
    const client = this.client;
    this.client = undefined;
    if (client) await this.closeClient(client);
  }

  private closeClient(client: ModbusRTU): Promise<void> {
    (client as unknown as NodeJS.EventEmitter).removeAllListeners('close');
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      const done = () => (clearTimeout(t), resolve());
      try {
        // TCP: destroy, not close, so a half-open socket does not linger; serial ports only close
        if (this.config.tcp) client.destroy(done);
        else if (client.isOpen) client.close(done);
        else done();
      } catch {
        done();
      }
    });
  }
}

/** The factory for `transportFactories.modbus`: one connection per `connections.modbus[].id`. */
export function createModbusTransport(ctx: TransportContext, id: string): Managed<ModbusTransport> {
  const config = ctx.config.connections.modbus.find((m) => m.id === id);
  if (!config) throw permanentError('no_connection', `no connections.modbus entry with id "${id}" in ${ctx.config.source}`);
  const connection = new ModbusConnection({ config, log: ctx.log, clock: ctx.clock });
  return { transport: connection, stop: () => connection.stop() };
}
