import { DateTime } from 'luxon';
import type { EpochMs, TimeWindow } from '../api/index.js';
import { emptyCell, intervalSet, mergeCell, round, type CostCell } from './costs.js';
import { BUCKET_MS, FLOW, FLOWS_OF, HOUR, flagsOf } from './records.js';
import type { IntervalSet } from './store.js';

/**
 * Pure savings arithmetic and the baselines of DESIGN.md §4, built from metered energy and device
 * settings. No I/O, no clock.
 */

export { DEVICE_KINDS, type DeviceKind } from '../api/device-kind.js';

export interface SavingsFigures {
  baseline_cost: number;
  actual_cost: number;
  savings: number;
  /** Savings as a share of the baseline cost, in %; null when the baseline cost nothing. */
  savings_percentage: number | null;
  baseline_energy: { units: 'WH'; value: number };
  actual_energy: { units: 'WH'; value: number };
}

export function figures(baselineCost: number, actualCost: number, baselineWh: number, actualWh: number): SavingsFigures {
  const savings = baselineCost - actualCost;
  return {
    baseline_cost: round(baselineCost, 5),
    actual_cost: round(actualCost, 5),
    savings: round(savings, 5),
    savings_percentage: baselineCost > 0 ? round((savings / baselineCost) * 100, 2) : null,
    baseline_energy: { units: 'WH', value: round(baselineWh, 3) },
    actual_energy: { units: 'WH', value: round(actualWh, 3) },
  };
}

/** Cells by flow (`FLOW[direction][rate]`), as `CostAccumulator.flowTotal` gives them. */
export type FlowCells = readonly CostCell[];

/**
 * The storage guide: the energy supplied to the premises (direction EXPORT, tariff_rate IMPORT)
 * would otherwise have been bought at the import rate: that is the baseline. The actual cost is
 * what charging cost (direction IMPORT; LOCAL energy is free) minus export earnings
 * (EXPORT/EXPORT). Savings = supplied value + export earnings − charging cost.
 */
export function storageSavings(cells: FlowCells, forgoneExport: CostCell = emptyCell()) {
  const takenIn = emptyCell();
  for (const f of FLOWS_OF.IMPORT) mergeCell(takenIn, cells[f]);
  const supplied = cells[FLOW.EXPORT.IMPORT];
  const exported = cells[FLOW.EXPORT.EXPORT];
  const baselineCost = supplied.cost;
  const actualCost = takenIn.cost - exported.cost;
  const flatpeak = figures(baselineCost, actualCost, supplied.energyWh, takenIn.energyWh);
  // the guide counts stored PV as free; without the battery it would have been exported and paid
  const net = figures(baselineCost, actualCost + forgoneExport.cost, supplied.energyWh, takenIn.energyWh);
  return {
    ...flatpeak,
    flatpeak_savings: flatpeak.savings,
    forgone_export_value: round(forgoneExport.cost, 5),
    net_savings: net.savings,
    net_savings_percentage: net.savings_percentage,
    storage: {
      imported: { energy: round(takenIn.energyWh, 3), local_energy: round(cells[FLOW.IMPORT.LOCAL].energyWh, 3), cost: round(takenIn.cost, 5) },
      supplied: { energy: round(supplied.energyWh, 3), value: round(supplied.cost, 5) },
      exported: { energy: round(exported.energyWh, 3), value: round(exported.cost, 5) },
      forgone_export: { energy: round(forgoneExport.energyWh, 3), value: round(forgoneExport.cost, 5) },
    },
  };
}


/** The battery's LOCAL intake (stored PV) as if priced at the export rate: what exporting it instead would have earned. */
export function localIntakeAsExport(set: IntervalSet): IntervalSet {
  const items = [];
  for (let i = 0; i < set.n; i++) if (set.flags[i] === FLOW.IMPORT.LOCAL) items.push({ start: set.start[i], end: set.end[i], energyWh: set.energy[i], flags: FLOW.IMPORT.EXPORT, confidence: set.confidence[i] });
  return intervalSet(items);
}

/** A shifted load: the baseline's cost minus the actual cost. The actual may use more energy and still save. */
export function loadShiftSavings(baseline: CostCell, actual: CostCell): SavingsFigures {
  return figures(baseline.cost, actual.cost, baseline.energyWh, actual.energyWh);
}

const IMPORT_FLAGS = flagsOf('IMPORT', 'IMPORT');

/** EV baseline: each session's energy drawn at full power from plug-in, priced at the import rate. */
export function evBaseline(sessions: readonly { plugIn: EpochMs; energyWh: number }[], maxPowerW: number): IntervalSet {
  if (!(maxPowerW > 0)) throw new Error('the EV baseline needs the charger’s full power');
  return intervalSet(
    sessions
      .filter((s) => s.energyWh > 0)
      .map((s) => ({ start: s.plugIn, end: s.plugIn + Math.max(1, Math.round((s.energyWh / maxPowerW) * HOUR)), energyWh: s.energyWh, flags: IMPORT_FLAGS })),
  );
}

/** Switched-load baseline: each window's energy at rated power from the load's default start. */
export function switchedBaseline(runs: readonly { defaultStart: EpochMs; energyWh: number }[], ratedPowerW: number): IntervalSet {
  if (!(ratedPowerW > 0)) throw new Error('the switched-load baseline needs the load’s rated power');
  return intervalSet(
    runs
      .filter((r) => r.energyWh > 0)
      .map((r) => ({ start: r.defaultStart, end: r.defaultStart + Math.max(1, Math.round((r.energyWh / ratedPowerW) * HOUR)), energyWh: r.energyWh, flags: IMPORT_FLAGS })),
  );
}

/** Half-width of the HVAC baseline's moving average, in 15-minute buckets (±3 h: how far pre-cooling and coasting move energy). */
export const HVAC_SMOOTHING_BUCKETS = 12;

/**
 * HVAC baseline: a thermostat holding its setpoint draws power as the heat load comes, which moves
 * slowly with the weather; pre-cooling and coasting move energy by a few hours. The baseline is the
 * metered energy per 15 minutes averaged over ±3 hours, which undoes that shift and keeps the total.
 * `energy[k]` is the bucket starting at `firstQuarter + k` (15-minute index); the returned buckets
 * cover `window` (on the 15-minute grid), and `energy` must reach 3 hours beyond it on both sides.
 */
export function hvacBaseline(energy: Float64Array, firstQuarter: number, window: TimeWindow, half = HVAC_SMOOTHING_BUCKETS): IntervalSet {
  const q0 = window.start / BUCKET_MS;
  const q1 = window.end / BUCKET_MS;
  const items = [];
  const width = 2 * half + 1;
  for (let q = q0; q < q1; q++) {
    let sum = 0;
    for (let k = q - half; k <= q + half; k++) {
      const idx = k - firstQuarter;
      if (idx >= 0 && idx < energy.length) sum += energy[idx];
    }
    if (sum > 0) items.push({ start: q * BUCKET_MS, end: (q + 1) * BUCKET_MS, energyWh: sum / width, flags: IMPORT_FLAGS });
  }
  return intervalSet(items);
}

/** Local daily windows `from`–`to` (HH:MM, `to` ≤ `from` crosses midnight) starting inside `[window.start − 1 day, window.end)`. */
export function dailyWindows(window: TimeWindow, from: string, to: string, timezone: string): TimeWindow[] {
  const [fh, fm] = from.split(':').map(Number);
  const [th, tm] = to.split(':').map(Number);
  const out: TimeWindow[] = [];
  let day = DateTime.fromMillis(window.start, { zone: timezone }).startOf('day').minus({ days: 1 });
  while (day.toMillis() < window.end) {
    const start = day.set({ hour: fh, minute: fm });
    let end = day.set({ hour: th, minute: tm });
    if (end <= start) end = end.plus({ days: 1 });
    if (end.toMillis() > window.start && start.toMillis() < window.end) out.push({ start: start.toMillis(), end: end.toMillis() });
    day = day.plus({ days: 1 });
  }
  return out;
}

/** Local instant of HH:MM on the local day of `t`. */
export function localTimeOn(t: EpochMs, hhmm: string, timezone: string): EpochMs {
  const [h, m] = hhmm.split(':').map(Number);
  return DateTime.fromMillis(t, { zone: timezone }).set({ hour: h, minute: m, second: 0, millisecond: 0 }).toMillis();
}
