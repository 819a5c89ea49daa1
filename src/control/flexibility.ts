import type { EpochMs } from '../api/index.js';
import type { SiteProblem } from '../optimiser/site/index.js';
import type { PlanRecord } from './view.js';

/**
 * What this hub could use and must have, for a parent hub (`GET /flexibility`): per slot the
 * import it must have at least (base load and fixed flows, PV netted, never below 0) and could use
 * at most (that plus every connected flexible device at full power, capped by the site's own
 * `grid.max_import_w` — not by limits a parent set, so the answer does not shrink to what the
 * parent last gave), the import the plan expects, and the energy its EVs must have before their
 * deadlines. A battery is counted as flexible power, never as a need.
 */
export interface Flexibility {
  object: 'flexibility';
  site_id: string;
  plan_id: string;
  created_at: string;
  slot_minutes: number;
  slots: { start_time: string; end_time: string; min_w: number; max_w: number; planned_w: number }[];
  needs: { device_id: string; energy_wh: number; from: string; deadline: string; max_w: number }[];
}

const iso = (t: EpochMs) => new Date(t).toISOString();
const r1 = (x: number) => Math.round(x * 10) / 10;

export function flexibilityOf(rec: PlanRecord, siteId: string, ownMaxImportW: number | undefined, slotMinutes: number): Flexibility {
  const p: SiteProblem = rec.problem;
  const horizonEnd = p.slots[p.slots.length - 1].end;
  const slots = p.slots.map((s, t) => {
    const fixed = p.baseLoadW[t] + p.flows.reduce((a, f) => a + f.powerW[t], 0);
    const minW = Math.max(0, fixed);
    const flexible =
      p.evs.reduce((a, e) => a + (e.sessions.some((x) => (x.from ?? -Infinity) < s.end && (x.until ?? horizonEnd) > s.start) ? e.maxPowerW : 0), 0) +
      p.batteries.reduce((a, b) => a + b.maxChargeW, 0) +
      p.hvacs.reduce((a, h) => a + h.maxElectricW, 0) +
      p.loads.reduce((a, l) => a + l.ratedPowerW, 0);
    const maxW = Math.max(minW, Math.min(ownMaxImportW ?? Infinity, minW + flexible));
    return { start_time: iso(s.start), end_time: iso(s.end), min_w: r1(minW), max_w: r1(maxW), planned_w: r1(rec.plan.importW[t]) };
  });
  const needs = p.evs.flatMap((e) =>
    e.sessions
      .filter((x) => x.energyNeededWh > 0)
      .map((x) => ({ device_id: e.id, energy_wh: r1(Math.min(x.energyNeededWh, x.roomWh ?? Infinity)), from: iso(Math.max(x.from ?? rec.createdAt, rec.createdAt)), deadline: iso(x.until ?? horizonEnd), max_w: e.maxPowerW })),
  );
  needs.sort((a, b) => Date.parse(a.deadline) - Date.parse(b.deadline));
  return { object: 'flexibility', site_id: siteId, plan_id: rec.id, created_at: iso(rec.createdAt), slot_minutes: slotMinutes, slots, needs };
}
