import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { parseConfig } from '../../src/core/config/load.js';

/**
 * The README is the newcomer's first test of the project (issue 16 item 6): its site file must pass
 * check-config as printed, every page of docs/ must be reachable from it, and no link in it or in
 * docs/ may point at a file that is not there.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md') || f.endsWith('.json'));

/** Relative link targets of a markdown file, without their #fragment. */
const links = (text: string) => [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l) && !l.startsWith('#')).map((l) => l.split('#')[0]);

describe('README.md', () => {
  it('its site file passes check-config as printed (secrets from the environment)', () => {
    const yaml = /```yaml\n([\s\S]*?)```/.exec(readme)![1];
    const config = parseConfig(yaml, join(ROOT, 'site.yaml'), { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: { HOMEFLEX_TOKEN: 'a-token-of-at-least-16-chars', CP001_PASSWORD: 'charger-password' } });
    expect(config.devices.map((d) => d.adapter)).toEqual(['ocpp', 'modbus', 'tasmota']);
  });

  it('is short and links every page of docs/', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(160);
    for (const page of docs) expect(readme, page).toContain(`(docs/${page})`);
  });

  it('no relative link in the README or docs/ is broken', () => {
    const files = [join(ROOT, 'README.md'), ...docs.filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f))];
    const broken: string[] = [];
    for (const file of files) {
      for (const link of links(readFileSync(file, 'utf8'))) if (!existsSync(resolve(dirname(file), link))) broken.push(`${file}: ${link}`);
    }
    expect(broken).toEqual([]);
  });
});
