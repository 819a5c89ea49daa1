import { DateTime } from 'luxon';

/** Local "HH:MM" → minutes after midnight ("24:00" = 1440). */
export function minutesOf(hhmm: string): number {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(hhmm);
  if (!m || (m[1] === '24' && m[2] !== '00')) throw new Error(`"${hhmm}" is not a time of day HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/**
 * When the quiet hours that hold instant `t` end, or undefined when `t` is not in quiet hours.
 * `from`–`to` is local wall-clock time in `zone` and crosses midnight when `to` ≤ `from`; on the
 * nights clocks change the quiet hours are still "22:00 to 07:00" on the wall, so they last 8 or 10
 * real hours. A wall time that does not exist (02:30 on a spring-forward night) ends at the first
 * instant after it.
 */
export function quietUntil(t: number, zone: string, from: string, to: string): number | undefined {
  const f = minutesOf(from);
  const e = minutesOf(to);
  if (f === e) return undefined;
  const local = DateTime.fromMillis(t, { zone });
  const now = local.hour * 60 + local.minute + local.second / 60;
  const day = local.startOf('day');
  const at = (d: DateTime, minutes: number) => d.plus({ days: Math.floor(minutes / 1440) }).set({ hour: Math.floor((minutes % 1440) / 60), minute: minutes % 60 }).toMillis();
  if (f < e) return now >= f && now < e ? at(day, e) : undefined;
  // crosses midnight: quiet from `from` to the end of the day, and from midnight to `to`
  if (now >= f) return at(day.plus({ days: 1 }), e);
  if (now < e) return at(day, e);
  return undefined;
}
