import type { Highs, Model, ModelData, ModelStatusCode, VariableType } from 'highs';
import type { LpModel, LpResult, LpSession, LpSolver, LpStatus } from './lp.js';

/**
 * The site optimiser's solver over a loaded HiGHS runtime (`highs`, WebAssembly). The runtime is
 * passed in, so this module does no loading (no I/O): see src/control/solver.ts for that.
 */
export function highsSolver(highs: Highs): LpSolver {
  const ms = highs.constants.modelStatus;
  const vt = highs.constants.variableType;
  const statusOf = (s: ModelStatusCode): LpStatus =>
    s === ms.optimal ? 'optimal' : s === ms.infeasible ? 'infeasible' : s === ms.unbounded || s === ms.unboundedOrInfeasible ? 'unbounded' : s === ms.timeLimit ? 'time_limit' : 'error';

  const data = (m: LpModel, lower: Float64Array, integrality?: Int32Array): ModelData => ({
    numCols: m.numCols,
    numRows: m.numRows,
    offset: m.offset,
    colCost: m.colCost,
    colLower: lower,
    colUpper: m.colUpper,
    rowLower: m.rowLower,
    rowUpper: m.rowUpper,
    matrix: { format: 'csc', numRows: m.numRows, numCols: m.numCols, starts: m.starts, indices: m.indices, values: m.values },
    integrality,
  });

  const quiet = (model: Model) => model.options.set({ output_flag: false, log_to_console: false });
  // the site models are small and tight: presolve costs more than it saves, and Devex pricing beats steepest edge here
  const lpOptions = (model: Model) => model.options.set({ presolve: 'off', simplex_dual_edge_weight_strategy: 1 });

  return {
    name: `HiGHS ${highs.version.string} (wasm)`,
    open(m: LpModel): LpSession {
      const lower = Float64Array.from(m.colLower);
      const upper = Float64Array.from(m.colUpper);
      const lp = highs.createModel(data(m, lower));
      quiet(lp);
      lpOptions(lp);
      if (m.basis) lp.setBasis(m.basis as Parameters<Model['setBasis']>[0]);
      const read = (model: Model, isMip: boolean): LpResult => {
        const status = statusOf(model.getModelStatus());
        if (status === 'infeasible' || status === 'error' || status === 'unbounded') return { status };
        const primal = Number(model.info.get('primal_solution_status'));
        if (primal !== highs.constants.solutionStatus.feasible) return { status: status === 'optimal' ? 'error' : status };
        const x = model.getSolution().colValue;
        const objective = model.getObjectiveValue();
        const bound = isMip ? Number(model.info.get('mip_dual_bound')) : objective;
        const iterations = Number(model.info.get('simplex_iteration_count'));
        return { status, x, objective, bound, iterations };
      };
      return {
        solve() {
          lp.run();
          return read(lp, false);
        },
        setBounds(col, lo, up) {
          lower[col] = lo;
          upper[col] = up;
          lp.changeColBounds(col, lo, up);
        },
        solveMip({ relGap, timeLimitS, start }) {
          // integer kinds apply to the original bounds, not to the dive's fixings
          const integrality = new Int32Array(m.numCols);
          const lowerMip = Float64Array.from(m.colLower);
          for (let j = 0; j < m.numCols; j++) {
            const kind = m.kinds[j];
            if (kind === 'binary') integrality[j] = vt.integer;
            else if (kind === 'semicontinuous') {
              integrality[j] = vt.semiContinuous as VariableType;
              lowerMip[j] = m.semiMin[j];
            }
          }
          const mip = highs.createModel(data(m, lowerMip, integrality));
          try {
            quiet(mip);
            mip.options.set({ mip_rel_gap: relGap, time_limit: timeLimitS });
            if (start) mip.setSolution({ colValue: start });
            mip.run();
            return read(mip, true);
          } finally {
            mip.dispose();
          }
        },
        dispose() {
          lp.dispose();
        },
      };
    },
  };
}
