import { beforeAll, describe, expect, it } from 'vitest';
import { runTariffBacktest, shapeRates, type TariffShape } from '../../src/backtest/tariffs.js';
import { loadSolver } from '../../src/control/solver.js';
import type { LpSolver } from '../../src/optimiser/site/index.js';

/** The tariff-shaping step and the whole-bill replay of issue 17 item 4, on hand-made days. */

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadSolver();
});

const H = 3_600_000;
// 2 June 2025, 00:00 in Berlin (UTC+2)
const T0 = Date.UTC(2025, 5, 1, 22);
const de: TariffShape = {
  levies: 0.09,
  vat: 0.19,
  feeWindows: [
    { name: 'low', from: '00:00', to: '06:00', rate: 0.029 },
    { name: 'high', from: '17:00', to: '21:00', rate: 0.115 },
  ],
  otherFee: 0.073,
  export: { kind: 'spot' },
  noPayAtNegative: false,
};

describe('tariff shaping', () => {
  it('a §14a day: import = (spot + window fee + levies) × 1.19 in its three windows', () => {
    const spot = [{ start: T0, end: T0 + 24 * H, value: 0.1 }];
    const steps = shapeRates(spot, T0, T0 + 24 * H, de, 'Europe/Berlin');
    expect(steps).toHaveLength(96);
    const at = (h: number) => steps[h * 4];
    // low: (0.10 + 0.029 + 0.09) × 1.19 = 0.26061; standard (0.10 + 0.073 + 0.09) × 1.19 = 0.31297; high (0.10 + 0.115 + 0.09) × 1.19 = 0.36295
    expect([at(3).window, at(3).importRate]).toEqual(['low', expect.closeTo(0.26061, 9)]);
    expect([at(12).window, at(12).importRate]).toEqual(['other', expect.closeTo(0.31297, 9)]);
    expect([at(18).window, at(18).importRate]).toEqual(['high', expect.closeTo(0.36295, 9)]);
    expect(steps.filter((s) => s.window === 'low')).toHaveLength(24);
    expect(steps.filter((s) => s.window === 'high')).toHaveLength(16);
  });

  it('a fixed feed-in is unpaid while the spot price is negative', () => {
    const spot = [{ start: T0, end: T0 + H, value: 0.05 }, { start: T0 + H, end: T0 + 2 * H, value: -0.02 }];
    const steps = shapeRates(spot, T0, T0 + 2 * H, { ...de, export: { kind: 'fixed', rate: 0.08 }, noPayAtNegative: true }, 'Europe/Berlin');
    expect(steps.map((s) => s.exportRate)).toEqual([0.08, 0.08, 0.08, 0.08, 0, 0, 0, 0]);
  });
});

describe('whole-bill replay', () => {
  /**
   * Two days. The house draws 1 kWh each hour and 4.2 kWh from 19:00 to 20:00; PV 5 kWh an hour
   * from 10:00 to 16:00. Spot 0.10, −0.05 from 12:00 to 14:00. Capacity 4.44/kW-month, minimum 2.5 kW.
   * A 5 kWh / 2.5 kW battery, η = 1, empty at the start.
   */
  const days = 2;
  const hourly = (f: (h: number) => number) => Array.from({ length: 24 * days }, (_, i) => ({ start: T0 + i * H, end: T0 + (i + 1) * H, value: f(i % 24) }));
  const data = {
    spot: hourly((h) => (h >= 12 && h < 14 ? -0.05 : 0.1)).concat(Array.from({ length: 72 }, (_, i) => ({ start: T0 + (24 * days + i) * H, end: T0 + (24 * days + i + 1) * H, value: 0.1 }))),
    load: hourly((h) => (h === 19 ? 4.2 : 1)),
    pv: hourly((h) => (h >= 10 && h < 16 ? 5 : 0)),
  };
  const shape: TariffShape = { levies: 0.1, vat: 0, export: { kind: 'spot' }, noPayAtNegative: false, capacity: { pricePerKwMonth: 4.44, minimumW: 2500 } };
  const battery = { capacityWh: 5000, chargeW: 2500, dischargeW: 2500, chargeEfficiency: 1, dischargeEfficiency: 1, socMinWh: 0, socMaxWh: 5000, initialWh: 0 };

  it('self-consumption pays a 3.7 kW peak when the battery runs out; the full plan keeps the minimum and never exports at a negative price', async () => {
    const results = await runTariffBacktest(data, { from: T0, to: T0 + days * 24 * H, timezone: 'Europe/Berlin', battery, shape, forecast: 'perfect', pvArray: { kWp: 4, latitude: 50, longitude: 10 }, replanMinutes: 60, horizonHours: 24, strategies: ['self_consumption', 'plan_energy', 'plan_full'] }, solver);
    const by = Object.fromEntries(results.map((r) => [r.name, r]));
    // self-consumption, by hand: empty until 10:00; of the 4 kW surplus 2.5 kW fills 5 kWh by 12:00, then
    // 4 kW is exported (12:00-14:00 at a negative spot: 8 kWh a day); 16:00-19:00 the battery covers 1 kW (2 kWh
    // left); from 19:00 it gives 2.5 kW for three quarter-hours (1.875 kWh), 0.5 kW in the fourth: the
    // last quarter imports 4.2 − 0.5 = 3.7 kW → capacity 3.7 × 4.44 = 16.428
    expect(by.self_consumption.capacityCost).toBeCloseTo(16.428, 6);
    expect(by.self_consumption.exportAtNegativeKwh).toBeCloseTo(8 * days, 6);
    // the plan keeps 1.7 kWh for the 19:00 hour: the peak stays at the 2.5 kW minimum, 2.5 × 4.44 = 11.10
    expect(by.plan_full.capacityCost).toBeCloseTo(11.1, 6);
    expect(by.plan_full.exportAtNegativeKwh).toBe(0);
    // the battery takes 2.5 of the 4 kW surplus in the two negative hours; the other 1.5 kW is cut: 3 kWh a day
    expect(by.plan_full.curtailedKwh).toBeCloseTo(3 * days, 3);
    expect(by.plan_full.total).toBeLessThan(by.plan_energy.total + 1e-9);
    expect(by.plan_full.total).toBeLessThan(by.self_consumption.total);
  });
});
