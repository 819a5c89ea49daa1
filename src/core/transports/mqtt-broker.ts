import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { Aedes, type Client } from 'aedes';
import type { Logger } from '../../api/index.js';
import { permanentError } from '../../api/index.js';
import { mayPublish, maySubscribe, type BrokerAccess, type MqttGrant } from './mqtt-access.js';
import { RateLimitedLog } from './rate-log.js';

/** Until its login is accepted a connection may send this much in all (a real CONNECT is a few hundred bytes). */
export const PRE_AUTH_BYTES = 64 * 1024;
export const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024;
/** Where a refused publish goes: no client may subscribe there, so it reaches no one and is not retained. */
const DROPPED_TOPIC = '$homeflex/dropped';

/**
 * Sits between a client's socket and aedes and reads each MQTT fixed header as the bytes pass:
 * a packet declaring more than the limit (or, before the login is accepted, more than
 * `PRE_AUTH_BYTES` in all) closes the connection before anything of it is buffered, since
 * mqtt-packet's parser would otherwise collect the whole declared length in memory.
 */
export class MqttPacketGuard extends Duplex {
  /** Set once the broker accepted the login; the packet limit then applies instead of the pre-login one. */
  authenticated = false;
  private remaining = 0;
  private lengthBytes = -1;
  private length = 0;
  private multiplier = 1;
  private received = 0;

  constructor(readonly socket: Socket, private readonly maxPacketBytes: number, private readonly refuse: (why: string) => void) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  private onData(chunk: Buffer) {
    if (!this.authenticated) {
      this.received += chunk.length;
      if (this.received > PRE_AUTH_BYTES) return this.stop(`sent more than ${PRE_AUTH_BYTES} bytes before its login was accepted`);
    }
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      if (this.lengthBytes < 0) {
        // first byte of a fixed header: packet type and flags
        i++;
        this.lengthBytes = 0;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      const b = chunk[i++]!;
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (b & 0x80) {
        if (this.lengthBytes >= 4) return this.stop('sent a malformed remaining length');
        continue;
      }
      const size = 1 + this.lengthBytes + this.length;
      const limit = this.authenticated ? this.maxPacketBytes : PRE_AUTH_BYTES;
      if (size > limit) {
        return this.stop(
          this.authenticated
            ? `sent a packet of ${size} bytes, more than connections.mqtt.embedded.max_packet_bytes (${this.maxPacketBytes})`
            : `declared a packet of ${size} bytes before its login was accepted (at most ${PRE_AUTH_BYTES})`,
        );
      }
      this.remaining = this.length;
      this.lengthBytes = -1;
    }
    if (!this.push(chunk)) this.socket.pause();
  }

  private stop(why: string) {
    this.refuse(why);
    this.socket.destroy();
    this.destroy();
  }

  override _read() {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) {
    if (this.socket.destroyed) return cb();
    this.socket.write(chunk, (err) => cb(err ?? null));
  }

  override _final(cb: (err?: Error | null) => void) {
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void) {
    this.socket.destroy();
    cb(err);
  }
}

function samePassword(expected: string, got: Buffer | undefined): boolean {
  got ??= Buffer.alloc(0);
  // digests have equal lengths, so the comparison takes the same time whatever was sent
  const digest = (b: Buffer) => createHash('sha256').update(b).digest();
  return timingSafeEqual(digest(Buffer.from(expected, 'utf8')), digest(got));
}

const loginError = (returnCode: 2 | 4 | 5, message: string) => Object.assign(new Error(message), { returnCode });

export interface EmbeddedBroker {
  /** Where clients reach it (127.0.0.1 when it listens on all interfaces). */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** Logins and topic rules; without it every client is let in with every right (loopback tests, benches). */
  access?: BrokerAccess;
  maxPacketBytes?: number;
  log: Logger;
}

/**
 * Starts the in-process broker (`connections.mqtt.embedded`): aedes on a plain TCP listener, each
 * socket behind an `MqttPacketGuard`, logins and topic rules from `access` (see mqtt-access.ts).
 */
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const access: BrokerAccess = options.access ?? { anonymous: true, logins: [], commands: [] };
  const grants = new WeakMap<Client, MqttGrant>();
  const strangers = new RateLimitedLog({ perKeyMs: 10 * 60_000, windowMs: 10 * 60_000, maxPerWindow: 20 });
  const denied = new RateLimitedLog({ perKeyMs: 10 * 60_000, windowMs: 10 * 60_000, maxPerWindow: 50 });
  const held = (n: number) => (n ? ` (${n} similar lines held back)` : '');
  const remote = (client: Client | null | undefined) => ((client?.conn as unknown as MqttPacketGuard | undefined)?.socket?.remoteAddress ?? 'unknown');
  const allRights = (username: string): MqttGrant => ({ username, all: true, publish: [], subscribe: [] });

  const broker: Aedes = await Aedes.createBroker({
    heartbeatInterval: 3_600_000,
    connectTimeout: 10_000,
    authenticate: (client, username, password, done) => {
      const from = remote(client);
      let grant: MqttGrant | undefined;
      if (username === undefined || username === '') {
        if (access.anonymous) grant = allRights('');
      } else {
        const login = access.logins.find((l) => l.username === username);
        if (login && samePassword(login.password, password)) grant = login.grant;
      }
      if (!grant) {
        strangers.log(`login|${from}|${username ?? ''}`, (n) =>
          options.log.warn({ from, username, client: client.id }, `embedded MQTT broker refused ${username ? `login "${username}" (wrong user name or password)` : 'an anonymous client (this broker needs a login)'} from ${from}${held(n)}`),
        );
        return done(username ? loginError(4, 'bad user name or password') : loginError(5, 'not authorized'), null);
      }
      // a login may take over its own client id (a device reconnecting), never another login's
      const holder = (broker as unknown as { clients: Record<string, Client> }).clients[client.id];
      const holderGrant = holder && holder !== client ? grants.get(holder) : undefined;
      if (holderGrant && holderGrant.username !== grant.username && !grant.all) {
        strangers.log(`takeover|${grant.username}|${client.id}`, (n) =>
          options.log.warn({ from, username, client: client.id }, `embedded MQTT broker refused login "${grant.username}" from ${from}: client id "${client.id}" is connected under another login${held(n)}`),
        );
        return done(loginError(2, 'client id in use by another login'), null);
      }
      grants.set(client, grant);
      const conn = client.conn as unknown as MqttPacketGuard;
      if (conn instanceof MqttPacketGuard) conn.authenticated = true;
      done(null, true);
    },
    authorizePublish: (client, packet, done) => {
      if (packet.topic.startsWith('$')) return done(new Error(`publishing to ${packet.topic} is not allowed`));
      if (!client) return done(null);
      const grant = grants.get(client);
      if (grant && mayPublish(access, grant, packet.topic)) return done(null);
      denied.log(`pub|${grant?.username}|${packet.topic}`, (n) =>
        options.log.warn({ username: grant?.username, client: client.id, topic: packet.topic }, `embedded MQTT broker dropped a publish to ${packet.topic} from login "${grant?.username ?? ''}": not one of its topics${held(n)}`),
      );
      // a refused will is simply not sent; any other publish is acknowledged and dropped, as MQTT 3.1.1 allows
      if (packet === (client as unknown as { will?: unknown }).will) return done(new Error('will topic not allowed'));
      packet.topic = DROPPED_TOPIC;
      packet.retain = false;
      done(null);
    },
    authorizeSubscribe: (client, sub, done) => {
      const grant = grants.get(client);
      if (grant && !sub.topic.startsWith('$homeflex') && maySubscribe(grant, sub.topic)) return done(null, sub);
      denied.log(`sub|${grant?.username}|${sub.topic}`, (n) =>
        options.log.warn({ username: grant?.username, client: client.id, filter: sub.topic }, `embedded MQTT broker refused a subscription to ${sub.topic} from login "${grant?.username ?? ''}": not one of its topics${held(n)}`),
      );
      done(null, null);
    },
  });
  broker.on('clientError', (client, err) => options.log.debug({ client: client?.id, err: err.message }, 'embedded broker: client error'));
  broker.on('connectionError', (client, err) => options.log.debug({ client: client?.id, err: err.message }, 'embedded broker: connection error'));
  const maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    // small MQTT packets must not wait for Nagle's algorithm (it adds ~40 ms to every command's round trip)
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const from = socket.remoteAddress ?? 'unknown';
    const guard = new MqttPacketGuard(socket, maxPacketBytes, (why) => {
      const who = grants.get((guard as unknown as { client?: Client }).client as Client);
      strangers.log(`size|${from}|${who?.username ?? ''}`, (n) =>
        options.log.warn({ from, username: who?.username }, `embedded MQTT broker closed a connection from ${from}${who ? ` (login "${who.username}")` : ''}: it ${why}${held(n)}`),
      );
    });
    broker.handle(guard as unknown as Socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(permanentError('broker_listen', `embedded MQTT broker cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`, err)),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const reachHost = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host.includes(':') ? `[${options.host}]` : options.host;
  options.log.info({ host: options.host, port, logins: access.logins.length, anonymous: access.anonymous }, 'embedded MQTT broker listening');
  return {
    url: `mqtt://${reachHost}:${port}`,
    port,
    close: async () => {
      // clients first (aedes ends their streams), then the listener
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      // a half-open client (one refused at login) would otherwise hold server.close() open
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
