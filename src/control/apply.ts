import type { Device, EpochMs, Logger } from '../api/index.js';
import type { DevicePlan, SitePlan } from '../optimiser/site/index.js';
import { firstSlotResponse } from '../optimiser/site/battery.js';
import { batteryCommand } from '../optimiser/self-consumption.js';

/** What was last sent to each device that keeps its state by itself (switches, thermostats). */
export type SentState = Map<string, string>;

/**
 * Sends slot `k` of the plan to the devices, each in its own terms: a battery gets an inverter
 * mode and power, a charger a limit with the plan's next steps, a thermostat a setpoint inside
 * the comfort band, a switch on or off. Battery and charger commands carry `validUntil`, so a
 * device whose hub goes silent falls back to its own safe default by itself.
 */
export async function applySlot(opts: {
  plan: SitePlan;
  k: number;
  devices: Map<string, Device>;
  validUntil: EpochMs;
  sent: SentState;
  log: Logger;
  paused: Set<string>;
  /** Devices whose last command failed, with the error: a device that keeps refusing is logged once, not at every slot. */
  failing?: Map<string, string>;
}): Promise<{ commanded: string[]; failed: string[] }> {
  const { plan, k, validUntil, sent, log } = opts;
  const commanded: string[] = [];
  const failed: string[] = [];
  const slot = plan.slots[k];
  const send = async (d: Device, what: string, fn: () => Promise<void>) => {
    try {
      await fn();
      commanded.push(d.id);
      if (opts.failing?.delete(d.id)) log.info({ device: d.id }, `${d.id} takes its commands again`);
    } catch (err) {
      failed.push(d.id);
      const message = String((err as Error)?.message ?? err);
      if (opts.failing?.get(d.id) !== message) log.warn({ err, device: d.id }, `could not send ${what} to ${d.id}`);
      opts.failing?.set(d.id, message);
    }
  };
  for (const dp of plan.devices) {
    const d = opts.devices.get(dp.id);
    if (!d || !d.available) continue;
    const w = dp.powerW[k];
    if (dp.kind === 'battery' && d.caps.storage) {
      // the execution rule the backtest measures: from the plan's value of stored energy at the charge the battery reports now
      const p = d.caps.storage.params;
      const pct = d.caps.storage.state().socPct;
      // (a battery that does not report its charge gets the plan's own mode and power)
      const known = pct !== undefined && Number.isFinite(pct);
      const socWh = known ? (pct / 100) * p.capacityWh : 0;
      const cmd = batteryCommand({ ...p, initialWh: socWh }, dp, k, socWh, known ? firstSlotResponse(plan) : undefined);
      await send(d, 'a storage command', () => d.caps.storage!.command({ ...cmd, validUntil }));
    } else if (dp.kind === 'ev' && d.caps.charger) {
      // the next steps go along, so a charger that takes schedules follows the plan by itself until validUntil
      const schedule = nextSteps(plan, dp, k, validUntil);
      const ch = d.caps.charger;
      // a charger that switches phases takes a power below three phases' minimum on one phase
      const phases = ch.phaseSwitching && ch.phases === 3 && w > 0 && w < ch.minCurrentA * ch.voltage * 3 ? 1 : ch.phases;
      await send(d, 'a charging limit', () => ch.setLimit({ watts: Math.round(w), phases, validUntil, schedule }));
    } else if (dp.kind === 'hvac' && d.caps.thermostat) {
      const setpoint = Math.round((dp.setpointC?.[k] ?? d.caps.thermostat.band.maxC) * 10) / 10;
      const mode = opts.paused.has(d.id) ? 'off' : undefined;
      const key = `${setpoint}/${mode ?? ''}`;
      if (sent.get(d.id) === key) continue;
      await send(d, 'a setpoint', () => d.caps.thermostat!.setSetpoint(setpoint, mode));
      if (!failed.includes(d.id)) sent.set(d.id, key);
    } else if (dp.kind === 'heatpump' && d.caps.heatPump) {
      // a paused heat pump is left to its own controller (normal); the device holds each state its dwell
      const state = opts.paused.has(d.id) ? 2 : (dp.sgReady?.[k] ?? 2);
      if (d.caps.heatPump.requestedState() === state) continue;
      const why = state === 2 ? 'plan: normal operation' : state === 1 ? 'plan: blocked in a dear slot, tank and rooms can wait' : `plan: ${Math.round(w)} W planned (${dp.reasons[k] ?? 'price'})`;
      await send(d, `SG-Ready state ${state}`, () => d.caps.heatPump!.setSgReady(state, why));
    } else if (dp.kind === 'load' && d.caps.switch) {
      const on = dp.on?.[k] ?? false;
      if (sent.get(d.id) === String(on) && d.caps.switch.isOn() === on) continue;
      await send(d, on ? 'on' : 'off', () => d.caps.switch!.set(on));
      if (!failed.includes(d.id)) sent.set(d.id, String(on));
    }
  }
  // curtailable PV: a limit where the plan gives production up, lifted where it does not
  for (const c of plan.curtailment ?? []) {
    const d = opts.devices.get(c.id.replace(/:pv$/, ''));
    if (!d || !d.available || !d.caps.curtail) continue;
    const cap = d.caps.curtail;
    const limitW = c.limitW[k];
    if (!Number.isFinite(limitW)) {
      if (cap.current() === undefined) continue;
      await send(d, 'a PV limit release', () => cap.limit({}));
    } else {
      const maxW = cap.steps === 'off' ? 0 : Math.round(limitW);
      await send(d, 'a PV limit', () => cap.limit({ maxW, validUntil }));
    }
  }
  void slot;
  return { commanded, failed };
}

function nextSteps(plan: SitePlan, dp: DevicePlan, k: number, until: EpochMs): { start: EpochMs; watts: number }[] {
  const out: { start: EpochMs; watts: number }[] = [];
  for (let j = k; j < plan.slots.length && plan.slots[j].start < until; j++) {
    const w = Math.round(dp.powerW[j]);
    if (!out.length || out[out.length - 1].watts !== w) out.push({ start: plan.slots[j].start, watts: w });
  }
  return out;
}
