/**
 * Heat pumps and hot water (issue 18): LP size and solve time of the site plan with a hot-water tank
 * and space heating (48 h at 15 min), and what planning the tank saves over the rules a user could
 * set instead, on real DE-LU day-ahead prices.
 *
 *   nice -n 10 node --import tsx bench/heatpump.ts [--days 60] [--runs 20]
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { readSeries } from '../src/backtest/read.js';
import { packageRoot } from '../src/cli.js';
import { loadSolver } from '../src/control/solver.js';
import { exampleSite } from '../src/optimiser/site/example.js';
import { DRAW_PROFILE_M, drawPerSlot, heatingCop } from '../src/optimiser/site/heatpump.js';
import { planSite } from '../src/optimiser/site/solve.js';
import type { HeatPumpModel, SiteProblem, TankModel } from '../src/optimiser/site/types.js';
import { fmtMs, median, timeIt } from './types.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const DAYS = arg('days', 60);
const RUNS = arg('runs', 20);
const TZ = 'Europe/Berlin';
const dataDir = process.env.HOMEFLEX_DATA ?? [join(packageRoot, '..', 'shared', 'data'), '/work/shared/data'].find((d) => existsSync(d)) ?? '';

// the demo's tank: 200 l, 45–60 °C, 1.5 W/K to an 18 °C room, 5.845 kWh a day (EU 814/2013 profile M), a 2 kW heat pump
const TANK = { volumeL: 200, minC: 45, maxC: 60, lossWPerK: 1.5, ambientC: 18, kwhPerDay: 5.845, powerW: 2000 };
const C_WH_PER_K = TANK.volumeL * 1.163;
const outdoorAt = (t: number) => {
  const d = DateTime.fromMillis(t, { zone: TZ });
  const h = d.hour + d.minute / 60;
  const winter = d.month <= 3 || d.month >= 11;
  const [lo, hi] = winter ? [-2, 6] : [12, 24];
  return (lo + hi) / 2 + ((hi - lo) / 2) * Math.cos(((h - 15) / 24) * 2 * Math.PI);
};

function tankModel(slots: SiteProblem['slots'], initialC: number): TankModel {
  return {
    volumeL: TANK.volumeL,
    initialC,
    minC: slots.map(() => TANK.minC),
    maxC: TANK.maxC,
    lossWPerK: TANK.lossWPerK,
    ambientC: TANK.ambientC,
    drawWh: drawPerSlot(DRAW_PROFILE_M, TANK.kwhPerDay, slots, TZ),
    cop: slots.map((s) => heatingCop(outdoorAt(s.start), TANK.maxC)),
    maxElectricW: TANK.powerW,
  };
}

/** One slot of the tank (exact for constant inputs), as the LP models it. */
function tankStep(temp: number, powerW: number, cop: number, drawWh: number, dtH: number) {
  const L = TANK.lossWPerK;
  const a = Math.exp((-dtH * L) / C_WH_PER_K);
  return a * temp + (1 - a) * (TANK.ambientC + (powerW * cop - drawWh / dtH) / L);
}

async function lpSize() {
  const solver = await loadSolver();
  const base = exampleSite(1, { summer: false });
  const hp: HeatPumpModel = {
    id: 'heatpump',
    maxElectricW: 3000,
    tank: { ...tankModel(base.slots, 50), maxElectricW: 3000 },
    space: {
      rKPerKw: 8,
      cKwhPerK: 8,
      cop: 3,
      copPerSlot: base.slots.map((s) => heatingCop(outdoorAt(s.start), 35)),
      initialC: 20.5,
      outdoorC: base.slots.map((s) => outdoorAt(s.start)),
      gainsW: base.slots.map(() => 300),
      minC: base.slots.map(() => 20),
      maxC: base.slots.map(() => 23),
    },
    sgReady: { allowBlock: true, boostState: 3 },
  };
  const rows: string[] = [];
  for (const [name, p] of [
    ['example site (battery, EV, AC, 2 switched loads; 11 kW limit)', base],
    ['same + heat pump: 200 l tank and 1R1C space heating sharing 3 kW', { ...base, heatPumps: [hp] }],
    ['heat pump with tank and space heating alone', { ...base, batteries: [], evs: [], hvacs: [], loads: [], heatPumps: [hp] }],
  ] as [string, SiteProblem][]) {
    const plan = planSite(p, solver);
    const ms = await timeIt(() => planSite(p, solver), RUNS, 5);
    rows.push(`| ${name} | ${plan.solver.columns} / ${plan.solver.rows} / ${plan.solver.integerColumns} | ${fmtMs(median(ms))} (p90 ${fmtMs([...ms].sort((a, b) => a - b)[Math.floor(ms.length * 0.9)])}) | ${plan.status}, ${plan.solver.lpSolves} LP solve(s)${plan.solver.usedMip ? ', MILP' : ''} |`);
  }
  return rows;
}

/** Days of receding-horizon operation: plan 48 h at 15 min each midnight, run the first 24 h; against a thermostat and a night timer. */
async function savings() {
  const solver = await loadSolver();
  const prices = readSeries(join(dataDir, 'prices', 'de-lu_energy-charts'), 'import', { timezone: TZ });
  const out: string[] = [];
  for (const [label, startIso] of [['winter', '2025-01-06'], ['summer', '2025-06-02']] as const) {
    const start = DateTime.fromISO(startIso, { zone: TZ });
    const days = Math.min(DAYS, 60);
    const series = prices.over(start.toMillis() - 864e5, start.plus({ days: days + 3 }).toMillis()).map((r) => ({ ...r, value: (r.value + 0.17) * 1.19 }));
    const rateAt = (t: number) => {
      let lo = 0;
      let hi = series.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (series[mid].start <= t) lo = mid;
        else hi = mid - 1;
      }
      return series[lo].value;
    };
    const cost = { plan: 0, thermostat: 0, timer: 0 };
    const kwh = { plan: 0, thermostat: 0, timer: 0 };
    const minSeen = { plan: Infinity, thermostat: Infinity, timer: Infinity };
    const temp = { plan: 50, thermostat: 50, timer: 50 };
    const running = { thermostat: false, timer: false };
    let solveMs = 0;
    for (let d = 0; d < days; d++) {
      const t0 = start.plus({ days: d }).toMillis();
      const slots = Array.from({ length: 192 }, (_, k) => ({ start: t0 + k * 900_000, end: t0 + (k + 1) * 900_000 }));
      const rates = slots.map((s) => rateAt(s.start));
      const tank = tankModel(slots, temp.plan);
      const p: SiteProblem = {
        slots,
        importRate: rates,
        exportRate: slots.map(() => 0.08),
        baseLoadW: slots.map(() => 0),
        flows: [],
        grid: { maxImportW: slots.map(() => Infinity), maxExportW: slots.map(() => Infinity) },
        circuits: [],
        batteries: [],
        evs: [],
        hvacs: [],
        loads: [],
        heatPumps: [{ id: 'hp', maxElectricW: TANK.powerW, tank }],
      };
      const t = performance.now();
      const plan = planSite(p, solver);
      solveMs += performance.now() - t;
      const dp = plan.devices[0];
      for (let k = 0; k < 96; k++) {
        const dtH = 0.25;
        const hour = DateTime.fromMillis(slots[k].start, { zone: TZ }).hour;
        // the plan, executed as planned
        const pw = dp.tankW![k];
        temp.plan = tankStep(temp.plan, pw, tank.cop[k], tank.drawWh[k], dtH);
        cost.plan += (pw / 1000) * dtH * rates[k];
        kwh.plan += (pw / 1000) * dtH;
        // a DHW thermostat: heats when 5 K below 50 °C, up to 50 °C (a heat pump's factory setting)
        running.thermostat = temp.thermostat < 45.5 ? true : temp.thermostat >= 50 ? false : running.thermostat;
        const pth = running.thermostat ? TANK.powerW : 0;
        temp.thermostat = tankStep(temp.thermostat, pth, tank.cop[k], tank.drawWh[k], dtH);
        cost.thermostat += (pth / 1000) * dtH * rates[k];
        kwh.thermostat += (pth / 1000) * dtH;
        // a night timer: heats up to 60 °C from 00:00 to 06:00 only, plus the thermostat's rescue below 45 °C
        running.timer = hour < 6 ? temp.timer < 60 : temp.timer < 45;
        const pti = running.timer ? TANK.powerW : 0;
        temp.timer = tankStep(temp.timer, pti, tank.cop[k], tank.drawWh[k], dtH);
        cost.timer += (pti / 1000) * dtH * rates[k];
        kwh.timer += (pti / 1000) * dtH;
        for (const key of ['plan', 'thermostat', 'timer'] as const) minSeen[key] = Math.min(minSeen[key], temp[key]);
      }
    }
    const f = (k: keyof typeof cost) => `${cost[k].toFixed(2)} € (${kwh[k].toFixed(0)} kWh, min ${minSeen[k].toFixed(1)} °C)`;
    out.push(`| ${label}, ${days} days from ${startIso} | ${f('plan')} | ${f('thermostat')} | ${f('timer')} | ${(100 * (1 - cost.plan / cost.thermostat)).toFixed(1)} % / ${(100 * (1 - cost.plan / cost.timer)).toFixed(1)} % | ${fmtMs(solveMs / days)} |`);
  }
  return out;
}

const load = loadavg()[0];
console.log(`Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${load.toFixed(1)} at the start.\n`);
console.log('| site plan, 48 h at 15 min (192 slots) | columns / rows / integer | solve (median of runs) | status |\n|---|---|---|---|');
for (const r of await lpSize()) console.log(r);
console.log('\n| prices (DE-LU day-ahead + 0.17 €/kWh, × 1.19) | homeflex plan | thermostat 45.5→50 °C | night timer 00–06 h to 60 °C | plan saves vs thermostat / timer | solve per day |\n|---|---|---|---|---|---|');
for (const r of await savings()) console.log(r);
