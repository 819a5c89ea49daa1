import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { planSite } from '../optimiser/site/solve.js';
import type { SitePlan, SiteProblem } from '../optimiser/site/types.js';
import { loadHighsRuntime, loadSolver } from './solver.js';

/** What the hub asks the planning thread (plan-thread.ts). */
export interface PlanRequest {
  id: number;
  problem: SiteProblem;
}

/** Its answer: the plan, how long building and solving it took, and HiGHS' WebAssembly memory after it. */
export type PlanReply = { id: number; ok: true; plan: SitePlan; solveMs: number; wasmBytes: number } | { id: number; ok: false; error: string };

const port = parentPort;
if (!port) throw new Error('plan-worker.ts runs as a worker thread (src/control/plan-thread.ts starts it)');

// HiGHS is loaded at once, so the first plan does not wait for it
const ready = loadSolver();
ready.then(
  () => port.postMessage({ ready: true }),
  () => undefined,
);

port.on('message', (req: PlanRequest) => {
  ready
    .then(async (solver) => {
      const t0 = performance.now();
      // the same planner as in-process: build the LP, solve it, read the plan
      const plan = planSite(req.problem, solver);
      const solveMs = performance.now() - t0;
      const wasmBytes = (await loadHighsRuntime()).memoryBytes;
      port.postMessage({ id: req.id, ok: true, plan, solveMs, wasmBytes } satisfies PlanReply);
    })
    .catch((err: unknown) => port.postMessage({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies PlanReply));
});
