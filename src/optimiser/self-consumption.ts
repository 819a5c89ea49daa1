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
