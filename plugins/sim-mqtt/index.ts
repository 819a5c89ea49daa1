import { DateTime } from 'luxon';
import { definePlugin } from '../../src/api/index.js';
import { TasmotaSimulator } from '../../adapters/tasmota/simulator.js';
import { Z2mRoomSimulator } from '../../adapters/zigbee2mqtt/simulator.js';
import { HeatPumpSimulator } from '../../adapters/sg-ready/simulator.js';

/**
 * Simulated MQTT hardware for the demo: Tasmota sockets and Zigbee2MQTT air-conditioner
 * thermostats as real MQTT clients on a broker (normally the hub's embedded one), so the demo
 * drives the real `tasmota` and `zigbee2mqtt` adapters end to end without hardware.
 */
export interface SimMqttConfig {
  id: string;
  broker?: string;
  username?: string;
  password?: string;
  tasmota: { topic: string; rated_power_w: number; total_kwh: number }[];
  zigbee2mqtt: {
    name: string;
    r_k_per_kw: number;
    c_kwh_per_k: number;
    cop: number;
    max_electric_w: number;
    gains_w: number;
    outdoor_min_c: number;
    outdoor_max_c: number;
    initial_c: number;
    setpoint_c: number;
  }[];
  heatpump: { topic: string; power_w: number; cop: number; volume_l: number; initial_c: number; draw_kwh_per_day: number }[];
}

export const simMqtt = definePlugin<SimMqttConfig>({
  id: 'sim-mqtt',
  description: 'Simulated MQTT devices (Tasmota sockets, Zigbee2MQTT AC thermostats) for the demo',
  configSchema: {
    properties: {
      broker: { type: 'string', pattern: '^mqtts?://', description: 'Broker the simulated devices connect to (default: the hub’s embedded broker)' },
      username: { type: 'string' },
      password: { type: 'string' },
      tasmota: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['topic'],
          properties: {
            topic: { type: 'string', pattern: '^[^/+#]+$' },
            rated_power_w: { type: 'number', minimum: 0, default: 2000 },
            total_kwh: { type: 'number', minimum: 0, default: 0, description: 'Energy counter at start' },
          },
        },
      },
      heatpump: {
        type: 'array',
        default: [],
        description: 'SG-Ready heat pumps heating a hot-water tank, behind a Tasmota dual relay with a DS18B20 in the tank',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['topic'],
          properties: {
            topic: { type: 'string', pattern: '^[^/+#]+$' },
            power_w: { type: 'number', exclusiveMinimum: 0, default: 2000 },
            cop: { type: 'number', exclusiveMinimum: 0, default: 2.8 },
            volume_l: { type: 'number', exclusiveMinimum: 0, default: 200 },
            initial_c: { type: 'number', default: 48 },
            draw_kwh_per_day: { type: 'number', minimum: 0, default: 5.8 },
          },
        },
      },
      zigbee2mqtt: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', pattern: '^[^/+#]+$' },
            r_k_per_kw: { type: 'number', exclusiveMinimum: 0, default: 5 },
            c_kwh_per_k: { type: 'number', exclusiveMinimum: 0, default: 3 },
            cop: { type: 'number', exclusiveMinimum: 0, default: 3 },
            max_electric_w: { type: 'number', exclusiveMinimum: 0, default: 1200 },
            gains_w: { type: 'number', default: 400 },
            outdoor_min_c: { type: 'number', default: 22 },
            outdoor_max_c: { type: 'number', default: 33 },
            initial_c: { type: 'number', default: 25 },
            setpoint_c: { type: 'number', default: 24 },
          },
        },
      },
    },
  },
  create(ctx, config) {
    const now = () => ctx.clock.now();
    const outdoor = (min: number, max: number) => (t: number) => {
      const d = DateTime.fromMillis(t, { zone: ctx.site.timezone });
      const hour = d.hour + d.minute / 60;
      return (min + max) / 2 + ((max - min) / 2) * Math.cos(((hour - 15) / 24) * 2 * Math.PI);
    };
    const login = { username: config.username, password: config.password };
    const make = (url: string) => [
      ...config.tasmota.map((s) => new TasmotaSimulator({ url, topic: s.topic, ratedPowerW: s.rated_power_w, totalKwh: s.total_kwh, now, ...login })),
      ...config.zigbee2mqtt.map(
        (z) =>
          new Z2mRoomSimulator({
            url,
            ...login,
            name: z.name,
            rKPerKw: z.r_k_per_kw,
            cKwhPerK: z.c_kwh_per_k,
            cop: z.cop,
            maxElectricW: z.max_electric_w,
            gainsW: z.gains_w,
            outdoorC: outdoor(z.outdoor_min_c, z.outdoor_max_c),
            initialC: z.initial_c,
            coolingSetpointC: z.setpoint_c,
            now,
          }),
      ),
      ...config.heatpump.map(
        (h) =>
          new HeatPumpSimulator({
            url,
            ...login,
            topic: h.topic,
            powerW: h.power_w,
            cop: h.cop,
            volumeL: h.volume_l,
            initialC: h.initial_c,
            drawKwhPerDay: h.draw_kwh_per_day,
            now,
            utcOffsetH: () => DateTime.fromMillis(now(), { zone: ctx.site.timezone }).offset / 60,
          }),
      ),
    ];
    let sims: (TasmotaSimulator | Z2mRoomSimulator | HeatPumpSimulator)[] = [];
    let stopped = false;
    const launch = (url: string) => {
      if (stopped) return;
      sims = make(url);
      // the devices connect in the background, as real ones would; the adapters see them when they do
      for (const s of sims) void s.start().catch((err: Error) => ctx.log.warn({ err: err.message }, 'a simulated MQTT device could not connect'));
      ctx.log.info({ tasmota: config.tasmota.length, zigbee2mqtt: config.zigbee2mqtt.length, heatpump: config.heatpump.length, broker: url }, 'simulated MQTT devices started');
    };
    return {
      async start() {
        if (config.broker) return launch(config.broker);
        // without a broker URL, the devices use the hub's embedded broker (which may listen on a port chosen at start)
        const hubMqtt = ctx.transports.mqtt() as { embeddedBroker?: () => Promise<string | undefined> };
        const url = await hubMqtt.embeddedBroker?.();
        if (!url) throw new Error('sim-mqtt: give "broker", or set connections.mqtt.embedded so the simulated devices can use the embedded broker');
        launch(url);
      },
      async stop() {
        stopped = true;
        await Promise.all(sims.map((s) => s.stop()));
      },
    };
  },
});
