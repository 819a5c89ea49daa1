import { readFileSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { DateTime } from 'luxon';
import { CsvSyntaxError, decodeText, defineTariffSource, parseCsv, permanentError, type PriceSeries } from '../../api/index.js';
import { seriesProblems, sliceSeries } from '../series.js';
import { cronIssues } from '../cron.js';
import { applySurcharge, surchargeSchema, type Surcharge } from '../surcharge.js';

export interface FileTariffConfig {
  type: 'file';
  /** CSV or JSON file; relative paths are relative to the site file. */
  path: string;
  format?: 'csv' | 'json';
  /** What the file's prices are per: kWh (default) or MWh (wholesale files). */
  price_unit?: 'kWh' | 'MWh';
  surcharge?: Surcharge;
  refresh_cron?: string;
}

const START_KEYS = ['valid_from', 'start_time', 'start', 'from', 'time', 'timestamp', 'hourutc', 'timeutc', 'startsat', 'deliverystart'];
const END_KEYS = ['valid_to', 'end_time', 'end', 'to', 'deliveryend'];
const RATE_KEYS = ['rate', 'price', 'value', 'total', 'marketprice', 'spotpriceeur', 'dayaheadpriceeur'];

/** A located problem in a price file. */
export class PriceFileError extends Error {
  constructor(file: string, where: string, message: string) {
    super(`${file}:${where} ${message}`);
    this.name = 'PriceFileError';
  }
}

/** Parses an instant: RFC 3339, a naive local date-time (site time zone), or Unix seconds / milliseconds. */
export function parseInstant(value: unknown, zone: string): number | undefined {
  if (typeof value === 'number' || (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim()))) {
    const n = Number(value);
    return n > 1e11 ? n : n * 1000; // seconds until year 5138, milliseconds after
  }
  if (typeof value !== 'string' || !value.trim()) return undefined;
  const text = value.trim().replace(' ', 'T');
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(text);
  const dt = hasZone ? DateTime.fromISO(text, { setZone: true }) : DateTime.fromISO(text, { zone });
  return dt.isValid ? dt.toMillis() : undefined;
}

/** A number that may use a decimal comma (semicolon-separated European CSV). */
const parseNumber = (value: unknown, decimalComma: boolean): number => {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string' || value.trim() === '') return NaN;
  return Number(decimalComma ? value.trim().replace(/\./g, '').replace(',', '.') : value.trim());
};

interface Row {
  where: string;
  start: unknown;
  end?: unknown;
  rate: unknown;
}

const findColumn = (header: string[], keys: string[]) => {
  const lower = header.map((h) => h.toLowerCase().replace(/[^a-z_]/g, ''));
  for (const k of keys) {
    const i = lower.indexOf(k);
    if (i >= 0) return i;
  }
  return -1;
};

function csvRows(bytes: Buffer, file: string): { rows: Row[]; decimalComma: boolean } {
  let parsed: ReturnType<typeof parseCsv>;
  try {
    parsed = parseCsv(bytes, { comments: true });
  } catch (err) {
    if (err instanceof CsvSyntaxError) throw new PriceFileError(file, String(err.line), err.message);
    throw err;
  }
  const [header, ...body] = parsed.rows;
  if (!header) throw new PriceFileError(file, '1', 'is empty: expected a header line such as "valid_from,valid_to,rate"');
  const s = findColumn(header.cells, START_KEYS);
  const e = findColumn(header.cells, END_KEYS);
  const r = findColumn(header.cells, RATE_KEYS);
  if (s < 0 || r < 0) {
    throw new PriceFileError(file, String(header.line), `header "${header.cells.join(parsed.delimiter)}" needs a start column (${START_KEYS.slice(0, 4).join(', ')}, …) and a rate column (rate, price, value, …)`);
  }
  const rows = body.map((row) => ({ where: String(row.line), start: row.cells[s], end: e >= 0 ? row.cells[e] : undefined, rate: row.cells[r] }));
  // a semicolon-separated file is European: decimal commas
  return { rows, decimalComma: parsed.delimiter === ';' };
}

function jsonRows(text: string, file: string): Row[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PriceFileError(file, '1', `is not valid JSON (${(err as Error).message})`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { data?: unknown })?.data;
  if (!Array.isArray(list)) throw new PriceFileError(file, '1', 'must be a JSON array of {valid_from, valid_to, rate} or an object with such a "data" array');
  return list.map((item, i) => {
    const o = (item ?? {}) as Record<string, unknown>;
    const pick = (keys: string[]) => {
      for (const [k, v] of Object.entries(o)) if (keys.includes(k.toLowerCase())) return v;
      return undefined;
    };
    const tariff = o.tariff as { rate?: unknown } | undefined;
    return { where: `data[${i}]`, start: pick(START_KEYS), end: pick(END_KEYS), rate: tariff?.rate ?? pick(RATE_KEYS) };
  });
}

/** A row of a price file that was left out, located (`file:line message`). */
export type BadRow = string;

/**
 * Turns rows into a sorted series; a missing end is the next row's start (the last row repeats the
 * step before it). Without `badRows` the first bad row throws; with it, bad rows (unreadable time or
 * rate, a slot overlapping the one before) are left out and listed, and the good rows are kept.
 */
export function rowsToSeries(rows: Row[], file: string, zone: string, decimalComma = false, badRows?: BadRow[]): PriceSeries {
  const bad = (where: string, message: string) => {
    const err = new PriceFileError(file, where, message);
    if (!badRows) throw err;
    badRows.push(err.message);
  };
  const parsed: { where: string; start: number; end?: number; rate: number }[] = [];
  for (const row of rows) {
    const start = parseInstant(row.start, zone);
    if (start === undefined) {
      bad(row.where, `start ${JSON.stringify(row.start)} is not a time (RFC 3339, local "YYYY-MM-DD HH:MM" or Unix seconds)`);
      continue;
    }
    const end = row.end === undefined || row.end === '' ? undefined : parseInstant(row.end, zone);
    if (row.end !== undefined && row.end !== '' && end === undefined) {
      bad(row.where, `end ${JSON.stringify(row.end)} is not a time`);
      continue;
    }
    const rate = parseNumber(row.rate, decimalComma);
    if (!Number.isFinite(rate)) {
      bad(row.where, `rate ${JSON.stringify(row.rate)} is not a number`);
      continue;
    }
    parsed.push({ where: row.where, start, end, rate });
  }
  parsed.sort((a, b) => a.start - b.start);
  const series: PriceSeries = [];
  parsed.forEach((p, i) => {
    let end = p.end;
    if (end === undefined) {
      const next = parsed[i + 1]?.start;
      const prevStep = i > 0 ? p.start - parsed[i - 1].start : undefined;
      end = next ?? (prevStep !== undefined ? p.start + prevStep : undefined);
      if (end === undefined) return bad(p.where, 'has no end time and no other row to tell the slot length: add a valid_to column');
    }
    const slot = { start: p.start, end, rate: p.rate, confidence: 1 };
    // checked against the last slot kept, so one bad row does not condemn the ones after it
    const problem = seriesProblems([...series.slice(-1), slot]).find((x) => x.index === Math.min(series.length, 1));
    if (problem) return bad(p.where, problem.message);
    series.push(slot);
  });
  return series;
}

/**
 * Reads and parses a CSV or JSON price file into a series of household rates. A file that cannot be
 * read or has no usable header throws; bad rows throw too unless `badRows` collects them.
 */
export function readPriceFile(path: string, config: Pick<FileTariffConfig, 'format' | 'price_unit' | 'surcharge'>, zone: string, badRows?: BadRow[]): PriceSeries {
  const name = basename(path);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw permanentError('price_file_unreadable', `${path}: cannot read the price file (${(err as Error).message})`, err);
  }
  const format = config.format ?? (extname(path).toLowerCase() === '.json' ? 'json' : 'csv');
  const { rows, decimalComma } = format === 'json' ? { rows: jsonRows(decodeText(bytes), name), decimalComma: false } : csvRows(bytes, name);
  const series = rowsToSeries(rows, name, zone, decimalComma, badRows);
  const perKwh = config.price_unit === 'MWh' ? 1 / 1000 : 1;
  return series.map((s) => ({ ...s, rate: applySurcharge(s.rate * perKwh, config.surcharge) }));
}

/** The new file's slots, and the earlier series where the new file has none (a file with bad rows loses nothing read before). */
function mergeKept(earlier: PriceSeries, fresh: PriceSeries): PriceSeries {
  const covered = (s: PriceSeries[number]) => fresh.some((f) => f.start < s.end && s.start < f.end);
  return [...earlier.filter((s) => !covered(s)), ...fresh].sort((a, b) => a.start - b.start);
}

/** A price series from a CSV or JSON file, re-read when the file changes. */
export const fileTariff = defineTariffSource<FileTariffConfig>({
  type: 'file',
  description: 'A price series from a CSV or JSON file (valid_from, valid_to, rate), re-read when it changes',
  configSchema: {
    required: ['path'],
    properties: {
      path: { type: 'string', minLength: 1, description: 'CSV or JSON file, relative to the site file' },
      format: { type: 'string', enum: ['csv', 'json'], description: 'Default: from the file extension' },
      price_unit: { type: 'string', enum: ['kWh', 'MWh'], default: 'kWh', description: 'What the prices in the file are per' },
      surcharge: surchargeSchema,
      refresh_cron: { type: 'string', default: '*/15 * * * *', description: 'When to look for a changed file (cron, site time zone)' },
    },
  },
  check: (config) => cronIssues(config.refresh_cron),
  create: (ctx, config) => {
    let series: PriceSeries = ctx.cache.get<PriceSeries>('series') ?? [];
    let loadedVersion = '';
    /** The bad rows of the file as loaded, reported by every refresh until the file changes. */
    let rowProblem: string | undefined;
    let updated: number | undefined = ctx.cache.get<number>('updated');
    const load = () => {
      // size as well as mtime: some file systems keep mtime to the second
      const st = statSync(config.path);
      const version = `${st.mtimeMs}:${st.size}`;
      if (version === loadedVersion) return false;
      const badRows: BadRow[] = [];
      const fresh = readPriceFile(config.path, config, ctx.site.timezone, badRows);
      // bad rows are left out, the good ones used: one typo must not leave the site without prices
      rowProblem = badRows.length ? `${badRows[0]}${badRows.length > 1 ? ` (and ${badRows.length - 1} more row${badRows.length > 2 ? 's' : ''} left out)` : ''}` : undefined;
      if (badRows.length) {
        ctx.log.error({ badRows }, `price file ${config.path}: ${badRows.length} bad row${badRows.length === 1 ? '' : 's'} left out, ${fresh.length} slot${fresh.length === 1 ? '' : 's'} kept: ${badRows.slice(0, 5).join('; ')}`);
        series = mergeKept(series, fresh);
      } else series = fresh;
      loadedVersion = version;
      updated = ctx.clock.now();
      void ctx.cache.set('series', series);
      void ctx.cache.set('updated', updated);
      return true;
    };
    try {
      load();
    } catch (err) {
      ctx.log.error({ err }, `price file ${config.path} could not be loaded${series.length ? '; using the prices read before' : ''}`);
    }
    return {
      describe: () => `file ${config.path}`,
      series: (window) => sliceSeries(series, window),
      lastUpdated: () => updated,
      refresh: async () => {
        try {
          load();
          if (rowProblem) throw permanentError('price_file_invalid', rowProblem);
        } catch (err) {
          if (err instanceof PriceFileError) throw permanentError('price_file_invalid', err.message, err);
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw permanentError('price_file_missing', `${config.path}: the price file does not exist`, err);
          throw err;
        }
      },
    };
  },
});
