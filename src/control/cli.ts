import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import type { HubConfig } from '../core/config/schema.js';
import { Hub } from '../core/host.js';
import { createLogger } from '../core/logging.js';
import { planOnly } from './part.js';
import { planView, type PlanView } from './view.js';

export interface PlanCommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
  defaultConfig: string;
  loadConfig: (file: string) => HubConfig;
}

const REASON: Record<string, string> = { price: 'price', limit: 'limit', comfort: 'comfort', deadline: 'deadline', solar: 'solar', setpoint: 'setpoint', idle: '' };

/** The plan as a table: one row per slot, local time, rates, grid flow and each device's power and reason. */
export function formatPlan(plan: PlanView, timezone: string): string {
  const lines: string[] = [];
  const t = (iso: string) => DateTime.fromISO(iso, { zone: timezone });
  lines.push(`plan ${plan.id} (${plan.status}) made ${t(plan.created_at).toFormat('yyyy-LL-dd HH:mm')}, valid until ${t(plan.valid_until).toFormat('HH:mm')}, after ${plan.trigger}`);
  lines.push(`expected cost ${plan.cost.toFixed(2)} ${plan.currency_code} (import ${(plan.import_wh / 1000).toFixed(1)} kWh, export ${(plan.export_wh / 1000).toFixed(1)} kWh), solved in ${plan.solver.solve_ms} ms`);
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  for (const n of plan.notes) lines.push(`note: ${n}`);
  const cols = plan.devices.map((d) => d.id);
  const width = Math.max(14, ...cols.map((c) => c.length + 1));
  lines.push(['time ', 'import', 'export', '  grid W', ...cols.map((c) => c.padStart(width))].join('  '));
  plan.slots.forEach((s, k) => {
    const grid = plan.import_w[k] - plan.export_w[k];
    const cells = plan.devices.map((d) => {
      const w = d.power_w[k];
      const extra = d.kind === 'battery' ? ` ${d.modes?.[k] ?? ''}` : d.kind === 'hvac' ? ` ${d.temperature_c?.[k]?.toFixed(1)}°` : '';
      return `${Math.round(w)}${extra} ${REASON[d.reasons[k]] ?? d.reasons[k]}`.trim().padStart(width);
    });
    lines.push([t(s.start_time).toFormat('HH:mm'), plan.import_rate[k].toFixed(3).padStart(6), plan.export_rate[k].toFixed(3).padStart(6), `${grid >= 0 ? '+' : ''}${Math.round(grid)}`.padStart(8), ...cells].join('  '));
  });
  for (const d of plan.devices) {
    if (d.kind === 'ev' && d.fill_up_to_wh != null) lines.push(`${d.id}: ${((d.energy_wh ?? 0) / 1000).toFixed(1)} kWh planned, no target: filling up to ${(d.fill_up_to_wh / 1000).toFixed(1)} kWh in the cheapest slots`);
    else if (d.kind === 'ev') lines.push(`${d.id}: ${((d.energy_wh ?? 0) / 1000).toFixed(1)} kWh planned of ${((d.energy_needed_wh ?? 0) / 1000).toFixed(1)} kWh needed${d.leave_time ? ` by ${t(d.leave_time).toFormat('HH:mm')}` : ''}${d.shortfall_wh ? `, ${(d.shortfall_wh / 1000).toFixed(1)} kWh short` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * `homeflex plan [--config FILE] [--json]`: asks the hub running with that configuration for its
 * plan; when none answers, starts the hub from the file without sending any command, plans once,
 * prints, and stops.
 */
export async function planCommand(argv: string[], io: PlanCommandIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } });
  const file = values.config ?? io.defaultConfig;
  const config = io.loadConfig(file);
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  const print = (plan: PlanView) => io.out(values.json ? JSON.stringify(plan, null, 2) + '\n' : formatPlan(plan, config.site.timezone));
  if (config.http.port !== 0) {
    const url = `${config.http.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.http.port}/api/v1/plan`;
    let res: Response | undefined;
    try {
      res = await fetch(url, { headers: config.http.token ? { authorization: `Bearer ${config.http.token}` } : {}, signal: AbortSignal.timeout(3000) });
    } catch {
      res = undefined; // nothing listening: plan locally below
    }
    if (res) {
      const body = (await res.json().catch(() => ({}))) as PlanView & { message?: string };
      if (!res.ok) {
        io.err(`the hub at ${url} has no plan: ${body.message ?? res.status}\n`);
        return 1;
      }
      print(body);
      return 0;
    }
  }
  io.err(`no hub answers for ${file}; planning once from it (no device is commanded)\n`);
  const hub = new Hub({
    configFile: file,
    logger: createLogger({ level: 'error', format: 'json' }),
    override: (c) => {
      c.http.port = 0;
      c.http.host = '127.0.0.1';
      planOnly.add(c);
    },
  });
  try {
    await hub.start();
    const control = hub.services.control!;
    await control.settled();
    if (!control.latest) {
      io.err(`could not plan: ${control.lastError?.message ?? 'no plan was made'}\n`);
      return 1;
    }
    print(planView(control.latest, hub.site) as PlanView);
    return 0;
  } finally {
    await hub.stop();
  }
}
