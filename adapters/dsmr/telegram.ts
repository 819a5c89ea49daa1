import type { GridValues } from '../meter-common/grid-meter.js';

/**
 * DSMR / P1 telegrams (NEN-EN-IEC 62056-21 mode D text): `/XXX5ident`, a blank line, one COSEM
 * object per line `1-0:1.8.1(001234.567*kWh)`, and `!` followed by a CRC-16 of everything from
 * `/` to `!` (DSMR 4 and later, e-MUCS, Sweden, Luxembourg) or by nothing (DSMR 2.2 and 3).
 */

/** CRC-16/ARC (polynomial x^16+x^15+x^2+1, reflected, initial 0, no final xor), as DSMR P1 5.0.2 §6.2 gives it. */
export function crc16(text: string, start = 0, end = text.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc ^= text.charCodeAt(i) & 0xff;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

export type FrameResult = { ok: true; text: string; crc: boolean } | { ok: false; kind: 'torn' | 'crc' | 'garbled' | 'too_long' | 'no_header'; reason: string };

/** Longest telegram accepted (a DSMR 5 telegram with M-Bus devices and a text message is ~2 KB). */
const MAX_TELEGRAM = 16 * 1024;

/**
 * Cuts a byte stream into telegrams. Bytes are kept as latin1 so one character is one byte (the CRC
 * runs over bytes). A telegram that a new header interrupts is torn; one whose CRC does not match
 * is garbled; both are reported and dropped. Bytes before the first header (joining a stream in
 * the middle of a telegram) are dropped silently.
 */
export class TelegramFramer {
  private buf = '';
  /** Bytes dropped since the last header; many of them means the port speaks something else. */
  private headless = 0;
  private seenHeader = false;

  push(chunk: Buffer | string): FrameResult[] {
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    const out: FrameResult[] = [];
    for (;;) {
      const start = headerAt(this.buf, 0);
      if (start < 0) {
        // keep what may be the start of a header that is still arriving ("/", "/KF", "/KFM")
        const slash = this.buf.lastIndexOf('/');
        const keep = slash >= 0 && slash >= this.buf.length - 4 ? this.buf.slice(slash) : '';
        this.headless += this.buf.length - keep.length;
        this.buf = keep;
        if (this.headless > 4096) {
          out.push({ ok: false, kind: 'no_header', reason: `${this.headless} bytes without a telegram header ("/"): wrong baud rate or bit format, or an encrypted meter (Luxembourg Smarty, DLMS push)` });
          this.headless = 0;
        }
        return out;
      }
      if (start > 0) {
        if (this.seenHeader && this.buf.slice(0, start).trim()) out.push({ ok: false, kind: 'garbled', reason: `${start} bytes between telegrams that belong to none` });
        this.buf = this.buf.slice(start);
      }
      this.headless = 0;
      this.seenHeader = true;
      const bang = lineStartOf(this.buf, '!', 1);
      const next = headerAt(this.buf, 1);
      if (next >= 0 && (bang < 0 || next < bang)) {
        out.push({ ok: false, kind: 'torn', reason: `a telegram was cut off after ${next} bytes by the next one (no "!" end line)` });
        this.buf = this.buf.slice(next);
        continue;
      }
      if (bang < 0) {
        if (this.buf.length > MAX_TELEGRAM) {
          out.push({ ok: false, kind: 'too_long', reason: `no end line ("!") within ${MAX_TELEGRAM} bytes` });
          this.buf = '';
        }
        return out;
      }
      // the end line: "!" and four hex digits (CRC), or "!" alone (DSMR 2.2 / 3)
      const rest = this.buf.slice(bang + 1);
      const hex = /^[0-9A-Fa-f]{4}/.exec(rest);
      let tailLen: number;
      if (hex) tailLen = 4;
      else if (/^\r?\n/.test(rest)) tailLen = 0;
      else if (rest.length < 6 && /^[0-9A-Fa-f]{0,3}\r?$/.test(rest)) return out; // the end line is still arriving
      else {
        out.push({ ok: false, kind: 'garbled', reason: `the end line "!${printable(rest.slice(0, 8))}" is neither a CRC nor empty` });
        this.buf = this.buf.slice(bang + 1);
        continue;
      }
      const text = this.buf.slice(0, bang + 1);
      this.buf = this.buf.slice(bang + 1 + tailLen);
      if (hex) {
        const want = parseInt(hex[0], 16);
        const got = crc16(text);
        if (want !== got) {
          out.push({ ok: false, kind: 'crc', reason: `CRC mismatch: the telegram says ${hex[0].toUpperCase()}, its bytes give ${got.toString(16).toUpperCase().padStart(4, '0')}` });
          continue;
        }
      }
      out.push({ ok: true, text, crc: Boolean(hex) });
    }
  }
}

/**
 * Index of a header (`/` + three letters + the baud-rate digit) at or after `from`, or -1. Not only
 * at a line start: a telegram torn mid-line is followed straight by the next header.
 */
function headerAt(buf: string, from: number): number {
  HEADER.lastIndex = from;
  return HEADER.exec(buf)?.index ?? -1;
}
const HEADER = /\/[A-Za-z]{3}\d/g;

/** Index of a line starting with `ch` after `from`, or -1. */
function lineStartOf(buf: string, ch: string, from: number): number {
  const i = buf.indexOf(`\n${ch}`, from);
  return i < 0 ? -1 : i + 1;
}

const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export interface Telegram {
  /** The identification line without `/`, e.g. `ISk5\2MT382-1000`. */
  header: string;
  /** Each COSEM object's values (the parenthesised groups), by OBIS code without the `*255` suffix. */
  objects: Map<string, string[]>;
  /** P1 version: `1-3:0.2.8` (42, 50) or the Belgian `0-0:96.1.4` (50217), if given. */
  version?: string;
}

const OBJECT_LINE = /^(\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3})(?:\*\d{1,3})?((?:\([^()]*\))+)$/;
const CONTINUATION = /^((?:\([^()]*\))+)$/;

/**
 * The objects of a framed telegram. With `strict` (a telegram without CRC) every line must be a
 * COSEM object, so a flipped bit that the missing CRC cannot catch still refuses the telegram;
 * with a good CRC unknown line shapes are skipped.
 */
export function parseTelegram(text: string, strict: boolean): Telegram {
  const lines = text.split(/\r?\n/);
  const header = lines[0].slice(1).trim();
  if (!/^[A-Za-z]{3}\d/.test(header)) throw new Error(`header "/${printable(header.slice(0, 24))}" is not XXXn… (manufacturer and baud-rate digit)`);
  const objects = new Map<string, string[]>();
  let last: string[] | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line === '!') continue;
    const m = OBJECT_LINE.exec(line);
    if (m) {
      last = groups(m[2]);
      objects.set(m[1], last);
      continue;
    }
    // DSMR 2.2 / 3 gas: the value follows on a line of its own
    const c = CONTINUATION.exec(line);
    if (c && last) {
      last.push(...groups(c[1]));
      continue;
    }
    if (strict) throw new Error(`line ${i + 1} "${printable(line.slice(0, 40))}" is not a COSEM object`);
  }
  const version = objects.get('1-3:0.2.8')?.[0] ?? objects.get('0-0:96.1.4')?.[0];
  return { header, objects, version };
}

const groups = (s: string) => [...s.matchAll(/\(([^()]*)\)/g)].map((g) => g[1]);

/** A value `001234.567*kWh` in base units (W, Wh); undefined when absent, an error when malformed. */
function quantity(t: Telegram, obis: string, kind: 'power' | 'energy'): number | undefined {
  const v = t.objects.get(obis);
  if (!v) return undefined;
  const raw = v[v.length - 1];
  const m = /^(-?\d+(?:\.\d+)?)\*(\w+)$/.exec(raw) ?? /^(-?\d+(?:\.\d+)?)$/.exec(raw);
  if (!m) throw new Error(`${obis} "${raw}" is not a number with a unit`);
  const unit = (m[2] ?? '').toLowerCase();
  const x = Number(m[1]);
  const factor = kind === 'power' ? { kw: 1000, w: 1 }[unit] : { kwh: 1000, wh: 1 }[unit];
  if (factor === undefined) throw new Error(`${obis} has unit "${m[2] ?? 'none'}", expected ${kind === 'power' ? 'kW or W' : 'kWh or Wh'}`);
  return x * factor;
}

/** A register: the total (`x.8.0`) where the meter gives one, else the sum of its tariff registers (`x.8.1`, `x.8.2`, …). */
function register(t: Telegram, code: 1 | 2): number | undefined {
  const total = quantity(t, `1-0:${code}.8.0`, 'energy');
  if (total !== undefined) return total;
  let sum: number | undefined;
  for (let tariff = 1; tariff <= 9; tariff++) {
    const v = quantity(t, `1-0:${code}.8.${tariff}`, 'energy');
    if (v !== undefined) sum = (sum ?? 0) + v;
  }
  return sum;
}

/**
 * What the hub books from a telegram: import and export registers (Wh), net power (W, + = import:
 * `1.7.0` − `2.7.0`) and net power per phase (`21/41/61.7.0` − `22/42/62.7.0`). An electricity
 * telegram without any of them is an error.
 */
export function gridValues(t: Telegram): GridValues {
  const importWh = register(t, 1);
  const exportWh = register(t, 2);
  const delivered = quantity(t, '1-0:1.7.0', 'power');
  const returned = quantity(t, '1-0:2.7.0', 'power');
  const powerW = delivered === undefined && returned === undefined ? undefined : (delivered ?? 0) - (returned ?? 0);
  const phasesW: number[] = [];
  for (const [imp, exp] of [[21, 22], [41, 42], [61, 62]]) {
    const a = quantity(t, `1-0:${imp}.7.0`, 'power');
    const b = quantity(t, `1-0:${exp}.7.0`, 'power');
    if (a === undefined && b === undefined) break;
    phasesW.push((a ?? 0) - (b ?? 0));
  }
  if (importWh === undefined && powerW === undefined) throw new Error('no electricity register (1-0:1.8.x) and no power (1-0:1.7.0): not an electricity telegram');
  return { importWh, exportWh, powerW, phasesW: phasesW.length ? phasesW : undefined };
}
