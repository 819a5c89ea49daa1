import { expect, it } from 'vitest';
import type { Device } from '../../../src/api/index.js';
import { applySlot } from '../../../src/control/apply.js';
import { loadSolver } from '../../../src/control/solver.js';
import { ManualClock } from '../../../src/core/clock.js';
import { planSite, type SiteProblem } from '../../../src/optimiser/site/index.js';
import { describeWithPeers } from '../../../test/peers/system.js';
import { ModbusInverter, type ModbusDeviceConfig } from '../inverter.js';
import { loadProfile } from '../profile.js';
import { adapterContext, captureLogger, deviceDefaults, said, tcpConnection } from './harness.js';
import { emptyUnit, putWords, smaDump, startPymodbus } from './peers.js';
import { cleanupsAfterEach } from '../../../test/peers/cleanups.js';

/**
 * PV curtailment through SunSpec model 123 on a real register dump (SMA Sunny Boy 3.6, served by
 * Debian's python3-pymodbus): a limit written and read back through a second client, refreshed
 * before the inverter's revert timer runs out, lifted when it expires; and the plan → command path:
 * a negative export price makes the planner limit the inverter, a positive one lifts the limit.
 */

const cleanups = cleanupsAfterEach();

const device = (over: Partial<ModbusDeviceConfig> = {}): ModbusDeviceConfig => ({
  ...deviceDefaults,
  id: 'sma',
  adapter: 'modbus',
  connection: 'lan',
  profile: 'sunspec',
  unit: 126,
  pv_kwp: 3.6,
  watchdog_s: 60,
  poll_s: 10,
  ...over,
});

async function start(clock: ManualClock) {
  const sma = emptyUnit();
  putWords(sma.holding, 40000, smaDump());
  const peer = await startPymodbus(new Map([[126, sma]]), { tcp: true });
  cleanups.push(() => peer.stop());
  const conn = tcpConnection(peer.port!, { clock, timeoutMs: 1000 });
  cleanups.push(() => conn.stop());
  const log = captureLogger();
  const ctx = adapterContext(conn, { clock, log });
  const inverter = new ModbusInverter(ctx, device(), loadProfile('sunspec'));
  await inverter.start();
  cleanups.push(() => inverter.stop());
  const check = tcpConnection(peer.port!);
  cleanups.push(() => check.stop());
  const m123 = inverter.sunspecMap()!.models.find((m) => m.id === 123)!;
  const at = (p: string) => m123.start + m123.layout!.get(p)!.offset;
  const read = async (p: string) => (await check.readHolding(126, at(p), 1))[0];
  const write = (p: string, word: number) => check.writeRegisters(126, at(p), [word]);
  // the clock's own poll timer may be running a poll that began earlier: the second one starts afresh
  const poll = async () => {
    await inverter.pollOnce();
    await inverter.pollOnce();
  };
  return { inverter, log, read, write, poll };
}

describeWithPeers(['pymodbus'], 'PV curtailment over SunSpec 123 against python3-pymodbus', () => {
  it('writes the limit as % of WMax with the revert timer, refreshes it, and lifts it at validUntil', async () => {
    const clock = new ManualClock('2026-05-11T11:00:00Z');
    const { inverter, log, read, write, poll } = await start(clock);
    const cap = inverter.device.caps.curtail!;
    expect(cap).toMatchObject({ ratedW: 3600, steps: 'limit' });
    // the dump's WMax (model 121) is 3680 W: 1840 W is 50 %, in hundredths (WMaxLimPct_SF = −2)
    expect(inverter.pointValues().get('wmax')).toBe(3680);
    await cap.limit({ maxW: 1840, validUntil: clock.now() + 15 * 60_000 });
    expect(cap.current()).toBe(1840);
    expect(await read('WMaxLimPct_SF')).toBe(0x10000 - 2);
    expect(await read('WMaxLimPct')).toBe(5000);
    expect(await read('WMaxLimPct_RvrtTms')).toBe(60);
    expect(await read('WMaxLim_Ena')).toBe(1);
    expect(said(log, 'info', /sma: PV limited to 1840 W/)).toHaveLength(1);
    // another client clears the timer: homeflex re-sends the limit once half the revert time (30 s) is over, not before
    await write('WMaxLimPct_RvrtTms', 0);
    await clock.advance(10_000);
    await poll();
    expect(await read('WMaxLimPct_RvrtTms')).toBe(0);
    await clock.advance(21_000);
    await poll();
    expect(await read('WMaxLimPct_RvrtTms')).toBe(60);
    expect(await read('WMaxLim_Ena')).toBe(1);
    // past validUntil the next poll lifts the limit
    await clock.advance(15 * 60_000);
    await poll();
    expect(await read('WMaxLim_Ena')).toBe(0);
    expect(cap.current()).toBeUndefined();
    expect(said(log, 'info', /sma: PV limit expired at/)).toHaveLength(1);
    await expect(cap.limit({ maxW: -5 })).rejects.toThrow(/sma: maxW must be a number of watts ≥ 0, got -5/);
  });

  it('the plan limits the inverter in a negative-price hour and lifts the limit in the next', async () => {
    const clock = new ManualClock('2026-05-11T11:00:00Z');
    const { inverter, read } = await start(clock);
    const t0 = clock.now();
    const H = 3_600_000;
    const problem: SiteProblem = {
      slots: [0, 1, 2].map((t) => ({ start: t0 + t * H, end: t0 + (t + 1) * H })),
      importRate: [0.3, 0.3, 0.3],
      exportRate: [-0.04, 0.07, 0.07],
      baseLoadW: [400, 400, 400],
      flows: [{ id: 'sma', powerW: [-2800, -2800, -2800], curtailable: true }],
      grid: { maxImportW: [Infinity, Infinity, Infinity], maxExportW: [Infinity, Infinity, Infinity] },
      circuits: [],
      batteries: [],
      evs: [],
      hvacs: [],
      loads: [],
    };
    const plan = planSite(problem, await loadSolver());
    // hand-checked: the house takes 400 W, the other 2400 W would be exported at −0.04 €/kWh
    expect(plan.exportW).toEqual([0, 2400, 2400]);
    expect(plan.curtailment).toEqual([{ id: 'sma', curtailW: [2400, 0, 0], limitW: [400, Infinity, Infinity] }]);
    const devices = new Map<string, Device>([['sma', inverter.device]]);
    const common = { plan, devices, sent: new Map(), log: captureLogger(), paused: new Set<string>() };
    const first = await applySlot({ ...common, k: 0, validUntil: t0 + H + 60_000 });
    expect(first).toEqual({ commanded: ['sma'], failed: [] });
    // 400 W of WMax 3680 W = 10.87 %, in hundredths
    expect(await read('WMaxLimPct')).toBe(1087);
    expect(await read('WMaxLim_Ena')).toBe(1);
    await clock.advance(H);
    await applySlot({ ...common, k: 1, validUntil: t0 + 2 * H + 60_000 });
    expect(await read('WMaxLim_Ena')).toBe(0);
    expect(inverter.device.caps.curtail!.current()).toBeUndefined();
  });
});
