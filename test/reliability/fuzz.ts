import fc from 'fast-check';

/** Shared pieces of the fuzz tests: odd values and mutations of a working message. */

export const weird = fc.oneof(
  fc.constantFrom<unknown>(
    null, true, false, 0, -1, -0.5, 1e308, -1e308, 2 ** 53 + 1, 5e-324, '', ' ', 'NaN', 'Infinity', '-Infinity', '1e999', '0x10', '1,5',
    '2026-02-30T00:00:00Z', '2026-03-10T10:00:00', '9999-12-31T23:59:59Z', '0001-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '24:00', '25:61',
    '<img src=x onerror=alert(1)>', '../../etc/passwd', '__proto__', 'constructor', '\u0000', '\ud800', 'é'.repeat(300), 'x'.repeat(20_000),
    [], {}, [[[]]], JSON.parse('{"__proto__": {"polluted": true}}'), { constructor: { prototype: { polluted: true } } }, Array.from({ length: 3000 }, () => 1),
  ),
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.jsonValue({ maxDepth: 2 }),
);

export type Json = unknown;
/** Every place in a JSON value (a path of keys and indexes). */
export function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

/** One mutation of a seed: replace, drop or add at a place, or repeat an array element. */
export function mutate(seed: Json, pick: number, op: 'replace' | 'drop' | 'add' | 'repeat', value: Json, key: string): Json {
  const copy = JSON.parse(JSON.stringify(seed ?? null)) as Json;
  const all = paths(copy);
  const path = all[pick % all.length];
  if (!path.length) return op === 'replace' ? value : copy;
  let parent = copy as Record<string | number, Json>;
  for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, Json>;
  const last = path[path.length - 1];
  if (op === 'replace') parent[last] = value;
  else if (op === 'drop') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else if (op === 'add') {
    const target = parent[last];
    if (target && typeof target === 'object' && !Array.isArray(target)) (target as Record<string, Json>)[key] = value;
    else if (Array.isArray(target)) target.push(value);
    else parent[last] = { [key]: value };
  } else {
    const target = parent[last];
    if (Array.isArray(target) && target.length) parent[last] = Array.from({ length: 50 }, () => target[0]);
  }
  return copy;
}

/** One random mutation, to apply to a seed with `applyMutation`. */
export const mutation = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom('replace' as const, 'drop' as const, 'add' as const, 'repeat' as const),
  value: weird,
  key: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor', 'prototype')),
});

export const applyMutation = (seed: Json, m: { pick: number; op: 'replace' | 'drop' | 'add' | 'repeat'; value: Json; key: string }) => mutate(seed, m.pick, m.op, m.value, m.key);
