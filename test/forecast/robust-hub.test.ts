import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Hub } from '../../src/core/host.js';
import { quietHubs } from '../peers/hub.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse('2026-06-10T10:00:00Z');

const site = (uncertainty: string) => `
site: { id: home, timezone: UTC, currency: EUR, latitude: 50.1, longitude: 8.7 }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.30 }
  export: { type: fixed, rate: 0.08 }
${uncertainty}
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 50, tick_s: 60 }
  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 60 }
  - { id: pv, adapter: sim_pv, kwp: 6, tick_s: 60 }
`;

/**
 * The forecast store as a hub that ran the five days before NOW would have left it: each day the
 * PV forecast made an hour before midnight (1000 W from 06:00 to 18:00, 12 kWh) and the measured
 * PV, `ratio` times that; plus a later forecast made during each day (5000 W) that the day-ahead
 * ratio must not use.
 */
const RATIOS = [1.3, 0.7, 1.1, 1.6, 0.9]; // sorted 0.7 0.9 1.1 1.3 1.6: 90th percentile (index 4) 1.6, median 1.1
function seed(dir: string) {
  const lines: string[] = [];
  const forecastW = Array.from({ length: 24 }, (_, h) => (h >= 6 && h < 18 ? 1000 : 0));
  RATIOS.forEach((ratio, i) => {
    const day = NOW - 10 * HOUR - (RATIOS.length - i) * DAY;
    lines.push(JSON.stringify({ k: 'f', series: 'pv', made_at: day - HOUR, start: day, step_ms: HOUR, w: forecastW, source: 'test' }));
    lines.push(JSON.stringify({ k: 'f', series: 'pv', made_at: day + 7 * HOUR, start: day + 8 * HOUR, step_ms: HOUR, w: forecastW.slice(8).map((w) => w * 5), source: 'later' }));
    lines.push(JSON.stringify({ k: 'm', series: 'pv', start: day, step_ms: HOUR, w: forecastW.map((w) => w * ratio) }));
  });
  mkdirSync(join(dir, 'forecasts'), { recursive: true });
  writeFileSync(join(dir, 'forecasts', '2026-06.jsonl'), lines.join('\n') + '\n');
}

const hubOf = quietHubs('homeflex-robust-');

async function planWith(uncertainty: string) {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-robust-'));
  seed(dir);
  const { hub } = await hubOf(site(uncertainty), { at: new Date(NOW).toISOString(), dir });
  const control = hub.services.control!;
  const rec = control.latest!;
  const pv = rec.problem.flows.find((f) => f.id === 'pv')!;
  const res = await fetch(`${hub.url}/api/v1/plan`);
  const view = (await res.json()) as { notes: string[] };
  return { hub, rec, pvWh: pv.powerW.reduce((a, w, i) => a - (w * (rec.problem.slots[i].end - rec.problem.slots[i].start)) / HOUR, 0), notes: view.notes };
}

describe('the hub plans PV robustly, as the backtest does', () => {
  it('scales the PV flow by the 90th percentile of the stored days’ measured ÷ day-ahead forecast, notes it, and stores the forecast unscaled', async () => {
    const point = await planWith('forecasts: { uncertainty: { pv: point } }');
    const robust = await planWith('');
    const median = await planWith('forecasts: { uncertainty: { robust_quantile: 0.5 } }');
    expect(point.pvWh).toBeGreaterThan(10_000);
    expect(robust.pvWh / point.pvWh).toBeCloseTo(1.6, 9);
    expect(median.pvWh / point.pvWh).toBeCloseTo(1.1, 9);
    expect(robust.rec.notes.pvScale).toMatchObject({ mode: 'robust', quantile: 0.9, days: 5, flows: ['pv'] });
    expect(robust.rec.notes.pvScale!.factor).toBeCloseTo(1.6, 9);
    expect(robust.notes.some((n) => n.includes('× 1.60') && n.includes('90th percentile') && n.includes('last 5 days'))).toBe(true);
    expect(point.notes.some((n) => n.includes('PV planned'))).toBe(false);
    // the ratios are the seeded ones, oldest first (the later 5000 W forecasts are not day-ahead)
    const service = robust.hub.services.forecasts!;
    expect(service.dailyPvRatios(NOW).map((r) => Math.round(r * 1000) / 1000)).toEqual(RATIOS);
    // what is stored as this plan's PV forecast is the forecast, not the scaled plan
    const storedOf = async (h: Hub) => {
      const s = h.services.forecasts!;
      for (let k = 0; k < 100 && !s.store!.snapshotsOf('pv').some((x) => x.madeAt === NOW); k++) await new Promise((r) => setTimeout(r, 20));
      return s.store!.snapshotsOf('pv').find((x) => x.madeAt === NOW)!.valuesW;
    };
    const [a, b] = [await storedOf(robust.hub), await storedOf(point.hub)];
    expect(a.length).toBeGreaterThan(20);
    a.forEach((w, i) => expect(w).toBeCloseTo(b[i], 0));
  });

  it('plans with the forecast as it is while fewer than 3 days are known', async () => {
    const { hub } = await hubOf(site(''), { at: new Date(NOW).toISOString() });
    const rec = hub.services.control!.latest!;
    expect(rec.notes.pvScale).toMatchObject({ factor: 1, days: 0 });
    expect(rec.notes.notes.some((n) => n.includes('needs 3 days') && n.includes('0 known'))).toBe(true);
  });
});
