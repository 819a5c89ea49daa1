import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ApiError, HomeflexError, SDK_VERSION, permanentError } from '../../src/api/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; exports: Record<string, { types: string; default: string }> };

describe('the SDK as a package', () => {
  it('states the version plugins declare their range against: the package version', () => {
    expect(SDK_VERSION).toBe(pkg.version);
  });

  it('exports homeflex/sdk and homeflex/testing from the build, with types', () => {
    expect(pkg.exports['./sdk']).toEqual({ types: './dist/src/api/index.d.ts', default: './dist/src/api/index.js' });
    expect(pkg.exports['./testing']).toEqual({ types: './dist/src/testing/index.d.ts', default: './dist/src/testing/index.js' });
  });

  it('recognises its errors when a plugin throws them from its own copy of the SDK', () => {
    // what another copy's classes leave on an error: the brand, not the prototype
    const foreign = Object.defineProperty(new Error('refused'), Symbol.for('homeflex.HomeflexError'), { value: true });
    expect(foreign instanceof HomeflexError).toBe(true);
    expect(new Error('plain') instanceof HomeflexError).toBe(false);
    expect(permanentError('x', 'y') instanceof HomeflexError).toBe(true);
    expect(permanentError('x', 'y') instanceof ApiError).toBe(false);
    expect(new ApiError(404, 'not_found', 'no') instanceof ApiError).toBe(true);
  });
});
