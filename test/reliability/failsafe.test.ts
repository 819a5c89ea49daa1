import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DateTime } from 'luxon';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logging.js';
import { SimChargePoint } from '../../adapters/ocpp/sim.js';
import { SunSpecInverterSim } from '../../adapters/modbus/sim/inverter-sim.js';
import { startHub } from '../peers/hub.js';
import { freePort } from '../peers/mqtt.js';
import { requestCounter, until } from './helpers.js';

/**
 * The control loop stalled — here the whole hub process frozen with SIGSTOP, so nothing renews a
 * command and nothing writes `auto` on the way out. The devices run in this test process on their
 * own clock: the SunSpec inverter goes back to its own mode when its revert timer (`watchdog_s`)
 * runs out, the OCPP charge point drops the hub's profile at its `validTo` (the end of the next
 * plan slot), each within the configured time and not before. Woken up, the hub takes over again.
 */

const root = resolve(import.meta.dirname, '..', '..');
const TZ = 'Europe/Berlin';
const WATCHDOG_S = 20;
const SLOT_MIN = 15;
const PASSWORD = 'failsafe-cp-pass-1';

const children: ChildProcess[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    }
  }
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const hhmm = (h: number) => `${String(h % 24).padStart(2, '0')}:00`;

describe('devices fall back by themselves when the hub stops renewing their commands', () => {
  it('a frozen hub: the inverter reverts after watchdog_s, the charger drops its profile at validTo, and the hub takes over again when it wakes', async () => {
    // the devices' own clock starts at real time; the frozen hub's time does not move
    const devices = new ManualClock(Date.now());
    const inverter = new SunSpecInverterSim({ initialSocPct: 40, maxChargeW: 5000, maxDischargeW: 5000 }, () => devices.now());
    inverter.step(0, { pvW: 0, houseW: 800 });
    const modbusPort = await inverter.listen(0);
    cleanups.push(() => inverter.close());
    const ocppPort = await freePort();

    // cheap for the next two hours, dear after: the plan charges the battery now
    const h = DateTime.now().setZone(TZ).hour;
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-failsafe-'));
    const file = join(dir, 'site.yaml');
    writeFileSync(
      file,
      `site: { id: home, timezone: ${TZ}, currency: EUR }
http: { port: 0 }
storage: { dir: ./data }
log: { level: info, format: json }
planner: { slot_minutes: ${SLOT_MIN}, replan_minutes: 15 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "${hhmm(h)}", to: "${hhmm(h + 2)}", rate: 0.05 }, { from: "${hhmm(h + 2)}", to: "${hhmm(h)}", rate: 0.50 } ] }
  export: { type: fixed, rate: 0.02 }
connections:
  ocpp: { host: 127.0.0.1, port: ${ocppPort} }
  modbus: [ { id: inv, tcp: { host: 127.0.0.1, port: ${modbusPort} }, timeout_ms: 1000 } ]
devices:
  - { id: battery, adapter: modbus, connection: inv, unit: 1, profile: sunspec, capacity_wh: 10000, max_charge_w: 4000, max_discharge_w: 4000, poll_s: 2, watchdog_s: ${WATCHDOG_S} }
  - { id: wallbox, adapter: ocpp, identity: CP1, password: ${PASSWORD}, boot_wait_s: 1 }
`,
    );
    const hub = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli.ts'), 'start', '--config', file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(hub);
    let log = '';
    hub.stdout!.on('data', (b) => (log += b));
    hub.stderr!.on('data', (b) => (log += b));
    const url = await until(() => /"url":"(http:[^"]+)"/.exec(log)?.[1], 'the hub to start', 60_000);

    const cp = new SimChargePoint({
      identity: 'CP1', password: PASSWORD, protocol: 'ocpp1.6', endpoint: `ws://127.0.0.1:${ocppPort}/ocpp`, clock: devices, log: createLogger({ level: 'silent' }),
      phases: 3, voltage: 230, maxCurrentA: 16, minCurrentA: 6, capacityWh: 60000, idTag: 'TAG', meterIntervalS: 60,
    });
    await cp.connect();
    cleanups.push(() => cp.close());
    await cp.plugIn(30);
    const maxW = 16 * 230 * 3;

    /** Runs the devices' physics for `ms` of their own time (the charger's only while it can reach the hub: its calls wait for answers). */
    const run = async (ms: number, charger = true) => {
      await devices.advance(ms);
      inverter.step(ms, { pvW: 0, houseW: 800 });
      if (charger) await cp.step(ms);
    };
    // while the hub runs, the devices keep real time
    const sync = async () => {
      const dt = Date.now() - devices.now();
      if (dt > 0) await run(dt);
    };

    // the car is paused by the user: the plan holds it at 0 W through a charging profile
    const paused = await fetch(`${url}/api/v1/devices/wallbox/pause`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paused: true }) });
    expect(paused.status, await paused.text()).toBe(200);
    const profile = await until(async () => {
      await sync();
      return cp.received.filter((r) => r.action === 'SetChargingProfile').map((r) => (r.params as { csChargingProfiles: { validTo?: string } }).csChargingProfiles).findLast((p) => p.validTo) && cp.chargingPowerW === 0 && inverter.image.getRaw(124, 'StorCtl_Mod') !== 0
        ? cp.received.filter((r) => r.action === 'SetChargingProfile').map((r) => (r.params as { csChargingProfiles: { validTo: string } }).csChargingProfiles).at(-1)
        : undefined;
    }, 'the plan on both devices (battery charging, car held at 0 W)', 30_000);
    expect(inverter.batteryW).toBeGreaterThan(0);
    expect(inverter.image.getRaw(124, 'InOutWRte_RvrtTms')).toBe(WATCHDOG_S);
    const validTo = Date.parse(profile!.validTo);

    // freeze the hub: no renewals, no "auto" on the way out
    hub.kill('SIGSTOP');
    const frozenAt = devices.now();
    const lastWrite = inverter.writes.at(-1)!.at;
    expect(validTo - frozenAt).toBeGreaterThan(0);
    // the end of the next slot (a first slot under a minute long is merged into the next one)
    expect(validTo - frozenAt).toBeLessThanOrEqual((2 * SLOT_MIN + 1) * 60_000);

    // the inverter holds the command until its revert timer runs out, then runs its own mode
    await run(lastWrite + (WATCHDOG_S - 2) * 1000 - devices.now(), false);
    expect(inverter.image.getRaw(124, 'StorCtl_Mod')).not.toBe(0);
    expect(inverter.batteryW).toBeGreaterThan(0);
    await run(3000, false);
    expect(inverter.image.getRaw(124, 'StorCtl_Mod')).toBe(0);
    expect(inverter.batteryW).toBe(-800); // self-consumption: it covers the house

    // the charger keeps the hub's limit until validTo, then charges at its own default
    await run(validTo - 2000 - devices.now(), false);
    expect(cp.allowedW(devices.now())).toBe(0);
    await run(3000, false);
    expect(cp.allowedW(devices.now())).toBe(maxW);

    // awake again, the hub polls, finds its command gone and writes it again
    hub.kill('SIGCONT');
    await until(async () => {
      await sync();
      return inverter.image.getRaw(124, 'StorCtl_Mod') !== 0;
    }, 'the battery command renewed after the hub woke', 30_000);
    hub.kill('SIGTERM');
    const code = await new Promise((r) => (hub.exitCode !== null ? r(hub.exitCode) : hub.once('exit', (c) => r(c))));
    expect(code).toBe(0);
    // a clean stop hands the battery back
    expect(inverter.image.getRaw(124, 'StorCtl_Mod')).toBe(0);
  });
});

describe('the control loop stalled while the adapters run', () => {
  it('the battery adapter keeps the command alive until its validUntil, then hands the inverter back to its own mode', async () => {
    const clock = new ManualClock('2026-01-15T23:10:00Z'); // 00:10 local: cheap until 06:00
    const inverter = new SunSpecInverterSim({ initialSocPct: 30, maxChargeW: 5000, maxDischargeW: 5000 }, () => clock.now());
    inverter.step(0, { pvW: 0, houseW: 600 });
    const port = await inverter.listen(0);
    cleanups.push(() => inverter.close());
    // discovery off: each absent unit it looks at holds the connection for one real timeout, while this
    // test jumps its clock by 10 s steps and checks the inverter's watchdog at once
    const h = await startHub(
      `site: { id: home, timezone: ${TZ}, currency: EUR }
planner: { slot_minutes: ${SLOT_MIN}, replan_minutes: 15 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "06:00", rate: 0.05 }, { from: "06:00", to: "00:00", rate: 0.50 } ] }
  export: { type: fixed, rate: 0.02 }
connections:
  modbus: [ { id: inv, tcp: { host: 127.0.0.1, port: ${port} }, timeout_ms: 1000, discover: { units: [] } } ]
devices:
  - { id: battery, adapter: modbus, connection: inv, unit: 1, profile: sunspec, capacity_wh: 10000, max_charge_w: 4000, max_discharge_w: 4000, poll_s: 10, watchdog_s: ${WATCHDOG_S} }
`,
      { clock },
    );
    cleanups.push(() => h.stop());
    const control = h.hub.services.control!;
    // the adapter's polls run over real TCP: after each step of its clock, wait until the inverter has heard the last request
    const settle = requestCounter(inverter).quiet;
    const step = async (ms: number) => {
      await clock.advance(ms);
      inverter.step(ms, { pvW: 0, houseW: 600 });
      await settle();
    };
    await until(async () => {
      await step(1000);
      return inverter.image.getRaw(124, 'StorCtl_Mod') !== 0 && control.latest;
    }, 'the battery charging by the plan');
    const rec = control.latest!;
    const k = rec.plan.slots.findIndex((s) => s.start <= clock.now() && clock.now() < s.end);
    const validUntil = rec.plan.slots[k].end + SLOT_MIN * 60_000;

    await control.stop(); // the loop stalls: no re-plan, no new slot applied
    // until validUntil the adapter refreshes the command before the inverter's own timer runs out
    // (checked the instant the inverter's timer is looked at, before the poll's requests have arrived: a refresh due at the very end races it)
    while (clock.now() < validUntil - 10_000) {
      await clock.advance(10_000);
      inverter.step(10_000, { pvW: 0, houseW: 600 });
      expect(inverter.image.getRaw(124, 'StorCtl_Mod'), new Date(clock.now()).toISOString()).not.toBe(0);
      await settle();
    }
    // then, within a poll, the inverter is back in its own mode
    for (let t = 0; t < 30_000 && inverter.image.getRaw(124, 'StorCtl_Mod') !== 0; t += 1000) await step(1000);
    expect(inverter.image.getRaw(124, 'StorCtl_Mod')).toBe(0);
    expect(clock.now()).toBeLessThanOrEqual(validUntil + 10_000 + 1000);
    expect(h.logText()).toMatch(/battery: command charge expired at/);
  });
});
