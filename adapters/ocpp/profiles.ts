import type { ChargerLimit, EpochMs } from '../../src/api/index.js';

export type ProfilePurpose = 'TxProfile' | 'TxDefaultProfile' | 'ChargePointMaxProfile';
export type RateUnit = 'A' | 'W';

/** The per-charger choices real chargers need (stack level, purpose, kind, unit, phases). */
export interface ProfileSettings {
  purpose: ProfilePurpose;
  stackLevel: number;
  rateUnit: RateUnit;
  kind: 'Absolute' | 'Relative';
  profileId: number;
  /** ChargingScheduleMaxPeriods of the charger, if known. */
  maxPeriods?: number;
  /** Send numberPhases with every period. */
  numberPhases: boolean;
}

export interface ChargerElectrics {
  phases: 1 | 3;
  voltage: number;
  minCurrentA: number;
  maxCurrentA: number;
}

/** One step of the schedule the charger will follow. */
export interface SchedulePeriod {
  /** Seconds from the schedule's start. */
  startPeriod: number;
  /** A per phase (0.1 A steps) or W (whole watts). */
  limit: number;
  numberPhases?: number;
}

export interface ChargingScheduleSpec {
  start: EpochMs;
  rateUnit: RateUnit;
  periods: SchedulePeriod[];
  /** Seconds the schedule lasts (until the plan's validity ends). */
  durationS?: number;
  validTo?: EpochMs;
}

/** Chargers clocks drift; a schedule that starts a minute early still covers "now" on them. */
export const CLOCK_SKEW_MS = 60_000;

/** ISO 8601 without milliseconds: some chargers refuse fractional seconds. */
export const ocppTime = (t: EpochMs) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Total watts → the charger's rate: A per phase rounded down to 0.1 A (never above the plan, so
 * circuit limits hold), W rounded down to whole watts; below the minimum current means pause (0),
 * above the maximum is capped.
 */
export function chargingRate(watts: number, unit: RateUnit, phases: 1 | 3, el: ChargerElectrics): number {
  if (!(watts > 0)) return 0;
  const amps = Math.min(watts / (el.voltage * phases), el.maxCurrentA);
  if (amps + 1e-9 < el.minCurrentA) return 0;
  if (unit === 'A') return tenthsSafe(Math.max(el.minCurrentA, Math.floor(amps * 10 + 1e-6) / 10), el.minCurrentA);
  const minW = Math.ceil(el.minCurrentA * el.voltage * phases);
  return Math.max(minW, Math.floor(Math.min(watts, el.maxCurrentA * el.voltage * phases) + 1e-6));
}

/**
 * Charger firmware often checks `multipleOf: 0.1` naively (x / 0.1 must be a whole double), which
 * refuses 7.1 (70.99999999999999): step down (at most 0.2 A) to a value such checks accept.
 */
export function tenthsSafe(amps: number, minA = 0): number {
  let tenths = Math.round(amps * 10);
  while (tenths > 0 && !Number.isInteger(tenths / 10 / 0.1)) tenths--;
  if (tenths / 10 + 1e-9 < minA) {
    tenths = Math.round(amps * 10);
    while (!Number.isInteger(tenths / 10 / 0.1)) tenths++;
  }
  return tenths / 10;
}

/** The plan's limit and its future steps as one schedule from `now`, cut at `validUntil` and at the charger's period limit. */
export function chargingSchedule(limit: ChargerLimit, settings: Pick<ProfileSettings, 'rateUnit' | 'maxPeriods' | 'numberPhases' | 'kind'>, el: ChargerElectrics, now: EpochMs): ChargingScheduleSpec {
  if (limit.validUntil !== undefined && limit.validUntil <= now) throw new RangeError(`the limit expired at ${ocppTime(limit.validUntil)}`);
  if (!(limit.watts >= 0)) throw new RangeError(`limit ${limit.watts} W is not a power`);
  const phases = limit.phases ?? el.phases;
  const start = Math.floor((now - CLOCK_SKEW_MS) / 1000) * 1000;
  // the step in force now is the last one that began at or before now
  let current = limit.watts;
  const future: { start: EpochMs; watts: number }[] = [];
  for (const step of [...(limit.schedule ?? [])].sort((a, b) => a.start - b.start)) {
    if (step.start <= now) current = step.watts;
    else if (limit.validUntil === undefined || step.start < limit.validUntil) future.push(step);
  }
  const period = (at: EpochMs, watts: number): SchedulePeriod => ({
    startPeriod: Math.max(0, Math.round((at - start) / 1000)),
    limit: chargingRate(watts, settings.rateUnit, phases, el),
    ...(settings.numberPhases ? { numberPhases: phases } : {}),
  });
  let periods = [period(start, current)];
  // a Relative schedule counts from the transaction's start, which the plan does not know: send the limit alone
  if (settings.kind === 'Absolute') {
    for (const step of future) {
      const p = period(step.start, step.watts);
      if (p.limit !== periods[periods.length - 1].limit && p.startPeriod > periods[periods.length - 1].startPeriod) periods.push(p);
    }
  }
  let durationS = limit.validUntil !== undefined ? Math.ceil((limit.validUntil - start) / 1000) : undefined;
  if (settings.maxPeriods !== undefined && settings.maxPeriods > 0 && periods.length > settings.maxPeriods) {
    // the charger cannot hold the whole plan: end the schedule where the first left-out period begins, so it falls back by itself
    durationS = periods[settings.maxPeriods].startPeriod;
    periods = periods.slice(0, settings.maxPeriods);
  }
  if (settings.kind === 'Relative') durationS = limit.validUntil !== undefined ? Math.ceil((limit.validUntil - now) / 1000) : undefined;
  return { start, rateUnit: settings.rateUnit, periods, durationS, validTo: limit.validUntil };
}

/** OCPP 1.6 SetChargingProfile.req for the schedule. */
export function setChargingProfile16(spec: ChargingScheduleSpec, settings: ProfileSettings, connectorId: number, transactionId?: number) {
  const profile: Record<string, unknown> = {
    chargingProfileId: settings.profileId,
    stackLevel: settings.stackLevel,
    chargingProfilePurpose: settings.purpose,
    chargingProfileKind: settings.kind,
    ...(settings.purpose === 'TxProfile' && transactionId !== undefined ? { transactionId } : {}),
    ...(spec.validTo !== undefined ? { validTo: ocppTime(spec.validTo) } : {}),
    chargingSchedule: {
      ...(spec.durationS !== undefined ? { duration: spec.durationS } : {}),
      ...(settings.kind === 'Absolute' ? { startSchedule: ocppTime(spec.start) } : {}),
      chargingRateUnit: spec.rateUnit,
      chargingSchedulePeriod: spec.periods,
    },
  };
  return { connectorId: settings.purpose === 'ChargePointMaxProfile' ? 0 : connectorId, csChargingProfiles: profile };
}

/** OCPP 2.0.1 SetChargingProfile.req for the schedule (one schedule in a list, purposes renamed). */
export function setChargingProfile201(spec: ChargingScheduleSpec, settings: ProfileSettings, evseId: number, transactionId?: string) {
  const purpose = settings.purpose === 'ChargePointMaxProfile' ? 'ChargingStationMaxProfile' : settings.purpose;
  return {
    evseId: settings.purpose === 'ChargePointMaxProfile' ? 0 : evseId,
    chargingProfile: {
      id: settings.profileId,
      stackLevel: settings.stackLevel,
      chargingProfilePurpose: purpose,
      chargingProfileKind: settings.kind,
      ...(settings.purpose === 'TxProfile' && transactionId !== undefined ? { transactionId } : {}),
      ...(spec.validTo !== undefined ? { validTo: ocppTime(spec.validTo) } : {}),
      chargingSchedule: [
        {
          id: settings.profileId,
          ...(spec.durationS !== undefined ? { duration: spec.durationS } : {}),
          ...(settings.kind === 'Absolute' ? { startSchedule: ocppTime(spec.start) } : {}),
          chargingRateUnit: spec.rateUnit,
          chargingSchedulePeriod: spec.periods,
        },
      ],
    },
  };
}

/** The limit a stored profile asks for at `t` in W, or undefined when it no longer applies (used by the simulated charge point). */
export function profileWattsAt(
  profile: { validTo?: string; chargingSchedule: { startSchedule?: string; duration?: number; chargingRateUnit: string; chargingSchedulePeriod: { startPeriod: number; limit: number; numberPhases?: number }[] } },
  t: EpochMs,
  relativeStart: EpochMs,
  voltage: number,
  defaultPhases: number,
): number | undefined {
  if (profile.validTo && Date.parse(profile.validTo) <= t) return undefined;
  const s = profile.chargingSchedule;
  const start = s.startSchedule ? Date.parse(s.startSchedule) : relativeStart;
  const offset = (t - start) / 1000;
  if (offset < 0 || (s.duration !== undefined && offset >= s.duration)) return undefined;
  let found: { limit: number; numberPhases?: number } | undefined;
  for (const p of s.chargingSchedulePeriod) if (p.startPeriod <= offset) found = p;
  if (!found) return undefined;
  return s.chargingRateUnit === 'W' ? found.limit : found.limit * voltage * (found.numberPhases ?? defaultPhases);
}

/**
 * What a schedule holds the charger to from `from` until `to`: the limit at `from`, then each change
 * (a new period, or the schedule ending) with its time. Two schedules that say the same here differ
 * only in when they were written and how long they last.
 */
export function heldBetween(spec: ChargingScheduleSpec, from: EpochMs, to: EpochMs): string {
  const end = Math.min(spec.durationS !== undefined ? spec.start + spec.durationS * 1000 : Infinity, spec.validTo ?? Infinity);
  const steps = spec.periods.map((p) => ({ at: spec.start + p.startPeriod * 1000, limit: p.limit }));
  const at = (t: EpochMs) => (t >= end ? null : ([...steps].reverse().find((s) => s.at <= t)?.limit ?? null));
  const changes = [...steps.map((s) => s.at), end].filter((t) => t > from && t < to).sort((a, b) => a - b);
  const out: [EpochMs | 'from', number | null][] = [['from', at(from)]];
  for (const t of changes) if (at(t) !== out[out.length - 1][1]) out.push([t, at(t)]);
  return JSON.stringify(out);
}
