import { cpus, totalmem, platform, release } from 'node:os';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/cli.js';
import type { BenchSection } from './types.js';
import { run as hubBench } from './hub.js';
import { run as dashboardBench } from './dashboard.js';
import { run as tariffBench } from './tariff.js';
import { run as modbusBench } from './modbus.js';
import { run as meteringBench } from './metering.js';
import { run as ocppBench } from './ocpp.js';
import { run as mqttBench } from './mqtt.js';
import { run as optimiserBench } from './optimiser.js';
import { run as forecastBench } from './forecast.js';
import { run as soakBench } from './soak.js';
import { run as planSoakBench } from './plan-soak.js';
import { run as billBench } from './bill.js';
import { run as postgresBench } from './postgres.js';

/** Every benchmark section, in the order they appear in BENCHMARKS.md. */
const SECTIONS: { id: string; run: () => Promise<BenchSection>; optIn?: { env: string; heading: string } }[] = [
  { id: 'hub', run: hubBench },
  { id: 'dashboard', run: dashboardBench },
  { id: 'tariff', run: tariffBench },
  { id: 'modbus', run: modbusBench },
  { id: 'metering', run: meteringBench },
  { id: 'ocpp', run: ocppBench },
  { id: 'mqtt', run: mqttBench },
  { id: 'optimiser', run: optimiserBench },
  { id: 'forecast', run: forecastBench },
  { id: 'bill', run: billBench },
  { id: 'postgres', run: postgresBench },
  // 30 minutes: runs only when named (`npm run bench -- soak`) or with BENCH_SOAK_MINUTES set; a full run keeps its last figures
  { id: 'soak', run: soakBench, optIn: { env: 'BENCH_SOAK_MINUTES', heading: '## Soak' } },
  // a few minutes with 500 chargers: only when named (`npm run bench -- plansoak`) or with BENCH_PLANSOAK_MINUTES set
  { id: 'plansoak', run: planSoakBench, optIn: { env: 'BENCH_PLANSOAK_MINUTES', heading: '## Planning off the event loop' } },
];

const out = join(packageRoot, 'BENCHMARKS.md');

/** An opt-in section's block as BENCHMARKS.md holds it now, so a full run that skips the section keeps its figures. */
function previousBlock(heading: string): string | undefined {
  const text = existsSync(out) ? readFileSync(out, 'utf8') : '';
  const at = text.indexOf(`\n${heading}`);
  if (at < 0) return undefined;
  const next = text.indexOf('\n## ', at + 1);
  return text.slice(at + 1, next < 0 ? undefined : next).trimEnd();
}

async function main() {
  const only = process.argv.slice(2);
  const results: (BenchSection | string)[] = [];
  for (const s of SECTIONS) {
    if (only.length && !only.includes(s.id)) continue;
    if (!only.length && s.optIn && !process.env[s.optIn.env]) {
      const kept = previousBlock(s.optIn.heading);
      if (kept) results.push(kept);
      continue;
    }
    process.stderr.write(`bench ${s.id}…\n`);
    try {
      results.push(await s.run());
    } catch (err) {
      results.push({ title: s.id, rows: [{ name: 'failed', value: String((err as Error).stack ?? err), ok: false }] });
    }
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${platform()} ${release()}, Node ${process.version}`;
  const lines = [
    '# Benchmarks',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}.`,
    'Regenerate with `npm run bench` (or `npm run bench -- <section id>` for one section: ' + SECTIONS.map((s) => s.id).join(', ') + ').',
    '',
  ];
  for (const r of results) {
    if (typeof r === 'string') {
      lines.push(r, '');
      continue;
    }
    lines.push(`## ${r.title}`, '', '| measure | value | target | met |', '|---|---|---|---|');
    for (const row of r.rows) lines.push(`| ${row.name} | ${row.value.replace(/\|/g, '\\|').replace(/\n/g, ' ')} | ${row.target ?? ''} | ${row.ok === undefined ? '' : row.ok ? 'yes' : '**no**'} |`);
    if (r.notes?.length) lines.push('', ...r.notes.map((n) => `- ${n}`));
    lines.push('');
  }
  if (only.length) process.stdout.write(lines.join('\n') + '\n');
  else writeFileSync(out, lines.join('\n'));
  process.stderr.write(only.length ? 'partial run: printed, BENCHMARKS.md left as it is\n' : `wrote ${out}\n`);
  const failed = results.flatMap((r) => (typeof r === 'string' ? [] : r.rows)).filter((r) => r.ok === false);
  if (failed.length) process.stderr.write(`${failed.length} target(s) not met: ${failed.map((f) => f.name).join('; ')}\n`);
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
