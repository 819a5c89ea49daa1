import { DateTime } from 'luxon';
import { defineTariffSource, type ConfigIssue, type PriceSeries } from '../../api/index.js';
import { HOUR, sliceSeries } from '../series.js';

/** One clock range of a day, "22:00" to "06:00" crossing midnight allowed. */
export interface RateRange {
  from: string;
  to: string;
  rate: number;
}

export type DaySet = 'all' | 'weekdays' | 'weekend' | ('mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun')[];

/** A set of day rates that applies in some months and on some days of the week. */
export interface RateSet {
  name?: string;
  months?: (number | string)[];
  days?: DaySet;
  rates: RateRange[];
}

export interface TimeOfUseConfig {
  type: 'time_of_use';
  /** The same rates every day. */
  rates?: RateRange[];
  /** Or: rate sets by months (seasons) and days of the week; exactly one applies to each day. */
  schedule?: RateSet[];
}

const CLOCK_PATTERN = '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$';
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] as const;
const DAY_NAMES = ['Mondays', 'Tuesdays', 'Wednesdays', 'Thursdays', 'Fridays', 'Saturdays', 'Sundays'];
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

const rangeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'rate'],
  properties: {
    from: { type: 'string', pattern: CLOCK_PATTERN, description: 'Local start time HH:MM' },
    to: { type: 'string', pattern: CLOCK_PATTERN, description: 'Local end time HH:MM (earlier than from = crosses midnight; 24:00 = end of day)' },
    rate: { type: 'number', description: 'Rate in the site currency per kWh' },
  },
};

const minutesOf = (t: string) => (t === '24:00' ? 1440 : Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5)));
const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;

/** The ranges as pieces of [0, 1440) minutes: a range crossing midnight becomes two pieces. */
function pieces(rates: RateRange[]): { from: number; to: number; rate: number; index: number }[] {
  const out: { from: number; to: number; rate: number; index: number }[] = [];
  rates.forEach((r, index) => {
    const a = minutesOf(r.from);
    let b = minutesOf(r.to);
    if (b === 0) b = 1440;
    if (a < b) out.push({ from: a, to: b, rate: r.rate, index });
    else {
      // from == to covers the whole day; to < from crosses midnight
      if (a < 1440) out.push({ from: a, to: 1440, rate: r.rate, index });
      if (b > 0) out.push({ from: 0, to: a === b ? a : b, rate: r.rate, index });
    }
  });
  return out.sort((x, y) => x.from - y.from || x.index - y.index);
}

/** Gaps and overlaps in one day's rates, located at the range that shows them. */
export function checkRates(rates: RateRange[], path: (string | number)[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!rates.length) return [{ path, message: 'needs at least one rate range' }];
  const ps = pieces(rates);
  let covered = 0;
  let lastIndex = -1;
  for (const p of ps) {
    if (p.from > covered) {
      issues.push({ path: [...path, p.index, 'from'], message: `no rate from ${hhmm(covered)} to ${hhmm(p.from)}: the rates of a day must cover all 24 hours` });
    } else if (p.from < covered) {
      issues.push({
        path: [...path, p.index, 'from'],
        message: `overlaps rates[${lastIndex}] from ${hhmm(p.from)} to ${hhmm(Math.min(covered, p.to))}: each time of day needs exactly one rate`,
      });
    }
    if (p.to > covered) lastIndex = p.index;
    covered = Math.max(covered, p.to);
  }
  if (covered < 1440) issues.push({ path: [...path, ps[ps.length - 1].index, 'to'], message: `no rate from ${hhmm(covered)} to 24:00: the rates of a day must cover all 24 hours` });
  return issues;
}

function monthSet(months: (number | string)[] | undefined): Set<number> | string {
  if (!months) return new Set(Array.from({ length: 12 }, (_, i) => i + 1));
  const out = new Set<number>();
  for (const m of months) {
    const n = typeof m === 'number' ? m : MONTHS.indexOf(String(m).toLowerCase().slice(0, 3) as (typeof MONTHS)[number]) + 1;
    if (!(n >= 1 && n <= 12)) return `unknown month ${JSON.stringify(m)} (use 1-12 or jan..dec)`;
    out.add(n);
  }
  return out;
}

function daySet(days: DaySet | undefined): Set<number> {
  if (!days || days === 'all') return new Set([1, 2, 3, 4, 5, 6, 7]);
  if (days === 'weekdays') return new Set([1, 2, 3, 4, 5]);
  if (days === 'weekend') return new Set([6, 7]);
  return new Set(days.map((d) => WEEKDAYS.indexOf(d) + 1));
}

const listNames = (xs: number[], names: string[]) => xs.map((x) => names[x - 1]).join(', ');

function checkConfig(config: TimeOfUseConfig): ConfigIssue[] {
  if (!config.rates === !config.schedule) return [{ path: [], message: 'give either "rates" (the same every day) or "schedule" (rate sets by months and days), not both or neither' }];
  if (config.rates) return checkRates(config.rates, ['rates']);
  const issues: ConfigIssue[] = [];
  const sets = config.schedule!;
  const matchers = sets.map((s, i) => {
    const months = monthSet(s.months);
    if (typeof months === 'string') issues.push({ path: ['schedule', i, 'months'], message: months });
    issues.push(...checkRates(s.rates, ['schedule', i, 'rates']));
    return { months: typeof months === 'string' ? new Set<number>() : months, days: daySet(s.days) };
  });
  // every (month, weekday) needs exactly one rate set
  const uncovered = new Map<number, number[]>();
  const clashes = new Map<string, { a: number; b: number; months: number[]; days: Set<number> }>();
  for (let month = 1; month <= 12; month++)
    for (let day = 1; day <= 7; day++) {
      const hits = matchers.flatMap((m, i) => (m.months.has(month) && m.days.has(day) ? [i] : []));
      if (!hits.length) uncovered.set(day, [...(uncovered.get(day) ?? []), month]);
      for (let h = 1; h < hits.length; h++) {
        const key = `${hits[0]}:${hits[h]}`;
        const c = clashes.get(key) ?? { a: hits[0], b: hits[h], months: [], days: new Set<number>() };
        if (!c.months.includes(month)) c.months.push(month);
        c.days.add(day);
        clashes.set(key, c);
      }
    }
  for (const c of clashes.values()) {
    issues.push({
      path: ['schedule', c.b],
      message: `applies to the same days as schedule[${c.a}] (${listNames([...c.days], DAY_NAMES)} in ${listNames(c.months, MONTH_NAMES)}): exactly one rate set must apply to each day`,
    });
  }
  for (const [day, months] of uncovered) {
    issues.push({ path: ['schedule'], message: `no rate set applies to ${DAY_NAMES[day - 1]} in ${months.length === 12 ? 'any month' : listNames(months, MONTH_NAMES)}` });
  }
  return issues;
}

/** The rate sets resolved for lookup by (month, weekday). */
function compile(config: TimeOfUseConfig) {
  const sets = config.rates ? [{ months: monthSet(undefined) as Set<number>, days: daySet('all'), pieces: pieces(config.rates) }] : config.schedule!.map((s) => ({ months: monthSet(s.months) as Set<number>, days: daySet(s.days), pieces: pieces(s.rates) }));
  return (date: DateTime) => sets.find((s) => s.months.has(date.month) && s.days.has(date.weekday));
}

/**
 * The series of one local day: its ranges turned into instants (DST days have 23 or 25 hours; a
 * clock time that does not exist moves forward), then cut at every UTC hour.
 */
function daySlots(date: DateTime, set: ReturnType<ReturnType<typeof compile>>): PriceSeries {
  if (!set) return [];
  const at = (m: number) => (m >= 1440 ? date.plus({ days: 1 }).toMillis() : date.set({ hour: Math.floor(m / 60), minute: m % 60 }).toMillis());
  const out: PriceSeries = [];
  let covered = 0;
  for (const p of set.pieces) {
    const from = Math.max(p.from, covered);
    if (p.to <= from) continue; // an overlap: the first range wins (check-config reports it)
    covered = p.to;
    const start = at(from);
    const end = at(p.to);
    for (let t = start; t < end; ) {
      const next = Math.min(end, Math.floor(t / HOUR) * HOUR + HOUR);
      out.push({ start: t, end: next, rate: p.rate, confidence: 1 });
      t = next;
    }
  }
  return out;
}

/** Rates by local time of day, with weekday/weekend or per-day sets and months or seasons. */
export const timeOfUseTariff = defineTariffSource<TimeOfUseConfig>({
  type: 'time_of_use',
  description: 'Rates by local time of day; optionally different sets by months (seasons) and days of the week',
  configSchema: {
    properties: {
      rates: { type: 'array', items: rangeSchema, description: 'The same rates every day: [{from, to, rate}] covering 24 hours' },
      schedule: {
        type: 'array',
        description: 'Rate sets by months and days; exactly one must apply to each day',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['rates'],
          properties: {
            name: { type: 'string', description: 'A label, e.g. winter' },
            months: { type: 'array', items: { type: ['integer', 'string'] }, description: 'Months 1-12 or jan..dec; default all' },
            days: {
              anyOf: [
                { type: 'string', enum: ['all', 'weekdays', 'weekend'] },
                { type: 'array', items: { type: 'string', enum: [...WEEKDAYS] }, minItems: 1 },
              ],
              description: 'all (default), weekdays, weekend, or a list of mon..sun',
            },
            rates: { type: 'array', items: rangeSchema },
          },
        },
      },
    },
  },
  check: checkConfig,
  create: (ctx, config) => {
    const lookup = compile(config);
    const zone = ctx.site.timezone;
    const cache = new Map<string, PriceSeries>();
    const dayOf = (date: DateTime) => {
      const key = date.toISODate()!;
      let slots = cache.get(key);
      if (!slots) {
        slots = daySlots(date, lookup(date));
        if (cache.size > 800) cache.clear();
        cache.set(key, slots);
      }
      return slots;
    };
    return {
      describe: () => `time of use (${config.rates ? `${config.rates.length} daily ranges` : `${config.schedule!.length} rate sets`})`,
      series: (window) => {
        if (window.end <= window.start) return [];
        const out: PriceSeries = [];
        let date = DateTime.fromMillis(window.start, { zone }).startOf('day');
        for (; date.toMillis() < window.end; date = date.plus({ days: 1 })) out.push(...dayOf(date));
        return sliceSeries(out, window);
      },
    };
  },
});
