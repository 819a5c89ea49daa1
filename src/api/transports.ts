import { HomeflexError } from './errors.js';

/**
 * Shared transports the host creates once and hands to adapters through `ctx.transports`.
 * Each getter throws a permanent error naming the missing `connections.*` key when the site has none.
 */
export interface MqttMessageHandler {
  (topic: string, payload: Buffer, retained: boolean): void;
}

export interface MqttTransport {
  publish(topic: string, payload: string | Buffer, opts?: { retain?: boolean; qos?: 0 | 1 | 2 }): Promise<void>;
  /** Subscribes (and re-subscribes after reconnects). Returns an unsubscribe function. */
  subscribe(filter: string, handler: MqttMessageHandler): () => void;
  readonly connected: boolean;
}

/** The OCPP central system: adapters claim charger identities and receive their connections. */
export interface OcppTransport {
  /**
   * Admits `identity` (with its password, if any) and hands each of its connections to
   * `onConnection`; a newer connection of the same identity replaces the older one.
   * Throws a permanent error when the identity is already claimed. Returns the release function.
   */
  claim(identity: string, options: { password?: string }, onConnection: (connection: OcppConnection) => void): () => void;
  /** Resolves once the server listens (rejects when it cannot bind). */
  ready(): Promise<void>;
  /** The bound port (0 until listening). */
  readonly port: number;
  /** A transaction id unique across the hub's chargers and restarts (OCPP 1.6: the central system assigns them). */
  nextTransactionId(): number;
}

export type OcppProtocol = 'ocpp1.6' | 'ocpp2.0.1';

/** OCPP-J error codes a handler may answer with (1.6 spelling; the transport adapts them per version). */
export type OcppErrorCode =
  | 'NotImplemented'
  | 'NotSupported'
  | 'InternalError'
  | 'ProtocolError'
  | 'SecurityError'
  | 'FormationViolation'
  | 'PropertyConstraintViolation'
  | 'OccurrenceConstraintViolation'
  | 'TypeConstraintViolation'
  | 'GenericError';

/** Thrown by an inbound handler to answer with an OCPP CALLERROR instead of a result. */
export class OcppCallError extends Error {
  constructor(readonly code: OcppErrorCode, message: string) {
    super(message);
    this.name = 'OcppCallError';
  }
}

/** One charger's WebSocket session with the hub. */
export interface OcppConnection {
  readonly identity: string;
  readonly protocol: OcppProtocol;
  /**
   * Answers inbound `action` calls with the handler's result. The transport checks the params
   * against the OCPP schema and logs what was wrong, but still passes them on (real chargers send
   * slightly malformed frames); the reply is checked strictly.
   */
  handle(action: string, handler: (params: unknown) => unknown): void;
  /** Sends a call after checking it strictly against the OCPP schema; rejects on CALLERROR or timeout. */
  call(action: string, params: unknown, options?: { timeoutMs?: number }): Promise<unknown>;
  /** Called once when the connection ends. */
  onClose(fn: (info: { code?: number; reason?: string }) => void): void;
  readonly open: boolean;
  close(): Promise<void>;
}

/** A device found on a connection or broker that the site file does not configure (discovery). */
export interface FoundDevice {
  /** Where it was found: ocpp, tasmota, shelly, zigbee2mqtt, sunspec. */
  source: string;
  /** The adapter that would drive it. */
  adapter: string;
  /** Unique within the source (charger identity, MQTT topic, IEEE address, "<connection>:<unit>"). */
  key: string;
  name: string;
  /** What is known of it (address, model, firmware …). */
  details: Record<string, unknown>;
  /** Device keys for the site file besides id and adapter (topics, identity, connection and unit). */
  config?: Record<string, unknown>;
}

/**
 * One Modbus connection (TCP or an RTU bus), requests queued so they never overlap. Addresses are
 * 0-based protocol addresses. Failures are `HomeflexError`s: `modbus_exception` (a
 * `ModbusExceptionError`, permanent: the device answered and refused), `modbus_timeout` and
 * `modbus_disconnected` (retryable).
 */
/** Per-request options of a Modbus read. */
export interface ModbusRequestOptions {
  timeoutMs?: number;
}

export interface ModbusTransport {
  readonly id: string;
  /** Whether the TCP socket or serial port is open right now. */
  readonly connected: boolean;
  /** `opts.timeoutMs`: wait this long for the answer instead of the connection's `timeout_ms` (a probe at a unit that may be absent). */
  readHolding(unit: number, address: number, count: number, opts?: ModbusRequestOptions): Promise<number[]>;
  readInput(unit: number, address: number, count: number, opts?: ModbusRequestOptions): Promise<number[]>;
  writeRegisters(unit: number, address: number, values: number[]): Promise<void>;
  /** Coils (function codes 1 and 5): relay outputs such as a heat pump's SG-Ready inputs. */
  readCoils?(unit: number, address: number, count: number): Promise<boolean[]>;
  writeCoil?(unit: number, address: number, on: boolean): Promise<void>;
}

/** Names of the Modbus exception codes (Modbus Application Protocol v1.1b3, section 7). */
export const MODBUS_EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: 'ILLEGAL FUNCTION',
  2: 'ILLEGAL DATA ADDRESS',
  3: 'ILLEGAL DATA VALUE',
  4: 'SERVER DEVICE FAILURE',
  5: 'ACKNOWLEDGE',
  6: 'SERVER DEVICE BUSY',
  8: 'MEMORY PARITY ERROR',
  10: 'GATEWAY PATH UNAVAILABLE',
  11: 'GATEWAY TARGET DEVICE FAILED TO RESPOND',
};

/** A Modbus exception response: the device answered and refused the request. */
export class ModbusExceptionError extends HomeflexError {
  readonly unit: number;
  readonly functionCode: number;
  readonly address: number;
  readonly count: number;
  readonly exceptionCode: number;
  readonly exceptionName: string;
  constructor(req: { connection: string; unit: number; functionCode: number; address: number; count: number }, exceptionCode: number) {
    const exceptionName = MODBUS_EXCEPTION_NAMES[exceptionCode] ?? `UNKNOWN EXCEPTION ${exceptionCode}`;
    const what = req.functionCode === 16 || req.functionCode === 5 ? 'writing' : 'reading';
    const span = req.count > 1 ? `registers ${req.address}-${req.address + req.count - 1}` : `register ${req.address}`;
    // busy and gateway answers say nothing about the register: retrying may help
    const kind = exceptionCode === 5 || exceptionCode === 6 || exceptionCode === 10 || exceptionCode === 11 ? 'retryable' : 'permanent';
    super(kind, 'modbus_exception', `modbus ${req.connection} unit ${req.unit}: ${what} ${span} (function ${req.functionCode}) failed with exception ${exceptionCode} ${exceptionName}`);
    this.name = 'ModbusExceptionError';
    this.unit = req.unit;
    this.functionCode = req.functionCode;
    this.address = req.address;
    this.count = req.count;
    this.exceptionCode = exceptionCode;
    this.exceptionName = exceptionName;
  }
}

export interface Transports {
  mqtt(): MqttTransport;
  ocpp(): OcppTransport;
  modbus(connectionId: string): ModbusTransport;
}
