import highsModule from 'highs';
import { highsSolver } from '../optimiser/site/highs.js';
import type { LpSolver } from '../optimiser/site/lp.js';

type HighsLoader = typeof highsModule.default;
// the package's ESM entry exports the loader as default; its CommonJS typings describe module.exports
const loadHighs: HighsLoader = (highsModule as unknown as { default?: HighsLoader }).default ?? (highsModule as unknown as HighsLoader);

let loading: Promise<LpSolver> | undefined;

/** Loads the HiGHS WebAssembly runtime once per process and wraps it for the site optimiser. */
export function loadSolver(): Promise<LpSolver> {
  loading ??= loadHighs().then(highsSolver);
  return loading;
}
