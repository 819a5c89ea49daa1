import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The README's test command must pass on a machine with Node and nothing else: tests that need a
 * Debian peer skip with a line naming it, and CI (HOMEFLEX_REQUIRE_PEERS=1) fails instead. Checked
 * by hiding the peers in a private mount namespace (scripts/without-peers.sh), which needs root.
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const canUnshare = spawnSync('unshare', ['-m', '--propagation', 'private', 'true']).status === 0;

const runHidden = (env: Record<string, string>) =>
  spawnSync(join(ROOT, 'scripts', 'without-peers.sh'), ['npx', 'vitest', 'run', 'adapters/shelly/shelly.test.ts', '--config', 'vitest.config.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env, FORCE_COLOR: '0', NO_COLOR: '1' },
    encoding: 'utf8',
    timeout: 170_000,
  });

describe.skipIf(!canUnshare)('tests on a machine without the Debian peers', { timeout: 180_000 }, () => {
  it('skip what needs mosquitto with one line naming it, pass, and list the skips at the end', () => {
    const r = runHidden({});
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out).toBe(0);
    expect(out).toMatch(/skipped: adapters\/shelly\/shelly\.test\.ts › shelly Gen1 against mosquitto.*needs mosquitto.*install: apt-get install mosquitto mosquitto-clients/);
    expect(out).toMatch(/Skipped 2 test group\(s\) because system peers are missing/);
    // the tests that need no peer still ran
    expect(out).toMatch(/Tests\s+2 passed \| 4 skipped/);
  });

  it('fail instead under HOMEFLEX_REQUIRE_PEERS=1, as CI runs them', () => {
    // without-peers.sh clears the variable for the command it runs, so set it inside
    const r = spawnSync(join(ROOT, 'scripts', 'without-peers.sh'), ['env', 'HOMEFLEX_REQUIRE_PEERS=1', 'npx', 'vitest', 'run', 'adapters/shelly/shelly.test.ts', '--config', 'vitest.config.ts'], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 170_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out).not.toBe(0);
    expect(out).toMatch(/HOMEFLEX_REQUIRE_PEERS=1 but the mosquitto MQTT broker and its clients: .*not found on PATH — install with: apt-get install mosquitto mosquitto-clients/);
  });
});
