import { definePlugin } from '../../src/api/index.js';
import { forecastSources } from './sources.js';

/**
 * Forecast sources: Open-Meteo (weather → PV by the hub's model), Forecast.Solar, Solcast, and a
 * generic HTTP or file source. Selected by `forecasts.source.type`; the plugin needs no
 * `plugins[]` entry.
 */
export const forecastSourcesPlugin = definePlugin({
  id: 'forecasts',
  description: 'PV forecast sources (weather services and PV forecasters)',
  configSchema: { properties: {} },
  forecastSources,
});
