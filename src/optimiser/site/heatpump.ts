import { DateTime } from 'luxon';
import type { DevicePlan, HeatPumpModel, PlanSlot } from './types.js';

/**
 * Heat-pump helpers for the site plan (pure): the COP curve, hot-water draw-off profiles, and the
 * SG-Ready state that makes a heat pump follow its planned power.
 */

/** Default Carnot efficiency of an air-to-water heat pump's COP curve (see `heatingCop`). */
export const DEFAULT_COP_ETA = 0.4;
/** COP bounds: never below a resistive heater, never above what real units reach in mild weather. */
const COP_MIN = 1;
const COP_MAX = 7;

/**
 * Heating COP from the outdoor (source) and sink temperatures: a fixed share `eta` of the Carnot
 * COP, COP = eta · T_sink / (T_sink − T_outdoor) in kelvin, as EMHASS's thermal battery model uses
 * after Langer & Volling (2020), eta = 0.4 by default. At a 35 °C floor-heating flow it gives 4.4 at
 * +7 °C and 2.9 at −7 °C outdoors, near the EN 14511 ratings of current air-to-water units
 * (A7/W35, A−7/W35); hot water at 55 °C gives 2.7 at +7 °C. Clamped to [1, 7].
 */
export function heatingCop(outdoorC: number, sinkC: number, eta = DEFAULT_COP_ETA): number {
  const lift = sinkC - outdoorC;
  if (!(lift > 0)) return COP_MAX;
  return Math.min(COP_MAX, Math.max(COP_MIN, (eta * (sinkC + 273.15)) / lift));
}

/**
 * The default draw-off day: the tapping cycle of load profile "M" of Commission Regulation (EU)
 * No 814/2013 (water heaters, Annex III, table 1), 24 taps summing to 5.845 kWh of useful heat: two
 * showers of 1.4 kWh at 07:05 and 21:30, dish-washing at 12:45 and 20:30, small taps in between.
 * A tank's `draw_kwh_per_day` scales it.
 */
export const DRAW_PROFILE_M: [string, number][] = [
  ['07:00', 0.105], ['07:05', 1.4], ['07:30', 0.105], ['08:01', 0.105], ['08:15', 0.105], ['08:30', 0.105], ['08:45', 0.105],
  ['09:00', 0.105], ['09:30', 0.105], ['10:30', 0.105], ['11:30', 0.105], ['11:45', 0.105], ['12:45', 0.315], ['14:30', 0.105],
  ['15:30', 0.105], ['16:30', 0.105], ['18:00', 0.105], ['18:15', 0.105], ['18:30', 0.105], ['19:00', 0.105], ['20:30', 0.735],
  ['21:15', 0.105], ['21:30', 1.4],
];

/** Heat drawn in each slot (Wh): every local day's taps (scaled to `kwhPerDay`) counted in the slot they fall in. */
export function drawPerSlot(profile: [string, number][], kwhPerDay: number, slots: readonly PlanSlot[], timezone: string): number[] {
  const total = profile.reduce((a, [, kwh]) => a + kwh, 0);
  const scale = total > 0 ? kwhPerDay / total : 0;
  const out = slots.map(() => 0);
  if (!slots.length || scale === 0) return out;
  const start = slots[0].start;
  const end = slots[slots.length - 1].end;
  let day = DateTime.fromMillis(start, { zone: timezone }).startOf('day');
  let k = 0;
  while (day.toMillis() < end) {
    for (const [at, kwh] of profile) {
      const [h, m] = at.split(':').map(Number);
      const t = day.set({ hour: h, minute: m }).toMillis();
      if (t < start || t >= end) continue;
      while (k > 0 && slots[k].start > t) k--;
      while (k < slots.length - 1 && slots[k].end <= t) k++;
      out[k] += kwh * scale * 1000;
    }
    day = day.plus({ days: 1 });
  }
  return out;
}

export type SgReady = 1 | 2 | 3 | 4;

/**
 * The SG-Ready state per slot that makes the heat pump follow its plan: the boost state (3, or 4
 * if configured) where the plan runs it at half its power or more; blocked (1, where allowed) where
 * the plan runs it not at all, the slot's rate is above the horizon's median and the tank and rooms
 * stay at least `marginK` above their minimum through the slot; normal (2) otherwise, which leaves
 * the heat pump to its own controller.
 */
export function sgReadyPlan(
  dp: DevicePlan,
  hp: HeatPumpModel,
  importRate: readonly number[],
  opts: { allowBlock: boolean; boostState: 3 | 4; marginK?: number },
): SgReady[] {
  const margin = opts.marginK ?? 1;
  const sorted = [...importRate].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  return dp.powerW.map((p, t) => {
    if (p >= 0.5 * hp.maxElectricW) return opts.boostState;
    if (!opts.allowBlock || p > 5 || !(importRate[t] > median)) return 2;
    const tankOk = !hp.tank || (dp.tankC !== undefined && dp.tankC[t] >= hp.tank.minC[t] + margin);
    const roomOk = !hp.space || (dp.temperatureC !== undefined && dp.temperatureC[t] >= hp.space.minC[t] + margin);
    return tankOk && roomOk ? 1 : 2;
  });
}
