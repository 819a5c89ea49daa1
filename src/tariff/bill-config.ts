import { DateTime } from 'luxon';
import type { ConfigIssue, JsonSchema, PriceSeries, SiteInfo, TimeWindow } from '../api/index.js';
import type { BillTerms, CapacityCharge, ExportRules, StandingCharge } from './bill-model.js';
import { sliceSeries } from './series.js';
import { timeOfUseTariff, type DaySet } from './sources/time_of_use.js';

/**
 * The YAML of the tariff parts beyond energy (siblings of `tariffs.import` / `tariffs.export`):
 * `vat`, `grid_fees`, `levies`, `standing_charges`, `capacity_charge`, `export_rules`. Their schema,
 * their checks (located by path, so the loader reports file:line) and their compiled forms.
 */

/** One clock range of a grid fee day, with the window's name (e.g. low | standard | high). */
export interface GridFeeRange {
  from: string;
  to: string;
  rate: number;
  window?: string;
}

export interface GridFeeRateSet {
  name?: string;
  months?: (number | string)[];
  days?: DaySet;
  rates: GridFeeRange[];
}

/** One operator's grid fee schedule, in force from `valid_from` (local date, inclusive) to `valid_to` (exclusive). */
export interface GridFeeConfig {
  operator?: string;
  valid_from?: string;
  valid_to?: string;
  rates?: GridFeeRange[];
  schedule?: GridFeeRateSet[];
}

export interface LevyConfig {
  name: string;
  rate: number;
  valid_from?: string;
  valid_to?: string;
}

export interface StandingChargeConfig {
  name: string;
  amount: number;
  per: 'day' | 'month';
  valid_from?: string;
  valid_to?: string;
}

export type CapacityChargeConfig =
  | { type: 'monthly_peak'; price_per_kw_year: number; minimum_kw?: number; average_months?: number; interval_minutes?: number; prior_peaks_kw?: Record<string, number> }
  | { type: 'daily_peaks_step'; days?: number; interval_minutes?: number; steps: { up_to_kw?: number; per_month: number }[] };

export interface ExportRulesConfig {
  no_pay_at_negative_price?: boolean;
  price_reference?: 'import' | 'export';
  max_export_w?: number;
  max_export_percent_kwp?: number;
}

/** The bill keys of `tariffs` (all optional: without them a tariff is its energy rate alone, as before). */
export interface BillConfig {
  vat?: number;
  grid_fees?: GridFeeConfig[];
  levies?: LevyConfig[];
  standing_charges?: StandingChargeConfig[];
  capacity_charge?: CapacityChargeConfig;
  export_rules?: ExportRulesConfig;
}

export const BILL_KEYS = ['vat', 'grid_fees', 'levies', 'standing_charges', 'capacity_charge', 'export_rules'] as const;

const DATE = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' };
const CLOCK_PATTERN = '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$';
const validity = {
  valid_from: { ...DATE, description: 'Local date YYYY-MM-DD from which it applies (inclusive); default always' },
  valid_to: { ...DATE, description: 'Local date YYYY-MM-DD until which it applies (exclusive); default open ended' },
};
const gridRange = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'rate'],
  properties: {
    from: { type: 'string', pattern: CLOCK_PATTERN, description: 'Local start time HH:MM' },
    to: { type: 'string', pattern: CLOCK_PATTERN, description: 'Local end time HH:MM (earlier than from = crosses midnight; 24:00 = end of day)' },
    rate: { type: 'number', description: 'Grid fee per kWh imported, in the site currency' },
    window: { type: 'string', minLength: 1, description: 'The window name shown on the bill, e.g. low, standard, high (default: the rate)' },
  },
};

/** JSON Schema of the bill keys, merged into `tariffs` by compose.ts. */
export const billSchemaProperties: Record<string, JsonSchema> = {
  vat: { type: 'number', minimum: 0, maximum: 100, description: 'VAT percent on energy, grid fees, levies, standing and capacity charges; when given, those are net (and the energy source must not add VAT itself)' },
  grid_fees: {
    type: 'array',
    description: 'Grid (network) fees per kWh imported by local time windows, per operator, with validity dates (e.g. §14a EnWG module 3: low/standard/high by quarter)',
    items: {
      type: 'object',
      additionalProperties: false,
      properties: {
        operator: { type: 'string', description: 'The grid operator, e.g. Netze BW' },
        ...validity,
        rates: { type: 'array', items: gridRange, description: 'The same windows every day: [{from, to, rate, window}] covering 24 hours' },
        schedule: {
          type: 'array',
          description: 'Window sets by months (seasons, quarters) and days; exactly one must apply to each day',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['rates'],
            properties: {
              name: { type: 'string', description: 'A label, e.g. Q1' },
              months: { type: 'array', items: { type: ['integer', 'string'] }, description: 'Months 1-12 or jan..dec; default all' },
              days: {
                anyOf: [
                  { type: 'string', enum: ['all', 'weekdays', 'weekend'] },
                  { type: 'array', items: { type: 'string', enum: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] }, minItems: 1 },
                ],
                description: 'all (default), weekdays, weekend, or a list of mon..sun',
              },
              rates: { type: 'array', items: gridRange },
            },
          },
        },
      },
    },
  },
  levies: {
    type: 'array',
    description: 'Levies and taxes per kWh imported (e.g. electricity tax), added before VAT',
    items: { type: 'object', additionalProperties: false, required: ['name', 'rate'], properties: { name: { type: 'string', minLength: 1 }, rate: { type: 'number', description: 'Per kWh in the site currency' }, ...validity } },
  },
  standing_charges: {
    type: 'array',
    description: 'Fixed charges per local calendar day or month (a 23- or 25-hour DST day is one day)',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'amount', 'per'],
      properties: { name: { type: 'string', minLength: 1 }, amount: { type: 'number', description: 'In the site currency per day or month' }, per: { type: 'string', enum: ['day', 'month'] }, ...validity },
    },
  },
  capacity_charge: {
    type: 'object',
    required: ['type'],
    description: 'A charge on peak import power: monthly_peak (Flanders: 15-minute monthly peak, minimum, 12-month mean) or daily_peaks_step (Norway: steps by the mean of the 3 highest daily hourly peaks)',
    properties: {
      type: { type: 'string', enum: ['monthly_peak', 'daily_peaks_step'] },
      price_per_kw_year: { type: 'number', minimum: 0, description: 'monthly_peak: per kW per year (billed 1/12 a month)' },
      minimum_kw: { type: 'number', minimum: 0, description: 'monthly_peak: each month counts at least this peak (default 2.5)' },
      average_months: { type: 'integer', minimum: 1, maximum: 24, description: 'monthly_peak: months in the rolling mean, this one included (default 12)' },
      prior_peaks_kw: { type: 'object', additionalProperties: { type: 'number', minimum: 0 }, description: 'monthly_peak: monthly peaks (kW) from the operator for months before the hub metered, "YYYY-MM": kW' },
      interval_minutes: { type: 'integer', enum: [15, 30, 60], description: 'Interval the peak power is averaged over (default 15 for monthly_peak, 60 for daily_peaks_step)' },
      days: { type: 'integer', minimum: 1, maximum: 10, description: 'daily_peaks_step: how many of the highest daily peaks (on different days) are averaged (default 3)' },
      steps: {
        type: 'array',
        minItems: 1,
        description: 'daily_peaks_step: ascending steps [{up_to_kw, per_month}], the last without up_to_kw',
        items: { type: 'object', additionalProperties: false, required: ['per_month'], properties: { up_to_kw: { type: 'number', exclusiveMinimum: 0 }, per_month: { type: 'number', minimum: 0 } } },
      },
    },
    additionalProperties: false,
  },
  export_rules: {
    type: 'object',
    additionalProperties: false,
    description: 'What feed-in earns and how much may be fed in',
    properties: {
      no_pay_at_negative_price: { type: 'boolean', description: 'No feed-in pay while the reference price is negative (Germany 2025 for new PV)' },
      price_reference: { type: 'string', enum: ['import', 'export'], description: 'Which price decides "negative": the import energy rate (before grid fees, levies and VAT; default) or the export rate' },
      max_export_w: { type: 'number', minimum: 0, description: 'Feed-in cap in W (0 = zero export)' },
      max_export_percent_kwp: { type: 'number', minimum: 0, maximum: 100, description: 'Feed-in cap as percent of the PV kWp of forecasts.pv (e.g. 60)' },
    },
  },
};

const MONTH_KEY = /^\d{4}-(0[1-9]|1[0-2])$/;

const localDate = (s: string, zone: string) => DateTime.fromISO(s, { zone });

/** Problems of the bill keys beyond what the schema says, located by path under `tariffs`. */
export function billProblems(config: BillConfig & { import?: Record<string, unknown>; export?: Record<string, unknown> }, timezone: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const datesOf = (o: { valid_from?: string; valid_to?: string }, at: (string | number)[]) => {
    const from = o.valid_from !== undefined ? localDate(o.valid_from, timezone) : undefined;
    const to = o.valid_to !== undefined ? localDate(o.valid_to, timezone) : undefined;
    if (from && !from.isValid) issues.push({ path: [...at, 'valid_from'], message: `"${o.valid_from}" is not a date` });
    if (to && !to.isValid) issues.push({ path: [...at, 'valid_to'], message: `"${o.valid_to}" is not a date` });
    if (from?.isValid && to?.isValid && to <= from) issues.push({ path: [...at, 'valid_to'], message: `must be after valid_from (${o.valid_from})` });
    return { from: from?.isValid ? from.toMillis() : -Infinity, to: to?.isValid ? to.toMillis() : Infinity };
  };
  // the energy source must not add VAT when the bill adds it
  if (config.vat !== undefined) {
    for (const dir of ['import', 'export'] as const) {
      const s = config[dir]?.surcharge as { vat?: number } | undefined;
      if (s?.vat) issues.push({ path: [dir, 'surcharge', 'vat'], message: `tariffs.vat (${config.vat} %) adds VAT to the whole bill; the energy rate must then be net: remove this surcharge vat (${s.vat} %) or tariffs.vat` });
    }
  }
  const spans: { from: number; to: number; i: number; operator?: string }[] = [];
  (config.grid_fees ?? []).forEach((g, i) => {
    const at = ['grid_fees', i];
    const span = datesOf(g, at);
    for (const p of timeOfUseTariff.check?.({ type: 'time_of_use', rates: g.rates, schedule: g.schedule } as never) ?? []) issues.push({ path: [...at, ...p.path], message: p.message });
    for (const other of spans) {
      if (span.from < other.to && other.from < span.to) {
        issues.push({ path: g.valid_from !== undefined ? [...at, 'valid_from'] : at, message: `its validity overlaps grid_fees[${other.i}]${other.operator ? ` (${other.operator})` : ''}: one grid fee schedule must be in force at a time (give valid_from/valid_to)` });
        break;
      }
    }
    spans.push({ ...span, i, operator: g.operator });
  });
  (config.levies ?? []).forEach((l, i) => datesOf(l, ['levies', i]));
  (config.standing_charges ?? []).forEach((s, i) => datesOf(s, ['standing_charges', i]));
  const c = config.capacity_charge;
  if (c?.type === 'monthly_peak') {
    if (c.price_per_kw_year === undefined) issues.push({ path: ['capacity_charge'], message: 'monthly_peak needs price_per_kw_year' });
    for (const key of ['days', 'steps']) if (key in c) issues.push({ path: ['capacity_charge', key], message: `"${key}" belongs to daily_peaks_step, not monthly_peak` });
    for (const m of Object.keys(c.prior_peaks_kw ?? {})) if (!MONTH_KEY.test(m)) issues.push({ path: ['capacity_charge', 'prior_peaks_kw', m], message: `"${m}" is not a month YYYY-MM` });
  } else if (c?.type === 'daily_peaks_step') {
    for (const key of ['price_per_kw_year', 'minimum_kw', 'average_months', 'prior_peaks_kw']) if (key in c) issues.push({ path: ['capacity_charge', key], message: `"${key}" belongs to monthly_peak, not daily_peaks_step` });
    if (!c.steps?.length) issues.push({ path: ['capacity_charge'], message: 'daily_peaks_step needs steps: [{up_to_kw, per_month}, …, {per_month}]' });
    else {
      let prev = 0;
      c.steps.forEach((s, i) => {
        const last = i === c.steps.length - 1;
        if (!last && s.up_to_kw === undefined) issues.push({ path: ['capacity_charge', 'steps', i], message: 'only the last step may leave out up_to_kw' });
        if (last && s.up_to_kw !== undefined) issues.push({ path: ['capacity_charge', 'steps', i, 'up_to_kw'], message: `the last step must be open ended (leave out up_to_kw), else a peak above ${s.up_to_kw} kW has no step` });
        if (s.up_to_kw !== undefined && s.up_to_kw <= prev) issues.push({ path: ['capacity_charge', 'steps', i, 'up_to_kw'], message: `steps must rise: ${s.up_to_kw} kW is not above the step before (${prev} kW)` });
        if (s.up_to_kw !== undefined) prev = Math.max(prev, s.up_to_kw);
      });
    }
  }
  const e = config.export_rules;
  if (e && e.max_export_w !== undefined && e.max_export_percent_kwp !== undefined) issues.push({ path: ['export_rules', 'max_export_percent_kwp'], message: 'give max_export_w or max_export_percent_kwp, not both' });
  return issues;
}

/** Whether any bill key is configured (without, the tariff is the energy rate alone, as before). */
export const hasBill = (c: BillConfig): boolean => BILL_KEYS.some((k) => c[k] !== undefined);

/** The terms of a bill config: VAT, standing charges, capacity charge, export rules. */
export function billTerms(c: BillConfig, site: SiteInfo, pvKwp = 0): BillTerms {
  const standingCharges: StandingCharge[] = (c.standing_charges ?? []).map((s) => ({ name: s.name, amount: s.amount, per: s.per, ...(s.valid_from ? { validFrom: s.valid_from } : {}), ...(s.valid_to ? { validTo: s.valid_to } : {}) }));
  let capacity: CapacityCharge | null = null;
  const cc = c.capacity_charge;
  if (cc?.type === 'monthly_peak') {
    capacity = { kind: 'monthly_peak', intervalMinutes: cc.interval_minutes ?? 15, minimumKw: cc.minimum_kw ?? 2.5, averageMonths: cc.average_months ?? 12, pricePerKwYear: cc.price_per_kw_year, priorPeaksKw: { ...(cc.prior_peaks_kw ?? {}) } };
  } else if (cc?.type === 'daily_peaks_step') {
    capacity = {
      kind: 'daily_peaks_step',
      intervalMinutes: cc.interval_minutes ?? 60,
      days: cc.days ?? 3,
      steps: cc.steps.map((s, i) => ({ fromKw: i === 0 ? 0 : (cc.steps[i - 1].up_to_kw ?? 0), toKw: s.up_to_kw ?? null, perMonth: s.per_month })),
    };
  }
  const e = c.export_rules ?? {};
  const exportRules: ExportRules = {
    noPayAtNegativePrice: e.no_pay_at_negative_price ?? false,
    priceReference: e.price_reference ?? 'import',
    capW: e.max_export_w !== undefined ? e.max_export_w : e.max_export_percent_kwp !== undefined && pvKwp > 0 ? (e.max_export_percent_kwp / 100) * pvKwp * 1000 : null,
  };
  return { currency: site.currency, timezone: site.timezone, vatPercent: c.vat ?? 0, standingCharges, capacity, exportRules };
}

/** A grid-fee slot: the fee per kWh and its window's name. */
export interface GridFeeSlot {
  start: number;
  end: number;
  rate: number;
  window: string;
  operator: string | null;
}

/**
 * The grid fee schedules as a function of a window: each schedule is a time_of_use series whose
 * "rate" is the index of the range (so DST days and midnight crossings resolve exactly as for
 * time_of_use), mapped back to the range's fee and window name, and cut to its validity.
 */
export function gridFeeSeries(configs: readonly GridFeeConfig[], site: SiteInfo): (window: TimeWindow) => GridFeeSlot[] {
  const compiled = configs.map((g) => {
    const ranges: GridFeeRange[] = [];
    const index = (rs: GridFeeRange[]) => rs.map((r) => ({ from: r.from, to: r.to, rate: ranges.push(r) - 1 }));
    const tou = g.rates ? { type: 'time_of_use' as const, rates: index(g.rates) } : { type: 'time_of_use' as const, schedule: (g.schedule ?? []).map((s) => ({ ...s, rates: index(s.rates) })) };
    const source = timeOfUseTariff.create({ site } as never, tou);
    const from = g.valid_from ? DateTime.fromISO(g.valid_from, { zone: site.timezone }).toMillis() : -Infinity;
    const to = g.valid_to ? DateTime.fromISO(g.valid_to, { zone: site.timezone }).toMillis() : Infinity;
    return { source, ranges, from, to, operator: g.operator ?? null };
  });
  return (window) => {
    const out: GridFeeSlot[] = [];
    for (const c of compiled) {
      const w = { start: Math.max(window.start, c.from), end: Math.min(window.end, c.to) };
      if (w.end <= w.start) continue;
      const series: PriceSeries = sliceSeries(c.source.series(w), w);
      for (const s of series) {
        const r = c.ranges[s.rate];
        out.push({ start: s.start, end: s.end, rate: r.rate, window: r.window ?? String(r.rate), operator: c.operator });
      }
    }
    return out.sort((a, b) => a.start - b.start);
  };
}

/** Whether a dated item (levy, standing charge) is in force at `t`. */
export function inForce(item: { valid_from?: string; valid_to?: string; validFrom?: string; validTo?: string }, t: number, zone: string): boolean {
  const from = item.valid_from ?? item.validFrom;
  const to = item.valid_to ?? item.validTo;
  if (from && t < DateTime.fromISO(from, { zone }).toMillis()) return false;
  if (to && t >= DateTime.fromISO(to, { zone }).toMillis()) return false;
  return true;
}

/** The levies in force over a window, cut to their validity (site-local dates). */
export function levySpans(levies: readonly LevyConfig[], window: TimeWindow, zone: string): { name: string; rate: number; start: number; end: number }[] {
  const out = [];
  for (const l of levies) {
    const from = l.valid_from ? DateTime.fromISO(l.valid_from, { zone }).toMillis() : -Infinity;
    const to = l.valid_to ? DateTime.fromISO(l.valid_to, { zone }).toMillis() : Infinity;
    const start = Math.max(window.start, from);
    const end = Math.min(window.end, to);
    if (start < end) out.push({ name: l.name, rate: l.rate, start, end });
  }
  return out;
}
