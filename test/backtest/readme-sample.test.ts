import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';

/**
 * The documented backtest command, read from docs/backtest.md (so the two cannot drift), runs as written
 * on the sample shipped in samples/backtest/, from the repository root as a fresh clone has it.
 * Only `--out` is pointed at a temporary folder.
 */

const ROOT = join(import.meta.dirname, '..', '..');

function readmeBacktest(): string[] {
  const section = readFileSync(join(ROOT, 'docs', 'backtest.md'), 'utf8');
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1];
  const command = block.replace(/\\\n/g, ' ').split('\n').find((l) => l.includes(' backtest '))!;
  const args = command.trim().split(/\s+/);
  expect(args.slice(0, 3)).toEqual(['node', 'dist/src/cli.js', 'backtest']);
  return args.slice(3);
}

describe('the documented backtest on the shipped sample', { timeout: 180_000 }, () => {
  it('runs as written and writes its results', async () => {
    const args = readmeBacktest();
    // every file it names is in the repository, none outside it
    for (const flag of ['--prices', '--load', '--pv']) {
      const path = args[args.indexOf(flag) + 1];
      expect(path.startsWith('samples/'), `${flag} ${path}`).toBe(true);
      expect(existsSync(join(ROOT, path)), `${flag} ${path}`).toBe(true);
    }
    const out = mkdtempSync(join(tmpdir(), 'homeflex-readme-backtest-'));
    args[args.indexOf('--out') + 1] = out;
    const cwd = process.cwd();
    process.chdir(ROOT);
    try {
      expect(await main(['backtest', ...args, '--no-progress'])).toBe(0);
    } finally {
      process.chdir(cwd);
    }
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { strategies: Record<string, { cost: number }> };
    const cost = (s: string) => summary.strategies[s].cost;
    // the figures docs/backtest.md quotes for the sample
    const readme = readFileSync(join(ROOT, 'docs', 'backtest.md'), 'utf8').replace(/\s+/g, ' ');
    for (const [s, label] of [['none', 'no battery'], ['self_consumption', 'self-consumption'], ['price_threshold', 'price thresholds'], ['homeflex', 'homeflex'], ['optimum', 'the optimum']] as const) {
      expect(readme, s).toContain(`${label} €${cost(s).toFixed(2)}`);
    }
    expect(cost('homeflex')).toBeLessThanOrEqual(cost('self_consumption'));
    expect(existsSync(join(out, 'slots.csv')) && existsSync(join(out, 'chart.html'))).toBe(true);
  });
});
