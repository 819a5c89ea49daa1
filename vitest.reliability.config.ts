import { defineConfig } from 'vitest/config';

/** The reliability suite (`npm run test:reliability`): faults, fuzzing, security; slower than unit tests. */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/peers/global-setup.ts'],
    fileParallelism: false,
  },
});
