import type { Direction, EpochMs, TariffRate } from '../api/index.js';
import { DAY, HOUR, MINUTE, parseRfc3339 } from '../api/time.js';
export { DAY, HOUR, MINUTE } from '../api/time.js';

/**
 * Meter records as the store keeps them. A record belongs to a *subject*: a device (`d.<id>`), a
 * device's extra meter channel (`d.<id>:<channel>`), the site's grid connection (`l.<site id>`), or
 * a baseline profile written by the control loop (`b.<id>`).
 */
/** Pre-aggregated buckets are this long; every local midnight of every modern time zone falls on this grid. */
export const BUCKET_MS = 15 * MINUTE;
/** Longest interval one record may cover; queries look this far back for records reaching into their window. */
export const MAX_RECORD_MS = 31 * DAY;

export const DIRECTIONS: readonly Direction[] = ['IMPORT', 'EXPORT'];
export const TARIFF_RATES: readonly TariffRate[] = ['IMPORT', 'EXPORT', 'LOCAL'];

/** Bit layout of a row's flags: bit 0 direction, bits 1-2 tariff rate, bit 3 register point. */
export const FLAG_EXPORT = 1;
export const FLAG_REGISTER = 8;
export const RATE_CODE: Record<TariffRate, number> = { IMPORT: 0, EXPORT: 1, LOCAL: 2 };
export const RATE_OF_CODE: TariffRate[] = ['IMPORT', 'EXPORT', 'LOCAL'];

export const flagsOf = (direction: Direction, tariffRate: TariffRate, register = false) =>
  (direction === 'EXPORT' ? FLAG_EXPORT : 0) | (RATE_CODE[tariffRate] << 1) | (register ? FLAG_REGISTER : 0);
export const directionOf = (flags: number): Direction => (flags & FLAG_EXPORT ? 'EXPORT' : 'IMPORT');
export const tariffRateOf = (flags: number): TariffRate => RATE_OF_CODE[(flags >> 1) & 3];
export const isRegister = (flags: number) => (flags & FLAG_REGISTER) !== 0;
/** 0..5: direction × tariff rate, the index of a flow in dense per-bucket arrays. */
export const flowOf = (flags: number) => flags & 7;

/**
 * The six energy flows by name, `FLOW[direction][tariff rate]` = the flow's index (`flowOf`):
 * `FLOW.EXPORT.IMPORT` is energy supplied to the premises (a battery's discharge), valued at the
 * import rate; `FLOW.IMPORT.LOCAL` is energy taken in from the premises' own PV, free.
 */
export const FLOW: Readonly<Record<Direction, Readonly<Record<TariffRate, number>>>> = Object.fromEntries(
  DIRECTIONS.map((d) => [d, Object.fromEntries(TARIFF_RATES.map((r) => [r, flagsOf(d, r)]))]),
) as Record<Direction, Record<TariffRate, number>>;
/** Every flow of one direction (any tariff rate), e.g. all the energy a device took in. */
export const FLOWS_OF: Readonly<Record<Direction, ReadonlySet<number>>> = {
  IMPORT: new Set(TARIFF_RATES.map((r) => FLOW.IMPORT[r])),
  EXPORT: new Set(TARIFF_RATES.map((r) => FLOW.EXPORT[r])),
};
export const ALL_FLOWS: ReadonlySet<number> = new Set([...FLOWS_OF.IMPORT, ...FLOWS_OF.EXPORT]);

/**
 * One operation on the store. `put` stores an interval (value = energy in Wh over `[start, end)`) or
 * a register point (`start === end`, value = register reading in Wh); `del` removes the row with the
 * same key (cumulative readings arriving out of order re-split an interval).
 */
export interface RowOp {
  op: 'put' | 'del';
  subject: string;
  start: EpochMs;
  end: EpochMs;
  flags: number;
  value: number;
  confidence: number;
  session: string | null;
  ref: string | null;
}

export const deviceSubject = (id: string) => `d.${id}`;
export const locationSubject = (id: string) => `l.${id}`;

/** The id a client used (device id, `device:channel`, location id) for a subject. */
export const subjectId = (subject: string) => subject.slice(2);
export const subjectKind = (subject: string): 'device' | 'location' => (subject[0] === 'l' ? 'location' : 'device');

/** Ids a client may use for devices and sessions: safe in file names, no path tricks. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;

/** UTC month (`YYYY-MM`) of an instant: the partition a row starting then is kept in. */
export function monthOf(t: EpochMs): string {
  const d = new Date(t);
  const m = d.getUTCMonth() + 1;
  return `${d.getUTCFullYear()}-${m < 10 ? '0' : ''}${m}`;
}

export function monthStart(month: string): EpochMs {
  return Date.UTC(Number(month.slice(0, 4)), Number(month.slice(5, 7)) - 1, 1);
}

export function nextMonth(month: string): string {
  const y = Number(month.slice(0, 4));
  const m = Number(month.slice(5, 7));
  return m === 12 ? `${y + 1}-01` : `${y}-${m < 9 ? '0' : ''}${m + 1}`;
}

/** Months whose partitions may hold rows overlapping `[start, end)`. */
export function monthsFor(start: EpochMs, end: EpochMs): string[] {
  const out: string[] = [];
  const last = monthOf(Math.max(start, end - 1));
  for (let m = monthOf(start - MAX_RECORD_MS); ; m = nextMonth(m)) {
    out.push(m);
    if (m >= last) break;
  }
  return out;
}

// ------------------------------------------------------------------ validating API input

/** A field of one record was wrong; `field` names it as the client wrote it. */
export class FieldError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'FieldError';
  }
}

/** Parses an RFC 3339 time with an explicit offset (`parseRfc3339`, the hub's one parser), naming the field when it is not one. */
export function parseTime(value: unknown, field: string): EpochMs {
  if (typeof value !== 'string') throw new FieldError(field, `must be an RFC 3339 time such as "2024-08-01T17:00:00Z"${value === undefined ? ' (missing)' : ''}`);
  const parsed = parseRfc3339(value);
  if (parsed.ok) return parsed.t;
  if (parsed.problem === 'calendar') throw new FieldError(field, `"${value}" is not a valid date and time`);
  if (parsed.problem === 'offset') throw new FieldError(field, `"${value}" has an invalid offset`);
  throw new FieldError(field, `"${value}" is not an RFC 3339 time with an offset, such as "2024-08-01T17:00:00Z" or "2024-08-01T19:00:00+02:00"`);
}

/** Records are kept for instants in this range (the 15-minute bucket index is unsigned). */
export const EARLIEST = Date.UTC(1970, 0, 1);
export const LATEST = Date.UTC(2100, 0, 1);
/** One record holds at most 1 GWh: more is a unit mistake. */
export const MAX_RECORD_WH = 1e9;

const inRange = (t: EpochMs, field: string): EpochMs => {
  if (t < EARLIEST || t >= LATEST) throw new FieldError(field, `must lie between 1970 and 2100 (got ${new Date(t).toISOString()})`);
  return t;
};

const oneOf = <T extends string>(value: unknown, field: string, allowed: readonly T[], fallback?: T): T => {
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw new FieldError(field, `is required (one of ${allowed.join(', ')})`);
  }
  const v = typeof value === 'string' ? (value.toUpperCase() as T) : undefined;
  if (v === undefined || !allowed.includes(v)) throw new FieldError(field, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  return v;
};

const optionalId = (value: unknown, field: string): string | null => {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new FieldError(field, `must be 1-128 letters, digits or _ . : @ - starting with a letter or digit (got ${JSON.stringify(value)})`);
  }
  return value;
};

const optionalRef = (value: unknown, field: string): string | null => {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') throw new FieldError(field, `must be a string (got ${JSON.stringify(value)})`);
  if (value.length > 128) throw new FieldError(field, `is ${value.length} characters long; at most 128 are kept`);
  return value;
};

const finiteNumber = (value: unknown, field: string): number => {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new FieldError(field, `must be a number (got ${JSON.stringify(value)})`);
  return n;
};

export const INTERVAL_UNITS = ['W', 'KW', 'WH', 'KWH'] as const;
export type IntervalUnits = (typeof INTERVAL_UNITS)[number];

/** Energy in Wh of a value in `units` held over `durationMs` (W and KW are the mean power over the interval). */
export function energyWh(value: number, units: IntervalUnits, durationMs: number): number {
  switch (units) {
    case 'W':
      return (value * durationMs) / HOUR;
    case 'KW':
      return (value * 1000 * durationMs) / HOUR;
    case 'WH':
      return value;
    case 'KWH':
      return value * 1000;
  }
}

const INTERVAL_FIELDS = new Set([
  'location_id', 'device_id', 'units', 'value', 'start_time', 'end_time', 'direction', 'tariff_rate',
  'measurand', 'confidence', 'session_reference_id', 'record_reference_id',
]);

/** The site a hub serves, for resolving `location_id` and `device_id`. */
export interface SubjectScope {
  locationId: string;
}

/** Resolves a record's owner: `device_id` wins over `location_id` (as in FlatPeak); a foreign location is refused. */
export function subjectFor(rec: Record<string, unknown>, scope: SubjectScope): string {
  if (rec.location_id !== undefined && rec.location_id !== null && rec.location_id !== scope.locationId) {
    throw new FieldError('location_id', `unknown location ${JSON.stringify(rec.location_id)}; this hub's location is "${scope.locationId}" (site.id)`);
  }
  const device = optionalId(rec.device_id, 'device_id');
  if (device) return deviceSubject(device);
  if (rec.location_id === undefined || rec.location_id === null) throw new FieldError('device_id', 'device_id or location_id is required');
  return locationSubject(scope.locationId);
}

/** Turns one `PUT /meters/interval` record into a store row, or throws a FieldError naming what is wrong. */
export function parseIntervalRecord(input: unknown, scope: SubjectScope): RowOp {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new FieldError('record', 'must be a JSON object');
  const rec = input as Record<string, unknown>;
  for (const k in rec) if (!INTERVAL_FIELDS.has(k)) throw new FieldError(k, `unknown field (known: ${[...INTERVAL_FIELDS].join(', ')})`);
  const subject = subjectFor(rec, scope);
  const units = oneOf(rec.units, 'units', INTERVAL_UNITS);
  const value = finiteNumber(rec.value, 'value');
  if (value < 0) throw new FieldError('value', `must not be negative (got ${value}); energy out of a device is sent with direction EXPORT`);
  const start = inRange(parseTime(rec.start_time, 'start_time'), 'start_time');
  const end = inRange(parseTime(rec.end_time, 'end_time'), 'end_time');
  if (end <= start) throw new FieldError('end_time', `must be after start_time (${rec.start_time as string})`);
  if (end - start > MAX_RECORD_MS) throw new FieldError('end_time', `a record may cover at most 31 days; split longer periods into several records`);
  const direction = oneOf(rec.direction, 'direction', DIRECTIONS, 'IMPORT');
  const tariffRate = oneOf(rec.tariff_rate, 'tariff_rate', TARIFF_RATES, direction);
  if (rec.measurand !== undefined && rec.measurand !== 'TRANSFERRED') throw new FieldError('measurand', `only TRANSFERRED is supported (got ${JSON.stringify(rec.measurand)})`);
  const wh = energyWh(value, units, end - start);
  if (wh > MAX_RECORD_WH) throw new FieldError('value', `${wh} Wh in one record is beyond any meter (at most ${MAX_RECORD_WH} Wh); check units (${units})`);
  let confidence = 1;
  if (rec.confidence !== undefined && rec.confidence !== null) {
    confidence = finiteNumber(rec.confidence, 'confidence');
    if (!(confidence > 0 && confidence <= 1)) throw new FieldError('confidence', `must be above 0 and at most 1 (1 = measured, below 1 = forecast); got ${confidence}`);
  }
  return {
    op: 'put',
    subject,
    start,
    end,
    flags: flagsOf(direction, tariffRate),
    value: wh,
    confidence,
    session: optionalId(rec.session_reference_id, 'session_reference_id'),
    ref: optionalRef(rec.record_reference_id, 'record_reference_id'),
  };
}

/** A register reading of `PUT /meters/cumulative/epoch`, already in Wh and epoch ms. */
export interface RegisterReading {
  time: EpochMs;
  valueWh: number;
  ref: string | null;
  /** Index in the submitted `data` array. */
  index: number;
}

export interface CumulativeRequest {
  subject: string;
  direction: Direction;
  tariffRate: TariffRate;
  session: string | null;
  readings: RegisterReading[];
  failed: { record_num: number; record_reference_id: string | null; error: string }[];
  submitted: number;
}

const CUMULATIVE_FIELDS = new Set(['location_id', 'device_id', 'session_reference_id', 'direction', 'tariff_rate', 'units', 'data', 'measurand']);
const READING_FIELDS = new Set(['time', 'value', 'record_reference_id']);
export const MAX_BATCH = 10_000;

/** Validates a `PUT /meters/cumulative/epoch` body: the envelope must be right; each bad reading is listed and skipped. */
export function parseCumulative(input: unknown, scope: SubjectScope): CumulativeRequest {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new FieldError('body', 'must be a JSON object {location_id, device_id, direction, tariff_rate, units, data:[{time, value}]}');
  const body = input as Record<string, unknown>;
  for (const k in body) if (!CUMULATIVE_FIELDS.has(k)) throw new FieldError(k, `unknown field (known: ${[...CUMULATIVE_FIELDS].join(', ')})`);
  const subject = subjectFor(body, scope);
  const direction = oneOf(body.direction, 'direction', DIRECTIONS, 'IMPORT');
  const tariffRate = oneOf(body.tariff_rate, 'tariff_rate', TARIFF_RATES, direction);
  const units = oneOf(body.units, 'units', ['WH', 'KWH'] as const, 'WH');
  if (body.measurand !== undefined && body.measurand !== 'TRANSFERRED') throw new FieldError('measurand', `only TRANSFERRED is supported (got ${JSON.stringify(body.measurand)})`);
  const session = optionalId(body.session_reference_id, 'session_reference_id');
  if (!Array.isArray(body.data)) throw new FieldError('data', 'must be an array of register readings [{time: <unix seconds>, value: <register>}]');
  if (body.data.length > MAX_BATCH) throw new FieldError('data', `has ${body.data.length} readings; at most ${MAX_BATCH} are accepted per request`);
  const readings: RegisterReading[] = [];
  const failed: CumulativeRequest['failed'] = [];
  body.data.forEach((raw: unknown, index: number) => {
    const r = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    let ref: string | null = null;
    try {
      ref = optionalRef(r.record_reference_id, 'record_reference_id');
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new FieldError('reading', 'must be an object {time, value}');
      for (const k in r) if (!READING_FIELDS.has(k)) throw new FieldError(k, `unknown field (known: time, value, record_reference_id)`);
      const seconds = finiteNumber(r.time, 'time');
      if (seconds < EARLIEST / 1000 || seconds >= LATEST / 1000) throw new FieldError('time', `must be Unix time in seconds between 1970 and 2100 (got ${seconds}${seconds > 1e11 ? '; milliseconds?' : ''})`);
      const value = finiteNumber(r.value, 'value');
      if (value < 0) throw new FieldError('value', `a register reading cannot be negative (got ${value})`);
      readings.push({ time: Math.round(seconds * 1000), valueWh: units === 'KWH' ? value * 1000 : value, ref, index });
    } catch (err) {
      failed.push({ record_num: index, record_reference_id: ref, error: (err as Error).message });
    }
  });
  return { subject, direction, tariffRate, session, readings, failed, submitted: body.data.length };
}
