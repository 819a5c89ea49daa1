import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The design's dependency directions are lint rules (eslint.config.js): a planted violation fails
 * the lint, an allowed import passes. Files are linted as if they were at the path given.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const eslint = new ESLint({ cwd: root });

async function restricted(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, filePath) });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layering rules', () => {
  it('refuses imports against the dependency directions, naming the rule', async () => {
    expect(await restricted('plugins/planted/index.ts', "import { Hub } from '../../src/core/host.js';\nexport const h = Hub;\n")).toEqual([
      expect.stringContaining("plugins use the SDK (src/api) only: not the hub's parts"),
    ]);
    expect(await restricted('plugins/planted/index.ts', "import { simAdapters } from '../../adapters/sim/index.js';\nexport const a = simAdapters;\n")).toEqual([
      expect.stringContaining('plugins use the SDK (src/api) only, not adapters'),
    ]);
    expect(await restricted('adapters/planted/index.ts', "import { haDiscovery } from '../../plugins/ha-discovery/index.js';\nexport const p = haDiscovery;\n")).toEqual([
      expect.stringContaining('adapters use the SDK (src/api) only'),
    ]);
    expect(await restricted('adapters/planted/index.ts', "import { MeteringService } from '../../src/metering/service.js';\nexport const m = MeteringService;\n")).toHaveLength(1);
    expect(await restricted('src/api/planted.ts', "import type { HubServices } from '../core/services.js';\nexport type S = HubServices;\n")).toEqual([expect.stringContaining('src/api is the SDK')]);
    expect(await restricted('src/optimiser/planted.ts', "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n")).toEqual([expect.stringContaining('src/optimiser is pure')]);
    expect(await restricted('src/metering/planted.ts', "import { tasmota } from '../../adapters/tasmota/index.js';\nexport const t = tasmota;\n")).toEqual([
      expect.stringContaining('only the composition root (src/core) and the CLI know concrete adapters'),
    ]);
  });

  it('lets the allowed directions through', async () => {
    expect(await restricted('plugins/planted/index.ts', "import { definePlugin } from '../../src/api/index.js';\nimport { TasmotaSimulator } from '../../adapters/tasmota/simulator.js';\nexport const x = [definePlugin, TasmotaSimulator];\n")).toEqual([]);
    expect(await restricted('src/core/planted.ts', "import { simAdapters } from '../../adapters/sim/index.js';\nexport const a = simAdapters;\n")).toEqual([]);
    expect(await restricted('plugins/planted/planted.test.ts', "import { Hub } from '../../src/core/host.js';\nexport const h = Hub;\n")).toEqual([]);
  });

  it('makes the lint command fail on a planted violation', () => {
    const planted = "import { createLogger } from '../../src/core/logging.js';\nexport const log = createLogger({});\n";
    const run = spawnSync(process.execPath, [join(root, 'node_modules/eslint/bin/eslint.js'), '--stdin', '--stdin-filename', 'plugins/planted/index.ts'], { cwd: root, input: planted, encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('no-restricted-imports');
    const clean = spawnSync(process.execPath, [join(root, 'node_modules/eslint/bin/eslint.js'), '--stdin', '--stdin-filename', 'plugins/planted/index.ts'], { cwd: root, input: "import { definePlugin } from '../../src/api/index.js';\nexport const d = definePlugin;\n", encoding: 'utf8' });
    expect(clean.status).toBe(0);
  }, 60_000);
});
