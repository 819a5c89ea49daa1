import { defineTariffSource, type PriceSeries } from '../../api/index.js';
import { HOUR, sliceSeries } from '../series.js';

export interface FixedTariffConfig {
  type: 'fixed';
  rate: number;
}

/** One rate at all times, returned as hourly slots (cut to the window) so every consumer sees the same series shape. */
export const fixedTariff = defineTariffSource<FixedTariffConfig>({
  type: 'fixed',
  description: 'One rate at all times (currency per kWh)',
  configSchema: {
    required: ['rate'],
    properties: { rate: { type: 'number', description: 'Rate in the site currency per kWh, e.g. 0.30' } },
  },
  create: (_ctx, config) => ({
    describe: () => `fixed ${config.rate}/kWh`,
    series: (window) => {
      const slots: PriceSeries = [];
      for (let t = Math.floor(window.start / HOUR) * HOUR; t < window.end; t += HOUR) slots.push({ start: t, end: t + HOUR, rate: config.rate, confidence: 1 });
      return sliceSeries(slots, window);
    },
  }),
});
