import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { onTestFinished } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');

/**
 * `homeflex <args>` from the sources (node --import tsx src/cli.ts), in the repository root, as a
 * child process of the current test: killed with SIGKILL if the test ends (a failed assertion
 * included) while it still runs. `out` is everything it wrote to stdout and stderr so far.
 */
export function spawnCli(args: string[], env?: NodeJS.ProcessEnv): { child: ChildProcess; readonly out: string } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli.ts'), ...args], { cwd: root, ...(env ? { env } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  return {
    child,
    get out() {
      return out;
    },
  };
}
