import type { EpochMs, PriceSeries, TimeWindow } from '../api/index.js';
import { replaySelfConsumption, type SelfConsumptionBattery } from '../optimiser/self-consumption.js';
import { capacityCost, flowsFromNet } from './bill.js';
import { newId, num, type DeviceInfo, type MeteringContext } from './context.js';
import { localIso, round } from './costs.js';
import { deviceSavings, meteredKind } from './device-savings.js';
import { pricesFor, priceSubject } from './pricing.js';
import { ALL_FLOWS, BUCKET_MS, FLAG_EXPORT, FLOWS_OF, HOUR, deviceSubject, locationSubject, subjectId, subjectKind } from './records.js';
import { figures } from './savings.js';

/** The site's savings: what it paid against the same load replayed without a battery, or with it in self-consumption mode. */

export const SITE_BASELINES = ['self_consumption', 'none'] as const;
export type SiteBaseline = (typeof SITE_BASELINES)[number];

/**
 * `GET /savings/{location_id}?baseline=self_consumption|none`: what the site paid, against the
 * same measured load and PV replayed with the battery in its own self-consumption mode, and with
 * no battery at all; shifted loads (EV, switched loads, HVAC) undo their shift in both, as their
 * own baselines say. The site's grid meter (records of the location) is what it paid where there is
 * one; else the device meters' net flow, priced per 15 minutes.
 */
export function siteSavings(ctx: MeteringContext, window: TimeWindow, baseline: SiteBaseline) {
  const tz = ctx.site.timezone;
  const warnings: string[] = [];
  const a = Math.floor(window.start / BUCKET_MS) * BUCKET_MS;
  const b = Math.ceil(window.end / BUCKET_MS) * BUCKET_MS;
  const n = (b - a) / BUCKET_MS;
  const span = { start: a, end: b };
  const prices = pricesFor(ctx, span, ALL_FLOWS, warnings);
  const importRate = bucketRates(prices.IMPORT, a, n);
  const exportRate = bucketRates(prices.EXPORT, a, n);
  /** Net energy per bucket of one subject (+ = into it). */
  const netOf = (subject: string) => {
    const out = new Float64Array(n);
    const set = ctx.store.buckets(subject, a, b);
    for (let i = 0; i < set.n; i++) out[(set.start[i] - a) / BUCKET_MS] += set.flags[i] & FLAG_EXPORT ? -set.energy[i] : set.energy[i];
    return out;
  };
  // the battery: its own meter (a hybrid inverter's battery channel where there is one)
  const infos = ctx.devices();
  const deviceIds = new Set(infos.map((d) => d.id));
  for (const sub of ctx.store.subjects()) if (subjectKind(sub.subject) === 'device') deviceIds.add(subjectId(sub.subject).split(':')[0]);
  const kinds = new Map([...deviceIds].map((id) => [id, meteredKind(ctx, infos.find((d) => d.id === id), deviceSubject(id))]));
  const batteries = [...kinds].filter(([, k]) => k === 'storage').map(([id]) => id);
  const batteryNet = new Float64Array(n);
  for (const id of batteries) {
    const sub = ctx.store.has(deviceSubject(`${id}:battery`)) ? deviceSubject(`${id}:battery`) : deviceSubject(id);
    netOf(sub).forEach((wh, k) => (batteryNet[k] += wh));
  }
  // what the site drew from the grid: its meter, else the sum of the device meters
  const gridMetered = ctx.store.has(locationSubject(ctx.site.id));
  let gridNet: Float64Array;
  let actual: { cost: number; importWh: number; exportWh: number };
  if (gridMetered) {
    gridNet = netOf(locationSubject(ctx.site.id));
    const acc = priceSubject(ctx, locationSubject(ctx.site.id), span, [a, b], ALL_FLOWS, true, warnings);
    const imp = [...FLOWS_OF.IMPORT].map((f) => acc.flowTotal(f));
    const exp = [...FLOWS_OF.EXPORT].map((f) => acc.flowTotal(f));
    actual = { cost: imp.reduce((x, c) => x + c.cost, 0) - exp.reduce((x, c) => x + c.cost, 0), importWh: imp.reduce((x, c) => x + c.energyWh, 0), exportWh: exp.reduce((x, c) => x + c.energyWh, 0) };
  } else {
    gridNet = new Float64Array(n);
    // a sub-meter's grid channel measures flows the other meters already hold
    const subjects = ctx.store.subjects().map((x) => x.subject).filter((x) => subjectKind(x) === 'device' && !subjectId(x).endsWith(':grid'));
    // a device metered by channels (a hybrid inverter's pv and battery) counts by its channels alone
    const channelled = new Set(subjects.filter((x) => subjectId(x).includes(':')).map((x) => subjectId(x).split(':')[0]));
    for (const sub of subjects) if (subjectId(sub).includes(':') || !channelled.has(subjectId(sub))) netOf(sub).forEach((wh, k) => (gridNet[k] += wh));
    actual = settleBuckets(gridNet, importRate, exportRate);
    warnings.push('the site has no grid meter (records of the location): what it paid is the device meters\' net flow, priced per 15 minutes');
  }
  const hours = Array.from({ length: n }, () => BUCKET_MS / HOUR);
  const house = Array.from(gridNet, (wh, k) => wh - batteryNet[k]);
  const battery = batteryForReplay(batteries, infos);
  // the same bill as GET /bill: the composed per-kWh rates above, and the capacity charge of each scenario's own peaks (with VAT)
  const terms = ctx.prices()?.terms?.();
  const withCapacity = <T extends { cost: number }>(c: T, net: ArrayLike<number>): T => (terms?.capacity ? { ...c, cost: c.cost + capacityCost(terms, flowsFromNet(a, net), span) * (1 + terms.vatPercent / 100) } : c);
  actual = withCapacity(actual, gridNet);
  const none = withCapacity(settleBuckets(house, importRate, exportRate), house);
  const ownGrid = battery ? replaySelfConsumption(battery, house, hours).gridWh : undefined;
  const own = ownGrid ? withCapacity(settleBuckets(ownGrid, importRate, exportRate), ownGrid) : none;
  if (batteries.length && !battery) warnings.push('the battery\'s size is not known (configure capacity_wh): the self-consumption baseline is the same as none');
  // shifted loads count in both baselines as their own baselines say
  const shifted = [...kinds].filter(([, k]) => k === 'ev' || k === 'switched_load' || k === 'hvac').map(([id]) => deviceSavings(ctx, id, window));
  const shift = shifted.reduce((x, d) => x + d.savings, 0);
  const scenario = (c: { cost: number; importWh: number; exportWh: number }) => ({ cost: round(c.cost + shift, 5), import_wh: round(c.importWh, 3), export_wh: round(c.exportWh, 3) });
  const base = baseline === 'none' ? none : own;
  return {
    id: newId('sav'),
    object: 'savings' as const,
    object_id: ctx.site.id,
    location_id: ctx.site.id,
    location_timezone: tz,
    currency_code: ctx.site.currency,
    start_time: localIso(a, tz),
    end_time: localIso(b, tz),
    kind: 'location' as const,
    baseline,
    ...figures(base.cost + shift, actual.cost, base.importWh, actual.importWh),
    baselines: { none: scenario(none), self_consumption: scenario(own) },
    actual: { cost: round(actual.cost, 5), import_wh: round(actual.importWh, 3), export_wh: round(actual.exportWh, 3) },
    savings_vs_none: round(none.cost + shift - actual.cost, 5),
    savings_vs_self_consumption: round(own.cost + shift - actual.cost, 5),
    measured_by: gridMetered ? ('grid_meter' as const) : ('device_meters' as const),
    battery: battery ? { device_ids: batteries, capacity_wh: battery.socMaxWh, start_wh: battery.initialWh, max_charge_w: battery.maxChargeW, max_discharge_w: battery.maxDischargeW } : null,
    shifted_loads: shifted.map((d) => ({ device_id: d.device_id, kind: d.kind, savings: d.savings })),
    explanation: `${baseline === 'none' ? 'no battery' : 'the battery in its own self-consumption mode (charging from surplus, covering deficits, starting at its minimum charge)'}, replayed on the measured load and PV per 15 minutes at the prices of the time; shifted loads as their own baselines say`,
    ...(warnings.length ? { warnings } : {}),
  };
}

/** One battery standing for the site's batteries in the replay: their sizes and powers added, from the running device else its YAML. */
function batteryForReplay(ids: string[], infos: DeviceInfo[]): SelfConsumptionBattery | undefined {
  let out: SelfConsumptionBattery | undefined;
  for (const id of ids) {
    const info = infos.find((d) => d.id === id);
    const p = info?.device?.caps.storage?.params;
    const c = info?.config ?? {};
    const cap = p?.capacityWh ?? num(c.capacity_wh);
    if (!cap) return undefined;
    const one = {
      socMinWh: p?.socMinWh ?? (cap * (num(c.soc_min_pct) ?? 5)) / 100,
      socMaxWh: p?.socMaxWh ?? cap,
      maxChargeW: p?.maxChargeW ?? num(c.max_charge_w) ?? cap / 2,
      maxDischargeW: p?.maxDischargeW ?? num(c.max_discharge_w) ?? cap / 2,
      chargeEfficiency: p?.chargeEfficiency ?? num(c.charge_efficiency) ?? 0.95,
      dischargeEfficiency: p?.dischargeEfficiency ?? num(c.discharge_efficiency) ?? 0.95,
    };
    out = out
      ? { ...out, socMinWh: out.socMinWh + one.socMinWh, socMaxWh: out.socMaxWh + one.socMaxWh, maxChargeW: out.maxChargeW + one.maxChargeW, maxDischargeW: out.maxDischargeW + one.maxDischargeW, initialWh: out.initialWh + one.socMinWh }
      : { ...one, initialWh: one.socMinWh };
  }
  return out;
}

/** Mean rate of each 15-minute bucket from `a` (NaN where no price covers it all). */
function bucketRates(series: PriceSeries, a: EpochMs, n: number): number[] {
  const out = new Array<number>(n).fill(NaN);
  let j = 0;
  for (let k = 0; k < n; k++) {
    const s = a + k * BUCKET_MS;
    const e = s + BUCKET_MS;
    while (j < series.length && series[j].end <= s) j++;
    let acc = 0;
    let covered = 0;
    for (let i = j; i < series.length && series[i].start < e; i++) {
      const o = Math.min(e, series[i].end) - Math.max(s, series[i].start);
      if (o > 0) {
        acc += series[i].rate * o;
        covered += o;
      }
    }
    if (covered >= BUCKET_MS - 1) out[k] = acc / covered;
  }
  return out;
}

/** Cost of a net grid flow per bucket (+ = import): imports at the import rate less exports at the export rate. */
function settleBuckets(netWh: ArrayLike<number>, importRate: number[], exportRate: number[]) {
  let cost = 0;
  let importWh = 0;
  let exportWh = 0;
  for (let k = 0; k < netWh.length; k++) {
    const wh = netWh[k];
    if (wh > 0) {
      importWh += wh;
      if (Number.isFinite(importRate[k])) cost += (wh / 1000) * importRate[k];
    } else if (wh < 0) {
      exportWh -= wh;
      if (Number.isFinite(exportRate[k])) cost += (wh / 1000) * exportRate[k];
    }
  }
  return { cost, importWh, exportWh };
}
