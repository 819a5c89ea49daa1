/**
 * What turns a wholesale price into the household's rate:
 * rate = (wholesale · (1 + percentage/100) + fixed) · (1 + vat/100), all per kWh in the site currency.
 */
export interface Surcharge {
  /** Added per kWh before VAT (grid fees, levies, the supplier's margin). */
  fixed?: number;
  /** Percent of the wholesale price added before VAT. */
  percentage?: number;
  /** VAT in percent, applied to the whole. */
  vat?: number;
}

export const surchargeSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'rate = (wholesale·(1 + percentage/100) + fixed)·(1 + vat/100)',
  properties: {
    fixed: { type: 'number', description: 'Per kWh before VAT, in the site currency' },
    percentage: { type: 'number', description: 'Percent of the wholesale price' },
    vat: { type: 'number', minimum: 0, maximum: 100, description: 'VAT percent on the whole' },
  },
};

/** The household's rate for a wholesale price, rounded to `digits` decimals (none without a surcharge). */
export function applySurcharge(wholesalePerKwh: number, s: Surcharge | undefined, digits = 9): number {
  if (!s) return wholesalePerKwh;
  const net = wholesalePerKwh * (1 + (s.percentage ?? 0) / 100) + (s.fixed ?? 0);
  // rounding (to 1e-9 by default) keeps 0.1·1.19 from printing as 0.11900000000000001
  const scale = 10 ** digits;
  return Math.round(net * (1 + (s.vat ?? 0) / 100) * scale) / scale;
}
