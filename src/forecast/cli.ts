import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import type { HubConfig } from '../core/config/schema.js';
import { parseReportTime } from '../metering/report.js';
import type { ForecastView } from './service.js';

/**
 * `homeflex forecast-check --from --to`: how wrong the hub's forecasts were, by lead time (MAE and
 * bias of PV and base load), asked of the running hub over GET /api/v1/forecasts, so it prints
 * exactly what the API and the dashboard show.
 */

export const FORECAST_CHECK_USAGE = `homeflex forecast-check --from DATE --to DATE [--json] [--config FILE] [--url URL] [--token TOKEN]

  --from, --to   YYYY-MM-DD (site-local days, --to included) or RFC 3339 times (--to excluded); at most 40 days
  --json         the API's answer instead of the table
  --config       the site file, to find the running hub's address and token (default: the demo)
  --url          the hub's address instead, e.g. http://127.0.0.1:8080; the token then comes from
                 --token or HOMEFLEX_TOKEN
`;

export interface ForecastCheckIo {
  out: (text: string) => void;
  err: (text: string) => void;
  loadConfig: (file: string) => HubConfig;
  defaultConfig: string;
  env?: NodeJS.ProcessEnv;
}

class CheckError extends Error {}

export async function forecastCheckCommand(argv: string[], io: ForecastCheckIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean', default: false }, config: { type: 'string', short: 'c' }, url: { type: 'string' }, token: { type: 'string' } },
    }));
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${FORECAST_CHECK_USAGE}`);
    return 2;
  }
  const missing = (['from', 'to'] as const).filter((k) => !values[k]);
  if (missing.length) {
    io.err(`homeflex forecast-check needs ${missing.map((m) => `--${m}`).join(', ')}\n\n${FORECAST_CHECK_USAGE}`);
    return 2;
  }
  try {
    const env = io.env ?? process.env;
    let base = values.url;
    let token = values.token ?? env.HOMEFLEX_TOKEN;
    let timezone = 'UTC';
    if (!base) {
      const file = values.config ?? io.defaultConfig;
      const config = io.loadConfig(file);
      if (!config.http.port) throw new CheckError(`${file}: http.port is 0 (chosen when the hub starts); pass --url with the address the hub logged`);
      const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
      base = `${config.http.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
      token ??= config.http.token;
      timezone = config.site.timezone;
    }
    const get = async (path: string) => {
      let res: Response;
      try {
        res = await fetch(`${base!.replace(/\/+$/, '')}/api/v1${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      } catch (err) {
        throw new CheckError(`no hub answers at ${base} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); start it with "homeflex start --config FILE", or pass --url`);
      }
      const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (!res.ok) throw new CheckError(`GET ${path}: ${res.status} ${String(json.message ?? res.statusText)}`);
      return json;
    };
    if (values.url) timezone = String(((await get('/meters')) as { location_timezone?: string }).location_timezone ?? 'UTC');
    let start: number;
    let end: number;
    try {
      start = parseReportTime(values.from!, timezone, false, '--from');
      end = parseReportTime(values.to!, timezone, true, '--to');
    } catch (err) {
      throw new CheckError((err as Error).message);
    }
    if (end <= start) throw new CheckError('--to must be after --from');
    const view = (await get(`/forecasts?start_time=${encodeURIComponent(new Date(start).toISOString())}&end_time=${encodeURIComponent(new Date(end).toISOString())}`)) as unknown as ForecastView & { start_time: string; end_time: string };
    if (values.json) {
      io.out(JSON.stringify(view, null, 2) + '\n');
      return 0;
    }
    io.out(formatForecastCheck(view, timezone));
    return 0;
  } catch (err) {
    if (err instanceof CheckError) {
      io.err(`homeflex forecast-check: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** The error table: one row per series and lead time, as GET /forecasts reports it. */
export function formatForecastCheck(view: ForecastView & { start_time: string; end_time: string }, timezone: string): string {
  const local = (t: string) => DateTime.fromISO(t, { zone: timezone }).toISO({ suppressMilliseconds: true });
  const lines: string[] = [`Forecast errors, ${local(view.start_time)} to ${local(view.end_time)} (${timezone})`];
  const s = view.source;
  lines.push(s ? `PV source: ${s.description ?? s.type}${s.error ? `, failing: ${s.error}` : ''}${s.degraded ? ' (clear sky × recent production stands in)' : ''}` : 'PV source: none configured (clear sky × recent production)');
  for (const c of view.calibration) lines.push(`calibration of ${c.device}: ${c.enabled ? `learned from ${c.pairs} measured hours` : 'off'}`);
  lines.push('');
  const head = ['series', 'lead time', 'hours', 'MAE W', 'bias W', 'mean actual W', 'MAE %'];
  const rows: string[][] = [];
  for (const series of view.series) {
    for (const e of series.errors) {
      if (!e.slots) continue;
      rows.push([series.series, e.horizon, String(e.slots), e.mae_w.toFixed(0), (e.bias_w > 0 ? '+' : '') + e.bias_w.toFixed(0), e.mean_actual_w.toFixed(0), e.mean_actual_w > 0 ? ((100 * e.mae_w) / e.mean_actual_w).toFixed(1) : '']);
    }
  }
  if (!rows.length) {
    lines.push('no forecasts with measurements in this window yet (the hub stores each plan’s forecasts hourly and compares them once the hour is measured)');
    return lines.join('\n') + '\n';
  }
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((x, c) => (c < 2 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ').trimEnd();
  lines.push(line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line));
  lines.push('', 'bias = forecast − actual: positive means the forecast was too high.');
  return lines.join('\n') + '\n';
}
