/**
 * `p`, or a rejection "<what> did not finish within <ms> ms" when it takes longer (wall-clock: a
 * budget for start and stop hooks, which must hold even when a test's clock stands still).
 */
export const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
