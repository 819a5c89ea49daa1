import { ApiError, type EpochMs, type PriceSeries, type TimeWindow } from '../api/index.js';
import type { MeteringContext } from './context.js';
import { CostAccumulator, onBucketGrid, type PricesByRate } from './costs.js';
import { BUCKET_MS, tariffRateOf } from './records.js';

/** Price series for the tariffs `flows` name, over `window` (a tariff that cannot answer becomes a warning). */
export function pricesFor(ctx: MeteringContext, window: TimeWindow, flows: ReadonlySet<number>, warnings: string[]): PricesByRate {
  const out: PricesByRate = { IMPORT: [], EXPORT: [] };
  const lookup = ctx.prices();
  // LOCAL energy needs no price
  for (const rate of ['IMPORT', 'EXPORT'] as const) {
    if (![...flows].some((f) => tariffRateOf(f) === rate)) continue;
    if (!lookup) throw new ApiError(503, 'tariffs_unavailable', 'no tariff is loaded yet, so energy cannot be priced; check the tariffs section of the site file and the hub log');
    try {
      out[rate] = lookup.series(rate, window) as PriceSeries;
    } catch (err) {
      warnings.push(`no ${rate} prices: ${(err as Error).message}`);
    }
  }
  return out;
}

/**
 * Energy and cost of a subject per period of `grid`. The middle of the window is read from the
 * 15-minute buckets when every period and tariff boundary lies on their grid (exact, and fast
 * for years of records); ragged edges and other cases use the records themselves.
 */
export function priceSubject(ctx: MeteringContext, subject: string, window: TimeWindow, grid: EpochMs[], flows: ReadonlySet<number>, byFlow: boolean, warnings: string[]): CostAccumulator {
  const { store } = ctx;
  const prices = pricesFor(ctx, window, flows, warnings);
  const acc = new CostAccumulator(grid, byFlow);
  const a = Math.ceil(window.start / BUCKET_MS) * BUCKET_MS;
  const b = Math.floor(window.end / BUCKET_MS) * BUCKET_MS;
  if (a < b && onBucketGrid(grid, [prices.IMPORT, prices.EXPORT], a, b)) {
    acc.add(store.buckets(subject, a, b, flows), prices, { start: a, end: b });
    if (window.start < a) acc.add(store.intervals(subject, window.start, a, { flows }), prices, { start: window.start, end: a });
    if (b < window.end) acc.add(store.intervals(subject, b, window.end, { flows }), prices, { start: b, end: window.end });
  } else {
    acc.add(store.intervals(subject, window.start, window.end, { flows }), prices, window);
  }
  return acc;
}
