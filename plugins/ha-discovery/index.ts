import { DateTime } from 'luxon';
import {
  definePlugin,
  hasCap,
  type DeepReadonly,
  type Device,
  type Direction,
  type PlannedDevice as ApiPlannedDevice,
  type PriceSlot,
  type MqttTransport,
  type PluginContext,
  type SiteInfo,
  type TimeWindow,
} from '../../src/api/index.js';

/**
 * Home Assistant MQTT discovery: homeflex's own entities appear in Home Assistant by themselves.
 * Retained configs on `<prefix>/<component>/<node>/<object>/config`, states as JSON on
 * `homeflex/<site>/…`, availability from the hub's last will (`homeflex/<site>/status`) and each
 * device's own availability; everything published again when Home Assistant announces itself
 * (`<prefix>/status` = `online`) or the hub reconnects; configs of entities that no longer exist
 * are removed with an empty retained message.
 */

export interface HaDiscoveryConfig {
  id: string;
  discovery_prefix: string;
  node_id?: string;
  state_interval_s: number;
}

/** A device's part of the plan, as much as the plugin reads of it. */
export type PlannedDevice = DeepReadonly<ApiPlannedDevice>;

/** A device's planned action in slot `k`, in words Home Assistant can show: "charge 3.2 kW", "hold", "on", "setpoint 23.5 °C". */
export function actionAt(dp: PlannedDevice, k: number): string {
  const w = dp.powerW[k] ?? 0;
  const kw = `${(Math.abs(w) / 1000).toFixed(1)} kW`;
  switch (dp.kind) {
    case 'battery': {
      const mode = dp.modes?.[k] ?? (w > 1 ? 'charge' : w < -1 ? 'discharge' : 'hold');
      return mode === 'charge' || mode === 'discharge' ? `${mode} ${kw}` : mode;
    }
    case 'ev':
      return Math.abs(w) < 1 ? 'pause' : `charge ${kw}`;
    case 'hvac':
      return dp.setpointC?.[k] !== undefined ? `setpoint ${dp.setpointC[k].toFixed(1)} °C` : Math.abs(w) < 1 ? 'off' : `run ${kw}`;
    case 'load':
      return (dp.on?.[k] ?? Math.abs(w) >= 1) ? 'on' : 'off';
    default:
      return Math.abs(w) < 1 ? 'idle' : kw;
  }
}

/** The action now and the next different one with its start, or nulls when the plan does not say. */
export function planActions(dp: PlannedDevice | undefined, slots: readonly { readonly start: number; readonly end: number }[], now: number): { now: string | null; next: string | null; nextAt: number | null } {
  const k = slots.findIndex((s) => s.start <= now && now < s.end);
  if (!dp || k < 0) return { now: null, next: null, nextAt: null };
  const current = actionAt(dp, k);
  for (let j = k + 1; j < slots.length; j++) {
    const a = actionAt(dp, j);
    if (a !== current) return { now: current, next: a, nextAt: slots[j].start };
  }
  return { now: current, next: null, nextAt: null };
}

/** An MQTT discovery id part: letters, digits, `_` and `-` only. */
export const discoveryId = (s: string) => s.replace(/[^a-zA-Z0-9_-]/g, '_');

export interface DiscoveryMessage {
  topic: string;
  config: Record<string, unknown>;
}

interface Topics {
  hubStatus: string;
  siteState: string;
  deviceState: (id: string) => string;
  deviceAvailability: (id: string) => string;
  switchCommand: (id: string) => string;
}

export const topicsFor = (siteId: string): Topics => {
  const base = `homeflex/${siteId}`;
  return {
    hubStatus: `${base}/status`,
    siteState: `${base}/site/state`,
    deviceState: (id) => `${base}/device/${id}/state`,
    deviceAvailability: (id) => `${base}/device/${id}/availability`,
    switchCommand: (id) => `${base}/device/${id}/switch/set`,
  };
};

/** The devices that take part in the plan (they get a "planned power" entity). */
const controllable = (d: Device) => hasCap(d, 'switch') || hasCap(d, 'thermostat') || hasCap(d, 'charger') || hasCap(d, 'storage');

/** Every discovery config for the site and its devices. Pure: the tests check it against Home Assistant's rules. */
export function discoveryMessages(site: SiteInfo, devices: readonly Device[], options: { prefix: string; node: string; hasTariffs: boolean; hasMetering: boolean; hasControl: boolean }): DiscoveryMessage[] {
  const t = topicsFor(site.id);
  const node = options.node;
  const out: DiscoveryMessage[] = [];
  const hubDevice = { identifiers: [node], name: `homeflex ${site.name}`, manufacturer: 'homeflex', model: 'Home-energy hub' };
  const siteEntity = (component: string, object: string, name: string, extra: Record<string, unknown>) =>
    out.push({
      topic: `${options.prefix}/${component}/${node}/${object}/config`,
      config: { name, unique_id: `${node}_${object}`, state_topic: t.siteState, availability_topic: t.hubStatus, device: hubDevice, ...extra },
    });
  const money = { device_class: 'monetary', state_class: 'total', unit_of_measurement: site.currency };
  const price = { unit_of_measurement: `${site.currency}/kWh`, state_class: 'measurement', suggested_display_precision: 4 };
  if (options.hasTariffs) {
    siteEntity('sensor', 'import_price', 'Import price', { ...price, value_template: '{{ value_json.import_price }}', icon: 'mdi:transmission-tower-import' });
    siteEntity('sensor', 'export_price', 'Export price', { ...price, value_template: '{{ value_json.export_price }}', icon: 'mdi:transmission-tower-export' });
    siteEntity('sensor', 'next_cheap_start', 'Next cheap period', { device_class: 'timestamp', value_template: '{{ value_json.next_cheap_start }}' });
    siteEntity('sensor', 'import_price_next', 'Import price next', { ...price, value_template: '{{ value_json.import_price_next }}', icon: 'mdi:transmission-tower-import' });
    siteEntity('sensor', 'export_price_next', 'Export price next', { ...price, value_template: '{{ value_json.export_price_next }}', icon: 'mdi:transmission-tower-export' });
    siteEntity('sensor', 'price_next_start', 'Next price from', { device_class: 'timestamp', value_template: '{{ value_json.price_next_start }}' });
  }
  if (options.hasMetering) {
    siteEntity('sensor', 'cost_today', 'Cost today', { ...money, value_template: '{{ value_json.cost_today }}', last_reset_value_template: '{{ value_json.day_start }}' });
    siteEntity('sensor', 'cost_month', 'Cost this month', { ...money, value_template: '{{ value_json.cost_month }}', last_reset_value_template: '{{ value_json.month_start }}' });
    siteEntity('sensor', 'savings_month', 'Savings this month', { ...money, value_template: '{{ value_json.savings_month }}', last_reset_value_template: '{{ value_json.month_start }}' });
    siteEntity('sensor', 'savings_today', 'Savings today', { ...money, value_template: '{{ value_json.savings_today }}', last_reset_value_template: '{{ value_json.day_start }}' });
  }
  if (options.hasControl) {
    siteEntity('sensor', 'plan_status', 'Plan status', { value_template: '{{ value_json.plan_status }}', icon: 'mdi:calendar-clock' });
    siteEntity('sensor', 'plan_cost', 'Planned cost (horizon)', { device_class: 'monetary', unit_of_measurement: site.currency, value_template: '{{ value_json.plan_cost }}' });
  }

  for (const d of devices) {
    const id = discoveryId(d.id);
    const device = { identifiers: [`${node}_${id}`], name: d.name, manufacturer: 'homeflex', model: d.adapter, via_device: node };
    const availability = [{ topic: t.hubStatus }, { topic: t.deviceAvailability(d.id) }];
    const entity = (component: string, object: string, name: string, extra: Record<string, unknown>) =>
      out.push({
        topic: `${options.prefix}/${component}/${node}/${id}_${object}/config`,
        config: { name, unique_id: `${node}_${id}_${object}`, state_topic: t.deviceState(d.id), availability, availability_mode: 'all', device, ...extra },
      });
    out.push({
      topic: `${options.prefix}/binary_sensor/${node}/${id}_connected/config`,
      config: {
        name: 'Connected', unique_id: `${node}_${id}_connected`, state_topic: t.deviceAvailability(d.id),
        payload_on: 'online', payload_off: 'offline', device_class: 'connectivity', entity_category: 'diagnostic', availability_topic: t.hubStatus, device,
      },
    });
    if (hasCap(d, 'meter')) {
      entity('sensor', 'power', 'Power', { device_class: 'power', state_class: 'measurement', unit_of_measurement: 'W', value_template: '{{ value_json.power_w }}' });
      entity('sensor', 'energy', 'Energy', { device_class: 'energy', state_class: 'total_increasing', unit_of_measurement: 'kWh', value_template: '{{ value_json.energy_kwh }}', suggested_display_precision: 3 });
    }
    if (hasCap(d, 'switch')) {
      entity('switch', 'switch', 'Switch', { command_topic: t.switchCommand(d.id), payload_on: 'ON', payload_off: 'OFF', state_on: 'ON', state_off: 'OFF', value_template: '{{ value_json.switch }}' });
    }
    if (hasCap(d, 'thermostat')) {
      entity('sensor', 'temperature', 'Temperature', { device_class: 'temperature', state_class: 'measurement', unit_of_measurement: '°C', value_template: '{{ value_json.temperature_c }}' });
      entity('sensor', 'setpoint', 'Setpoint', { device_class: 'temperature', unit_of_measurement: '°C', value_template: '{{ value_json.setpoint_c }}' });
    }
    if (hasCap(d, 'storage') || hasCap(d, 'charger')) {
      // a battery's SoC, or the car's as its charger reports it
      entity('sensor', 'soc', hasCap(d, 'storage') ? 'State of charge' : 'Car state of charge', { device_class: 'battery', state_class: 'measurement', unit_of_measurement: '%', value_template: '{{ value_json.soc_pct }}' });
    }
    if (options.hasControl && controllable(d)) {
      entity('sensor', 'planned_power', 'Planned power', { device_class: 'power', state_class: 'measurement', unit_of_measurement: 'W', value_template: '{{ value_json.planned_power_w }}' });
      entity('sensor', 'plan_action', 'Planned action now', { value_template: '{{ value_json.plan_action }}', icon: 'mdi:calendar-clock' });
      entity('sensor', 'next_action', 'Next planned action', { value_template: '{{ value_json.next_action }}', icon: 'mdi:calendar-arrow-right' });
      entity('sensor', 'next_action_at', 'Next planned action at', { device_class: 'timestamp', value_template: '{{ value_json.next_action_at }}' });
    }
  }
  return out;
}

/** The import series' next cheap period: the first slot from now at or below min + ¼·(max − min) of the next 24 h. */
export function nextCheapStart(series: readonly PriceSlot[], now: number): number | undefined {
  const ahead = series.filter((s) => s.end > now && s.start < now + 86_400_000);
  if (!ahead.length) return undefined;
  const rates = ahead.map((s) => s.rate);
  const min = Math.min(...rates);
  const max = Math.max(...rates);
  const threshold = min + 0.25 * (max - min);
  const slot = ahead.find((s) => s.rate <= threshold + 1e-12);
  return slot ? Math.max(slot.start, now) : undefined;
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

export const haDiscovery = definePlugin<HaDiscoveryConfig>({
  id: 'ha-discovery',
  description: 'Home Assistant MQTT discovery: homeflex’s prices, plan, costs and devices as Home Assistant entities',
  configSchema: {
    properties: {
      discovery_prefix: { type: 'string', default: 'homeassistant', pattern: '^[^+#]+$', description: 'Home Assistant’s discovery prefix' },
      node_id: { type: 'string', pattern: '^[a-zA-Z0-9_-]+$', description: 'Node id in the discovery topics (default homeflex_<site id>)' },
      state_interval_s: { type: 'number', minimum: 1, maximum: 3600, default: 30, description: 'How often states are published (s)' },
    },
  },
  create(ctx: PluginContext, config) {
    const hub = ctx.hub;
    const site = ctx.site;
    const node = config.node_id ?? discoveryId(`homeflex_${site.id}`);
    const prefix = config.discovery_prefix;
    const topics = topicsFor(site.id);
    let mqtt: MqttTransport;
    const unsubscribe: (() => void)[] = [];
    let lastAvailability = new Map<string, string>();

    const publish = (topic: string, payload: string, retain: boolean) =>
      mqtt.publish(topic, payload, { retain, qos: 1 }).catch((err: Error) => ctx.log.debug({ topic, err: err.message }, 'could not publish'));

    const configs = () =>
      discoveryMessages(site, hub.devices.list(), { prefix, node, hasTariffs: !!hub.prices, hasMetering: !!hub.costs, hasControl: !!hub.plan });

    const announce = async () => {
      const messages = configs();
      const now = new Set(messages.map((m) => m.topic));
      // entities published by an earlier run that no longer exist: an empty retained config removes them
      const before = ctx.store.get<string[]>('config_topics') ?? [];
      await Promise.all(before.filter((t) => !now.has(t)).map((t) => publish(t, '', true)));
      await Promise.all(messages.map((m) => publish(m.topic, JSON.stringify(m.config), true)));
      lastAvailability = new Map();
      await publishStates();
      // remembered for the next start's clean-up; the states need not wait for the disk
      await ctx.store.set('config_topics', [...now]);
      ctx.log.info({ entities: messages.length }, 'published Home Assistant discovery');
    };

    const plannedPower = (deviceId: string): number | null => {
      const latest = hub.plan?.latest();
      if (!latest) return null;
      const now = ctx.clock.now();
      const k = latest.slots.findIndex((s) => s.start <= now && now < s.end);
      const dp = latest.devices.find((x) => x.id === deviceId);
      return k === -1 || !dp ? null : round(dp.powerW[k], 1);
    };

    const deviceState = (d: Device) => {
      const s: Record<string, unknown> = {};
      const reading = d.caps.meter?.last();
      if (d.caps.meter) {
        s.power_w = reading?.powerW ?? null;
        s.energy_kwh = reading?.importWh === undefined ? null : round(reading.importWh / 1000, 4);
      }
      if (d.caps.switch) {
        const on = d.caps.switch.isOn();
        s.switch = on === undefined ? null : on ? 'ON' : 'OFF';
      }
      if (d.caps.thermostat) {
        const ts = d.caps.thermostat.state();
        s.temperature_c = ts.temperatureC ?? null;
        s.setpoint_c = ts.setpointC ?? null;
        s.mode = ts.mode ?? null;
      }
      if (d.caps.storage) s.soc_pct = d.caps.storage.state().socPct ?? null;
      else if (d.caps.charger) s.soc_pct = d.caps.charger.evSocPct() ?? null;
      if (controllable(d)) {
        s.planned_power_w = plannedPower(d.id);
        const latest = hub.plan?.latest();
        const a = planActions(latest?.devices.find((x) => x.id === d.id), latest?.slots ?? [], ctx.clock.now());
        s.plan_action = a.now;
        s.next_action = a.next;
        s.next_action_at = a.nextAt === null ? null : new Date(a.nextAt).toISOString();
      }
      return s;
    };

    const siteState = () => {
      const now = ctx.clock.now();
      const s: Record<string, unknown> = {};
      const local = DateTime.fromMillis(now, { zone: site.timezone });
      const dayStart = local.startOf('day');
      const monthStart = local.startOf('month');
      s.day_start = dayStart.toISO();
      s.month_start = monthStart.toISO();
      if (hub.prices) {
        const prices = hub.prices;
        const rateNow = (dir: Direction) => prices.series(dir, { start: now, end: now + 1 }).find((x) => x.start <= now && now < x.end)?.rate ?? null;
        s.import_price = rateNow('IMPORT');
        s.export_price = rateNow('EXPORT');
        // the price of the next slot (a different slot from the one in force now)
        const importAhead = prices.series('IMPORT', { start: now, end: now + 86_400_000 });
        const nextSlot = importAhead.find((x) => x.start > now);
        s.price_next_start = nextSlot ? new Date(nextSlot.start).toISOString() : null;
        s.import_price_next = nextSlot?.rate ?? null;
        s.export_price_next = nextSlot ? (prices.series('EXPORT', { start: nextSlot.start, end: nextSlot.start + 1 }).find((x) => x.start <= nextSlot.start && nextSlot.start < x.end)?.rate ?? null) : null;
        const cheap = nextCheapStart(importAhead, now);
        s.next_cheap_start = cheap === undefined ? null : new Date(cheap).toISOString();
      }
      if (hub.costs && hub.savings) {
        const m = { costs: hub.costs, savings: hub.savings };
        const net = (window: TimeWindow, aggregation: 'DAY' | 'MONTH') => {
          try {
            const imp = m.costs(site.id, { direction: 'IMPORT', aggregation, includeTariff: false, window }).total.tariff.value;
            const exp = m.costs(site.id, { direction: 'EXPORT', aggregation, includeTariff: false, window }).total.tariff.value;
            return round(imp - exp, 2);
          } catch (err) {
            ctx.log.debug({ err: (err as Error).message }, 'no cost figures yet');
            return null;
          }
        };
        s.cost_today = net({ start: dayStart.toMillis(), end: now }, 'DAY');
        s.cost_month = net({ start: monthStart.toMillis(), end: now }, 'MONTH');
        const saved = (window: TimeWindow) => {
          try {
            return round(m.savings(site.id, window).savings, 2);
          } catch {
            return null;
          }
        };
        s.savings_today = saved({ start: dayStart.toMillis(), end: now });
        s.savings_month = saved({ start: monthStart.toMillis(), end: now });
      }
      if (hub.plan) {
        const latest = hub.plan.latest();
        s.plan_status = latest ? `${latest.status}, valid until ${DateTime.fromMillis(latest.validUntil, { zone: site.timezone }).toFormat('HH:mm')}` : 'no plan yet';
        s.plan_cost = latest ? round(latest.cost ?? 0, 2) : null;
      }
      return s;
    };

    const publishAvailability = async (d: Device) => {
      const a = d.available ? 'online' : 'offline';
      if (lastAvailability.get(d.id) === a) return;
      lastAvailability.set(d.id, a);
      await publish(topics.deviceAvailability(d.id), a, true);
    };

    /** The site's state, or undefined (logged) when a part cannot give its figures. */
    const safeSiteState = () => {
      try {
        return siteState();
      } catch (err) {
        ctx.log.warn({ err }, 'could not make the site state for Home Assistant');
        return undefined;
      }
    };

    async function publishStates() {
      const site = safeSiteState();
      if (site) await publish(topics.siteState, JSON.stringify(site), true);
      for (const d of hub.devices.list()) {
        await publishAvailability(d);
        await publish(topics.deviceState(d.id), JSON.stringify(deviceState(d)), true);
      }
    }

    return {
      async start() {
        mqtt = ctx.transports.mqtt();
        unsubscribe.push(
          mqtt.subscribe(`${prefix}/status`, (_t, p) => {
            if (p.toString().trim() === 'online') void announce();
          }),
          // the transport says online on every (re)connect: a broker that lost its retained messages gets them again
          mqtt.subscribe(topics.hubStatus, (_t, p, retained) => {
            if (p.toString() === 'online' && !retained) void announce();
          }),
          mqtt.subscribe(`homeflex/${site.id}/device/+/switch/set`, (topic, p) => {
            const id = topic.split('/')[3];
            const d = hub.devices.get(id);
            const cmd = p.toString().trim().toUpperCase();
            if (!d?.caps.switch || (cmd !== 'ON' && cmd !== 'OFF')) return ctx.log.warn({ topic, payload: cmd.slice(0, 20) }, 'ignored a switch command (unknown device or payload not ON/OFF)');
            d.caps.switch.set(cmd === 'ON').then(
              () => publish(topics.deviceState(d.id), JSON.stringify(deviceState(d)), true),
              (err: Error) => ctx.log.warn({ device: d.id, err: err.message }, 'switch command from Home Assistant failed'),
            );
          }),
          ctx.bus.on('device.state', ({ deviceId }) => {
            const d = hub.devices.get(deviceId);
            if (!d) return;
            void publishAvailability(d).then(() => publish(topics.deviceState(d.id), JSON.stringify(deviceState(d)), true));
          }),
          ctx.bus.on('plan.updated', () => {
            const site = safeSiteState();
            if (site) void publish(topics.siteState, JSON.stringify(site), true);
          }),
          ctx.clock.every(config.state_interval_s * 1000, () => void publishStates()),
        );
        void announce();
      },
      async stop() {
        for (const u of unsubscribe.splice(0)) u();
      },
    };
  },
});
