import { badRequest, type EpochMs } from '../api/index.js';

/** One step of an external schedule: from `time` until the next entry (EVerest ScheduleReqEntry). */
export interface LimitEntry {
  time: EpochMs;
  /** null in a setpoint schedule: no setpoint from here on (the plan decides again). */
  watts: number | null;
}

/**
 * External limits on one node (the site, a circuit) or one device (EVerest's ExternalLimits):
 * `import`/`export` cap the net power through it, `setpoints` fix a device's power
 * (+ = draw, − = deliver). The first entry applies from now even if stamped later; the last holds
 * after the series ends. An empty or missing list means no external limit.
 */
export interface ExternalLimits {
  import?: LimitEntry[];
  export?: LimitEntry[];
  setpoints?: LimitEntry[];
  /**
   * After this instant none of the above holds any more: the node falls back to its configured
   * safe limit (`fallback_import_w`/`fallback_export_w`), a device to the plan's own choice.
   * Absent: the last entry holds for ever.
   */
  validUntil?: EpochMs;
  updatedAt: EpochMs;
}

/** The stored (JSON) form, as sent over the API. */
export interface StoredLimits {
  schedule_import?: { timestamp: string; total_power_W: number }[];
  schedule_export?: { timestamp: string; total_power_W: number }[];
  schedule_setpoints?: { timestamp: string; total_power_W: number | null }[];
  valid_until?: string;
  updated_at: string;
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/;

const KEYS = ['schedule_import', 'schedule_export', 'schedule_setpoints'] as const;

/**
 * Checks a `PUT /limits/{id}` body and returns it normalised. Errors name the field:
 * `schedule_import[2].timestamp: …`. `allowSetpoints` is true only for devices.
 */
export function parseLimitsBody(body: unknown, allowSetpoints: boolean, now: EpochMs): StoredLimits {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body', 'must be an object with schedule_import, schedule_export or schedule_setpoints');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!(KEYS as readonly string[]).includes(k) && k !== 'valid_until') throw badRequest(k, `unknown field (valid: ${KEYS.join(', ')}, valid_until)`);
  }
  if (!KEYS.some((k) => k in b)) throw badRequest('body', `give at least one of ${KEYS.join(', ')} (an empty list clears it)`);
  if ('schedule_setpoints' in b && !allowSetpoints) throw badRequest('schedule_setpoints', 'setpoints apply to a device; this is a site or circuit');
  const out: StoredLimits = { updated_at: new Date(now).toISOString() };
  if (b.valid_until !== undefined) {
    const v = b.valid_until;
    const t = typeof v === 'string' ? Date.parse(v) : NaN;
    if (typeof v !== 'string' || !RFC3339.test(v) || Number.isNaN(t)) throw badRequest('valid_until', `${JSON.stringify(v)} is not an RFC 3339 time with a zone (e.g. 2026-06-01T18:00:00Z)`);
    if (t <= now) throw badRequest('valid_until', `${v} is not in the future (now is ${new Date(now).toISOString()})`);
    out.valid_until = new Date(t).toISOString();
  }
  for (const k of KEYS) {
    if (!(k in b)) continue;
    const list = b[k];
    if (!Array.isArray(list)) throw badRequest(k, 'must be a list of {timestamp, total_power_W}');
    let last = -Infinity;
    (out as unknown as Record<string, unknown>)[k] = list.map((e, i) => {
      const where = `${k}[${i}]`;
      if (!e || typeof e !== 'object' || Array.isArray(e)) throw badRequest(where, 'must be an object {timestamp, total_power_W}');
      const entry = e as Record<string, unknown>;
      for (const f of Object.keys(entry)) if (f !== 'timestamp' && f !== 'total_power_W') throw badRequest(`${where}.${f}`, 'unknown field (valid: timestamp, total_power_W)');
      if (typeof entry.timestamp !== 'string') throw badRequest(`${where}.timestamp`, 'is required (RFC 3339, e.g. 2026-06-01T18:00:00Z)');
      const t = Date.parse(entry.timestamp);
      if (!RFC3339.test(entry.timestamp) || Number.isNaN(t)) throw badRequest(`${where}.timestamp`, `"${entry.timestamp}" is not an RFC 3339 time with a zone`);
      if (t <= last) throw badRequest(`${where}.timestamp`, 'must be later than the entry before it');
      last = t;
      const w = entry.total_power_W;
      if (w === null && k === 'schedule_setpoints') return { timestamp: new Date(t).toISOString(), total_power_W: null };
      if (typeof w !== 'number' || !Number.isFinite(w)) throw badRequest(`${where}.total_power_W`, k === 'schedule_setpoints' ? 'must be a number (W, + = draw, − = deliver) or null (no setpoint from here on)' : 'must be a number (W)');
      if (k !== 'schedule_setpoints' && w < 0) throw badRequest(`${where}.total_power_W`, 'a limit is a positive power (W); use schedule_export for the export side');
      return { timestamp: new Date(t).toISOString(), total_power_W: w };
    });
  }
  return out;
}

const entries = (list: { timestamp: string; total_power_W: number | null }[] | undefined): LimitEntry[] | undefined =>
  list?.length ? list.map((e) => ({ time: Date.parse(e.timestamp), watts: e.total_power_W })) : undefined;

export function fromStored(s: StoredLimits): ExternalLimits {
  return { import: entries(s.schedule_import), export: entries(s.schedule_export), setpoints: entries(s.schedule_setpoints), ...(s.valid_until ? { validUntil: Date.parse(s.valid_until) } : {}), updatedAt: Date.parse(s.updated_at) };
}

/**
 * The value in force over each slot: for a limit the smallest of the entries active during the
 * slot (so a limit that starts mid-slot already holds for the whole slot), for a setpoint the
 * entry active at the slot's start. Before the first entry the first applies; after the last, the last.
 */
export function perSlot(list: LimitEntry[] | undefined, slots: readonly { start: EpochMs; end: EpochMs }[], how: 'min' | 'at_start'): (number | undefined)[] {
  if (!list?.length) return slots.map(() => undefined);
  const value = (e: LimitEntry) => e.watts ?? undefined;
  return slots.map(({ start, end }) => {
    let idx = 0;
    for (let i = 0; i < list.length; i++) if (list[i].time <= start) idx = i;
    if (how === 'at_start') return value(list[idx]);
    let v = value(list[idx]);
    for (let i = idx + 1; i < list.length && list[i].time < end; i++) {
      const w = value(list[i]);
      if (w !== undefined) v = v === undefined ? w : Math.min(v, w);
    }
    return v;
  });
}

/** The entry in force at `t`, for showing the limits in force. */
export const inForce = (list: LimitEntry[] | undefined, t: EpochMs): number | undefined => perSlot(list, [{ start: t, end: t + 1 }], 'at_start')[0];

/**
 * `perSlot` for limits that may expire: slots from `validUntil` on take `fallback` instead (a slot
 * that straddles it takes the smaller of both for a limit, the schedule's value for a setpoint).
 * Without any external entry the fallback holds throughout: a child hub is safe from its start,
 * before its parent has said anything.
 */
export function perSlotUntil(list: LimitEntry[] | undefined, validUntil: EpochMs | undefined, slots: readonly { start: EpochMs; end: EpochMs }[], how: 'min' | 'at_start', fallback?: number): (number | undefined)[] {
  if (!list?.length) return slots.map(() => fallback);
  const values = perSlot(list, slots, how);
  if (validUntil === undefined) return values;
  const low = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
  return slots.map((s, t) => {
    if (s.start >= validUntil) return fallback;
    if (s.end > validUntil && how === 'min') return low(values[t], fallback);
    return values[t];
  });
}

/** Whether limits with this expiry are still in force at `t`. */
export const stillValid = (l: { validUntil?: EpochMs }, t: EpochMs): boolean => l.validUntil === undefined || t < l.validUntil;
