import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DateTime } from 'luxon';
import { CsvSyntaxError, decodeText, entryAt, HOUR, parseCsv, type CsvRow } from '../api/index.js';

/** A value held over `[start, end)`: a rate (currency/kWh), an energy (kWh in the interval) or a temperature (°C). */
export interface Interval {
  start: number;
  end: number;
  value: number;
}

export type Role = 'import' | 'export' | 'load' | 'pv' | 'outdoor';

/** A series read from a file, able to cover any period: directly, or replayed from another year. */
export interface SeriesSource {
  /** What was read, for the summary ("Energy-Charts JSON, 600 files, EUR/MWh → €/kWh"). */
  describe: string;
  /** The intervals covering `[from, to)`. */
  over(from: number, to: number): Interval[];
}

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

const isPrice = (role: Role) => role === 'import' || role === 'export';

/** Sorted intervals from a list of start times; the last one lasts as long as the one before. */
function fromStarts(starts: number[], values: number[], where: string): Interval[] {
  const order = starts.map((_, i) => i).sort((a, b) => starts[a] - starts[b]);
  const out: Interval[] = [];
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    const next = k + 1 < order.length ? starts[order[k + 1]] : undefined;
    if (next === starts[i]) throw new InputError(`${where}: two values for ${new Date(starts[i]).toISOString()}`);
    const len = next !== undefined ? next - starts[i] : out.length ? out[out.length - 1].end - out[out.length - 1].start : HOUR;
    out.push({ start: starts[i], end: starts[i] + len, value: values[i] });
  }
  return out;
}

/** Energy-Charts `price` responses (one day per file): unix_seconds starts, EUR/MWh. */
function readEnergyCharts(files: string[]): Interval[] {
  const out: Interval[] = [];
  for (const file of files.sort()) {
    let body: { unix_seconds?: unknown; price?: unknown; unit?: unknown };
    try {
      body = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new InputError(`${file}: not valid JSON (${(err as Error).message})`);
    }
    if (!Array.isArray(body.unix_seconds) || !Array.isArray(body.price) || body.unix_seconds.length !== body.price.length) {
      throw new InputError(`${file}: not an Energy-Charts price response (needs unix_seconds and price of equal length)`);
    }
    if (body.unit !== undefined && !/EUR\s*\/\s*MWh/i.test(String(body.unit))) throw new InputError(`${file}: unit "${String(body.unit)}", expected EUR / MWh`);
    const s = (body.unix_seconds as number[]).map((x) => x * 1000);
    const v = (body.price as (number | null)[]).map((p, i) => {
      if (typeof p !== 'number') throw new InputError(`${file}: price[${i}] is ${JSON.stringify(p)}`);
      return p / 1000;
    });
    // each file covers one local day; its last interval ends where the next file starts (or at its own step)
    out.push(...fromStarts(s, v, file));
  }
  out.sort((a, b) => a.start - b.start);
  for (let i = 0; i + 1 < out.length; i++) {
    if (out[i].end > out[i + 1].start) out[i].end = out[i + 1].start;
    if (out[i].start === out[i + 1].start) throw new InputError(`Energy-Charts files: two prices for ${new Date(out[i].start).toISOString()}`);
  }
  return out;
}

function jsonFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...jsonFilesUnder(p));
    else if (name.endsWith('.json')) out.push(p);
  }
  return out;
}

const parseLocal = (text: string, timezone: string, where: string): number => {
  const t = text.trim();
  const withZone = /(Z|[+-]\d\d:?\d\d)$/.test(t);
  const d = withZone ? DateTime.fromISO(t.replace(' ', 'T'), { setZone: true }) : DateTime.fromISO(t.replace(' ', 'T'), { zone: timezone });
  if (!d.isValid) throw new InputError(`${where}: "${t}" is not an ISO 8601 time`);
  return d.toMillis();
};

/** A plain `time,value` CSV (ISO 8601 times; without a zone they are local to `timezone`). */
function readTimeValue(file: string, text: string, timezone: string): Interval[] {
  const starts: number[] = [];
  const values: number[] = [];
  csvRows(file, text).forEach(({ cells, line }, i) => {
    const where = `${file}:${line}`;
    if (i === 0 && line === 1 && Number.isNaN(Date.parse(cells[0].replace(' ', 'T'))) && !/^\d{4}-/.test(cells[0])) return; // a header
    if (cells.length < 2) throw new InputError(`${where}: expected "time,value"`);
    const v = Number(cells[1]);
    if (!Number.isFinite(v)) throw new InputError(`${where}: value "${cells[1]}" is not a number`);
    let t = parseLocal(cells[0], timezone, where);
    // a local time given twice (the hour the clocks go back) is the second, later occurrence
    const prev = starts[starts.length - 1];
    if (prev !== undefined && t <= prev && t + HOUR > prev) t += HOUR;
    starts.push(t);
    values.push(v);
  });
  if (!starts.length) throw new InputError(`${file}: no rows`);
  return fromStarts(starts, values, file);
}

/** Energinet "Elspotprices" CSV: semicolons, decimal commas, newest first, EUR/MWh. */
function readElspot(file: string, text: string): Interval[] {
  const [head, ...rows] = csvRows(file, text, ';');
  const iTime = head.cells.indexOf('HourUTC');
  const iEur = head.cells.indexOf('SpotPriceEUR');
  const starts: number[] = [];
  const values: number[] = [];
  for (const { cells: c, line } of rows) {
    const t = Date.parse((c[iTime] ?? '').replace(' ', 'T') + ':00Z');
    const v = Number((c[iEur] ?? '').replace(',', '.'));
    if (Number.isNaN(t) || !Number.isFinite(v)) throw new InputError(`${file}:${line}: cannot read "${c.join(';')}"`);
    starts.push(t);
    values.push(v / 1000);
  }
  return fromStarts(starts, values, file);
}

/** Replays timestamped data of other years on the same local calendar date and time. */
function replayByCalendar(data: Interval[], timezone: string, from: number, to: number): Interval[] {
  if (!data.length) return [];
  const step = data[Math.min(1, data.length - 1)].end - data[Math.min(1, data.length - 1)].start;
  const first = DateTime.fromMillis(data[0].start, { zone: timezone }).year;
  const last = DateTime.fromMillis(data[data.length - 1].start, { zone: timezone }).year;
  const find = (t: number) => entryAt(data, t);
  const out: Interval[] = [];
  for (let t = Math.floor(from / step) * step; t < to; t += step) {
    const local = DateTime.fromMillis(t, { zone: timezone });
    let hit: Interval | undefined;
    for (let y = first; y <= last && !hit; y++) {
      let d = local.set({ year: y });
      if (local.month === 2 && local.day === 29 && d.day !== 29) d = local.set({ year: y, day: 28 });
      hit = find(d.toMillis());
    }
    if (!hit) continue;
    out.push({ start: t, end: t + step, value: (hit.value * step) / (hit.end - hit.start) });
  }
  return out;
}

/** A source of timestamped intervals: prices must cover the period; other data may be replayed from another year. */
function timestamped(data: Interval[], role: Role, timezone: string, describe: string): SeriesSource {
  return {
    describe,
    over(from, to) {
      const covers = data.length && data[0].start <= from && data[data.length - 1].end >= to;
      // prices are never moved in time: what the file has, the caller checks it covers the period
      if (covers || isPrice(role)) return data.filter((r) => r.end > from && r.start < to);
      return replayByCalendar(data, timezone, from, to);
    },
  };
}

/**
 * Data keyed by local wall-clock time without DST ("2011-07-01T00:30"), replayed on the same date
 * and clock time of the site's zone in any year (a clock hour the DST change skips is skipped;
 * one it repeats is used twice).
 */
function wallClock(byWall: Map<string, number>, stepMs: number, timezone: string, describe: string): SeriesSource {
  const years = [...new Set([...byWall.keys()].map((k) => Number(k.slice(0, 4))))].sort();
  return {
    describe,
    over(from, to) {
      const out: Interval[] = [];
      for (let t = Math.floor(from / stepMs) * stepMs; t < to; t += stepMs) {
        const local = DateTime.fromMillis(t, { zone: timezone });
        const md = local.toFormat('MM-dd') === '02-29' && !years.some((y) => byWall.has(`${y}-02-29T00:00`)) ? '02-28' : local.toFormat('MM-dd');
        const hm = local.toFormat('HH:mm');
        let v: number | undefined;
        if (local.year >= years[0] && local.year <= years[years.length - 1]) v = byWall.get(`${local.year}-${md}T${hm}`);
        for (const y of years) v ??= byWall.get(`${y}-${md}T${hm}`);
        if (v !== undefined) out.push({ start: t, end: t + stepMs, value: v });
      }
      return out;
    },
  };
}

/**
 * A year of hourly rows without dates (CityLearn): row 0 is 1 August 00:00 local time, replayed
 * on the same calendar date and local hour in any year.
 */
function yearlyHourly(rows: number[], timezone: string, describe: string): SeriesSource {
  return {
    describe,
    over(from, to) {
      const out: Interval[] = [];
      for (let t = Math.floor(from / HOUR) * HOUR; t < to; t += HOUR) {
        const local = DateTime.fromMillis(t, { zone: timezone });
        const aug1 = DateTime.fromObject({ year: local.month >= 8 ? local.year : local.year - 1, month: 8, day: 1 }, { zone: timezone });
        const days = Math.floor(local.startOf('day').diff(aug1.startOf('day'), 'days').days);
        const row = ((days * 24 + local.hour) % rows.length + rows.length) % rows.length;
        out.push({ start: t, end: t + HOUR, value: rows[row] });
      }
      return out;
    },
  };
}

/** The records of a CSV input with their line numbers (csv-parse: quoting, BOM); a syntax error located at its line. */
export function csvRows(file: string, text: string, delimiter?: string): CsvRow[] {
  try {
    return parseCsv(text, { delimiter }).rows;
  } catch (err) {
    if (err instanceof CsvSyntaxError) throw new InputError(`${file}:${err.line}: ${err.message}`);
    throw err;
  }
}

function csvColumns(file: string, text: string): { head: string[]; rows: CsvRow[] } {
  const [head, ...rows] = csvRows(file, text, ',');
  return { head: head?.cells ?? [], rows };
}

/**
 * Reads one input of the backtest: a CSV `time,value`, or a native format of the shared data
 * (Energy-Charts JSON files or a folder of them, Energinet Elspotprices, CityLearn building and
 * weather files, Ausgrid solar home data). Prices come out in currency/kWh, energies in kWh per
 * interval, temperatures in °C.
 */
export function readSeries(path: string, role: Role, options: { timezone: string; pvKwp?: number }): SeriesSource {
  if (!existsSync(path)) throw new InputError(`${path}: no such file or folder`);
  const tz = options.timezone;
  if (statSync(path).isDirectory()) {
    if (!isPrice(role)) throw new InputError(`${path}: a folder is read as Energy-Charts price files, but this is the ${role} input`);
    const files = jsonFilesUnder(path);
    if (!files.length) throw new InputError(`${path}: no .json files in this folder`);
    return timestamped(readEnergyCharts(files), role, tz, `Energy-Charts JSON, ${files.length} files under ${path} (EUR/MWh → /kWh)`);
  }
  if (path.endsWith('.json')) return timestamped(readEnergyCharts([path]), role, tz, `Energy-Charts JSON ${path} (EUR/MWh → /kWh)`);
  const text = decodeText(readFileSync(path));
  const first = text.split(/\r?\n/, 1)[0];
  if (first.startsWith('HourUTC;')) return timestamped(readElspot(path, text), role, tz, `Energinet Elspotprices ${path} (EUR/MWh → /kWh)`);
  if (first.startsWith('month,hour,day_type')) {
    const { head, rows } = csvColumns(path, text);
    if (role === 'load') {
      const i = head.indexOf('non_shiftable_load');
      return yearlyHourly(rows.map((r) => Number(r.cells[i])), tz, `CityLearn ${basename(path)} non_shiftable_load (kWh/h), 1 Aug–31 Jul replayed by calendar`);
    }
    if (role === 'pv') {
      const kwp = options.pvKwp ?? cityLearnKwp(path);
      const i = head.indexOf('solar_generation');
      return yearlyHourly(rows.map((r) => (Number(r.cells[i]) * kwp) / 1000), tz, `CityLearn ${basename(path)} solar_generation × ${kwp} kWp`);
    }
    throw new InputError(`${path}: a CityLearn building file gives load or pv, not ${role}`);
  }
  if (first.startsWith('outdoor_dry_bulb_temperature')) {
    if (role !== 'outdoor') throw new InputError(`${path}: a CityLearn weather file gives the outdoor temperature, not ${role}`);
    const { rows } = csvColumns(path, text);
    return yearlyHourly(rows.map((r) => Number(r.cells[0])), tz, `CityLearn ${basename(path)} outdoor_dry_bulb_temperature`);
  }
  if (/^,GC,GG/.test(first)) {
    if (role !== 'load' && role !== 'pv') throw new InputError(`${path}: Ausgrid data gives load (GC) or pv (GG), not ${role}`);
    const { rows } = csvColumns(path, text);
    const col = role === 'load' ? 1 : 2;
    // half hours of average kW on a local clock without DST (48 a day): kWh = kW × 0.5
    const byWall = new Map<string, number>();
    rows.forEach(({ cells, line }) => {
      const m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d)/.exec(cells[0]);
      const v = Number(cells[col]);
      if (!m || !Number.isFinite(v)) throw new InputError(`${path}:${line}: cannot read "${cells.join(',')}"`);
      byWall.set(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}`, v * 0.5);
    });
    return wallClock(byWall, 30 * 60_000, tz, `Ausgrid ${basename(path)} ${role === 'load' ? 'GC' : 'GG'} (kW × 0.5 h), replayed on the same local date and clock time`);
  }
  return timestamped(readTimeValue(path, text, tz), role, tz, `CSV ${path} (time,value)`);
}

/** PV size of a CityLearn building from the schema.json beside it. */
function cityLearnKwp(path: string): number {
  const schema = join(dirname(path), 'schema.json');
  const name = basename(path, '.csv');
  try {
    const s = JSON.parse(readFileSync(schema, 'utf8'));
    const kwp = s.buildings?.[name]?.pv?.attributes?.nominal_power;
    if (typeof kwp === 'number') return kwp;
  } catch {
    // fall through to the error below
  }
  throw new InputError(`${path}: PV size unknown (no ${name} in ${schema}); give --pv-kwp`);
}

/** A fixed rate as a series (e.g. `--export-prices 0.08`). */
export function fixedRate(rate: number): SeriesSource {
  return { describe: `fixed ${rate}/kWh`, over: (from, to) => [{ start: from, end: to, value: rate }] };
}
