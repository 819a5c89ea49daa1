import highsModule, { type Highs } from 'highs';
import { highsSolver } from '../optimiser/site/highs.js';
import type { LpSolver } from '../optimiser/site/lp.js';

type HighsLoader = typeof highsModule.default;
// the package's ESM entry exports the loader as default; its CommonJS typings describe module.exports
const loadHighs: HighsLoader = (highsModule as unknown as { default?: HighsLoader }).default ?? (highsModule as unknown as HighsLoader);

let runtime: Promise<Highs> | undefined;
let loading: Promise<LpSolver> | undefined;

/** The HiGHS WebAssembly runtime of this thread, loaded once (its memory only grows: see plan-thread.ts). */
export function loadHighsRuntime(): Promise<Highs> {
  runtime ??= loadHighs();
  return runtime;
}

/** Loads the HiGHS WebAssembly runtime once per thread and wraps it for the site optimiser. */
export function loadSolver(): Promise<LpSolver> {
  loading ??= loadHighsRuntime().then(highsSolver);
  return loading;
}
