import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger, MqttMessageHandler, MqttTransport } from '../../api/index.js';
import { permanentError, retryableError } from '../../api/index.js';
import type { Managed, TransportContext } from './index.js';
import { brokerAccess, filterProblem, topicMatches } from './mqtt-access.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './mqtt-broker.js';

/** The hub's own availability topic: `online` while connected, `offline` as last will (both retained). */
export const hubStatusTopic = (siteId: string) => `homeflex/${siteId}/status`;

/** The telemetry topics of a site (docs/telemetry.md): only the hub may publish under them. */
export const telemetryTopics = (siteId: string) => {
  const base = `homeflex/${siteId}/telemetry`;
  return {
    /** Filter of every telemetry topic, for the broker's access model. */
    all: `${base}/#`,
    state: (deviceId: string) => `${base}/${deviceId}/state`,
    meter: (deviceId: string, channel: string) => `${base}/${deviceId}/meter/${channel}`,
  };
};

export { topicMatches } from './mqtt-access.js';
export { startEmbeddedBroker, type EmbeddedBroker } from './mqtt-broker.js';

/** Checks a filter as a broker would, so a typo fails at subscribe time with the adapter's name in the stack. */
function checkFilter(filter: string) {
  const why = filterProblem(filter);
  if (why) throw permanentError('bad_topic_filter', `"${filter}" is not a valid MQTT topic filter`);
}

interface Subscription {
  filter: string;
  handlers: Set<MqttMessageHandler>;
}

/**
 * The one MQTT client of the hub, shared by every adapter and plugin. It keeps the table of
 * subscriptions itself and subscribes all of them again on every (re)connect, so a broker that
 * restarted without a session still delivers; it announces the hub's availability with a retained
 * `online` and a last will `offline`.
 */
export class HubMqtt implements MqttTransport {
  private client?: MqttClient;
  private broker?: EmbeddedBroker;
  private readonly subs = new Map<string, Subscription>();
  private readonly ready: Promise<void>;
  private connectedOnce = false;
  private linkUp = false;
  private lastError = '';
  private stopped = false;
  private readonly reconnectListeners = new Set<() => void>();
  readonly statusTopic: string;

  constructor(private readonly ctx: TransportContext, private readonly log: Logger) {
    this.statusTopic = hubStatusTopic(ctx.config.site.id);
    this.ready = this.open();
    // a failure here is logged in open(); publishers see it as a rejected publish
    this.ready.catch(() => undefined);
  }

  private async open() {
    const conf = this.ctx.config.connections.mqtt ?? {};
    let url = conf.url ?? 'mqtt://127.0.0.1:1883';
    if (conf.embedded) {
      try {
        const { access } = brokerAccess(this.ctx.config, this.ctx.catalog ?? { adapters: [], plugins: [], tariffSources: [] });
        const { host, port, max_packet_bytes: maxPacketBytes } = conf.embedded;
        this.broker = await startEmbeddedBroker({ host, port, maxPacketBytes, access, log: this.log });
      } catch (err) {
        this.log.error({ err }, (err as Error).message);
        throw err;
      }
      url = this.broker.url;
    }
    if (this.stopped) return;
    let ca: Buffer | undefined;
    if (conf.ca) {
      try {
        ca = readFileSync(conf.ca);
      } catch (err) {
        const e = permanentError('mqtt_ca', `connections.mqtt.ca: cannot read "${conf.ca}": ${(err as NodeJS.ErrnoException).code ?? err}`);
        this.log.error(e.message);
        throw e;
      }
    }
    const options: IClientOptions = {
      clientId: conf.client_id ?? `homeflex-${this.ctx.config.site.id}-${randomBytes(3).toString('hex')}`,
      username: conf.username,
      password: conf.password,
      ca,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      // the subscription table here is the source of truth; mqtt.js's own copy would double up
      resubscribe: false,
      queueQoSZero: false,
      will: { topic: this.statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    };
    const client = (this.client = mqtt.connect(url, options));
    // every adapter publishing before the broker answers waits with its own 'connect' listener (removed after)
    client.setMaxListeners(500);
    client.on('connect', (connack) => {
      // commands are small packets: send them at once rather than after Nagle's delay
      (client.stream as Partial<Socket> | undefined)?.setNoDelay?.(true);
      this.linkUp = true;
      this.lastError = '';
      const again = this.connectedOnce;
      if (again) this.log.info({ url }, 'MQTT broker connection recovered');
      else this.log.info({ url, clientId: options.clientId }, 'connected to MQTT broker');
      this.connectedOnce = true;
      if (!connack.sessionPresent) for (const s of this.subs.values()) this.sendSubscribe(s.filter);
      client.publish(this.statusTopic, 'online', { qos: 1, retain: true });
      if (again) for (const l of this.reconnectListeners) l();
    });
    client.on('close', () => {
      if (this.linkUp && !this.stopped) this.log.warn({ url }, 'lost the MQTT broker connection; reconnecting');
      this.linkUp = false;
    });
    client.on('error', (err: Error & { code?: number | string }) => {
      // log each kind of failure once, not every reconnect attempt
      const kind = `${err.code ?? ''} ${err.message}`;
      if (kind === this.lastError) return;
      this.lastError = kind;
      if (err.code === 4 || err.code === 5) this.log.error({ url }, `MQTT broker refused the login (${err.message}); check connections.mqtt.username/password`);
      else this.log.warn({ url, err: err.message }, 'MQTT connection failed; retrying every second');
    });
    client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, packet.retain));
  }

  /**
   * Calls `listener` after every reconnect (not the first connect): a broker that restarted without
   * persistence lost what was retained, so publishers of retained state publish it again.
   */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** The embedded broker's URL, when there is one (for simulated devices and tests). */
  get embeddedBrokerUrl(): string | undefined {
    return this.broker?.url;
  }

  /** Resolves with the embedded broker's URL once it listens (undefined without one); for simulated devices. */
  async embeddedBroker(): Promise<string | undefined> {
    await this.ready.catch(() => undefined);
    return this.broker?.url;
  }

  private sendSubscribe(filter: string) {
    this.client?.subscribe(filter, { qos: 1 }, (err) => {
      if (err && !this.stopped) this.log.warn({ filter, err: err.message }, 'MQTT subscribe failed');
    });
  }

  private dispatch(topic: string, payload: Buffer, retained: boolean) {
    for (const s of this.subs.values()) {
      if (!topicMatches(s.filter, topic)) continue;
      for (const handler of s.handlers) {
        try {
          handler(topic, payload, retained);
        } catch (err) {
          // one subscriber's bug must not stop delivery to the others
          this.log.error({ err, topic, filter: s.filter }, 'MQTT message handler failed');
        }
      }
    }
  }

  subscribe(filter: string, handler: MqttMessageHandler): () => void {
    checkFilter(filter);
    let s = this.subs.get(filter);
    if (!s) {
      s = { filter, handlers: new Set() };
      this.subs.set(filter, s);
      if (this.connected) this.sendSubscribe(filter);
    }
    s.handlers.add(handler);
    return () => {
      const cur = this.subs.get(filter);
      if (!cur?.handlers.delete(handler) || cur.handlers.size > 0) return;
      this.subs.delete(filter);
      if (this.connected) this.client?.unsubscribe(filter);
    };
  }

  /** Publishes once connected; waits up to `waitMs` for a connection, then fails as retryable. */
  async publish(topic: string, payload: string | Buffer, opts: { retain?: boolean; qos?: 0 | 1 | 2 } = {}, waitMs = 5000): Promise<void> {
    if (this.stopped) throw retryableError('mqtt_stopped', 'the MQTT connection is stopping');
    await this.ready;
    if (!this.connected) await this.waitConnected(waitMs);
    await this.client!.publishAsync(topic, payload, { retain: opts.retain ?? false, qos: opts.qos ?? 0 });
  }

  private waitConnected(ms: number) {
    return new Promise<void>((resolve, reject) => {
      const client = this.client!;
      const onConnect = () => (clearTimeout(timer), resolve());
      const timer = setTimeout(() => {
        client.off('connect', onConnect);
        reject(retryableError('mqtt_offline', `not connected to the MQTT broker (${this.lastError.trim() || 'connecting'})`));
      }, ms);
      client.once('connect', onConnect);
    });
  }

  /** Announces `offline`, disconnects, and closes the embedded broker. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.ready.catch(() => undefined);
    this.stopped = true;
    const client = this.client;
    if (client) {
      if (client.connected) {
        await Promise.race([client.publishAsync(this.statusTopic, 'offline', { qos: 1, retain: true }), new Promise((r) => setTimeout(r, 1000))]).catch(() => undefined);
      }
      await Promise.race([client.endAsync(), new Promise((r) => setTimeout(r, 2000))]).catch(() => undefined);
      if (!client.disconnected) client.end(true);
    }
    await this.broker?.close();
  }
}

/** The factory the host registers in `transportFactories.mqtt`. */
export function createMqttTransport(ctx: TransportContext): Managed<MqttTransport> {
  const transport = new HubMqtt(ctx, ctx.log.child({ transport: 'mqtt' }));
  return { transport, stop: () => transport.stop() };
}
