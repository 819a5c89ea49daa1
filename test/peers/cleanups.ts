import { afterEach } from 'vitest';

/**
 * A list of undo steps for a test file: push what a test started (a hub, a broker, a client), and
 * after each test they run in reverse order.
 */
export function cleanupsAfterEach(): (() => Promise<unknown> | unknown)[] {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}
