import type { Device, Logger } from '../api/index.js';
import { nodeBaseId } from './model.js';
import type { PlanRecord } from './view.js';

/**
 * The import limit per slot for each child hub (a device with the `node` capability) after a
 * plan: what the plan gives it (its must-have plus the share of its needs the plan scheduled), and
 * of the grid connection's headroom left in the slot an equal part for children hanging from the
 * connection itself (a child on a circuit gets its planned power only, so no circuit limit is
 * passed). So children with needs get them first, and the limits of all children together never
 * exceed what the parent's connection has left for them. Where the connection has no limit, a
 * child gets what it said it could use at most.
 */
export function nodeLimits(rec: PlanRecord, nodes: readonly Device[]): Map<string, { start: number; watts: number }[]> {
  const { plan, problem } = rec;
  const out = new Map<string, { start: number; watts: number }[]>();
  const planned = (id: string, t: number) => (plan.devices.find((d) => d.id === id)?.powerW[t] ?? 0) + (plan.devices.find((d) => d.id === nodeBaseId(id))?.powerW[t] ?? problem.flows.find((f) => f.id === nodeBaseId(id))?.powerW[t] ?? 0);
  const atGrid = nodes.filter((d) => !d.circuit);
  for (const d of nodes) {
    const flex = d.caps.node!.flexibility();
    out.set(
      d.id,
      problem.slots.map((s, t) => {
        const own = Math.max(0, planned(d.id, t));
        const cap = problem.grid.maxImportW[t];
        if (!Number.isFinite(cap)) return { start: s.start, watts: Math.max(own, flex?.slots.find((x) => x.start <= s.start && s.start < x.end)?.maxW ?? own) };
        const headroom = Math.max(0, cap - plan.importW[t]);
        return { start: s.start, watts: Math.floor(own + (d.circuit ? 0 : headroom / atGrid.length)) };
      }),
    );
  }
  return out;
}

/** Sends each available child hub its limits; a failure is the adapter's to log (once), the child's limits expire by themselves. */
export async function sendNodeLimits(rec: PlanRecord, devices: readonly Device[], log: Logger): Promise<void> {
  const nodes = devices.filter((d) => d.caps.node && d.available && d.caps.node.flexibility());
  if (!nodes.length) return;
  const limits = nodeLimits(rec, nodes);
  await Promise.all(
    nodes.map((d) =>
      d.caps.node!.setImportLimit(limits.get(d.id)!).catch((err: unknown) => log.debug({ err, device: d.id }, 'could not send the child hub its limits')),
    ),
  );
}
