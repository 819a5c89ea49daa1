/**
 * Run in a fresh process by bench/optimiser.ts: loads HiGHS and makes the benchmark site's first
 * plan, then prints the timings as JSON (ms since process start and since the solver load began).
 */
import { performance } from 'node:perf_hooks';

const beforeImport = performance.now();
const { loadSolver } = await import('../src/control/solver.js');
const { planSite } = await import('../src/optimiser/site/solve.js');
const { exampleSite } = await import('../src/optimiser/site/example.js');
const t0 = performance.now();
const solver = await loadSolver();
const loaded = performance.now();
const plan = planSite(exampleSite(1), solver);
const done = performance.now();
process.stdout.write(JSON.stringify({ sinceStartMs: done, importMs: t0 - beforeImport, loadMs: loaded - t0, firstPlanMs: done - loaded, loadAndPlanMs: done - t0, status: plan.status }) + '\n');
