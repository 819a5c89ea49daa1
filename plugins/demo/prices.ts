import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DateTime } from 'luxon';
import { applySurcharge, DAY, defineTariffSource, surchargeSchema, type EpochMs, type Surcharge, type PriceSeries, type TimeWindow } from '../../src/api/index.js';

/**
 * The demo's prices: four real days of DE-LU day-ahead prices (15-minute products, EUR/MWh),
 * replayed onto the site's local dates in a loop, so the demo shows a real price shape (a cheap
 * sunny midday, a dear evening) on whatever day it runs, past days included.
 */
export const SAMPLE_DAYS = ['2026-04-14', '2026-04-15', '2026-04-16', '2026-04-17'];

const QUARTER = 15 * 60_000;

function pricesPath(file: string): string {
  // compiled, this runs from dist/plugins/demo/, where tsc copies no data files
  const candidates = [new URL(`prices/${file}`, import.meta.url), new URL(`../../../plugins/demo/prices/${file}`, import.meta.url)];
  for (const url of candidates) if (existsSync(fileURLToPath(url))) return fileURLToPath(url);
  throw new Error(`demo prices: ${file} is missing (looked in ${candidates.map((u) => fileURLToPath(u)).join(', ')})`);
}

/** Each sample day as 96 quarter-hour prices in EUR/kWh, by local clock time (Europe/Berlin). */
function loadSampleDays(): number[][] {
  return SAMPLE_DAYS.map((day) => {
    const body = JSON.parse(readFileSync(pricesPath(`${day}.json`), 'utf8')) as { unix_seconds: number[]; price: number[] };
    const quarters: number[] = new Array(96);
    body.unix_seconds.forEach((t, i) => {
      const local = DateTime.fromSeconds(t, { zone: 'Europe/Berlin' });
      quarters[local.hour * 4 + Math.floor(local.minute / 15)] = body.price[i] / 1000;
    });
    if (quarters.some((p) => p === undefined)) throw new Error(`demo prices: ${day} is not a day of 96 quarter hours`);
    return quarters;
  });
}

let sample: number[][] | undefined;

/** The wholesale price (per kWh) at a local clock time: sample day by the local date, in a loop. */
export function replayedPrice(t: EpochMs, timezone: string): number {
  sample ??= loadSampleDays();
  const local = DateTime.fromMillis(t, { zone: timezone });
  const dayNumber = Math.floor(Date.UTC(local.year, local.month - 1, local.day) / DAY);
  return sample[dayNumber % sample.length][local.hour * 4 + Math.floor(local.minute / 15)];
}

/** One local day of the replay: its bounds and each quarter hour's wholesale price. */
interface ReplayedDay {
  start: EpochMs;
  end: EpochMs;
  prices: number[];
}

const dayCache = new Map<string, ReplayedDay>();

/** The replayed day that starts at local midnight `day` (luxon per day, not per slot: a year is 35,000 slots). */
function replayedDay(day: DateTime, timezone: string): ReplayedDay {
  const start = day.toMillis();
  const key = `${timezone}|${start}`;
  let out = dayCache.get(key);
  if (!out) {
    sample ??= loadSampleDays();
    const end = day.plus({ days: 1 }).toMillis();
    const quarters = sample[Math.floor(Date.UTC(day.year, day.month - 1, day.day) / DAY) % sample.length];
    const prices: number[] = [];
    for (let t = start; t < end; t += QUARTER) {
      // a DST day (23 or 25 hours) follows the clock: the skipped hour is left out, the repeated one repeated
      prices.push(end - start === DAY ? quarters[(t - start) / QUARTER] : replayedPrice(t, timezone));
    }
    out = { start, end, prices };
    if (dayCache.size > 2000) dayCache.clear();
    dayCache.set(key, out);
  }
  return out;
}

/** Quarter-hour slots of the replayed prices over a window, each turned into a rate by `rate`. */
export function replayedSeries(window: TimeWindow, timezone: string, rate: (wholesale: number) => number): PriceSeries {
  const out: PriceSeries = [];
  for (let day = DateTime.fromMillis(window.start, { zone: timezone }).startOf('day'); day.toMillis() < window.end; day = day.plus({ days: 1 })) {
    const d = replayedDay(day, timezone);
    d.prices.forEach((wholesale, k) => {
      const t = d.start + k * QUARTER;
      if (t + QUARTER <= window.start || t >= window.end) return;
      out.push({ start: Math.max(t, window.start), end: Math.min(t + QUARTER, window.end), rate: rate(wholesale), confidence: 1 });
    });
  }
  return out;
}

interface DemoDayAheadConfig {
  surcharge?: Surcharge;
}

/** rate = (wholesale · (1 + percentage/100) + fixed) · (1 + vat/100), as the provider tariffs. */
export const householdRate = (wholesale: number, s: Surcharge | undefined) => applySurcharge(wholesale, s ?? {}, 6);

export const demoDayAheadTariff = defineTariffSource<DemoDayAheadConfig>({
  type: 'demo_day_ahead',
  description: 'For the demo: four real days of DE-LU day-ahead prices (15 min) replayed onto every local date in a loop, with a surcharge',
  configSchema: {
    properties: {
      surcharge: surchargeSchema,
    },
  },
  create(ctx, config) {
    // fail at start, not at the first plan, if the data files are missing
    replayedPrice(ctx.clock.now(), ctx.site.timezone);
    // prices from 29 days before the demo's first start (its history is at most 28 days), not years of
    // quarter hours nothing was metered in, which a year's cost query would otherwise price one by one
    let firstStart = ctx.cache.get<EpochMs>('first_start');
    if (firstStart === undefined) {
      firstStart = ctx.clock.now();
      void ctx.cache.set('first_start', firstStart);
    }
    const earliest = firstStart - 29 * DAY;
    return {
      series: (window) => (window.end <= earliest ? [] : replayedSeries({ start: Math.max(window.start, earliest), end: window.end }, ctx.site.timezone, (w) => householdRate(w, config.surcharge))),
      describe: () => `DE-LU day-ahead ${SAMPLE_DAYS[0]} to ${SAMPLE_DAYS.at(-1)} replayed onto today's dates (demo)`,
    };
  },
});
