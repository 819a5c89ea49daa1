import { Enum, StrictObject, Type, type ConfigIssue, type DeviceConfigBase, type Static, type ThermalModel } from '../../src/api/index.js';

/**
 * What the real-thermostat adapters (zigbee2mqtt, homeassistant) share: the comfort band and the
 * optional 1R1C model keys, named as in `sim_hvac` so that the planner reads them the same way.
 */
export const ThermostatProperties = {
  comfort: StrictObject(
    { min_c: Type.Number({ minimum: -10, maximum: 40 }), max_c: Type.Number({ minimum: -10, maximum: 40 }) },
    { description: 'The band the plan keeps the room in (°C); pre-heating and pre-cooling stay inside it' },
  ),
  mode: Enum(['heat', 'cool'], { default: 'heat', description: 'What the device does for the plan: heat or cool' }),
  r_k_per_kw: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Thermal resistance to outdoors (K/kW), e.g. learned with thermal-fit' })),
  c_kwh_per_k: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Heat capacity of the room (kWh/K)' })),
  cop: Type.Number({ exclusiveMinimum: 0, default: 3, description: 'Heat moved per electrical energy' }),
  max_electric_w: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Electrical power while running (W)' })),
  gains_w: Type.Optional(Type.Number({ description: 'Mean internal and solar gains (W)' })),
  outdoor_min_c: Type.Optional(Type.Number({ description: 'Outdoor forecast for the plan: daily minimum (°C), as for sim_hvac' })),
  outdoor_max_c: Type.Optional(Type.Number({ description: 'Outdoor forecast for the plan: daily maximum (°C, at 15:00 local)' })),
  confirm_timeout_s: Type.Number({ minimum: 1, maximum: 600, default: 15, description: 'How long a setpoint change waits for the device to report it' }),
  heat_pump: Type.Optional(
    StrictObject(
      {
        flow_c: Type.Number({ minimum: 20, maximum: 75, default: 35, description: 'Heating flow temperature (°C): 35 floor heating, 45-55 radiators' }),
        cop_eta: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.4, description: 'Share of the Carnot COP the heat pump reaches' }),
      },
      { description: 'The heating is a heat pump: its COP follows the outdoor temperature (docs/heat-pumps.md) instead of the fixed cop' },
    ),
  ),
};
export const ThermostatConfigSchema = Type.Object(ThermostatProperties);
export type ThermostatConfig = DeviceConfigBase & Static<typeof ThermostatConfigSchema>;

const MODEL_KEYS = ['r_k_per_kw', 'c_kwh_per_k', 'max_electric_w'] as const;

export function checkThermostat(config: ThermostatConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.comfort && config.comfort.min_c >= config.comfort.max_c) issues.push({ path: ['comfort', 'min_c'], message: `must be below comfort.max_c (${config.comfort.max_c})` });
  if ((config.outdoor_min_c === undefined) !== (config.outdoor_max_c === undefined)) issues.push({ path: [config.outdoor_min_c === undefined ? 'outdoor_min_c' : 'outdoor_max_c'], message: 'give both outdoor_min_c and outdoor_max_c' });
  else if (config.outdoor_min_c !== undefined && config.outdoor_min_c > config.outdoor_max_c!) issues.push({ path: ['outdoor_min_c'], message: `must not be above outdoor_max_c (${config.outdoor_max_c})` });
  if (config.heat_pump && config.mode === 'cool') issues.push({ path: ['heat_pump'], message: 'a COP curve for heating needs mode: heat' });
  const given = MODEL_KEYS.filter((k) => config[k] !== undefined);
  if (given.length && given.length < MODEL_KEYS.length) {
    const missing = MODEL_KEYS.filter((k) => config[k] === undefined);
    issues.push({ path: [missing[0]], message: `a thermal model needs ${MODEL_KEYS.join(', ')}; missing ${missing.join(', ')}` });
  }
  return issues;
}

/** The thermal model when the YAML gives one (all of R, C and electric power), else undefined. */
export function thermalModelOf(config: ThermostatConfig): ThermalModel | undefined {
  if (config.r_k_per_kw === undefined || config.c_kwh_per_k === undefined || config.max_electric_w === undefined) return undefined;
  const curve = config.heat_pump ? { copCurve: { sinkC: config.heat_pump.flow_c ?? 35, eta: config.heat_pump.cop_eta ?? 0.4 } } : {};
  return { rKPerKw: config.r_k_per_kw, cKwhPerK: config.c_kwh_per_k, cop: config.cop, maxElectricW: config.max_electric_w, gainsW: config.gains_w, ...curve };
}

/**
 * The setpoint actually sent: inside the comfort band, inside the device's own range, on its step.
 * Returns the value and whether it was changed from the one asked for.
 */
export function settleSetpoint(asked: number, band: { minC: number; maxC: number }, device: { min?: number; max?: number; step?: number }): number {
  let c = Math.min(band.maxC, Math.max(band.minC, asked));
  if (device.min !== undefined) c = Math.max(device.min, c);
  if (device.max !== undefined) c = Math.min(device.max, c);
  if (device.step && device.step > 0) {
    const base = device.min ?? 0;
    c = base + Math.round((c - base) / device.step) * device.step;
    // rounding must not leave the band when a step fits inside it
    if (c > band.maxC && c - device.step >= band.minC) c -= device.step;
    if (c < band.minC && c + device.step <= band.maxC) c += device.step;
    c = Math.round(c * 1000) / 1000;
  }
  return c;
}
