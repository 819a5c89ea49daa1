import loadHighs from 'highs';
import { highsSolver } from '../optimiser/site/highs.js';
import type { LpSolver } from '../optimiser/site/lp.js';

let loading: Promise<LpSolver> | undefined;

/** Loads the HiGHS WebAssembly runtime once per process and wraps it for the site optimiser. */
export function loadSolver(): Promise<LpSolver> {
  loading ??= loadHighs().then(highsSolver);
  return loading;
}
