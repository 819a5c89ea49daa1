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
import { EnergyRegister, num } from '../mqtt-socket/socket.js';
import { checkThermostat, settleSetpoint, thermalModelOf, ThermostatProperties, type ThermostatConfig } from '../thermostat-common/thermostat.js';
import { acquireClient, urlIssues, websocketUrl, type HaState } from './client.js';

const Entity = (pattern: string, description: string) => Type.String({ pattern, description });
const ENTITY = '^[a-z_]+\\.[a-z0-9_]+$';

const HaConfigSchema = Type.Object({
  url: Type.String({ description: 'Home Assistant address, e.g. http://homeassistant.local:8123' }),
  token: Type.String({ minLength: 10, description: 'A long-lived access token (Profile → Security), e.g. ${HA_TOKEN}' }),
  entity_id: Entity('^climate\\.[a-z0-9_]+$', 'The climate entity, e.g. climate.living_room'),
  power_entity: Type.Optional(Entity(ENTITY, 'Optional sensor of the unit’s electric power (W or kW)')),
  energy_entity: Type.Optional(Entity(ENTITY, 'Optional sensor of the unit’s energy (kWh or Wh, total_increasing)')),
  ...ThermostatProperties,
});
export type HaConfig = ThermostatConfig & Static<typeof HaConfigSchema>;

/** What a Home Assistant climate entity says, in homeflex's terms. */
export function climateState(s: HaState): ThermostatState & { haMode: string } {
  const a = s.attributes ?? {};
  const mode: HvacMode | undefined = s.state === 'heat' || s.state === 'cool' || s.state === 'off' || s.state === 'auto' ? s.state : s.state === 'heat_cool' ? 'auto' : undefined;
  const action = typeof a.hvac_action === 'string' ? a.hvac_action : undefined;
  return {
    haMode: s.state,
    temperatureC: num(a.current_temperature),
    setpointC: num(a.temperature) ?? undefined,
    mode,
    running: action === undefined ? undefined : action === 'heating' || action === 'cooling' || action === 'drying' || action === 'fan' || action === 'preheating' || action === 'defrosting',
  };
}

/** A power sensor's state in W (HA sensors may be in W or kW). */
export function sensorWatts(s: HaState): number | undefined {
  const v = num(s.state);
  if (v === undefined) return undefined;
  const unit = String(s.attributes?.unit_of_measurement ?? 'W');
  return unit === 'kW' ? v * 1000 : unit === 'MW' ? v * 1e6 : v;
}

/** An energy sensor's state in Wh (HA energy sensors are usually kWh). */
export function sensorWh(s: HaState): number | undefined {
  const v = num(s.state);
  if (v === undefined) return undefined;
  const unit = String(s.attributes?.unit_of_measurement ?? 'kWh');
  return unit === 'Wh' ? v : unit === 'MWh' ? v * 1e6 : v * 1000;
}

class HaMeter implements MeterCap {
  readonly channels = ['device' as const];
  reading?: MeterReading;
  last() {
    return this.reading;
  }
}

export const homeassistant = defineAdapter<HaConfig>({
  id: 'homeassistant',
  description: 'A climate entity of Home Assistant (any HVAC it integrates), over its WebSocket API',
  configSchema: configSchema(HaConfigSchema),
  check: (config) => {
    const issues = checkThermostat(config);
    issues.push(...urlIssues(config.url));
    return issues;
  },
  create(ctx, config) {
    const band = { minC: config.comfort.min_c, maxC: config.comfort.max_c };
    let climate: (ThermostatState & { haMode: string }) | undefined;
    let attributes: Record<string, unknown> = {};
    let entityState: string | undefined;
    let missing: string | undefined;
    const metered = config.power_entity !== undefined || config.energy_entity !== undefined;
    const meter = new HaMeter();
    const register = new EnergyRegister(ctx.store);
    // a state change of the climate entity is reported; each waiter checks what it expects
    const confirmations = new Confirmations(ctx.clock);
    let conn: ReturnType<typeof acquireClient> | undefined;
    let synced = false;
    const cleanups: (() => void)[] = [];

    const device: Device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter: 'homeassistant',
      circuit: config.circuit,
      available: false,
      error: 'connecting to Home Assistant',
      caps: {
        thermostat: {
          state: () => {
            if (!climate) return {};
            const { haMode: _haMode, ...rest } = climate;
            return rest;
          },
          band,
          model: thermalModelOf(config),
          setSetpoint: (c, m) => setSetpoint(c, m),
        },
        ...(metered ? { meter } : {}),
      },
    };

    const refresh = () => {
      const client = conn?.client;
      // after every (re)connect the states are read again before the device counts as available
      if (!client?.connected) synced = false;
      const error = client?.authError ?? (!client?.connected ? `not connected to Home Assistant${client?.lastError ? ` (${client.lastError})` : ''}` : !synced ? 'reading the states from Home Assistant' : missing ?? (entityState === 'unavailable' || entityState === 'unknown' ? `Home Assistant reports ${config.entity_id} as ${entityState}` : undefined));
      setAvailability(ctx, device, error, 'climate entity');
    };

    const applyClimate = (s: HaState) => {
      entityState = s.state;
      attributes = s.attributes ?? {};
      climate = climateState(s);
      confirmations.report();
    };
    const applySensor = (s: HaState) => {
      const reading: MeterReading = { ...(meter.reading ?? {}), time: ctx.clock.now(), channel: 'device' };
      if (s.entity_id === config.power_entity) {
        const w = sensorWatts(s);
        if (w === undefined) return;
        reading.powerW = w;
      } else {
        const wh = sensorWh(s);
        if (wh === undefined) return;
        reading.importWh = Math.round(register.update(wh, ctx.clock.now()).totalWh * 1000) / 1000;
      }
      meter.reading = reading;
      ctx.bus.emit('meter.reading', { deviceId: config.id, reading });
    };
    const apply = (s: HaState) => {
      if (s.entity_id === config.entity_id) applyClimate(s);
      else if (s.entity_id === config.power_entity || s.entity_id === config.energy_entity) applySensor(s);
    };

    async function setSetpoint(asked: number, m?: HvacMode): Promise<void> {
      const client = conn?.client;
      if (!client) throw retryableError('ha_offline', `${config.id}: not started`);
      if (!climate) throw retryableError('ha_no_state', `${config.id}: no state of ${config.entity_id} yet`);
      const modes = Array.isArray(attributes.hvac_modes) ? attributes.hvac_modes.map(String) : [];
      const haMode = m === undefined ? undefined : m === 'auto' && !modes.includes('auto') && modes.includes('heat_cool') ? 'heat_cool' : m;
      if (haMode !== undefined && modes.length && !modes.includes(haMode)) {
        throw permanentError('ha_mode', `${config.id}: ${config.entity_id} has no hvac_mode "${haMode}" (it has: ${modes.join(', ')})`);
      }
      const targetMode = haMode ?? climate.haMode;
      const limits = { min: num(attributes.min_temp), max: num(attributes.max_temp), step: num(attributes.target_temp_step) };
      let check: () => boolean;
      if (targetMode === 'off') {
        await client.callService('climate', 'set_hvac_mode', { hvac_mode: 'off' }, config.entity_id);
        check = () => climate?.haMode === 'off';
      } else {
        const c = settleSetpoint(asked, band, limits);
        let data: Record<string, unknown>;
        // heat_cool holds a range: the plan's setpoint is the edge on the side it works on, the band is the other
        if (targetMode === 'heat_cool') data = config.mode === 'cool' ? { target_temp_low: band.minC, target_temp_high: c } : { target_temp_low: c, target_temp_high: band.maxC };
        else data = { temperature: c };
        if (haMode !== undefined && haMode !== climate.haMode) data.hvac_mode = haMode;
        check = targetMode === 'heat_cool'
          ? () => climate?.haMode === targetMode && num(attributes.target_temp_low) === data.target_temp_low && num(attributes.target_temp_high) === data.target_temp_high
          : () => climate?.haMode === targetMode && climate?.setpointC === c;
        const confirmed = confirmations.expect(check, config.confirm_timeout_s * SECOND, () => retryableError('no_confirmation', `${config.id}: Home Assistant accepted ${JSON.stringify(data)} but ${config.entity_id} did not show it within ${config.confirm_timeout_s} s`));
        await client.callService('climate', 'set_temperature', data, config.entity_id);
        if (!check()) await confirmed;
        ctx.log.info({ ...data }, 'setpoint changed');
        return;
      }
      if (!check()) await confirmations.expect(check, config.confirm_timeout_s * SECOND, () => retryableError('no_confirmation', `${config.id}: ${config.entity_id} did not turn off within ${config.confirm_timeout_s} s`));
      ctx.log.info('turned off');
    }

    const readStates = async () => {
      const client = conn!.client;
      try {
        const states = await client.getStates();
        const byId = new Map(states.map((s) => [s.entity_id, s]));
        const wanted = [config.entity_id, config.power_entity, config.energy_entity].filter((x): x is string => x !== undefined);
        const absent = wanted.filter((id) => !byId.has(id));
        // without the climate entity there is no thermostat; without a sensor only the meter is missing
        missing = absent.includes(config.entity_id) ? `Home Assistant has no entity ${config.entity_id}` : undefined;
        if (absent.length) ctx.log.error(`Home Assistant has no entity ${absent.join(', ')}`);
        for (const id of wanted) if (byId.has(id)) apply(byId.get(id)!);
        synced = true;
      } catch (err) {
        ctx.log.warn({ err: (err as Error).message }, 'could not read the states from Home Assistant');
      }
      refresh();
    };

    return {
      devices: [device],
      async start() {
        conn = acquireClient(websocketUrl(config.url), config.token, ctx.log);
        const client = conn.client;
        cleanups.push(
          client.onConnected(() => void readStates()),
          client.onStatus(refresh),
          client.subscribeEvents('state_changed', (event) => {
            const data = event.data as { entity_id?: string; new_state?: HaState | null };
            if (!data.new_state || !data.entity_id) return;
            if (data.entity_id !== config.entity_id && data.entity_id !== config.power_entity && data.entity_id !== config.energy_entity) return;
            apply(data.new_state);
            refresh();
          }),
        );
        if (client.connected) void readStates();
      },
      async stop() {
        for (const c of cleanups.splice(0)) c();
        await register.save();
        await conn?.release();
      },
    };
  },
});
