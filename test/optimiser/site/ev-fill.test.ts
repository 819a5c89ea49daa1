import { beforeAll, describe, expect, it } from 'vitest';
import { loadSolver } from '../../../src/control/solver.js';
import { planSite, type EvModel, type LpSolver } from '../../../src/optimiser/site/index.js';
import { H, T0, smallSite, sum } from './helpers.js';

let solver: LpSolver;
beforeAll(async () => {
  solver = await loadSolver();
});

const dev = (plan: ReturnType<typeof planSite>, id: string) => plan.devices.find((d) => d.id === id)!;
const energy = (powerW: number[]) => sum(powerW); // 1 h slots: W per slot = Wh
const car = (id: string, sessions: EvModel['sessions']): EvModel => ({ id, circuit: 'garage', minPowerW: 1380, maxPowerW: 9000, sessions });

describe('site plan: a car without a target fills up at the lowest priority (default_mode cheapest_fill)', () => {
  it('a car needing 12 kWh by morning gets all of it beside a car that fills, on one circuit', () => {
    // 48 h; 9 kW circuit; cheap nights (0.10) from 00:00 to 06:00 of both days, 0.30 otherwise
    const n = 48;
    const rates = Array.from({ length: n }, (_, t) => (t % 24 < 6 ? 0.1 : 0.3));
    const p = smallSite(n, {
      importRate: rates,
      circuits: [{ id: 'garage', maxImportW: new Array(n).fill(9000), maxExportW: new Array(n).fill(Infinity) }],
      evs: [car('commuter', [{ until: T0 + 7 * H, energyNeededWh: 12_000 }]), car('weekend', [{ energyNeededWh: 0, roomWh: 66_000, fill: true }])],
    });
    const plan = planSite(p, solver);
    const commuter = dev(plan, 'commuter');
    const weekend = dev(plan, 'weekend');
    expect(commuter.shortfallWh).toBe(0);
    expect(energy(commuter.powerW)).toBeCloseTo(12_000, -1);
    // the filling car takes exactly its room, never more, and is not reported as short of anything
    expect(energy(weekend.powerW)).toBeCloseTo(66_000, -1);
    expect(weekend.shortfallWh).toBe(0);
    expect(plan.warnings.filter((w) => w.includes('weekend'))).toEqual([]);
    // the two nights hold 12 × 9 kW = 108 kWh of cheap capacity: both cars charge only then
    for (let t = 0; t < n; t++) if (rates[t] > 0.1) expect(commuter.powerW[t] + weekend.powerW[t]).toBeLessThan(1);
    for (let t = 0; t < n; t++) expect(commuter.powerW[t] + weekend.powerW[t]).toBeLessThanOrEqual(9000 + 1);
  });

  it('where the circuit cannot carry both, every deadline is met first and the fill takes what is left', () => {
    // 4 h at 7.4 kW = 29.6 kWh in all: 12 kWh for the deadline within 2 h, the rest to the fill
    const n = 4;
    const p = smallSite(n, {
      importRate: [0.1, 0.1, 0.4, 0.4],
      circuits: [{ id: 'garage', maxImportW: new Array(n).fill(7400), maxExportW: new Array(n).fill(Infinity) }],
      evs: [car('commuter', [{ until: T0 + 2 * H, energyNeededWh: 12_000 }]), car('weekend', [{ energyNeededWh: 0, roomWh: 50_000, fill: true }])],
    });
    const plan = planSite(p, solver);
    expect(dev(plan, 'commuter').shortfallWh).toBe(0);
    expect(energy(dev(plan, 'commuter').powerW)).toBeCloseTo(12_000, -1);
    expect(energy(dev(plan, 'weekend').powerW)).toBeCloseTo(29_600 - 12_000, -1);
  });

  it('fills even where every slot is dear (a fill is wanted, not a bargain hunt), in the cheapest of them, never past the room', () => {
    const rates = [0.9, 0.7, 0.8, 0.95];
    const plan = planSite(smallSite(4, { importRate: rates, evs: [{ id: 'ev', minPowerW: 0, maxPowerW: 5000, sessions: [{ energyNeededWh: 0, roomWh: 7000, fill: true }] }] }), solver);
    expect(dev(plan, 'ev').powerW).toEqual([0, 5000, 2000, 0]);
  });

  it('a fill session without the car’s room is refused with the device named', () => {
    expect(() => planSite(smallSite(2, { evs: [{ id: 'ev', minPowerW: 0, maxPowerW: 5000, sessions: [{ energyNeededWh: 0, fill: true }] }] }), solver)).toThrow(/ev "ev": a fill session needs roomWh/);
  });
});
