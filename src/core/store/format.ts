import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from './atomic.js';

/**
 * The `FORMAT` file of a storage directory (`{"format": …, "version": N}`), as the meter store has
 * kept one from the start. A directory without one was written before its format carried a
 * version (v0.1.0 wrote tariff-history/ and forecasts/ so): it is version 1, and the file is
 * written now. A directory of another format, or of a newer version than `version`, is refused with
 * a message naming the file; an older one is handed to `migrate` (there is none yet: version 1 is
 * the first). Writing the file may fail (a full disk); the next start writes it.
 */
export function checkStoreFormat(dir: string, format: string, version: number, migrate?: (from: number) => void): void {
  const file = join(dir, 'FORMAT');
  let found = 1;
  if (existsSync(file)) {
    let doc: { format?: unknown; version?: unknown };
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as typeof doc;
    } catch (err) {
      throw new Error(`${file} is not readable JSON (${(err as Error).message}); ${dir} was not opened`, { cause: err });
    }
    if (doc.format !== format) throw new Error(`${dir} is not a ${format} directory (${file} says ${JSON.stringify(doc.format)})`);
    found = typeof doc.version === 'number' ? doc.version : 1;
    if (found > version) throw new NewerVersionError(`${dir} was written by a newer homeflex (${format} version ${found}, this one reads ${version}); upgrade homeflex`, file);
    if (found === version) return;
  }
  if (found < version) {
    if (!migrate) throw new Error(`${dir}: no migration from ${format} version ${found} to ${version}`);
    migrate(found);
  }
  try {
    writeFileAtomicSync(file, JSON.stringify({ format, version }) + '\n');
  } catch {
    // not fatal: the directory reads the same without it, and the next start writes it
  }
}

/** Stored data of a newer homeflex: never set aside as damaged, the hub refuses to start on it. */
export class NewerVersionError extends Error {
  constructor(message: string, readonly file: string) {
    super(message);
    this.name = 'NewerVersionError';
  }
}

/**
 * The version a stored document carries (`undefined`: written before versions were kept, by v0.1.0,
 * so 1), checked against the newest this code reads: a newer one throws, naming the file.
 */
export function storedVersion(file: string, version: unknown, newest: number, what: string): number {
  const found = typeof version === 'number' ? version : 1;
  if (found > newest) throw new NewerVersionError(`${file} was written by a newer homeflex (${what} version ${found}, this one reads ${newest}); upgrade homeflex`, file);
  return found;
}
