import type { PriceSeries, TimeWindow } from '../api/index.js';
import { allInImportRate, ruledExportRate, type BillTerms, type SlotComponents } from './bill-model.js';
import type { GridFeeSlot } from './bill-config.js';
import { firstEndingAfter } from './series.js';

/** A levy in force over a span (the span cut from its validity dates). */
export interface LevySpan {
  name: string;
  rate: number;
  start: number;
  end: number;
}

interface Piece {
  start: number;
  end: number;
  imp?: { rate: number; confidence: number };
  exp?: { rate: number; confidence: number };
  fee?: GridFeeSlot;
}

/** The pieces of a window cut at every edge of the three series (pure; series sorted, non-overlapping). */
function pieces(window: TimeWindow, imp: PriceSeries, exp: PriceSeries, fees: readonly GridFeeSlot[], levies: readonly LevySpan[]): Piece[] {
  const edges = new Set<number>([window.start, window.end]);
  const add = (s: { start: number; end: number }) => {
    if (s.start > window.start && s.start < window.end) edges.add(s.start);
    if (s.end > window.start && s.end < window.end) edges.add(s.end);
  };
  imp.forEach(add);
  exp.forEach(add);
  fees.forEach(add);
  levies.forEach(add);
  const ts = [...edges].sort((a, b) => a - b);
  const out: Piece[] = [];
  let fi = 0;
  for (let k = 0; k + 1 < ts.length; k++) {
    const start = ts[k];
    const end = ts[k + 1];
    const i = imp[firstEndingAfter(imp, start)];
    const e = exp[firstEndingAfter(exp, start)];
    while (fi < fees.length && fees[fi].end <= start) fi++;
    const f = fees[fi] && fees[fi].start <= start ? fees[fi] : undefined;
    out.push({ start, end, imp: i && i.start <= start ? i : undefined, exp: e && e.start <= start ? e : undefined, fee: f });
  }
  return out;
}

/**
 * Every per-kWh part over a window: import energy cut at grid-fee windows and levy validity, with
 * the export rate after the export rules. Slots without an import energy price are left out (that
 * time is unpriced, as before).
 */
export function composeComponents(window: TimeWindow, importEnergy: PriceSeries, exportEnergy: PriceSeries, fees: readonly GridFeeSlot[], levies: readonly LevySpan[], terms: BillTerms): SlotComponents[] {
  const out: SlotComponents[] = [];
  for (const p of pieces(window, importEnergy, exportEnergy, fees, levies)) {
    if (!p.imp) continue;
    out.push(slotOf(p, levies, terms));
  }
  return out;
}

function slotOf(p: Piece, levies: readonly LevySpan[], terms: BillTerms): SlotComponents {
  const levyParts = levies.filter((l) => l.start <= p.start && l.end >= p.end).map((l) => ({ name: l.name, rate: l.rate }));
  const levySum = levyParts.reduce((a, l) => a + l.rate, 0);
  const energy = p.imp?.rate ?? NaN;
  const gridFee = p.fee?.rate ?? 0;
  let exportRate: number | null = null;
  let exportPaid = true;
  if (p.exp) {
    const reference = terms.exportRules.priceReference === 'export' ? p.exp.rate : p.imp?.rate;
    const ruled = ruledExportRate(p.exp.rate, reference, terms.exportRules);
    exportRate = ruled.rate;
    exportPaid = ruled.paid;
  }
  return {
    start: p.start,
    end: p.end,
    energy,
    gridFee,
    window: p.fee?.window ?? null,
    operator: p.fee?.operator ?? null,
    levies: levySum,
    levyParts,
    vatPercent: terms.vatPercent,
    importRate: allInImportRate(energy, gridFee, levySum, terms.vatPercent),
    exportSourceRate: p.exp?.rate ?? null,
    exportRate,
    exportPaid,
    confidence: Math.min(p.imp?.confidence ?? 1, p.exp?.confidence ?? 1),
  };
}

/** The all-in import series (the per-kWh rate a consumer pays): the energy slots, cut where a grid-fee window or levy changes. */
export function composedImport(window: TimeWindow, importEnergy: PriceSeries, fees: readonly GridFeeSlot[], levies: readonly LevySpan[], terms: BillTerms): PriceSeries {
  return composeComponents(window, importEnergy, [], fees, levies, terms).map((c) => ({ start: c.start, end: c.end, rate: c.importRate, confidence: c.confidence }));
}

/** The export series after the export rules (the reference import energy decides "negative" by default). */
export function composedExport(window: TimeWindow, importEnergy: PriceSeries, exportEnergy: PriceSeries, terms: BillTerms): PriceSeries {
  const out: PriceSeries = [];
  for (const p of pieces(window, terms.exportRules.noPayAtNegativePrice && terms.exportRules.priceReference === 'import' ? importEnergy : [], exportEnergy, [], [])) {
    if (!p.exp) continue;
    const reference = terms.exportRules.priceReference === 'export' ? p.exp.rate : p.imp?.rate;
    out.push({ start: p.start, end: p.end, rate: ruledExportRate(p.exp.rate, reference, terms.exportRules).rate, confidence: p.exp.confidence });
  }
  return out;
}
