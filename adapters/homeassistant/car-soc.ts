import { Type } from '@sinclair/typebox';
import { configSchema, type AdapterContext, type JsonSchema } from '../../src/api/index.js';
import { num } from '../mqtt-socket/socket.js';
import { acquireClient, urlIssues, websocketUrl, type HaState } from './client.js';
import { sensorWh } from './index.js';

/** A charger's car as Home Assistant knows it (any car integration): its state of charge and, optionally, its battery size. */
export interface CarSocConfig {
  soc_entity?: string;
  capacity_entity?: string;
  homeassistant?: { url: string; token: string };
}

const entity = (description: string) => Type.Optional(Type.String({ pattern: '^[a-z_]+\\.[a-z0-9_]+$', description }));

/** The keys a charger adapter adds to take its car's SoC from Home Assistant (TypeBox: they go into a TypeBox config schema as they are). */
export const CarSocProperties = {
  soc_entity: entity('Home Assistant entity with the car’s state of charge (%), e.g. sensor.id4_battery_level; used by soc_pct targets and fills (needs homeassistant)'),
  capacity_entity: entity('Home Assistant entity with the car’s usable battery size (kWh or Wh); else ev_capacity_wh'),
  homeassistant: Type.Optional(
    Type.Object(
      {
        url: Type.String({ description: 'Home Assistant address, e.g. http://homeassistant.local:8123' }),
        token: Type.String({ minLength: 10, description: 'A long-lived access token, e.g. ${HA_TOKEN}' }),
      },
      { additionalProperties: false, description: 'The Home Assistant instance that has soc_entity (one WebSocket connection per url + token, shared with the homeassistant adapters)' },
    ),
  ),
};

/** The same keys as plain JSON Schema, for adapters whose schema is written by hand. */
export const carSocProperties: Record<string, JsonSchema> = configSchema(Type.Object(CarSocProperties)).properties as Record<string, JsonSchema>;

/** Config problems of the car keys, for an adapter's `check`. */
export function carSocIssues(config: CarSocConfig): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  if ((config.soc_entity || config.capacity_entity) && !config.homeassistant) issues.push({ path: ['homeassistant'], message: 'soc_entity / capacity_entity need homeassistant: { url, token }' });
  if (config.capacity_entity && !config.soc_entity) issues.push({ path: ['capacity_entity'], message: 'is only used with soc_entity' });
  if (config.homeassistant) issues.push(...urlIssues(config.homeassistant.url).map((i) => ({ ...i, path: ['homeassistant', ...i.path] })));
  return issues;
}

/** A SoC state as %: a number from 0 to 100; `unavailable`, `unknown` or text is no value. */
export function socOf(s: HaState): number | undefined {
  const v = num(s.state);
  return v === undefined || v < 0 || v > 100 ? undefined : v;
}

/**
 * Follows a car's SoC (and battery size) entities in Home Assistant for a charger. The values are
 * the entities' last states; an entity that goes `unavailable` gives no SoC (the plan then treats
 * the car as one that reports none) and is logged once.
 */
export class CarSoc {
  private soc?: number;
  private capacity?: number;
  private conn?: ReturnType<typeof acquireClient>;
  private readonly cleanups: (() => void)[] = [];
  private told = new Set<string>();

  constructor(private readonly ctx: AdapterContext, private readonly config: CarSocConfig & { soc_entity: string; homeassistant: { url: string; token: string } }) {}

  /** Returns a follower when the config names a SoC entity, else undefined. */
  static of(ctx: AdapterContext, config: CarSocConfig): CarSoc | undefined {
    if (!config.soc_entity || !config.homeassistant) return undefined;
    return new CarSoc(ctx, config as CarSocConfig & { soc_entity: string; homeassistant: { url: string; token: string } });
  }

  socPct(): number | undefined {
    return this.soc;
  }

  capacityWh(): number | undefined {
    return this.capacity;
  }

  private apply(s: HaState) {
    if (s.entity_id === this.config.soc_entity) {
      this.soc = socOf(s);
      this.tell(s, this.soc === undefined);
      if (this.soc !== undefined) this.ctx.log.debug({ soc: this.soc }, `car SoC from ${s.entity_id}`);
    } else if (s.entity_id === this.config.capacity_entity) {
      const wh = sensorWh(s);
      this.capacity = wh !== undefined && wh > 0 ? wh : undefined;
      this.tell(s, this.capacity === undefined);
    }
  }

  /** Logs an entity without a usable value once, and once when it has one again. */
  private tell(s: HaState, bad: boolean) {
    if (bad && !this.told.has(s.entity_id)) {
      this.told.add(s.entity_id);
      this.ctx.log.warn(`Home Assistant's ${s.entity_id} = "${String(s.state).slice(0, 40)}" is no usable value; the car's state of charge is unknown until it is`);
    } else if (!bad && this.told.delete(s.entity_id)) this.ctx.log.info(`Home Assistant's ${s.entity_id} has a value again`);
  }

  start() {
    const ha = this.config.homeassistant;
    this.conn = acquireClient(websocketUrl(ha.url), ha.token, this.ctx.log);
    const client = this.conn.client;
    const wanted = [this.config.soc_entity, this.config.capacity_entity].filter((x): x is string => x !== undefined);
    const read = async () => {
      try {
        const states = await client.getStates();
        const byId = new Map(states.map((s) => [s.entity_id, s]));
        const absent = wanted.filter((id) => !byId.has(id));
        if (absent.length) this.ctx.log.error(`Home Assistant has no entity ${absent.join(', ')}`);
        for (const id of wanted) if (byId.has(id)) this.apply(byId.get(id)!);
      } catch (err) {
        this.ctx.log.warn({ err: (err as Error).message }, 'could not read the car SoC from Home Assistant');
      }
    };
    this.cleanups.push(
      client.onConnected(() => void read()),
      client.subscribeEvents('state_changed', (event) => {
        const data = event.data as { entity_id?: string; new_state?: HaState | null };
        if (!data.new_state || !data.entity_id || !wanted.includes(data.entity_id)) return;
        this.apply(data.new_state);
      }),
    );
    if (client.connected) void read();
  }

  async stop() {
    for (const c of this.cleanups.splice(0)) c();
    await this.conn?.release();
    this.conn = undefined;
  }
}
