import { DateTime } from 'luxon';
import type { EpochMs, TimeWindow } from '../api/index.js';
import { capacityChargeOfMonth, previousMonth, type Bill, type BillLine, type BillTerms, type CapacityOutcome, type PeakDriver, type PeakEvent, type SlotComponents } from '../tariff/bill-model.js';
import { inForce } from '../tariff/bill-config.js';
import { firstEndingAfter } from '../tariff/series.js';

/**
 * The bill of a window, reproduced from the site's metered import and export per 15 minutes and the
 * composed tariff: energy and grid fees by window, levies, standing charges, the capacity charge
 * (with the peak that set it and the device that drove it), VAT, export earnings. Pure: no store,
 * no clock; `src/metering/bill-service.ts` feeds it.
 */

export const QUARTER_MS = 15 * 60_000;

/** Site import and export per 15-minute step from `start` (Wh). */
export interface QuarterFlows {
  start: EpochMs;
  importWh: Float64Array;
  exportWh: Float64Array;
}

export interface BillInputs {
  window: TimeWindow;
  terms: BillTerms;
  /** The per-kWh parts over the window (from `ComposedTariff.components`). */
  components: readonly SlotComponents[];
  /** Import and export per quarter hour, covering at least every local month the window touches (for the capacity charge). */
  flows: QuarterFlows;
  /** monthly_peak: the billed peak of earlier months the flows do not cover (`YYYY-MM` → kW); months with no records are left out. */
  otherMonthsKw?: Record<string, number>;
  /** The devices' import over an interval (kWh), to name what drove a peak. */
  driversAt?: (start: EpochMs, end: EpochMs) => { deviceId: string; kwh: number }[];
  warnings?: string[];
}

const cents = (x: number) => Math.round((x + Number.EPSILON * Math.sign(x)) * 100) / 100;
const r6 = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * The local calendar units (days or months) overlapping a window, each with the fraction of it
 * inside: a day by time (a whole 23- or 25-hour DST day is 1), a month by its days (a whole day of
 * a 31-day month is 1/31, whatever its hours), as suppliers prorate.
 */
export function calendarFractions(window: TimeWindow, unit: 'day' | 'month', zone: string): { start: EpochMs; end: EpochMs; fraction: number; key: string }[] {
  const out = [];
  let d = DateTime.fromMillis(window.start, { zone }).startOf(unit);
  for (; d.toMillis() < window.end; d = d.plus({ [unit]: 1 })) {
    const start = d.toMillis();
    const end = d.plus({ [unit]: 1 }).toMillis();
    if (Math.min(end, window.end) <= Math.max(start, window.start)) continue;
    const fraction = unit === 'day' ? (Math.min(end, window.end) - Math.max(start, window.start)) / (end - start) : calendarFractions({ start: Math.max(start, window.start), end: Math.min(end, window.end) }, 'day', zone).reduce((a, x) => a + x.fraction, 0) / d.daysInMonth!;
    out.push({ start, end, fraction, key: unit === 'day' ? d.toISODate()! : d.toFormat('yyyy-MM') });
  }
  return out;
}

/** Mean import power (kW) of each `stepMin` interval inside `[from, to)` (aligned to the epoch), from the quarter flows. */
function intervalPowers(flows: QuarterFlows, from: EpochMs, to: EpochMs, stepMin: number): PeakEvent[] {
  const step = stepMin * 60_000;
  const out: PeakEvent[] = [];
  for (let t = Math.ceil(from / step) * step; t + step <= to; t += step) {
    let wh = 0;
    for (let q = t; q < t + step; q += QUARTER_MS) {
      const k = (q - flows.start) / QUARTER_MS;
      if (k >= 0 && k < flows.importWh.length) wh += flows.importWh[k];
    }
    out.push({ kw: r6(wh / 1000 / (step / 3_600_000)), start: t, end: t + step });
  }
  return out;
}

/** This month's candidate peaks: the top interval (monthly_peak) or each local day's top interval (daily_peaks_step). */
export function monthPeaks(terms: BillTerms, flows: QuarterFlows, month: { start: EpochMs; end: EpochMs }): PeakEvent[] {
  const c = terms.capacity;
  if (!c) return [];
  const powers = intervalPowers(flows, month.start, month.end, c.intervalMinutes);
  if (c.kind === 'monthly_peak') {
    const top = powers.reduce<PeakEvent | undefined>((a, p) => (!a || p.kw > a.kw ? p : a), undefined);
    return top && top.kw > 0 ? [top] : [];
  }
  const days = calendarFractions(month, 'day', terms.timezone);
  const out: PeakEvent[] = [];
  for (const d of days) {
    let top: PeakEvent | undefined;
    for (const p of powers) if (p.start >= d.start && p.start < d.end && (!top || p.kw > top.kw)) top = p;
    if (top && top.kw > 0) out.push(top);
  }
  return out;
}

/** Walks quarter-hour energy through the component slots: `sink(slot, kWh)` for every piece (slot undefined where no price covers it). */
function walkQuarters(wh: Float64Array, start: EpochMs, window: TimeWindow, components: readonly SlotComponents[], sink: (slot: SlotComponents | undefined, kwh: number) => void) {
  for (let k = 0; k < wh.length; k++) {
    if (!wh[k]) continue;
    const a = Math.max(start + k * QUARTER_MS, window.start);
    const b = Math.min(start + (k + 1) * QUARTER_MS, window.end);
    if (a >= b) continue;
    const perMs = wh[k] / 1000 / QUARTER_MS;
    let t = a;
    let i = firstEndingAfter(components as SlotComponents[] as never, t);
    while (t < b) {
      const s = components[i];
      if (s && s.start <= t) {
        const e = Math.min(b, s.end);
        sink(s, perMs * (e - t));
        t = e;
        i++;
      } else {
        const e = s ? Math.min(b, s.start) : b;
        sink(undefined, perMs * (e - t));
        t = e;
      }
    }
  }
}

/** The bill of `window` (lines rounded to the cent; net, VAT and total summed from the rounded lines, as a supplier's invoice). */
export function computeBill(inp: BillInputs): Bill {
  const { window, terms, components, flows } = inp;
  const warnings = [...(inp.warnings ?? [])];
  const energy = new Map<string, { kwh: number; amount: number }>();
  const fees = new Map<string, { kwh: number; amount: number }>();
  const levies = new Map<string, { kwh: number; amount: number }>();
  const add = (m: Map<string, { kwh: number; amount: number }>, key: string, kwh: number, amount: number) => {
    const c = m.get(key) ?? { kwh: 0, amount: 0 };
    c.kwh += kwh;
    c.amount += amount;
    m.set(key, c);
  };
  let importKwh = 0;
  let exportKwh = 0;
  let unpricedKwh = 0;
  walkQuarters(flows.importWh, flows.start, window, components, (s, kwh) => {
    importKwh += kwh;
    if (!s || !Number.isFinite(s.energy)) return void (unpricedKwh += kwh);
    const w = s.window ?? 'all';
    add(energy, w, kwh, kwh * s.energy);
    if (s.window !== null || s.gridFee) add(fees, w, kwh, kwh * s.gridFee);
    for (const l of s.levyParts) add(levies, l.name, kwh, kwh * l.rate);
  });
  const exports = new Map<string, { kwh: number; amount: number }>();
  walkQuarters(flows.exportWh, flows.start, window, components, (s, kwh) => {
    exportKwh += kwh;
    if (!s || s.exportRate === null) return void (unpricedKwh += kwh);
    add(exports, s.exportPaid ? 'feed-in' : 'feed-in at negative prices (not paid)', kwh, kwh * s.exportRate);
  });
  if (unpricedKwh > 0) warnings.push(`${r6(unpricedKwh)} kWh fell in time no price covers; it is counted in the kWh but not in the money`);
  const lines = (m: Map<string, { kwh: number; amount: number }>): BillLine[] =>
    [...m].map(([label, c]) => ({ label, kwh: r6(c.kwh), rate: c.kwh ? r6(c.amount / c.kwh) : 0, amount: cents(c.amount) }));

  const standing: Bill['standing'] = [];
  for (const s of terms.standingCharges) {
    let count = 0;
    for (const u of calendarFractions(window, s.per, terms.timezone)) if (inForce(s, u.start, terms.timezone)) count += u.fraction;
    if (count > 0) standing.push({ label: s.name, count: r6(count), per: s.per, rate: s.amount, amount: cents(s.amount * count) });
  }

  const capacity: Bill['capacity'] = [];
  const c = terms.capacity;
  if (c) {
    const known: Record<string, number> = { ...(inp.otherMonthsKw ?? {}) };
    const months = calendarFractions(window, 'month', terms.timezone);
    for (const m of months) {
      // earlier months the flows cover count from the records
      if (c.kind === 'monthly_peak') {
        let prev = m.key;
        for (let i = 1; i < c.averageMonths; i++) {
          prev = previousMonth(prev);
          const ps = DateTime.fromFormat(prev, 'yyyy-MM', { zone: terms.timezone });
          const span = { start: ps.toMillis(), end: ps.plus({ months: 1 }).toMillis() };
          if (span.start >= flows.start && span.end <= flows.start + flows.importWh.length * QUARTER_MS) {
            const top = monthPeaks(terms, flows, span)[0];
            if (top) known[prev] = top.kw;
          }
        }
      }
      const peaks = monthPeaks(terms, flows, m);
      const outcome: CapacityOutcome = capacityChargeOfMonth(c, m.key, peaks, known);
      const drivers: PeakDriver[] = [];
      for (const p of outcome.peaks) {
        const siteKwh = (p.kw * (p.end - p.start)) / 3_600_000;
        const top = (inp.driversAt?.(p.start, p.end) ?? []).filter((d) => d.kwh > 0).sort((a, b) => b.kwh - a.kwh)[0];
        if (top) drivers.push({ peakStart: p.start, deviceId: top.deviceId, kwh: r6(top.kwh), share: siteKwh > 0 ? r6(Math.min(1, top.kwh / siteKwh)) : 0 });
      }
      const label = c.kind === 'monthly_peak' ? `capacity ${m.key}: mean peak ${r6(outcome.measureKw)} kW × ${c.pricePerKwYear}/kW-year ÷ 12` : `capacity ${m.key}: step ${outcome.step!.fromKw}–${outcome.step!.toKw ?? '∞'} kW (mean of the top ${c.days} daily peaks ${r6(outcome.measureKw)} kW)`;
      capacity.push({ label, month: m.key, amount: cents(outcome.charge * m.fraction), outcome, drivers });
    }
  }

  const energyLines = lines(energy);
  const feeLines = lines(fees);
  const levyLines = lines(levies);
  const exportLines = lines(exports);
  const sum = (ls: { amount: number }[]) => ls.reduce((a, l) => a + l.amount, 0);
  const net = cents(sum(energyLines) + sum(feeLines) + sum(levyLines) + sum(standing) + sum(capacity));
  const vat = cents((net * terms.vatPercent) / 100);
  const earnings = cents(sum(exportLines));
  return {
    currency: terms.currency,
    window,
    energy: energyLines,
    gridFees: feeLines,
    levies: levyLines,
    standing,
    capacity,
    net,
    vatPercent: terms.vatPercent,
    vat,
    exportEarnings: exportLines,
    total: cents(net + vat - earnings),
    importKwh: r6(importKwh),
    exportKwh: r6(exportKwh),
    unpricedKwh: r6(unpricedKwh),
    warnings,
  };
}
