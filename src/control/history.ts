import type { MeterReading } from '../api/index.js';
import type { EnergyInterval } from '../optimiser/forecast/index.js';

const QUARTER = 900_000;

/**
 * Quarter-hour energy per device, from the meters' cumulative registers, for the forecasts: the
 * house's own base load history and the PV's recent production. Keeps `keepDays` days.
 */
export class EnergyHistory {
  /** device → quarter start → signed Wh (+ = drawn by the device, − = delivered). */
  private readonly buckets = new Map<string, Map<number, number>>();
  private readonly last = new Map<string, { time: number; importWh: number; exportWh: number }>();

  constructor(private readonly keepDays = 35) {}

  /**
   * Adds the energy between this reading and the device's previous one, spread over the quarters it
   * spans. A channel other than `device` is kept as `<device>:<channel>` (a grid meter as `p1:grid`).
   */
  add(deviceId: string, r: MeterReading) {
    const channel = r.channel ?? 'device';
    if (r.importWh === undefined) return;
    const key = channel === 'device' ? deviceId : `${deviceId}:${channel}`;
    const prev = this.last.get(key);
    const cur = { time: r.time, importWh: r.importWh, exportWh: r.exportWh ?? 0 };
    this.last.set(key, cur);
    if (!prev || cur.time <= prev.time) return;
    const dImp = cur.importWh - prev.importWh;
    const dExp = cur.exportWh - prev.exportWh;
    // a register that went backwards was reset: that interval is unknown
    if (dImp < 0 || dExp < 0) return;
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = new Map()));
    const wh = dImp - dExp;
    const span = cur.time - prev.time;
    for (let q = Math.floor(prev.time / QUARTER) * QUARTER; q < cur.time; q += QUARTER) {
      const overlap = Math.min(cur.time, q + QUARTER) - Math.max(prev.time, q);
      if (overlap > 0) b.set(q, (b.get(q) ?? 0) + (wh * overlap) / span);
    }
    const oldest = cur.time - this.keepDays * 86_400_000;
    if (b.size > this.keepDays * 96 + 8) for (const q of b.keys()) if (q < oldest) b.delete(q);
  }

  /** Whole quarters of the given devices summed, as intervals (only quarters every device has). */
  intervals(deviceIds: readonly string[], until: number, sign: 1 | -1 = 1): EnergyInterval[] {
    if (!deviceIds.length) return [];
    const maps = deviceIds.map((id) => this.buckets.get(id));
    if (maps.some((m) => !m)) return [];
    const quarters = [...maps[0]!.keys()].filter((q) => q + QUARTER <= until && maps.every((m) => m!.has(q))).sort((a, b) => a - b);
    return quarters.map((q) => ({ start: q, end: q + QUARTER, wh: sign * maps.reduce((a, m) => a + m!.get(q)!, 0) }));
  }

  /**
   * The house's own load per whole quarter: the grid meters' net import minus the net flows of the
   * devices the plan knows (a quarter a device has no record of counts as zero for it), for the
   * quarters every grid meter has.
   */
  houseLoad(gridKeys: readonly string[], knownKeys: readonly string[], until: number): EnergyInterval[] {
    const grid = this.intervals(gridKeys, until);
    const known = knownKeys.map((k) => this.buckets.get(k));
    return grid.map((g) => ({ ...g, wh: known.reduce((a, m) => a - (m?.get(g.start) ?? 0), g.wh) }));
  }

  /** Energy a device drew in `[start, end)` (Wh), from whole or partial quarters. */
  drawnWh(deviceId: string, start: number, end: number): number {
    const b = this.buckets.get(deviceId);
    if (!b) return 0;
    let wh = 0;
    for (let q = Math.floor(start / QUARTER) * QUARTER; q < end; q += QUARTER) {
      const v = b.get(q);
      if (v === undefined) continue;
      const overlap = Math.min(end, q + QUARTER) - Math.max(start, q);
      if (overlap > 0) wh += (Math.max(0, v) * overlap) / QUARTER;
    }
    return wh;
  }

  toJSON(): Record<string, [number, number][]> {
    return Object.fromEntries([...this.buckets].map(([id, m]) => [id, [...m].map(([q, wh]) => [q, Math.round(wh * 10) / 10] as [number, number])]));
  }

  restore(saved: Record<string, [number, number][]> | undefined) {
    for (const [id, list] of Object.entries(saved ?? {})) {
      if (!Array.isArray(list)) continue;
      const m = new Map<number, number>();
      for (const e of list) if (Array.isArray(e) && Number.isFinite(e[0]) && Number.isFinite(e[1])) m.set(e[0], e[1]);
      this.buckets.set(id, m);
    }
  }
}
