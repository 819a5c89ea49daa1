import { configSchema, defineAdapter, Enum, Type, type DeviceConfigBase, type MeterChannel, type Static } from '../../src/api/index.js';
import { GridMeter, type GridValues } from '../meter-common/grid-meter.js';
import { acquireClient, urlIssues, websocketUrl, type HaState } from './client.js';
import { sensorWatts, sensorWh } from './index.js';

const Entity = (description?: string) => Type.String({ pattern: '^[a-z_]+\\.[a-z0-9_]+$', ...(description ? { description } : {}) });

export const HaMeterConfigSchema = Type.Object({
  url: Type.String({ description: 'Home Assistant address, e.g. http://homeassistant.local:8123' }),
  token: Type.String({ minLength: 10, description: 'A long-lived access token (Profile → Security), e.g. ${HA_TOKEN}' }),
  channel: Enum(['grid', 'device'], { default: 'grid', description: 'grid = the sensors measure the grid connection (+ = import); device = one load' }),
  power_entity: Type.Optional(Entity('Net power sensor (W or kW), + = import unless invert_power')),
  phase_power_entities: Type.Optional(Type.Array(Entity(), { minItems: 1, maxItems: 3, description: 'Net power per phase L1, L2, L3 (W or kW); without power_entity their sum is the power' })),
  import_energy_entity: Type.Optional(Entity('Energy imported (kWh, Wh or MWh, total_increasing)')),
  export_energy_entity: Type.Optional(Entity('Energy exported (kWh, Wh or MWh, total_increasing)')),
  invert_power: Type.Boolean({ default: false, description: 'The power sensors count export as positive (many inverter integrations do)' }),
  stale_after_s: Type.Number({ minimum: 10, maximum: 86400, default: 600, description: 'Unavailable after this long without a state change (Home Assistant sends only changes)' }),
});
export type HaMeterConfig = DeviceConfigBase & Static<typeof HaMeterConfigSchema>;

/**
 * Any Home Assistant sensors as a meter: power (W or kW, one or per phase) and import / export energy
 * (kWh, Wh or MWh, `total_increasing`), so a meter only Home Assistant knows (a P1 reader, a clamp,
 * an inverter integration) becomes the site's grid meter or a sub-meter.
 */
export const homeassistantMeter = defineAdapter<HaMeterConfig>({
  id: 'homeassistant-meter',
  description: 'Home Assistant sensors (power, per-phase power, import/export energy) as the grid meter or a sub-meter, over its WebSocket API',
  configSchema: configSchema(HaMeterConfigSchema),
  check(config) {
    const issues = [];
    if (!config.power_entity && !config.phase_power_entities && !config.import_energy_entity) issues.push({ path: [], message: 'give at least power_entity, phase_power_entities or import_energy_entity' });
    issues.push(...urlIssues(config.url));
    return issues;
  },
  create(ctx, config) {
    const meter = new GridMeter(ctx, config, 'homeassistant-meter', config.stale_after_s * 1000, config.channel as MeterChannel);
    const phases = config.phase_power_entities ?? [];
    const wanted = [config.power_entity, ...phases, config.import_energy_entity, config.export_energy_entity].filter((x): x is string => x !== undefined);
    const states = new Map<string, number | undefined>();
    let conn: ReturnType<typeof acquireClient> | undefined;
    const cleanups: (() => void)[] = [];
    const sign = config.invert_power ? -1 : 1;

    const apply = (s: HaState) => {
      const isPower = s.entity_id === config.power_entity || phases.includes(s.entity_id);
      const v = isPower ? sensorWatts(s) : sensorWh(s);
      if (v === undefined && s.state !== 'unavailable' && s.state !== 'unknown') meter.fault(`state:${s.entity_id}`, `${s.entity_id} = "${String(s.state).slice(0, 40)}" is not a number; left out`);
      states.set(s.entity_id, v === undefined ? undefined : isPower ? sign * v : v);
    };
    const publish = () => {
      const phaseW = phases.map((e) => states.get(e));
      const values: GridValues = {
        powerW: config.power_entity ? states.get(config.power_entity) : phaseW.length && phaseW.every((w) => w !== undefined) ? phaseW.reduce((a, w) => a! + w!, 0) : undefined,
        phasesW: phaseW.length && phaseW.every((w) => w !== undefined) ? (phaseW as number[]) : undefined,
        importWh: config.import_energy_entity ? states.get(config.import_energy_entity) : undefined,
        exportWh: config.export_energy_entity ? states.get(config.export_energy_entity) : undefined,
      };
      if (values.powerW === undefined && values.importWh === undefined) return;
      meter.report(values);
    };
    const readStates = async () => {
      try {
        const all = await conn!.client.getStates();
        const byId = new Map(all.map((s) => [s.entity_id, s]));
        const absent = wanted.filter((id) => !byId.has(id));
        if (absent.length) ctx.log.error(`Home Assistant has no entity ${absent.join(', ')}`);
        for (const id of wanted) if (byId.has(id)) apply(byId.get(id)!);
        publish();
      } catch (err) {
        ctx.log.warn({ err: (err as Error).message }, 'could not read the states from Home Assistant');
      }
    };
    return {
      devices: [meter.device],
      async start() {
        meter.start();
        conn = acquireClient(websocketUrl(config.url), config.token, ctx.log);
        const client = conn.client;
        cleanups.push(
          client.onConnected(() => void readStates()),
          client.onStatus(() => {
            if (!client.connected) meter.linkDown(client.authError ?? `not connected to Home Assistant${client.lastError ? ` (${client.lastError})` : ''}`);
          }),
          client.subscribeEvents('state_changed', (event) => {
            const data = event.data as { entity_id?: string; new_state?: HaState | null };
            if (!data.new_state || !data.entity_id || !wanted.includes(data.entity_id)) return;
            apply(data.new_state);
            publish();
          }),
        );
        if (client.connected) void readStates();
      },
      async stop() {
        for (const c of cleanups.splice(0)) c();
        meter.stop();
        await conn?.release();
      },
    };
  },
});
