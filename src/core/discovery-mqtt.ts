import type { MqttTransport } from '../api/index.js';
import type { FoundDevice } from './transports/index.js';

const json = (payload: Buffer): Record<string, unknown> | unknown[] | undefined => {
  try {
    const v = JSON.parse(payload.toString('utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};
const str = (v: unknown) => (typeof v === 'string' && v.length ? v : undefined);

/**
 * Listens on the site's MQTT broker for devices announcing themselves and reports those the site
 * file does not configure:
 * - Tasmota: `tasmota/discovery/<mac>/config` (retained; `t` topic, `dn` name, `md` module, `ft` full topic);
 * - Shelly Gen1: `shellies/announce` (`id`, `model`, `mac`, `ip`, `fw_ver`);
 * - Shelly Gen2+: `<id>/online` `true` (retained), where `<id>` is the device's default topic prefix (`shelly…-<mac>`);
 * - Zigbee2MQTT: `zigbee2mqtt/bridge/devices` (retained list): thermostats (a `climate` expose).
 * Returns the unsubscribe function.
 */
export function watchAnnouncements(mqtt: MqttTransport, report: (f: FoundDevice) => void): () => void {
  const offs = [
    mqtt.subscribe('tasmota/discovery/+/config', (_topic, payload) => {
      const c = json(payload) as Record<string, unknown> | undefined;
      const topic = str(c?.t);
      if (!c || !topic || Array.isArray(c)) return;
      const fullTopic = str(c.ft);
      report({
        source: 'tasmota',
        adapter: 'tasmota',
        key: topic,
        name: str((c.dn as unknown) ?? undefined) ?? (Array.isArray(c.fn) ? str(c.fn[0]) : undefined) ?? topic,
        details: { topic, module: str(c.md) ?? null, ip: str(c.ip) ?? null, mac: str(c.mac) ?? null, firmware: str(c.sw) ?? null },
        config: { topic, ...(fullTopic && fullTopic !== '%prefix%/%topic%/' ? { full_topic: fullTopic } : {}) },
      });
    }),
    mqtt.subscribe('shellies/announce', (_topic, payload) => {
      const a = json(payload) as Record<string, unknown> | undefined;
      const id = str(a?.id);
      if (!a || !id || Array.isArray(a)) return;
      report({ source: 'shelly', adapter: 'shelly', key: id, name: id, details: { model: str(a.model) ?? null, mac: str(a.mac) ?? null, ip: str(a.ip) ?? null, firmware: str(a.fw_ver) ?? null, generation: 1 }, config: { topic: id, generation: 1 } });
    }),
    mqtt.subscribe('+/online', (topic, payload) => {
      const prefix = topic.slice(0, -'/online'.length);
      if (!/^shelly[a-z0-9]*-[0-9a-fA-F]{6,12}$/i.test(prefix) || payload.toString() !== 'true') return;
      report({ source: 'shelly', adapter: 'shelly', key: prefix, name: prefix, details: { generation: 2 }, config: { topic: prefix, generation: 2 } });
    }),
    mqtt.subscribe('zigbee2mqtt/bridge/devices', (_topic, payload) => {
      const list = json(payload);
      if (!Array.isArray(list)) return;
      for (const d of list as Record<string, unknown>[]) {
        const name = str(d?.friendly_name);
        const def = d?.definition as { exposes?: { type?: string }[]; model?: string; vendor?: string; description?: string } | undefined;
        if (!name || d.type === 'Coordinator' || !def?.exposes?.some((e) => e?.type === 'climate')) continue;
        report({
          source: 'zigbee2mqtt',
          adapter: 'zigbee2mqtt',
          key: name,
          name,
          details: { ieee_address: str(d.ieee_address) ?? null, model: def.model ?? null, vendor: def.vendor ?? null, description: def.description ?? null },
          // a thermostat needs its comfort band: a common one to start with, changed in the dashboard or the file
          config: { friendly_name: name, comfort: { min_c: 19, max_c: 22 } },
        });
      }
    }),
  ];
  return () => offs.forEach((off) => off());
}
