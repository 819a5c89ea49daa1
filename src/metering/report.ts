import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import type { HubConfig } from '../core/config/schema.js';

/**
 * `homeflex report`: energy and cost per day, week, month or year, asked of the running hub over
 * its HTTP API (the same prices, tariff history and records the dashboard sees, and no second
 * process reading the store while the hub writes it).
 */

export const REPORT_USAGE = `homeflex report --from DATE --to DATE --by day|week|month|year [--device ID | --sites A,B,…] [--csv] [--config FILE] [--url URL] [--token TOKEN]
homeflex report --bill --month YYYY-MM [--csv] [--config FILE] [--url URL] [--token TOKEN]

  --from, --to   YYYY-MM-DD (site-local days, --to included) or RFC 3339 times (--to excluded)
  --by           period of each row
  --device       one device (or the site's location id); default: the site meter and every device
  --sites        the site meters of these sites, when the hub keeps its meter records in a
                 PostgreSQL database other hubs write to as well (storage.meters.postgres)
  --csv          comma-separated values instead of a table
  --bill         the site's bill of --month: energy by tariff window, grid fees, levies, standing
                 and capacity charges (with the peak that set it and the device that drove it), VAT,
                 export earnings, total
  --config       the site file, to find the running hub's address and token (default: the demo)
  --url          the hub's address instead, e.g. http://127.0.0.1:8080; the token then comes from
                 --token or HOMEFLEX_TOKEN
`;

export interface ReportIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Reads a site file (the CLI passes the validating loader). */
  loadConfig: (file: string) => HubConfig;
  defaultConfig: string;
  env?: NodeJS.ProcessEnv;
}

interface CostRow {
  start_time: string;
  end_time: string;
  energy: { value: number };
  tariff: { value: number; rate?: number | null };
}

class ReportError extends Error {}

const BY = { day: 'DAY', week: 'WEEK', month: 'MONTH', year: 'YEAR' } as const;

/** A `--from`/`--to` value as an instant: a date is the start of that local day (of the next one for an inclusive `--to`). */
export function parseReportTime(value: string, timezone: string, isEnd: boolean, flag: string): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const d = DateTime.fromISO(value, { zone: timezone });
    if (!d.isValid) throw new ReportError(`${flag} ${value}: not a valid date`);
    return (isEnd ? d.plus({ days: 1 }) : d).toMillis();
  }
  const t = DateTime.fromISO(value, { setZone: true });
  if (!t.isValid || !/[zZ]|[+-]\d{2}:?\d{2}$/.test(value)) throw new ReportError(`${flag} ${value}: give a date YYYY-MM-DD or an RFC 3339 time with an offset`);
  return t.toMillis();
}

const label = (by: keyof typeof BY, startTime: string) => (by === 'month' ? startTime.slice(0, 7) : by === 'year' ? startTime.slice(0, 4) : startTime.slice(0, 10));

export async function reportCommand(argv: string[], io: ReportIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        by: { type: 'string' },
        device: { type: 'string' },
        sites: { type: 'string' },
        csv: { type: 'boolean', default: false },
        bill: { type: 'boolean', default: false },
        month: { type: 'string' },
        config: { type: 'string', short: 'c' },
        url: { type: 'string' },
        token: { type: 'string' },
      },
    }));
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${REPORT_USAGE}`);
    return 2;
  }
  if (values.bill && !values.month) {
    io.err(`homeflex report --bill needs --month YYYY-MM\n\n${REPORT_USAGE}`);
    return 2;
  }
  if (values.month && !values.bill) {
    io.err(`--month goes with --bill (for energy and cost by period use --from, --to and --by)\n`);
    return 2;
  }
  const missing = values.bill ? [] : (['from', 'to', 'by'] as const).filter((k) => !values[k]);
  if (missing.length) {
    io.err(`homeflex report needs ${missing.map((m) => `--${m}`).join(', ')}\n\n${REPORT_USAGE}`);
    return 2;
  }
  const by = (values.by ?? 'month').toLowerCase() as keyof typeof BY;
  if (!(by in BY)) {
    io.err(`--by ${values.by}: must be day, week, month or year\n`);
    return 2;
  }
  try {
    const env = io.env ?? process.env;
    let base = values.url;
    let token = values.token ?? env.HOMEFLEX_TOKEN;
    if (!base) {
      const file = values.config ?? io.defaultConfig;
      const config = io.loadConfig(file);
      if (!config.http.port) throw new ReportError(`${file}: http.port is 0 (chosen when the hub starts); pass --url with the address the hub logged`);
      const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
      base = `${config.http.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
      token ??= config.http.token;
    }
    const api = `${base.replace(/\/+$/, '')}/api/v1`;
    const request = async (method: string, path: string, body?: unknown) => {
      let res: Response;
      try {
        res = await fetch(`${api}${path}`, {
          method,
          headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        throw new ReportError(`no hub answers at ${base} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); start it with "homeflex start --config FILE", or pass --url`);
      }
      const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (!res.ok) throw new ReportError(`${method} ${path}: ${res.status} ${String(json.message ?? res.statusText)}`);
      return json;
    };

    if (values.bill) {
      const loc = (await request('GET', '/meters')) as { location_id: string };
      const bill = (await request('GET', `/bill/${encodeURIComponent(loc.location_id)}?month=${encodeURIComponent(values.month!)}`)) as unknown as BillJson;
      io.out(values.csv ? billCsv(bill) : billText(bill));
      return 0;
    }
    const meters = (await request('GET', '/meters')) as { location_id: string; location_timezone: string; currency_code: string; data: { id: string; kind: string }[] };
    const tz = meters.location_timezone;
    const start = parseReportTime(values.from!, tz, false, '--from');
    const end = parseReportTime(values.to!, tz, true, '--to');
    if (end <= start) throw new ReportError(`--to must be after --from`);
    // --sites: the location of each site stored in the hub's PostgreSQL database (docs/postgres.md)
    const sites = values.sites?.split(',').map((x) => x.trim()).filter(Boolean);
    if (sites && values.device) throw new ReportError('--sites and --device: give one of them');
    const ids = sites ?? (values.device ? [values.device] : meters.data.map((m) => m.id));
    if (!ids.length) throw new ReportError('the hub has no meter records yet');
    const window = { start_time: new Date(start).toISOString(), end_time: new Date(end).toISOString() };
    const rows: { period: string; device: string; importWh: number; importCost: number; exportWh: number; exportValue: number }[] = [];
    for (const id of ids) {
      const q = `aggregation=${BY[by]}&include_tariff=true`;
      const [imp, exp] = await Promise.all(
        (['IMPORT', 'EXPORT'] as const).map((d) => request('POST', `/costs/interval/${encodeURIComponent(id)}?direction=${d}&${q}`, window) as Promise<{ data: CostRow[] }>),
      );
      imp.data.forEach((r, i) => {
        const e = exp.data[i];
        rows.push({ period: label(by, r.start_time), device: id, importWh: r.energy.value, importCost: r.tariff.value, exportWh: e?.energy.value ?? 0, exportValue: e?.tariff.value ?? 0 });
      });
    }
    const cur = meters.currency_code;
    if (values.csv) {
      io.out(`period,device,import_kwh,import_cost_${cur},export_kwh,export_value_${cur},net_cost_${cur}\n`);
      for (const r of rows) io.out([r.period, csvField(r.device), kwh(r.importWh), money(r.importCost), kwh(r.exportWh), money(r.exportValue), money(r.importCost - r.exportValue)].join(',') + '\n');
      return 0;
    }
    const head = ['period', 'device', 'import kWh', `import ${cur}`, 'export kWh', `export ${cur}`, `net ${cur}`];
    const table: string[][] = [];
    let quiet = 0;
    for (const id of ids) {
      const mine = rows.filter((r) => r.device === id);
      // meters without energy in the window would only add rows of zeros
      if (!values.device && !sites && mine.every((r) => r.importWh === 0 && r.exportWh === 0)) {
        quiet++;
        continue;
      }
      for (const r of mine) table.push([r.period, r.device, kwh(r.importWh), money(r.importCost), kwh(r.exportWh), money(r.exportValue), money(r.importCost - r.exportValue)]);
      const sum = (f: (r: (typeof rows)[number]) => number) => mine.reduce((a, r) => a + f(r), 0);
      if (mine.length > 1) table.push(['total', id, kwh(sum((r) => r.importWh)), money(sum((r) => r.importCost)), kwh(sum((r) => r.exportWh)), money(sum((r) => r.exportValue)), money(sum((r) => r.importCost - r.exportValue))]);
    }
    const widths = head.map((h, c) => Math.max(h.length, ...table.map((r) => r[c].length)));
    const line = (cells: string[]) => cells.map((x, c) => (c < 2 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ').trimEnd() + '\n';
    io.out(`Energy and cost, ${DateTime.fromMillis(start, { zone: tz }).toISO({ suppressMilliseconds: true })} to ${DateTime.fromMillis(end, { zone: tz }).toISO({ suppressMilliseconds: true })} (${tz}), by ${by}\n\n`);
    io.out(line(head));
    io.out(line(widths.map((w) => '-'.repeat(w))));
    for (const r of table) io.out(line(r));
    if (quiet) io.out(`(${quiet} meter${quiet === 1 ? '' : 's'} without energy in this window left out)\n`);
    // savings are each hub's own (GET /savings answers for its site only)
    if (sites) return 0;

    // savings of the location (every device) or of the one device asked for
    const target = values.device ?? meters.location_id;
    const s = (await request('GET', `/savings/${encodeURIComponent(target)}?start_time=${encodeURIComponent(window.start_time)}&end_time=${encodeURIComponent(window.end_time)}`)) as {
      baseline_cost: number;
      actual_cost: number;
      savings: number;
      savings_percentage: number | null;
      baseline?: string;
      devices?: { device_id: string; kind: string; baseline_cost: number; actual_cost: number; savings: number; savings_percentage: number | null }[];
    };
    io.out(`\nSavings against the baselines (${cur})\n`);
    const pct = (p: number | null) => (p === null ? '' : `${p.toFixed(1)} %`);
    const srows = (s.devices ?? [{ device_id: target, kind: '', ...s }]).filter((d) => d.baseline_cost !== 0 || d.actual_cost !== 0 || d.kind === 'storage');
    const sTable = [['device', 'kind', 'baseline', 'actual', 'saved', ''], ...srows.map((d) => [d.device_id, d.kind, money(d.baseline_cost), money(d.actual_cost), money(d.savings), pct(d.savings_percentage)])];
    if (s.devices) sTable.push(['all', '', money(s.baseline_cost), money(s.actual_cost), money(s.savings), pct(s.savings_percentage)]);
    const sw = sTable[0].map((_, c) => Math.max(...sTable.map((r) => r[c].length)));
    for (const r of sTable) io.out(r.map((x, c) => (c < 2 ? x.padEnd(sw[c]) : x.padStart(sw[c]))).join('  ').trimEnd() + '\n');
    if (!s.devices && s.baseline) io.out(`baseline: ${s.baseline}\n`);
    if (!values.device) {
      // the site replayed with no battery and with the battery in its own mode, against what it paid
      const site = (await request('GET', `/savings/${encodeURIComponent(target)}?baseline=self_consumption&start_time=${encodeURIComponent(window.start_time)}&end_time=${encodeURIComponent(window.end_time)}`)) as unknown as SiteSavings;
      io.out(`\n${siteSavingsLine(site, cur)}\n`);
      for (const w of site.warnings ?? []) io.out(`  (${w})\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof ReportError) {
      io.err(`homeflex report: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

const kwh = (wh: number) => (wh / 1000).toFixed(3);
const money = (x: number) => x.toFixed(2);
const csvField = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

interface SiteSavings {
  actual_cost: number;
  savings_vs_none: number;
  savings_vs_self_consumption: number;
  measured_by: 'grid_meter' | 'device_meters';
  warnings?: string[];
}

/** One line: what the site paid, and what that saved against no battery and against the battery's own mode. */
export function siteSavingsLine(s: SiteSavings, currency: string): string {
  const vs = (x: number) => (x >= 0 ? `${money(x)} saved` : `${money(-x)} lost`);
  return `Site (${s.measured_by === 'grid_meter' ? 'grid meter' : 'device meters'}): paid ${money(s.actual_cost)} ${currency}; against no battery ${vs(s.savings_vs_none)}, against the battery's own mode ${vs(s.savings_vs_self_consumption)}`;
}

interface BillJson {
  month?: string;
  location_id: string;
  location_timezone: string;
  currency_code: string;
  start_time: string;
  end_time: string;
  measured_by: string;
  energy: { window: string; kwh: number; rate: number; amount: number }[];
  grid_fees: { window: string; kwh: number; rate: number; amount: number }[];
  levies: { name: string; kwh: number; rate: number; amount: number }[];
  standing_charges: { name: string; per: string; count: number; rate: number; amount: number }[];
  capacity_charges: { month: string; description: string; peaks: { kw: number; start_time: string; end_time: string; driven_by: { device_id: string; kwh: number; share: number } | null }[]; amount: number }[];
  net: number;
  vat_percent: number;
  vat: number;
  export_earnings: { label: string; kwh: number; rate: number; amount: number }[];
  total: number;
  import_kwh: number;
  export_kwh: number;
  warnings?: string[];
}

/** The bill's lines as (section, item, kWh or count, rate, amount) rows; the total last. */
function billRows(b: BillJson): string[][] {
  const rows: string[][] = [];
  const rate = (x: number) => String(Math.round(x * 1e6) / 1e6);
  for (const l of b.energy) rows.push(['energy', l.window, l.kwh.toFixed(3), rate(l.rate), money(l.amount)]);
  for (const l of b.grid_fees) rows.push(['grid fee', l.window, l.kwh.toFixed(3), rate(l.rate), money(l.amount)]);
  for (const l of b.levies) rows.push(['levy', l.name, l.kwh.toFixed(3), rate(l.rate), money(l.amount)]);
  for (const l of b.standing_charges) rows.push(['standing', l.name, `${Math.round(l.count * 1e4) / 1e4} ${l.per}${l.count === 1 ? '' : 's'}`, rate(l.rate), money(l.amount)]);
  for (const c of b.capacity_charges) rows.push(['capacity', c.description, '', '', money(c.amount)]);
  rows.push(['net', '', '', '', money(b.net)]);
  if (b.vat_percent) rows.push(['VAT', `${b.vat_percent} %`, '', '', money(b.vat)]);
  for (const l of b.export_earnings) rows.push(['export', l.label, l.kwh.toFixed(3), rate(l.rate), money(-l.amount)]);
  rows.push(['total', '', '', '', money(b.total)]);
  return rows;
}

function billCsv(b: BillJson): string {
  const head = `section,item,quantity,rate,amount_${b.currency_code}\n`;
  return head + billRows(b).map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}

function billText(b: BillJson): string {
  const rows = billRows(b);
  const head = ['', 'item', 'kWh / count', 'rate', b.currency_code];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((x, c) => (c < 2 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ').trimEnd() + '\n';
  let out = `Bill ${b.month ?? `${b.start_time} to ${b.end_time}`} for ${b.location_id} (${b.location_timezone}), from the ${b.measured_by === 'grid_meter' ? 'grid meter' : 'device meters'}: imported ${b.import_kwh.toFixed(3)} kWh, exported ${b.export_kwh.toFixed(3)} kWh\n\n`;
  out += line(head) + line(widths.map((w) => '-'.repeat(w)));
  for (const r of rows) out += line(r);
  for (const c of b.capacity_charges) {
    for (const p of c.peaks) {
      const d = p.driven_by ? `, driven by ${p.driven_by.device_id} (${p.driven_by.kwh.toFixed(3)} kWh, ${Math.round(p.driven_by.share * 100)} % of the site's import then)` : '';
      out += `  capacity ${c.month}: peak ${p.kw} kW ${p.start_time} to ${p.end_time.slice(11)}${d}\n`;
    }
  }
  for (const w of b.warnings ?? []) out += `  (${w})\n`;
  return out;
}
