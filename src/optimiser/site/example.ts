import type { SiteProblem } from './types.js';

/** A deterministic pseudo-random generator (mulberry32), so example sites are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The benchmark site of the optimiser (DESIGN.md §4, reference/optimisation.md §5): 48 h at
 * 15 min from midnight UTC, a house with PV and a wholesale-like price curve, a 10 kWh battery,
 * an 11 kW EV home every night needing 20 kWh, an air conditioner, a dishwasher (2 h within
 * 20:00–06:00) and a washing machine (2 h in one block within 09:00–17:00), under an 11 kW
 * import limit. Used by the benchmark and the tests.
 */
export function exampleSite(seed = 1, options: { summer?: boolean; start?: number } = {}): SiteProblem {
  const r = mulberry32(seed);
  const summer = options.summer ?? true;
  const T = 192;
  const t0 = options.start ?? Date.UTC(2026, 6, 1);
  const H = 3_600_000;
  const slots = [];
  const load = [];
  const pv = [];
  const imp = [];
  const exp = [];
  const outdoor = [];
  const gains = [];
  for (let k = 0; k < T; k++) {
    const h = (k % 96) / 4;
    const day = Math.floor(k / 96);
    slots.push({ start: t0 + k * 900_000, end: t0 + (k + 1) * 900_000 });
    load.push((0.35 + 1.2 * Math.exp(-((h - 7.5) ** 2) / 1.5) + 2.2 * Math.exp(-((h - 19) ** 2) / 4) + r() * 0.4) * 1000);
    const peak = summer ? (day ? 2.8 : 5.0) : day ? 0.6 : 1.2;
    pv.push(h > 6 && h < 20 ? peak * Math.pow(Math.sin((Math.PI * (h - 6)) / 14), 1.5) * (0.85 + 0.15 * r()) * 1000 : 0);
    const w = 0.09 + 0.06 * Math.exp(-((h - 8) ** 2) / 2) + 0.16 * Math.exp(-((h - 19) ** 2) / 3) - 0.06 * Math.exp(-((h - 13) ** 2) / 6) - 0.03 * Math.exp(-((h - 3) ** 2) / 4) + 0.02 * day + (r() * 0.02 - 0.01);
    imp.push(1.19 * w + 0.15);
    exp.push(Math.max(0, 0.9 * w - 0.005));
    outdoor.push(29 + 6 * Math.cos(((h - 15) / 24) * 2 * Math.PI));
    gains.push(400 + 800 * Math.exp(-((h - 14) ** 2) / 8));
  }
  const at = (day: number, hour: number) => t0 + day * 24 * H + hour * H;
  return {
    slots,
    importRate: imp,
    exportRate: exp,
    baseLoadW: load,
    flows: [{ id: 'pv', powerW: pv.map((p) => -p) }],
    grid: { maxImportW: slots.map(() => 11000), maxExportW: slots.map(() => 7000) },
    circuits: [{ id: 'garage', maxImportW: slots.map(() => 11000), maxExportW: slots.map(() => Infinity) }],
    batteries: [{ id: 'battery', capacityWh: 10000, socMinWh: 500, socMaxWh: 10000, initialWh: 5000, maxChargeW: 5000, maxDischargeW: 5000, chargeEfficiency: 0.95, dischargeEfficiency: 0.95 }],
    evs: [
      {
        id: 'ev',
        circuit: 'garage',
        minPowerW: 6 * 230 * 3,
        maxPowerW: 16 * 230 * 3,
        sessions: [
          { from: at(0, 0), until: at(0, 7.5), energyNeededWh: 8000, roomWh: 30000 },
          { from: at(0, 18), until: at(1, 7.5), energyNeededWh: 20000, roomWh: 40000 },
          { from: at(1, 18), until: at(2, 0), energyNeededWh: 0, roomWh: 40000 },
        ],
      },
    ],
    hvacs: [
      {
        id: 'living-ac',
        mode: 'cool',
        rKPerKw: 5,
        cKwhPerK: 3,
        cop: 3,
        maxElectricW: 1500,
        initialC: 24.5,
        outdoorC: outdoor,
        gainsW: gains,
        minC: slots.map(() => 22),
        maxC: slots.map(() => 25),
      },
    ],
    loads: [
      { id: 'dishwasher', ratedPowerW: 1800, runs: [{ start: at(0, 20), end: at(1, 6), hours: 2 }, { start: at(1, 20), end: at(2, 0), hours: 2 }] },
      { id: 'washer', ratedPowerW: 2000, runs: [{ start: at(0, 9), end: at(0, 17), hours: 2, continuous: true }, { start: at(1, 9), end: at(1, 17), hours: 2, continuous: true }] },
    ],
  };
}
