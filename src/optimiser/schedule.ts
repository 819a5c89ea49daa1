import { partitionPoint, type Direction, type EpochMs, type PriceSeries, type TimeWindow } from '../api/index.js';
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

/** The elementary intervals between every price and window boundary, with both rates (one sweep, no sorting). */
function buildIntervals(req: ScheduleRequest): Interval[] {
  if (!req.devices.length) return [];
  const from = Math.min(...req.devices.map((d) => d.window.start));
  const to = Math.max(...req.devices.map((d) => d.window.end));
  const edges = [...new Set(req.devices.flatMap((d) => [d.window.start, d.window.end]))].sort((x, y) => x - y);
  const imp = req.importSeries;
  const exp = req.exportSeries;
  let ii = 0;
  let ei = 0;
  let di = 0;
  const intervals: Interval[] = [];
  for (let t = from; t < to; ) {
    while (ii < imp.length && imp[ii].end <= t) ii++;
    while (ei < exp.length && exp[ei].end <= t) ei++;
    while (di < edges.length && edges[di] <= t) di++;
    const i = imp[ii];
    const e = exp[ei];
    // the next boundary of anything: a slot of either series, a device window, the end
    let next = to;
    if (i) next = Math.min(next, i.start > t ? i.start : i.end);
    if (e) next = Math.min(next, e.start > t ? e.start : e.end);
    if (di < edges.length) next = Math.min(next, edges[di]);
    const iIn = i && i.start <= t ? i : undefined;
    const eIn = e && e.start <= t ? e : undefined;
    intervals.push({
      start: t,
      end: next,
      hours: (next - t) / HOUR,
      importRate: iIn?.rate,
      importConfidence: iIn?.confidence ?? 0,
      exportRate: eIn?.rate,
      exportConfidence: eIn?.confidence ?? 0,
    });
    t = next;
  }
  return intervals;
}

/** Binary min-heap of interval indices by (key, index): ties go to the earlier interval. */
class IntervalHeap {
  private keys: Float64Array;
  private idx: Int32Array;
  private n = 0;
  constructor(capacity = 16) {
    this.keys = new Float64Array(Math.max(16, capacity));
    this.idx = new Int32Array(Math.max(16, capacity));
  }
  /** A heap of all given entries at once (Floyd's heapify, linear time). */
  static of(keys: Float64Array, idx: Int32Array): IntervalHeap {
    const h = new IntervalHeap(idx.length);
    h.keys.set(keys);
    h.idx.set(idx);
    h.n = idx.length;
    for (let p = (h.n >> 1) - 1; p >= 0; p--) h.down(p);
    return h;
  }
  get size() {
    return this.n;
  }
  private down(p: number) {
    const keys = this.keys;
    const idx = this.idx;
    const n = this.n;
    const key = keys[p];
    const k = idx[p];
    // sift the hole down, moving the smaller child up, then drop the entry in (no swaps)
    for (;;) {
      let c = 2 * p + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (keys[r] < keys[c] || (keys[r] === keys[c] && idx[r] < idx[c]))) c = r;
      if (!(keys[c] < key || (keys[c] === key && idx[c] < k))) break;
      keys[p] = keys[c];
      idx[p] = idx[c];
      p = c;
    }
    keys[p] = key;
    idx[p] = k;
  }
  push(key: number, k: number) {
    if (this.n === this.keys.length) {
      const keys = new Float64Array(this.n * 2);
      keys.set(this.keys);
      const idx = new Int32Array(this.n * 2);
      idx.set(this.idx);
      this.keys = keys;
      this.idx = idx;
    }
    const keys = this.keys;
    const idx = this.idx;
    let c = this.n++;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (!(key < keys[p] || (key === keys[p] && k < idx[p]))) break;
      keys[c] = keys[p];
      idx[c] = idx[p];
      c = p;
    }
    keys[c] = key;
    idx[c] = k;
  }
  pop() {
    this.n--;
    if (this.n > 0) {
      this.keys[0] = this.keys[this.n];
      this.idx[0] = this.idx[this.n];
      this.down(0);
    }
  }
  topKey() {
    return this.keys[0];
  }
  topIndex() {
    return this.idx[0];
  }
}

/** Per device: its cost per kWh in each interval (paying for imports, earning = negative cost for exports), NaN where it may not run. */
function deviceCosts(dev: ScheduleDevice, intervals: Interval[], limit: number | undefined): Float64Array {
  const out = new Float64Array(intervals.length).fill(NaN);
  const imports = dev.direction === 'IMPORT';
  for (let k = firstInterval(intervals, dev.window.start); k < intervals.length && intervals[k].end <= dev.window.end; k++) {
    const rate = imports ? intervals[k].importRate : intervals[k].exportRate;
    if (rate === undefined) continue;
    if (limit !== undefined && (imports ? rate > limit : rate < limit)) continue;
    out[k] = imports ? rate : -rate;
  }
  return out;
}

/** Index of the first interval starting at or after `t`. */
function firstInterval(intervals: Interval[], t: number): number {
  return partitionPoint(intervals.length, (i) => intervals[i].start < t);
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
  const cost = devs.map((dev) => deviceCosts(dev, intervals, dev.direction === 'IMPORT' ? req.priceLimit?.import : req.priceLimit?.export));
  const cap = devs.map(() => new Float64Array(K));
  const siteCap = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    siteCap[k] = req.siteMaxPowerW * intervals[k].hours;
    for (let i = 0; i < d; i++) if (!Number.isNaN(cost[i][k])) cap[i][k] = devs[i].maxPowerW * intervals[k].hours;
  }
  const x = devs.map(() => new Float64Array(K));
  const used = new Float64Array(K);
  const left = devs.map((dev) => dev.energyWh);

  const sinkHeaps = cost.map((c) => {
    let n = 0;
    for (let k = 0; k < K; k++) if (!Number.isNaN(c[k])) n++;
    const keys = new Float64Array(n);
    const idx = new Int32Array(n);
    for (let k = 0, m = 0; k < K; k++) {
      if (Number.isNaN(c[k])) continue;
      keys[m] = c[k];
      idx[m++] = k;
    }
    return IntervalHeap.of(keys, idx);
  });
  const transferHeaps = devs.map(() => devs.map(() => new IntervalHeap()));
  // whether (device, interval) has an entry in a heap: a valid entry is never popped, so it needs no second copy
  const inSink = devs.map((_, i) => {
    const flags = new Uint8Array(K);
    for (let k = 0; k < K; k++) if (!Number.isNaN(cost[i][k])) flags[k] = 1;
    return flags;
  });
  const inTransfer = devs.map(() => devs.map(() => new Uint8Array(K)));
  // sink edge i→T via k: i can take more in k and the site has room in k
  const sinkTop = (i: number): number => {
    const h = sinkHeaps[i];
    while (h.size) {
      const k = h.topIndex();
      if (cap[i][k] - x[i][k] > EPS_WH && siteCap[k] - used[k] > EPS_WH) return k;
      inSink[i][k] = 0;
      h.pop();
    }
    return -1;
  };
  // transfer edge i→j via k: i takes more in k where j gives some back (and must place it elsewhere)
  const transferTop = (i: number, j: number): number => {
    const h = transferHeaps[i][j];
    while (h.size) {
      const k = h.topIndex();
      if (cap[i][k] - x[i][k] > EPS_WH && x[j][k] > EPS_WH) return k;
      inTransfer[i][j][k] = 0;
      h.pop();
    }
    return -1;
  };
  const touched = (k: number) => {
    const room = siteCap[k] - used[k] > EPS_WH;
    for (let i = 0; i < d; i++) {
      const ci = cost[i][k];
      if (Number.isNaN(ci) || !(cap[i][k] - x[i][k] > EPS_WH)) continue;
      if (room && !inSink[i][k]) {
        sinkHeaps[i].push(ci, k);
        inSink[i][k] = 1;
      }
      for (let j = 0; j < d; j++) {
        if (j === i || inTransfer[i][j][k] || !(x[j][k] > EPS_WH)) continue;
        transferHeaps[i][j].push(ci - cost[j][k], k);
        inTransfer[i][j][k] = 1;
      }
    }
  };

  const dist = new Float64Array(d);
  const predFrom = new Int32Array(d);
  const predK = new Int32Array(d);
  const edgeK = new Int32Array(d * d);
  // the path as (device, interval, ±1) steps; at most 2·d + 1 of them
  const stepI: number[] = [];
  const stepK: number[] = [];
  const stepN: number[] = [];
  const addStep = (i: number, k: number, n: number) => {
    for (let s = 0; s < stepI.length; s++) {
      if (stepI[s] === i && stepK[s] === k) {
        stepN[s] += n;
        return;
      }
    }
    stepI.push(i);
    stepK.push(k);
    stepN.push(n);
  };

  for (let guard = 0; guard < 4 * (K + 1) * (d + 1) * (d + 1) + 10; guard++) {
    // Bellman-Ford over the devices: from any device with energy left to the sink
    let any = false;
    for (let i = 0; i < d; i++) {
      dist[i] = left[i] > EPS_WH ? 0 : Infinity;
      predFrom[i] = -1;
      if (left[i] > EPS_WH) any = true;
    }
    if (!any) break;
    if (d > 1) {
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) edgeK[i * d + j] = i === j ? -1 : transferTop(i, j);
      for (let round = 0; round < d; round++) {
        let changed = false;
        for (let i = 0; i < d; i++) {
          if (dist[i] === Infinity) continue;
          for (let j = 0; j < d; j++) {
            const k = edgeK[i * d + j];
            if (k < 0) continue;
            const via = dist[i] + cost[i][k] - cost[j][k];
            if (via < dist[j] - 1e-12) {
              dist[j] = via;
              predFrom[j] = i;
              predK[j] = k;
              changed = true;
            }
          }
        }
        if (!changed) break;
      }
    }
    let bestEnd = -1;
    let bestCost = Infinity;
    let bestK = -1;
    for (let i = 0; i < d; i++) {
      if (dist[i] === Infinity) continue;
      const k = sinkTop(i);
      if (k >= 0 && dist[i] + cost[i][k] < bestCost - 1e-12) {
        bestCost = dist[i] + cost[i][k];
        bestEnd = i;
        bestK = k;
      }
    }
    if (bestEnd < 0) break; // no augmenting path: the rest is infeasible
    // the path backwards: sink ← bestEnd ← … ← origin (a device with energy left)
    stepI.length = stepK.length = stepN.length = 0;
    addStep(bestEnd, bestK, 1);
    let node = bestEnd;
    for (let hops = 0; predFrom[node] >= 0; hops++) {
      if (hops > d) throw new Error('energy schedule: cycle in the augmenting path');
      const k = predK[node];
      addStep(node, k, -1);
      addStep(predFrom[node], k, 1);
      node = predFrom[node];
    }
    if (left[node] <= EPS_WH) throw new Error('energy schedule: augmenting path without a source');
    // how far the path can go: the origin's energy, the site limit at the end, and every (device, interval) it changes
    let delta = Math.min(left[node], siteCap[bestK] - used[bestK]);
    for (let s = 0; s < stepI.length; s++) {
      const i = stepI[s];
      const k = stepK[s];
      const n = stepN[s];
      if (n > 0) delta = Math.min(delta, (cap[i][k] - x[i][k]) / n);
      else if (n < 0) delta = Math.min(delta, x[i][k] / -n);
    }
    if (!(delta > 0)) throw new Error('energy schedule: empty augmentation');
    for (let s = 0; s < stepI.length; s++) {
      const i = stepI[s];
      const k = stepK[s];
      x[i][k] = clamp(x[i][k] + stepN[s] * delta, 0, cap[i][k]);
    }
    used[bestK] += delta;
    left[node] -= delta;
    for (let s = 0; s < stepK.length; s++) if (stepK.indexOf(stepK[s]) === s) touched(stepK[s]);
    if (stepK.indexOf(bestK) < 0) touched(bestK);
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
  const usable = devs.map((dev) => deviceCosts(dev, intervals, undefined));
  for (const shared of [true, false]) {
    for (let k = 0; k < intervals.length; k++) {
      let free = shared ? req.siteMaxPowerW * intervals[k].hours : Infinity;
      for (const i of order) {
        if (left[i] <= EPS_WH || Number.isNaN(usable[i][k])) continue;
        const room = devs[i].maxPowerW * intervals[k].hours - energy[i][k];
        const e = Math.min(room, left[i], free);
        if (e <= 0) continue;
        energy[i][k] += e;
        left[i] -= e;
        free -= e;
      }
    }
    if (left.every((l) => l <= EPS_WH)) break;
  }
  return energy;
}
