import type { EpochMs, TimeWindow } from '../api/index.js';

/**
 * THE INTERFACE of the composed tariff (issue 17): what the bill is made of, normalised, for every
 * consumer (the planner, the bill report, savings). Keep these types stable; add optional fields
 * rather than change existing ones.
 *
 * A bill = Σ per-kWh parts over the metered energy (energy, grid fee by window, levies)
 *        + standing charges (per day or per month)
 *        + a capacity charge (per month, from the month's peaks)
 *        + VAT on all of the above when the tariff gives `vat` (the parts are then net)
 *        − export earnings (export energy × the export rate after the export rules).
 *
 * `PriceLookup.series('IMPORT')` (hub.tariffs) answers the all-in per-kWh import rate
 * (`SlotComponents.importRate`) and `series('EXPORT')` the export rate after the export rules
 * (`SlotComponents.exportRate`), so consumers that only know per-kWh rates already see grid-fee
 * windows and the negative-price rule. Standing charges do not depend on what the site does; the
 * capacity charge does, through `capacityChargeOfMonth` below.
 */

/** Money in the site currency (major units); energy in kWh; power in kW unless a name says W. */
export type Money = number;

/** One slot of the composed tariff: every per-kWh part in force over `[start, end)`. */
export interface SlotComponents {
  start: EpochMs;
  end: EpochMs;
  /** Energy rate per kWh imported, as the energy source gives it (net of VAT when `vatPercent` > 0). */
  energy: number;
  /** Grid fee per kWh imported in this slot's window (0 when no grid fee schedule is configured). */
  gridFee: number;
  /** The grid fee window's name (e.g. §14a module 3 `low` | `standard` | `high`); null without a schedule. */
  window: string | null;
  /** The grid operator whose schedule is in force; null without one. */
  operator: string | null;
  /** Sum of the levies per kWh imported (each by name in `levyParts`). */
  levies: number;
  levyParts: { name: string; rate: number }[];
  /** VAT percent on the import parts (0 = the rates already include VAT or there is none). */
  vatPercent: number;
  /** The all-in marginal import rate: (energy + gridFee + levies) · (1 + vatPercent/100). */
  importRate: number;
  /** The export rate as the export source gives it, before the export rules. */
  exportSourceRate: number | null;
  /** The export rate after the export rules (0 or the source rate when it is negative, see `ExportRules`). */
  exportRate: number | null;
  /** False when a rule withholds feed-in pay in this slot (the reference price is negative). */
  exportPaid: boolean;
  /** Lowest confidence of the slots composed (1 = published prices). */
  confidence: number;
}

/** A fixed charge that runs with time, whatever the site does. */
export interface StandingCharge {
  name: string;
  /** Net of VAT when the tariff gives `vat`. */
  amount: Money;
  /** Charged for every local calendar day (23, 24 or 25 hours alike) or every local calendar month. */
  per: 'day' | 'month';
  /** Local date `YYYY-MM-DD` from which it applies (inclusive); none = always. */
  validFrom?: string;
  /** Local date until which it applies (exclusive); none = open ended. */
  validTo?: string;
}

/**
 * Belgian (Flanders, Fluvius) capacity tariff: each calendar month's peak is the highest average
 * import power over one `intervalMinutes` (15) metering interval, counted at least `minimumKw`
 * (2.5); the month is billed `pricePerKwYear / 12 × mean(peaks of the last `averageMonths` months,
 * this month included)`. Months before metering began come from `priorPeaksKw`; months with neither
 * are left out of the mean (fewer than 12 known months = the mean of those known).
 */
export interface MonthlyPeakCapacity {
  kind: 'monthly_peak';
  intervalMinutes: number;
  minimumKw: number;
  averageMonths: number;
  /** Net per kW per year (Fluvius publishes €/kW/year; billed 1/12 per month). */
  pricePerKwYear: Money;
  /** Monthly peaks (kW) known from the operator for months before the hub metered: `YYYY-MM` → kW. */
  priorPeaksKw: Record<string, number>;
}

/** One step of a stepped capacity charge: applies when the measured kW is in `[fromKw, toKw)`. */
export interface CapacityStep {
  fromKw: number;
  /** Null = no upper bound (the last step). */
  toKw: number | null;
  /** Net charge for the month. */
  perMonth: Money;
}

/**
 * Norwegian capacity charge (kapasitetsledd / "fastledd etter effekt"): the mean of the `days` (3)
 * highest daily peaks of the month, each day's peak being its highest hourly (`intervalMinutes` = 60)
 * average import power, picks a step; the month pays that step's amount.
 */
export interface DailyPeaksStepCapacity {
  kind: 'daily_peaks_step';
  intervalMinutes: number;
  days: number;
  steps: CapacityStep[];
}

export type CapacityCharge = MonthlyPeakCapacity | DailyPeaksStepCapacity;

/** Export rules: what feed-in earns and how much may be fed in. */
export interface ExportRules {
  /**
   * No feed-in pay while the reference price is negative: the export rate becomes
   * min(export rate, 0) (a paid feed-in becomes 0; a negative dynamic rate stays a cost).
   */
  noPayAtNegativePrice: boolean;
  /** Which price decides "negative": the import energy rate (before grid fees, levies, VAT) or the export rate. */
  priceReference: 'import' | 'export';
  /** Most power that may be fed in (W); null = no cap. From `max_export_w`, or `max_export_percent_kwp` × the site's PV kWp. */
  capW: number | null;
}

/** Everything of a tariff beyond the per-slot rates: what a consumer needs besides `SlotComponents`. */
export interface BillTerms {
  currency: string;
  timezone: string;
  vatPercent: number;
  standingCharges: StandingCharge[];
  capacity: CapacityCharge | null;
  exportRules: ExportRules;
}

/** The composed tariff as a consumer sees it (implemented by `TariffService`). */
export interface ComposedTariff {
  terms(): BillTerms;
  /** The per-kWh parts over a window, cut where any part changes (at least at every grid-fee window edge and energy slot). */
  components(window: TimeWindow): SlotComponents[];
}

// ------------------------------------------------------------------ capacity arithmetic (pure)

/** The peaks that set a month's capacity charge, with when they happened. */
export interface PeakEvent {
  /** Mean import power over the interval (kW). */
  kw: number;
  start: EpochMs;
  end: EpochMs;
}

/** The capacity charge of one month and what set it. */
export interface CapacityOutcome {
  /** Net charge for the month. */
  charge: Money;
  /** The measure the charge was computed from: the rolling mean (monthly_peak) or the mean of the top days (daily_peaks_step), kW. */
  measureKw: number;
  /** This month's billed peak (monthly_peak: at least the minimum) or the mean of the top daily peaks. */
  monthKw: number;
  /** The peaks of this month that count (one for monthly_peak; `days` of them for daily_peaks_step). */
  peaks: PeakEvent[];
  /** monthly_peak: the months averaged (`YYYY-MM` → kW, each at least the minimum). */
  months?: Record<string, number>;
  /** daily_peaks_step: the step picked. */
  step?: CapacityStep;
}

/** The step a measure falls in (the last step whose `fromKw` ≤ kW). */
export function stepFor(steps: readonly CapacityStep[], kw: number): CapacityStep {
  let pick = steps[0];
  for (const s of steps) if (kw >= s.fromKw && (s.toKw === null || kw < s.toKw)) return s;
  for (const s of steps) if (kw >= s.fromKw) pick = s;
  return pick;
}

/**
 * The month's capacity charge given this month's peak measure and (monthly_peak) the other months'
 * peaks. `monthPeaks` are this month's candidate peaks: for monthly_peak the highest interval; for
 * daily_peaks_step each day's highest interval (any order; the top `days` are taken).
 */
export function capacityChargeOfMonth(charge: CapacityCharge, month: string, monthPeaks: readonly PeakEvent[], otherMonthsKw: Record<string, number> = {}): CapacityOutcome {
  if (charge.kind === 'monthly_peak') {
    const top = monthPeaks.reduce<PeakEvent | undefined>((a, p) => (!a || p.kw > a.kw ? p : a), undefined);
    const monthKw = Math.max(charge.minimumKw, top?.kw ?? 0);
    const months: Record<string, number> = {};
    let m = month;
    for (let i = 0; i < charge.averageMonths; i++) {
      if (i === 0) months[m] = monthKw;
      else {
        const kw = otherMonthsKw[m] ?? charge.priorPeaksKw[m];
        if (kw !== undefined) months[m] = Math.max(charge.minimumKw, kw);
      }
      m = previousMonth(m);
    }
    const values = Object.values(months);
    const measureKw = values.reduce((a, b) => a + b, 0) / values.length;
    return { charge: (charge.pricePerKwYear / 12) * measureKw, measureKw, monthKw, peaks: top ? [top] : [], months };
  }
  const peaks = [...monthPeaks].sort((a, b) => b.kw - a.kw || a.start - b.start).slice(0, charge.days);
  const monthKw = peaks.length ? peaks.reduce((a, p) => a + p.kw, 0) / peaks.length : 0;
  const step = stepFor(charge.steps, monthKw);
  return { charge: step.perMonth, measureKw: monthKw, monthKw, peaks, step };
}

/** `YYYY-MM` of the month before. */
export function previousMonth(month: string): string {
  const y = Number(month.slice(0, 4));
  const m = Number(month.slice(5, 7));
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

/** The all-in import rate of slot parts: (energy + gridFee + levies) · (1 + vat/100). */
export const allInImportRate = (energy: number, gridFee: number, levies: number, vatPercent: number): number => Math.round((energy + gridFee + levies) * (1 + vatPercent / 100) * 1e9) / 1e9;

/** The export rate after the rules: no pay while the reference price is negative. */
export const ruledExportRate = (exportRate: number, reference: number | undefined, rules: ExportRules): { rate: number; paid: boolean } =>
  rules.noPayAtNegativePrice && reference !== undefined && reference < 0 ? { rate: Math.min(exportRate, 0), paid: false } : { rate: exportRate, paid: true };

// ------------------------------------------------------------------ the bill (what `computeBill` answers)

/** Energy and money of one line of the bill (money net of VAT when the tariff gives VAT). */
export interface BillLine {
  label: string;
  kwh?: number;
  /** Mean rate per kWh of the line (money / kWh), when it is per kWh. */
  rate?: number;
  amount: Money;
}

/** One month's (or any window's) bill, every part itemised; `total` is what the supplier bills. */
export interface Bill {
  currency: string;
  window: TimeWindow;
  /** Energy by the grid fee window (or `all` without windows): kWh, energy money. */
  energy: BillLine[];
  /** Grid fees by window. */
  gridFees: BillLine[];
  /** Levies by name. */
  levies: BillLine[];
  /** Standing charges by name: amount × days (or months) in the window. */
  standing: (BillLine & { count: number; per: 'day' | 'month' })[];
  /** Capacity charge per calendar month touched (pro rata by days when the window cuts a month), with the peaks that set it. */
  capacity: (BillLine & { month: string; outcome: CapacityOutcome; drivers: PeakDriver[] })[];
  /** Sum before VAT of the lines above. */
  net: Money;
  vatPercent: number;
  vat: Money;
  /** Export earnings (after the export rules); subtracted from the total. */
  exportEarnings: BillLine[];
  /** net + vat − export earnings. */
  total: Money;
  importKwh: number;
  exportKwh: number;
  /** Energy in time no price covers (in the kWh, not in the money). */
  unpricedKwh: number;
  warnings: string[];
}

/** Which device drew most over a peak interval, from the device meters (kWh over the interval). */
export interface PeakDriver {
  peakStart: EpochMs;
  deviceId: string;
  kwh: number;
  /** Share of the site's import over the interval. */
  share: number;
}
