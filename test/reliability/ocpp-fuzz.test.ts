import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from '../peers/hub.js';
import { freePort } from '../peers/mqtt.js';
import { applyMutation, mutation, weird } from './fuzz.js';
import { expectSaneMeterStore, until } from './helpers.js';

/**
 * Raw WebSocket frames to the hub's OCPP central system, 1.6J and 2.0.1: garbage, JSON that is not
 * OCPP-J, and calls whose payloads are mutations of what chargers send. Every call is answered
 * once, with its own id, by a result or an OCPP error (never an internal one); the connection and
 * the hub stay up; what was wrong is logged; afterwards the charger's session and the meter store
 * hold only sane numbers, and a clean transaction still meters right.
 */

const OCPP_ERRORS = new Set([
  'NotImplemented', 'NotSupported', 'ProtocolError', 'SecurityError', 'FormationViolation', 'FormatViolation', 'PropertyConstraintViolation',
  'OccurenceConstraintViolation', 'OccurrenceConstraintViolation', 'TypeConstraintViolation', 'GenericError', 'MessageTypeNotSupported', 'RpcFrameworkError',
]);
const at = () => new Date().toISOString();
/** HOMEFLEX_FUZZ_SEED=<n> repeats or varies a run. */
const SEED = Number(process.env.HOMEFLEX_FUZZ_SEED ?? 7);
const SEEDS_16: Record<string, unknown> = {
  BootNotification: { chargePointVendor: 'ACME', chargePointModel: 'Fuzz 1', firmwareVersion: '1.0' },
  Heartbeat: {},
  StatusNotification: { connectorId: 1, errorCode: 'NoError', status: 'Charging', timestamp: at() },
  Authorize: { idTag: 'TAG1' },
  StartTransaction: { connectorId: 1, idTag: 'TAG1', meterStart: 1000, timestamp: at() },
  StopTransaction: { transactionId: 1, meterStop: 2000, timestamp: at(), reason: 'Local', transactionData: [{ timestamp: at(), sampledValue: [{ value: '1500' }] }] },
  MeterValues: {
    connectorId: 1, transactionId: 1,
    meterValue: [{ timestamp: at(), sampledValue: [{ value: '1200', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }, { value: '7000', measurand: 'Power.Active.Import', unit: 'W' }, { value: '10.1', measurand: 'Current.Import', phase: 'L1', unit: 'A' }, { value: '55', measurand: 'SoC', unit: 'Percent' }] }],
  },
  DataTransfer: { vendorId: 'acme', messageId: 'x', data: 'y' },
  DiagnosticsStatusNotification: { status: 'Idle' },
  FirmwareStatusNotification: { status: 'Installed' },
  CancelReservation: { reservationId: 1 },
};
const SEEDS_201: Record<string, unknown> = {
  BootNotification: { reason: 'PowerUp', chargingStation: { model: 'Fuzz 2', vendorName: 'ACME' } },
  Heartbeat: {},
  StatusNotification: { timestamp: at(), connectorStatus: 'Occupied', evseId: 1, connectorId: 1 },
  TransactionEvent: {
    eventType: 'Updated', timestamp: at(), triggerReason: 'MeterValuePeriodic', seqNo: 1, transactionInfo: { transactionId: 'T-1', chargingState: 'Charging' }, evse: { id: 1, connectorId: 1 },
    meterValue: [{ timestamp: at(), sampledValue: [{ value: 1500, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh', multiplier: 0 } }] }],
  },
  MeterValues: { evseId: 1, meterValue: [{ timestamp: at(), sampledValue: [{ value: 1600 }] }] },
  Authorize: { idToken: { idToken: 'TAG1', type: 'ISO14443' } },
};

let h: TestHub;
let url: string;
beforeAll(async () => {
  const port = await freePort();
  h = await startHub(`site: { id: home, timezone: Europe/Berlin, currency: EUR }
tariffs: { import: { type: fixed, rate: 0.30 } }
connections:
  ocpp: { host: 127.0.0.1, port: ${port} }
devices:
  - { id: ev16, adapter: ocpp, identity: FUZZ16, boot_wait_s: 0.2 }
  - { id: ev201, adapter: ocpp, identity: FUZZ201, boot_wait_s: 0.2 }
`);
  url = `ws://127.0.0.1:${port}/ocpp`;
});
afterAll(() => h?.stop());

/** A raw OCPP-J peer: sends frames, collects replies by id, answers the hub's own calls plainly. */
async function rawCharger(identity: string, protocol: string) {
  const ws = new WebSocket(`${url}/${identity}`, [protocol]);
  const replies: unknown[][] = [];
  let closed = false;
  ws.on('message', (m) => {
    let frame: unknown[];
    try {
      frame = JSON.parse(String(m)) as unknown[];
    } catch {
      replies.push(['unparseable', String(m)]);
      return;
    }
    if (frame[0] === 2) {
      // a call from the hub (configuration, triggers, profiles): accept it plainly
      const answers: Record<string, unknown> = { GetConfiguration: { configurationKey: [] }, GetVariables: { getVariableResult: [] }, SetVariables: { setVariableResult: [] } };
      ws.send(JSON.stringify([3, frame[1], answers[frame[2] as string] ?? { status: 'Accepted' }]));
    } else replies.push(frame);
  });
  ws.on('close', () => (closed = true));
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  return { ws, replies, closed: () => closed };
}

async function fuzzCharger(identity: string, protocol: 'ocpp1.6' | 'ocpp2.0.1', seeds: Record<string, unknown>, runs: number, seed: number) {
  const c = await rawCharger(identity, protocol);
  let calls = 0;
  const errorCodes = new Map<string, number>();
  const frame = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...Object.keys(seeds), 'NoSuchAction'), mutation, fc.boolean()).map(([action, m, plain]) => [2, 'ID', action, plain ? (seeds[action] ?? {}) : applyMutation(seeds[action] ?? {}, m)]) },
    // the numbers chargers send: registers, powers and SoC from odd to absurd
    {
      weight: 2,
      arbitrary: fc.tuple(fc.constantFrom('Energy.Active.Import.Register', 'Power.Active.Import', 'SoC', 'Current.Import', undefined), fc.oneof(fc.constantFrom<unknown>('1e12', 1e308, '1e308', -5, '-0', 'NaN', '1e999', '12,5', ' 7 ', '0x1F', 9e15, 1e-300), fc.double({ noNaN: true }), fc.integer())).map(([measurand, value]) =>
        protocol === 'ocpp1.6'
          ? [2, 'ID', 'MeterValues', { connectorId: 1, meterValue: [{ timestamp: at(), sampledValue: [{ value, ...(measurand ? { measurand } : {}) }] }] }]
          : [2, 'ID', 'MeterValues', { evseId: 1, meterValue: [{ timestamp: at(), sampledValue: [{ value, ...(measurand ? { measurand } : {}) }] }] }],
      ),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(2, 3, 4, 5, -1, '2', null), weird, weird, weird).map((f) => f as unknown[]) },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('[', '[2,"a","Heartbeat"', '[2,"a","Heartbeat",{}]x', '{"a":1}', '[]', 'null', '[2,"","Heartbeat",{}]', `[2,"${'x'.repeat(40)}","Heartbeat",{}]`)).map((raw) => ({ raw })) },
  );
  await fc.assert(
    fc.asyncProperty(frame, async (f) => {
      const before = c.replies.length;
      if (!Array.isArray(f)) {
        c.ws.send((f as { raw: string }).raw);
        await new Promise((r) => setTimeout(r, 15));
      } else {
        const id = `m${calls++}`;
        const out = f[0] === 2 && f[1] === 'ID' ? [2, id, f[2], f[3]] : f;
        c.ws.send(JSON.stringify(out));
        if (out[1] === id) {
          // a well-formed call: exactly one answer with its id, a result or a known OCPP error
          const reply = await until(() => c.replies.find((r) => r[1] === id), `the answer to ${JSON.stringify(out).slice(0, 300)}`, 5000);
          await new Promise((r) => setTimeout(r, 2));
          expect(c.replies.filter((r) => r[1] === id)).toHaveLength(1);
          if (reply[0] === 4) {
            expect(OCPP_ERRORS.has(reply[2] as string), `${reply[2]} for ${JSON.stringify(out).slice(0, 300)}: ${reply[3]}`).toBe(true);
            errorCodes.set(reply[2] as string, (errorCodes.get(reply[2] as string) ?? 0) + 1);
          } else expect(reply[0]).toBe(3);
        } else await new Promise((r) => setTimeout(r, 15));
      }
      for (const r of c.replies.slice(before)) expect(JSON.stringify(r)).not.toMatch(/\n\s+at |\.ts:\d+|node_modules/);
      expect(c.closed(), 'the hub closed the connection').toBe(false);
    }),
    { numRuns: runs, seed, endOnFailure: true },
  );
  return { c, errorCodes };
}

describe('OCPP frame fuzzing', () => {
  it('1.6J and 2.0.1: every call answered once with its id, never an internal error; the connection and the hub stay up', async () => {
    const one = await fuzzCharger('FUZZ16', 'ocpp1.6', SEEDS_16, 300, SEED);
    const two = await fuzzCharger('FUZZ201', 'ocpp2.0.1', SEEDS_201, 150, SEED + 1);
    // malformed input was refused and said so, and the adapters were never blamed for a crash
    expect([...one.errorCodes.keys()].length).toBeGreaterThan(0);
    expect(h.logText()).toMatch(/sent a malformed frame|does not follow the OCPP schema/);
    expect(h.logText()).not.toMatch(/adapter ocpp failed|unhandled error in the hub|"level":60/);
    for (const id of ['ev16', 'ev201']) {
      expect(h.hub.services.adapterStatus.get(id)?.status).toBe('running');
      expect(h.hub.registry.get(id)!.available).toBe(true);
    }
    one.c.ws.close();
    two.c.ws.close();
  });

  it('left only sane numbers behind, and a clean transaction afterwards meters right', async () => {
    for (const id of ['ev16', 'ev201']) {
      const d = h.hub.registry.get(id)!;
      const s = d.caps.charger!.session();
      if (s) expect(Number.isFinite(s.energyWh) && s.energyWh >= 0 && s.energyWh < 1e9, JSON.stringify(s)).toBe(true);
      const soc = d.caps.charger!.evSocPct();
      if (soc !== undefined) expect(soc >= 0 && soc <= 100, String(soc)).toBe(true);
      const r = d.caps.meter!.last();
      if (r?.importWh !== undefined) expect(Number.isFinite(r.importWh) && r.importWh >= 0).toBe(true);
    }
    await expectSaneMeterStore(h.hub);

    const c = await rawCharger('FUZZ16', 'ocpp1.6');
    let n = 0;
    const call = async (action: string, payload: unknown) => {
      const id = `ok${n++}`;
      c.ws.send(JSON.stringify([2, id, action, payload]));
      return (await until(() => c.replies.find((r) => r[1] === id), action))[2] as Record<string, unknown>;
    };
    await call('BootNotification', SEEDS_16.BootNotification);
    const { transactionId } = (await call('StartTransaction', { connectorId: 1, idTag: 'TAG1', meterStart: 5_000_000, timestamp: at() })) as { transactionId: number };
    await call('MeterValues', { connectorId: 1, transactionId, meterValue: [{ timestamp: at(), sampledValue: [{ value: '5000700' }] }] });
    await call('StopTransaction', { transactionId, meterStop: 5_001_000, timestamp: at() });
    expect(h.hub.registry.get('ev16')!.caps.charger!.session()).toMatchObject({ id: String(transactionId), energyWh: 1000 });
    c.ws.close();
  });
});
