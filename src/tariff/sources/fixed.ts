import { defineTariffSource } from '../../api/index.js';

export interface FixedTariffConfig {
  type: 'fixed';
  rate: number;
}

const HOUR = 3_600_000;

/** One rate at all times, returned as hourly slots so every consumer sees the same series shape. */
export const fixedTariff = defineTariffSource<FixedTariffConfig>({
  type: 'fixed',
  description: 'One rate at all times (currency per kWh)',
  configSchema: {
    required: ['rate'],
    properties: { rate: { type: 'number', description: 'Rate in the site currency per kWh, e.g. 0.30' } },
  },
  create: (_ctx, config) => ({
    describe: () => `fixed ${config.rate}/kWh`,
    series: ({ start, end }) => {
      const slots = [];
      for (let t = Math.floor(start / HOUR) * HOUR; t < end; t += HOUR) slots.push({ start: t, end: t + HOUR, rate: config.rate, confidence: 1 });
      return slots;
    },
  }),
});
