import type { BatteryModel } from './site/types.js';

/**
 * A battery inverter in its own self-consumption mode, replayed over a house's net flow: it
 * charges from surplus and covers deficits, within its power, its stored energy and its losses
 * (the physics of the backtest's self-consumption strategy). Pure: no I/O, no clock.
 */

/** The battery fields the replay needs, as the site plan's battery model names them. */
export type SelfConsumptionBattery = Pick<BatteryModel, 'socMinWh' | 'socMaxWh' | 'initialWh' | 'maxChargeW' | 'maxDischargeW' | 'chargeEfficiency' | 'dischargeEfficiency'>;

/** Battery power (W, + = charge) that follows the house's net flow `netW` (+ = import) for `h` hours. */
export function followHouseW(b: SelfConsumptionBattery, socWh: number, netW: number, h: number): number {
  if (netW < 0) return Math.max(0, Math.min(-netW, b.maxChargeW, (b.socMaxWh - socWh) / (b.chargeEfficiency * h)));
  if (netW > 0) return -Math.max(0, Math.min(netW, b.maxDischargeW, ((socWh - b.socMinWh) * b.dischargeEfficiency) / h));
  return 0;
}

/**
 * The grid flow per step with the battery following the house. `netWh[k]` is the house's net
 * energy without a battery in step k (+ = import), `hours[k]` its length (15-minute steps, 23- and
 * 25-hour days included). Returns the grid energy per step (+ = import, − = export) and the
 * stored energy at the end.
 */
export function replaySelfConsumption(b: SelfConsumptionBattery, netWh: readonly number[], hours: readonly number[]): { gridWh: number[]; batteryWh: number[]; endWh: number } {
  let soc = Math.min(b.socMaxWh, Math.max(b.socMinWh, b.initialWh));
  const gridWh: number[] = [];
  const batteryWh: number[] = [];
  for (let k = 0; k < netWh.length; k++) {
    const h = hours[k];
    if (!(h > 0)) {
      gridWh.push(netWh[k]);
      batteryWh.push(0);
      continue;
    }
    const p = followHouseW(b, soc, netWh[k] / h, h);
    soc += p > 0 ? p * h * b.chargeEfficiency : (p * h) / b.dischargeEfficiency;
    batteryWh.push(p * h);
    gridWh.push(netWh[k] + p * h);
  }
  return { gridWh, batteryWh, endWh: soc };
}

/** What the hub tells a battery inverter for a slot (the storage capability's command, without its watchdog). */
export interface BatteryCommand {
  mode: 'auto' | 'charge' | 'discharge' | 'hold';
  /** Power for `charge` / `discharge` (W, positive). */
  powerW?: number;
}

/**
 * What an inverter does in a slot under a command, with the house's actual net flow `houseW`
 * (+ = draw, battery excluded): `auto` follows the house (the self-consumption rule); `hold`
 * never discharges but still soaks up surplus; `charge` takes at least its power, more from
 * surplus; `discharge` gives its power whatever the house needs (the rest goes to the grid).
 * Within the battery's power and stored energy. The backtest replays commands with this.
 */
export function commandPowerW(b: SelfConsumptionBattery, cmd: BatteryCommand, socWh: number, houseW: number, h: number): number {
  const follow = followHouseW(b, socWh, houseW, h);
  const clip = (w: number) =>
    w > 0 ? Math.max(0, Math.min(w, b.maxChargeW, (b.socMaxWh - socWh) / (b.chargeEfficiency * h)))
    : w < 0 ? -Math.max(0, Math.min(-w, b.maxDischargeW, ((socWh - b.socMinWh) * b.dischargeEfficiency) / h))
    : 0;
  switch (cmd.mode) {
    case 'auto':
      return follow;
    case 'hold':
      return Math.max(0, follow);
    case 'charge':
      return Math.max(Math.max(0, follow), clip(cmd.powerW ?? 0));
    case 'discharge':
      return clip(-(cmd.powerW ?? 0));
  }
}

/** Watts below which a planned flow counts as zero when choosing the command. */
const W_TOL = 5;

/**
 * The execution rule: the command for slot k of a plan, given the battery's state of charge now.
 * Where the plan carries its value of stored energy (`respond`: the best battery power for a given
 * house flow and charge, from the battery DP), the command is read from it at the extremes: with
 * a deficit larger than any battery power, the best move is the grid trade the plan wants (charge
 * from the grid up to a level, or cover the house down to one); with an equally large surplus,
 * the most it wants to store or sell. So the plan sets what the battery does with the grid, and
 * the house's own surprises are followed as the self-consumption rule would (mode `auto`):
 * - it buys from the grid → `charge` at that power (and soaks any surplus on top);
 * - it sells to the grid → `discharge` at that power;
 * - it keeps its energy for later, not even covering the house → `hold` (surplus still stored);
 * - otherwise → `auto`.
 * Plans without it (made by the LP) give their own mode and power for the slot.
 */
export function batteryCommand(
  b: SelfConsumptionBattery,
  plan: { powerW: readonly number[]; modes?: readonly ('auto' | 'charge' | 'discharge' | 'hold')[] },
  k: number,
  socWh: number,
  respond?: (k: number, houseKw: number, socKwh: number) => number,
): BatteryCommand {
  // flows just large enough that the grid takes the rest whatever the battery does
  const deficitW = respond ? respond(k, b.maxDischargeW / 1000 + 0.01, socWh / 1000) * 1000 : NaN;
  const surplusW = respond ? respond(k, -(b.maxChargeW / 1000 + 0.01), socWh / 1000) * 1000 : NaN;
  if (Number.isFinite(deficitW) && Number.isFinite(surplusW)) {
    if (deficitW > W_TOL) return { mode: 'charge', powerW: Math.round(deficitW) };
    if (surplusW < -W_TOL) return { mode: 'discharge', powerW: Math.round(-surplusW) };
    if (deficitW > -W_TOL) return { mode: 'hold' };
    return { mode: 'auto' };
  }
  const mode = plan.modes?.[k] ?? 'hold';
  const w = plan.powerW[k] ?? 0;
  return mode === 'charge' || mode === 'discharge' ? { mode, powerW: Math.round(Math.abs(w)) } : { mode };
}
