/**
 * The small expression language of Modbus profiles: measures (`-bat_w`, `sum(pv1, pv2)`) and write
 * values (`power / wcha_max * 100`) are data, not code. Numbers, names, + - * / %, comparisons,
 * && || !, `c ? a : b`, `null` and a few functions. A name whose point is unavailable (not in the
 * device, or "not implemented") makes the result unavailable (`undefined`), except inside `has`,
 * `sum` and `coalesce`.
 */

export type Lookup = (name: string) => number | undefined;

export interface Expression {
  readonly source: string;
  /** Every name the expression reads. */
  readonly names: ReadonlySet<string>;
  evaluate(lookup: Lookup): number | undefined;
}

type Node = (lookup: Lookup) => number | undefined;

type Fn = (args: Node[], lookup: Lookup) => number | undefined;

const all = (args: Node[], lookup: Lookup): number[] | undefined => {
  const out: number[] = [];
  for (const a of args) {
    const v = a(lookup);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
};

const strict = (arity: [number, number], f: (...xs: number[]) => number): { arity: [number, number]; fn: Fn } => ({
  arity,
  fn: (args, lookup) => {
    const xs = all(args, lookup);
    return xs === undefined ? undefined : finite(f(...xs));
  },
});

const finite = (x: number) => (Number.isFinite(x) ? x : undefined);

const FUNCTIONS: Record<string, { arity: [number, number]; fn: Fn }> = {
  /** 1 when the value is available, else 0. */
  has: { arity: [1, 1], fn: (args, lookup) => (args[0](lookup) === undefined ? 0 : 1) },
  /** Sum of the available arguments; unavailable when none is. */
  sum: {
    arity: [1, 64],
    fn: (args, lookup) => {
      let total: number | undefined;
      for (const a of args) {
        const v = a(lookup);
        if (v !== undefined) total = (total ?? 0) + v;
      }
      return total;
    },
  },
  /** The first available argument. */
  coalesce: {
    arity: [1, 64],
    fn: (args, lookup) => {
      for (const a of args) {
        const v = a(lookup);
        if (v !== undefined) return v;
      }
      return undefined;
    },
  },
  min: strict([1, 64], Math.min),
  max: strict([1, 64], Math.max),
  abs: strict([1, 1], Math.abs),
  round: strict([1, 1], Math.round),
  floor: strict([1, 1], Math.floor),
  ceil: strict([1, 1], Math.ceil),
  clamp: strict([3, 3], (x, lo, hi) => Math.min(hi, Math.max(lo, x))),
  /** Bit n (0 = least significant) of an integer register value. */
  bit: strict([2, 2], (x, n) => Math.floor(x / 2 ** n) % 2),
};

export class ExpressionError extends Error {
  constructor(source: string, at: number, message: string) {
    super(`${message} at column ${at + 1} of "${source}"`);
    this.name = 'ExpressionError';
  }
}

interface Token {
  kind: 'num' | 'name' | 'op' | 'end';
  text: string;
  at: number;
}

const OPS = ['==', '!=', '<=', '>=', '&&', '||', '+', '-', '*', '/', '%', '<', '>', '!', '?', ':', '(', ')', ','];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^0x[0-9a-fA-F]+|^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ kind: 'num', text: num[0], at: i });
      i += num[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(src.slice(i));
    if (name) {
      out.push({ kind: 'name', text: name[0], at: i });
      i += name[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExpressionError(src, i, `unexpected character "${c}"`);
    out.push({ kind: 'op', text: op, at: i });
    i += op.length;
  }
  out.push({ kind: 'end', text: '', at: src.length });
  return out;
}

const bool = (x: boolean) => (x ? 1 : 0);

/** Parses an expression; `known` (when given) rejects names that are neither points nor variables. */
export function compile(source: string | number, known?: (name: string) => boolean): Expression {
  const src = String(source);
  const tokens = tokenize(src);
  const names = new Set<string>();
  let pos = 0;
  const peek = () => tokens[pos];
  const take = () => tokens[pos++];
  const expect = (text: string) => {
    const t = take();
    if (t.text !== text) throw new ExpressionError(src, t.at, `expected "${text}" but found ${t.kind === 'end' ? 'the end' : `"${t.text}"`}`);
  };

  const binary = (next: () => Node, ops: Record<string, (a: number, b: number) => number>): (() => Node) => () => {
    let left = next();
    while (peek().kind === 'op' && ops[peek().text]) {
      const f = ops[take().text];
      const l = left;
      const r = next();
      left = (lookup) => {
        const a = l(lookup);
        if (a === undefined) return undefined;
        const b = r(lookup);
        return b === undefined ? undefined : finite(f(a, b));
      };
    }
    return left;
  };

  const primary = (): Node => {
    const t = take();
    if (t.kind === 'num') {
      const v = Number(t.text);
      return () => v;
    }
    if (t.kind === 'op' && t.text === '(') {
      const inner = ternary();
      expect(')');
      return inner;
    }
    if (t.kind === 'name') {
      if (t.text === 'null') return () => undefined;
      if (peek().text === '(') {
        const f = FUNCTIONS[t.text];
        if (!f) throw new ExpressionError(src, t.at, `unknown function "${t.text}" (known: ${Object.keys(FUNCTIONS).join(', ')})`);
        take();
        const args: Node[] = [];
        if (peek().text !== ')') {
          args.push(ternary());
          while (peek().text === ',') {
            take();
            args.push(ternary());
          }
        }
        expect(')');
        if (args.length < f.arity[0] || args.length > f.arity[1]) {
          throw new ExpressionError(src, t.at, `${t.text}() takes ${f.arity[0] === f.arity[1] ? f.arity[0] : `${f.arity[0]} to ${f.arity[1]}`} arguments, got ${args.length}`);
        }
        return (lookup) => f.fn(args, lookup);
      }
      if (known && !known(t.text)) throw new ExpressionError(src, t.at, `unknown name "${t.text}"`);
      names.add(t.text);
      const name = t.text;
      return (lookup) => lookup(name);
    }
    throw new ExpressionError(src, t.at, t.kind === 'end' ? 'unexpected end' : `unexpected "${t.text}"`);
  };

  const unary = (): Node => {
    if (peek().text === '-' || peek().text === '!') {
      const op = take().text;
      const inner = unary();
      return op === '-' ? (lookup) => {
        const v = inner(lookup);
        return v === undefined ? undefined : -v;
      } : (lookup) => {
        const v = inner(lookup);
        return v === undefined ? undefined : bool(v === 0);
      };
    }
    return primary();
  };
  const mul = binary(unary, { '*': (a, b) => a * b, '/': (a, b) => a / b, '%': (a, b) => a % b });
  const add = binary(mul, { '+': (a, b) => a + b, '-': (a, b) => a - b });
  const cmp = binary(add, {
    '<': (a, b) => bool(a < b),
    '<=': (a, b) => bool(a <= b),
    '>': (a, b) => bool(a > b),
    '>=': (a, b) => bool(a >= b),
    '==': (a, b) => bool(a === b),
    '!=': (a, b) => bool(a !== b),
  });
  // && and || decide on the left side alone when they can: `has(x) || x > 0` needs no x
  const logical = (next: () => Node, op: '&&' | '||'): (() => Node) => () => {
    let left = next();
    while (peek().text === op) {
      take();
      const l = left;
      const r = next();
      left = (lookup) => {
        const a = l(lookup);
        if (a !== undefined && (op === '&&' ? a === 0 : a !== 0)) return bool(op === '||');
        const b = r(lookup);
        if (b === undefined) return undefined;
        if (a === undefined) return (op === '&&' ? b === 0 : b !== 0) ? bool(op === '||') : undefined;
        return bool(b !== 0);
      };
    }
    return left;
  };
  const and = logical(cmp, '&&');
  const or = logical(and, '||');
  function ternary(): Node {
    const cond = or();
    if (peek().text !== '?') return cond;
    take();
    const yes = ternary();
    expect(':');
    const no = ternary();
    return (lookup) => {
      const c = cond(lookup);
      if (c === undefined) return undefined;
      return c !== 0 ? yes(lookup) : no(lookup);
    };
  }

  const root = ternary();
  if (peek().kind !== 'end') throw new ExpressionError(src, peek().at, `unexpected "${peek().text}"`);
  return { source: src, names, evaluate: (lookup) => root(lookup) };
}
