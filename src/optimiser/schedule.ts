import type { Direction, EpochMs, PriceSeries, TimeWindow } from '../api/index.js';
import { HOUR } from '../tariff/series.js';

/**
 * Energy schedules (DESIGN.md §4): move `energyWh` into (IMPORT) or out of (EXPORT) each device
 * inside its window at no more than its power, all devices together within the site's limit in
 * every slot, at the least net cost (import cost minus export earnings).
 *
 * This is a transportation problem (devices supply energy, time intervals take it, each pair and
 * each interval capped), solved exactly as a min-cost flow by successive shortest paths. The
 * residual graph is kept compressed to the devices: an edge i→j means "i takes more in interval k
 * where j gives some back", and every edge's cheapest interval comes from a lazily cleaned heap, so
 * each augmentation costs O(d³ + d² log K) for d devices and K intervals.
 */

export interface ScheduleDevice {
  id: string;
  direction: Direction;
  window: TimeWindow;
  maxPowerW: number;
  energyWh: number;
}

export interface ScheduleRequest {
  devices: ScheduleDevice[];
  /** The site's limit on the sum of all devices' power in every interval (W). */
  siteMaxPowerW: number;
  importSeries: PriceSeries;
  exportSeries: PriceSeries;
  /** Optional price limits: import only at or below `import`, export only at or above `export`. */
  priceLimit?: { import?: number; export?: number };
}

export interface ScheduledInterval {
  start: EpochMs;
  end: EpochMs;
  powerW: number;
  energyWh: number;
}

export interface DeviceSchedule {
  id: string;
  direction: Direction;
  energyWh: number;
  /** Cost (IMPORT) or earnings (EXPORT) of the schedule, in the site currency. */
  value: number;
  /** The same for the baseline: full power from the window's start. */
  baselineValue: number;
  /** Baseline cost minus cost (IMPORT), or earnings minus baseline earnings (EXPORT). */
  savings: number;
  confidence: number;
  intervals: ScheduledInterval[];
}

export interface ScheduleResult {
  devices: DeviceSchedule[];
  /** Import costs minus export earnings. */
  netCost: number;
  baselineNetCost: number;
  confidence: number;
}

/** Not all the energy fits in the windows, the device limits, the site limit and the priced time. */
export class InfeasibleScheduleError extends Error {
  constructor(
    readonly requestedWh: number,
    readonly feasibleWh: number,
    readonly devices: { id: string; requestedWh: number; feasibleWh: number }[],
  ) {
    super(
      `only ${round(feasibleWh, 1)} Wh of the ${round(requestedWh, 1)} Wh requested can be moved within the windows, power limits and priced time (` +
        devices.filter((d) => d.feasibleWh < d.requestedWh - EPS_WH).map((d) => `${d.id}: ${round(d.feasibleWh, 1)} of ${round(d.requestedWh, 1)} Wh`).join(', ') +
        ')',
    );
    this.name = 'InfeasibleScheduleError';
  }
}

const EPS_WH = 1e-6;
const round = (x: number, dp: number) => Math.round(x * 10 ** dp) / 10 ** dp;

interface Interval {
  start: number;
  end: number;
  hours: number;
  importRate?: number;
  importConfidence: number;
  exportRate?: number;
  exportConfidence: number;
}

/** Sorted distinct instants of all the lists (each list sorted). */
function mergeInstants(lists: number[][]): number[] {
  const all: number[] = [];
  for (const l of lists) for (const t of l) all.push(t);
  const sorted = Float64Array.from(all).sort();
  const out: number[] = [];
  for (const t of sorted) if (out[out.length - 1] !== t) out.push(t);
  return out;
}

function seriesBounds(series: PriceSeries, from: number, to: number): number[] {
  const out: number[] = [];
  for (const s of series) {
    if (s.end <= from) continue;
    if (s.start >= to) break;
    out.push(s.start, s.end);
  }
  return out;
}

/** The elementary intervals between every price and window boundary, with both rates. */
function buildIntervals(req: ScheduleRequest): Interval[] {
  if (!req.devices.length) return [];
  const from = Math.min(...req.devices.map((d) => d.window.start));
  const to = Math.max(...req.devices.map((d) => d.window.end));
  const instants = mergeInstants([
    seriesBounds(req.importSeries, from, to),
    seriesBounds(req.exportSeries, from, to),
    req.devices.flatMap((d) => [d.window.start, d.window.end]),
  ]).filter((t) => t >= from && t <= to);
  const intervals: Interval[] = [];
  let ii = 0;
  let ei = 0;
  const imp = req.importSeries;
  const exp = req.exportSeries;
  for (let k = 0; k + 1 < instants.length; k++) {
    const start = instants[k];
    const end = instants[k + 1];
    while (ii < imp.length && imp[ii].end <= start) ii++;
    while (ei < exp.length && exp[ei].end <= start) ei++;
    const i = imp[ii] && imp[ii].start <= start ? imp[ii] : undefined;
    const e = exp[ei] && exp[ei].start <= start ? exp[ei] : undefined;
    intervals.push({
      start,
      end,
      hours: (end - start) / HOUR,
      importRate: i?.rate,
      importConfidence: i?.confidence ?? 0,
      exportRate: e?.rate,
      exportConfidence: e?.confidence ?? 0,
    });
  }
  return intervals;
}

/** Binary min-heap of interval indices by (key, index): ties go to the earlier interval. */
class IntervalHeap {
  private keys: number[] = [];
  private idx: number[] = [];
  constructor(entries?: { key: number; k: number }[]) {
    if (entries) {
      entries.sort((a, b) => a.key - b.key || a.k - b.k);
      this.keys = entries.map((e) => e.key);
      this.idx = entries.map((e) => e.k);
    }
  }
  private less(a: number, b: number) {
    return this.keys[a] < this.keys[b] || (this.keys[a] === this.keys[b] && this.idx[a] < this.idx[b]);
  }
  private swap(a: number, b: number) {
    [this.keys[a], this.keys[b]] = [this.keys[b], this.keys[a]];
    [this.idx[a], this.idx[b]] = [this.idx[b], this.idx[a]];
  }
  push(key: number, k: number) {
    this.keys.push(key);
    this.idx.push(k);
    for (let c = this.keys.length - 1; c > 0; ) {
      const p = (c - 1) >> 1;
      if (!this.less(c, p)) break;
      this.swap(c, p);
      c = p;
    }
  }
  pop() {
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.keys.pop();
    this.idx.pop();
    for (let p = 0; ; ) {
      const l = 2 * p + 1;
      const r = l + 1;
      let m = p;
      if (l < this.keys.length && this.less(l, m)) m = l;
      if (r < this.keys.length && this.less(r, m)) m = r;
      if (m === p) break;
      this.swap(p, m);
      p = m;
    }
  }
  /** The best entry still valid, dropping invalid ones on the way. */
  top(valid: (k: number) => boolean): { key: number; k: number } | undefined {
    while (this.keys.length) {
      if (valid(this.idx[0])) return { key: this.keys[0], k: this.idx[0] };
      this.pop();
    }
    return undefined;
  }
}

/** Per device: the rate and confidence in each interval, or undefined where it may not run. */
function usableRates(dev: ScheduleDevice, intervals: Interval[], limit: number | undefined) {
  return intervals.map((iv) => {
    if (iv.start < dev.window.start || iv.end > dev.window.end) return undefined;
    const rate = dev.direction === 'IMPORT' ? iv.importRate : iv.exportRate;
    if (rate === undefined) return undefined;
    if (limit !== undefined && (dev.direction === 'IMPORT' ? rate > limit : rate < limit)) return undefined;
    return rate;
  });
}

function validate(req: ScheduleRequest) {
  const ids = new Set<string>();
  req.devices.forEach((d, i) => {
    const where = `devices[${i}] (${d.id})`;
    if (ids.has(d.id)) throw new RangeError(`${where}: the device appears twice`);
    ids.add(d.id);
    if (!(d.window.end > d.window.start)) throw new RangeError(`${where}: the window must end after it starts`);
    if (!(d.maxPowerW > 0) || !Number.isFinite(d.maxPowerW)) throw new RangeError(`${where}: max power must be a positive number of watts`);
    if (!(d.energyWh >= 0) || !Number.isFinite(d.energyWh)) throw new RangeError(`${where}: energy must be zero or more Wh`);
  });
  if (!(req.siteMaxPowerW > 0)) throw new RangeError('the site max power must be positive');
}

/**
 * The least-cost energy schedule. Throws InfeasibleScheduleError with the energy that fits when
 * the request cannot be met in full.
 */
export function energySchedule(req: ScheduleRequest): ScheduleResult {
  validate(req);
  const intervals = buildIntervals(req);
  const devs = req.devices;
  const d = devs.length;
  const K = intervals.length;
  const rates = devs.map((dev) => usableRates(dev, intervals, dev.direction === 'IMPORT' ? req.priceLimit?.import : req.priceLimit?.export));
  // cost per kWh moved: paying for imports, earning (negative cost) for exports
  const cost = devs.map((dev, i) => rates[i].map((r) => (r === undefined ? undefined : dev.direction === 'IMPORT' ? r : -r)));
  const cap = devs.map((dev, i) => intervals.map((iv, k) => (rates[i][k] === undefined ? 0 : dev.maxPowerW * iv.hours)));
  const siteCap = intervals.map((iv) => req.siteMaxPowerW * iv.hours);
  const x = devs.map(() => new Float64Array(K));
  const used = new Float64Array(K);
  const left = devs.map((dev) => dev.energyWh);

  const canTake = (i: number, k: number) => cap[i][k] - x[i][k] > EPS_WH;
  const sinkHeaps = devs.map((_, i) => new IntervalHeap(cost[i].flatMap((c, k) => (c === undefined ? [] : [{ key: c, k }]))));
  const transferHeaps = devs.map(() => devs.map(() => new IntervalHeap()));
  const sinkValid = (i: number) => (k: number) => canTake(i, k) && siteCap[k] - used[k] > EPS_WH;
  const transferValid = (i: number, j: number) => (k: number) => canTake(i, k) && x[j][k] > EPS_WH;
  const touched = (k: number) => {
    for (let i = 0; i < d; i++) {
      const ci = cost[i][k];
      if (ci === undefined || !canTake(i, k)) continue;
      if (siteCap[k] - used[k] > EPS_WH) sinkHeaps[i].push(ci, k);
      for (let j = 0; j < d; j++) {
        const cj = cost[j][k];
        if (j !== i && cj !== undefined && x[j][k] > EPS_WH) transferHeaps[i][j].push(ci - cj, k);
      }
    }
  };

  for (let guard = 0; guard < 4 * (K + 1) * (d + 1) * (d + 1) + 10; guard++) {
    // Bellman-Ford over the devices: from any device with energy left to the sink
    const dist = left.map((l) => (l > EPS_WH ? 0 : Infinity));
    const pred: { from: number; k: number }[] = new Array(d);
    if (dist.every((v) => v === Infinity)) break;
    const edges: { i: number; j: number; cost: number; k: number }[] = [];
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        if (i === j) continue;
        const t = transferHeaps[i][j].top(transferValid(i, j));
        if (t) edges.push({ i, j, cost: t.key, k: t.k });
      }
    for (let round = 0; round < d; round++) {
      let changed = false;
      for (const e of edges) {
        // edge i→j: i takes more in k, j gives back in k and must place it elsewhere
        if (dist[e.i] + e.cost < dist[e.j] - 1e-12) {
          dist[e.j] = dist[e.i] + e.cost;
          pred[e.j] = { from: e.i, k: e.k };
          changed = true;
        }
      }
      if (!changed) break;
    }
    let bestEnd = -1;
    let bestCost = Infinity;
    let bestK = -1;
    for (let i = 0; i < d; i++) {
      if (dist[i] === Infinity) continue;
      const t = sinkHeaps[i].top(sinkValid(i));
      if (t && dist[i] + t.key < bestCost - 1e-12) {
        bestCost = dist[i] + t.key;
        bestEnd = i;
        bestK = t.k;
      }
    }
    if (bestEnd < 0) break; // no augmenting path: the rest is infeasible
    // the path backwards: sink ← bestEnd ← … ← origin (a device with energy left)
    const steps: { i: number; k: number; sign: 1 | -1 }[] = [{ i: bestEnd, k: bestK, sign: 1 }];
    let node = bestEnd;
    const seen = new Set<number>([node]);
    while (pred[node]) {
      const p = pred[node];
      steps.push({ i: node, k: p.k, sign: -1 }, { i: p.from, k: p.k, sign: 1 });
      node = p.from;
      if (seen.has(node)) throw new Error('energy schedule: cycle in the augmenting path');
      seen.add(node);
    }
    if (left[node] <= EPS_WH) throw new Error('energy schedule: augmenting path without a source');
    // how far the path can go: net change per (device, interval), the site limit at the end, and the origin's energy
    const net = new Map<string, { i: number; k: number; n: number }>();
    for (const s of steps) {
      const key = `${s.i}:${s.k}`;
      const e = net.get(key) ?? { i: s.i, k: s.k, n: 0 };
      e.n += s.sign;
      net.set(key, e);
    }
    let delta = Math.min(left[node], siteCap[bestK] - used[bestK]);
    for (const e of net.values()) {
      if (e.n > 0) delta = Math.min(delta, (cap[e.i][e.k] - x[e.i][e.k]) / e.n);
      else if (e.n < 0) delta = Math.min(delta, x[e.i][e.k] / -e.n);
    }
    if (!(delta > 0)) throw new Error('energy schedule: empty augmentation');
    const changedK = new Set<number>([bestK]);
    for (const e of net.values()) {
      x[e.i][e.k] = clamp(x[e.i][e.k] + e.n * delta, 0, cap[e.i][e.k]);
      changedK.add(e.k);
    }
    used[bestK] += delta;
    left[node] -= delta;
    for (const k of changedK) touched(k);
  }

  const requested = devs.reduce((a, dv) => a + dv.energyWh, 0);
  const unmet = left.reduce((a, l) => a + Math.max(0, l), 0);
  if (unmet > Math.max(1e-3, requested * 1e-9)) {
    throw new InfeasibleScheduleError(
      requested,
      requested - unmet,
      devs.map((dv, i) => ({ id: dv.id, requestedWh: dv.energyWh, feasibleWh: dv.energyWh - Math.max(0, left[i]) })),
    );
  }
  const baseline = baselineEnergy(req, intervals);
  const out = devs.map((dev, i) => describe(dev, intervals, x[i], baseline[i]));
  const netCost = out.reduce((a, s) => a + (s.direction === 'IMPORT' ? s.value : -s.value), 0);
  const baselineNetCost = out.reduce((a, s) => a + (s.direction === 'IMPORT' ? s.baselineValue : -s.baselineValue), 0);
  return { devices: out, netCost, baselineNetCost, confidence: Math.min(1, ...out.map((s) => s.confidence)) };
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Value of an energy placement at the device's direction's rates. */
function valueOf(dev: ScheduleDevice, intervals: Interval[], energy: ArrayLike<number>): number {
  let v = 0;
  for (let k = 0; k < intervals.length; k++) {
    if (energy[k] <= 0) continue;
    const rate = dev.direction === 'IMPORT' ? intervals[k].importRate : intervals[k].exportRate;
    v += (energy[k] / 1000) * (rate ?? 0);
  }
  return v;
}

function describe(dev: ScheduleDevice, intervals: Interval[], energy: Float64Array, baseline: Float64Array): DeviceSchedule {
  const value = valueOf(dev, intervals, energy);
  const baselineValue = valueOf(dev, intervals, baseline);
  const out: ScheduledInterval[] = [];
  let confidence = 1;
  for (let k = 0; k < intervals.length; k++) {
    const e = energy[k];
    if (e <= EPS_WH) continue;
    const iv = intervals[k];
    confidence = Math.min(confidence, dev.direction === 'IMPORT' ? iv.importConfidence : iv.exportConfidence);
    const powerW = e / iv.hours;
    const prev = out[out.length - 1];
    // touching intervals at the same power read as one command
    if (prev && prev.end === iv.start && Math.abs(prev.powerW - powerW) < 1e-6) {
      prev.end = iv.end;
      prev.energyWh += e;
    } else out.push({ start: iv.start, end: iv.end, powerW, energyWh: e });
  }
  const savings = dev.direction === 'IMPORT' ? baselineValue - value : value - baselineValue;
  return { id: dev.id, direction: dev.direction, energyWh: dev.energyWh, value, baselineValue, savings, confidence, intervals: out };
}

/**
 * The baseline to measure savings against: each device at full power from the start of its window
 * (earliest deadline first where the site limit is shared), ignoring prices. Energy the shared limit
 * leaves over is placed as early as the device alone allows.
 */
function baselineEnergy(req: ScheduleRequest, intervals: Interval[]): Float64Array[] {
  const devs = req.devices;
  const energy = devs.map(() => new Float64Array(intervals.length));
  const left = devs.map((d) => d.energyWh);
  const order = devs.map((_, i) => i).sort((a, b) => devs[a].window.end - devs[b].window.end || a - b);
  const usable = (i: number, k: number) => {
    const iv = intervals[k];
    const dev = devs[i];
    return iv.start >= dev.window.start && iv.end <= dev.window.end && (dev.direction === 'IMPORT' ? iv.importRate : iv.exportRate) !== undefined;
  };
  for (const shared of [true, false]) {
    for (let k = 0; k < intervals.length; k++) {
      let free = shared ? req.siteMaxPowerW * intervals[k].hours : Infinity;
      for (const i of order) {
        if (left[i] <= EPS_WH || !usable(i, k)) continue;
        const room = devs[i].maxPowerW * intervals[k].hours - energy[i][k];
        const e = Math.min(room, left[i], free);
        if (e <= 0) continue;
        energy[i][k] += e;
        left[i] -= e;
        free -= e;
      }
    }
  }
  return energy;
}
