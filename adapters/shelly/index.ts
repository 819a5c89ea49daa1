import { configSchema, defineAdapter, Enum, permanentError, Type, type Static, retryableError, type AdapterContext, type MqttTransport } from '../../src/api/index.js';
import { SocketDevice, num, parseJson, SocketProperties, type SocketConfig } from '../mqtt-socket/socket.js';

const ShellyConfigSchema = Type.Object({
  generation: Enum([1, 2], { description: '1 = Gen1 (shellies/<id>/relay/…), 2 = Gen2, Gen3, Gen4 (RPC over MQTT)' }),
  topic: Type.String({ pattern: '^[^+#]+$', description: 'Gen1: the device id after shellies/ (e.g. shellyplug-s-4022D8); Gen2+: the MQTT topic prefix (e.g. shellyplus1pm-441793d69718)' }),
  relay: Type.Integer({ minimum: 0, maximum: 15, default: 0, description: 'Relay / switch component index' }),
  ...SocketProperties,
});
export type ShellyConfig = SocketConfig & Static<typeof ShellyConfigSchema>;

/** Shelly Gen1 reports energy in watt-minutes. */
export const wattMinutesToWh = (wm: number) => wm / 60;

/** The parts of a Gen2+ `switch:<n>` status object the hub uses (from GetStatus, NotifyStatus or status/switch:<n>). */
export function gen2SwitchStatus(obj: unknown): { on?: boolean; powerW?: number; totalWh?: number } | undefined {
  if (!obj || typeof obj !== 'object') return undefined;
  const s = obj as Record<string, unknown>;
  const aenergy = s.aenergy as Record<string, unknown> | undefined;
  return {
    on: typeof s.output === 'boolean' ? s.output : undefined,
    powerW: num(s.apower),
    totalWh: num(aenergy?.total),
  };
}

interface RpcReply {
  id?: unknown;
  result?: unknown;
  error?: { code?: number; message?: string };
}

/**
 * Shelly Gen2+ RPC over MQTT: a request on `<prefix>/rpc` names `src`, and the device answers on
 * `<src>/rpc` with the request's id.
 */
export class ShellyRpc {
  private seq = 0;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private unsubscribe?: () => void;

  constructor(private readonly mqtt: MqttTransport, private readonly prefix: string, readonly src: string, private readonly ctx: AdapterContext, private readonly timeoutMs = 5000) {}

  start() {
    this.unsubscribe = this.mqtt.subscribe(`${this.src}/rpc`, (topic, payload) => {
      const reply = parseJson(this.ctx, topic, payload) as RpcReply | undefined;
      const id = typeof reply?.id === 'number' ? reply.id : undefined;
      const p = id === undefined ? undefined : this.pending.get(id);
      if (!p) return;
      this.pending.delete(id!);
      clearTimeout(p.timer);
      if (reply!.error) p.reject(permanentError('shelly_rpc', `${this.prefix}: RPC error ${reply!.error.code ?? ''} ${reply!.error.message ?? ''}`.trim()));
      else p.resolve(reply!.result);
    });
  }

  stop() {
    this.unsubscribe?.();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(retryableError('stopped', 'adapter stopping'));
    }
    this.pending.clear();
  }

  async call(method: string, params?: Record<string, unknown>): Promise<unknown> {
    const id = ++this.seq;
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(retryableError('rpc_timeout', `${this.prefix}: no answer to ${method} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
    answer.catch(() => undefined);
    await this.mqtt.publish(`${this.prefix}/rpc`, JSON.stringify({ id, src: this.src, method, ...(params ? { params } : {}) }), { qos: 1 });
    return answer;
  }
}

export const shelly = defineAdapter<ShellyConfig>({
  id: 'shelly',
  needs: ['mqtt'],
  description: 'Shelly smart socket or relay over MQTT (Gen1 topics or Gen2+ RPC): switch and energy meter',
  configSchema: configSchema(ShellyConfigSchema),
  // Gen1 listens on shellies/<id>/…/command and the broadcast shellies/command; Gen2+ on <prefix>/rpc and answers on the hub's src
  mqttClient: (config, site) => {
    if (config.generation === 1) {
      const base = `shellies/${config.topic}`;
      const commands = [`${base}/command`, `${base}/+/+/command`, 'shellies/command'];
      return { publish: [`${base}/#`, 'shellies/announce'], subscribe: [`${base}/#`, 'shellies/command'], commands };
    }
    const commands = [`${config.topic}/rpc`, `${config.topic}/command`];
    return { publish: [`${config.topic}/#`, `${shellyRpcSource(site.id, config.id)}/rpc`], subscribe: commands, commands };
  },
  create(ctx, config) {
    const mqtt = ctx.transports.mqtt();
    return config.generation === 1 ? gen1(ctx, config, mqtt) : gen2(ctx, config, mqtt);
  },
});

/** The `src` of the hub's RPC calls to one Gen2+ device: the device answers on `<src>/rpc`. */
const shellyRpcSource = (siteId: string, deviceId: string) => `homeflex-${siteId}-${deviceId}`;

function gen1(ctx: AdapterContext, config: ShellyConfig, mqtt: MqttTransport) {
  const base = `shellies/${config.topic}`;
  const relay = `${base}/relay/${config.relay}`;
  const socket = new SocketDevice(ctx, config, 'shelly', mqtt, (on) => mqtt.publish(`${relay}/command`, on ? 'on' : 'off', { qos: 1 }));
  const askUpdate = () => void mqtt.publish(`${base}/command`, 'update', { qos: 1 }).catch(() => undefined);
  const bad = (topic: string, p: Buffer, what: string) => ctx.log.warn({ topic, payload: p.toString().slice(0, 50) }, `ignored ${what}`);
  const handlers: [string, (topic: string, p: Buffer) => void][] = [
    [`${base}/online`, (topic, p) => {
      const s = p.toString().trim();
      if (s !== 'true' && s !== 'false') return bad(topic, p, 'an online flag that is neither true nor false');
      socket.reportOnline(s === 'true');
      if (s === 'true') askUpdate();
    }],
    [relay, (topic, p) => {
      const s = p.toString().trim();
      // overpower means the relay tripped off
      if (s === 'on' || s === 'off' || s === 'overpower') socket.reportSwitch(s === 'on');
      else bad(topic, p, 'a relay state that is not on/off/overpower');
    }],
    [`${relay}/power`, (topic, p) => {
      const w = num(p.toString());
      if (w === undefined) return bad(topic, p, 'a power value that is not a number');
      socket.reportPower(w);
    }],
    [`${relay}/energy`, (topic, p) => {
      const wm = num(p.toString());
      if (wm === undefined || wm < 0) return bad(topic, p, 'an energy counter that is not a non-negative number');
      socket.reportEnergy(wattMinutesToWh(wm));
    }],
  ];
  const unsubscribe: (() => void)[] = [];
  return {
    devices: [socket.device],
    async start() {
      for (const [f, h] of handlers) unsubscribe.push(mqtt.subscribe(f, h));
      socket.start();
      askUpdate();
    },
    async stop() {
      for (const u of unsubscribe.splice(0)) u();
      await socket.stop();
    },
  };
}

function gen2(ctx: AdapterContext, config: ShellyConfig, mqtt: MqttTransport) {
  const prefix = config.topic;
  const component = `switch:${config.relay}`;
  const rpc = new ShellyRpc(mqtt, prefix, shellyRpcSource(ctx.site.id, config.id), ctx, config.confirm_timeout_s * 1000);
  // counts what the device told us unasked, so a GetStatus answer older than that is dropped
  let news = 0;
  const socket = new SocketDevice(ctx, config, 'shelly', mqtt, async (on) => {
    await rpc.call('Switch.Set', { id: config.relay, on });
    news++;
    // the answer is the confirmation (its result only says was_on)
    socket.reportSwitch(on);
  });
  const apply = (status: unknown) => {
    news++;
    const s = gen2SwitchStatus(status);
    if (!s) return;
    if (s.on !== undefined) socket.reportSwitch(s.on);
    if (s.powerW !== undefined || s.totalWh !== undefined) socket.reportMeter(s.powerW, s.totalWh);
  };
  const refresh = () => {
    const asked = news;
    void rpc.call('Shelly.GetStatus').then(
      (result) => {
        const status = (result as Record<string, unknown> | undefined)?.[component];
        if (status === undefined) ctx.log.warn({ component }, `the device has no ${component}; check "relay"`);
        else if (news === asked) apply(status);
      },
      (err: Error) => ctx.log.debug({ err: err.message }, 'Shelly.GetStatus failed'),
    );
  };
  const handlers: [string, (topic: string, p: Buffer) => void][] = [
    [`${prefix}/online`, (topic, p) => {
      const s = p.toString().trim();
      if (s !== 'true' && s !== 'false') return ctx.log.warn({ topic, payload: s.slice(0, 50) }, 'ignored an online flag that is neither true nor false');
      socket.reportOnline(s === 'true');
      if (s === 'true') refresh();
    }],
    [`${prefix}/events/rpc`, (topic, p) => {
      const msg = parseJson(ctx, topic, p);
      if (!msg) return;
      if (msg.method !== 'NotifyStatus' && msg.method !== 'NotifyFullStatus') return;
      const params = msg.params as Record<string, unknown> | undefined;
      if (params?.[component] !== undefined) apply(params[component]);
    }],
    [`${prefix}/status/${component}`, (topic, p) => {
      const msg = parseJson(ctx, topic, p);
      if (msg) apply(msg);
    }],
  ];
  const unsubscribe: (() => void)[] = [];
  return {
    devices: [socket.device],
    async start() {
      rpc.start();
      for (const [f, h] of handlers) unsubscribe.push(mqtt.subscribe(f, h));
      socket.start();
      refresh();
    },
    async stop() {
      for (const u of unsubscribe.splice(0)) u();
      rpc.stop();
      await socket.stop();
    },
  };
}
