import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import { readSeries } from '../src/backtest/read.js';
import { runTariffBacktest, type TariffShape, type TariffStrategy } from '../src/backtest/tariffs.js';
import { packageRoot } from '../src/cli.js';
import { loadSolver } from '../src/control/solver.js';

/**
 * Issue 17 item 4: peak shaving and curtailment on whole-bill tariffs, CityLearn homes on DE-LU 2025
 * spot prices. One results file per (home, scenario, forecast), written as each finishes:
 *
 *   node --import tsx bench/tariffs.ts [--homes 1,2] [--scenarios be,de] [--forecasts perfect,history]
 *        [--from 2025-04-01 --to 2025-07-01] [--replan 180] [--out bench-results/tariffs]
 *   node --import tsx bench/tariffs.ts --table [--out DIR]     (markdown from the results files)
 */

const dataDir = process.env.HOMEFLEX_DATA ?? [join(packageRoot, '..', 'shared', 'data'), '/work/shared/data'].find((d) => existsSync(d)) ?? '';
const tz = 'Europe/Berlin';

/**
 * The scenarios. Figures are illustrative of the published tariffs, not one operator's:
 * - be: a Flemish-style capacity charge, 53.3 €/kW/year (4.44 per month) on the month's highest
 *   15-minute import, at least 2.5 kW; energy = spot + 0.10 levies and energy-part fees, 6 % VAT; feed-in
 *   0.04 €/kWh, unpaid at a negative spot.
 * - de: §14a EnWG module 3 grid-fee windows (low 00:00–06:00 2.9 ct, high 17:00–21:00 11.5 ct,
 *   standard 7.3 ct), levies 0.09, 19 % VAT; export sold at the spot price (direct marketing),
 *   so a negative price costs the exporter.
 */
export const SCENARIOS: Record<string, { label: string; shape: TariffShape; strategies: TariffStrategy[] }> = {
  be: {
    label: 'Flemish-style capacity charge (4.44 €/kW-month, min 2.5 kW), feed-in 0.04 unpaid at negative spot',
    shape: { levies: 0.1, vat: 0.06, export: { kind: 'fixed', rate: 0.04 }, noPayAtNegative: true, capacity: { pricePerKwMonth: 53.3 / 12, minimumW: 2500 } },
    strategies: ['self_consumption', 'peak_rule', 'plan_energy', 'plan_peak', 'plan_full'],
  },
  de: {
    label: '§14a module 3 fee windows, export at the spot price (negative prices cost)',
    shape: {
      levies: 0.09,
      vat: 0.19,
      feeWindows: [
        { name: 'low', from: '00:00', to: '06:00', rate: 0.029 },
        { name: 'high', from: '17:00', to: '21:00', rate: 0.115 },
      ],
      otherFee: 0.073,
      export: { kind: 'spot' },
      noPayAtNegative: false,
    },
    strategies: ['self_consumption', 'plan_energy', 'plan_full'],
  },
};

const battery = { capacityWh: 5000, chargeW: 2500, dischargeW: 2500, chargeEfficiency: 0.95, dischargeEfficiency: 0.95, socMinWh: 250, socMaxWh: 5000, initialWh: 2500 };

async function main() {
  const { values } = parseArgs({
    options: {
      homes: { type: 'string', default: '1,2' },
      scenarios: { type: 'string', default: 'be,de' },
      forecasts: { type: 'string', default: 'perfect,history' },
      from: { type: 'string', default: '2025-04-01' },
      to: { type: 'string', default: '2025-07-01' },
      replan: { type: 'string', default: '180' },
      out: { type: 'string', default: join(packageRoot, 'bench-results', 'tariffs') },
      table: { type: 'boolean', default: false },
    },
  });
  const out = values.out!;
  mkdirSync(out, { recursive: true });
  if (values.table) return console.log(table(out));
  const from = DateTime.fromISO(values.from!, { zone: tz }).toMillis();
  const to = DateTime.fromISO(values.to!, { zone: tz }).toMillis();
  const span = { a: from - 40 * 864e5, b: to + 96 * 36e5 };
  const spot = readSeries(join(dataDir, 'prices', 'de-lu_energy-charts'), 'import', { timezone: tz }).over(span.a, span.b);
  const schema = JSON.parse(readFileSync(join(dataDir, 'load_pv', 'citylearn_2022', 'schema.json'), 'utf8')) as { buildings: Record<string, { pv?: { attributes?: { nominal_power?: number } } }> };
  const solver = await loadSolver();
  for (const home of values.homes!.split(',')) {
    const file = join(dataDir, 'load_pv', 'citylearn_2022', `Building_${home}.csv`);
    const kWp = schema.buildings[`Building_${home}`]?.pv?.attributes?.nominal_power ?? 4;
    const load = readSeries(file, 'load', { timezone: tz }).over(span.a, span.b);
    const pv = readSeries(file, 'pv', { timezone: tz, pvKwp: kWp }).over(span.a, span.b);
    for (const sc of values.scenarios!.split(',')) {
      const scenario = SCENARIOS[sc];
      if (!scenario) throw new Error(`unknown scenario ${sc} (be, de)`);
      for (const forecast of values.forecasts!.split(',') as ('perfect' | 'history')[]) {
        const cpu0 = process.cpuUsage();
        const t0 = Date.now();
        const results = await runTariffBacktest({ spot, load, pv }, {
          from, to, timezone: tz, battery, shape: scenario.shape, forecast, strategies: scenario.strategies,
          pvArray: { kWp, latitude: 34.1, longitude: 17.6, tilt: 30, azimuth: 180 }, replanMinutes: Number(values.replan), horizonHours: 36,
        }, solver);
        const cpu = process.cpuUsage(cpu0);
        const record = { home, kWp, scenario: sc, replanMinutes: Number(values.replan), label: scenario.label, forecast, from: values.from, to: values.to, battery, seconds: (Date.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, results };
        writeFileSync(join(out, `${home}-${sc}-${forecast}.json`), JSON.stringify(record, null, 1));
        console.log(`Building ${home} ${sc} ${forecast}: ${results.map((r) => `${r.name} ${r.total.toFixed(2)}`).join(', ')} (${record.cpuSeconds.toFixed(0)} s CPU)`);
      }
    }
  }
}

type Record_ = { home: string; kWp: number; scenario: string; forecast: string; from: string; to: string; seconds: number; cpuSeconds: number; results: Awaited<ReturnType<typeof runTariffBacktest>> };

/** The markdown tables of BENCHMARKS.md from the results files. */
export function table(dir: string): string {
  const files = existsSync(dir) ? (readdir(dir) as string[]).filter((f) => f.endsWith('.json')).sort() : [];
  const rows = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record_);
  const lines: string[] = [];
  const eur = (v: number) => v.toFixed(2);
  for (const sc of Object.keys(SCENARIOS)) {
    const mine = rows.filter((r) => r.scenario === sc);
    if (!mine.length) continue;
    const names = SCENARIOS[sc].strategies;
    lines.push(`**${sc}**: ${SCENARIOS[sc].label}`, '');
    lines.push(`| home, forecast | ${names.join(' | ')} | peak shaving (plan_energy − plan_peak) | curtailment (plan_peak − plan_full) | plan_full vs best rule | exported at negative spot: plan_energy → plan_full | curtailed | CPU |`);
    lines.push(`|${'---|'.repeat(names.length + 7)}`);
    for (const r of mine) {
      const by = Object.fromEntries(r.results.map((x) => [x.name, x]));
      const cell = (n: string) => (by[n] ? `${eur(by[n].total)}${by[n].capacityCost ? ` (cap ${eur(by[n].capacityCost)})` : ''}` : '—');
      const peakBase = by.plan_peak ?? by.plan_energy;
      const rules = ['self_consumption', 'peak_rule'].filter((n) => by[n]).map((n) => by[n].total);
      lines.push(
        `| Building ${r.home} (${r.kWp} kWp), ${r.forecast} | ${names.map(cell).join(' | ')} | ${by.plan_peak ? eur(by.plan_energy.total - by.plan_peak.total) : '—'} | ${eur(peakBase.total - by.plan_full.total)} | ${eur(Math.min(...rules) - by.plan_full.total)} | ${by.plan_energy.exportAtNegativeKwh.toFixed(1)} → ${by.plan_full.exportAtNegativeKwh.toFixed(1)} kWh | ${by.plan_full.curtailedKwh.toFixed(1)} kWh | ${r.cpuSeconds.toFixed(0)} s |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

import { readdirSync as readdir } from 'node:fs';

if (process.argv[1] && /bench[/\\]tariffs\.[jt]s$/.test(process.argv[1])) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
