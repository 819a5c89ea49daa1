import { applyDefaults, defineAdapter } from '../../src/api/index.js';
import { OcppChargePoint } from './charge-point.js';
import { checkOcppEntries } from './entries.js';
import { checkOcppConfig, OcppConfigSchema, ocppConfigSchema, type OcppDeviceConfig } from './schema.js';
import { simOcppChargePoint } from './sim.js';

export const ocppAdapter = defineAdapter<OcppDeviceConfig>({
  id: 'ocpp',
  description: 'EV charger speaking OCPP 1.6J or 2.0.1 that dials into the hub (connections.ocpp)',
  configSchema: ocppConfigSchema,
  check: checkOcppConfig,
  checkEntries: checkOcppEntries,
  needs: ['ocpp'],
  create(ctx, config) {
    const chargePoint = new OcppChargePoint(ctx, applyDefaults(OcppConfigSchema, config), ctx.transports.ocpp());
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
