import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { loadConfigFile } from '../../src/core/config/load.js';
import type { HubConfig } from '../../src/core/config/schema.js';

/** What a CLI command (`homeflex report`, `plan`, `store`, `backup`, `forecast-check`) is handed. */
export interface CommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
  defaultConfig: string;
  loadConfig: (file: string) => HubConfig;
  env?: NodeJS.ProcessEnv;
}

/** Reads a site file as the CLI does: the built-in adapters and plugins, every check. */
export const loadSiteFile = (file: string) => loadConfigFile(file, { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });

/**
 * Runs a CLI command in-process as the CLI would (the validating site-file loader), collecting what
 * it prints: `out` and `err` apart, and `all` as it came.
 */
export async function runCommand(command: (argv: string[], io: CommandIo) => Promise<number>, argv: string[], options: { defaultConfig?: string; env?: NodeJS.ProcessEnv } = {}) {
  let out = '';
  let err = '';
  let all = '';
  const io: CommandIo = { out: (t) => void ((out += t), (all += t)), err: (t) => void ((err += t), (all += t)), defaultConfig: options.defaultConfig ?? 'none.yaml', loadConfig: loadSiteFile };
  if (options.env) io.env = options.env;
  const code = await command(argv, io);
  return { code, out, err, all };
}
