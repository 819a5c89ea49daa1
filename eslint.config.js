import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The dependency directions of the design, enforced (npm run lint fails on a violation):
 * - adapters and plugins use the SDK (src/api) only, never the hub's own parts; adapters never
 *   import plugins, plugins never import adapters (device simulators excepted: they are stand-ins
 *   for devices, not adapters, and the sim-mqtt plugin runs them);
 * - src/api (the SDK) imports nothing of the hub;
 * - src/optimiser is pure: no I/O, no hub parts;
 * - only the composition root (src/core) and the CLI know concrete adapters and plugins.
 * Tests may reach anywhere.
 */
const HUB_PARTS = ['core', 'tariff', 'metering', 'control', 'optimiser', 'forecast', 'backtest', 'testing', 'cli'].flatMap((p) => [`**/src/${p}`, `**/src/${p}/**`, `**/src/${p}.js`]);
/** The same parts as src/ files reach them (`../core/host.js`, `../../metering/store.js`). */
const partsFromSrc = (except) => ['core', 'tariff', 'metering', 'control', 'optimiser', 'forecast', 'backtest', 'testing'].filter((p) => p !== except).flatMap((p) => [`**/${p}/**`, `../${p}`]).concat(['**/cli.js']);
const layer = (patterns, message, extra = []) => ({ 'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }, ...extra] }] });
const TESTS = ['**/*.test.ts', '**/test/**', 'test/**'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'test-artifacts/**', '.scratch/**', 'plugins/dashboard/public/vendor/**', 'examples/*/node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  {
    files: ['examples/**/*.js'],
    languageOptions: { globals: { fetch: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly' } },
  },
  {
    files: ['adapters/**/*.ts'],
    ignores: TESTS,
    rules: layer([...HUB_PARTS, '**/plugins/**'], 'adapters use the SDK (src/api) only: not the hub\'s parts, not plugins (DESIGN §1 dependency directions)'),
  },
  {
    files: ['plugins/**/*.ts'],
    ignores: TESTS,
    rules: layer([...HUB_PARTS], 'plugins use the SDK (src/api) only: not the hub\'s parts, not adapters (DESIGN §1 dependency directions)', [
      { regex: '(^|/)adapters/(?!.*/simulator\\.js$)', message: 'plugins use the SDK (src/api) only, not adapters (device simulators excepted) (DESIGN §1 dependency directions)' },
    ]),
  },
  {
    files: ['src/api/**/*.ts'],
    ignores: TESTS,
    rules: layer([...HUB_PARTS, ...partsFromSrc('api'), '**/adapters/**', '**/plugins/**'], 'src/api is the SDK: it imports nothing of the hub (DESIGN §1)'),
  },
  {
    files: ['src/optimiser/**/*.ts'],
    ignores: TESTS,
    rules: layer(
      // src/tariff/series.js holds pure functions on price series, which the optimiser may use
      [...HUB_PARTS.filter((p) => !p.includes('/optimiser') && !p.includes('/tariff')), ...partsFromSrc('optimiser').filter((p) => !p.includes('tariff')), '**/adapters/**', '**/plugins/**', 'node:fs', 'node:fs/*', 'node:net', 'node:http', 'node:https', 'node:child_process', 'pino', 'lowdb', 'fastify'],
      'src/optimiser is pure: no I/O, no clock, no logger, no hub parts (DESIGN §1)',
    ),
  },
  {
    files: ['src/tariff/**/*.ts', 'src/metering/**/*.ts', 'src/control/**/*.ts', 'src/forecast/**/*.ts', 'src/backtest/**/*.ts', 'src/testing/**/*.ts'],
    ignores: TESTS,
    rules: layer(['**/adapters/**', '**/plugins/**'], 'only the composition root (src/core) and the CLI know concrete adapters and plugins (DESIGN §1)'),
  },
);
