import { describe, expect, it } from 'vitest';
import { ApiError, EvTargetSchema, parseFragment } from '../../src/api/index.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { ConfigError, formatProblem, parseConfig } from '../../src/core/config/load.js';
import { parseTarget } from '../../src/control/routes.js';

/** The YAML's verdict on `target: <json>` of a sim_ev and of an ocpp charger: the located problems. */
function yamlProblems(target: unknown): string[] {
  const text = [
    'site: { id: home }',
    'connections: { ocpp: { host: 127.0.0.1, port: 0 } }',
    'devices:',
    `  - { id: ev, adapter: sim_ev, capacity_wh: 60000, target: ${JSON.stringify(target)} }`,
    `  - { id: cp, adapter: ocpp, identity: CP1, ev_capacity_wh: 60000, target: ${JSON.stringify(target)} }`,
  ].join('\n');
  try {
    parseConfig(text, '/x/site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
}

/** The API's verdict on the same target: the 400's message, or none. */
function apiProblem(target: unknown): string | undefined {
  try {
    parseTarget(target);
    return undefined;
  } catch (err) {
    if (err instanceof ApiError) return `${err.status} ${err.message}`;
    throw err;
  }
}

describe('one EV target shape for YAML and API', () => {
  const accepted: [string, Record<string, unknown>][] = [
    ['energy by a daily local time', { energy_wh: 20000, leave_time: '07:30' }],
    ['SoC by an RFC 3339 instant', { soc_pct: 80, leave_time: '2026-03-29T07:30:00+02:00' }],
    ['an instant in UTC with fractions', { energy_wh: 5000, leave_time: '2026-03-29T05:30:00.5Z' }],
    ['charge now, keeping a price limit', { charge_now: true, price_limit: 0.2 }],
    ['SoC with an energy fallback', { soc_pct: 80, energy_wh: 30000, leave_time: '06:00' }],
    ['solar only', { solar_only: true }],
  ];
  it.each(accepted)('accepts %s in both', (_what, target) => {
    expect(yamlProblems(target)).toEqual([]);
    expect(apiProblem(target)).toBeUndefined();
    expect(parseTarget(target)).toEqual(target);
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['a leave time without minutes', { energy_wh: 1000, leave_time: '7' }, /^target\.leave_time: "7" does not match the allowed form/],
    ['an instant without a zone', { energy_wh: 1000, leave_time: '2026-03-29T07:30:00' }, /^target\.leave_time: "2026-03-29T07:30:00" does not match/],
    ['a SoC above 100 %', { soc_pct: 120 }, /^target\.soc_pct: must be <= 100 \(got 120\)$/],
    ['negative energy', { energy_wh: -5 }, /^target\.energy_wh: must be >= 0 \(got -5\)$/],
    ['charge_now as text', { charge_now: 'yes' }, /^target\.charge_now: must be a boolean, got "yes"$/],
    ['an unknown key', { energy_kwh: 20 }, /^target(\.energy_kwh)?: unknown key "energy_kwh" \(allowed: energy_wh, soc_pct, leave_time, price_limit, solar_only, charge_now\)$/],
  ];
  it.each(refused)('refuses %s in both, naming the key', (_what, target, message) => {
    const yaml = yamlProblems(target);
    // one located problem per charger entry: line 4 (sim_ev) and line 5 (ocpp)
    expect(yaml).toHaveLength(2);
    expect(yaml[0]).toMatch(/^site\.yaml:4:\d+ devices\[0\]\./);
    expect(yaml[1]).toMatch(/^site\.yaml:5:\d+ devices\[1\]\./);
    for (const p of yaml) expect(p.replace(/^site\.yaml:\d+:\d+ devices\[\d\]\./, '')).toMatch(message);
    const api = apiProblem(target);
    expect(api).toMatch(/^400 /);
    expect(`target.${api!.slice(4)}`).toMatch(message);
  });

  it('the API refuses an empty target (DELETE removes one)', () => {
    expect(apiProblem({})).toMatch(/^400 body: give at least one of energy_wh, soc_pct, leave_time, price_limit, solar_only, charge_now$/);
    expect(apiProblem([])).toMatch(/^400 body: must be a JSON object$/);
  });

  it('the parser reports every problem of a target at its key', () => {
    const parsed = parseFragment(EvTargetSchema, { soc_pct: 'full', leave_time: 730, colour: 'red' });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.issues).toEqual([
      { path: ['colour'], message: 'unknown key "colour" (allowed: energy_wh, soc_pct, leave_time, price_limit, solar_only, charge_now)' },
      { path: ['soc_pct'], message: 'must be a number, got "full"' },
      { path: ['leave_time'], message: 'must be a string, got 730' },
    ]);
  });
});
