// The API's answers turned into the few shapes the views draw, in one place, so a change in an
// endpoint's JSON is fixed here and nowhere else. Times become epoch ms.

const ms = (t) => (typeof t === 'number' ? t : Date.parse(t));

/** GET /tariffs/rates → [{start, end, rate, confidence}] */
export function normalizeRates(body) {
  return (body?.data ?? [])
    .map((d) => ({ start: ms(d.valid_from ?? d.start_time), end: ms(d.valid_to ?? d.end_time), rate: d.tariff?.rate ?? d.rate, confidence: d.tariff?.confidence ?? d.confidence ?? 1 }))
    .filter((d) => Number.isFinite(d.start) && Number.isFinite(d.end) && typeof d.rate === 'number')
    .sort((a, b) => a.start - b.start);
}

export const slotAt = (series, t) => series.find((s) => s.start <= t && t < s.end);

/**
 * Cheap and dear periods of a series: slots at or below the rate of its cheapest quarter (by time),
 * and at or above the rate of its dearest quarter. Quantiles rather than a share of the range, so
 * one price spike does not make the rest of the day look cheap. A flat series has neither.
 */
export function priceBands(series, { share = 0.25, minSpread = 0.005 } = {}) {
  if (!series.length) return { min: undefined, max: undefined, cheap: [], dear: [], flat: true };
  const rates = series.map((s) => s.rate);
  const min = Math.min(...rates);
  const max = Math.max(...rates);
  if (max - min < minSpread) return { min, max, cheap: [], dear: [], flat: true };
  // weigh each slot by its length: a series may mix 15- and 60-minute slots
  const byRate = [...series].sort((a, b) => a.rate - b.rate);
  const total = series.reduce((a, s) => a + (s.end - s.start), 0);
  const quantile = (q) => {
    let acc = 0;
    for (const s of byRate) {
      acc += s.end - s.start;
      if (acc >= q * total) return s.rate;
    }
    return max;
  };
  const lowAt = quantile(share);
  const highAt = quantile(1 - share);
  const merge = (pick) => {
    const out = [];
    for (const s of series) {
      if (!pick(s.rate)) continue;
      const last = out[out.length - 1];
      if (last && last.end === s.start) last.end = s.end;
      else out.push({ start: s.start, end: s.end });
    }
    return out;
  };
  // a two-level tariff puts every slot in one band or the other, never both
  return { min, max, lowAt, highAt, cheap: merge((r) => r <= lowAt && r < highAt), dear: merge((r) => r >= highAt && r > lowAt), flat: false };
}

/** The import series' next 48 hours, the window every view shades cheap and dear over. */
export const ahead = (series, now, hours = 48) => series.filter((s) => s.end > now && s.start < now + hours * 3_600_000);

/** 'cheap' | 'dear' | 'normal' | 'flat' for the rate in force at t, against the bands given. */
export function priceLevel(series, t, bands = priceBands(series)) {
  const slot = slotAt(series, t);
  if (!slot) return undefined;
  if (bands.flat) return 'flat';
  return slot.rate <= bands.lowAt && slot.rate < bands.highAt ? 'cheap' : slot.rate >= bands.highAt ? 'dear' : 'normal';
}

const REASONS = {
  price: 'price',
  limit: 'a power limit',
  comfort: 'comfort band',
  deadline: 'deadline',
  solar: 'solar surplus',
  setpoint: 'fixed setpoint',
  idle: 'nothing to do',
};
export const reasonText = (r) => REASONS[r] ?? String(r ?? '');

const powerOf = (v) => {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object') return (v.units === 'KW' ? 1000 : 1) * Number(v.value);
  return 0;
};

/**
 * GET /plan → {id, createdAt, validUntil, cost, status, slots:[{start,end}], importRate[], exportRate[],
 * gridW[], devices:[{id, kind, powerW[], reasons[], socWh[], temperatureC[], on[], shortfallWh, target}], warnings[]}.
 * Accepts the site plan with per-slot arrays or per-device lists of timed entries.
 */
export function normalizePlan(body) {
  if (!body) return undefined;
  const p = body.plan ?? body;
  let slots = (p.slots ?? []).map((s) => ({ start: ms(s.start ?? s.start_time), end: ms(s.end ?? s.end_time) }));
  const devicesIn = p.devices ?? p.data ?? [];
  if (!slots.length) {
    // per-device timed entries: take the slot grid from the first device that has one
    const first = devicesIn.find((d) => (d.schedule ?? d.slots)?.length);
    slots = (first?.schedule ?? first?.slots ?? []).map((s) => ({ start: ms(s.start_time ?? s.start), end: ms(s.end_time ?? s.end) }));
  }
  const index = new Map(slots.map((s, i) => [s.start, i]));
  const perSlot = (d, key, alt) => {
    if (Array.isArray(d[key])) return d[key];
    if (alt && Array.isArray(d[alt])) return d[alt];
    const entries = d.schedule ?? d.slots;
    if (!Array.isArray(entries)) return [];
    const out = new Array(slots.length).fill(undefined);
    for (const e of entries) {
      const i = index.get(ms(e.start_time ?? e.start));
      if (i === undefined) continue;
      out[i] = key === 'powerW' ? powerOf(e.power_w ?? e.power ?? e.powerW) : (e[alt] ?? e[key]);
    }
    return out;
  };
  const devices = devicesIn.map((d) => ({
    id: d.id ?? d.device_id,
    kind: d.kind ?? d.type,
    powerW: perSlot(d, 'powerW', 'power_w').map((v) => powerOf(v)),
    reasons: perSlot(d, 'reasons', 'reason'),
    socWh: perSlot(d, 'socWh', 'soc_wh'),
    temperatureC: perSlot(d, 'temperatureC', 'temperature_c'),
    on: perSlot(d, 'on', 'on'),
    energyWh: d.energyWh ?? d.energy_wh,
    shortfallWh: d.shortfallWh ?? d.shortfall_wh,
    cost: d.cost ?? d.expected_cost,
    target: d.target,
    leaveTime: d.leave_time ? ms(d.leave_time) : d.leaveTime,
    paused: Boolean(d.paused),
  }));
  const arr = (a, b) => p[a] ?? p[b] ?? [];
  const importW = arr('importW', 'import_w');
  const exportW = arr('exportW', 'export_w');
  return {
    id: p.id ?? p.plan_id,
    status: p.status,
    createdAt: p.created_at ? ms(p.created_at) : p.createdAt,
    validUntil: p.valid_until ? ms(p.valid_until) : p.validUntil,
    cost: p.cost ?? p.expected_cost,
    slots,
    importRate: arr('importRate', 'import_rate'),
    exportRate: arr('exportRate', 'export_rate'),
    gridW: importW.map((v, i) => v - (exportW[i] ?? 0)),
    /** Forecasts the plan was made with: the house's base load and PV production (W, + = produced). */
    baseLoadW: arr('baseLoadW', 'base_load_w'),
    pvW: arr('pvW', 'pv_w'),
    devices,
    warnings: p.warnings ?? [],
    notes: p.notes ?? [],
    trigger: p.trigger,
    solveMs: p.solver?.solve_ms,
    stale: p.stale ? (p.error ?? 'stale') : undefined,
  };
}

/** Index of the plan slot containing t, or -1. */
export const planSlotIndex = (plan, t) => plan?.slots.findIndex((s) => s.start <= t && t < s.end) ?? -1;

/** What kind of thing a device is, from its capabilities (for icons, colours and controls). */
export function deviceKind(d) {
  const caps = d.capabilities ?? [];
  if (caps.includes('charger')) return 'ev';
  if (caps.includes('storage')) return 'battery';
  if (caps.includes('thermostat')) return 'hvac';
  if (caps.includes('heatPump')) return 'heatpump';
  if (caps.includes('pv')) return 'pv';
  if (caps.includes('switch')) return 'socket';
  return 'meter';
}

export const KIND_LABEL = { ev: 'EV charger', battery: 'Battery', hvac: 'Heating / cooling', heatpump: 'Heat pump', pv: 'Solar', socket: 'Smart socket', meter: 'Meter' };

/** Signed power of a device's main meter channel (W, + = drawing). */
export function devicePowerW(d) {
  const m = d.state?.meter;
  if (!m) return undefined;
  const r = m.device ?? m.battery ?? m.pv ?? m.load ?? Object.values(m).find(Boolean);
  return r?.power_w ?? undefined;
}

/**
 * Power flows of the site from the devices' meters: PV production, battery (+ charging), the
 * grid (+ importing; measured by a grid meter if there is one, otherwise the sum of every device)
 * and the house (everything that consumes). `gridMeasuredBy` names the grid meters; `gridPhasesW`
 * is the grid meter's per-phase power where exactly one meter reports it.
 */
export function powerFlows(devices) {
  let pv = 0;
  let battery = 0;
  let sum = 0;
  let grid;
  let known = 0;
  const gridMeasuredBy = [];
  let gridPhasesW;
  for (const d of devices) {
    const gridReading = d.state?.meter?.grid;
    // a grid channel that is not the site's meter (an inverter's meter on a sub-circuit) is not the grid connection
    if (gridReading?.power_w !== undefined && gridReading?.power_w !== null && gridReading.site_meter !== false) {
      grid = (grid ?? 0) + gridReading.power_w;
      gridMeasuredBy.push(d.name ?? d.id);
      gridPhasesW = gridMeasuredBy.length === 1 && Array.isArray(gridReading.phases_w) ? gridReading.phases_w : undefined;
      // a meter that only measures the grid is not a device drawing power of its own
      if (deviceKind(d) === 'meter' && !d.state.meter.device) continue;
    }
    const p = devicePowerW(d);
    if (p === undefined || p === null) continue;
    known++;
    const kind = deviceKind(d);
    if (kind === 'pv') pv += -p;
    else if (kind === 'battery') battery += p;
    sum += p;
  }
  if (!known && grid === undefined) return undefined;
  grid ??= sum;
  return { pvW: Math.max(0, pv), batteryW: battery, gridW: grid, homeW: Math.max(0, grid + Math.max(0, pv) - battery), gridMeasuredBy, gridPhasesW };
}

/** The line under the flows picture: where the grid figure comes from. */
export function gridSourceText(flows, power) {
  if (!flows.gridMeasuredBy?.length) return 'Grid estimated from the device meters (no grid meter)';
  const phases = flows.gridPhasesW?.length ? ` · ${flows.gridPhasesW.map((w, i) => `L${i + 1} ${power(w)}`).join(' · ')}` : '';
  return `Grid measured by ${flows.gridMeasuredBy.join(', ')}${phases}`;
}
