import { DateTime } from 'luxon';
import { DAY } from '../../api/time.js';

const QUARTER = 900_000;

/** Wall-clock fields of an instant in a time zone. */
export interface LocalClock {
  /** The local calendar date as days since 1970-01-01. */
  day: number;
  /** Minutes since local midnight by the wall clock (00:00 → 0, 23:45 → 1425). */
  minute: number;
  /** 1 = Monday … 7 = Sunday. */
  weekday: number;
  /** 1–12. */
  month: number;
  /** 1–366. */
  dayOfYear: number;
}

/** "YYYY-MM-DD" of a local day given as days since 1970-01-01. */
export const isoDateOfDay = (day: number): string => new Date(day * DAY).toISOString().slice(0, 10);

/**
 * A fast wall clock for a time zone: the zone's offset is looked up once per UTC quarter hour and
 * cached, so year-long loops over slots do not pay for a luxon zone conversion each time.
 */
export function localClockOf(timezone: string): (t: number) => LocalClock {
  const offsets = new Map<number, number>();
  return (t) => {
    const q = Math.floor(t / QUARTER);
    let offset = offsets.get(q);
    if (offset === undefined) {
      offset = DateTime.fromMillis(q * QUARTER, { zone: timezone }).offset * 60_000;
      offsets.set(q, offset);
    }
    const local = t + offset;
    const d = new Date(local);
    const day = Math.floor(local / DAY);
    const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1) / DAY;
    const wd = d.getUTCDay();
    return {
      day,
      minute: d.getUTCHours() * 60 + d.getUTCMinutes(),
      weekday: wd === 0 ? 7 : wd,
      month: d.getUTCMonth() + 1,
      dayOfYear: day - yearStart + 1,
    };
  };
}
