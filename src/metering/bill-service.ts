import { DateTime } from 'luxon';
import { ApiError, type EpochMs, type TimeWindow } from '../api/index.js';
import type { PriceLookup } from '../core/services.js';
import type { Bill, CapacityOutcome } from '../tariff/bill-model.js';
import { capacityOutcomes, computeBill, type QuarterFlows } from './bill.js';
import { localIso } from './costs.js';
import { BUCKET_MS, FLAG_EXPORT, FLOWS_OF, locationSubject, subjectId, subjectKind } from './records.js';
import type { MeterRecordStore } from './store-api.js';

/**
 * The site's bill from its records: the grid meter (records of the location) per 15 minutes, else the
 * device meters' net flow; the composed tariff of the tariff part. Feeds `computeBill`.
 */

export interface BillSource {
  store: MeterRecordStore;
  site: { id: string; timezone: string; currency: string };
  prices: () => PriceLookup | undefined;
}

/** Import and export of the site per quarter hour over `[a, b)` (on the 15-minute grid). */
function siteFlows(src: BillSource, a: EpochMs, b: EpochMs): { flows: QuarterFlows; measuredBy: 'grid_meter' | 'device_meters' } {
  const n = Math.max(0, (b - a) / BUCKET_MS);
  const flows: QuarterFlows = { start: a, importWh: new Float64Array(n), exportWh: new Float64Array(n) };
  const grid = locationSubject(src.site.id);
  if (src.store.has(grid)) {
    const set = src.store.buckets(grid, a, b);
    for (let i = 0; i < set.n; i++) {
      const k = (set.start[i] - a) / BUCKET_MS;
      if (set.flags[i] & FLAG_EXPORT) flows.exportWh[k] += set.energy[i];
      else flows.importWh[k] += set.energy[i];
    }
    return { flows, measuredBy: 'grid_meter' };
  }
  // no grid meter: the device meters' net per quarter hour (a device metered by channels counts by its channels alone)
  const net = new Float64Array(n);
  const subjects = src.store.subjects().map((x) => x.subject).filter((x) => subjectKind(x) === 'device');
  const channelled = new Set(subjects.filter((x) => subjectId(x).includes(':')).map((x) => subjectId(x).split(':')[0]));
  for (const sub of subjects) {
    if (!subjectId(sub).includes(':') && channelled.has(subjectId(sub))) continue;
    const set = src.store.buckets(sub, a, b);
    for (let i = 0; i < set.n; i++) net[(set.start[i] - a) / BUCKET_MS] += set.flags[i] & FLAG_EXPORT ? -set.energy[i] : set.energy[i];
  }
  net.forEach((wh, k) => {
    if (wh > 0) flows.importWh[k] = wh;
    else flows.exportWh[k] = -wh;
  });
  return { flows, measuredBy: 'device_meters' };
}

/** The bill of a window (snapped out to the 15-minute grid), with what measured it. */
export function siteBill(src: BillSource, window: TimeWindow): { bill: Bill; measuredBy: 'grid_meter' | 'device_meters' } {
  const lookup = src.prices();
  if (!lookup?.components || !lookup.terms) throw new ApiError(503, 'tariffs_unavailable', 'no tariff is loaded yet, so the bill cannot be priced; check the tariffs section of the site file and the hub log');
  const zone = src.site.timezone;
  const a = Math.floor(window.start / BUCKET_MS) * BUCKET_MS;
  const b = Math.ceil(window.end / BUCKET_MS) * BUCKET_MS;
  const terms = lookup.terms();
  // the capacity charge looks at whole months, and a rolling mean at the months before
  let from = DateTime.fromMillis(a, { zone }).startOf('month');
  const to = DateTime.fromMillis(b - 1, { zone }).startOf('month').plus({ months: 1 }).toMillis();
  if (terms.capacity?.kind === 'monthly_peak') from = from.minus({ months: terms.capacity.averageMonths - 1 });
  const span = terms.capacity ? { start: Math.min(a, from.toMillis()), end: Math.max(b, to) } : { start: a, end: b };
  const { flows, measuredBy } = siteFlows(src, span.start, span.end);
  const warnings: string[] = [];
  if (measuredBy === 'device_meters') warnings.push("the site has no grid meter (records of the location): the bill is the device meters' net flow per 15 minutes");
  const deviceSubjects = src.store.subjects().map((x) => x.subject).filter((x) => subjectKind(x) === 'device');
  const driversAt = (start: EpochMs, end: EpochMs) =>
    deviceSubjects.map((sub) => {
      const set = src.store.buckets(sub, Math.floor(start / BUCKET_MS) * BUCKET_MS, Math.ceil(end / BUCKET_MS) * BUCKET_MS, FLOWS_OF.IMPORT);
      let wh = 0;
      for (let i = 0; i < set.n; i++) wh += set.energy[i];
      return { deviceId: subjectId(sub), kwh: wh / 1000 };
    });
  const bill = computeBill({ window: { start: a, end: b }, terms, components: lookup.components({ start: a, end: b }), flows, driversAt, warnings });
  return { bill, measuredBy };
}

/**
 * For the planner: the capacity charge of the month holding `now` as it stands from the records so
 * far — the peaks already reached (monthly_peak: the month's top interval; daily_peaks_step: each day's
 * top interval) and the charge they set. Null without a capacity charge.
 */
export function capacitySoFar(src: BillSource, now: EpochMs): { month: string; start: EpochMs; end: EpochMs; outcome: CapacityOutcome } | null {
  const terms = src.prices()?.terms?.();
  const c = terms?.capacity;
  if (!terms || !c) return null;
  const zone = src.site.timezone;
  const monthStart = DateTime.fromMillis(now, { zone }).startOf('month');
  const from = c.kind === 'monthly_peak' ? monthStart.minus({ months: c.averageMonths - 1 }).toMillis() : monthStart.toMillis();
  const end = Math.ceil(now / BUCKET_MS) * BUCKET_MS;
  const { flows } = siteFlows(src, from, end);
  const [m] = capacityOutcomes(terms, flows, { start: monthStart.toMillis(), end });
  return m ? { month: m.month, start: monthStart.toMillis(), end, outcome: m.outcome } : null;
}

const iso = (t: EpochMs, zone: string) => localIso(t, zone);

/** The bill as the API answers it (snake_case, local RFC 3339 times). */
export function billView(bill: Bill, site: BillSource['site'], measuredBy: string, month?: string) {
  const zone = site.timezone;
  const line = (l: { label: string; kwh?: number; rate?: number; amount: number }, key = 'label') => ({ [key]: l.label, ...(l.kwh !== undefined ? { kwh: l.kwh } : {}), ...(l.rate !== undefined ? { rate: l.rate } : {}), amount: l.amount });
  return {
    object: 'bill' as const,
    location_id: site.id,
    location_timezone: zone,
    currency_code: site.currency,
    ...(month ? { month } : {}),
    start_time: iso(bill.window.start, zone),
    end_time: iso(bill.window.end, zone),
    measured_by: measuredBy,
    energy: bill.energy.map((l) => line(l, 'window')),
    grid_fees: bill.gridFees.map((l) => line(l, 'window')),
    levies: bill.levies.map((l) => line(l, 'name')),
    standing_charges: bill.standing.map((l) => ({ name: l.label, per: l.per, count: l.count, rate: l.rate, amount: l.amount })),
    capacity_charges: bill.capacity.map((c) => ({
      month: c.month,
      description: c.label,
      method: c.outcome.step ? 'daily_peaks_step' : 'monthly_peak',
      measure_kw: Math.round(c.outcome.measureKw * 1e6) / 1e6,
      month_peak_kw: Math.round(c.outcome.monthKw * 1e6) / 1e6,
      ...(c.outcome.months ? { months_averaged: c.outcome.months } : {}),
      ...(c.outcome.step ? { step: { from_kw: c.outcome.step.fromKw, to_kw: c.outcome.step.toKw, per_month: c.outcome.step.perMonth } } : {}),
      peaks: c.outcome.peaks.map((p) => {
        const d = c.drivers.find((x) => x.peakStart === p.start);
        return { kw: p.kw, start_time: iso(p.start, zone), end_time: iso(p.end, zone), driven_by: d ? { device_id: d.deviceId, kwh: d.kwh, share: d.share } : null };
      }),
      amount: c.amount,
    })),
    net: bill.net,
    vat_percent: bill.vatPercent,
    vat: bill.vat,
    export_earnings: bill.exportEarnings.map((l) => line(l)),
    total: bill.total,
    import_kwh: bill.importKwh,
    export_kwh: bill.exportKwh,
    unpriced_kwh: bill.unpricedKwh,
    ...(bill.warnings.length ? { warnings: bill.warnings } : {}),
  };
}

/** `month=YYYY-MM` → the local month's window. */
export function monthWindow(month: string, zone: string, field = 'month'): TimeWindow {
  const d = /^\d{4}-(0[1-9]|1[0-2])$/.test(month) ? DateTime.fromFormat(month, 'yyyy-MM', { zone }) : undefined;
  if (!d?.isValid) throw new ApiError(400, 'invalid_parameter', `${field}: must be a month YYYY-MM, got ${JSON.stringify(month)}`, { field });
  return { start: d.toMillis(), end: d.plus({ months: 1 }).toMillis() };
}
