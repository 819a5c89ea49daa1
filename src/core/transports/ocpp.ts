import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { dirname, resolve } from 'node:path';
import { createHash, timingSafeEqual } from 'node:crypto';
import { RPCServer, createRPCError } from 'ocpp-rpc';
import {
  OcppCallError,
  permanentError,
  retryableError,
  type Logger,
  type OcppConnection,
  type OcppProtocol,
  type OcppTransport,
} from '../../api/index.js';
import type { Managed, TransportContext } from './index.js';
import { ocppSchemas, type OcppSchemas } from './ocpp-schema.js';
import { isLoopbackHost } from './mqtt-access.js';
import { RateLimitedLog } from './rate-log.js';

const PROTOCOLS: OcppProtocol[] = ['ocpp1.6', 'ocpp2.0.1'];
/**
 * Largest WebSocket message a charger may send (ws closes the connection with 1009 beyond it). The
 * biggest real frames are OCPP 2.0.1 NotifyReport pages (a few hundred bytes per variable; chargers
 * page them by ItemsPerMessageGetReport) and 1.6 GetConfiguration answers (values up to 500 characters).
 */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024;
/** Transaction ids count seconds from here, so they stay unique across restarts without being stored. */
const TX_EPOCH_S = Date.UTC(2024, 0, 1) / 1000;

/** The part of ocpp-rpc's RPCServerClient the hub uses (its own typings are loose). */
interface RpcServerClient {
  readonly identity?: string;
  readonly protocol?: string;
  readonly state: number;
  handle(method: string, handler: (call: { params: unknown }) => Promise<Record<string, unknown>>): void;
  call(method: string, params: unknown, options?: { callTimeoutMs?: number }): Promise<unknown>;
  close(options?: { code?: number; reason?: string; force?: boolean }): Promise<unknown>;
  on(event: string, listener: (arg: never) => void): unknown;
}

interface Claim {
  password?: string;
  onConnection: (c: OcppConnection) => void;
  current?: Connection;
}

const normalisePath = (p: string) => p.replace(/\/+$/, '');

function samePassword(expected: string, got: Buffer | undefined): boolean {
  if (!got) return false;
  // digests have equal lengths, so the comparison takes the same time whatever was sent
  const digest = (b: Buffer) => createHash('sha256').update(b).digest();
  return timingSafeEqual(digest(Buffer.from(expected, 'utf8')), digest(got));
}

function readTls(tls: { cert: string; key: string; ca?: string }) {
  const read = (what: 'cert' | 'key' | 'ca') => {
    try {
      return readFileSync(tls[what]!);
    } catch (err) {
      throw permanentError('ocpp_tls', `connections.ocpp.tls.${what}: cannot read ${tls[what]}: ${(err as Error).message}`, err);
    }
  };
  // with a CA, chargers may log in by client certificate (security profile 3); those without one still may use a password
  if (tls.ca) return { cert: read('cert'), key: read('key'), ca: read('ca'), requestCert: true, rejectUnauthorized: false };
  return { cert: read('cert'), key: read('key') };
}

/** The identity a charger's client certificate proves (its subject CN), when the certificate is signed by tls.ca. */
function certificateIdentity(req: IncomingMessage | undefined): string | undefined {
  const socket = req?.socket as TLSSocket | undefined;
  if (!socket?.encrypted || !socket.authorized) return undefined;
  const cn = socket.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}

/** Logs a message once per key until the key is forgotten. */
class Once {
  private seen = new Set<string>();
  log(key: string, fn: () => void) {
    if (this.seen.has(key)) return;
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.add(key);
    fn();
  }
  forget(prefix: string) {
    for (const k of this.seen) if (k.startsWith(prefix)) this.seen.delete(k);
  }
}

/** The OCPP-J error code as spelled by the connection's protocol version. */
function rpcCode(protocol: OcppProtocol, code: string): string {
  if (protocol === 'ocpp1.6') return code;
  if (code === 'FormationViolation') return 'FormatViolation';
  return code;
}

class Connection implements OcppConnection {
  private closeHandlers: ((info: { code?: number; reason?: string }) => void)[] = [];
  private closed = false;

  constructor(
    private readonly client: RpcServerClient,
    readonly identity: string,
    readonly protocol: OcppProtocol,
    private readonly schemas: OcppSchemas,
    private readonly log: Logger,
    private readonly once: Once,
    private readonly callTimeoutMs: number,
  ) {
    client.on('close', (info: { code?: number; reason?: string }) => {
      if (this.closed) return;
      this.closed = true;
      for (const fn of this.closeHandlers) {
        try {
          fn(info);
        } catch (err) {
          this.log.error({ err }, 'OCPP close handler failed');
        }
      }
    });
    client.on('socketError', (err: Error & { code?: string }) => {
      if (err.code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return;
      this.once.log(`${identity}|toobig`, () => this.log.warn({ charger: identity }, `charger ${identity} sent a message larger than connections.ocpp.max_frame_bytes; its connection was closed (1009)`));
    });
    client.on('badMessage', ({ error }: { error: Error }) => {
      this.once.log(`${identity}|bad|${error.message}`, () => this.log.warn({ charger: identity, error: error.message }, `charger ${identity} sent a malformed frame (answered with an OCPP error): ${error.message}`));
    });
  }

  get open() {
    return !this.closed && this.client.state === 1;
  }

  handle(action: string, handler: (params: unknown) => unknown) {
    this.client.handle(action, async ({ params }) => {
      const problems = this.schemas.check(this.protocol, action, 'req', params);
      if (problems.length) {
        this.once.log(`${this.identity}|in|${action}|${problems.join(';')}`, () =>
          this.log.warn({ charger: this.identity, action, problems }, `charger ${this.identity} sent a ${action} that does not follow the OCPP schema (accepted anyway): ${problems.join('; ')}`),
        );
      }
      let result: unknown;
      try {
        result = await handler(params);
      } catch (err) {
        if (err instanceof OcppCallError) throw createRPCError(rpcCode(this.protocol, err.code), err.message, {});
        this.log.error({ err, charger: this.identity, action }, `handling ${action} from charger ${this.identity} failed`);
        throw createRPCError('InternalError', 'The hub could not handle this message', {});
      }
      const wrong = this.schemas.check(this.protocol, action, 'conf', result);
      if (wrong.length) {
        this.log.error({ charger: this.identity, action, problems: wrong, result }, `the hub's reply to ${action} does not follow the OCPP schema (not sent)`);
        throw createRPCError('InternalError', 'The hub produced an invalid reply', {});
      }
      return result as Record<string, unknown>;
    });
  }

  async call(action: string, params: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    const problems = this.schemas.check(this.protocol, action, 'req', params);
    if (problems.length) {
      throw permanentError('ocpp_invalid_message', `${action} for charger ${this.identity} would not be valid ${this.protocol}: ${problems.join('; ')}`);
    }
    if (!this.schemas.has(this.protocol, action, 'req')) {
      throw permanentError('ocpp_unknown_action', `${action} is not an ${this.protocol} action`);
    }
    if (!this.open) throw retryableError('ocpp_not_connected', `charger ${this.identity} is not connected`);
    let result: unknown;
    try {
      result = await this.client.call(action, params, { callTimeoutMs: options.timeoutMs ?? this.callTimeoutMs });
    } catch (err) {
      const e = err as { name?: string; rpcErrorCode?: string; message?: string };
      if (e.rpcErrorCode) throw permanentError(`ocpp_${e.rpcErrorCode}`, `charger ${this.identity} answered ${action} with ${e.rpcErrorCode}: ${e.message ?? ''}`.trim(), err);
      if (e.name === 'TimeoutError') throw retryableError('ocpp_timeout', `charger ${this.identity} did not answer ${action} in time`, err);
      throw retryableError('ocpp_connection_lost', `charger ${this.identity}: ${action} failed: ${e.message ?? String(err)}`, err);
    }
    const wrong = this.schemas.check(this.protocol, action, 'conf', result);
    if (wrong.length) {
      this.once.log(`${this.identity}|conf|${action}|${wrong.join(';')}`, () =>
        this.log.warn({ charger: this.identity, action, problems: wrong }, `charger ${this.identity} answered ${action} outside the OCPP schema (accepted anyway): ${wrong.join('; ')}`),
      );
    }
    return result;
  }

  onClose(fn: (info: { code?: number; reason?: string }) => void) {
    if (this.closed) fn({});
    else this.closeHandlers.push(fn);
  }

  async close() {
    await this.client.close({ code: 1000, reason: 'closed by the hub' }).catch(() => undefined);
  }
}

export interface OcppServerOptions {
  host: string;
  /**
   * Refuse chargers whose device has no password (default: when `host` is not loopback, where
   * anyone on the network could dial in under a charger's identity).
   */
  requireAuth?: boolean;
  /** Largest WebSocket message accepted from a charger. */
  maxFrameBytes?: number;
  port: number;
  path: string;
  allowUnknown: boolean;
  /** Told of every charger that dials in under an identity no device claims (discovery). */
  onUnknown?: (charger: { identity: string; remoteAddress?: string; protocols: string[]; password: boolean }) => void;
  /** Server certificate and key; `ca` signs chargers' client certificates (subject CN = identity). */
  tls?: { cert: string; key: string; ca?: string };
  callTimeoutMs?: number;
  /** Seconds between WebSocket pings (0 = none). */
  pingIntervalS?: number;
  heartbeatIntervalS?: number;
}

/**
 * The hub's OCPP central system: one WebSocket port for OCPP 1.6J and 2.0.1, chargers admitted by
 * the identities adapters claim (security profile 1: Basic auth with the identity as user;
 * profile 2 when a certificate and key are configured).
 */
export class OcppServer implements OcppTransport {
  private readonly rpc: RPCServer;
  private readonly http: Server;
  private readonly claims = new Map<string, Claim>();
  private readonly unclaimed = new Set<RpcServerClient>();
  private readonly once = new Once();
  /** Refusals of strangers (unknown identities, wrong passwords) at a bounded rate: an intruder may try many identities. */
  private readonly refusals: RateLimitedLog;
  private readonly requireAuth: boolean;
  private readonly schemas = ocppSchemas();
  private readonly listening: Promise<void>;
  private lastTxId = 0;

  constructor(private readonly options: OcppServerOptions, private readonly log: Logger, private readonly now: () => number = Date.now) {
    this.requireAuth = options.requireAuth ?? !isLoopbackHost(options.host);
    this.refusals = new RateLimitedLog({ perKeyMs: 10 * 60_000, windowMs: 10 * 60_000, maxPerWindow: 20 }, now);
    this.rpc = new RPCServer({
      protocols: PROTOCOLS,
      wssOptions: { maxPayload: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES },
      // inbound frames are checked leniently by Connection.handle; strict mode would refuse real chargers
      strictMode: false,
      callTimeoutMs: options.callTimeoutMs ?? 30_000,
      pingIntervalMs: (options.pingIntervalS ?? 60) * 1000,
      callConcurrency: 1,
      respondWithDetailedErrors: false,
    });
    this.rpc.on('error', (err: Error) => this.log.error({ err }, 'OCPP server error'));
    this.rpc.on('upgradeAborted', ({ error, identity }: { error?: Error; identity: string }) => {
      const code = (error as { code?: number } | undefined)?.code;
      if (code !== 401 && code !== 404) this.log.debug({ charger: identity, err: error }, 'OCPP connection attempt aborted');
    });
    this.rpc.auth((accept, reject, hs) => this.admit(accept, reject, hs));
    this.rpc.on('client', (client: RpcServerClient) => this.onClient(client));

    this.http = options.tls ? createHttpsServer({ ...readTls(options.tls), minVersion: 'TLSv1.2' }) : createHttpServer();
    this.http.on('request', (_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      void this.rpc.handleUpgrade(req, socket, head);
    });
    this.http.on('clientError', (_err, socket) => socket.destroy());
    this.listening = new Promise<void>((res, rej) => {
      const onError = (err: Error) => rej(permanentError('ocpp_listen_failed', `OCPP server cannot listen on ${options.host}:${options.port}: ${err.message}`, err));
      this.http.once('error', onError);
      this.http.listen({ host: options.host, port: options.port }, () => {
        this.http.off('error', onError);
        this.http.on('error', (err) => this.log.error({ err }, 'OCPP server error'));
        this.log.info({ port: this.port, path: options.path, tls: !!options.tls }, `OCPP central system listening on ${options.tls ? 'wss' : 'ws'}://${options.host}:${this.port}${normalisePath(options.path)}/<identity>`);
        res();
      });
    });
    this.listening.catch(() => undefined);
  }

  get port(): number {
    const a = this.http.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  ready() {
    return this.listening;
  }

  nextTransactionId(): number {
    this.lastTxId = Math.max(this.lastTxId + 1, Math.floor(this.now() / 1000 - TX_EPOCH_S));
    return this.lastTxId;
  }

  claim(identity: string, options: { password?: string }, onConnection: (c: OcppConnection) => void): () => void {
    if (this.claims.has(identity)) throw permanentError('ocpp_identity_taken', `charger identity "${identity}" is claimed by two devices`);
    const claim: Claim = { password: options.password, onConnection };
    this.claims.set(identity, claim);
    // a charger admitted under allow_unknown before its device was set up: let it dial again
    for (const c of this.unclaimed) if (c.identity === identity) void c.close({ code: 1012, reason: 'device configured' });
    return () => {
      if (this.claims.get(identity) === claim) this.claims.delete(identity);
    };
  }

  private admit(
    accept: (session?: Record<string, unknown>, protocol?: string | false) => void,
    reject: (code: number, message: string) => void,
    hs: { identity: string; endpoint: string; password?: Buffer; protocols: Set<string>; remoteAddress?: string; request?: IncomingMessage },
  ) {
    const { identity } = hs;
    const from = hs.remoteAddress;
    const refuse = (key: string, fields: Record<string, unknown>, message: string) =>
      this.refusals.log(`${identity}|${key}`, (held) => this.log.warn({ charger: identity, from, ...fields }, held ? `${message} (${held} more refusals not logged)` : message));
    if (normalisePath(hs.endpoint) !== normalisePath(this.options.path)) {
      refuse(`path|${hs.endpoint}`, { path: hs.endpoint }, `charger ${identity} dialled path ${hs.endpoint}, expected ${this.options.path}: refused (404)`);
      return reject(404, 'Not found');
    }
    const claim = this.claims.get(identity);
    if (!claim) {
      try {
        this.options.onUnknown?.({ identity, remoteAddress: from, protocols: [...hs.protocols], password: !!hs.password });
      } catch (err) {
        this.log.warn({ err }, 'discovery of an unknown charger failed');
      }
    }
    if (!claim && !this.options.allowUnknown) {
      refuse('unknown', {}, `unknown charger identity "${identity}" refused (401); add a device with identity: ${identity} or set connections.ocpp.allow_unknown`);
      return reject(401, 'Unauthorized');
    }
    if (claim && claim.password === undefined && (this.requireAuth || this.options.tls?.ca)) {
      // without a password, a client certificate signed by tls.ca naming this identity is the only proof
      const proven = certificateIdentity(hs.request);
      if (proven !== identity) {
        const why = this.options.tls?.ca
          ? `its device has no password and it presented no client certificate for CN=${identity} signed by connections.ocpp.tls.ca${proven ? ` (its certificate names ${proven})` : ''}`
          : `its device has no password, and the OCPP port listens on ${this.options.host}, open to the network; set password for the device (or listen on 127.0.0.1)`;
        refuse('nopassword', {}, `charger ${identity} refused (401): ${why}`);
        return reject(401, 'Unauthorized');
      }
    }
    if (claim?.password !== undefined && !samePassword(claim.password, hs.password)) {
      refuse(`password|${hs.password ? 'wrong' : 'none'}`, {}, `charger ${identity} refused (401): ${hs.password ? 'wrong password' : 'no password (Basic auth with the identity as user) was sent'}`);
      return reject(401, 'Unauthorized');
    }
    const offered = [...hs.protocols];
    if (offered.length && !PROTOCOLS.some((p) => hs.protocols.has(p))) {
      refuse(`proto|${offered.join(',')}`, { offered }, `charger ${identity} offers ${offered.join(', ')}; the hub speaks ${PROTOCOLS.join(', ')}: refused (400)`);
      return reject(400, 'Unsupported subprotocol');
    }
    for (const key of ['unknown', 'nopassword', 'password|wrong', 'password|none']) this.refusals.forget(`${identity}|${key}`);
    this.once.forget(`${identity}|`);
    // no subprotocol offered at all: some chargers skip the header; they speak 1.6
    accept({ identity }, offered.length ? undefined : false);
  }

  private onClient(client: RpcServerClient) {
    const identity = client.identity ?? '';
    const protocol = (client.protocol as OcppProtocol | undefined) || 'ocpp1.6';
    const claim = this.claims.get(identity);
    const conn = new Connection(client, identity, protocol, this.schemas, this.log, this.once, this.options.callTimeoutMs ?? 30_000);
    if (!claim) {
      this.serveUnclaimed(client, conn);
      return;
    }
    const previous = claim.current;
    claim.current = conn;
    conn.onClose(() => {
      if (claim.current === conn) claim.current = undefined;
    });
    if (previous?.open) {
      this.log.info({ charger: identity }, `charger ${identity} connected again; closing its older connection`);
      void previous.close();
    }
    try {
      claim.onConnection(conn);
    } catch (err) {
      this.log.error({ err, charger: identity }, `setting up charger ${identity} failed`);
      void conn.close();
    }
  }

  /** allow_unknown: a charger no device claims is kept Pending, so it waits until a device is configured. */
  private serveUnclaimed(client: RpcServerClient, conn: Connection) {
    const identity = conn.identity;
    this.unclaimed.add(client);
    conn.onClose(() => this.unclaimed.delete(client));
    this.once.log(`${identity}|unclaimed`, () => this.log.warn({ charger: identity, protocol: conn.protocol }, `charger ${identity} connected (allow_unknown) but no device has identity: ${identity}; it is kept Pending`));
    const now = () => new Date(this.now()).toISOString();
    conn.handle('BootNotification', () => ({ status: 'Pending', currentTime: now(), interval: 60 }));
    conn.handle('Heartbeat', () => ({ currentTime: now() }));
    conn.handle('StatusNotification', () => ({}));
  }

  async stop() {
    await this.rpc.close({ code: 1001, reason: 'hub stopping', force: false }).catch((err: unknown) => this.log.warn({ err }, 'OCPP server did not close cleanly'));
    await new Promise<void>((res) => {
      this.http.close(() => res());
      this.http.closeAllConnections?.();
    });
  }
}

/** `connections.ocpp` → the shared OCPP transport. */
export function createOcppTransport(ctx: TransportContext): Managed<OcppTransport> {
  const c = ctx.config.connections.ocpp!;
  const base = dirname(resolve(ctx.config.source));
  const server = new OcppServer(
    {
      host: c.host ?? '0.0.0.0',
      port: c.port ?? 9000,
      path: c.path ?? '/ocpp',
      allowUnknown: c.allow_unknown ?? false,
      onUnknown: ctx.onDiscovered ? (ch) => ctx.onDiscovered!({ source: 'ocpp', adapter: 'ocpp', key: ch.identity, name: ch.identity, details: { identity: ch.identity, address: ch.remoteAddress ?? null, protocols: ch.protocols, sent_password: ch.password } }) : undefined,
      maxFrameBytes: c.max_frame_bytes,
      tls: c.tls ? { cert: resolve(base, c.tls.cert), key: resolve(base, c.tls.key), ca: c.tls.ca === undefined ? undefined : resolve(base, c.tls.ca) } : undefined,
    },
    ctx.log.child({ transport: 'ocpp' }),
    () => ctx.clock.now(),
  );
  return { transport: server, stop: () => server.stop() };
}
