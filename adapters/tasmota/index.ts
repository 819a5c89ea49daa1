import { configSchema, defineAdapter, Type, type AdapterContext, type Static } from '../../src/api/index.js';
import { SocketDevice, num, parseJson, SocketProperties, type SocketConfig } from '../mqtt-socket/socket.js';

const TasmotaConfigSchema = Type.Object({
  topic: Type.String({ pattern: '^[^/+#]+$', description: 'The device Topic, e.g. tasmota_6A1B2C' }),
  full_topic: Type.String({ default: '%prefix%/%topic%/', pattern: '%prefix%', description: 'The device FullTopic, as set in Tasmota' }),
  relay: Type.Integer({ minimum: 1, maximum: 32, default: 1, description: 'Which relay (POWER1…POWER32); 1 on single sockets' }),
  tele_period_s: Type.Integer({ minimum: 10, maximum: 3600, default: 30, description: 'TelePeriod the hub sets: seconds between energy reports' }),
  ...SocketProperties,
});
export type TasmotaConfig = SocketConfig & Static<typeof TasmotaConfigSchema>;

/** The three topic roots of a Tasmota device under its FullTopic (default `%prefix%/%topic%/`). */
export function tasmotaTopics(config: Pick<TasmotaConfig, 'topic' | 'full_topic'>) {
  const root = (prefix: string) => {
    const t = config.full_topic.replace('%prefix%', prefix).replace('%topic%', config.topic);
    return t.endsWith('/') ? t.slice(0, -1) : t;
  };
  return { cmnd: root('cmnd'), stat: root('stat'), tele: root('tele') };
}

/** `ON`/`OFF` (any case; also `1`/`0`) to a boolean, anything else undefined. */
const onOff = (v: unknown): boolean | undefined => {
  const s = String(v).trim().toUpperCase();
  return s === 'ON' || s === '1' ? true : s === 'OFF' || s === '0' ? false : undefined;
};

/**
 * The values of one Tasmota ENERGY object (tele/SENSOR, stat/STATUS10 StatusSNS): `Total` kWh as
 * Wh and `Power` W. Multi-channel meters send arrays; `relay` picks the channel.
 */
export function tasmotaEnergy(energy: unknown, relay = 1): { powerW?: number; totalWh?: number } | undefined {
  if (!energy || typeof energy !== 'object') return undefined;
  const e = energy as Record<string, unknown>;
  const pick = (v: unknown) => (Array.isArray(v) ? v[relay - 1] : v);
  const totalKwh = num(pick(e.Total));
  return { powerW: num(pick(e.Power)), totalWh: totalKwh === undefined ? undefined : Math.round(totalKwh * 1e6) / 1e3 };
}

export const tasmota = defineAdapter<TasmotaConfig>({
  id: 'tasmota',
  needs: ['mqtt'],
  description: 'Tasmota smart socket over MQTT: switch and energy meter',
  configSchema: configSchema(TasmotaConfigSchema),
  check: (config) => (config.full_topic !== undefined && !config.full_topic.includes('%topic%') ? [{ path: ['full_topic'], message: 'must contain %topic%' }] : []),
  // a Tasmota also listens on its group topic (default tasmotas): a command there reaches every socket
  mqttClient: (config) => {
    const own = tasmotaTopics(config);
    const group = tasmotaTopics({ ...config, topic: 'tasmotas' });
    const commands = [`${own.cmnd}/#`, `${group.cmnd}/#`];
    return { publish: [`${own.stat}/#`, `${own.tele}/#`], subscribe: commands, commands };
  },
  create(ctx: AdapterContext, config) {
    const mqtt = ctx.transports.mqtt();
    const topics = tasmotaTopics(config);
    // POWER and POWER1 are the same relay on single-relay devices; results use either name
    const powerKeys = config.relay === 1 ? ['POWER', 'POWER1'] : [`POWER${config.relay}`];
    const cmndPower = config.relay === 1 ? 'POWER' : `POWER${config.relay}`;
    const socket = new SocketDevice(ctx, config, 'tasmota', mqtt, (on) => mqtt.publish(`${topics.cmnd}/${cmndPower}`, on ? 'ON' : 'OFF', { qos: 1 }));

    const query = () => {
      void Promise.all([
        mqtt.publish(`${topics.cmnd}/TelePeriod`, String(config.tele_period_s), { qos: 1 }),
        mqtt.publish(`${topics.cmnd}/${cmndPower}`, '', { qos: 1 }),
        mqtt.publish(`${topics.cmnd}/STATUS`, '10', { qos: 1 }),
      ]).catch((err: unknown) => ctx.log.debug({ err: (err as Error).message }, 'could not query the socket'));
    };
    const switchFrom = (obj: Record<string, unknown>) => {
      for (const k of powerKeys) {
        const on = onOff(obj[k]);
        if (on !== undefined) return socket.reportSwitch(on);
      }
    };
    const meterFrom = (energy: unknown, topic: string) => {
      const e = tasmotaEnergy(energy, config.relay);
      if (!e) return ctx.log.warn({ topic }, 'ignored a sensor message without an ENERGY object');
      socket.reportMeter(e.powerW, e.totalWh);
    };

    const handlers: [string, (topic: string, payload: Buffer) => void][] = [
      [`${topics.tele}/LWT`, (topic, p) => {
        const s = p.toString().trim();
        if (s !== 'Online' && s !== 'Offline') return ctx.log.warn({ topic, payload: s.slice(0, 50) }, 'ignored an LWT that is neither Online nor Offline');
        socket.reportOnline(s === 'Online');
        if (s === 'Online') query();
      }],
      [`${topics.stat}/RESULT`, (topic, p) => {
        const obj = parseJson(ctx, topic, p);
        if (obj) switchFrom(obj);
      }],
      [`${topics.stat}/${powerKeys[0]}`, (topic, p) => {
        const on = onOff(p.toString());
        if (on === undefined) return ctx.log.warn({ topic, payload: p.toString().slice(0, 50) }, 'ignored a POWER state that is neither ON nor OFF');
        socket.reportSwitch(on);
      }],
      [`${topics.tele}/STATE`, (topic, p) => {
        const obj = parseJson(ctx, topic, p);
        if (obj) switchFrom(obj);
      }],
      [`${topics.tele}/SENSOR`, (topic, p) => {
        const obj = parseJson(ctx, topic, p);
        if (obj) meterFrom(obj.ENERGY, topic);
      }],
      [`${topics.stat}/STATUS10`, (topic, p) => {
        const obj = parseJson(ctx, topic, p);
        if (obj) meterFrom((obj.StatusSNS as Record<string, unknown> | undefined)?.ENERGY, topic);
      }],
    ];
    const unsubscribe: (() => void)[] = [];
    return {
      devices: [socket.device],
      async start() {
        for (const [filter, handler] of handlers) unsubscribe.push(mqtt.subscribe(filter, handler));
        socket.start();
        // a device already online (retained LWT) answers these at once
        query();
      },
      async stop() {
        for (const u of unsubscribe.splice(0)) u();
        await socket.stop();
      },
    };
  },
});
