import { afterEach } from 'vitest';
import { MeterStore } from '../../src/metering/store.js';

/** `MeterStore.open` for a test file: every store a test opened is closed after it. */
export function meterStoresAfterEach(): (dir: string, opts?: Parameters<typeof MeterStore.open>[1]) => Promise<MeterStore> {
  const stores: MeterStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  return async (dir, opts = {}) => {
    const s = await MeterStore.open(dir, opts);
    stores.push(s);
    return s;
  };
}
