import { configSchema, defineAdapter, Enum, Type, type AdapterContext, type DeviceConfigBase, type MeterChannel, type MqttTransport, type Static } from '../../src/api/index.js';
import { GridMeter, type GridValues } from '../meter-common/grid-meter.js';
import { ShellyRpc } from './index.js';

export const ShellyEmConfigSchema = Type.Object({
  generation: Enum([1, 2], { description: '1 = Shelly 3EM / EM (shellies/<id>/emeter/<i>/…), 2 = Pro 3EM / Pro EM (RPC over MQTT)' }),
  topic: Type.String({ pattern: '^[^+#]+$', description: 'Gen1: the device id after shellies/ (e.g. shellyem3-485519D732F4); Gen2: the MQTT topic prefix (e.g. shellypro3em-a0dd6ca0c27c)' }),
  channel: Enum(['grid', 'device'], { default: 'grid', description: 'grid = it measures the supply (the site meter); device = a sub-meter of one load' }),
  /** Gen1: which `emeter/<i>` measure the supply (3EM: 0, 1, 2; EM: usually 0). Gen2 monophase: which `em1:<i>`. */
  meters: Type.Optional(
    Type.Array(Type.Integer({ minimum: 0, maximum: 5 }), {
      minItems: 1,
      maxItems: 3,
      uniqueItems: true,
      description: 'Gen1: emeter indices that measure the supply (default: every emeter the device publishes); Gen2 monophase (Pro EM): em1 ids (default 0)',
    }),
  ),
  poll_s: Type.Number({ minimum: 2, maximum: 3600, default: 10, description: 'Gen2: how often the hub asks EM.GetStatus / EMData.GetStatus besides the notifications' }),
  stale_after_s: Type.Number({ minimum: 5, maximum: 3600, default: 120, description: 'Unavailable after this long without a reading (Gen1 publishes every 30 s by default)' }),
});
export type ShellyEmConfig = DeviceConfigBase & Static<typeof ShellyEmConfigSchema>;

type Status = Record<string, Record<string, unknown>>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined);
const sum = (xs: (number | undefined)[]): number | undefined => (xs.some((x) => x === undefined) ? undefined : xs.reduce<number>((a, x) => a + x!, 0));

/**
 * Grid values from a Gen2+ status (`Shelly.GetStatus` result, or components merged from NotifyStatus):
 * a Pro 3EM in triphase mode has `em:0` (`a/b/c_act_power`, signed) and `emdata:0` (`total_act`,
 * `total_act_ret` in Wh); a Pro EM, or a Pro 3EM in monophase mode, has `em1:<i>` and `em1data:<i>`.
 */
export function gen2EmValues(status: Status, meters?: number[]): GridValues | undefined {
  const em = status['em:0'];
  if (em) {
    const phasesW = ['a', 'b', 'c'].map((p) => num(em[`${p}_act_power`]));
    const data = status['emdata:0'];
    return {
      powerW: num(em.total_act_power) ?? sum(phasesW),
      phasesW: phasesW.every((w) => w !== undefined) ? (phasesW as number[]) : undefined,
      importWh: num(data?.total_act),
      exportWh: num(data?.total_act_ret),
    };
  }
  const ids = meters ?? Object.keys(status).filter((k) => /^em1:\d+$/.test(k)).map((k) => Number(k.slice(4))).slice(0, 1);
  if (!ids.length || ids.some((i) => !status[`em1:${i}`])) return undefined;
  const phasesW = ids.map((i) => num(status[`em1:${i}`].act_power));
  return {
    powerW: sum(phasesW),
    phasesW: phasesW.every((w) => w !== undefined) ? (phasesW as number[]) : undefined,
    importWh: sum(ids.map((i) => num(status[`em1data:${i}`]?.total_act_energy))),
    exportWh: sum(ids.map((i) => num(status[`em1data:${i}`]?.total_act_ret_energy))),
  };
}

/** Grid values from a Gen1 3EM / EM status (`emeters[]`: `power` signed W, `total` and `total_returned` Wh). */
export function gen1EmValues(emeters: { power?: number; total?: number; total_returned?: number }[], meters: number[]): GridValues | undefined {
  const chosen = meters.map((i) => emeters[i]);
  if (chosen.some((e) => !e)) return undefined;
  const phasesW = chosen.map((e) => num(e.power));
  if (phasesW.some((w) => w === undefined)) return undefined;
  return { powerW: sum(phasesW), phasesW: phasesW as number[], importWh: sum(chosen.map((e) => num(e.total))), exportWh: sum(chosen.map((e) => num(e.total_returned))) };
}

export const shellyEm = defineAdapter<ShellyEmConfig>({
  id: 'shelly-em',
  needs: ['mqtt'],
  description: 'Shelly Pro 3EM, Pro EM (Gen2 RPC over MQTT), 3EM and EM (Gen1 MQTT topics): grid meter with net power per phase',
  configSchema: configSchema(ShellyEmConfigSchema),
  mqttClient: (config, site) => {
    if (config.generation === 1) {
      const base = `shellies/${config.topic}`;
      return { publish: [`${base}/#`, 'shellies/announce'], subscribe: [`${base}/#`, 'shellies/command'], commands: [`${base}/command`, 'shellies/command'] };
    }
    return { publish: [`${config.topic}/#`, `homeflex-${site.id}-${config.id}/rpc`], subscribe: [`${config.topic}/rpc`], commands: [`${config.topic}/rpc`] };
  },
  create(ctx, config) {
    const mqtt = ctx.transports.mqtt();
    const meter = new GridMeter(ctx, config, 'shelly-em', config.stale_after_s * 1000, config.channel as MeterChannel);
    return config.generation === 1 ? gen1(ctx, config, mqtt, meter) : gen2(ctx, config, mqtt, meter);
  },
});

const parse = (meter: GridMeter, topic: string, p: Buffer): Record<string, unknown> | undefined => {
  try {
    const v = JSON.parse(p.toString()) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  meter.fault('malformed', `ignored a payload on ${topic} that is not a JSON object`, { topic, payload: p.toString().slice(0, 80) });
  return undefined;
};

function gen2(ctx: AdapterContext, config: ShellyEmConfig, mqtt: MqttTransport, meter: GridMeter) {
  const prefix = config.topic;
  const rpc = new ShellyRpc(mqtt, prefix, `homeflex-${ctx.site.id}-${config.id}`, ctx, 5000);
  const status: Status = {};
  /** NotifyStatus carries only what changed: merged into what is known. */
  const merge = (components: Record<string, unknown>) => {
    let touched = false;
    for (const [k, v] of Object.entries(components)) {
      if (!/^(em|emdata|em1|em1data):\d+$/.test(k) || !v || typeof v !== 'object') continue;
      status[k] = { ...status[k], ...(v as Record<string, unknown>) };
      touched = true;
    }
    if (!touched) return;
    const values = gen2EmValues(status, config.meters);
    if (values?.powerW !== undefined) meter.report(values);
  };
  let monophase = false;
  const poll = async () => {
    try {
      if (!monophase) {
        const em = await rpc.call('EM.GetStatus', { id: 0 }).catch((err: Error) => {
          // a Pro EM, or a Pro 3EM in monophase mode, has no EM component: it answers -105 (not found)
          if (/RPC error/.test(err.message)) monophase = true;
          throw err;
        });
        const data = await rpc.call('EMData.GetStatus', { id: 0 }).catch(() => undefined);
        merge({ 'em:0': em, ...(data ? { 'emdata:0': data } : {}) });
      }
    } catch {
      // falls through to the monophase calls when the device said it has no em:0
    }
    if (monophase) {
      for (const i of config.meters ?? [0]) {
        const em1 = await rpc.call('EM1.GetStatus', { id: i }).catch((err: Error) => void ctx.log.debug({ err: err.message }, 'EM1.GetStatus failed'));
        const data = await rpc.call('EM1Data.GetStatus', { id: i }).catch(() => undefined);
        if (em1) merge({ [`em1:${i}`]: em1, ...(data ? { [`em1data:${i}`]: data } : {}) });
      }
    }
  };
  const handlers: [string, (topic: string, p: Buffer) => void][] = [
    [`${prefix}/events/rpc`, (topic, p) => {
      const msg = parse(meter, topic, p);
      if (!msg || (msg.method !== 'NotifyStatus' && msg.method !== 'NotifyFullStatus')) return;
      if (msg.params && typeof msg.params === 'object') merge(msg.params as Record<string, unknown>);
    }],
    // the "generic status update over MQTT" option publishes each component whole
    [`${prefix}/status/+`, (topic, p) => {
      const component = topic.slice(prefix.length + '/status/'.length);
      const msg = parse(meter, topic, p);
      if (msg) merge({ [component]: msg });
    }],
    [`${prefix}/online`, (_topic, p) => {
      if (p.toString().trim() === 'false') meter.linkDown('the device says it is offline (MQTT last will)');
      else void poll();
    }],
  ];
  const unsubscribe: (() => void)[] = [];
  let stopPoll: (() => void) | undefined;
  return {
    devices: [meter.device],
    async start() {
      rpc.start();
      for (const [f, h] of handlers) unsubscribe.push(mqtt.subscribe(f, h));
      meter.start();
      void poll();
      stopPoll = ctx.clock.every(config.poll_s * 1000, () => void poll());
    },
    async stop() {
      stopPoll?.();
      for (const u of unsubscribe.splice(0)) u();
      rpc.stop();
      meter.stop();
    },
  };
}

function gen1(ctx: AdapterContext, config: ShellyEmConfig, mqtt: MqttTransport, meter: GridMeter) {
  const base = `shellies/${config.topic}`;
  // default: every emeter the device publishes (3 on a 3EM, 2 on an EM)
  const meters = () => config.meters ?? emeters.flatMap((e, i) => (e ? [i] : []));
  const emeters: { power?: number; total?: number; total_returned?: number }[] = [];
  let pending: NodeJS.Timeout | undefined;
  // the device publishes every value of every emeter in one burst: the reading is made once the burst is in
  const settle = () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      const values = gen1EmValues(emeters, meters());
      if (values) meter.report(values);
    }, 150);
  };
  const handlers: [string, (topic: string, p: Buffer) => void][] = [
    [`${base}/emeter/+/+`, (topic, p) => {
      const [, , , index, key] = topic.split('/');
      if (key !== 'power' && key !== 'total' && key !== 'total_returned') return;
      const i = Number(index);
      const v = num(p.toString());
      if (v === undefined) return meter.fault('malformed', `ignored ${topic} = "${p.toString().slice(0, 40)}": not a number`, { topic });
      emeters[i] = { ...emeters[i], [key]: v };
      if (!config.meters || config.meters.includes(i)) settle();
    }],
    [`${base}/online`, (_topic, p) => {
      if (p.toString().trim() === 'false') meter.linkDown('the device says it is offline (MQTT last will)');
    }],
  ];
  const unsubscribe: (() => void)[] = [];
  return {
    devices: [meter.device],
    async start() {
      for (const [f, h] of handlers) unsubscribe.push(mqtt.subscribe(f, h));
      meter.start();
      // ask for the current values now rather than at the next 30 s publication
      void mqtt.publish(`${base}/command`, 'update', { qos: 1 }).catch(() => undefined);
    },
    async stop() {
      clearTimeout(pending);
      for (const u of unsubscribe.splice(0)) u();
      meter.stop();
    },
  };
}
