import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Path of a data file of this adapter (profiles, SunSpec models). The compiled adapter runs from
 * `dist/adapters/modbus/`, where tsc copies no data files, so the source folder is the fallback.
 */
export function assetPath(relative: string): string {
  const candidates = [new URL(relative, import.meta.url), new URL(`../../../adapters/modbus/${relative}`, import.meta.url)];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new Error(`modbus adapter: data file ${relative} is missing (looked in ${candidates.map((u) => fileURLToPath(u)).join(', ')})`);
}
