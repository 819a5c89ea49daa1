import { defineAdapter } from '../../src/api/index.js';
import { OcppChargePoint } from './charge-point.js';
import { checkOcppEntries } from './entries.js';
import { MEASURANDS, checkOcppConfig, ocppConfigSchema, type OcppDeviceConfig } from './schema.js';
import { simOcppChargePoint } from './sim.js';

/** Fills what the schema's defaults cover, for configs built in code (tests) rather than loaded from YAML. */
export function withDefaults(c: OcppDeviceConfig): OcppDeviceConfig {
  return {
    ...c,
    connector: c.connector ?? 1,
    phases: c.phases ?? 3,
    voltage: c.voltage ?? 230,
    min_current_a: c.min_current_a ?? 6,
    max_current_a: c.max_current_a ?? 16,
    heartbeat_s: c.heartbeat_s ?? 300,
    meter_interval_s: c.meter_interval_s ?? 60,
    measurands: c.measurands ?? MEASURANDS,
    configure: c.configure ?? true,
    boot_wait_s: c.boot_wait_s ?? 10,
    remote_start: c.remote_start ?? false,
    remote_id_tag: c.remote_id_tag ?? 'homeflex',
    energy_register: c.energy_register ?? 'total',
    profile: {
      ...c.profile,
      purpose: c.profile?.purpose ?? 'auto',
      stack_level: c.profile?.stack_level ?? 1,
      rate_unit: c.profile?.rate_unit ?? 'auto',
      kind: c.profile?.kind ?? 'Absolute',
      id: c.profile?.id ?? 1001,
      number_phases: c.profile?.number_phases ?? true,
    },
  };
}

export const ocppAdapter = defineAdapter<OcppDeviceConfig>({
  id: 'ocpp',
  description: 'EV charger speaking OCPP 1.6J or 2.0.1 that dials into the hub (connections.ocpp)',
  configSchema: ocppConfigSchema,
  check: checkOcppConfig,
  checkEntries: checkOcppEntries,
  needs: ['ocpp'],
  create(ctx, config) {
    const chargePoint = new OcppChargePoint(ctx, withDefaults(config), ctx.transports.ocpp());
    return {
      devices: [chargePoint.device],
      start: () => chargePoint.start(),
      stop: () => chargePoint.stop(),
    };
  },
});

export const ocppAdapters = [ocppAdapter, simOcppChargePoint];
export { OcppChargePoint } from './charge-point.js';
export type { OcppDeviceConfig } from './schema.js';
