// Numbers and times as the household reads them: times in the site's zone (not the browser's),
// money in the site's currency.

const cache = new Map();
const memo = (key, make) => {
  let v = cache.get(key);
  if (!v) cache.set(key, (v = make()));
  return v;
};

let zone = 'UTC';
let currency = 'EUR';
// the browser's own language decides digits and separators; only zone and currency are the site's
const locale = undefined;

export function configure(site) {
  zone = site.timezone;
  currency = site.currency;
  cache.clear();
}

export const siteZone = () => zone;

const dtf = (opts) => memo(`dt:${JSON.stringify(opts)}`, () => new Intl.DateTimeFormat(locale, { timeZone: zone, ...opts }));

const toDate = (t) => (t instanceof Date ? t : new Date(t));

/** 14:30 */
export const time = (t) => dtf({ hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(toDate(t));
/** Mon 14:30 */
export const dayTime = (t) => dtf({ weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(toDate(t));
/** 3 Jun 2026 */
export const date = (t) => dtf({ day: 'numeric', month: 'short', year: 'numeric' }).format(toDate(t));
/** 3 Jun 2026, 14:30 */
export const dateTime = (t) => dtf({ day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(toDate(t));

/** The calendar parts of an instant in the site's zone. */
export function parts(t) {
  const out = {};
  for (const p of dtf({ year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', weekday: 'short' }).formatToParts(toDate(t))) out[p.type] = p.value;
  return { year: +out.year, month: +out.month, day: +out.day, hour: +out.hour, minute: +out.minute, second: +out.second, weekday: out.weekday };
}

/** Offset of the site's zone from UTC at instant t, in ms. */
export function zoneOffsetMs(t) {
  const p = parts(t);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(toDate(t).getTime() / 1000) * 1000;
}

/** The instant of local wall-clock time (year, month 1-12, day, hour, minute) in the site's zone. */
export function localInstant(year, month, day, hour = 0, minute = 0) {
  const guess = Date.UTC(year, month - 1, day, hour, minute);
  // two passes settle the offset across a DST change
  let t = guess - zoneOffsetMs(guess);
  t = guess - zoneOffsetMs(t);
  return t;
}

/** Local midnight at the start of the site's day containing t. */
export function startOfDay(t) {
  const p = parts(t);
  return localInstant(p.year, p.month, p.day);
}

/** The next instant at local "HH:MM" after t. */
export function nextLocalTime(t, hhmm) {
  const [hh, mm] = hhmm.split(':').map(Number);
  const p = parts(t);
  let at = localInstant(p.year, p.month, p.day, hh, mm);
  if (at <= t) {
    const next = parts(at + 26 * 3_600_000);
    at = localInstant(next.year, next.month, next.day, hh, mm);
  }
  return at;
}

export const money = (v, digits = 2) =>
  v === null || v === undefined || Number.isNaN(v) ? '—' : memo(`m:${digits}`, () => new Intl.NumberFormat(locale, { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits })).format(v);

/** A rate per kWh in the site currency, e.g. "€0.2143/kWh" (rates carry 4 decimals). */
export const rate = (v) => (v === null || v === undefined ? '—' : `${money(v, v !== 0 && Math.abs(v) < 1 ? 3 : 2)}/kWh`);

export const num = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? '—' : memo(`n:${digits}`, () => new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits })).format(v));

/** Power in W as "850 W" or "3.2 kW". */
export const power = (w) => (w === null || w === undefined ? '—' : Math.abs(w) < 1000 ? `${num(w, 0)} W` : `${num(w / 1000, 1)} kW`);

/** Energy in Wh as kWh. */
export const energy = (wh, digits = 1) => (wh === null || wh === undefined ? '—' : `${num(wh / 1000, digits)} kWh`);

export const pct = (v, digits = 0) => (v === null || v === undefined ? '—' : `${num(v, digits)} %`);

export const celsius = (v) => (v === null || v === undefined ? '—' : `${num(v, 1)} °C`);

/** "in 2 h 15 min" / "5 min ago" relative to now. */
export function relative(t, now) {
  const d = Math.round((toDate(t).getTime() - now) / 60_000);
  const span = Math.abs(d) < 60 ? `${Math.abs(d)} min` : `${Math.floor(Math.abs(d) / 60)} h${Math.abs(d) % 60 ? ` ${Math.abs(d) % 60} min` : ''}`;
  return d === 0 ? 'now' : d > 0 ? `in ${span}` : `${span} ago`;
}
