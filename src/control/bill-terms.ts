import { DateTime } from 'luxon';
import type { EnergyInterval } from '../optimiser/forecast/index.js';
import type { SiteProblem } from '../optimiser/site/index.js';
import type { BillTerms, ComposedTariff, SlotComponents } from '../tariff/bill-model.js';
import { HOUR } from '../api/time.js';


/**
 * Hands the planner the parts of the bill that per-kWh rates cannot carry (issue 17 item 2): the
 * capacity charge (a monthly peak, or the Norwegian steps) and the export rules (a cap in W, slots
 * whose export is unpaid). Grid-fee windows, levies and VAT are already in the rates the tariff
 * service answers (`series('IMPORT')` is all-in), and so is the negative-price rule's 0.
 *
 * Money: the capacity parts are net of VAT in the terms; the plan's rates are all-in, so they are
 * grossed up by the terms' VAT here. A Flemish peak is priced at `pricePerKwYear / 12` per kW above
 * the month's running peak, whatever `averageMonths` is: one kW more this month adds 1/n kW to each of
 * the next n monthly means, i.e. 1/n × n = 1 month's price in total (see PeakCharge).
 *
 * The peak already reached this month comes from `siteImport`: quarter-hours of the site's net
 * import (Wh, + = import), from the meters the hub has (an approximation where some flow has no meter).
 */
export function applyBillTerms(
  problem: SiteProblem,
  terms: BillTerms,
  opts: { now: number; siteImport: readonly EnergyInterval[]; components?: readonly SlotComponents[] },
): string[] {
  const notes: string[] = [];
  const tz = terms.timezone;
  const gross = 1 + terms.vatPercent / 100;
  const monthStart = DateTime.fromMillis(opts.now, { zone: tz }).startOf('month');
  const monthEnd = monthStart.plus({ months: 1 }).toMillis();
  const thisMonth = opts.siteImport.filter((q) => q.start >= monthStart.toMillis() && q.end <= opts.now);
  const cap = terms.capacity;
  if (cap?.kind === 'monthly_peak') {
    // the metering interval's mean import: quarters summed into intervals of its length
    const step = cap.intervalMinutes * 60_000;
    const byInterval = new Map<number, number>();
    for (const q of thisMonth) byInterval.set(Math.floor(q.start / step) * step, (byInterval.get(Math.floor(q.start / step) * step) ?? 0) + q.wh);
    const runningPeakW = Math.max(0, ...[...byInterval.values()].map((wh) => wh / (step / HOUR)));
    problem.peakCharge = { pricePerKwMonth: (cap.pricePerKwYear / 12) * gross, minimumW: cap.minimumKw * 1000, runningPeakW, monthEnd };
    notes.push(`capacity charge: ${((cap.pricePerKwYear / 12) * gross).toFixed(2)} ${terms.currency} per kW above this month's peak so far (${(Math.max(runningPeakW, cap.minimumKw * 1000) / 1000).toFixed(2)} kW)`);
  } else if (cap?.kind === 'daily_peaks_step') {
    const hours = new Map<number, number>();
    for (const q of thisMonth) hours.set(Math.floor(q.start / HOUR) * HOUR, (hours.get(Math.floor(q.start / HOUR) * HOUR) ?? 0) + q.wh);
    const dailyPeaksW: Record<string, number> = {};
    const currentHour = Math.floor(opts.now / HOUR) * HOUR;
    for (const [h, wh] of hours) {
      if (h === currentHour) continue;
      const day = DateTime.fromMillis(h, { zone: tz }).toISODate()!;
      dailyPeaksW[day] = Math.max(dailyPeaksW[day] ?? 0, wh);
    }
    const sorted = [...cap.steps].sort((a, b) => a.fromKw - b.fromKw);
    problem.peakTiers = {
      tiers: sorted.map((s) => ({ upToW: s.toKw === null ? Infinity : s.toKw * 1000, feePerMonth: s.perMonth * gross })),
      dailyPeaksW,
      timezone: tz,
      topDays: cap.days,
      currentHourWh: Math.max(0, hours.get(currentHour) ?? 0),
      monthEnd,
    };
    notes.push(`capacity steps: the mean of the ${cap.days} highest daily hourly peaks (${Object.keys(dailyPeaksW).length} days of this month known)`);
  }
  const rules = terms.exportRules;
  if (rules.capW !== null) problem.grid.maxExportW = problem.grid.maxExportW.map((w) => Math.min(w, rules.capW!));
  if (rules.noPayAtNegativePrice && opts.components?.length) {
    const comps = opts.components;
    problem.avoidExport = problem.slots.map((s) => comps.some((c) => c.end > s.start && c.start < s.end && !c.exportPaid));
  }
  return notes;
}

/** The composed tariff behind a price lookup, when it is one (the hub's tariff service). */
export function composedTariff(prices: unknown): ComposedTariff | undefined {
  const p = prices as Partial<ComposedTariff> | undefined;
  return p && typeof p.terms === 'function' && typeof p.components === 'function' ? (p as ComposedTariff) : undefined;
}
