/** Durations in milliseconds: the hub carries time as epoch milliseconds (see `EpochMs`). */
export const SECOND = 1_000;
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const WEEK = 7 * DAY;

const RFC3339_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|([+-])(\d{2}):(\d{2}))$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const digit = (s: string, i: number) => {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : NaN;
};

/** "YYYY-MM-DDTHH:MM:SS[.sss]Z", the form nearly every client sends, read without a regular expression. */
function parseUtcFast(v: string): number {
  const n = v.length;
  if ((n !== 20 && n !== 24) || v.charCodeAt(n - 1) !== 90 || v[4] !== '-' || v[7] !== '-' || v[10] !== 'T' || v[13] !== ':' || v[16] !== ':') return NaN;
  const y = digit(v, 0) * 1000 + digit(v, 1) * 100 + digit(v, 2) * 10 + digit(v, 3);
  const mo = digit(v, 5) * 10 + digit(v, 6);
  const d = digit(v, 8) * 10 + digit(v, 9);
  const h = digit(v, 11) * 10 + digit(v, 12);
  const mi = digit(v, 14) * 10 + digit(v, 15);
  const s = digit(v, 17) * 10 + digit(v, 18);
  let ms = 0;
  if (n === 24) {
    if (v[19] !== '.') return NaN;
    ms = digit(v, 20) * 100 + digit(v, 21) * 10 + digit(v, 22);
  }
  if (!(mo >= 1 && mo <= 12 && d >= 1 && h <= 23 && mi <= 59 && s <= 59 && ms >= 0)) return NaN;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (d > (mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1])) return NaN;
  return Date.UTC(y, mo - 1, d, h, mi, s, ms);
}

/** Why a text is not an RFC 3339 instant: its form, an impossible date or time, or an impossible offset. */
export type TimeProblem = 'form' | 'calendar' | 'offset';

/**
 * The one parser of RFC 3339 instants the hub's API and stores use: a date, a time (seconds and
 * fractions optional) and a zone (`Z` or an offset). Calendar-impossible dates are refused, where
 * `Date.parse` would roll them over into the next month.
 */
export function parseRfc3339(value: string): { ok: true; t: number } | { ok: false; problem: TimeProblem } {
  const fast = parseUtcFast(value);
  if (fast === fast) return { ok: true, t: fast }; // not NaN
  const m = RFC3339_TIME.exec(value);
  if (!m) return { ok: false, problem: 'form' };
  const [y, mo, d, h, mi] = [1, 2, 3, 4, 5].map((i) => Number(m[i]));
  const s = m[6] === undefined ? 0 : Number(m[6]);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const dim = mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1];
  if (mo < 1 || mo > 12 || d < 1 || d > dim || h > 23 || mi > 59 || s > 59) return { ok: false, problem: 'calendar' };
  const ms = m[7] ? Math.floor(Number(m[7]) * 1000) : 0;
  let t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  if (m[9]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return { ok: false, problem: 'offset' };
    t -= (m[9] === '-' ? -1 : 1) * (oh * HOUR + om * MINUTE);
  }
  return { ok: true, t };
}
