import { definePlugin } from '../../src/api/index.js';
import { providerTariffs } from './providers.js';

/**
 * Tariff providers: Energy-Charts, aWATTar, ENTSO-E, Nord Pool, Energinet, Octopus, Tibber. The
 * tariff sources are selected by `tariffs.import.type` / `tariffs.export.type`; the plugin itself
 * needs no `plugins[]` entry.
 */
export const tariffProvidersPlugin = definePlugin({
  id: 'tariffs',
  description: 'Dynamic tariff providers (day-ahead markets and suppliers) as tariff sources',
  configSchema: { properties: {} },
  tariffSources: providerTariffs,
});
