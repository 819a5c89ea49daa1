import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../api/index.js';
import type { SitePlan, SiteProblem } from '../optimiser/site/types.js';
import type { PlanReply, PlanRequest } from './plan-worker.js';

/** HiGHS' WebAssembly memory grows to fit the largest model solved and is never given back: past this the thread is replaced. */
export const MAX_WASM_BYTES = 256 * 2 ** 20;

/** The plan did not come back within its time limit (the thread solving it was stopped). */
export class PlanTimeout extends Error {
  constructor(readonly limitMs: number) {
    super(`the plan was not solved within its time limit of ${Math.round(limitMs / 1000)} s`);
    this.name = 'PlanTimeout';
  }
}

export interface ThreadStats {
  /** Threads started, and those replaced because HiGHS' memory grew past the bound or a plan timed out. */
  started: number;
  recycled: number;
  timeouts: number;
  /** HiGHS' WebAssembly memory after the last plan (bytes). */
  wasmBytes: number;
}

interface Waiting {
  resolve(reply: { plan: SitePlan; solveMs: number }): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  worker: Worker;
}

/** Starts plan-worker in a worker thread: the built file as it is, the TypeScript source (tests, `tsx`) through tsx's loader. */
function startWorker(): Worker {
  const self = import.meta.url;
  if (!/\.ts$/.test(new URL(self).pathname)) return new Worker(new URL('./plan-worker.js', self));
  const tsx = pathToFileURL(createRequire(self).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const entry = new URL('./plan-worker.ts', self).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, { eval: true });
}

/**
 * The site optimiser in its own thread: building the LP and solving it with HiGHS take seconds
 * for hundreds of devices, and the hub keeps answering OCPP, Modbus, MQTT and HTTP meanwhile.
 * One plan at a time; a plan past its time limit stops the thread (HiGHS cannot be interrupted
 * from outside) and the next plan starts a fresh one.
 */
export class PlanThread {
  private worker?: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private closed = false;
  readonly stats: ThreadStats = { started: 0, recycled: 0, timeouts: 0, wasmBytes: 0 };

  constructor(private readonly options: { log?: Logger; maxWasmBytes?: number } = {}) {}

  /** Starts the thread ahead of the first plan, so HiGHS loads while the hub starts. */
  warm(): void {
    if (!this.closed) this.ensure();
  }

  plan(problem: SiteProblem, limitMs: number): Promise<{ plan: SitePlan; solveMs: number }> {
    if (this.closed) return Promise.reject(new Error('the planning thread is stopped'));
    const worker = this.ensure();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        this.stats.timeouts++;
        this.options.log?.warn({ limit_ms: limitMs }, 'the plan took longer than its time limit: the planning thread is replaced');
        this.replace(worker);
        reject(new PlanTimeout(limitMs));
      }, limitMs);
      this.waiting.set(id, { resolve, reject, timer, worker });
      try {
        worker.postMessage({ id, problem } satisfies PlanRequest);
      } catch (err) {
        clearTimeout(timer);
        this.waiting.delete(id);
        reject(err as Error);
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error('the planning thread is stopped'));
    if (w) await w.terminate();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = startWorker();
    this.stats.started++;
    // the thread must not keep the hub's process alive on its own
    w.unref();
    w.on('message', (m: PlanReply | { ready: true }) => {
      if ('ready' in m) return;
      const waiting = this.waiting.get(m.id);
      if (!waiting) return;
      this.waiting.delete(m.id);
      clearTimeout(waiting.timer);
      if (!m.ok) return waiting.reject(new Error(m.error));
      this.stats.wasmBytes = m.wasmBytes;
      if (m.wasmBytes > (this.options.maxWasmBytes ?? MAX_WASM_BYTES) && this.worker === w && ![...this.waiting.values()].some((o) => o.worker === w)) {
        this.options.log?.info({ wasm_mb: Math.round(m.wasmBytes / 2 ** 20) }, "HiGHS' memory grew past its bound: the planning thread is replaced");
        this.stats.recycled++;
        this.replace(w);
      }
      waiting.resolve({ plan: m.plan, solveMs: m.solveMs });
    });
    w.on('error', (err) => {
      this.options.log?.error({ err }, `the planning thread failed: ${err.message}`);
      if (this.worker === w) this.worker = undefined;
      this.failAll(err, w);
    });
    w.on('exit', (code) => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(new Error(`the planning thread stopped (exit code ${code})`), w);
    });
    this.worker = w;
    return w;
  }

  private replace(w: Worker) {
    if (this.worker === w) this.worker = undefined;
    void w.terminate();
  }

  private failAll(err: Error, worker?: Worker) {
    for (const [id, w] of this.waiting) {
      if (worker && w.worker !== worker) continue;
      clearTimeout(w.timer);
      this.waiting.delete(id);
      w.reject(err);
    }
  }
}
