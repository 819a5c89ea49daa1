/**
 * A small builder for sparse linear programmes, handed to a solver as column-wise (CSC) arrays.
 * Columns and rows are added by index; the matrix is assembled once at the end.
 */

export type ColumnKind = 'continuous' | 'binary' | 'semicontinuous';

export interface LpColumn {
  cost: number;
  lower: number;
  upper: number;
  /** How the column must end up in an integer solution; the first solve relaxes all of them. */
  kind: ColumnKind;
  /** For a semi-continuous column: 0 or at least this. */
  semiMin?: number;
  name?: string;
}

/** The assembled model: what a solver needs, in compressed sparse column form. */
export interface LpModel {
  numCols: number;
  numRows: number;
  colCost: Float64Array;
  colLower: Float64Array;
  colUpper: Float64Array;
  rowLower: Float64Array;
  rowUpper: Float64Array;
  /** CSC: column j holds entries starts[j]..starts[j+1] of (indices = rows, values). */
  starts: Int32Array;
  indices: Int32Array;
  values: Float64Array;
  kinds: ColumnKind[];
  semiMin: Float64Array;
  offset: number;
  /** A starting basis (HiGHS codes: 0 lower, 1 basic, 2 upper, 3 zero), when the builder knows a good one. */
  basis?: { colStatus: Int32Array; rowStatus: Int32Array };
}

export class LpBuilder {
  private readonly cols: LpColumn[] = [];
  private readonly rowLower: number[] = [];
  private readonly rowUpper: number[] = [];
  /** Triplets in the order rows were added. */
  private readonly tRow: number[] = [];
  private readonly tCol: number[] = [];
  private readonly tVal: number[] = [];
  /** Pairs (column, row): the column starts basic in place of that equality row's slack. */
  private readonly basicPairs: [number, number][] = [];
  offset = 0;

  get numCols() {
    return this.cols.length;
  }
  get numRows() {
    return this.rowLower.length;
  }

  addCol(cost: number, lower: number, upper: number, kind: ColumnKind = 'continuous', semiMin?: number): number {
    if (!(lower <= upper)) throw new Error(`column ${this.cols.length}: lower bound ${lower} above upper bound ${upper}`);
    this.cols.push({ cost, lower, upper, kind, semiMin });
    return this.cols.length - 1;
  }

  col(j: number): LpColumn {
    return this.cols[j];
  }

  /**
   * Starts column `col` basic, in place of the slack of equality row `row` (a crash basis: the
   * state of charge in its balance row, the room temperature in its heat balance, the grid in the
   * power balance). Without it the simplex adds them one by one from an all-slack basis.
   */
  startBasic(col: number, row: number) {
    this.basicPairs.push([col, row]);
  }

  addCost(j: number, cost: number) {
    this.cols[j].cost += cost;
  }

  /** Adds `lower ≤ Σ coef·x[col] ≤ upper`; repeated columns in one row are summed. */
  addRow(lower: number, upper: number, entries: readonly (readonly [number, number])[]): number {
    const row = this.rowLower.length;
    this.rowLower.push(lower);
    this.rowUpper.push(upper);
    const first = this.tVal.length;
    for (const [c, v] of entries) {
      if (c < 0 || c >= this.cols.length) throw new Error(`row ${row}: no column ${c}`);
      // a column named twice in one row adds up (rows are short, so a linear scan is cheapest)
      let k = first;
      while (k < this.tCol.length && this.tCol[k] !== c) k++;
      if (k < this.tCol.length) this.tVal[k] += v;
      else {
        this.tRow.push(row);
        this.tCol.push(c);
        this.tVal.push(v);
      }
    }
    return row;
  }

  build(infinity = Infinity): LpModel {
    const n = this.cols.length;
    const m = this.rowLower.length;
    const nnz = this.tVal.length;
    const starts = new Int32Array(n + 1);
    for (let k = 0; k < nnz; k++) starts[this.tCol[k] + 1]++;
    // explicit zeros (terms that cancelled) stay in the matrix; HiGHS drops them on input
    for (let j = 0; j < n; j++) starts[j + 1] += starts[j];
    const fill = starts.slice(0, n);
    const indices = new Int32Array(nnz);
    const values = new Float64Array(nnz);
    // rows were added in increasing order, so each column's row indices come out sorted
    for (let k = 0; k < nnz; k++) {
      const pos = fill[this.tCol[k]]++;
      indices[pos] = this.tRow[k];
      values[pos] = this.tVal[k];
    }
    const clamp = (x: number) => (x === Infinity ? infinity : x === -Infinity ? -infinity : x);
    const colCost = new Float64Array(n);
    const colLower = new Float64Array(n);
    const colUpper = new Float64Array(n);
    const semiMin = new Float64Array(n);
    const kinds: ColumnKind[] = new Array(n);
    for (let j = 0; j < n; j++) {
      const c = this.cols[j];
      colCost[j] = c.cost;
      colLower[j] = clamp(c.lower);
      colUpper[j] = clamp(c.upper);
      semiMin[j] = c.semiMin ?? 0;
      kinds[j] = c.kind;
    }
    const rowLower = new Float64Array(m);
    const rowUpper = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      rowLower[i] = clamp(this.rowLower[i]);
      rowUpper[i] = clamp(this.rowUpper[i]);
    }
    let basis: LpModel['basis'];
    if (this.basicPairs.length) {
      const colStatus = new Int32Array(n);
      for (let j = 0; j < n; j++) colStatus[j] = Number.isFinite(colLower[j]) ? 0 : Number.isFinite(colUpper[j]) ? 2 : 3;
      const rowStatus = new Int32Array(m).fill(1);
      for (const [col, row] of this.basicPairs) {
        colStatus[col] = 1;
        rowStatus[row] = 0;
      }
      basis = { colStatus, rowStatus };
    }
    return { numCols: n, numRows: m, colCost, colLower, colUpper, rowLower, rowUpper, starts, indices, values, kinds, semiMin, offset: this.offset, basis };
  }
}

/** Model status as the site optimiser understands it. */
export type LpStatus = 'optimal' | 'infeasible' | 'unbounded' | 'time_limit' | 'error';

export interface LpResult {
  status: LpStatus;
  /** Column values (present unless infeasible or error). */
  x?: Float64Array;
  objective?: number;
  /** For a MILP: the best bound the solver proved. */
  bound?: number;
  /** Simplex iterations of this solve. */
  iterations?: number;
}

/**
 * A solver session over one model: solve, change bounds, solve again from the last basis.
 * Implemented over HiGHS in highs.ts; the optimiser never loads the solver itself.
 */
export interface LpSession {
  solve(): LpResult;
  setBounds(col: number, lower: number, upper: number): void;
  /** Solves with the columns' integer kinds enforced; `start` is an incumbent to begin from. */
  solveMip(options: { relGap: number; timeLimitS: number; start?: Float64Array }): LpResult;
  dispose(): void;
}

export interface LpSolver {
  open(model: LpModel): LpSession;
  readonly name: string;
}
