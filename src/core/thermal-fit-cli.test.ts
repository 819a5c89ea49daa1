import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { syntheticHistory } from '../optimiser/thermal-history.js';
import { fitThermalCommand, readHistoryCsv } from './thermal-fit-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'homeflex-fit-'));
const history = syntheticHistory({
  rKPerKw: 5, cKwhPerK: 3, cop: 3, maxElectricW: 1500, gainsW: 600, mode: 'cool', days: 5, stepMin: 5,
  outdoorMinC: 23, outdoorMaxC: 35, setpoints: [[0, 25], [7, 24], [14, 23], [20, 25]], startC: 25, noiseC: 0.1, seed: 4,
});

async function run(args: string[]) {
  let out = '';
  let err = '';
  const code = await fitThermalCommand(args, (s) => (out += s), (s) => (err += s));
  return { code, out, err };
}

describe('homeflex fit-thermal', () => {
  it('learns the YAML keys from a CSV of time, indoor, outdoor and running state', async () => {
    const file = join(dir, 'bedroom.csv');
    writeFileSync(file, ['time,indoor_c,outdoor_c,running', ...history.map((s) => `${new Date(s.time).toISOString()},${s.indoorC.toFixed(2)},${s.outdoorC},${s.electricW > 0 ? 'cooling' : 'idle'}`)].join('\n') + '\n');
    const r = await run(['--history', file, '--mode', 'cool', '--cop', '3', '--max-electric-w', '1500']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const keys = parse(r.out) as Record<string, number>;
    expect(keys.r_k_per_kw).toBeCloseTo(5, 0);
    expect(Math.abs(keys.r_k_per_kw / 5 - 1)).toBeLessThan(0.03);
    expect(Math.abs(keys.c_kwh_per_k / 3 - 1)).toBeLessThan(0.03);
    expect(Math.abs(keys.gains_w - 600)).toBeLessThan(30);
    expect(keys).toMatchObject({ cop: 3, max_electric_w: 1500 });
    expect(r.out).toMatch(/^# fitted on 1440 samples in 5 windows; residual RMS 0\.\d+ °C/);
  });

  it('takes electric_w and Unix milliseconds too', () => {
    const rows = readHistoryCsv('time,indoor_c,outdoor_c,electric_w\n1780000000000,24.5,30,1200\n1780000300000,24.4,30.1,0\n', 'h.csv');
    expect(rows).toEqual([
      { time: 1780000000000, indoorC: 24.5, outdoorC: 30, electricW: 1200 },
      { time: 1780000300000, indoorC: 24.4, outdoorC: 30.1, electricW: 0 },
    ]);
  });

  it('says what is wrong with the file, and where', async () => {
    expect(() => readHistoryCsv('time,indoor_c\n', 'h.csv')).toThrow('h.csv:1: the header lacks outdoor_c, electric_w or running (it has: time, indoor_c)');
    expect(() => readHistoryCsv('time,indoor_c,outdoor_c,running\n', 'h.csv')).toThrow('h.csv:1: a "running" column needs --max-electric-w');
    expect(() => readHistoryCsv('time,indoor_c,outdoor_c,electric_w\n2026-06-01T00:00:00Z,24,30,0\nyesterday,24,30,0\n', 'h.csv')).toThrow('h.csv:3: time "yesterday" is neither RFC 3339 nor Unix milliseconds');
    expect(() => readHistoryCsv('time,indoor_c,outdoor_c,electric_w\n2026-06-01T00:00:00Z,warm,30,0\n', 'h.csv')).toThrow('h.csv:2: indoor_c "warm" is not a number');
    const file = join(dir, 'short.csv');
    writeFileSync(file, 'time,indoor_c,outdoor_c,electric_w\n2026-06-01T00:00:00Z,24,30,0\n');
    const r = await run(['--history', file, '--mode', 'heat']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/too little history: 0 usable samples in 0 windows/);
    expect((await run(['--history', file])).code).toBe(2);
    expect((await run(['--history', join(dir, 'none.csv'), '--mode', 'cool'])).err).toMatch(/cannot read .*none\.csv: ENOENT/);
  });
});
