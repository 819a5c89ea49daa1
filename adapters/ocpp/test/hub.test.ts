import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MeterReading } from '../../../src/api/index.js';
import { Hub } from '../../../src/core/host.js';
import { captureLogger, until } from './harness.js';

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

const site = `
site: { id: home, timezone: Europe/Berlin }
connections:
  ocpp: { host: 127.0.0.1, port: 0 }
devices:
  - { id: wallbox, adapter: ocpp, identity: CP-HUB, password: hub-test-pw, configure: false, boot_wait_s: 0.1,
      target: { energy_wh: 10000, leave_time: "07:00" } }
  - { id: wallbox-sim, adapter: sim_ocpp_cp, identity: CP-HUB, password: hub-test-pw,
      arrive: "00:00", leave: "23:59", meter_interval_s: 1, tick_s: 0.2 }
`;

describe('OCPP in the hub', () => {
  it('the YAML device and the simulated charge point meet on the hub’s own port and meter a session', async () => {
    const { log } = captureLogger();
    const readings: MeterReading[] = [];
    hub = new Hub({ configText: site, logger: log, override: (c) => ((c.storage.dir = mkdtempSync(join(tmpdir(), 'hf-ocpp-hub-'))), (c.http.port = 0)) });
    hub.bus.on('meter.reading', (e) => e.deviceId === 'wallbox' && readings.push(e.reading));
    await hub.start();
    const device = hub.registry.get('wallbox')!;
    await until(() => device.available, 10_000, 'wallbox connected');
    const session = await until(() => device.caps.charger!.session(), 10_000, 'session');
    await until(() => readings.filter((r) => r.sessionId === session.id && r.importWh !== undefined).length >= 3, 10_000, 'meter values');
    const res = await fetch(`${hub.url}/api/v1/devices/wallbox`);
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toContain('wallbox');
    await device.caps.charger!.setLimit({ watts: 0, validUntil: Date.now() + 600_000 });
    await until(() => device.caps.charger!.status() === 'suspended_evse', 10_000, 'paused by the plan');
  });

  it('prices a charging session through POST /costs/session/{transaction id}', async () => {
    const { log } = captureLogger();
    const withTariff = site.replace('connections:', 'tariffs: { import: { type: fixed, rate: 0.30 } }\nconnections:');
    hub = new Hub({ configText: withTariff, logger: log, override: (c) => ((c.storage.dir = mkdtempSync(join(tmpdir(), 'hf-ocpp-cost-'))), (c.http.port = 0)) });
    const readings: MeterReading[] = [];
    hub.bus.on('meter.reading', (e) => e.deviceId === 'wallbox' && readings.push(e.reading));
    await hub.start();
    const device = hub.registry.get('wallbox')!;
    const session = await until(() => device.caps.charger!.session(), 15_000, 'session');
    await until(() => readings.filter((r) => r.sessionId === session.id && (r.importWh ?? 0) > 0).length >= 3, 15_000, 'meter values with energy');
    await hub.services.metering!.drain();
    const res = await fetch(`${hub.url}/api/v1/costs/session/${session.id}?include_tariff=true`, { method: 'POST' });
    const body = (await res.json()) as { object: string; session_reference_id: string; device_ids: string[]; total: { energy: { value: number }; tariff: { value: number } } };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ object: 'energy_cost', session_reference_id: session.id, device_ids: ['wallbox'] });
    const wh = body.total.energy.value;
    expect(wh).toBeGreaterThan(0);
    // what the session delivered so far, at the fixed rate: no adapter knows the tariff, metering does
    expect(wh).toBeLessThanOrEqual(device.caps.charger!.session()!.energyWh + 1e-6);
    expect(body.total.tariff.value).toBeCloseTo((wh / 1000) * 0.3, 6);
  });

  it('lists the wallbox but not its simulated charge point among the devices in savings', async () => {
    const withTariff = site.replace('connections:', 'tariffs: { import: { type: fixed, rate: 0.30 } }\nconnections:');
    hub = new Hub({ configText: withTariff, logger: captureLogger().log, override: (c) => ((c.storage.dir = mkdtempSync(join(tmpdir(), 'hf-ocpp-sav-'))), (c.http.port = 0)) });
    await hub.start();
    const res = await fetch(`${hub.url}/api/v1/savings/home?start_time=${encodeURIComponent(new Date(Date.now() - 86_400_000).toISOString())}&end_time=${encodeURIComponent(new Date().toISOString())}`);
    const body = (await res.json()) as { devices: { device_id: string }[] };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.devices.map((d) => d.device_id)).toEqual(['wallbox']);
  }, 60_000);

  it('the demo site has an OCPP wallbox and its simulated charge point', () => {
    const demo = readFileSync(join(import.meta.dirname, '../../../config/demo.yaml'), 'utf8');
    const h = new Hub({ configText: demo, logger: captureLogger().log });
    expect(h.config.connections.ocpp).toMatchObject({ port: 9000, path: '/ocpp', allow_unknown: false });
    const wallbox = h.config.devices.find((d) => d.adapter === 'ocpp')!;
    const sim = h.config.devices.find((d) => d.adapter === 'sim_ocpp_cp')!;
    expect(sim.identity).toBe(wallbox.identity);
    expect(wallbox).toMatchObject({ connector: 1, phases: 3, profile: { purpose: 'auto', stack_level: 1 } });
  });

  it('reports config mistakes with file, line and key', () => {
    const bad = site.replace('identity: CP-HUB, password', 'identity: "a/b", min_current_a: 20, max_current_a: 10, password');
    expect(() => new Hub({ configText: bad, logger: captureLogger().log })).toThrow(/site\.yaml:6:\d+ devices\[0\]\.identity/);
  });
});
