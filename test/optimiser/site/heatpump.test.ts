import { beforeAll, describe, expect, it } from 'vitest';
import { loadSolver } from '../../../src/control/solver.js';
import { DRAW_PROFILE_M, drawPerSlot, heatingCop, planSite, sgReadyPlan, type HeatPumpModel, type LpSolver, type TankModel } from '../../../src/optimiser/site/index.js';
import { smallSite, sum, T0 } from './helpers.js';

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadSolver();
});

const C_PER_L = 1.163; // Wh/(l·K)

const tank = (n: number, over: Partial<TankModel> = {}): TankModel => ({
  volumeL: 200,
  initialC: 50,
  minC: new Array(n).fill(45),
  maxC: 65,
  lossWPerK: 0,
  ambientC: 20,
  drawWh: new Array(n).fill(0),
  cop: new Array(n).fill(1),
  maxElectricW: 3000,
  ...over,
});

/** The tank's temperature after each slot, simulated step by step from planned heater power (exact for constant inputs). */
function simulateTank(k: TankModel, powerW: number[], slotH: number): number[] {
  const C = k.volumeL * C_PER_L;
  let temp = k.initialC;
  return powerW.map((p, t) => {
    const heatW = p * k.cop[t] - k.drawWh[t] / slotH;
    if (k.lossWPerK === 0) temp += (heatW * slotH) / C;
    else {
      const a = Math.exp((-slotH * k.lossWPerK) / C);
      temp = a * temp + (1 - a) * (k.ambientC + heatW / k.lossWPerK);
    }
    return temp;
  });
}

describe('hot-water tank in the site plan', () => {
  it('heats in the cheapest slots before each draw-off and never lets the tank fall below its minimum', () => {
    const n = 24;
    // night cheap (01-04), midday cheaper than evening (13-15), dear otherwise
    const importRate = Array.from({ length: n }, (_, t) => (t >= 1 && t < 4 ? 0.1 : t >= 13 && t < 15 ? 0.2 : 0.4));
    const drawWh = new Array(n).fill(0);
    drawWh[7] = 3000; // morning showers
    drawWh[21] = 3000; // evening showers
    const k = tank(n, { drawWh });
    const hp: HeatPumpModel = { id: 'dhw', maxElectricW: 3000, tank: k };
    const p = smallSite(n, { importRate, heatPumps: [hp] });
    const plan = planSite(p, solver);
    expect(plan.status).toMatch(/optimal|within_gap/);
    const d = plan.devices.find((x) => x.id === 'dhw')!;
    expect(d.kind).toBe('heatpump');
    const heated = d.tankW!;
    // each draw takes 3000 / (200·1.163) = 12.9 K; without losses the night (cheapest) heats the tank
    // to its 65 °C maximum, and midday (cheaper than the evening) tops up what the evening still needs
    const C = 200 * C_PER_L;
    const needWh = (45 - 50) * C + 6000;
    const nightWh = (65 - 50) * C;
    expect(sum(heated.slice(1, 4))).toBeCloseTo(nightWh, -1);
    expect(sum(heated.slice(13, 15))).toBeCloseTo(needWh - nightWh, -1);
    expect(Math.max(...d.tankC!)).toBeLessThan(65 + 0.01);
    expect(sum(heated) - sum(heated.slice(1, 4)) - sum(heated.slice(13, 15))).toBeLessThan(1);
    // an independent simulation of the planned power keeps the minimum, also right after each draw-off
    const temps = simulateTank(k, heated, 1);
    for (const [t, temp] of temps.entries()) expect(temp, `slot ${t}`).toBeGreaterThan(45 - 0.05);
    expect(d.tankC![7]).toBeCloseTo(temps[7], 1);
    expect(d.tankShortKh).toBe(0);
  });

  it('soaks up free PV surplus instead of importing, and counts standing losses', () => {
    const n = 24;
    const pv = Array.from({ length: n }, (_, t) => (t >= 10 && t < 15 ? -4000 : 0));
    const drawWh = new Array(n).fill(0);
    drawWh[20] = 4000;
    const k = tank(n, { drawWh, lossWPerK: 2, initialC: 47, maxC: 70 });
    const p = smallSite(n, { importRate: new Array(n).fill(0.3), exportRate: new Array(n).fill(0.05), flows: [{ id: 'pv', powerW: pv }], heatPumps: [{ id: 'dhw', maxElectricW: 3000, tank: k }] });
    const plan = planSite(p, solver);
    const d = plan.devices.find((x) => x.id === 'dhw')!;
    const inSun = sum(d.tankW!.slice(10, 15));
    expect(inSun).toBeGreaterThan(0.95 * sum(d.tankW!));
    // the losses before the evening draw are paid for: more heat than the draw alone needs
    const C = 200 * C_PER_L;
    const minimumWithoutLosses = (45 + 4000 / C - 47) * C;
    expect(sum(d.tankW!)).toBeGreaterThan(minimumWithoutLosses + 50);
    for (const temp of simulateTank(k, d.tankW!, 1)) expect(temp).toBeGreaterThan(45 - 0.05);
  });

  it('a heat pump heats the tank with its COP: a third of the electricity of a resistive element at COP 3', () => {
    const n = 12;
    const drawWh = new Array(n).fill(0);
    drawWh[10] = 3000;
    const run = (cop: number) => {
      const plan = planSite(smallSite(n, { heatPumps: [{ id: 'dhw', maxElectricW: 3000, tank: tank(n, { drawWh, initialC: 45, cop: new Array(n).fill(cop) }) }] }), solver);
      return plan.devices[0].energyWh;
    };
    expect(run(3)).toBeCloseTo(run(1) / 3, 0);
  });

  it('space heating: the 1R1C room of the HVAC model with the COP of each slot — heats in the warm afternoon at flat prices', () => {
    const n = 24;
    const outdoorC = Array.from({ length: n }, (_, t) => 2 + 8 * Math.cos(((t - 15) / 24) * 2 * Math.PI));
    const copPerSlot = outdoorC.map((o) => heatingCop(o, 35));
    const space = { rKPerKw: 8, cKwhPerK: 8, cop: 3, copPerSlot, initialC: 21, outdoorC, gainsW: new Array(n).fill(200), minC: new Array(n).fill(20), maxC: new Array(n).fill(23) };
    const plan = planSite(smallSite(n, { heatPumps: [{ id: 'hp', maxElectricW: 3000, space }] }), solver);
    const d = plan.devices[0];
    expect(d.discomfortKh).toBe(0);
    for (const temp of d.temperatureC!) expect(temp).toBeGreaterThan(20 - 0.01);
    // heat per kWh is best where the COP is: the warmest third of the day gets more electricity than the coldest third
    const byCop = [...Array(n).keys()].sort((a, b) => copPerSlot[b] - copPerSlot[a]);
    const warm = sum(byCop.slice(0, 8).map((t) => d.spaceW![t]));
    const cold = sum(byCop.slice(16).map((t) => d.spaceW![t]));
    expect(warm).toBeGreaterThan(cold);
    // same heat delivered with a constant COP of the mean costs more: the plan uses the curve
    const flat = planSite(smallSite(n, { heatPumps: [{ id: 'hp', maxElectricW: 3000, space: { ...space, copPerSlot: copPerSlot.map(() => Math.min(...copPerSlot)) } }] }), solver);
    expect(plan.cost).toBeLessThan(flat.cost);
  });

  it('tank and rooms share one compressor', () => {
    const n = 12;
    const drawWh = new Array(n).fill(0);
    drawWh[6] = 5000;
    const outdoorC = new Array(n).fill(-5);
    const space = { rKPerKw: 5, cKwhPerK: 5, cop: 3, initialC: 20.5, outdoorC, gainsW: new Array(n).fill(0), minC: new Array(n).fill(20), maxC: new Array(n).fill(22) };
    const plan = planSite(smallSite(n, { heatPumps: [{ id: 'hp', maxElectricW: 2000, space, tank: tank(n, { drawWh, cop: new Array(n).fill(2.5) }) }] }), solver);
    const d = plan.devices[0];
    for (let t = 0; t < n; t++) expect(d.tankW![t] + d.spaceW![t]).toBeLessThan(2000 + 1);
    expect(Math.max(...d.powerW)).toBeGreaterThan(1500);
  });
});

describe('heat-pump helpers', () => {
  it('COP curve: eta · T_sink / lift (Carnot share), clamped', () => {
    expect(heatingCop(7, 35)).toBeCloseTo(4.4, 1);
    expect(heatingCop(-7, 35)).toBeCloseTo(2.93, 2);
    expect(heatingCop(7, 55)).toBeCloseTo(2.73, 2);
    expect(heatingCop(40, 35)).toBe(7);
    expect(heatingCop(-60, 60)).toBeGreaterThanOrEqual(1);
  });

  it('the EU 814/2013 profile M sums to 5.845 kWh and lands in the local slots of its taps', () => {
    expect(sum(DRAW_PROFILE_M.map(([, k]) => k))).toBeCloseTo(5.845, 6);
    // 48 h of 15-minute slots from local midnight in Berlin (UTC+1 in winter)
    const start = Date.UTC(2026, 0, 14, 23);
    const slots = Array.from({ length: 192 }, (_, t) => ({ start: start + t * 900_000, end: start + (t + 1) * 900_000 }));
    const wh = drawPerSlot(DRAW_PROFILE_M, 8, slots, 'Europe/Berlin');
    expect(sum(wh)).toBeCloseTo(16000, 3);
    // 07:05 local is in the 07:00-07:15 slot: 07:00's tap and the shower
    expect(wh[28]).toBeCloseTo(((0.105 + 1.4) * 8000) / 5.845, 3);
    expect(wh[28 + 96]).toBeCloseTo(wh[28], 6);
    expect(wh[0]).toBe(0);
  });

  it('SG-Ready states follow the planned power', () => {
    const n = 6;
    const importRate = [0.1, 0.1, 0.3, 0.4, 0.4, 0.2];
    const hp: HeatPumpModel = { id: 'hp', maxElectricW: 2000, tank: tank(n) };
    const dp = { id: 'hp', kind: 'heatpump' as const, powerW: [2000, 1200, 0, 0, 0, 300], reasons: [], tankC: [60, 62, 61, 45.5, 50, 50], energyWh: 0 };
    expect(sgReadyPlan(dp, hp, importRate, { allowBlock: true, boostState: 3 })).toEqual([3, 3, 2, 2, 1, 2]);
    expect(sgReadyPlan(dp, hp, importRate, { allowBlock: false, boostState: 4 })).toEqual([4, 4, 2, 2, 2, 2]);
  });

  it('rejects a tank with per-slot arrays of the wrong length', () => {
    const p = smallSite(4, { heatPumps: [{ id: 'hp', maxElectricW: 1000, tank: tank(3) }] });
    expect(() => planSite(p, solver)).toThrow(/heatPumps\[hp\]\.tank\.minC has 3 entries for 4 slots/);
  });
});

void T0;
