import { IANAZone } from 'luxon';

/**
 * ISO 4217 alphabetic codes of the currencies in circulation, as listed by the ISO 4217 maintenance
 * agency (SIX Group, "List One: Currency, fund and precious metal codes", amendment 179, 2025).
 * Codes are facts, written out here by hand. Left out on purpose: fund codes (BOV, CHE, CHW, CLF,
 * COU, MXV, USN, UYI, UYW), precious metals and testing codes (XAU, XAG, XPD, XPT, XBA–XBD, XDR,
 * XSU, XUA, XTS, XXX) — no electricity tariff is priced in them — and withdrawn codes (HRK, …).
 */
export const CURRENCIES: ReadonlySet<string> = new Set(
  (
    'AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD ' +
    'CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD ' +
    'GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT ' +
    'LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR ' +
    'NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP ' +
    'STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD ' +
    'XCG XOF XPF YER ZAR ZMW ZWG'
  ).split(' '),
);

/** An IANA time zone luxon can compute with (`Europe/Berlin`, `UTC`); `Europe/Berlln` is not. */
export const isTimeZone = (zone: unknown): zone is string => typeof zone === 'string' && zone.length > 0 && IANAZone.isValidZone(zone);

export const isCurrency = (code: unknown): code is string => typeof code === 'string' && CURRENCIES.has(code);

/** Zones that share the text's start, for "did you mean" (e.g. `Europe/Berlln` → Europe/Berlin). */
export function zoneHint(zone: string): string {
  const all = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  const region = zone.split('/')[0];
  const lower = zone.toLowerCase();
  const near = all.filter((z) => z.split('/')[0] === region && closeEnough(z.toLowerCase(), lower));
  if (near.length) return ` (did you mean ${near.slice(0, 3).join(', ')}?)`;
  return ' (an IANA name such as Europe/Berlin, America/New_York or UTC)';
}

/** At most two single-character edits apart. */
function closeEnough(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 2) return false;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length] <= 2;
}
