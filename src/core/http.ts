import { timingSafeEqual, createHash, X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { BlockList, isIP, isIPv4, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Ajv } from 'ajv';
import { ApiError } from '../api/index.js';
import type { HttpConfig } from './config/schema.js';
import type { HubServices } from './services.js';

/** A module that adds endpoints under /api/v1, or under its own `prefix` ('' = the site root, for the dashboard). */
export type RouteModule = ((app: FastifyInstance, hub: HubServices) => void | Promise<void>) & { prefix?: string };

/**
 * Who may call a route, declared by the route itself (`access(...)` in its options):
 * - `public`: anyone who reaches the port (the dashboard's own files, which hold no data);
 * - `read`: this machine without a token; anyone else with it (nobody else when no token is set);
 * - `write`: with a token set, everyone needs it; without one, only this machine.
 * A route that declares nothing is treated as `write`, whoever added it.
 */
export type RouteAccess = 'public' | 'read' | 'write';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyInstance {
    /** Every route as declared (the OpenAPI document is generated from it: `homeflex openapi`). */
    routeTable: RouteEntry[];
  }
}

/** One declared route: method, full URL (fastify's `:param` syntax), access level and any JSON schemas. */
export interface RouteEntry {
  method: string;
  url: string;
  access: RouteAccess;
  schema?: { body?: unknown; querystring?: unknown; params?: unknown; response?: unknown };
}

/** Route options declaring who may call the route, e.g. `app.get('/plan', access('read'), handler)`. */
export const access = (level: RouteAccess) => ({ config: { access: level } });

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
/** A listen address only this machine can reach. */
export const isLoopbackHost = (host: string) => host === 'localhost' || LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Headers a proxy adds: a request carrying any of them was forwarded from somewhere else, so it is
 * never "this machine", whatever address it arrives from.
 */
const FORWARDING_HEADER = /^(forwarded|via|x-real-ip|x-forwarded-.+)$/;

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) as the plain IPv4 address. */
const plainAddress = (addr: string) => (addr.startsWith('::ffff:') && isIPv4(addr.slice(7)) ? addr.slice(7) : addr);

/** `http.trusted_proxies` as a set of addresses and blocks, or the first entry that is neither. */
export function proxyList(entries: readonly string[]): { list: BlockList; bad?: { index: number; entry: string } } {
  const list = new BlockList();
  for (const [index, entry] of entries.entries()) {
    const [addr, bits, extra] = entry.split('/');
    const family = isIP(addr);
    const prefix = bits === undefined ? undefined : Number(bits);
    const maxBits = family === 6 ? 128 : 32;
    if (!family || extra !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || prefix! > maxBits))) return { list, bad: { index, entry } };
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, prefix, type);
  }
  return { list };
}

/** Whether a browser's Origin is this hub: the same host and port as the request's Host, or one of the hub's names. */
function sameSite(origin: string, host: string | undefined, names: ReadonlySet<string>): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" (a sandboxed frame, a file) and anything unparsable
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const norm = (h: string) => h.toLowerCase().replace(/\.(?=:\d+$|$)/, '');
  if (host !== undefined && norm(url.host) === norm(host)) return true;
  // a reverse proxy that rewrites Host (nginx sends its upstream's address): the page is on one of the hub's names
  const name = norm(url.hostname);
  return names.has(name) && (host === undefined || hostName(host)?.name !== name);
}

/** Checks of the `http` section that its schema cannot express, located by key path. */
export function httpConfigProblems(http: HttpConfig): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const bad = proxyList(http.trusted_proxies ?? []).bad;
  if (bad) problems.push({ path: ['http', 'trusted_proxies', bad.index], message: `"${bad.entry}" is not an IP address or CIDR block (e.g. 127.0.0.1, 192.168.1.0/24, ::1)` });
  if (http.headers_timeout_ms > http.request_timeout_ms) {
    problems.push({ path: ['http', 'headers_timeout_ms'], message: `must not be longer than http.request_timeout_ms (${http.request_timeout_ms}), which covers the headers too` });
  }
  return problems;
}

/** The host part of a Host header or URL authority (lower case, no trailing dot), or undefined if it is malformed. */
function hostName(authority: string): { name: string; ip: boolean } | undefined {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    const name = authority.slice(1, end);
    const rest = authority.slice(end + 1);
    if (end < 0 || isIP(name) !== 6 || (rest && !/^:\d{1,5}$/.test(rest))) return undefined;
    return { name, ip: true };
  }
  const m = /^([^:[\]]+)(?::\d{1,5})?$/.exec(authority);
  if (!m) return undefined;
  const name = m[1].toLowerCase().replace(/\.$/, '');
  return { name, ip: isIPv4(name) };
}

/**
 * The names this hub answers to besides IP literals and localhost: `http.allowed_hosts`, or by
 * default the machine's hostname and <hostname>.local (mDNS).
 */
export function hubNames(http: Pick<HttpConfig, 'allowed_hosts'>, machine = hostname()): Set<string> {
  const names = http.allowed_hosts ?? [machine, `${machine}.local`];
  return new Set(names.map((n) => n.toLowerCase().replace(/\.$/, '')));
}

/** Whether a Host header names this hub: an IP literal, localhost (and *.localhost), or one of `names`. */
export function hostAllowed(authority: string, names: ReadonlySet<string>): boolean {
  const h = hostName(authority);
  if (!h) return false;
  return h.ip || h.name === 'localhost' || h.name.endsWith('.localhost') || names.has(h.name);
}

const tooDeep = (max: number) => new ApiError(400, 'body_too_deep', `body: JSON nested deeper than ${max} levels is refused (http.json_max_depth)`);

/**
 * Passes a JSON body through while counting how deep its arrays and objects nest (brackets inside
 * strings do not count), and fails as soon as it passes `max`: nothing deeper is ever buffered or
 * parsed. Byte-wise is safe for UTF-8: quotes, backslashes and brackets never occur inside a
 * multi-byte character.
 */
export class JsonDepthGuard extends Transform {
  private depth = 0;
  private inString = false;
  private escaped = false;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
      } else if (c === 0x22) this.inString = true;
      else if (c === 0x5b || c === 0x7b) {
        if (++this.depth > this.max) return callback(tooDeep(this.max));
      } else if (c === 0x5d || c === 0x7d) this.depth--;
    }
    callback(null, bytes);
  }
}

/** Constant-time comparison of bearer tokens (hashing first makes the lengths equal). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export const errorBody = (err: ApiError) => ({
  object: 'error' as const,
  type: err.type,
  code: err.code,
  message: err.message,
  ...(err.details ?? {}),
});

/** Turns fastify's schema-validation message into one that names the field. */
type AjvIssue = { instancePath?: string; message?: string; keyword?: string; params?: Record<string, unknown>; data?: unknown };

/** What a failed schema check says, in the API's words: the field it is about and what is wrong. */
function validationMessage(v: AjvIssue | undefined, where: string): { field: string; message: string } {
  const missing = v?.params?.missingProperty as string | undefined;
  const extra = v?.params?.additionalProperty as string | undefined;
  const path = (v?.instancePath ?? '').replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.');
  const field = [where === 'body' ? '' : where, path, missing ?? extra ?? ''].filter(Boolean).join('.') || where;
  if (extra) return { field, message: 'unknown field "' + extra + '"' };
  if (missing) return { field, message: 'is required' };
  if (v?.keyword === 'enum') return { field, message: `must be one of ${(v.params?.allowedValues as unknown[]).join(', ')} (got ${JSON.stringify(v.data)})` };
  if (v?.keyword === 'type' && !path && where === 'body') return { field, message: 'must be a JSON object' };
  return { field, message: v?.message ?? 'is invalid' };
}

/** The one mapper from a fastify validation failure (body, querystring, params) to the API's 400. */
function validationError(err: { validation?: AjvIssue[]; validationContext?: string }): ApiError {
  const { field, message } = validationMessage(err.validation?.[0], err.validationContext ?? 'body');
  return new ApiError(400, 'invalid_parameter', `${field}: ${message}`, { field });
}

/**
 * Route schemas are checked by two ajv instances: bodies as sent (JSON has types: "5" is not a
 * number), query strings and path parameters with coercion (they are text).
 */
function schemaValidators() {
  const base = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false, allowUnionTypes: true, verbose: true } as const;
  const bodies = new Ajv({ ...base, coerceTypes: false });
  const text = new Ajv({ ...base, coerceTypes: 'array' });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => (httpPart === 'body' ? bodies : text).compile(schema);
}

const unauthorized = (noToken: boolean) =>
  noToken
    ? new ApiError(401, 'unauthorized', 'no http.token is configured, so only this machine may use the API')
    : new ApiError(401, 'unauthorized', 'a valid "Authorization: Bearer <http.token>" header is required');

/** The authority of an absolute-form request target (`GET http://host/path HTTP/1.1`), if it is one. */
const absoluteFormAuthority = (url: string) => /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url)?.[1];

export async function createHttpServer(hub: HubServices, modules: RouteModule[]): Promise<FastifyInstance> {
  const { http } = hub.config;
  if (!isLoopbackHost(http.host) && !http.token) {
    throw new Error(`http.host is ${http.host} (not loopback) but no http.token is set: refusing to start`);
  }
  const proxies = proxyList(http.trusted_proxies ?? []);
  if (proxies.bad) throw new Error(`http.trusted_proxies[${proxies.bad.index}]: "${proxies.bad.entry}" is not an IP address or CIDR block`);
  const names = hubNames(http);
  const tls = http.tls ? readTlsPair(http.tls) : undefined;
  const app = Fastify({
    logger: false,
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    // X-Forwarded-For/-Proto/-Host count only from the proxies the site file names
    trustProxy: (address: string) => {
      const addr = plainAddress(address);
      return isIP(addr) !== 0 && proxies.list.check(addr, isIPv4(addr) ? 'ipv4' : 'ipv6');
    },
    bodyLimit: http.body_limit_bytes,
    // slow and idle clients: headers, the whole request and idle keep-alive each have a deadline,
    // checked every second (node's default is every 30 s)
    http: { headersTimeout: http.headers_timeout_ms, connectionsCheckingInterval: Math.min(1000, http.headers_timeout_ms) },
    requestTimeout: http.request_timeout_ms,
    keepAliveTimeout: http.keep_alive_timeout_ms,
    // a URL fastify cannot decode is refused before routing: in the API's error shape too
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 400;
      void (reply as FastifyReply).status(status).send(errorBody(new ApiError(status, err.code === 'FST_ERR_BAD_URL' ? 'bad_url' : 'invalid_request', err.message)));
    },
  });
  if (tls && http.tls) {
    hub.log.info({ cert: http.tls.cert, fingerprint256: tls.fingerprint, valid_to: tls.validTo }, 'serving HTTPS');
    const stop = watchTls(app.server as unknown as TlsServer, http.tls, tls.fingerprint, hub.log);
    app.addHook('onClose', async () => stop());
  }
  // over the caps, a connection is closed as it is accepted: idle sockets cannot use up the hub's
  // file descriptors, and one client cannot take every connection
  app.server.maxConnections = http.max_connections;
  const perClient = new Map<string, number>();
  let dropped = 0;
  const dropLogged = new Map<string, number>();
  const drop = (why: string) => {
    dropped++;
    if (Date.now() - (dropLogged.get(why) ?? -Infinity) < 60_000) return;
    dropLogged.set(why, Date.now());
    hub.log.warn({ max_connections: http.max_connections, max_connections_per_client: http.max_connections_per_client, dropped }, `HTTP connections ${why} are being closed as they arrive`);
  };
  app.server.on('drop', () => drop(`over http.max_connections (${http.max_connections})`));
  app.server.on('connection', (socket: Socket) => {
    const addr = plainAddress(socket.remoteAddress ?? '');
    // a proxy speaks for many clients; so does this machine (a local proxy, the dashboard's streams)
    if (LOOPBACK.has(addr) || proxies.list.check(addr, isIPv4(addr) ? 'ipv4' : 'ipv6')) return;
    const open = (perClient.get(addr) ?? 0) + 1;
    if (open > http.max_connections_per_client) {
      socket.destroy();
      drop(`from one address over http.max_connections_per_client (${http.max_connections_per_client})`);
      return;
    }
    perClient.set(addr, open);
    socket.once('close', () => {
      const left = (perClient.get(addr) ?? 1) - 1;
      if (left) perClient.set(addr, left);
      else perClient.delete(addr);
    });
  });

  // deep nesting is refused while the body arrives, before JSON.parse builds it (8 MB of "[[[…"
  // would stall the hub): the rest of such a body is never read
  app.addHook('preParsing', async (req, _reply, payload) => {
    if (!/json/i.test(String(req.headers['content-type'] ?? ''))) return payload;
    const guard = new JsonDepthGuard(http.json_max_depth);
    payload.on('error', (err) => guard.destroy(err));
    return payload.pipe(guard);
  });

  // routes that declare no access are treated as writes; say so once, for whoever added them
  const undeclared: string[] = [];
  const routeTable: RouteEntry[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    if (!route.config?.access && route.method !== 'HEAD') undeclared.push(`${String(route.method)} ${route.url}`);
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      routeTable.push({ method, url: route.url, access: route.config?.access ?? 'write', ...(route.schema ? { schema: route.schema as RouteEntry['schema'] } : {}) });
    }
  });
  app.addHook('onReady', async () => {
    if (undeclared.length) hub.log.warn({ routes: undeclared }, 'HTTP routes that declare no access level need the token like writes');
  });

  /** The Host a trusted proxy says the client asked for (X-Forwarded-Host), if any. */
  const forwardedHost = (req: FastifyRequest): string | undefined => {
    const fwd = req.headers['x-forwarded-host'];
    if (fwd === undefined) return undefined;
    const addr = plainAddress(req.socket.remoteAddress ?? '');
    if (!isIP(addr) || !proxies.list.check(addr, isIPv4(addr) ? 'ipv4' : 'ipv6')) return undefined;
    // several proxies in a row: the first one's (the client's) value
    return String(Array.isArray(fwd) ? fwd[0] : fwd).split(',')[0].trim();
  };

  /** A client on this machine that nobody forwarded: the only one trusted without a token. */
  const fromThisMachine = (req: FastifyRequest) => {
    const addr = plainAddress(req.socket.remoteAddress ?? '');
    if (!LOOPBACK.has(addr)) return false;
    if (proxies.list.check(addr, isIPv4(addr) ? 'ipv4' : 'ipv6')) return false;
    return !Object.keys(req.headers).some((h) => FORWARDING_HEADER.test(h));
  };

  app.addHook('onRequest', async (req: FastifyRequest) => {
    // DNS rebinding: a page from evil.example resolving to this hub still says Host: evil.example
    const authorities = [req.headers.host, absoluteFormAuthority(req.url), forwardedHost(req)].filter((a): a is string => a !== undefined);
    for (const authority of authorities) {
      if (!hostAllowed(authority, names)) {
        // the hub's own names stay out of the answer: after rebinding, the attacker's page reads it
        throw new ApiError(421, 'misdirected_request', `Host "${authority.slice(0, 100)}" is not a name of this hub; if you reach the hub by this name, add it to http.allowed_hosts`);
      }
    }
    // who may call what follows the route the request resolved to, never the URL as written
    const level: RouteAccess = req.is404 ? 'read' : (req.routeOptions.config?.access ?? 'write');
    if (level === 'public') return;
    const bearer = req.headers.authorization?.startsWith('Bearer ') ? req.headers.authorization.slice(7) : undefined;
    const local = fromThisMachine(req);
    if (http.token) {
      if ((level === 'write' || !local) && !tokenMatches(bearer, http.token)) throw unauthorized(false);
    } else if (!local) throw unauthorized(true);
    if (level === 'write') {
      const origin = req.headers.origin;
      if (origin !== undefined && !sameSite(origin, req.headers.host, names) && !(forwardedHost(req) !== undefined && sameSite(origin, forwardedHost(req), names))) {
        throw new ApiError(403, 'foreign_origin', `a change requested by a page from ${origin.slice(0, 100)} is refused: only the hub's own pages and programs that send no Origin may change it`);
      }
    }
  });

  app.setValidatorCompiler(schemaValidators());

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    let apiErr: ApiError;
    const e = err as { validation?: unknown; statusCode?: number; code?: string; message?: string };
    if (err instanceof ApiError) apiErr = err;
    else if (e.validation) apiErr = validationError(e as Parameters<typeof validationError>[0]);
    else if (e.statusCode && e.statusCode < 500) {
      const code = e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'body_too_large' : e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type' : 'invalid_request';
      const message = code === 'invalid_request' && /JSON/i.test(e.message ?? '') ? `body: not valid JSON (${e.message})` : (e.message ?? 'bad request');
      apiErr = new ApiError(e.statusCode, code, message);
    } else {
      hub.log.error({ err, url: req.url, method: req.method }, 'request failed');
      apiErr = new ApiError(500, 'internal_error', 'internal error; the hub log has the details');
    }
    reply.status(apiErr.status).send(errorBody(apiErr));
  });

  app.setNotFoundHandler((req, reply) => {
    const err = new ApiError(404, 'not_found', `no endpoint ${req.method} ${req.url.split('?')[0]}`);
    reply.status(404).send(errorBody(err));
  });

  for (const mod of modules) await app.register(async (scope) => mod(scope, hub), { prefix: mod.prefix ?? '/api/v1' });
  return app;
}

/** A certificate and key as read from their files, checked to belong together. */
export function readTlsPair(files: { cert: string; key: string }): { cert: Buffer; key: Buffer; fingerprint: string; validTo: string } {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.cert);
  } catch (err) {
    throw new Error(`http.tls.cert: cannot read ${files.cert} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  try {
    key = readFileSync(files.key);
  } catch (err) {
    throw new Error(`http.tls.key: cannot read ${files.key} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`http.tls.cert: ${files.cert} is not a PEM certificate (${(err as Error).message})`, { cause: err });
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`http.tls: the key ${files.key} does not fit the certificate ${files.cert} (${(err as Error).message})`, { cause: err });
  }
  return { cert, key, fingerprint: x509.fingerprint256, validTo: new Date(x509.validTo).toISOString() };
}

/** How often the certificate and key files are looked at for changes. */
export const TLS_WATCH_MS = 2000;

/**
 * Watches the certificate and key files (polling their status, which also sees a renewal that
 * replaces a symbolic link or renames a new file into place) and hands a changed pair to the server:
 * connections opened from then on get the new certificate, open ones keep theirs. A pair that does
 * not fit together yet (the certificate renewed, the key not yet written) is tried again at the next
 * change; the old certificate stays in service meanwhile.
 */
export function watchTls(server: TlsServer, files: { cert: string; key: string }, fingerprint: string, log: HubServices['log'], intervalMs = TLS_WATCH_MS): () => void {
  let current = fingerprint;
  let timer: NodeJS.Timeout | undefined;
  let failed: string | undefined;
  const reload = () => {
    clearTimeout(timer);
    // the second file of a renewal usually follows within moments: load both once they settled
    timer = setTimeout(() => {
      try {
        const pair = readTlsPair(files);
        failed = undefined;
        if (pair.fingerprint === current) return;
        server.setSecureContext({ cert: pair.cert, key: pair.key });
        log.info({ cert: files.cert, fingerprint256: pair.fingerprint, was: current, valid_to: pair.validTo }, 'HTTPS certificate reloaded; new connections get the new one');
        current = pair.fingerprint;
      } catch (err) {
        const message = (err as Error).message;
        if (message !== failed) log.error({ err }, `HTTPS certificate not reloaded, the previous one stays in service: ${message}`);
        failed = message;
      }
    }, Math.min(500, intervalMs));
    timer.unref();
  };
  const onChange = (now: { mtimeMs: number; ino: number; size: number }, prev: { mtimeMs: number; ino: number; size: number }) => {
    if (now.mtimeMs !== prev.mtimeMs || now.ino !== prev.ino || now.size !== prev.size) reload();
  };
  const opts = { interval: intervalMs, persistent: false };
  watchFile(files.cert, opts, onChange);
  watchFile(files.key, opts, onChange);
  return () => {
    clearTimeout(timer);
    unwatchFile(files.cert, onChange);
    unwatchFile(files.key, onChange);
  };
}
