import { HomeflexError, type FoundDevice } from '../../../src/api/index.js';
import { decodeRaw, isNotImplemented } from '../codec.js';
import { discoverSunSpec, findModel, type DiscoveredModel, type RegisterReader, type SunSpecMap } from './discovery.js';

const INVERTER_MODELS = [101, 102, 103, 111, 112, 113];
const STORAGE_MODELS = [124, 802, 713];
const METER_MODELS = [201, 202, 203, 204, 211, 212, 213, 214];

/** What a SunSpec unit is, from the models it serves. */
export function sunspecRoles(map: SunSpecMap): ('inverter' | 'battery' | 'meter')[] {
  const has = (ids: number[]) => map.models.some((m) => ids.includes(m.id));
  return [...(has(INVERTER_MODELS) ? (['inverter'] as const) : []), ...(has(STORAGE_MODELS) ? (['battery'] as const) : []), ...(has(METER_MODELS) ? (['meter'] as const) : [])];
}

/** One point's value with its scale factor applied; undefined where the device says "not implemented". */
async function pointValue(read: RegisterReader, model: DiscoveredModel | undefined, name: string): Promise<number | undefined> {
  const p = model?.layout?.get(name);
  if (!model || !p || p.def.type === 'pad') return undefined;
  const raw = decodeRaw(p.def.type, await read(model.start + p.offset, p.def.size));
  if (isNotImplemented(p.def.type, raw)) return undefined;
  let exponent = 0;
  if (typeof p.sf === 'number') exponent = p.sf;
  else if (typeof p.sf === 'string') {
    const sf = model.layout!.get(p.sf);
    if (!sf || sf.def.type === 'pad') return undefined;
    const e = decodeRaw(sf.def.type, await read(model.start + sf.offset, sf.def.size));
    if (isNotImplemented(sf.def.type, e) || e < -10 || e > 10) return undefined;
    exponent = e;
  }
  return raw * 10 ** exponent;
}

/**
 * Looks for a SunSpec map at one unit of a connection and describes what answers there as the
 * `adapter: modbus, profile: sunspec` device the site file would need. Undefined when the unit answers
 * without a SunSpec marker; timeouts and a lost connection are thrown.
 */
export async function probeSunSpec(read: RegisterReader, connection: string, unit: number): Promise<FoundDevice | undefined> {
  let map: SunSpecMap;
  try {
    map = await discoverSunSpec(read, unit);
  } catch (err) {
    if (err instanceof HomeflexError && (err.code === 'sunspec_not_found' || err.code === 'sunspec_bad_map')) return undefined;
    throw err;
  }
  const roles = sunspecRoles(map);
  if (!roles.length) return undefined; // a map with nothing homeflex drives (a common model alone, say)
  const capacityWh = (await pointValue(read, findModel(map, [802]), 'WHRtg')) ?? (await pointValue(read, findModel(map, [713]), 'WHRtg'));
  const chargeW = await pointValue(read, findModel(map, [124]), 'WChaMax');
  const ratedW = await pointValue(read, findModel(map, [120]), 'WRtg');
  const config: Record<string, unknown> = { connection, unit, profile: 'sunspec' };
  if (roles.includes('battery') && capacityWh && capacityWh > 0) config.capacity_wh = Math.round(capacityWh);
  if (roles.includes('battery') && chargeW && chargeW > 0 && config.capacity_wh) {
    config.max_charge_w = Math.round(chargeW);
    config.max_discharge_w = Math.round(chargeW);
  }
  const who = [map.manufacturer, map.model].filter(Boolean).join(' ');
  return {
    source: 'sunspec',
    adapter: 'modbus',
    key: `${connection}:${unit}`,
    name: who || `SunSpec ${roles.join(' + ')} on ${connection} unit ${unit}`,
    details: {
      connection,
      unit,
      roles,
      base: map.base,
      models: map.models.map((m) => m.id),
      ...(map.manufacturer ? { manufacturer: map.manufacturer } : {}),
      ...(map.model ? { model: map.model } : {}),
      ...(map.serial ? { serial: map.serial } : {}),
      ...(map.version ? { firmware: map.version } : {}),
      ...(ratedW ? { rated_w: Math.round(ratedW) } : {}),
      ...(capacityWh ? { capacity_wh: Math.round(capacityWh) } : {}),
      ...(roles.includes('battery') && !config.capacity_wh ? { note: 'the battery does not publish its capacity: set capacity_wh after adding it, or it is metered but not planned' } : {}),
    },
    config,
  };
}
