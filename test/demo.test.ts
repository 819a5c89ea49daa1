import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPortFlags, demoConfig } from '../src/cli.js';
import { ManualClock } from '../src/core/clock.js';
import { Hub } from '../src/core/host.js';
import { createLogger } from '../src/core/logging.js';
import type { PlanView } from '../src/control/view.js';
import { carsHomeAtStart } from '../plugins/demo/index.js';
import { freePort } from './peers/mqtt.js';
import { hubApi } from './peers/api.js';

/**
 * The demo as `npm start` runs it (config/demo.yaml, the cars at home at start, the demo plugin's
 * prices and history), started at different hours of the day: the plan shifts against a real
 * price shape, no car is short of its target, and Costs, savings and sessions have history.
 */

const running: Hub[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) await h.stop();
});

async function startDemoAt(iso: string) {
  const clock = new ManualClock(iso);
  const modbus = await freePort();
  const goe = await freePort();
  const hub = new Hub({
    configText: readFileSync(demoConfig, 'utf8'),
    configFile: demoConfig,
    clock,
    logger: createLogger({ level: 'silent' }),
    override: (c) => {
      c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-demo-'));
      applyPortFlags(c, { port: 0, 'ocpp-port': 0, 'mqtt-port': 0, 'modbus-port': modbus, 'goe-port': goe });
      carsHomeAtStart(c, clock.now(), c.site.timezone);
    },
  });
  running.push(hub);
  await hub.start();
  // a minute of simulated time: the cars plug in, every device reports, the loop re-plans
  for (let i = 0; i < 6; i++) await clock.advance(10_000);
  await hub.services.control!.settled();
  const request = hubApi(() => hub.url);
  const api = async (method: string, path: string, body?: unknown) => (await request(method, path, body)).body;
  return { hub, clock, api };
}

/** The P1 meter's grid reading as GET /devices/p1 shows it, once the first telegram is in (the TCP link runs on real time). */
async function measuredGrid(hub: Hub, clock: ManualClock) {
  const end = Date.now() + 15_000;
  for (;;) {
    const r = await fetch(`${hub.url}/api/v1/devices/p1`);
    const grid = ((await r.json()) as { state: { meter: { grid: { power_w: number; site_meter: boolean } | null } } }).state.meter.grid;
    if (grid) return grid;
    if (Date.now() > end) throw new Error('the simulated P1 meter sent no telegram the dsmr device read');
    await clock.advance(5_000);
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('the demo, started at any hour', { timeout: 120_000 }, () => {
  // 06:48 (the hour the cars used to be leaving), early afternoon, late evening (Berlin, winter)
  // at 13:10 the midday price dip is on: charging at once is the cheapest, nothing to shift
  for (const [at, shifts] of [['2026-12-02T05:48:00Z', true], ['2026-12-02T12:10:00Z', false], ['2026-12-02T21:40:00Z', true]] as const) {
    it(`at ${at}: shifts against real prices, every car gets its target, history shows costs and savings`, async () => {
      const { api, hub, clock } = await startDemoAt(at);
      const plan = (await api('GET', '/plan')) as unknown as PlanView & { warnings: string[] };
      // a real price shape: cheap and dear periods, not one flat rate
      const rates = plan.import_rate as number[];
      expect(Math.max(...rates) - Math.min(...rates)).toBeGreaterThan(0.05);
      expect(new Set((plan.export_rate as number[]).map((r) => r.toFixed(4))).size).toBeGreaterThan(10);
      // both cars are home and get all they need before they leave: no red shortfall
      expect(plan.warnings.filter((w) => /cannot be delivered/.test(w))).toEqual([]);
      for (const id of ['ev', 'wallbox']) {
        const ev = plan.devices.find((d) => d.id === id)!;
        expect(ev, id).toBeDefined();
        expect(ev.shortfall_wh ?? 0, id).toBeLessThan(1);
        expect(ev.energy_wh, id).toBeGreaterThan(10_000);
        // cheaper than full power from now on (EVerest's default) when now is not the cheapest time
        // (the plan minimises the site's cost, PV and battery included, so its EV cost alone may differ a little otherwise)
        const slotH = plan.slots.map((sl) => (Date.parse(sl.end_time) - Date.parse(sl.start_time)) / 3_600_000);
        const planned = ev.power_w.reduce((a, w, t) => a + (w / 1000) * slotH[t] * rates[t], 0);
        let left = ev.energy_wh! / 1000;
        let fromNow = 0;
        for (let t = 0; left > 1e-9; t++) {
          const kwh = Math.min(left, Math.max(...ev.power_w) / 1000 * slotH[t]);
          fromNow += kwh * rates[t];
          left -= kwh;
        }
        if (shifts) expect(planned, id).toBeLessThan(fromNow - 0.1);
      }
      // seven days of history: the site's costs by day, savings, charging sessions
      const end = hub.clock.now();
      const costs = (await api('POST', `/costs/interval/${hub.site.id}?aggregation=DAY`, { start_time: new Date(end - 7 * 86_400_000).toISOString(), end_time: new Date(end).toISOString() })) as { total: { energy: { value: number }; tariff: { value: number } }; data: unknown[] };
      expect(costs.total.energy.value).toBeGreaterThan(20_000);
      expect(costs.total.tariff.value).toBeGreaterThan(3);
      const savings = (await api('GET', `/savings/${hub.site.id}`)) as { savings: { value: number } | number };
      const saved = typeof savings.savings === 'number' ? savings.savings : savings.savings.value;
      expect(saved).toBeGreaterThan(1);
      const session = (await api('POST', `/costs/session/demo-ev-${new Date(end - 2 * 86_400_000).toISOString().slice(0, 10)}`, {})) as { total?: { energy: { value: number } } };
      expect(session.total?.energy.value ?? 0).toBeGreaterThan(15_000);
      // the base-load forecast comes from the house's own history
      expect((plan as unknown as { forecasts: { base_load: string } }).forecasts.base_load).toMatch(/recent days weighted/);
      // the simulated P1 meter is the site's grid meter, read over TCP by the dsmr adapter (issue 18)
      const p1 = await measuredGrid(hub, clock);
      expect(p1.site_meter).toBe(true);
      expect(typeof p1.power_w).toBe('number');
      const garage = ((await api('GET', '/devices/garage-battery')) as { state: { meter: { grid?: { site_meter: boolean } } } }).state.meter.grid;
      if (garage) expect(garage.site_meter).toBe(false);
    });
  }
});
