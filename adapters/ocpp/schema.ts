import type { ConfigIssue, DeviceConfigBase, JsonSchema } from '../../src/api/index.js';
import { evChargeModeProperties, evDefaultModeSchema, evTargetSchema, type EvDefaultMode } from '../../src/api/index.js';
import { carSocIssues, carSocProperties, type CarSocConfig } from '../homeassistant/car-soc.js';


export const MEASURANDS = ['Energy.Active.Import.Register', 'Power.Active.Import', 'Current.Import', 'SoC'];

/** An OCPP charger's `devices[]` entry. */
export interface OcppDeviceConfig extends DeviceConfigBase, CarSocConfig {
  identity: string;
  password?: string;
  connector: number;
  phases: 1 | 3;
  phase_switching: boolean;
  voltage: number;
  min_current_a: number;
  max_current_a: number;
  ev_capacity_wh?: number;
  default_mode: EvDefaultMode;
  id_tags?: string[];
  heartbeat_s: number;
  meter_interval_s: number;
  measurands: string[];
  configure: boolean;
  boot_wait_s: number;
  remote_start: boolean;
  remote_id_tag: string;
  energy_unit?: 'Wh' | 'kWh';
  energy_register: 'total' | 'session';
  profile: {
    purpose: 'auto' | 'TxProfile' | 'TxDefaultProfile' | 'ChargePointMaxProfile';
    stack_level: number;
    rate_unit: 'auto' | 'A' | 'W';
    kind: 'Absolute' | 'Relative';
    id: number;
    max_periods?: number;
    number_phases: boolean;
  };
  target?: Record<string, unknown>;
}

export const ocppConfigSchema: JsonSchema = {
  required: ['identity'],
  properties: {
    identity: { type: 'string', minLength: 1, maxLength: 48, pattern: '^[^/\\s]+$', description: 'Charge point identity: the last segment of the URL it dials (ws://hub:port/ocpp/<identity>)' },
    password: { type: 'string', minLength: 1, maxLength: 64, description: 'Security profile 1/2: HTTP Basic password (user = identity). Use ${VAR}.' },
    connector: { type: 'integer', minimum: 1, default: 1, description: 'Connector (1.6) or EVSE (2.0.1) this device is; a charger with several has one entry per connector, all with its identity' },
    phases: { enum: [1, 3], default: 3, description: 'Phases the charger is wired with' },
    phase_switching: { type: 'boolean', default: false, description: 'The charger switches between 1 and 3 phases by numberPhases in its charging profile (OCPP 1.6 and 2.0.1); needs phases: 3 and profile.number_phases' },
    voltage: { type: 'number', minimum: 100, maximum: 480, default: 230, description: 'Phase voltage (V)' },
    min_current_a: { type: 'number', minimum: 0, maximum: 80, default: 6, description: 'Below this current the car cannot charge: the hub pauses instead' },
    max_current_a: { type: 'number', minimum: 1, maximum: 80, default: 16 },
    ev_capacity_wh: { type: 'number', minimum: 1000, description: 'Car battery (Wh), for SoC targets and the most a fill (default_mode: cheapest_fill) adds' },
    id_tags: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 20 }, description: 'Local list of accepted id tags; left out = free charging (every tag accepted)' },
    heartbeat_s: { type: 'integer', minimum: 10, maximum: 86400, default: 300, description: 'Heartbeat interval given at boot (s)' },
    meter_interval_s: { type: 'integer', minimum: 5, maximum: 3600, default: 60, description: 'MeterValueSampleInterval / TxUpdatedInterval (s)' },
    measurands: { type: 'array', items: { type: 'string' }, default: MEASURANDS, description: 'MeterValuesSampledData / TxUpdatedMeasurands' },
    configure: { type: 'boolean', default: true, description: 'Set the meter interval and measurands after connecting (off for chargers that reboot on it)' },
    boot_wait_s: { type: 'number', minimum: 0, maximum: 120, default: 10, description: 'After a reconnect without BootNotification, configure after this long' },
    remote_start: { type: 'boolean', default: false, description: 'Start a transaction (RemoteStartTransaction) when a car is plugged in and waits for authorisation' },
    remote_id_tag: { type: 'string', minLength: 1, maxLength: 20, default: 'homeflex' },
    energy_unit: { enum: ['Wh', 'kWh'], description: 'Override the energy register unit the charger labels wrongly (OpenEVSE sends kWh labelled Wh)' },
    energy_register: { enum: ['total', 'session'], default: 'total', description: 'session: the charger reports energy since the session began, not a meter total' },
    profile: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'How plans become charging profiles (chargers differ)',
      properties: {
        purpose: { enum: ['auto', 'TxProfile', 'TxDefaultProfile', 'ChargePointMaxProfile'], default: 'auto', description: 'auto = TxProfile in a transaction, TxDefaultProfile otherwise' },
        stack_level: { type: 'integer', minimum: 0, maximum: 100, default: 1, description: 'Some chargers accept only 0' },
        rate_unit: { enum: ['auto', 'A', 'W'], default: 'auto', description: 'auto = A unless the charger allows only power' },
        kind: { enum: ['Absolute', 'Relative'], default: 'Absolute', description: 'Relative sends only the current limit (Wallbox)' },
        id: { type: 'integer', minimum: 1, default: 1001, description: 'chargingProfileId the hub uses on connector 1; connector n uses id + n − 1 (a charger holds one profile per id)' },
        max_periods: { type: 'integer', minimum: 1, maximum: 1000, description: 'Periods per schedule (default: the charger’s ChargingScheduleMaxPeriods)' },
        number_phases: { type: 'boolean', default: true, description: 'Send numberPhases in every period' },
      },
    },
    target: evTargetSchema,
    default_mode: evDefaultModeSchema,
    ...evChargeModeProperties,
    ...carSocProperties,
  },
};

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
