import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { MeterReading } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { baseLoadW, sunShare, thermalStep } from '../../src/api/physics.js';

const silent = () => createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) });
let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

async function simHub(devices: string, start: string) {
  const clock = new ManualClock(start);
  hub = new Hub({
    configText: `site: { id: home, timezone: Europe/Berlin }\nhttp: { port: 0 }\ndevices:\n${devices}`,
    clock,
    logger: silent(),
    override: (c) => void (c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-sim-'))),
  });
  const readings: { deviceId: string; reading: MeterReading }[] = [];
  hub.bus.on('meter.reading', (r) => readings.push(r));
  await hub.start();
  return { hub, clock, readings };
}

describe('simulated devices', () => {
  it('thermal step matches the closed-form solution of the 1R1C model', () => {
    // constant inputs: T(t) = Tss + (T0 − Tss)·e^(−t/RC), Tss = Tout + R·(gains − COP·P)
    const R = 5, C = 3, tOut = 30, gains = 0.5, p = 1, cop = 3;
    const tss = tOut + R * (gains - cop * p);
    let t = 24;
    for (let i = 0; i < 40; i++) t = thermalStep(t, tOut, gains, p, cop, 1, R, C, 0.25);
    expect(t).toBeCloseTo(tss + (24 - tss) * Math.exp(-10 / (R * C)), 10);
  });

  it('PV is dark at night and strongest near noon; base load averages to its annual energy', () => {
    const noon = Date.parse('2026-06-21T10:30:00Z');
    expect(sunShare(Date.parse('2026-06-21T00:00:00Z'), 50, 120)).toBe(0);
    expect(sunShare(noon, 50, 120)).toBeGreaterThan(0.6);
    expect(sunShare(noon, 50, 120)).toBeLessThan(1);
    let kwh = 0;
    for (let h = 0; h < 24; h += 0.01) kwh += (baseLoadW(h, 3650) * 0.01) / 1000;
    expect(kwh).toBeCloseTo(10, 1);
  });

  it('an EV plugs in at its arrival time, starts a session and charges at full power without a plan', async () => {
    const { hub, clock, readings } = await simHub('  - { id: ev, adapter: sim_ev, arrive: "18:00", leave: "07:30", tick_s: 60 }\n', '2026-06-01T15:55:00Z'); // 17:55 local
    const ev = hub.registry.get('ev')!;
    expect(ev.caps.charger!.status()).toBe('available');
    await clock.advance(10 * 60_000);
    expect(ev.caps.charger!.status()).toBe('charging');
    const session = ev.caps.charger!.session()!;
    expect(session.id).toBe('ev-1');
    await clock.advance(60 * 60_000);
    // 16 A × 3 × 230 V = 11.04 kW from 18:00 to 19:05 local
    expect(session.energyWh).toBeCloseTo((11_040 * 65) / 60, 0);
    const last = readings.filter((r) => r.deviceId === 'ev').at(-1)!.reading;
    expect(last.sessionId).toBe('ev-1');
    expect(last.importWh).toBeCloseTo(session.energyWh, 0);
    // a limit pauses it, and it falls back to full power after validUntil
    await ev.caps.charger!.setLimit({ watts: 0, validUntil: clock.now() + 30 * 60_000 });
    await clock.advance(10 * 60_000);
    expect(ev.caps.charger!.status()).toBe('suspended_evse');
    await clock.advance(30 * 60_000);
    expect(ev.caps.charger!.status()).toBe('charging');
  });

  it('an EV leaving ends its session: the session is announced over, and "charge now" set for it ends', async () => {
    const { hub, clock } = await simHub('  - { id: ev, adapter: sim_ev, arrive: "18:00", leave: "19:00", tick_s: 60 }\n', '2026-06-01T16:30:00Z'); // 18:30 local
    const ended: string[] = [];
    hub.bus.on('session.ended', (e) => ended.push(`${e.deviceId} ${e.sessionId}`));
    await clock.advance(60_000);
    const res = await fetch(`${hub.url}/api/v1/devices/ev/target`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ charge_now: true }) });
    expect(res.status).toBe(200);
    expect(hub.services.state.data.overrides.ev).toEqual({ target: { charge_now: true } });
    await clock.advance(40 * 60_000); // 19:11 local: gone
    expect(ended).toEqual(['ev ev-1']);
    expect(hub.services.state.data.overrides.ev).toBeUndefined();
  });

  it('a battery in auto mode covers the house load and follows a charge command until it expires', async () => {
    const { hub, clock } = await simHub(
      '  - { id: house, adapter: sim_load, annual_kwh: 8760, tick_s: 60 }\n  - { id: bat, adapter: sim_battery, capacity_wh: 10000, tick_s: 60 }\n',
      '2026-01-15T18:00:00Z',
    );
    await clock.advance(5 * 60_000);
    const storage = hub.registry.get('bat')!.caps.storage!;
    const house = hub.registry.get('house')!.caps.meter!.last()!.powerW!;
    expect(house).toBeGreaterThan(500);
    expect(storage.state().powerW).toBeCloseTo(-house, -1);
    await storage.command({ mode: 'charge', powerW: 3000, validUntil: clock.now() + 60 * 60_000 });
    await clock.advance(60_000); // the inverter takes the command at its next step
    const soc0 = storage.state().socPct!;
    await clock.advance(30 * 60_000);
    expect(storage.state().powerW).toBe(3000);
    expect(storage.state().socPct! - soc0).toBeCloseTo((1500 * 0.95) / 100, 0);
    await clock.advance(30 * 60_000);
    expect(storage.state().mode).toBe('auto');
    expect(storage.state().powerW).toBeLessThan(0);
  });
});
