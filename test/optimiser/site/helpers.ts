import type { BatteryModel, SiteProblem } from '../../../src/optimiser/site/index.js';

export const H = 3_600_000;
export const T0 = Date.UTC(2026, 5, 1);

/** A small site: `n` slots of `slotH` hours with the given per-slot arrays (defaults: flat and empty). */
export function smallSite(n: number, over: Partial<SiteProblem> & { slotH?: number } = {}): SiteProblem {
  const slotH = over.slotH ?? 1;
  const slots = Array.from({ length: n }, (_, t) => ({ start: T0 + t * slotH * H, end: T0 + (t + 1) * slotH * H }));
  const fill = (v: number) => slots.map(() => v);
  const { slotH: _ignored, ...rest } = over;
  void _ignored;
  return {
    slots,
    importRate: fill(0.3),
    exportRate: fill(0.08),
    baseLoadW: fill(0),
    flows: [],
    grid: { maxImportW: fill(Infinity), maxExportW: fill(Infinity) },
    circuits: [],
    batteries: [],
    evs: [],
    hvacs: [],
    loads: [],
    ...rest,
  };
}

export const battery = (over: Partial<BatteryModel> = {}): BatteryModel => ({
  id: 'battery',
  capacityWh: 3000,
  socMinWh: 0,
  socMaxWh: 3000,
  initialWh: 0,
  maxChargeW: 1000,
  maxDischargeW: 1000,
  chargeEfficiency: 1,
  dischargeEfficiency: 1,
  terminalValuePerKwh: 0,
  ...over,
});

/** The energy cost of a net grid flow per slot (W), settled per slot. */
export function settle(netW: number[], p: SiteProblem): number {
  return netW.reduce((a, n, t) => {
    const h = (p.slots[t].end - p.slots[t].start) / H;
    return a + (n > 0 ? p.importRate[t] * n : p.exportRate[t] * n) * h / 1000;
  }, 0);
}

export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
