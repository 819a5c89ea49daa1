import type { ConfigIssue, DeviceConfigBase, Static } from '../../src/api/index.js';
import { configSchema, Enum, EvChargeModeProperties, EvDefaultModeSchema, EvTargetSchema, StrictObject, Type } from '../../src/api/index.js';
import { carSocIssues, CarSocProperties } from '../homeassistant/car-soc.js';

export const MEASURANDS = ['Energy.Active.Import.Register', 'Power.Active.Import', 'Current.Import', 'SoC'];

/** An OCPP charger's keys in a `devices[]` entry: the YAML contract, its defaults and the config's type. */
export const OcppConfigSchema = Type.Object({
  identity: Type.String({ minLength: 1, maxLength: 48, pattern: '^[^/\\s]+$', description: 'Charge point identity: the last segment of the URL it dials (ws://hub:port/ocpp/<identity>)' }),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Security profile 1/2: HTTP Basic password (user = identity). Use ${VAR}.' })),
  connector: Type.Integer({ minimum: 1, default: 1, description: 'Connector (1.6) or EVSE (2.0.1) this device is; a charger with several has one entry per connector, all with its identity' }),
  phases: Enum([1, 3], { default: 3, description: 'Phases the charger is wired with' }),
  phase_switching: Type.Boolean({ default: false, description: 'The charger switches between 1 and 3 phases by numberPhases in its charging profile (OCPP 1.6 and 2.0.1); needs phases: 3 and profile.number_phases' }),
  voltage: Type.Number({ minimum: 100, maximum: 480, default: 230, description: 'Phase voltage (V)' }),
  min_current_a: Type.Number({ minimum: 0, maximum: 80, default: 6, description: 'Below this current the car cannot charge: the hub pauses instead' }),
  max_current_a: Type.Number({ minimum: 1, maximum: 80, default: 16 }),
  ev_capacity_wh: Type.Optional(Type.Number({ minimum: 1000, description: 'Car battery (Wh), for SoC targets and the most a fill (default_mode: cheapest_fill) adds' })),
  id_tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 20 }), { description: 'Local list of accepted id tags; left out = free charging (every tag accepted)' })),
  heartbeat_s: Type.Integer({ minimum: 10, maximum: 86400, default: 300, description: 'Heartbeat interval given at boot (s)' }),
  meter_interval_s: Type.Integer({ minimum: 5, maximum: 3600, default: 60, description: 'MeterValueSampleInterval / TxUpdatedInterval (s)' }),
  measurands: Type.Array(Type.String(), { default: MEASURANDS, description: 'MeterValuesSampledData / TxUpdatedMeasurands' }),
  configure: Type.Boolean({ default: true, description: 'Set the meter interval and measurands after connecting (off for chargers that reboot on it)' }),
  boot_wait_s: Type.Number({ minimum: 0, maximum: 120, default: 10, description: 'After a reconnect without BootNotification, configure after this long' }),
  remote_start: Type.Boolean({ default: false, description: 'Start a transaction (RemoteStartTransaction) when a car is plugged in and waits for authorisation' }),
  remote_id_tag: Type.String({ minLength: 1, maxLength: 20, default: 'homeflex' }),
  energy_unit: Type.Optional(Enum(['Wh', 'kWh'], { description: 'Override the energy register unit the charger labels wrongly (OpenEVSE sends kWh labelled Wh)' })),
  energy_register: Enum(['total', 'session'], { default: 'total', description: 'session: the charger reports energy since the session began, not a meter total' }),
  profile: StrictObject(
    {
      purpose: Enum(['auto', 'TxProfile', 'TxDefaultProfile', 'ChargePointMaxProfile'], { default: 'auto', description: 'auto = TxProfile in a transaction, TxDefaultProfile otherwise' }),
      stack_level: Type.Integer({ minimum: 0, maximum: 100, default: 1, description: 'Some chargers accept only 0' }),
      rate_unit: Enum(['auto', 'A', 'W'], { default: 'auto', description: 'auto = A unless the charger allows only power' }),
      kind: Enum(['Absolute', 'Relative'], { default: 'Absolute', description: 'Relative sends only the current limit (Wallbox)' }),
      id: Type.Integer({ minimum: 1, default: 1001, description: 'chargingProfileId the hub uses on connector 1; connector n uses id + n − 1 (a charger holds one profile per id)' }),
      max_periods: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Periods per schedule (default: the charger’s ChargingScheduleMaxPeriods)' })),
      number_phases: Type.Boolean({ default: true, description: 'Send numberPhases in every period' }),
    },
    { default: {}, description: 'How plans become charging profiles (chargers differ)' },
  ),
  target: Type.Optional(EvTargetSchema),
  default_mode: EvDefaultModeSchema,
  ...EvChargeModeProperties,
  ...CarSocProperties,
});

/** An OCPP charger's `devices[]` entry, its defaults applied. */
export type OcppDeviceConfig = DeviceConfigBase & Static<typeof OcppConfigSchema>;

export const ocppConfigSchema = configSchema(OcppConfigSchema);

export function checkOcppConfig(config: OcppDeviceConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.min_current_a > config.max_current_a) issues.push({ path: ['min_current_a'], message: `must not be above max_current_a (${config.max_current_a})` });
  if (config.target?.soc_pct !== undefined && config.ev_capacity_wh === undefined && config.capacity_entity === undefined) issues.push({ path: ['target', 'soc_pct'], message: 'needs ev_capacity_wh (the car battery size) or capacity_entity to turn a SoC target into energy' });
  issues.push(...carSocIssues(config));
  if (config.phase_switching && config.phases !== 3) issues.push({ path: ['phase_switching'], message: 'needs phases: 3 (a 1-phase installation has nothing to switch)' });
  if (config.phase_switching && config.profile?.number_phases === false) issues.push({ path: ['profile', 'number_phases'], message: 'must not be false with phase_switching: the phases are switched by numberPhases' });
  const unknown = (config.measurands ?? []).filter((m) => !/^[A-Z][A-Za-z]*(\.[A-Za-z]+)*$/.test(m));
  if (unknown.length) issues.push({ path: ['measurands'], message: `not OCPP measurands: ${unknown.join(', ')}` });
  return issues;
}
