import type { TimeWindow } from '../api/index.js';
import { deviceKind, type DeviceKind } from '../api/device-kind.js';
import { newId, num, resolveSubject, type DeviceInfo, type MeteringContext } from './context.js';
import { CostAccumulator, emptyCell, localIso, mergeCell, round, totalCost, type CostCell } from './costs.js';
import { pricesFor, priceSubject } from './pricing.js';
import { ALL_FLOWS, BUCKET_MS, DAY, FLOW, FLOWS_OF, HOUR, deviceSubject, subjectId, subjectKind } from './records.js';
import { dailyWindows, evBaseline, figures, hvacBaseline, localIntakeAsExport, localTimeOn, storageSavings, switchedBaseline, HVAC_SMOOTHING_BUCKETS, type SavingsFigures } from './savings.js';
import { IntervalBuilder, type IntervalSet } from './store.js';

/**
 * Savings per device kind: each shifted kind (storage, EV, switched load, HVAC) against its own
 * baseline (DESIGN.md §4), priced at the tariff of the time; PV and plain meters save nothing.
 */

export type DeviceSavings = SavingsFigures & { device_id: string; kind: DeviceKind; baseline: string; warnings?: string[] } & Record<string, unknown>;

/** What one baseline is computed from: the device's records and settings, and how to answer. */
interface BaselineInput {
  ctx: MeteringContext;
  subject: string;
  window: TimeWindow;
  info: DeviceInfo | undefined;
  warnings: string[];
  /** The answer: the figures against the baseline, and the baseline explained. */
  done: <T extends SavingsFigures>(figs: T, baseline: string) => DeviceSavings;
  /** The answer when the baseline is the actual (nothing shifted, or too little known). */
  same: (why: string) => DeviceSavings;
  /** The device's metered intake over the window, priced. */
  actual: { cost: number; energyWh: number };
}
type Baseline = (input: BaselineInput) => DeviceSavings;

/** Storage: the FlatPeak storage guide (the energy supplied to the premises, at the import rate). */
function storageDeviceSavings(ctx: MeteringContext, id: string, window: TimeWindow, warnings: string[], done: BaselineInput['done']): DeviceSavings {
  let subject = deviceSubject(id);
  if (ctx.store.has(deviceSubject(`${id}:battery`))) subject = deviceSubject(`${id}:battery`);
  const acc = priceSubject(ctx, subject, window, [window.start, window.end], ALL_FLOWS, true, warnings);
  const cells: CostCell[] = [];
  for (const f of ALL_FLOWS) cells[f] = acc.flowTotal(f);
  const local = localIntakeAsExport(ctx.store.intervals(subject, window.start, window.end, { flows: new Set([FLOW.IMPORT.LOCAL]) }));
  // what the stored PV would have earned exported: the intake re-labelled at the export rate
  const forgone = local.n ? totalCost(local, pricesFor(ctx, window, new Set([FLOW.IMPORT.EXPORT]), warnings), window) : emptyCell();
  return done(
    storageSavings(cells, forgone),
    'no battery: the energy it supplied to the premises bought at the import rate, no export earnings (the FlatPeak storage guide: `savings`, also as `flatpeak_savings`); `net_savings` also counts the export income given up by storing local energy, at the export rate of its time',
  );
}

/** HVAC: the thermostat holding its setpoint, i.e. the metered energy smoothed over ±3 hours. */
const hvacSavings: Baseline = ({ ctx, subject, window, warnings, done, actual }) => {
  const a = Math.floor(window.start / BUCKET_MS) * BUCKET_MS;
  const b = Math.ceil(window.end / BUCKET_MS) * BUCKET_MS;
  const pad = HVAC_SMOOTHING_BUCKETS * BUCKET_MS;
  const buckets = ctx.store.buckets(subject, a - pad, b + pad, FLOWS_OF.IMPORT);
  const firstQuarter = (a - pad) / BUCKET_MS;
  const energy = new Float64Array((b - a + 2 * pad) / BUCKET_MS);
  for (let i = 0; i < buckets.n; i++) energy[buckets.start[i] / BUCKET_MS - firstQuarter] += buckets.energy[i];
  const baselineSet = hvacBaseline(energy, firstQuarter, { start: a, end: b });
  const acc = new CostAccumulator([window.start, window.end]);
  acc.add(baselineSet, pricesFor(ctx, window, new Set([FLOW.IMPORT.IMPORT]), warnings), window);
  return done(figures(acc.total().cost, actual.cost, acc.total().energyWh, actual.energyWh), 'thermostat holding its setpoint: the metered energy per 15 minutes averaged over ±3 hours (undoing pre-cooling and coasting), bought at the import rate');
};

/** EV: each session charged at full power from plug-in. */
const evSavings: Baseline = ({ ctx, subject, window, info, warnings, done, same }) => {
  const rows = ctx.store.intervals(subject, window.start, window.end, { flows: FLOWS_OF.IMPORT, labels: true });
  const known = ctx.sessions?.() ?? {};
  const sessions: { id: string; plugIn: number; energyWh: number; set: IntervalSet }[] = [];
  for (const s of new Set(rows.session!.filter((x): x is string => x !== null))) {
    const set = ctx.store.intervals(subject, -Infinity, Infinity, { flows: FLOWS_OF.IMPORT, session: s });
    let plugIn = Infinity;
    let energy = 0;
    for (let i = 0; i < set.n; i++) {
      plugIn = Math.min(plugIn, set.start[i]);
      energy += set.energy[i];
    }
    const stored = known[s] ? Date.parse(known[s].plug_in ?? known[s].start) : NaN;
    // the hub's record of the plug-in wins; records alone start with the session's first reading interval
    if (Number.isFinite(stored)) plugIn = stored;
    if (plugIn >= window.start && plugIn < window.end) sessions.push({ id: s, plugIn, energyWh: energy, set });
  }
  const loose = new IntervalBuilder(false);
  for (let i = 0; i < rows.n; i++) if (rows.session![i] === null) loose.push(rows.start[i], rows.end[i], rows.energy[i], rows.flags[i], rows.confidence[i], null, null);
  const looseSet = loose.build();
  let maxW = evPowerW(info);
  if (!maxW) {
    // no rated power known: the highest mean power seen over a minute or more in these sessions
    for (const s of sessions) for (let i = 0; i < s.set.n; i++) if (s.set.end[i] - s.set.start[i] >= 60_000) maxW = Math.max(maxW ?? 0, (s.set.energy[i] / (s.set.end[i] - s.set.start[i])) * HOUR);
    if (maxW) warnings.push(`the charger's full power is not configured; the highest metered power (${Math.round(maxW)} W) was used`);
  }
  if (!sessions.length || !maxW) return same(sessions.length ? 'the charger’s full power is unknown: baseline = actual' : 'no charging session started in this window: baseline = actual');
  const baselineSet = evBaseline(sessions, maxW);
  let end = window.end;
  for (const s of sessions) for (let i = 0; i < s.set.n; i++) end = Math.max(end, s.set.end[i]);
  for (let i = 0; i < baselineSet.n; i++) end = Math.max(end, baselineSet.end[i]);
  const span = { start: Math.min(window.start, ...sessions.map((s) => s.plugIn)), end };
  const prices = pricesFor(ctx, span, ALL_FLOWS, warnings);
  const actual = new CostAccumulator([span.start, span.end]);
  for (const s of sessions) actual.add(s.set, prices, span);
  actual.add(looseSet, prices, window);
  const baseline = new CostAccumulator([span.start, span.end]);
  baseline.add(baselineSet, prices, span);
  baseline.add(looseSet, prices, window);
  const a = actual.total();
  const b = baseline.total();
  return done(
    { ...figures(b.cost, a.cost, b.energyWh, a.energyWh), sessions: sessions.map((s) => ({ session_reference_id: s.id, plug_in_time: localIso(s.plugIn, ctx.site.timezone), energy: round(s.energyWh, 3) })), full_power_w: Math.round(maxW) },
    `each session charged at full power (${Math.round(maxW)} W) from plug-in, bought at the import rate; sessions are counted in the window of their plug-in`,
  );
};

/** The charger's full power: the running device's, else its YAML (max_power_w, or amps × volts × phases). */
function evPowerW(info: DeviceInfo | undefined): number | undefined {
  const ch = info?.device?.caps.charger;
  if (ch) return ch.maxCurrentA * ch.voltage * ch.phases;
  const c = info?.config ?? {};
  if (num(c.max_power_w)) return num(c.max_power_w);
  const amps = num(c.max_current_a);
  return amps ? amps * (num(c.voltage) ?? 230) * (num(c.phases) ?? 1) : undefined;
}

/** Switched load: each run of its schedule window at rated power from its default start. */
const switchedSavings: Baseline = ({ ctx, subject, window, info, warnings, done, same }) => {
  const schedule = (info?.config?.schedule ?? {}) as { window?: { from?: string; to?: string }; default_start?: string };
  const from = schedule.window?.from;
  const to = schedule.window?.to;
  if (!from || !to) return same('no schedule window configured: baseline = actual');
  const tz = ctx.site.timezone;
  // runs are counted whole in the window they start in
  const runs = dailyWindows(window, from, to, tz).filter((w) => w.start >= window.start && w.start < window.end);
  const span = { start: window.start, end: Math.max(window.end, ...runs.map((r) => r.end)) };
  const rows = ctx.store.intervals(subject, span.start, span.end, { flows: FLOWS_OF.IMPORT });
  let ratedW = info?.device?.caps.switch?.ratedPowerW || num(info?.config?.rated_power_w);
  if (!ratedW) {
    for (let i = 0; i < rows.n; i++) if (rows.end[i] - rows.start[i] >= 60_000) ratedW = Math.max(ratedW ?? 0, (rows.energy[i] / (rows.end[i] - rows.start[i])) * HOUR);
    if (ratedW) warnings.push(`the load's rated power is not configured; the highest metered power (${Math.round(ratedW)} W) was used`);
  }
  if (!ratedW) return same('the load’s rated power is unknown: baseline = actual');
  const prices = pricesFor(ctx, { start: span.start, end: span.end + DAY }, ALL_FLOWS, warnings);
  const actual = totalCost(rows, prices, span);
  const inRuns = emptyCell();
  const blocks = runs.map((r) => {
    const cell = totalCost(rows, prices, r);
    mergeCell(inRuns, cell);
    let start = schedule.default_start ? localTimeOn(r.start, schedule.default_start, tz) : r.start;
    // a default start after midnight belongs to the part of the window after midnight
    if (start < r.start && start + DAY < r.end) start += DAY;
    return { defaultStart: start, energyWh: cell.energyWh };
  });
  const shifted = totalCost(switchedBaseline(blocks, ratedW), prices, { start: span.start - DAY, end: span.end + DAY });
  // energy outside the runs was not shifted: it counts the same in baseline and actual
  const baselineCost = actual.cost - inRuns.cost + shifted.cost;
  const baselineWh = actual.energyWh - inRuns.energyWh + shifted.energyWh;
  return done(figures(baselineCost, actual.cost, baselineWh, actual.energyWh), `each run of the ${from}–${to} window at rated power (${Math.round(ratedW)} W) from its default start (${schedule.default_start ?? from}), bought at the import rate; runs are counted in the window they start in`);
};

/** The baseline of each shifted load kind (storage is priced by flow and has its own). */
const BASELINES: Partial<Record<DeviceKind, Baseline>> = { ev: evSavings, switched_load: switchedSavings, hvac: hvacSavings };

/** What kind of load a device is, for its savings: from its capabilities, else its YAML keys, else its records. */
export function meteredKind(ctx: MeteringContext, info: DeviceInfo | undefined, subject: string): DeviceKind {
  const known = deviceKind(info?.device?.caps, info?.config);
  if (known) return known;
  // a device known only from its records: storage if it ever supplied energy valued at the import rate
  return ctx.store.intervals(subject, -Infinity, Infinity, { flows: new Set([FLOW.EXPORT.IMPORT]) }).n > 0 ? 'storage' : 'meter';
}

/** The savings of one device against the baseline of its kind (or of `forced`). */
export function deviceSavings(ctx: MeteringContext, id: string, window: TimeWindow, forced?: DeviceKind): DeviceSavings {
  const info = ctx.devices().find((d) => d.id === id);
  const subject = deviceSubject(id);
  const kind = forced ?? meteredKind(ctx, info, subject);
  const warnings: string[] = [];
  const done: BaselineInput['done'] = (figs, baseline) => ({ device_id: id, kind, baseline, ...figs, ...(warnings.length ? { warnings } : {}) }) as DeviceSavings;
  if (kind === 'storage') return storageDeviceSavings(ctx, id, window, warnings, done);
  const actual = priceSubject(ctx, subject, window, [window.start, window.end], FLOWS_OF.IMPORT, false, warnings).total();
  const same = (why: string) => done(figures(actual.cost, actual.cost, actual.energyWh, actual.energyWh), why);
  const baseline = BASELINES[kind];
  if (baseline) return baseline({ ctx, subject, window, info, warnings, done, same, actual });
  return same(kind === 'pv' ? 'PV generation is not shifted: baseline = actual' : 'not a shifted load: baseline = actual');
}

/** `GET /savings/{id}`: one device, or the sum over every device of the location. */
export function savingsOf(ctx: MeteringContext, objectId: string, window: TimeWindow, kind?: DeviceKind) {
  const subject = resolveSubject(ctx, objectId);
  const tz = ctx.site.timezone;
  const envelope = { id: newId('sav'), object: 'savings' as const, object_id: objectId, location_id: ctx.site.id, location_timezone: tz, currency_code: ctx.site.currency, start_time: localIso(window.start, tz), end_time: localIso(window.end, tz) };
  if (subjectKind(subject) === 'location') {
    const ids = new Set(ctx.devices().map((d) => d.id));
    for (const s of ctx.store.subjects()) if (subjectKind(s.subject) === 'device' && !subjectId(s.subject).includes(':')) ids.add(subjectId(s.subject));
    const devices = [...ids].map((id) => deviceSavings(ctx, id, window));
    let base = 0;
    let actual = 0;
    let baseWh = 0;
    let actualWh = 0;
    let forgone = 0;
    for (const d of devices) {
      base += d.baseline_cost;
      actual += d.actual_cost;
      baseWh += d.baseline_energy.value;
      actualWh += d.actual_energy.value;
      forgone += num(d.forgone_export_value) ?? 0;
    }
    const sum = figures(base, actual, baseWh, actualWh);
    return {
      ...envelope,
      kind: 'location' as const,
      ...sum,
      forgone_export_value: round(forgone, 5),
      net_savings: round(sum.savings - forgone, 5),
      devices: devices.map((d) => ({ device_id: d.device_id, kind: d.kind, baseline_cost: d.baseline_cost, actual_cost: d.actual_cost, savings: d.savings, savings_percentage: d.savings_percentage, ...(d.net_savings !== undefined ? { net_savings: d.net_savings } : {}) })),
    };
  }
  const { device_id: _id, ...rest } = deviceSavings(ctx, subjectId(subject), window, kind);
  return { ...envelope, ...rest };
}
