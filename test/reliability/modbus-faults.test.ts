import { afterEach, describe, expect, it } from 'vitest';
import { SunSpecInverterSim } from '../../adapters/modbus/sim/inverter-sim.js';
import { ManualClock } from '../../src/core/clock.js';
import { startHub } from '../peers/hub.js';
import { recordPlans, requestCounter, sleep } from './helpers.js';

/**
 * Modbus faults in a whole hub: an inverter that stops answering for ten minutes, one that answers
 * with exceptions, and a dead unit next to a live one on the same connection, checked through
 * availability, the log, the plan and the commands. Protocol details (exception names, queueing,
 * reconnect backoff, RTU) are the adapter's tests: adapters/modbus/test/{transport,interop,sim}.test.ts.
 */

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const TIMEOUT_MS = 250;

async function start() {
  const clock = new ManualClock('2026-01-15T23:10:00Z'); // 00:10 local: cheap until 06:00, the plan charges
  const inverter = new SunSpecInverterSim({ initialSocPct: 30, maxChargeW: 5000, maxDischargeW: 5000, units: [1] }, () => clock.now());
  inverter.step(0, { pvW: 0, houseW: 600 });
  const port = await inverter.listen(0);
  cleanups.push(() => inverter.close());
  const requests = requestCounter(inverter);
  const h = await startHub(
    `site: { id: home, timezone: Europe/Berlin, currency: EUR }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "06:00", rate: 0.05 }, { from: "06:00", to: "00:00", rate: 0.50 } ] }
  export: { type: fixed, rate: 0.02 }
connections:
  modbus: [ { id: inv, tcp: { host: 127.0.0.1, port: ${port} }, timeout_ms: ${TIMEOUT_MS} } ]
devices:
  - { id: battery, adapter: modbus, connection: inv, unit: 1, profile: sunspec, capacity_wh: 10000, max_charge_w: 4000, max_discharge_w: 4000, poll_s: 10, watchdog_s: 60 }
  - { id: ghost, adapter: modbus, connection: inv, unit: 7, profile: sunspec, capacity_wh: 5000, poll_s: 10 }
`,
    { clock },
  );
  cleanups.push(() => h.stop());
  const control = h.hub.services.control!;
  const plans = recordPlans(h.hub);
  /** Moves the hub's clock and lets the polls it started finish over real TCP (`wait`: a silent unit on the same queue takes its timeout). */
  const step = async (ms: number, wait = 0) => {
    await clock.advance(ms);
    inverter.step(ms, { pvW: 0, houseW: 600 });
    if (wait) await sleep(wait);
    await requests.quiet();
    await control.settled();
  };
  const battery = h.hub.registry.get('battery')!;
  const planned = () => control.latest!.plan.devices.map((d) => d.id);
  const count = (re: RegExp) => h.logText().split('\n').filter((l) => re.test(l)).length;
  return { h, clock, inverter, control, plans, step, battery, planned, count };
}

describe('Modbus inverters misbehaving in a running hub', () => {
  it('an inverter silent for ten minutes: unavailable once, out of the plan, back within a minute of answering, and commanded again', async () => {
    const { h, inverter, step, battery, planned, count, plans } = await start();
    await step(1000, TIMEOUT_MS * 2);
    expect(battery.available).toBe(true);
    expect(planned()).toContain('battery');
    expect(inverter.image.getRaw(124, 'StorCtl_Mod')).not.toBe(0);

    inverter.silent = true;
    for (let t = 0; t < 10 * 60_000; t += 60_000) await step(60_000, TIMEOUT_MS * 2);
    expect(battery.available).toBe(false);
    expect(battery.error).toMatch(/modbus inv unit 1 .*no answer within 250 ms/);
    expect(count(/"msg":"battery is unavailable/)).toBe(1);
    expect(plans.some((p) => p.trigger === 'device.state (battery)')).toBe(true);
    expect(planned()).not.toContain('battery');
    expect(h.hub.services.control!.latest!.notes.notes.join('\n')).toMatch(/battery: unavailable \(modbus inv unit 1.*\), left out of the plan/);
    // nobody refreshed the command: the inverter went back to its own mode after its watchdog
    expect(inverter.image.getRaw(124, 'StorCtl_Mod')).toBe(0);

    inverter.silent = false;
    const back = h.hub.clock.now();
    for (let t = 0; t < 90_000 && !battery.available; t += 10_000) await step(10_000, TIMEOUT_MS * 2);
    expect(battery.available).toBe(true);
    expect(h.hub.clock.now() - back).toBeLessThanOrEqual(70_000); // the reconnect backoff is capped at 60 s
    expect(count(/"msg":"battery answers again after \d+ s/)).toBe(1);
    await step(1000);
    expect(planned()).toContain('battery');
    expect(inverter.image.getRaw(124, 'StorCtl_Mod')).not.toBe(0);
    // the dead unit beside it stayed down the whole time, said once, and never took the live one down
    expect(h.hub.registry.get('ghost')!.available).toBe(false);
    expect(count(/"msg":"ghost is unavailable/)).toBe(1);
  });

  it('an inverter answering exceptions: unavailable with the exception named, once; the plan goes on without it; it recovers', async () => {
    const { h, inverter, step, battery, planned, count } = await start();
    await step(1000, TIMEOUT_MS * 2);
    expect(battery.available).toBe(true);
    // every register of the storage model answers 4 SERVER DEVICE FAILURE (a firmware fault)
    const soc = inverter.image.address(124, 'ChaState');
    for (let a = soc - 30; a < soc + 30; a++) inverter.faults.set(a, 4);
    for (let i = 0; i < 6; i++) await step(10_000, TIMEOUT_MS * 2);
    expect(battery.available).toBe(false);
    expect(battery.error).toMatch(/exception 4 SERVER DEVICE FAILURE/);
    expect(count(/"msg":"battery is unavailable/)).toBe(1);
    expect(planned()).not.toContain('battery');
    // busy (6) is retried at the next poll and is no different for the plan
    for (let a = soc - 30; a < soc + 30; a++) inverter.faults.set(a, 6);
    for (let i = 0; i < 3; i++) await step(10_000, TIMEOUT_MS * 2);
    expect(battery.available).toBe(false);
    expect(count(/"msg":"battery is unavailable/)).toBe(1);
    inverter.faults.clear();
    for (let i = 0; i < 3 && !battery.available; i++) await step(10_000, TIMEOUT_MS * 2);
    expect(battery.available).toBe(true);
    await step(1000);
    expect(planned()).toContain('battery');
    expect(h.hub.registry.get('ghost')!.available).toBe(false);
  });
});
