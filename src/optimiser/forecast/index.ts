export * from './types.js';
export { standardProfileLoad, historyLoadForecast, type HistoryLoadOptions } from './load.js';
export { clearSkyPvForecast, clearSkyPvW, clearSkyMeanW, sunPosition, type PvArray, type PvForecastOptions } from './pv.js';
