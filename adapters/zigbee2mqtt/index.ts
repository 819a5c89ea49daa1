import {
  configSchema,
  Confirmations,
  SECOND,
  defineAdapter,
  Type,
  type Static,
  permanentError,
  retryableError,
  type Device,
  type HvacMode,
  type MeterCap,
  type MeterReading,
  type ThermostatState,
  setAvailability,
} from '../../src/api/index.js';
import { num, parseJson, EnergyRegister } from '../mqtt-socket/socket.js';
import { checkThermostat, settleSetpoint, thermalModelOf, ThermostatProperties, type ThermostatConfig } from '../thermostat-common/thermostat.js';

const Z2mConfigSchema = Type.Object({
  friendly_name: Type.Optional(Type.String({ minLength: 1, description: 'The device’s friendly name in Zigbee2MQTT (default: name, else id)' })),
  base_topic: Type.String({ default: 'zigbee2mqtt', pattern: '^[^+#]+$', description: 'Zigbee2MQTT base_topic' }),
  ...ThermostatProperties,
});
export type Z2mConfig = ThermostatConfig & Static<typeof Z2mConfigSchema>;

/** One numeric property of a Zigbee2MQTT expose, with its range. */
export interface NumericProp {
  property: string;
  min?: number;
  max?: number;
  step?: number;
  /** Zigbee2MQTT access bits: 1 published in state, 2 settable, 4 gettable. */
  access: number;
}

/** What a Zigbee2MQTT climate device can do, read from its `exposes`. */
export interface ClimateCapabilities {
  heatSetpoint?: NumericProp;
  coolSetpoint?: NumericProp;
  temperature?: NumericProp;
  systemModes: string[];
  runningState?: string;
  power?: NumericProp;
  /** kWh in Zigbee2MQTT. */
  energy?: NumericProp;
}

interface Expose {
  type?: string;
  property?: string;
  name?: string;
  access?: number;
  value_min?: number;
  value_max?: number;
  value_step?: number;
  values?: unknown[];
  features?: Expose[];
}

const numeric = (e: Expose): NumericProp => ({ property: e.property!, min: e.value_min, max: e.value_max, step: e.value_step, access: e.access ?? 1 });

/**
 * Finds `friendlyName` in the retained `zigbee2mqtt/bridge/devices` list and reads its climate
 * features. Throws a permanent error naming what is missing.
 */
export function climateCapabilities(bridgeDevices: unknown, friendlyName: string): ClimateCapabilities {
  if (!Array.isArray(bridgeDevices)) throw permanentError('z2m_devices', 'zigbee2mqtt/bridge/devices is not a list');
  const dev = bridgeDevices.find((d) => (d as { friendly_name?: unknown })?.friendly_name === friendlyName) as { definition?: { exposes?: Expose[] } } | undefined;
  if (!dev) {
    const names = bridgeDevices.map((d) => (d as { friendly_name?: string }).friendly_name).filter(Boolean);
    throw permanentError('z2m_unknown_device', `Zigbee2MQTT has no device named "${friendlyName}" (known: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})`);
  }
  const exposes = dev.definition?.exposes ?? [];
  const climate = exposes.find((e) => e.type === 'climate');
  if (!climate) throw permanentError('z2m_not_climate', `Zigbee2MQTT device "${friendlyName}" exposes no climate features (is it a thermostat?)`);
  const caps: ClimateCapabilities = { systemModes: [] };
  for (const f of climate.features ?? []) {
    if (!f.property) continue;
    if (f.property === 'occupied_heating_setpoint' || (f.property === 'current_heating_setpoint' && !caps.heatSetpoint)) caps.heatSetpoint = numeric(f);
    else if (f.property === 'occupied_cooling_setpoint') caps.coolSetpoint = numeric(f);
    else if (f.property === 'local_temperature') caps.temperature = numeric(f);
    else if (f.property === 'system_mode') caps.systemModes = (f.values ?? []).map(String);
    else if (f.property === 'running_state') caps.runningState = f.property;
  }
  // metering features sit beside the climate one, sometimes inside composite groups
  const walk = (list: Expose[]) => {
    for (const e of list) {
      if (e.features) walk(e.features);
      if (e.type === 'numeric' && e.property === 'power') caps.power = numeric(e);
      if (e.type === 'numeric' && e.property === 'energy') caps.energy = numeric(e);
    }
  };
  walk(exposes.filter((e) => e.type !== 'climate'));
  return caps;
}

export interface ClimateReading {
  state: ThermostatState;
  powerW?: number;
  energyKwh?: number;
  /** Values that were present but not believable, with why. */
  rejected: string[];
}

const HVAC_MODES: HvacMode[] = ['cool', 'heat', 'off', 'auto'];

/** Reads one `zigbee2mqtt/<name>` state message with the device's capabilities. */
export function parseClimateState(msg: Record<string, unknown>, caps: ClimateCapabilities, mode: 'heat' | 'cool'): ClimateReading {
  const rejected: string[] = [];
  const state: ThermostatState = {};
  const inRange = (p: NumericProp | undefined): number | undefined => {
    if (!p || !(p.property in msg)) return undefined;
    const v = num(msg[p.property]);
    if (v === undefined) {
      rejected.push(`${p.property} ${JSON.stringify(msg[p.property])} is not a number`);
      return undefined;
    }
    if ((p.min !== undefined && v < p.min) || (p.max !== undefined && v > p.max)) {
      rejected.push(`${p.property} ${v} is outside the device's range ${p.min ?? '−∞'}…${p.max ?? '∞'}`);
      return undefined;
    }
    return v;
  };
  // exposes often give no range: a reading outside what a room, a radiator or a meter can show is a garbled message
  const bounded = (p: NumericProp | undefined, lo: number, hi: number) => p && { ...p, min: Math.max(p.min ?? -Infinity, lo), max: Math.min(p.max ?? Infinity, hi) };
  state.temperatureC = inRange(bounded(caps.temperature ?? { property: 'local_temperature', access: 1 }, -50, 100));
  const sp = mode === 'cool' ? caps.coolSetpoint ?? caps.heatSetpoint : caps.heatSetpoint ?? caps.coolSetpoint;
  state.setpointC = inRange(sp);
  if ('system_mode' in msg) {
    const m = String(msg.system_mode);
    if ((HVAC_MODES as string[]).includes(m)) state.mode = m as HvacMode;
    else if (m === 'heat_cool') state.mode = 'auto';
  }
  if ('running_state' in msg) state.running = String(msg.running_state) !== 'idle';
  return { state, powerW: inRange(bounded(caps.power, -1e6, 1e6)), energyKwh: inRange(bounded(caps.energy, 0, 1e9)), rejected };
}

class ClimateMeter implements MeterCap {
  readonly channels = ['device' as const];
  reading?: MeterReading;
  last() {
    return this.reading;
  }
}

export const zigbee2mqtt = defineAdapter<Z2mConfig>({
  id: 'zigbee2mqtt',
  needs: ['mqtt'],
  description: 'Zigbee thermostat or TRV through Zigbee2MQTT: temperature, setpoint and mode',
  configSchema: configSchema(Z2mConfigSchema),
  check: checkThermostat,
  // the bridge is one MQTT client for all its devices: it publishes under base_topic, and only the hub sends this device's set/get
  mqttClient: (config) => {
    const topic = `${config.base_topic}/${config.friendly_name ?? config.name ?? config.id}`;
    return {
      publish: [`${config.base_topic}/#`],
      subscribe: [`${config.base_topic}/#`],
      commands: [`${topic}/set`, `${topic}/set/#`, `${topic}/get`, `${topic}/get/#`, `${config.base_topic}/bridge/request/#`],
    };
  },
  create(ctx, config) {
    const mqtt = ctx.transports.mqtt();
    const friendly = config.friendly_name ?? config.name ?? config.id;
    const topic = `${config.base_topic}/${friendly}`;
    const band = { minC: config.comfort.min_c, maxC: config.comfort.max_c };
    let caps: ClimateCapabilities | undefined;
    let capsError: string | undefined = 'waiting for zigbee2mqtt/bridge/devices';
    let state: ThermostatState = {};
    let online: boolean | undefined;
    let seenState = false;
    const meter = new ClimateMeter();
    const register = new EnergyRegister(ctx.store);
    const confirmations = new Confirmations<ThermostatState>(ctx.clock);
    const warned = new Set<string>();

    const device: Device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter: 'zigbee2mqtt',
      circuit: config.circuit,
      available: false,
      error: capsError,
      caps: {
        thermostat: {
          state: () => ({ ...state }),
          band,
          model: thermalModelOf(config),
          setSetpoint: (c, m) => setSetpoint(c, m),
        },
      },
    };

    const refresh = () => {
      const error = capsError ?? (!mqtt.connected ? 'the hub is not connected to the MQTT broker' : online === false ? 'Zigbee2MQTT says the device is offline' : !seenState ? 'no state from the device yet' : undefined);
      setAvailability(ctx, device, error, 'thermostat');
    };

    async function setSetpoint(asked: number, m?: HvacMode): Promise<void> {
      if (!caps) throw retryableError('z2m_no_capabilities', `${config.id}: ${capsError ?? 'capabilities unknown'}`);
      if (!mqtt.connected) throw retryableError('mqtt_offline', `${config.id}: the hub is not connected to the MQTT broker`);
      const payload: Record<string, unknown> = {};
      if (m !== undefined && m !== state.mode) {
        const wanted = m === 'auto' && !caps.systemModes.includes('auto') && caps.systemModes.includes('heat_cool') ? 'heat_cool' : m;
        if (!caps.systemModes.includes(wanted)) throw permanentError('z2m_mode', `${config.id}: the device has no system_mode "${m}" (it has: ${caps.systemModes.join(', ') || 'none'})`);
        payload.system_mode = wanted;
      }
      const effective = m ?? state.mode ?? config.mode;
      let want: number | undefined;
      if (effective !== 'off') {
        const prop = (effective === 'cool' || (effective === 'auto' && config.mode === 'cool')) ? caps.coolSetpoint : caps.heatSetpoint;
        if (!prop) throw permanentError('z2m_setpoint', `${config.id}: the device has no ${effective === 'cool' ? 'cooling' : 'heating'} setpoint`);
        want = settleSetpoint(asked, band, prop);
        payload[prop.property] = want;
      }
      const confirmed = confirmations.expect(
        (st) => (want === undefined || st.setpointC === want) && (payload.system_mode === undefined || st.mode === m),
        config.confirm_timeout_s * SECOND,
        () => retryableError('no_confirmation', `${config.id}: sent ${JSON.stringify(payload)}, but the device did not report it within ${config.confirm_timeout_s} s (sleepy devices report later)`),
      );
      await mqtt.publish(`${topic}/set`, JSON.stringify(payload), { qos: 1 });
      await confirmed;
      ctx.log.info({ setpointC: want, mode: m }, 'setpoint changed');
    }

    const onState = (t: string, p: Buffer) => {
      const msg = parseJson(ctx, t, p);
      if (!msg) return;
      if (!caps) return;
      const r = parseClimateState(msg, caps, config.mode);
      for (const why of r.rejected) {
        if (warned.has(why)) continue;
        warned.add(why);
        ctx.log.warn({ topic: t }, `ignored ${why}`);
      }
      state = { ...state, ...Object.fromEntries(Object.entries(r.state).filter(([, v]) => v !== undefined)) };
      seenState = true;
      if (online === undefined) online = true;
      confirmations.report(state);
      if (r.powerW !== undefined || r.energyKwh !== undefined) {
        const reading: MeterReading = { time: ctx.clock.now(), channel: 'device' };
        if (r.powerW !== undefined) reading.powerW = r.powerW;
        if (r.energyKwh !== undefined) reading.importWh = Math.round(register.update(r.energyKwh * 1000, ctx.clock.now()).totalWh * 1000) / 1000;
        else if (register.totalWh !== undefined) reading.importWh = register.totalWh;
        meter.reading = reading;
        ctx.bus.emit('meter.reading', { deviceId: config.id, reading });
      }
      refresh();
    };
    // a retained state that arrives before bridge/devices is read once the capabilities are known
    let pendingState: [string, Buffer] | undefined;

    const handlers: [string, (t: string, p: Buffer) => void][] = [
      [`${config.base_topic}/bridge/devices`, (t, p) => {
        let list: unknown;
        try {
          list = JSON.parse(p.toString());
        } catch {
          return ctx.log.warn({ topic: t }, 'ignored a malformed bridge/devices payload');
        }
        try {
          caps = climateCapabilities(list, friendly);
          capsError = undefined;
          if (caps.power || caps.energy) device.caps.meter ??= meter;
        } catch (err) {
          caps = undefined;
          if (capsError !== (err as Error).message) ctx.log.error((err as Error).message);
          capsError = (err as Error).message;
        }
        refresh();
        if (caps && pendingState) onState(...pendingState);
        pendingState = undefined;
        if (caps) {
          // ask for the values the device can be asked for (sleepy TRVs answer when they wake)
          const gettable = [caps.temperature, caps.heatSetpoint, caps.coolSetpoint].filter((x) => x && x.access & 4);
          if (gettable.length) void mqtt.publish(`${topic}/get`, JSON.stringify(Object.fromEntries(gettable.map((x) => [x!.property, '']))), { qos: 1 }).catch(() => undefined);
        }
      }],
      [topic, (t, p) => {
        if (!caps) pendingState = [t, p];
        else onState(t, p);
      }],
      [`${topic}/availability`, (t, p) => {
        const text = p.toString().trim();
        let s = text;
        if (text.startsWith('{')) s = String((parseJson(ctx, t, p) ?? {}).state ?? '');
        if (s !== 'online' && s !== 'offline') return ctx.log.warn({ topic: t, payload: text.slice(0, 50) }, 'ignored an availability that is neither online nor offline');
        online = s === 'online';
        refresh();
      }],
    ];
    const unsubscribe: (() => void)[] = [];
    let stopWatch: (() => void) | undefined;
    return {
      devices: [device],
      async start() {
        for (const [f, h] of handlers) unsubscribe.push(mqtt.subscribe(f, h));
        stopWatch = ctx.clock.every(2000, refresh);
      },
      async stop() {
        stopWatch?.();
        for (const u of unsubscribe.splice(0)) u();
        await register.save();
      },
    };
  },
});
