import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { ConfigError, parseConfig } from '../../src/core/config/load.js';

const root = resolve(import.meta.dirname, '..', '..');
const demo = readFileSync(join(root, 'config', 'demo.yaml'), 'utf8');
const options = { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} };

/** Every outcome is a config or a ConfigError whose problems are all located inside the file. */
function checkOutcome(text: string) {
  const lines = text.split('\n').length;
  try {
    parseConfig(text, 'fuzz.yaml', options);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) {
      expect(p.file).toBe('fuzz.yaml');
      expect(p.line).toBeGreaterThanOrEqual(1);
      expect(p.line).toBeLessThanOrEqual(lines + 1);
      expect(p.col).toBeGreaterThanOrEqual(1);
      expect(p.message.length).toBeGreaterThan(3);
    }
  }
}

const scalar = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: false }),
  fc.string(),
  fc.constantFrom('null', '~', 'true', '[]', '{}', '"', "'", '${X}', '&a', '*a', '!!binary', '- x', ': :', '\t', '#', '@', '%YAML'),
);

describe('YAML fuzzing', () => {
  it('mutated demo files always give located errors or a valid config, never a crash', () => {
    const lines = demo.split('\n');
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ line: fc.nat(lines.length - 1), op: fc.constantFrom('delete', 'value', 'insert', 'truncate', 'indent'), text: scalar.map(String) }),
          { minLength: 1, maxLength: 4 },
        ),
        (edits) => {
          const out = [...lines];
          for (const e of edits) {
            const i = Math.min(e.line, out.length - 1);
            if (e.op === 'delete') out.splice(i, 1);
            else if (e.op === 'insert') out.splice(i, 0, e.text);
            else if (e.op === 'truncate') out[i] = out[i].slice(0, Math.floor(out[i].length / 2));
            else if (e.op === 'indent') out[i] = ' ' + out[i];
            else out[i] = out[i].replace(/:\s*[^,{}\n]+/, `: ${e.text}`);
          }
          checkOutcome(out.join('\n'));
        },
      ),
      { numRuns: 400, seed: 20261123 },
    );
  });

  it('arbitrary text never crashes the loader', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (text) => checkOutcome(text)), { numRuns: 300, seed: 7 });
  });
});
