import { performance } from 'node:perf_hooks';

/** How long a store's writes took, for GET /metrics: count, total and the slowest (seconds). */
export class WriteTimes {
  count = 0;
  sumS = 0;
  maxS = 0;

  /** Times `write`, successful or not. */
  async time<T>(write: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await write();
    } finally {
      const s = (performance.now() - t0) / 1000;
      this.count++;
      this.sumS += s;
      if (s > this.maxS) this.maxS = s;
    }
  }
}
