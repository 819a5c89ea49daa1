import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MeterReading, OcppProtocol } from '../../../src/api/index.js';
import { builtinCatalog } from '../../../src/core/catalog.js';
import { systemClock } from '../../../src/core/clock.js';
import { hubChecks } from '../../../src/core/config/checks.js';
import { ConfigError, formatProblem, parseConfig } from '../../../src/core/config/load.js';
import { Hub } from '../../../src/core/host.js';
import { SimChargePoint } from '../sim.js';
import { captureLogger, Rig, until } from './harness.js';

/**
 * One charger with two connectors (1.6 connectorId 1 and 2, 2.0.1 EVSE 1 and 2) dialling in once
 * under one identity: two hub devices sharing the connection, each with its own sessions, meter,
 * profiles and status. The peer is the simulated charge point (ocpp-rpc client in strict mode).
 */

let rig: Rig | undefined;
let hub: Hub | undefined;
const sims: SimChargePoint[] = [];
afterEach(async () => {
  for (const s of sims.splice(0)) await s.close();
  await rig?.stop();
  rig = undefined;
  await hub?.stop();
  hub = undefined;
});

type Profile = { connectorId?: number; evseId?: number; csChargingProfiles?: Record<string, any>; chargingProfile?: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
const profileOf = (p: Profile) => (p.csChargingProfiles ?? p.chargingProfile)!;
const connectorOf = (p: Profile) => p.connectorId ?? p.evseId;
const firstPeriod = (p: Profile) => {
  const s = profileOf(p).chargingSchedule;
  return (Array.isArray(s) ? s[0] : s).chargingSchedulePeriod[0] as { limit: number; numberPhases?: number };
};

describe.each<OcppProtocol>(['ocpp1.6', 'ocpp2.0.1'])('a two-connector charger speaking %s', (protocol) => {
  const identity = protocol === 'ocpp1.6' ? 'TWIN16' : 'TWIN201';

  async function twoCars() {
    rig = await new Rig().listen();
    const left = await rig.device({ id: 'left', identity, password: 'twin-pass-1', connector: 1 });
    const right = await rig.device({ id: 'right', identity, password: 'twin-pass-1', connector: 2, phase_switching: true });
    const sim = new SimChargePoint({ identity, password: 'twin-pass-1', protocol, endpoint: rig.url, clock: systemClock, log: rig.logs.log, phases: 3, voltage: 230, maxCurrentA: 16, minCurrentA: 6, capacityWh: 60000, idTag: 'SIMTAG', meterIntervalS: 60, connectors: 2, mainMeter: true });
    sims.push(sim);
    await sim.connect();
    // configured once for the charger, then each connector asked for its status
    await until(() => left.device.available && right.device.available && sim.received.filter((r) => r.action === 'TriggerMessage').length >= 2, 10_000, 'both connectors set up');
    return { left, right, sim };
  }

  it('two cars charge at once, each session and meter on its own device; the charger-wide meter (connector 0) is booked to neither', async () => {
    const { left, right, sim } = await twoCars();
    const triggers = sim.received.filter((r) => r.action === 'TriggerMessage').map((r) => r.params as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(triggers.map((t) => t.connectorId ?? t.evse?.id).sort()).toEqual([1, 2]);
    expect(sim.received.filter((r) => r.action === 'GetConfiguration' || r.action === 'SetVariables')).toHaveLength(1);

    await sim.connector(1).plugIn(30);
    await sim.connector(2).plugIn(50);
    const s1 = await until(() => left.device.caps.charger!.session(), 5000, 'session on connector 1');
    const s2 = await until(() => right.device.caps.charger!.session(), 5000, 'session on connector 2');
    expect(s1.id).toBe(sim.connector(1).transactionId);
    expect(s2.id).toBe(sim.connector(2).transactionId);
    expect(s1.id).not.toBe(s2.id);

    // the plan's limits: 16 A on connector 1, 6 A on connector 2, each as a TxProfile of its own transaction
    await left.device.caps.charger!.setLimit({ watts: 11040, validUntil: Date.now() + 3600_000 });
    await right.device.caps.charger!.setLimit({ watts: 4140, validUntil: Date.now() + 3600_000 });
    const profiles = sim.received.filter((r) => r.action === 'SetChargingProfile').map((r) => r.params as Profile);
    const tx = profiles.filter((p) => profileOf(p).chargingProfilePurpose === 'TxProfile');
    expect(tx.map((p) => [connectorOf(p), String(profileOf(p).transactionId), firstPeriod(p).limit])).toEqual([
      [1, s1.id, 16],
      [2, s2.id, 6],
    ]);
    // a charger holds one profile per id: the connectors' profiles must not replace each other
    expect(tx.map((p) => profileOf(p).chargingProfileId ?? profileOf(p).id)).toEqual([1001, 1002]);

    await sim.step(60_000);
    await sim.step(60_000);
    expect(sim.connector(1).chargingPowerW).toBe(11040);
    expect(sim.connector(2).chargingPowerW).toBe(4140);
    await until(() => (left.device.caps.charger!.session()?.energyWh ?? 0) > 0 && (right.device.caps.charger!.session()?.energyWh ?? 0) > 0, 5000, 'energy on both');
    expect(left.device.caps.charger!.session()!.energyWh).toBeCloseTo(11040 / 60, 0);
    expect(right.device.caps.charger!.session()!.energyWh).toBeCloseTo(4140 / 60, 0);
    const of = (id: string) => rig!.readings.filter((r) => r.deviceId === id).map((r) => r.reading);
    expect(of('left').filter((r) => r.powerW === 11040).every((r) => r.sessionId === s1.id)).toBe(true);
    expect(of('right').filter((r) => r.powerW === 4140).every((r) => r.sessionId === s2.id)).toBe(true);
    // each device's register is its connector's, never the charger's sum (about 2 000 250 Wh)
    for (const r of [...of('left'), ...of('right')]) if (r.importWh !== undefined) expect(r.importWh).toBeLessThan(1_500_000);
    expect(rig!.logged(/meter values of the whole (charge point|station)/)).toHaveLength(1);

    await sim.connector(1).unplug();
    await sim.connector(2).unplug();
    await until(() => left.device.caps.charger!.session()?.end !== undefined && right.device.caps.charger!.session()?.end !== undefined, 5000, 'both ended');
    // the registers at the stop are those of the last meter values: nothing more was charged
    expect(left.device.caps.charger!.session()!.energyWh).toBeCloseTo(11040 / 60, 0);
    expect(right.device.caps.charger!.session()!.energyWh).toBeCloseTo(4140 / 60, 0);
  });

  it('one connector faults while the other charges; phases switch on the connector that asks', async () => {
    const { left, right, sim } = await twoCars();
    await sim.connector(1).plugIn(30);
    await sim.connector(2).plugIn(30);
    await until(() => left.device.caps.charger!.session() && right.device.caps.charger!.session(), 5000, 'two sessions');
    await sim.step(1000);
    await until(() => left.device.caps.charger!.status() === 'charging' && right.device.caps.charger!.status() === 'charging', 5000, 'both charging');

    await sim.connector(2).fault('GroundFailure');
    await until(() => right.device.caps.charger!.status() === 'faulted', 5000, 'connector 2 faulted');
    await sim.step(60_000);
    expect(left.device.caps.charger!.status()).toBe('charging');
    expect(sim.connector(1).chargingPowerW).toBeGreaterThan(0);
    expect(sim.connector(2).chargingPowerW).toBe(0);
    if (protocol === 'ocpp1.6') expect(rig!.logged(/connector 2 reports GroundFailure/)).toHaveLength(1);
    expect(right.device.caps.charger!.session()!.end).toBeUndefined();

    // phase switching is per connector: only the right one has it, and its profile goes to connector 2
    expect(left.device.caps.charger!.phaseSwitching).toBeUndefined();
    await right.device.caps.charger!.setLimit({ watts: 1400, phases: 1, validUntil: Date.now() + 600_000 });
    const last = sim.received.filter((r) => r.action === 'SetChargingProfile').map((r) => r.params as Profile).at(-1)!;
    expect(connectorOf(last)).toBe(2);
    expect(firstPeriod(last)).toMatchObject({ limit: 6, numberPhases: 1 });
    expect(right.device.caps.charger!.phaseSwitching!.activePhases()).toBe(1);

    await sim.connector(2).repair();
    await until(() => right.device.caps.charger!.status() !== 'faulted', 5000, 'connector 2 repaired');
  });

  it('refuses a second device for the same identity and connector, and one with another password', async () => {
    rig = await new Rig().listen();
    await rig.device({ id: 'a', identity, password: 'twin-pass-1', connector: 1 });
    await expect(rig.device({ id: 'b', identity, password: 'twin-pass-1', connector: 1 })).rejects.toThrow(`charger identity "${identity}" connector 1 is claimed by two devices (a and b)`);
    await expect(rig.device({ id: 'c', identity, password: 'other-pass', connector: 2 })).rejects.toThrow(/another password/);
  });
});

describe('a two-connector charger in the hub (YAML, simulated charge point on the hub’s own port)', () => {
  const site = (protocol: OcppProtocol) => `
site: { id: home, timezone: Europe/Berlin }
tariffs: { import: { type: fixed, rate: 0.30 } }
connections:
  ocpp: { host: 127.0.0.1, port: 0 }
devices:
  - { id: carport-left, adapter: ocpp, identity: TWIN, connector: 1, password: twin-hub-pw, configure: false, boot_wait_s: 0.1,
      target: { energy_wh: 10000, leave_time: "07:00" } }
  - { id: carport-right, adapter: ocpp, identity: TWIN, connector: 2, password: twin-hub-pw, configure: false, boot_wait_s: 0.1,
      target: { energy_wh: 10000, leave_time: "07:00" } }
  - { id: twin-sim, adapter: sim_ocpp_cp, identity: TWIN, password: twin-hub-pw, protocol: ${protocol}, connectors: 2,
      arrive: "00:00", leave: "23:59", meter_interval_s: 1, tick_s: 0.2 }
`;

  it.each<OcppProtocol>(['ocpp1.6', 'ocpp2.0.1'])('%s: both connectors are planned, metered and each session is costed to its own device', async (protocol) => {
    const { log } = captureLogger();
    hub = new Hub({ configText: site(protocol), logger: log, override: (c) => ((c.storage.dir = mkdtempSync(join(tmpdir(), 'hf-ocpp-twin-'))), (c.http.port = 0)) });
    const readings: { deviceId: string; reading: MeterReading }[] = [];
    hub.bus.on('meter.reading', (e) => readings.push(e));
    await hub.start();
    const ids = ['carport-left', 'carport-right'];
    const devices = ids.map((id) => hub!.registry.get(id)!);
    const sessions = await until(() => {
      const s = devices.map((d) => d.caps.charger!.session());
      return s.every((x) => x) && s.map((x) => x!);
    }, 15_000, 'a session on each connector');
    expect(sessions[0].id).not.toBe(sessions[1].id);
    // energy charged on each connector over more than one second of meter values (the simulator reports every second)
    const charged = (i: number) => {
      const rs = readings.filter((r) => r.deviceId === ids[i] && r.reading.sessionId === sessions[i].id && r.reading.importWh !== undefined).map((r) => r.reading);
      const first = rs[0];
      return first !== undefined && rs.some((r) => r.time >= first.time + 2000 && r.importWh! > first.importWh!);
    };
    await until(() => charged(0) && charged(1), 20_000, 'energy metered on each connector');
    await hub.services.metering!.drain();
    for (const [i, id] of ids.entries()) {
      const res = await fetch(`${hub.url}/api/v1/costs/session/${sessions[i].id}`, { method: 'POST' });
      const body = (await res.json()) as { device_ids: string[]; total: { energy: { value: number } } };
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.device_ids).toEqual([id]);
      expect(body.total.energy.value, id).toBeGreaterThan(0);
    }
    const plan = (await (await fetch(`${hub.url}/api/v1/plan`)).json()) as { devices: { id: string; power_w: number[] }[] };
    for (const id of ids) expect(plan.devices.find((d) => d.id === id)?.power_w.some((w) => w > 0), `${id} planned`).toBe(true);
  });

  it('check-config refuses two entries for one identity and connector, and charger-wide settings that differ, naming file and line', () => {
    const problems = (text: string) => {
      try {
        parseConfig(text, '/x/site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} });
      } catch (err) {
        if (err instanceof ConfigError) return err.problems.map(formatProblem);
        throw err;
      }
      return [];
    };
    const head = 'site: { id: home }\nconnections:\n  ocpp: { host: 127.0.0.1 }\ndevices:\n';
    expect(problems(`${head}  - { id: a, adapter: ocpp, identity: TWIN }\n  - { id: b, adapter: ocpp, identity: TWIN, connector: 2 }\n`)).toEqual([]);
    expect(problems(`${head}  - { id: a, adapter: ocpp, identity: TWIN }\n  - { id: b, adapter: ocpp, identity: TWIN, connector: 1 }\n`)).toEqual([
      'site.yaml:6:56 devices[1].connector: charger "TWIN" connector 1 is already devices[0] ("a"): give each connector of a charger its own entry with its own connector (1.6 connectorId, 2.0.1 EVSE id)',
    ]);
    const found = problems(`${head}  - { id: a, adapter: ocpp, identity: TWIN, password: pw-one }\n  - { id: b, adapter: ocpp, identity: TWIN, connector: 2, password: pw-two, meter_interval_s: 10 }\n`);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^site\.yaml:6:\d+ devices\[1\]\.password: must be the password of devices\[0\] \("a"\)/);
    expect(found[1]).toMatch(/^site\.yaml:6:\d+ devices\[1\]\.meter_interval_s: must be the same as in devices\[0\] \("a"\) \(60\): meter_interval_s is a setting of the whole charger "TWIN"/);
    // connector 2 uses profile.id + 1 = 1002, which connector 1 was given by hand
    expect(problems(`${head}  - { id: a, adapter: ocpp, identity: TWIN, profile: { id: 1002 } }\n  - { id: b, adapter: ocpp, identity: TWIN, connector: 2 }\n`)).toEqual([
      expect.stringMatching(/^site\.yaml:6:\d+ devices\[1\]\.profile\.id: gives chargingProfileId 1002 \(profile\.id \+ connector − 1\), as devices\[0\] \("a"\) does/),
    ]);
    expect(problems(`${head}  - { id: a, adapter: ocpp, identity: TWIN, profile: { purpose: ChargePointMaxProfile } }\n  - { id: b, adapter: ocpp, identity: TWIN, connector: 2 }\n`)[0]).toMatch(/devices\[0\]\.profile\.purpose: ChargePointMaxProfile limits the whole charger "TWIN"/);
  });
});
