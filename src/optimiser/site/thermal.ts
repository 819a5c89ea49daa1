/**
 * First-order (1R1C) room model, discretised exactly for piecewise-constant inputs:
 *   C·dT/dt = (T_out − T)/R + Q_gain − s·COP·P_el      (s = +1 cooling, −1 heating)
 *   T_{k+1} = a·T_k + (1 − a)·(T_out + R·(Q_gain − s·COP·P_el)),  a = e^{−Δt/(R·C)}
 * R in K/kW, C in kWh/K, powers in kW, Δt in hours.
 */

export interface RoomParams {
  rKPerKw: number;
  cKwhPerK: number;
  cop: number;
  /** +1 cooling, −1 heating. */
  sign: 1 | -1;
}

/** The decay factor a = e^{−Δt/(RC)} of one step of `dtH` hours. */
export const decay = (p: RoomParams, dtH: number) => Math.exp(-dtH / (p.rKPerKw * p.cKwhPerK));

/** Temperature after `dtH` hours holding outdoor temperature, gains and electric power constant. */
export function roomStep(p: RoomParams, t: number, outdoorC: number, gainsKw: number, electricKw: number, dtH: number): number {
  const a = decay(p, dtH);
  return a * t + (1 - a) * (outdoorC + p.rKPerKw * (gainsKw - p.sign * p.cop * electricKw));
}

/** The temperature the room settles at with these inputs held forever. */
export const equilibriumC = (p: RoomParams, outdoorC: number, gainsKw: number, electricKw: number) =>
  outdoorC + p.rKPerKw * (gainsKw - p.sign * p.cop * electricKw);

/** Electric power (kW, may be negative or above the maximum) that brings the room from `t` to `target` in one step. */
export function powerToReach(p: RoomParams, t: number, target: number, outdoorC: number, gainsKw: number, dtH: number): number {
  const a = decay(p, dtH);
  // target = a·t + (1−a)·(Tout + R·Q) − (1−a)·R·s·COP·P
  return (a * t + (1 - a) * (outdoorC + p.rKPerKw * gainsKw) - target) / ((1 - a) * p.rKPerKw * p.sign * p.cop);
}

/**
 * An ideal thermostat holding the band edge nearest the drift (upper edge when cooling, lower
 * when heating): each step it uses just the power that keeps the room at the edge, never more
 * than `maxKw`. Returns the electric power per step (kW) and the temperatures at each step's end.
 */
export function thermostatAtEdge(
  p: RoomParams,
  initialC: number,
  edgeC: number[],
  outdoorC: number[],
  gainsKw: number[],
  dtH: number[],
  maxKw: number,
): { powerKw: number[]; temperatureC: number[] } {
  const powerKw: number[] = [];
  const temperatureC: number[] = [];
  let t = initialC;
  for (let k = 0; k < dtH.length; k++) {
    const need = powerToReach(p, t, edgeC[k], outdoorC[k], gainsKw[k], dtH[k]);
    const pk = Math.min(maxKw, Math.max(0, need));
    t = roomStep(p, t, outdoorC[k], gainsKw[k], pk, dtH[k]);
    powerKw.push(pk);
    temperatureC.push(t);
  }
  return { powerKw, temperatureC };
}
