import { Enum, Type, type DeviceConfigBase, type Static } from '../../src/api/index.js';
import { shippedProfileIds } from './profile.js';

function safeProfileIds(): string[] {
  try {
    return shippedProfileIds();
  } catch {
    return [];
  }
}

/** A Modbus inverter's keys in a `devices[]` entry: the YAML contract, its defaults and the config's type. */
export const ModbusConfigSchema = Type.Object({
  connection: Type.String({ description: 'The connections.modbus[] id the device is behind' }),
  unit: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'Modbus unit id (default: the profile\'s, usually 1)' })),
  profile: Type.String({ minLength: 1, description: `Register profile: ${safeProfileIds().join(', ')}; or the path of your own .yaml profile` }),
  meter_unit: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'Unit id of the grid meter when it answers on its own unit (Fronius: 200)' })),
  capacity_wh: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Usable battery capacity (Wh); gives the device the storage capability' })),
  max_charge_w: Type.Optional(Type.Number({ minimum: 0, description: 'Charge power limit for commands and planning (default capacity_wh / 2)' })),
  max_discharge_w: Type.Optional(Type.Number({ minimum: 0, description: 'Discharge power limit for commands and planning (default capacity_wh / 2)' })),
  soc_min_pct: Type.Number({ minimum: 0, maximum: 100, default: 5 }),
  soc_max_pct: Type.Number({ minimum: 0, maximum: 100, default: 100 }),
  charge_efficiency: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.95 }),
  discharge_efficiency: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.95 }),
  poll_s: Type.Number({ minimum: 1, maximum: 3600, default: 10, description: 'Seconds between polls' }),
  watchdog_s: Type.Optional(Type.Integer({ minimum: 10, maximum: 86400, description: 'Revert time written to the inverter with each command; homeflex re-sends before it runs out (default: the profile\'s)' })),
  pv_kwp: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Peak power of the PV strings on this inverter; gives the device the pv capability' })),
  /** Rated AC power of the PV inverter (W): what a limit in % is of, where the device does not say. */
  pv_rated_w: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Rated AC power of the PV inverter (W): what a curtailment limit in % refers to where the inverter does not publish it (default pv_kwp × 1000)' })),
  pv_tilt: Type.Optional(Type.Number({ minimum: 0, maximum: 90 })),
  pv_azimuth: Type.Optional(Type.Number({ minimum: 0, maximum: 360 })),
  invert: Type.Array(Enum(['battery_power', 'grid_power', 'pv_power']), {
    uniqueItems: true,
    default: [],
    description: 'Flip the sign of these measures (firmware that disagrees with its own documentation)',
  }),
  read_only: Type.Boolean({ default: false, description: 'Only read; refuse every command' }),
});

export type ModbusDeviceConfig = DeviceConfigBase & Static<typeof ModbusConfigSchema>;
