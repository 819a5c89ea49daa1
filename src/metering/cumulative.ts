import type { EpochMs } from '../api/index.js';
import { DAY, MAX_RECORD_MS } from './records.js';

/** A cumulative register reading (Wh) at an instant, as kept in the store. */
export interface RegisterPoint {
  time: EpochMs;
  valueWh: number;
  session: string | null;
  ref: string | null;
}

/** An interval derived from two consecutive register readings. */
export interface DerivedInterval {
  start: EpochMs;
  end: EpochMs;
  energyWh: number;
  session: string | null;
  ref: string | null;
}

/** A reading below this share of the previous one is a counter reset (as Home Assistant's total_increasing). */
export const RESET_FRACTION = 0.9;

/**
 * Energy between two consecutive register readings: the difference; after a counter reset the new
 * reading itself (the counter started again from zero); a small step back is meter jitter and counts nothing.
 */
export function stepEnergy(previousWh: number, nextWh: number): number {
  if (nextWh >= previousWh) return nextWh - previousWh;
  if (nextWh < previousWh * RESET_FRACTION) return nextWh;
  return 0;
}

/**
 * Longest span between an untagged reading and a session's first or last reading that still belongs
 * to the session: a meter's usual reading interval (adapters: 1 min; OCPP MeterValues up to 15 min),
 * so the energy a meter reports with a session's first reading counts for it.
 */
export const SESSION_EDGE_MS = 15 * 60_000;

/**
 * The session an interval between two readings belongs to. Across a usual reading interval: the
 * session of its first reading, else of its last (the first reading after plug-in reports energy
 * the session drew). Across a longer gap only a session both readings carry: such a gap belongs to
 * no session, so a session's energy is its last reading minus its first (back-filled readings next
 * to live ones).
 */
export function sessionOf(a: RegisterPoint, b: RegisterPoint): string | null {
  if (a.session === b.session) return a.session;
  return b.time - a.time <= SESSION_EDGE_MS ? (a.session ?? b.session) : null;
}

/**
 * Intervals between consecutive points (sorted by time, distinct times), tagged by `sessionOf`. The
 * energy of a gap longer than a record may cover is spread evenly over whole days, which prices it
 * the same as one long interval (the register says how much, not when).
 */
export function intervalsBetween(points: readonly RegisterPoint[]): DerivedInterval[] {
  const out: DerivedInterval[] = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    const energy = stepEnergy(a.valueWh, b.valueWh);
    const session = sessionOf(a, b);
    const span = b.time - a.time;
    if (span <= MAX_RECORD_MS) {
      out.push({ start: a.time, end: b.time, energyWh: energy, session, ref: b.ref });
      continue;
    }
    for (let t = a.time; t < b.time; t += DAY) {
      const end = Math.min(b.time, t + DAY);
      out.push({ start: t, end, energyWh: (energy * (end - t)) / span, session, ref: b.ref });
    }
  }
  return out;
}

/** No meter of a house counts to 1 TWh: a register beyond it is a broken reading. */
export const MAX_REGISTER_WH = 1e12;

/**
 * New readings that cannot be a register: beyond MAX_REGISTER_WH, or more than `maxStepWh` above
 * the reading before them (stored or new). They are left out, by time, with the reason: counting
 * one would book its jump, and the reading after it would look like a counter reset.
 */
export function implausibleReadings(existing: readonly RegisterPoint[], incoming: readonly RegisterPoint[], maxStepWh: number): Map<EpochMs, string> {
  const refused = new Map<EpochMs, string>();
  const fresh = new Set(incoming);
  const byTime = new Map<EpochMs, RegisterPoint>();
  for (const p of existing) byTime.set(p.time, p);
  for (const p of incoming) byTime.set(p.time, p);
  let prev: RegisterPoint | undefined;
  for (const p of [...byTime.values()].sort((a, b) => a.time - b.time)) {
    if (fresh.has(p)) {
      if (p.valueWh > MAX_REGISTER_WH) {
        refused.set(p.time, `value: a register of ${p.valueWh} Wh is beyond any meter (at most ${MAX_REGISTER_WH} Wh)`);
        continue;
      }
      if (prev && p.valueWh - prev.valueWh > maxStepWh) {
        refused.set(p.time, `value: ${p.valueWh - prev.valueWh} Wh more than the reading at ${new Date(prev.time).toISOString()} is beyond any meter (at most ${maxStepWh} Wh between two readings)`);
        continue;
      }
    }
    prev = p;
  }
  return refused;
}

/** Sorts readings by time; of several at the same instant the last one given wins. */
export function sortReadings<T extends { time: EpochMs }>(readings: readonly T[]): T[] {
  const byTime = new Map<EpochMs, T>();
  for (const r of readings) byTime.set(r.time, r);
  return [...byTime.values()].sort((a, b) => a.time - b.time);
}

/**
 * Splices new readings into the stored neighbourhood of a register stream. `existing` holds the stored
 * point before the new readings (if any), every stored point among them, and the stored point after
 * them (if any), sorted. Returns the merged points, the stored intervals that no longer exist (a late
 * reading splits the interval it falls into) and the intervals to store.
 */
export function spliceReadings(existing: readonly RegisterPoint[], incoming: readonly RegisterPoint[]) {
  const byTime = new Map<EpochMs, RegisterPoint>();
  for (const p of existing) byTime.set(p.time, p);
  for (const p of incoming) byTime.set(p.time, p);
  const merged = [...byTime.values()].sort((a, b) => a.time - b.time);
  const before = intervalsBetween(existing);
  const after = intervalsBetween(merged);
  const keep = new Set(after.map((i) => `${i.start}|${i.end}`));
  const removed = before.filter((i) => !keep.has(`${i.start}|${i.end}`));
  return { merged, removed, added: after };
}
