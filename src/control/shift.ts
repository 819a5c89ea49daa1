import type { EpochMs } from '../api/index.js';
import type { PlanRecord } from './view.js';

/** Arrays that are not per slot even when they happen to have as many entries as the plan has slots. */
const NOT_PER_SLOT = new Set(['warnings', 'notes', 'pv', 'devices', 'nodes', 'curtailment', 'batteries', 'evs', 'hvacs', 'loads', 'flows', 'circuits', 'sessions', 'runs', 'scenarios', 'tiers', 'onAtOrBelowRateIn']);

/** `value` with the first `k` entries dropped from every per-slot array (of `slots` entries; a state of charge may have one more). */
function dropSlots(value: unknown, key: string, k: number, slots: number): unknown {
  if (Array.isArray(value)) {
    const perSlot = !NOT_PER_SLOT.has(key) && (value.length === slots || (key === 'socWh' && value.length === slots + 1)) && (key === 'slots' || value.every((x) => x === null || typeof x !== 'object'));
    return perSlot ? value.slice(k) : value.map((x) => dropSlots(x, '', k, slots));
  }
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(Object.entries(value).map(([name, x]) => [name, dropSlots(x, name, k, slots)]));
  }
  return value;
}

/**
 * The previous plan shifted to now: its slots from the one that holds `now` on, to stand in for a
 * plan that could not be made in time. Undefined when the previous plan has no slot left.
 */
export function shiftedPlan(previous: PlanRecord, now: EpochMs, note: string): PlanRecord | undefined {
  const slots = previous.plan.slots;
  const k = slots.findIndex((s) => s.start <= now && now < s.end);
  if (k < 0) return undefined;
  const n = slots.length;
  const plan = dropSlots(previous.plan, '', k, n) as PlanRecord['plan'];
  const problem = dropSlots(previous.problem, '', k, n) as PlanRecord['problem'];
  return {
    ...previous,
    plan,
    problem,
    notes: { ...previous.notes, notes: [note, ...previous.notes.notes.filter((w) => w !== note)] },
  };
}
