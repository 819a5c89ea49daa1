import { DateTime } from 'luxon';
import { entryAt, EV_CHARGE_MODES, EV_DEFAULT_MODES, firstEndingAfter, hasCap, HOUR, type EvChargeMode, type Device, type NodeFlexibility, type EvDefaultMode, type EvTarget, type Direction, type EpochMs, type PriceSeries } from '../api/index.js';
import type { HubConfig } from '../core/config/schema.js';
import type { PriceLookup } from '../core/services.js';
import type { SiteForecasts } from '../forecast/service.js';
import { clearSkyPvForecast, historyLoadForecast, learnedLoadForecast, ROBUST_MIN_DAYS, standardProfileLoad, type EnergyInterval, type PowerForecast } from '../optimiser/forecast/index.js';
import { DRAW_PROFILE_M, drawPerSlot, heatingCop, type BatteryModel, type CircuitNode, type DeviceLimits, type EvModel, type EvSession, type FixedFlow, type HeatPumpModel, type HvacModel, type LoadRun, type PlanSlot, type SiteProblem, type SwitchedLoadModel } from '../optimiser/site/index.js';
import type { EnergyHistory } from './history.js';
import { siteGridMeterId } from '../api/grid-meter.js';
import { hoursFor, runWindow, type ScheduleSetting } from './schedule.js';
import { perSlotUntil, type ExternalLimits } from './limits.js';
import { applyBillTerms, composedTariff } from './bill-terms.js';
import { MINUTE } from '../api/time.js';

/** AC charging loses about a tenth between the wall and the car's cells: turns SoC targets into metered energy. */
export const EV_CHARGE_EFFICIENCY = 0.9;
/** Charger states with a car plugged in: only then is an EV in the plan. */
export const PLUGGED = new Set(['preparing', 'charging', 'suspended_ev', 'suspended_evse', 'finishing']);

export const DEFAULT_EV_MODE: EvDefaultMode = 'cheapest_fill';
/** The car battery a fill assumes when neither the car nor the YAML (`ev_capacity_wh`, `capacity_wh`) says (Wh). */
export const DEFAULT_CAR_CAPACITY_WH = 60_000;

/** A device's settings in force: its YAML entry with the run-time overrides (API) on top. */
export interface EffectiveSettings {
  target?: EvTargetSetting;
  schedule?: ScheduleSetting;
  comfort?: { min_c: number; max_c: number };
  paused?: boolean;
  /** A charger's charge mode (evcc's off, now, minpv, pv; or plan); YAML `charge_mode`, `PUT /devices/{id}/mode`. */
  charge_mode?: EvChargeMode;
}

/** A charger's charge mode in force: the API's, else the YAML's, else `plan`. */
export const chargeModeOf = (settings: EffectiveSettings, yaml: Record<string, unknown>): EvChargeMode =>
  settings.charge_mode ?? EV_CHARGE_MODES.find((m) => m === yaml.charge_mode) ?? 'plan';

/** A charger's target in force: the YAML's `target` or the API's (one schema, `EvTargetSchema`). */
export type EvTargetSetting = EvTarget;

export type { ScheduleSetting } from './schedule.js';

export interface ModelInputs {
  now: EpochMs;
  config: HubConfig;
  devices: { device: Device; config: Record<string, unknown>; settings: EffectiveSettings }[];
  prices?: PriceLookup;
  limits: Map<string, ExternalLimits>;
  history: EnergyHistory;
  /** The configured forecast sources (`forecasts:`); without them PV is clear sky × recent production. */
  forecasts?: SiteForecasts;
}

export interface ModelNotes {
  /** Why a device is not in the plan, or what was assumed about it. */
  notes: string[];
  /** Slots whose price is a stand-in (repeated from the day before, or the configured fallback). */
  estimatedPrices: number;
  forecasts: { baseLoad: string; pv: string[] };
  /** The factor the PV flows (`flows`) were planned with (`forecasts.uncertainty`); the forecasts are stored unscaled. */
  pvScale?: { mode: 'robust' | 'point'; factor: number; quantile: number; days: number; flows: string[] };
}

/** The plan's slot grid: from now, aligned to `slotMinutes`, covering `horizonHours`. */
export function slotGrid(now: EpochMs, slotMinutes: number, horizonHours: number): PlanSlot[] {
  const len = slotMinutes * MINUTE;
  const end = Math.ceil((now + horizonHours * HOUR) / len) * len;
  let boundary = Math.floor(now / len) * len + len;
  // a first slot of under a minute is merged into the next
  if (boundary - now < MINUTE) boundary += len;
  const slots: PlanSlot[] = [{ start: now, end: Math.min(boundary, end) }];
  for (let t = boundary; t < end; t += len) slots.push({ start: t, end: t + len });
  return slots;
}

/** Fixed-rate prices from the YAML when no tariff part is running (`tariffs.import: {type: fixed, rate}`). */
function configuredFixedRate(config: HubConfig, direction: Direction): number | undefined {
  const t = direction === 'IMPORT' ? config.tariffs.import : config.tariffs.export;
  return t?.type === 'fixed' && typeof t.rate === 'number' ? t.rate : undefined;
}

/**
 * Mean rate per slot from a price series. Slots the series does not cover take the rate at the
 * same time one day earlier (and so on, up to a week), else the last known rate: day-ahead prices
 * end tomorrow night, the plan runs 48 h.
 */
export function ratesForSlots(series: PriceSeries, slots: readonly PlanSlot[], fallback?: number): { rates: number[]; estimated: number } {
  const known = (t: number): number | undefined => entryAt(series, t)?.rate;
  let estimated = 0;
  const rates = slots.map(({ start, end }) => {
    let acc = 0;
    let covered = 0;
    // the first entry that ends after the slot starts, by binary search (series may hold weeks)
    for (let i = firstEndingAfter(series, start); i < series.length; i++) {
      const s = series[i];
      if (s.end <= start) continue;
      if (s.start >= end) break;
      const overlap = Math.min(end, s.end) - Math.max(start, s.start);
      acc += s.rate * overlap;
      covered += overlap;
    }
    if (covered >= end - start - 1) return acc / covered;
    estimated++;
    for (let k = 1; k <= 7; k++) {
      const r = known(start - k * 24 * HOUR);
      if (r !== undefined) return r;
    }
    const last = series.length ? series[series.length - 1].rate : fallback;
    if (last === undefined) throw new Error('no prices: the tariff part has no rates for the plan horizon and no fixed rate is configured');
    return last;
  });
  return { rates, estimated };
}

/** The next instant at local "HH:MM" after `now`, or an RFC 3339 instant as given. */
export function leaveInstant(leave: string, now: EpochMs, timezone: string): EpochMs {
  const m = /^(\d\d):(\d\d)$/.exec(leave);
  if (!m) {
    const t = Date.parse(leave);
    if (Number.isNaN(t)) throw new Error(`leave_time "${leave}" is neither HH:MM nor an RFC 3339 time`);
    return t;
  }
  const local = DateTime.fromMillis(now, { zone: timezone });
  let at = local.set({ hour: Number(m[1]), minute: Number(m[2]), second: 0, millisecond: 0 });
  if (at.toMillis() <= now) at = at.plus({ days: 1 });
  return at.toMillis();
}

/** The occurrences of a daily local window "from"–"to" (crossing midnight when to ≤ from) that overlap `[start, end)`. */
export function windowsBetween(window: { from: string; to: string }, start: EpochMs, end: EpochMs, timezone: string): { start: EpochMs; end: EpochMs }[] {
  const hm = (s: string) => s.split(':').map(Number) as [number, number];
  const [fh, fm] = hm(window.from);
  const [th, tm] = hm(window.to);
  const crosses = th * 60 + tm <= fh * 60 + fm;
  const out: { start: EpochMs; end: EpochMs }[] = [];
  let day = DateTime.fromMillis(start, { zone: timezone }).startOf('day').minus({ days: 1 });
  while (day.toMillis() < end) {
    const ws = day.set({ hour: fh, minute: fm }).toMillis();
    const we = (crosses ? day.plus({ days: 1 }) : day).set({ hour: th, minute: tm }).toMillis();
    if (we > start && ws < end) out.push({ start: ws, end: we });
    day = day.plus({ days: 1 });
  }
  return out;
}

/** Daily sinusoid of the outdoor temperature peaking at 15:00 local, from the device's `outdoor_min_c`/`outdoor_max_c`. */
function outdoorForecast(config: Record<string, unknown>, slots: readonly PlanSlot[], timezone: string): number[] | undefined {
  const lo = config.outdoor_min_c;
  const hi = config.outdoor_max_c;
  if (typeof lo !== 'number' || typeof hi !== 'number') return undefined;
  return slots.map(({ start, end }) => {
    const d = DateTime.fromMillis((start + end) / 2, { zone: timezone });
    const h = d.hour + d.minute / 60;
    return (lo + hi) / 2 + ((hi - lo) / 2) * Math.cos(((h - 15) / 24) * 2 * Math.PI);
  });
}

function deviceLimits(ext: ExternalLimits | undefined, slots: readonly PlanSlot[], paused: boolean): DeviceLimits | undefined {
  if (!ext && !paused) return undefined;
  return {
    maxImportW: perSlotUntil(ext?.import, ext?.validUntil, slots, 'min'),
    maxExportW: perSlotUntil(ext?.export, ext?.validUntil, slots, 'min'),
    // a paused device holds still: power 0 in every slot
    setpointW: paused ? slots.map(() => 0) : perSlotUntil(ext?.setpoints, ext?.validUntil, slots, 'at_start'),
  };
}

/** A meter that is none of the planned devices and not the site's grid meter: what it measures is the house's base load. */
export const isBaseLoadMeter = (d: Device) => hasCap(d, 'meter') && !d.caps.meter!.channels.includes('grid') && !d.caps.storage && !d.caps.charger && !d.caps.thermostat && !d.caps.switch && !d.caps.pv && !d.caps.heatPump;

/**
 * Where the house's own load is measured. With a grid meter (a device with a `grid` channel: a P1
 * meter, a Shelly 3EM at the supply, an inverter's meter) it is grid import − export minus every
 * device the plan knows (battery, PV, EV, switched loads, heating), each by its own meter; else
 * it is the sum of the base-load meters. History keys as `EnergyHistory` keeps them.
 */
export function baseLoadSource(devices: Device[], gridMeter?: string): { grid: string[]; known: string[] } | { meters: string[] } {
  const siteMeter = siteGridMeterId(gridMeter, devices, devices.map((d) => d.id));
  const grid = devices.filter((d) => d.id === siteMeter && d.caps.meter?.channels.includes('grid')).map((d) => `${d.id}:grid`);
  if (!grid.length) return { meters: devices.filter(isBaseLoadMeter).map((d) => d.id) };
  const known: string[] = [];
  for (const d of devices) {
    const m = d.caps.meter;
    if (!m || !(d.caps.storage || d.caps.charger || d.caps.thermostat || d.caps.switch || d.caps.pv || d.caps.heatPump)) continue;
    const own = m.channels.filter((c) => c === 'battery' || c === 'pv').map((c) => `${d.id}:${c}`);
    if (own.length) known.push(...own);
    else if (m.channels.includes('device')) known.push(d.id);
  }
  return { grid, known };
}

/**
 * The site's net import per quarter (Wh, + = import) for the peak reached so far: the grid meter's
 * own quarters where the site has one; otherwise every metered flow summed — each device's own
 * channels (`device`, and an inverter's `battery` and `pv`, kept as `<id>:<channel>`).
 */
export function siteNetImport(history: ModelInputs['history'], devices: readonly Device[], source: ReturnType<typeof baseLoadSource>, now: number): EnergyInterval[] {
  if ('grid' in source) return history.intervals(source.grid, now);
  const byQuarter = new Map<number, number>();
  for (const d of devices) {
    for (const channel of d.caps.meter?.channels ?? []) {
      if (channel === 'grid') continue;
      const key = channel === 'device' ? d.id : `${d.id}:${channel}`;
      for (const q of history.intervals([key], now)) byQuarter.set(q.start, (byQuarter.get(q.start) ?? 0) + q.wh);
    }
  }
  return [...byQuarter].sort((a, b) => a[0] - b[0]).map(([start, wh]) => ({ start, end: start + 15 * MINUTE, wh }));
}

/**
 * Builds the site problem the optimiser solves, from the registry (devices and their caps'
 * state), their settings, the prices, the external limits and the forecasts.
 */
export function buildSiteProblem(inputs: ModelInputs): { problem: SiteProblem; notes: ModelNotes } {
  const { now, config } = inputs;
  const tz = config.site.timezone;
  const slots = slotGrid(now, config.planner.slot_minutes, config.planner.horizon_hours);
  const horizon = { start: slots[0].start, end: slots[slots.length - 1].end };
  const notes: ModelNotes = { notes: [], estimatedPrices: 0, forecasts: { baseLoad: '', pv: [] } };

  // ---------------------------------------------------------------- prices
  const priceFor = (direction: Direction) => {
    const fixed = configuredFixedRate(config, direction);
    const series = inputs.prices ? inputs.prices.series(direction, { start: horizon.start - 7 * 24 * HOUR, end: horizon.end }) : [];
    if (!series.length && fixed === undefined) {
      if (direction === 'EXPORT') return { rates: slots.map(() => 0), estimated: 0 };
      throw new Error('no prices: configure tariffs.import (or import a price series) before the hub can plan');
    }
    return ratesForSlots(series, slots, fixed);
  };
  const imp = priceFor('IMPORT');
  const exp = priceFor('EXPORT');
  notes.estimatedPrices = Math.max(imp.estimated, exp.estimated);
  for (const direction of ['IMPORT', 'EXPORT'] as const) {
    const health = inputs.prices?.health?.(direction);
    if (!health?.degraded) continue;
    const why = health.error ? `failing (${health.error})` : 'without prices for now';
    const standIn = health.fallback ? `the fallback tariff (${health.fallback}) stands in where they end, at lower confidence` : 'the last known prices are repeated day by day';
    notes.notes.push(`${direction.toLowerCase()} prices: the ${health.type} tariff is ${why}; ${standIn}`);
  }

  // ---------------------------------------------------------------- grid and circuits
  const siteLimits = inputs.limits.get(config.site.id);
  const cap = (configured: number | undefined, external: (number | undefined)[]) => external.map((e) => Math.min(configured ?? Infinity, e ?? Infinity));
  const grid = {
    maxImportW: cap(config.site.grid?.max_import_w, perSlotUntil(siteLimits?.import, siteLimits?.validUntil, slots, 'min', config.site.grid?.fallback_import_w)),
    maxExportW: cap(config.site.grid?.max_export_w, perSlotUntil(siteLimits?.export, siteLimits?.validUntil, slots, 'min', config.site.grid?.fallback_export_w)),
  };
  const circuits: CircuitNode[] = config.site.circuits.map((c) => {
    const ext = inputs.limits.get(c.id);
    return { id: c.id, parent: c.parent, maxImportW: cap(c.max_import_w, perSlotUntil(ext?.import, ext?.validUntil, slots, 'min', c.fallback_import_w)), maxExportW: cap(c.max_export_w, perSlotUntil(ext?.export, ext?.validUntil, slots, 'min', c.fallback_export_w)) };
  });

  // ---------------------------------------------------------------- devices
  const batteries: BatteryModel[] = [];
  const evs: EvModel[] = [];
  const hvacs: HvacModel[] = [];
  const loads: SwitchedLoadModel[] = [];
  const heatPumps: HeatPumpModel[] = [];
  const flows: FixedFlow[] = [];
  const baseMeters: string[] = [];
  let annualHint: number | undefined;

  for (const { device: d, config: yaml, settings } of inputs.devices) {
    if (!d.available) {
      notes.notes.push(`${d.id}: unavailable (${d.error ?? 'no answer'}), left out of the plan`);
      continue;
    }
    const limits = deviceLimits(inputs.limits.get(d.id), slots, settings.paused === true);
    const circuit = d.circuit;
    if (d.caps.node) {
      const flex = d.caps.node.flexibility();
      if (!flex) {
        notes.notes.push(`${d.id}: no flexibility from the child hub yet, left out of the plan`);
        continue;
      }
      const node = nodeModel(d.id, circuit, flex, slots);
      evs.push({ ...node.ev, limits });
      flows.push(node.base);
      continue;
    }
    if (d.caps.storage) {
      const p = d.caps.storage.params;
      const soc = d.caps.storage.state().socPct;
      if (soc === undefined) {
        notes.notes.push(`${d.id}: battery state of charge unknown, left out of the plan`);
        continue;
      }
      batteries.push({
        id: d.id,
        circuit,
        capacityWh: p.capacityWh,
        socMinWh: p.socMinWh,
        socMaxWh: p.socMaxWh,
        initialWh: (soc / 100) * p.capacityWh,
        maxChargeW: p.maxChargeW,
        maxDischargeW: p.maxDischargeW,
        chargeEfficiency: p.chargeEfficiency,
        dischargeEfficiency: p.dischargeEfficiency,
        cycleCostPerKwh: p.cycleCostPerKwh,
        limits,
      });
    } else if (d.caps.charger) {
      const ch = d.caps.charger;
      if (!PLUGGED.has(ch.status())) continue;
      const chargeMode = chargeModeOf(settings, yaml);
      const maxW = ch.maxCurrentA * ch.voltage * ch.phases;
      // a charger that switches to one phase charges from one phase's minimum
      const minW = ch.minCurrentA * ch.voltage * (ch.phaseSwitching ? 1 : ch.phases);
      if (chargeMode !== 'plan') {
        evs.push(modeModel(d.id, circuit, chargeMode, minW, maxW, now, limits, settings.paused === true, slots, flows, notes, ch.evCapacityWh ?? (typeof yaml.ev_capacity_wh === 'number' ? yaml.ev_capacity_wh : undefined), ch.session()?.energyWh ?? 0));
        continue;
      }
      const target = settings.target;
      const soc = ch.evSocPct();
      const delivered = ch.session()?.energyWh ?? 0;
      const room = soc !== undefined && ch.evCapacityWh ? (((100 - soc) / 100) * ch.evCapacityWh) / EV_CHARGE_EFFICIENCY : undefined;
      let until: number | undefined;
      try {
        until = target?.leave_time ? leaveInstant(target.leave_time, now, tz) : undefined;
      } catch (err) {
        notes.notes.push(`${d.id}: ${(err as Error).message}; planning to the horizon end`);
      }
      // a departure instant already past (a YAML target written for one day) sets no deadline
      if (until !== undefined && until <= now) {
        notes.notes.push(`${d.id}: leave_time ${target?.leave_time} has passed; planning to the horizon end`);
        until = undefined;
      }
      let need = 0;
      const mode: EvDefaultMode | undefined = target ? undefined : EV_DEFAULT_MODES.find((m) => m === yaml.default_mode) ?? DEFAULT_EV_MODE;
      let chargeNow = target?.charge_now === true || mode === 'now';
      if (target?.soc_pct !== undefined) {
        if (soc !== undefined && ch.evCapacityWh) need = Math.max(0, (((target.soc_pct - soc) / 100) * ch.evCapacityWh) / EV_CHARGE_EFFICIENCY);
        else if (target.energy_wh !== undefined) need = Math.max(0, target.energy_wh - delivered);
        else {
          chargeNow = true;
          notes.notes.push(`${d.id}: the car reports no state of charge, so its ${target.soc_pct} % target cannot be planned; charging at full power`);
        }
      } else if (target?.energy_wh !== undefined) need = Math.max(0, target.energy_wh - delivered);
      let session: EvSession | undefined = { from: now, until, energyNeededWh: need, roomWh: room };
      const setOne = `set a target with PUT /api/v1/devices/${d.id}/target`;
      if (mode === 'now') notes.notes.push(`${d.id}: no target set, charging at full power (default_mode: now; ${setOne})`);
      else if (mode === 'off') {
        session = undefined;
        notes.notes.push(`${d.id}: no target set, not charging (default_mode: off; ${setOne})`);
      } else if (mode === 'cheapest_fill') {
        // never beyond the car: what its SoC leaves, else its whole battery less this session's energy
        const capacityWh = ch.evCapacityWh ?? (typeof yaml.ev_capacity_wh === 'number' ? yaml.ev_capacity_wh : undefined);
        const fillRoom = room ?? Math.max(0, (capacityWh ?? DEFAULT_CAR_CAPACITY_WH) / EV_CHARGE_EFFICIENCY - delivered);
        session = { ...session, roomWh: fillRoom, fill: true };
        const size = capacityWh === undefined ? `an assumed ${DEFAULT_CAR_CAPACITY_WH / 1000} kWh battery (set ev_capacity_wh)` : soc === undefined ? `its ${capacityWh / 1000} kWh battery` : `its ${soc} % state of charge`;
        notes.notes.push(`${d.id}: no target set, filling up to ${(fillRoom / 1000).toFixed(1)} kWh (from ${size}) in the cheapest slots every deadline leaves (default_mode: cheapest_fill; ${setOne})`);
      }
      const ownSetpoints = limits?.setpointW;
      evs.push({
        id: d.id,
        circuit,
        minPowerW: minW,
        maxPowerW: maxW,
        sessions: session ? [session] : [],
        priceLimit: target?.price_limit,
        solarOnly: target?.solar_only,
        limits: chargeNow && !settings.paused ? { ...limits, setpointW: slots.map((s, t) => ownSetpoints?.[t] ?? (until === undefined || s.start < until ? maxW : undefined)) } : limits,
      });
    } else if (d.caps.thermostat) {
      const th = d.caps.thermostat;
      const model = th.model;
      const state = th.state();
      const modeSetting = typeof yaml.mode === 'string' ? yaml.mode : state.mode;
      const mode = modeSetting === 'heat' ? 'heat' : modeSetting === 'cool' ? 'cool' : undefined;
      const outdoor = outdoorForecast(yaml, slots, tz);
      const band = settings.comfort ? { minC: settings.comfort.min_c, maxC: settings.comfort.max_c } : th.band;
      if (!model || !mode || state.temperatureC === undefined || !outdoor) {
        notes.notes.push(`${d.id}: ${!model ? 'no room model' : !mode ? 'mode is neither cool nor heat' : state.temperatureC === undefined ? 'no room temperature' : 'no outdoor forecast (outdoor_min_c/outdoor_max_c)'}, left to its own thermostat`);
        continue;
      }
      hvacs.push({
        id: d.id,
        circuit,
        mode,
        rKPerKw: model.rKPerKw,
        cKwhPerK: model.cKwhPerK,
        cop: model.cop,
        maxElectricW: model.maxElectricW,
        initialC: state.temperatureC,
        outdoorC: outdoor,
        gainsW: slots.map(() => model.gainsW ?? 0),
        minC: slots.map(() => band.minC),
        maxC: slots.map(() => band.maxC),
        // a heat pump behind the thermostat: its COP follows the outdoor temperature
        ...(model.copCurve && mode === 'heat' ? { copPerSlot: outdoor.map((o) => heatingCop(o, model.copCurve!.sinkC, model.copCurve!.eta)) } : {}),
        limits,
      });
    } else if (d.caps.heatPump) {
      heatPumps.push(heatPumpModel(d, circuit, limits, slots, tz, inputs, notes));
    } else if (d.caps.switch) {
      const sw = d.caps.switch;
      const schedule = settings.schedule;
      if (!schedule && !settings.paused) continue;
      const runs: LoadRun[] = [];
      const window = schedule ? runWindow(schedule) : undefined;
      if (schedule?.hours !== undefined) {
        // without a window or end-by time, the hours are per local day
        for (const w of windowsBetween(window ?? { from: '00:00', to: '00:00' }, now, horizon.end, tz)) {
          // a later window the horizon only reaches into is planned once the horizon holds it (else every plan reports a false shortfall)
          if (w.start >= now && w.end > horizon.end) continue;
          const hours = hoursFor(schedule, w.start, tz);
          if (hours <= 0) continue;
          const doneH = w.start < now && sw.ratedPowerW > 0 ? inputs.history.drawnWh(d.id, w.start, now) / sw.ratedPowerW : 0;
          const left = Math.max(0, hours - doneH);
          if (left < 1 / 60) continue;
          const running = schedule.continuous === true && doneH > 1 / 60 && sw.isOn() === true;
          runs.push({ start: Math.max(w.start, now), end: w.end, hours: left, continuous: schedule.continuous, mustStartNow: running });
        }
      }
      // max_rate holds within the window (every window the horizon touches), or at any time without one
      const rateWindows = schedule?.max_rate !== undefined && window ? windowsBetween(window, now, horizon.end, tz) : undefined;
      loads.push({ id: d.id, circuit, ratedPowerW: sw.ratedPowerW, runs, onAtOrBelowRate: schedule?.max_rate, onAtOrBelowRateIn: rateWindows, limits });
    }
    // PV also on a device that is something else too (a hybrid inverter with its battery)
    if (d.caps.pv) {
      const pv = d.caps.pv.params;
      const longitude = config.site.longitude ?? standardMeridian(tz, now);
      let forecast: PowerForecast = clearSkyPvForecast({
        array: { kWp: pv.kWp, tilt: pv.tilt, azimuth: pv.azimuth, latitude: config.site.latitude ?? (typeof yaml.latitude === 'number' ? yaml.latitude : 50), longitude },
        timezone: tz,
        history: inputs.history.intervals([d.id], now, -1),
      });
      // a device measuring configured arrays takes their source's forecast (the clear sky stands in where it has none)
      const sourced = inputs.forecasts?.pvForDevice(d.id, forecast, now);
      if (sourced) {
        forecast = sourced.forecast;
        notes.notes.push(...sourced.notes);
      }
      notes.forecasts.pv.push(`${d.id}: ${forecast.name}`);
      // a hybrid inverter is already in the plan as a battery under its id: its PV is a flow of its own
      // an inverter that takes a power limit (or a socket that switches it off) is curtailable
      const curtailable = d.caps.curtail && d.available ? (d.caps.curtail.steps === 'off' ? ({ steps: 'off' } as const) : true) : undefined;
      flows.push({ id: d.caps.storage ? `${d.id}:pv` : d.id, circuit, powerW: forecast.powerW(slots).map((w) => -w), ...(curtailable ? { curtailable } : {}) });
    } else if (isBaseLoadMeter(d)) {
      baseMeters.push(d.id);
      if (typeof yaml.annual_kwh === 'number') annualHint = (annualHint ?? 0) + yaml.annual_kwh;
    }
  }

  // arrays no device measures are flows of their own
  for (const a of inputs.forecasts?.unmeteredArrays(now) ?? []) {
    notes.forecasts.pv.push(`array ${a.id}: ${a.forecast.name}`);
    notes.notes.push(...a.notes);
    flows.push({ id: `pv:${a.id}`, powerW: a.forecast.powerW(slots).map((w) => -w) });
  }

  // plan PV robustly: scaled by a high quantile of recent days' measured ÷ forecast (as the backtest does)
  const pvFlows = flows.filter((f) => f.powerW.some((w) => w < 0));
  const scale = pvFlows.length ? inputs.forecasts?.pvScale?.(now) : undefined;
  if (scale) {
    for (const f of pvFlows) f.powerW = f.powerW.map((w) => w * scale.factor);
    notes.pvScale = { mode: scale.mode, factor: scale.factor, quantile: scale.quantile, days: scale.ratios.length, flows: pvFlows.map((f) => f.id) };
    if (scale.mode === 'robust') {
      const pct = Math.round(scale.quantile * 100);
      notes.notes.push(
        scale.ratios.length >= ROBUST_MIN_DAYS
          ? `PV planned robustly: forecast × ${scale.factor.toFixed(2)} (the ${pct}th percentile of measured ÷ forecast PV over the last ${scale.ratios.length} days, at least 1)`
          : `PV planned with the forecast as it is (× 1): robust scaling needs ${ROBUST_MIN_DAYS} days of measured and forecast PV, ${scale.ratios.length} known`,
      );
    }
  }

  // ---------------------------------------------------------------- base load
  const source = baseLoadSource(inputs.devices.map((x) => x.device), config.site.grid_meter);
  const history = 'grid' in source ? inputs.history.houseLoad(source.grid, source.known, now) : inputs.history.intervals(baseMeters, now);
  const historyDays = history.length / 96;
  const meanW = history.length ? history.reduce((a, r) => a + r.wh, 0) / (history.length / 4) : 0;
  const annualKwh = historyDays >= 1 ? Math.round((meanW * 8760) / 1000) : (annualHint ?? 4000);
  const fallback = standardProfileLoad({ annualKwh, timezone: tz });
  const loadCfg = config.forecasts?.load;
  const outdoorC = loadCfg?.temperature !== false ? inputs.forecasts?.outdoorC?.bind(inputs.forecasts) : undefined;
  const base = !baseMeters.length && !('grid' in source)
    ? fallback
    : loadCfg?.model === 'same_weekday'
      ? historyLoadForecast({ history, timezone: tz, fallback })
      : learnedLoadForecast({ history, timezone: tz, fallback, days: loadCfg?.days, halfLifeDays: loadCfg?.half_life_days, holidays: loadCfg?.holidays, outdoorC });
  notes.forecasts.baseLoad = 'grid' in source ? `${base.name}, learnt from the grid meter (${source.grid.map((k) => k.split(':')[0]).join(', ')}) less the planned devices` : base.name;

  const problem: SiteProblem = { slots, importRate: imp.rates, exportRate: exp.rates, baseLoadW: base.powerW(slots), flows, grid, circuits, batteries, evs, hvacs, loads, ...(heatPumps.length ? { heatPumps } : {}) };
  // the bill beyond per-kWh rates: capacity charges and export rules (issue 17)
  const composed = composedTariff(inputs.prices);
  const terms = composed?.terms();
  if (composed && terms && (terms.capacity || terms.exportRules.capW !== null || terms.exportRules.noPayAtNegativePrice)) {
    const siteImport = siteNetImport(inputs.history, inputs.devices.map((x) => x.device), source, now);
    const components = terms.exportRules.noPayAtNegativePrice ? composed.components(horizon) : undefined;
    notes.notes.push(...applyBillTerms(problem, terms, { now, siteImport, components }));
  }
  return { problem, notes };
}

/**
 * A heat pump as the plan sees it: its tank (from the measured temperature, draw-offs by the
 * configured daily profile, COP at the tank's maximum as sink) and its rooms (the HVAC room model
 * in heat mode, COP per slot from the outdoor temperature at the flow temperature).
 */
function heatPumpModel(d: Device, circuit: string | undefined, limits: DeviceLimits | undefined, slots: PlanSlot[], tz: string, inputs: ModelInputs, notes: ModelNotes): HeatPumpModel {
  const hp = d.caps.heatPump!;
  const p = hp.params;
  const space = p.space;
  const sine = space ? outdoorForecast({ outdoor_min_c: space.outdoorMinC, outdoor_max_c: space.outdoorMaxC }, slots, tz) : undefined;
  // the forecast service's outdoor temperature where it has one, else the configured daily sinusoid, else 10 °C
  const outdoorC = slots.map((s, t) => inputs.forecasts?.outdoorC?.((s.start + s.end) / 2) ?? sine?.[t] ?? 10);
  const model: HeatPumpModel = { id: d.id, circuit, maxElectricW: p.maxElectricW, sgReady: { allowBlock: p.allowBlock, boostState: p.boostState }, limits };
  if (p.tank) {
    const k = p.tank;
    let initialC = hp.tankC();
    if (initialC === undefined) {
      initialC = k.minC;
      notes.notes.push(`${d.id}: no tank temperature measured, planned as if at its ${k.minC} °C minimum`);
    }
    model.tank = {
      volumeL: k.volumeL,
      initialC,
      minC: slots.map(() => k.minC),
      maxC: k.maxC,
      lossWPerK: k.lossWPerK,
      ambientC: k.ambientC,
      drawWh: drawPerSlot(k.drawProfile ?? DRAW_PROFILE_M, k.drawKwhPerDay, slots, tz),
      cop: outdoorC.map((o) => (k.heater === 'resistive' ? 1 : heatingCop(o, k.maxC, p.copEta))),
      maxElectricW: k.heaterW,
    };
    if (k.heater === 'resistive') model.maxElectricW = Math.max(model.maxElectricW, k.heaterW);
  }
  if (space) {
    let initialC = hp.roomC();
    if (initialC === undefined) {
      initialC = space.band.minC + 0.5;
      notes.notes.push(`${d.id}: no room temperature measured, planned as if at ${initialC} °C`);
    }
    model.space = {
      rKPerKw: space.model.rKPerKw,
      cKwhPerK: space.model.cKwhPerK,
      cop: heatingCop(outdoorC[0], space.flowC, p.copEta),
      copPerSlot: outdoorC.map((o) => heatingCop(o, space.flowC, p.copEta)),
      initialC,
      outdoorC,
      gainsW: slots.map(() => space.model.gainsW),
      minC: slots.map(() => space.band.minC),
      maxC: slots.map(() => space.band.maxC),
    };
  }
  return model;
}

/**
 * A charger in one of evcc's modes, as the plan sees it: `off` draws nothing, `now` full power, `pv`
 * fills the car from surplus only, `minpv` draws its minimum in every slot (a fixed flow) and fills the
 * rest from surplus. What minpv and pv draw from minute to minute is the surplus dispatcher's to say.
 */
function modeModel(id: string, circuit: string | undefined, mode: Exclude<EvChargeMode, 'plan'>, minW: number, maxW: number, now: EpochMs, limits: DeviceLimits | undefined, paused: boolean, slots: PlanSlot[], flows: FixedFlow[], notes: ModelNotes, capacityWh: number | undefined, deliveredWh: number): EvModel {
  const roomWh = Math.max(0, (capacityWh ?? DEFAULT_CAR_CAPACITY_WH) / EV_CHARGE_EFFICIENCY - deliveredWh);
  const fill: EvSession = { from: now, energyNeededWh: 0, roomWh, fill: true };
  if (mode === 'off') {
    notes.notes.push(`${id}: charge_mode off, not charging`);
    return { id, circuit, minPowerW: minW, maxPowerW: maxW, sessions: [], limits };
  }
  if (mode === 'now') {
    notes.notes.push(`${id}: charge_mode now, charging at full power`);
    return { id, circuit, minPowerW: minW, maxPowerW: maxW, sessions: [fill], limits: paused ? limits : { ...limits, setpointW: slots.map((_, t) => limits?.setpointW?.[t] ?? maxW) } };
  }
  if (mode === 'minpv' && !paused) {
    flows.push({ id: `${id}:min`, circuit, powerW: slots.map(() => minW) });
    notes.notes.push(`${id}: charge_mode minpv, ${minW} W in every slot plus PV surplus (followed live every few seconds)`);
    return { id, circuit, minPowerW: 0, maxPowerW: Math.max(0, maxW - minW), sessions: [{ ...fill, roomWh: Math.max(0, roomWh - minW * ((slots[slots.length - 1].end - now) / HOUR)) }], solarOnly: true, limits };
  }
  notes.notes.push(`${id}: charge_mode pv, only PV surplus from ${minW} W (followed live every few seconds)`);
  return { id, circuit, minPowerW: minW, maxPowerW: maxW, sessions: [fill], solarOnly: true, limits };
}

/** The longitude of a time zone's standard meridian (15° per hour of its winter offset), when the site's is not configured. */
function standardMeridian(timezone: string, now: EpochMs): number {
  const jan = DateTime.fromMillis(now, { zone: timezone }).set({ month: 1, day: 15 });
  return (jan.offset / 60) * 15;
}

/** The id of the fixed part (base load) of a child hub in the plan: `<device>.base`. */
export const nodeBaseId = (id: string) => `${id}.base`;

/**
 * A child hub as the planner sees it: its must-have import as a fixed flow, the rest as an EV whose
 * sessions are its needs by deadline (sorted; each need is planned in the window after the one
 * before it) and whose power per slot is what the child could use above its must-have.
 */
export function nodeModel(id: string, circuit: string | undefined, flex: NodeFlexibility, slots: readonly PlanSlot[]): { ev: EvModel; base: FixedFlow } {
  const at = (t: number) => flex.slots.find((s) => s.start <= slots[t].start && slots[t].start < s.end);
  const minW = slots.map((_, t) => at(t)?.minW ?? 0);
  const roomW = slots.map((_, t) => {
    const s = at(t);
    return s ? Math.max(0, s.maxW - s.minW) : 0;
  });
  const needs = [...flex.needs].sort((a, b) => a.until - b.until);
  let from = slots[0].start;
  const sessions: EvSession[] = [];
  for (const n of needs) {
    if (n.until <= from) {
      // a deadline at the same time as the one before: its energy joins that window
      if (sessions.length) sessions[sessions.length - 1].energyNeededWh += n.energyWh;
      continue;
    }
    sessions.push({ from, until: n.until, energyNeededWh: n.energyWh });
    from = n.until;
  }
  const maxPowerW = Math.max(0, ...roomW);
  return { ev: { id, circuit, minPowerW: 0, maxPowerW, sessions, limits: { maxImportW: roomW } }, base: { id: nodeBaseId(id), circuit, powerW: minW } };
}
