import type { EpochMs } from '../api/index.js';
import type { SitePlan, SiteProblem } from '../optimiser/site/index.js';
import type { StoredLimits } from './limits.js';
import type { EffectiveSettings, ModelNotes } from './model.js';

/** A node's or device's limits in force, per slot, with what the plan puts through it. */
export interface LimitView {
  id: string;
  kind: 'site' | 'circuit' | 'device';
  parent?: string | null;
  max_import_w?: (number | null)[];
  max_export_w?: (number | null)[];
  net_w?: number[];
  external: StoredLimits | null;
}

/** A plan as the control loop keeps it: the optimiser's answer and what it was made from. */
export interface PlanRecord {
  id: string;
  createdAt: EpochMs;
  validUntil: EpochMs;
  trigger: string;
  solveMs: number;
  problem: SiteProblem;
  plan: SitePlan;
  notes: ModelNotes;
  settings: Record<string, EffectiveSettings>;
  external: Record<string, StoredLimits>;
}

const iso = (t: EpochMs) => new Date(t).toISOString();
/** JSON has no Infinity: "no limit" is null. */
const watts = (xs: readonly (number | undefined)[]) => xs.map((x) => (x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10) / 10));
const r4 = (x: number) => Math.round(x * 1e5) / 1e5;

/**
 * The plan in the HTTP API's terms (snake_case, RFC 3339, W, Wh, site currency): per device the
 * planned power per slot with the reason for each, the expected cost, and the limits in force.
 */
export function planView(rec: PlanRecord, site: { id: string; currency: string }) {
  const { plan, problem } = rec;
  const at = (id: string) => problem.circuits.find((c) => c.id === id);
  return {
    object: 'plan',
    id: rec.id,
    location_id: site.id,
    currency_code: site.currency,
    created_at: iso(rec.createdAt),
    valid_until: iso(rec.validUntil),
    trigger: rec.trigger,
    status: plan.status,
    cost: r4(plan.cost),
    import_wh: plan.importWh,
    export_wh: plan.exportWh,
    slots: plan.slots.map((s) => ({ start_time: iso(s.start), end_time: iso(s.end) })),
    import_rate: plan.importRate.map(r4),
    export_rate: plan.exportRate.map(r4),
    import_w: plan.importW,
    export_w: plan.exportW,
    base_load_w: watts(problem.baseLoadW),
    pv_w: watts(problem.slots.map((_, t) => -problem.flows.reduce((a, f) => a + f.powerW[t], 0))),
    devices: plan.devices.map((d) => {
      const settings = rec.settings[d.id] ?? {};
      const ev = problem.evs.find((e) => e.id === d.id);
      const leave = ev?.sessions[0]?.until;
      return {
        id: d.id,
        kind: d.kind,
        power_w: d.powerW,
        reasons: d.reasons,
        energy_wh: Math.round(d.energyWh),
        // the device's energy at the rate it moves at the meter: the import rate while the site imports, else the export rate
        expected_cost: r4(d.powerW.reduce((a, w, t) => a + (plan.exportW[t] > 0 ? plan.exportRate[t] : plan.importRate[t]) * w * ((plan.slots[t].end - plan.slots[t].start) / 3_600_000) / 1000, 0)),
        ...(d.socWh ? { soc_wh: d.socWh, modes: d.modes } : {}),
        ...(d.temperatureC ? { temperature_c: d.temperatureC, setpoint_c: d.setpointC, discomfort_kh: d.discomfortKh } : {}),
        ...(d.on ? { on: d.on, shortfall_hours: d.shortfallHours } : {}),
        ...(d.tankC ? { tank_c: d.tankC, tank_w: d.tankW, tank_short_kh: d.tankShortKh } : {}),
        ...(d.spaceW ? { space_w: d.spaceW } : {}),
        ...(d.sgReady ? { sg_ready: d.sgReady } : {}),
        ...(d.kind === 'ev' ? { shortfall_wh: d.shortfallWh, energy_needed_wh: Math.round(ev?.sessions[0]?.energyNeededWh ?? 0), fill_up_to_wh: ev?.sessions[0]?.fill ? Math.round(ev.sessions[0].roomWh ?? 0) : null, leave_time: leave !== undefined ? iso(leave) : null, target: settings.target ?? null } : {}),
        ...(settings.paused ? { paused: true } : {}),
      };
    }),
    limits: <LimitView[]>[
      { id: site.id, kind: 'site', max_import_w: watts(problem.grid.maxImportW), max_export_w: watts(problem.grid.maxExportW), net_w: plan.importW.map((i, t) => Math.round((i - plan.exportW[t]) * 10) / 10), external: rec.external[site.id] ?? null },
      ...plan.nodes.map((n) => ({ id: n.id, kind: 'circuit', parent: at(n.id)?.parent ?? null, max_import_w: watts(n.maxImportW), max_export_w: watts(n.maxExportW), net_w: n.netW, external: rec.external[n.id] ?? null })),
      ...Object.entries(rec.external)
        .filter(([id]) => id !== site.id && !plan.nodes.some((n) => n.id === id))
        .map(([id, ext]) => ({ id, kind: 'device', external: ext })),
    ],
    // issue 17: PV given up per slot and the limit sent (null = none), the monthly peak, the capacity step
    ...(plan.curtailment ? { curtailment: plan.curtailment.map((c) => ({ id: c.id, curtail_w: c.curtailW, limit_w: watts(c.limitW) })) } : {}),
    ...(plan.peak ? { peak: { peak_w: plan.peak.peakW, next_month_peak_w: plan.peak.nextMonthPeakW ?? null, cost: r4(plan.peak.cost) } } : {}),
    ...(plan.tiers ? { capacity_step: { mean_top_days_w: plan.tiers.meanTopW, fee_per_month: r4(plan.tiers.feePerMonth), step: plan.tiers.tier } } : {}),
    warnings: plan.warnings,
    notes: rec.notes.notes,
    forecasts: { base_load: rec.notes.forecasts.baseLoad, pv: rec.notes.forecasts.pv, estimated_price_slots: rec.notes.estimatedPrices },
    solver: { ...plan.solver, solve_ms: Math.round(rec.solveMs * 10) / 10 },
  };
}

export type PlanView = ReturnType<typeof planView>;
