import { randomBytes } from 'node:crypto';
import { DateTime } from 'luxon';
import { ApiError, badRequest, parseRfc3339, type Direction, type PriceSeries, type TimeWindow } from '../api/index.js';
import { access, type RouteModule } from '../core/http.js';
import type { HubServices } from '../core/services.js';
import { energySchedule, InfeasibleScheduleError, type ScheduleDevice } from '../optimiser/schedule.js';
import { NotEnoughPricesError, slotsByThreshold, slotsByTime, type PricePeriod, type Segment } from '../optimiser/slots.js';
import { iso, MINUTE, seriesProblems } from './series.js';
import type { BillTerms } from './bill-model.js';
import type { TariffService } from './service.js';

/** The longest window any endpoint accepts, as in the FlatPeak API. */
export const MAX_WINDOW_DAYS = 90;
const MAX_IMPORT_SLOTS = 200_000;
const MAX_SCHEDULE_DEVICES = 50;

const objectId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;
const r6 = (x: number) => Math.round(x * 1e6) / 1e6;
const r2 = (x: number) => Math.round(x * 100) / 100;

type Query = Record<string, unknown>;

/** One query value as a string; repeated parameters are an error naming the field. */
function single(q: Query, field: string): string | undefined {
  const v = q[field];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw badRequest(field, 'given more than once');
  return String(v);
}

function rejectUnknown(obj: Record<string, unknown>, allowed: string[], prefix = '') {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw badRequest(`${prefix}${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

export function parseTime(field: string, value: unknown): number {
  const parsed = typeof value === 'string' ? parseRfc3339(value) : undefined;
  if (parsed?.ok) return parsed.t;
  if (parsed && parsed.problem !== 'form') throw badRequest(field, `${JSON.stringify(value)} is not a real date and time`);
  throw badRequest(field, `must be an RFC 3339 time such as 2026-01-05T18:00:00Z, got ${JSON.stringify(value)}`);
}

function parseDirection(field: string, value: unknown): Direction {
  if (value === undefined) return 'IMPORT';
  if (value === 'IMPORT' || value === 'EXPORT') return value;
  throw badRequest(field, `must be IMPORT or EXPORT, got ${JSON.stringify(value)}`);
}

/** The window of a request: `start_time` defaults to now, `end_time` is required, at most 90 days. */
function parseWindow(hub: HubServices, startValue: unknown, endValue: unknown, prefix = ''): TimeWindow {
  const start = startValue === undefined ? hub.clock.now() : parseTime(`${prefix}start_time`, startValue);
  if (endValue === undefined) throw badRequest(`${prefix}end_time`, 'is required');
  const end = parseTime(`${prefix}end_time`, endValue);
  if (end <= start) throw badRequest(`${prefix}end_time`, `must be after start_time (${iso(start)})`);
  const limit = DateTime.fromMillis(start, { zone: hub.site.timezone }).plus({ days: MAX_WINDOW_DAYS }).toMillis();
  if (end > limit) throw badRequest(`${prefix}end_time`, `the window may be at most ${MAX_WINDOW_DAYS} days (end_time at most ${iso(limit)})`);
  return { start, end };
}

function parseNumber(field: string, value: unknown, opts: { min?: number; max?: number; minExclusive?: boolean } = {}): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw badRequest(field, `must be a number, got ${JSON.stringify(value)}`);
  if (opts.min !== undefined && (opts.minExclusive ? n <= opts.min : n < opts.min)) throw badRequest(field, `must be ${opts.minExclusive ? 'greater than' : 'at least'} ${opts.min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) throw badRequest(field, `must be at most ${opts.max}, got ${n}`);
  return n;
}

function parseBool(field: string, value: string | undefined): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1' || value === '') return true;
  throw badRequest(field, `must be true or false, got ${JSON.stringify(value)}`);
}

function checkLocation(hub: HubServices, id: string) {
  if (id !== hub.site.id) throw new ApiError(404, 'location_not_found', `no location "${id}" (known: ${hub.site.id})`, { field: 'location_id' });
}

const periodView = (p: PricePeriod) => ({ start_time: iso(p.start), end_time: iso(p.end), tariff: { rate_avg: r6(p.rateAvg), confidence: r6(p.confidence) } });

/** A power or energy object `{units, value}` in W or Wh. */
function parseQuantity(field: string, value: unknown, kind: 'power' | 'energy'): number {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw badRequest(field, `must be an object {units, value}`);
  const o = value as Record<string, unknown>;
  rejectUnknown(o, ['units', 'value'], `${field}.`);
  const units = o.units ?? (kind === 'power' ? 'W' : 'WH');
  const allowed = kind === 'power' ? ['W', 'KW'] : ['WH', 'KWH'];
  if (typeof units !== 'string' || !allowed.includes(units)) throw badRequest(`${field}.units`, `must be ${allowed.join(' or ')}, got ${JSON.stringify(units)}`);
  if (o.value === undefined) throw badRequest(`${field}.value`, 'is required');
  const n = parseNumber(`${field}.value`, o.value, { min: 0, minExclusive: kind === 'power' });
  return units.startsWith('K') ? n * 1000 : n;
}

function parseSeriesBody(body: Record<string, unknown>): PriceSeries {
  const data = body.data;
  if (!Array.isArray(data)) throw badRequest('data', 'is required: an array of {valid_from, valid_to, rate}');
  if (!data.length) throw badRequest('data', 'must hold at least one slot');
  if (data.length > MAX_IMPORT_SLOTS) throw badRequest('data', `at most ${MAX_IMPORT_SLOTS} slots per request, got ${data.length}`);
  const series: PriceSeries = data.map((item, i) => {
    const f = `data[${i}]`;
    if (!item || typeof item !== 'object' || Array.isArray(item)) throw badRequest(f, 'must be an object {valid_from, valid_to, rate}');
    const o = item as Record<string, unknown>;
    rejectUnknown(o, ['valid_from', 'valid_to', 'rate', 'confidence', 'tariff'], `${f}.`);
    const start = parseTime(`${f}.valid_from`, o.valid_from);
    const end = parseTime(`${f}.valid_to`, o.valid_to);
    if (end <= start) throw badRequest(`${f}.valid_to`, `must be after valid_from (${iso(start)})`);
    const tariff = o.tariff as Record<string, unknown> | undefined;
    if (tariff !== undefined && (typeof tariff !== 'object' || tariff === null)) throw badRequest(`${f}.tariff`, 'must be an object {rate, confidence}');
    const rateValue = o.rate ?? tariff?.rate;
    if (rateValue === undefined) throw badRequest(`${f}.rate`, 'is required');
    const rate = parseNumber(o.rate !== undefined ? `${f}.rate` : `${f}.tariff.rate`, rateValue);
    const confValue = o.confidence ?? tariff?.confidence;
    const confidence = confValue === undefined ? 1 : parseNumber(`${f}.confidence`, confValue, { min: 0, max: 1 });
    return { start, end, rate, confidence };
  });
  const problems = seriesProblems(series);
  if (problems.length) throw badRequest(`data[${problems[0].index}].valid_from`, problems[0].message);
  return series;
}

/** The tariff API: rates (read and import), slots by time and threshold, energy schedules. */
export function tariffRoutes(service: TariffService): RouteModule {
  return (app, hub) => {
    const header = (direction: Direction) => ({
      location_id: hub.site.id,
      location_timezone: hub.site.timezone,
      currency_code: hub.site.currency,
      direction,
    });

    app.get<{ Params: { location_id: string }; Querystring: Query }>('/tariffs/rates/:location_id', access('read'), async (req) => {
      checkLocation(hub, req.params.location_id);
      const q = req.query;
      rejectUnknown(q, ['start_time', 'end_time', 'direction', 'include_tariff', 'include_carbon']);
      const direction = parseDirection('direction', single(q, 'direction'));
      const window = parseWindow(hub, single(q, 'start_time'), single(q, 'end_time'));
      const series = service.series(direction, window);
      const status = service.status(direction);
      // say where the answered slots come from: the imported series wins wherever it has slots
      const imported = service.imported(direction, window);
      const energy = service.hasBill() ? service.energySeries(direction, window) : series;
      const fromImport = energy.filter((s) => imported.some((i) => i.start <= s.start && s.end <= i.end && i.rate === s.rate)).length;
      const answered = fromImport === 0 ? status.type : fromImport === series.length ? 'imported' : 'mixed';
      const description = answered === 'imported' ? 'a series imported with PUT /api/v1/tariffs/rates' : answered === 'mixed' ? `an imported series where it has slots, ${status.description ?? 'nothing'} elsewhere` : status.description;
      return {
        id: objectId('rts'),
        object: 'tariff_rate',
        ...header(direction),
        last_updated: status.last_updated,
        next_update: status.next_update,
        request: q,
        source: { type: answered, description, configured_type: status.type, error: status.error, fallback: status.fallback },
        data: service.hasBill() ? withComponents(service, direction, series) : series.map((s) => ({ valid_from: iso(s.start), valid_to: iso(s.end), tariff: { rate: s.rate, confidence: s.confidence } })),
        ...(service.hasBill() ? { bill_terms: termsView(service.terms()) } : {}),
      };
    });

    app.put<{ Params: { location_id: string }; Querystring: Query; Body: unknown }>('/tariffs/rates/:location_id', access('write'), async (req) => {
      checkLocation(hub, req.params.location_id);
      rejectUnknown(req.query, ['direction']);
      const body = req.body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body', 'must be a JSON object {currency_code, data:[{valid_from, valid_to, rate}]}');
      const b = body as Record<string, unknown>;
      rejectUnknown(b, ['currency_code', 'direction', 'data']);
      if (b.currency_code === undefined) throw badRequest('currency_code', 'is required');
      if (b.currency_code !== hub.site.currency) throw badRequest('currency_code', `must be the site currency ${hub.site.currency}, got ${JSON.stringify(b.currency_code)}`);
      const queryDirection = single(req.query, 'direction');
      if (queryDirection !== undefined && b.direction !== undefined && queryDirection !== b.direction) throw badRequest('direction', 'the query and the body name different directions');
      const direction = b.direction !== undefined ? parseDirection('direction', b.direction) : parseDirection('direction', queryDirection);
      const series = parseSeriesBody(b);
      const done = await service.importSeries(direction, series);
      const status = service.status(direction);
      return {
        id: objectId('rts'),
        object: 'tariff_rate_import',
        ...header(direction),
        slots_imported: done.count,
        valid_from: iso(done.from),
        valid_to: iso(done.to),
        last_updated: status.last_updated,
      };
    });

    app.get<{ Params: { location_id: string }; Querystring: Query }>('/slots/time/:location_id', access('read'), async (req) => {
      checkLocation(hub, req.params.location_id);
      const q = req.query;
      rejectUnknown(q, ['start_time', 'end_time', 'direction', 'segment', 'duration', 'continuous']);
      const direction = parseDirection('direction', single(q, 'direction'));
      const window = parseWindow(hub, single(q, 'start_time'), single(q, 'end_time'));
      const segment = parseSegment(single(q, 'segment'));
      const durationValue = single(q, 'duration');
      if (durationValue === undefined) throw badRequest('duration', 'is required (minutes)');
      const duration = parseNumber('duration', durationValue, { min: 0, minExclusive: true });
      const windowMinutes = (window.end - window.start) / MINUTE;
      if (duration > windowMinutes) throw badRequest('duration', `${duration} minutes is longer than the window (${windowMinutes} minutes)`);
      const continuous = parseBool('continuous', single(q, 'continuous'));
      let periods: PricePeriod[];
      try {
        periods = slotsByTime(service.series(direction, window), { window, segment, durationMinutes: duration, continuous });
      } catch (err) {
        if (err instanceof NotEnoughPricesError) {
          throw new ApiError(422, 'no_price_data', err.message, { available_minutes: err.availableMinutes, requested_minutes: err.requestedMinutes });
        }
        throw err;
      }
      return { id: objectId('sta'), object: 'slot_time', ...header(direction), next_update: service.status(direction).next_update, request: q, data: periods.map(periodView) };
    });

    app.get<{ Params: { location_id: string }; Querystring: Query }>('/slots/threshold/:location_id', access('read'), async (req) => {
      checkLocation(hub, req.params.location_id);
      const q = req.query;
      rejectUnknown(q, ['start_time', 'end_time', 'direction', 'segment', 'relative', 'absolute']);
      const direction = parseDirection('direction', single(q, 'direction'));
      const window = parseWindow(hub, single(q, 'start_time'), single(q, 'end_time'));
      const segment = parseSegment(single(q, 'segment'));
      const abs = single(q, 'absolute');
      const rel = single(q, 'relative');
      if (abs === undefined && rel === undefined) throw badRequest('relative', 'give relative (0 < r ≤ 1) or absolute (a rate)');
      const absolute = abs === undefined ? undefined : parseNumber('absolute', abs);
      const relative = rel === undefined ? undefined : parseNumber('relative', rel, { min: 0, minExclusive: true, max: 1 });
      const result = slotsByThreshold(service.series(direction, window), { window, segment, absolute, relative });
      return {
        id: objectId('stt'),
        object: 'slot_threshold',
        ...header(direction),
        next_update: service.status(direction).next_update,
        request: q,
        threshold: result.threshold === undefined ? null : r6(result.threshold),
        duration: result.durationMinutes,
        data: result.periods.map(periodView),
      };
    });

    app.post<{ Body: unknown }>('/schedules', access('read'), async (req) => {
      const body = req.body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body', 'must be a JSON object {location_id, max_power, data:[…]}');
      const b = body as Record<string, unknown>;
      rejectUnknown(b, ['location_id', 'max_power', 'shaving_threshold', 'data']);
      if (typeof b.location_id !== 'string') throw badRequest('location_id', 'is required');
      checkLocation(hub, b.location_id);
      const gridLimit = hub.config.site.grid?.max_import_w;
      const siteMax = b.max_power !== undefined ? parseQuantity('max_power', b.max_power, 'power') : (gridLimit ?? Infinity);
      if (!Array.isArray(b.data) || !b.data.length) throw badRequest('data', 'is required: an array of {device_id, direction, start_time, end_time, max_power, energy}');
      if (b.data.length > MAX_SCHEDULE_DEVICES) throw badRequest('data', `at most ${MAX_SCHEDULE_DEVICES} devices per request`);
      const seen = new Set<string>();
      const devices: ScheduleDevice[] = b.data.map((item, i) => {
        const f = `data[${i}]`;
        if (!item || typeof item !== 'object' || Array.isArray(item)) throw badRequest(f, 'must be an object');
        const o = item as Record<string, unknown>;
        rejectUnknown(o, ['device_id', 'direction', 'start_time', 'end_time', 'max_power', 'energy'], `${f}.`);
        if (typeof o.device_id !== 'string' || !o.device_id) throw badRequest(`${f}.device_id`, 'is required');
        if (seen.has(o.device_id)) throw badRequest(`${f}.device_id`, `"${o.device_id}" appears twice`);
        seen.add(o.device_id);
        const direction = parseDirection(`${f}.direction`, o.direction);
        if (o.start_time === undefined) throw badRequest(`${f}.start_time`, 'is required');
        const window = parseWindow(hub, o.start_time, o.end_time, `${f}.`);
        if (o.energy === undefined) throw badRequest(`${f}.energy`, 'is required');
        const energyWh = parseQuantity(`${f}.energy`, o.energy, 'energy');
        let maxPowerW: number;
        if (o.max_power !== undefined) maxPowerW = parseQuantity(`${f}.max_power`, o.max_power, 'power');
        else if (Number.isFinite(siteMax)) maxPowerW = siteMax;
        else throw badRequest(`${f}.max_power`, 'is required when the request has no max_power');
        return { id: o.device_id, direction, window, maxPowerW, energyWh };
      });
      const span = { start: Math.min(...devices.map((d) => d.window.start)), end: Math.max(...devices.map((d) => d.window.end)) };
      const importSeries = devices.some((d) => d.direction === 'IMPORT') ? service.series('IMPORT', span) : [];
      const exportSeries = devices.some((d) => d.direction === 'EXPORT') ? service.series('EXPORT', span) : [];
      const priceLimit = parseShaving(b.shaving_threshold, importSeries, exportSeries, devices, span);
      let result;
      try {
        result = energySchedule({ devices, siteMaxPowerW: Number.isFinite(siteMax) ? siteMax : devices.reduce((a, d) => a + d.maxPowerW, 0), importSeries, exportSeries, priceLimit });
      } catch (err) {
        if (err instanceof InfeasibleScheduleError) {
          throw new ApiError(422, 'schedule_infeasible', err.message, {
            requested_energy: { units: 'WH', value: r6(err.requestedWh) },
            feasible_energy: { units: 'WH', value: r6(err.feasibleWh) },
            devices: err.devices.map((d) => ({ device_id: d.id, requested_energy: { units: 'WH', value: r6(d.requestedWh) }, feasible_energy: { units: 'WH', value: r6(d.feasibleWh) } })),
          });
        }
        throw err;
      }
      const oneDirection = new Set(devices.map((d) => d.direction)).size === 1;
      // one direction: the cost (IMPORT) or earnings (EXPORT); mixed: the net cost
      const total = oneDirection ? result.devices.reduce((a, d) => a + d.value, 0) : result.netCost;
      const saved = result.baselineNetCost - result.netCost;
      const baseline = oneDirection ? result.devices.reduce((a, d) => a + d.baselineValue, 0) : result.baselineNetCost;
      return {
        id: objectId('sch'),
        object: 'schedule',
        location_id: hub.site.id,
        location_timezone: hub.site.timezone,
        currency_code: hub.site.currency,
        max_power: Number.isFinite(siteMax) ? { units: 'W', value: siteMax } : null,
        shaving_threshold: b.shaving_threshold ?? null,
        tariff: { value: r6(total), confidence: r6(result.confidence) },
        savings: { value: r6(saved), percentage: baseline ? r2((saved / Math.abs(baseline)) * 100) : 0 },
        data: result.devices.map((d, i) => ({
          ...(b.data as Record<string, unknown>[])[i],
          direction: d.direction,
          tariff: { value: r6(d.value), confidence: r6(d.confidence) },
          savings: { value: r6(d.savings), percentage: d.baselineValue ? r2((d.savings / Math.abs(d.baselineValue)) * 100) : 0 },
          schedule: d.intervals.map((iv) => ({ start_time: iso(iv.start), end_time: iso(iv.end), power: { units: 'W', value: Math.round(iv.powerW * 1000) / 1000 } })),
        })),
      };
    });
  };
}

function parseSegment(value: string | undefined): Segment {
  if (value === undefined) throw badRequest('segment', 'is required: LOW or HIGH');
  if (value !== 'LOW' && value !== 'HIGH') throw badRequest('segment', `must be LOW or HIGH, got ${JSON.stringify(value)}`);
  return value;
}

/** `shaving_threshold {absolute | relative}`: a price cap for imports and a floor for exports. */
function parseShaving(value: unknown, imp: PriceSeries, exp: PriceSeries, devices: ScheduleDevice[], span: TimeWindow) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest('shaving_threshold', 'must be an object {relative} or {absolute}');
  const o = value as Record<string, unknown>;
  rejectUnknown(o, ['relative', 'absolute'], 'shaving_threshold.');
  if (o.absolute !== undefined) {
    const a = parseNumber('shaving_threshold.absolute', o.absolute);
    return { import: a, export: a };
  }
  if (o.relative === undefined) throw badRequest('shaving_threshold', 'give relative (0 < r ≤ 1) or absolute');
  const r = parseNumber('shaving_threshold.relative', o.relative, { min: 0, minExclusive: true, max: 1 });
  const level = (series: PriceSeries, high: boolean) => {
    const inSpan = series.filter((s) => s.end > span.start && s.start < span.end);
    if (!inSpan.length) return undefined;
    const min = Math.min(...inSpan.map((s) => s.rate));
    const max = Math.max(...inSpan.map((s) => s.rate));
    // imports pay at most the r-level of the range; exports sell only in its top (1 − r)
    return high ? max - r * (max - min) : min + r * (max - min);
  };
  return {
    import: devices.some((d) => d.direction === 'IMPORT') ? level(imp, false) : undefined,
    export: devices.some((d) => d.direction === 'EXPORT') ? level(exp, true) : undefined,
  };
}

const r9 = (x: number) => Math.round(x * 1e9) / 1e9;

/** Each slot of the composed series with its parts (energy, grid fee and window, levies, VAT; export: the rule). */
function withComponents(service: TariffService, direction: Direction, series: PriceSeries) {
  if (!series.length) return [];
  const parts = service.components({ start: series[0].start, end: series[series.length - 1].end });
  let j = 0;
  return series.map((s) => {
    while (j < parts.length && parts[j].end <= s.start) j++;
    const c = parts[j] && parts[j].start <= s.start ? parts[j] : undefined;
    const base = { valid_from: iso(s.start), valid_to: iso(s.end), tariff: { rate: s.rate, confidence: s.confidence } };
    if (!c) return { ...base, components: null };
    return {
      ...base,
      components:
        direction === 'IMPORT'
          ? { energy: r9(c.energy), grid_fee: r9(c.gridFee), window: c.window, operator: c.operator, levies: c.levyParts.map((l) => ({ name: l.name, rate: l.rate })), vat_percent: c.vatPercent }
          : { export_rate: c.exportSourceRate, paid: c.exportPaid },
    };
  });
}

function termsView(t: BillTerms) {
  return {
    vat_percent: t.vatPercent,
    standing_charges: t.standingCharges.map((s) => ({ name: s.name, amount: s.amount, per: s.per, valid_from: s.validFrom ?? null, valid_to: s.validTo ?? null })),
    capacity_charge:
      t.capacity === null
        ? null
        : t.capacity.kind === 'monthly_peak'
          ? { type: 'monthly_peak', price_per_kw_year: t.capacity.pricePerKwYear, minimum_kw: t.capacity.minimumKw, average_months: t.capacity.averageMonths, interval_minutes: t.capacity.intervalMinutes }
          : { type: 'daily_peaks_step', days: t.capacity.days, interval_minutes: t.capacity.intervalMinutes, steps: t.capacity.steps.map((x) => ({ from_kw: x.fromKw, to_kw: x.toKw, per_month: x.perMonth })) },
    export_rules: { no_pay_at_negative_price: t.exportRules.noPayAtNegativePrice, price_reference: t.exportRules.priceReference, max_export_w: t.exportRules.capW },
  };
}
