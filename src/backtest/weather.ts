import type { PlanSlot } from '../optimiser/site/index.js';

/** A PV forecast as it was known at each instant: what a weather service would have answered then. */
export interface PvForecastArchive {
  describe: string;
  powerW(issuedBy: number, slots: readonly PlanSlot[]): number[];
}
