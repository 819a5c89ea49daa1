import { dirname, isAbsolute, join, resolve } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import { DateTime } from 'luxon';
import { DAY, entryAt, HOUR, isRetryable, type Clock, type EpochMs, type ForecastPoint, type ForecastSource, type ForecastSourceDefinition, type Logger, type PvArraySpec, type SiteInfo } from '../api/index.js';
import type { HubConfig } from '../core/config/schema.js';
import {
  arrayAcPowerW,
  asMadeSeries,
  calibratedForecast,
  dailyPvRatio,
  ROBUST_DAYS,
  robustPvFactor,
  clearSkyPvForecast,
  errorsByHorizon,
  fitPvCalibration,
  seriesForecast,
  sumForecasts,
  withLearnedQuantiles,
  type CalibrationPair,
  type EnergyInterval,
  type ForecastSlot,
  type HorizonError,
  type PowerForecast,
  type PvPlane,
} from '../optimiser/forecast/index.js';
import { ForecastStore } from './store.js';


/** What the site planner asks of the forecasts (src/control/model.ts). */
export interface SiteForecasts {
  /** The PV forecast of a `pv` device that measures configured arrays, or undefined when none does. */
  pvForDevice(deviceId: string, deviceFallback: PowerForecast, now: EpochMs): { forecast: PowerForecast; notes: string[] } | undefined;
  /** Arrays no device measures: each is its own flow. */
  unmeteredArrays(now: EpochMs): { id: string; forecast: PowerForecast; notes: string[] }[];
  /** Forecast outdoor temperature (°C) at an instant, where the source forecasts weather. */
  outdoorC?(t: EpochMs): number | undefined;
  /** The factor the PV flows are planned with (`forecasts.uncertainty`), from the stored forecasts and measurements. */
  pvScale?(now: EpochMs): PvScale;
}

/** How the PV forecast is scaled for planning, and from what. */
export interface PvScale {
  mode: 'robust' | 'point';
  factor: number;
  quantile: number;
  /** Measured ÷ forecast PV of the last known days, oldest first. */
  ratios: number[];
}

export interface ForecastHealth {
  type: string | null;
  description: string | null;
  last_updated: string | null;
  error: string | null;
  /** Failing or without a forecast for the coming hours: the clear-sky forecast stands in. */
  degraded: boolean;
}

export interface ForecastServiceOptions {
  config: HubConfig;
  site: SiteInfo;
  clock: Clock;
  log: Logger;
  /** `<storage.dir>`: forecasts are stored in its `forecasts/` folder. */
  storageDir: string;
  sources: ForecastSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Persistent cache of the source (its last known forecast). */
  cache: { get<T>(key: string): T | undefined; set(key: string, value: unknown): Promise<void> };
  fetch?: typeof globalThis.fetch;
}

/** The arrays of `forecasts.pv` with the site's coordinates filled in. */
export function resolveArrays(config: HubConfig): PvArraySpec[] {
  return config.forecasts.pv.map((a) => ({
    ...a,
    tilt: a.tilt ?? 30,
    azimuth: a.azimuth ?? 180,
    latitude: a.latitude ?? config.site.latitude ?? 0,
    longitude: a.longitude ?? config.site.longitude ?? 0,
  }));
}

const planeOf = (a: PvArraySpec): PvPlane => ({
  id: a.id,
  kWp: a.kwp,
  tilt: a.tilt,
  azimuth: a.azimuth,
  latitude: a.latitude,
  longitude: a.longitude,
  inverterKw: a.inverter_kw,
  tempCoeffPerK: (a.temp_coeff_pct_per_k ?? -0.4) / 100,
  noctC: a.noct_c,
  losses: (a.losses_pct ?? 10) / 100,
});

const nanForecast: PowerForecast = { name: '', powerW: (slots) => slots.map(() => NaN) };

/**
 * The site's forecasts beside the tariffs: runs the configured forecast source (refresh on its
 * schedule, last known forecast kept, clear sky standing in while it fails), turns weather into
 * each array's AC power, calibrates each PV device's forecast against its measured production,
 * stores every forecast as made and what was measured, and reports the errors by lead time.
 */
export class ForecastService implements SiteForecasts {
  readonly arrays: PvArraySpec[];
  private source?: ForecastSource;
  private def?: ForecastSourceDefinition;
  private lastError?: string;
  private task?: ScheduledTask;
  private refreshing?: Promise<void>;
  store?: ForecastStore;
  /** Per refresh: the arrays' AC power derived from the weather. */
  private weatherPoints?: { at: number | undefined; byArray: Map<string, ForecastPoint[]> };
  /** The raw (uncalibrated) source forecast per device of the last plan, for storing as made. */
  private readonly lastRaw = new Map<string, { slots: ForecastSlot[]; w: number[]; name: string }>();
  private lastRecordedHour = -Infinity;

  constructor(private readonly options: ForecastServiceOptions) {
    this.arrays = resolveArrays(options.config);
    const cfg = options.config.forecasts.source;
    if (!cfg) return;
    const def = options.sources.find((s) => s.type === cfg.type);
    if (!def) {
      this.lastError = `unknown forecast source "${cfg.type}" (known: ${options.sources.map((s) => s.type).join(', ')})`;
      options.log.error(this.lastError);
      return;
    }
    this.def = def;
    const resolved = { ...cfg };
    if (typeof resolved.path === 'string' && !isAbsolute(resolved.path)) resolved.path = resolve(dirname(resolve(options.config.source)), resolved.path);
    try {
      this.source = def.create({ log: options.log.child({ forecast: cfg.type }), clock: options.clock, site: options.site, arrays: this.arrays, fetch: options.fetch ?? globalThis.fetch, cache: options.cache }, resolved);
    } catch (err) {
      this.lastError = `forecast source ${cfg.type} could not be created: ${(err as Error).message}`;
      options.log.error({ err }, this.lastError);
    }
  }

  async start(): Promise<void> {
    const now = this.options.clock.now();
    this.store = await ForecastStore.open(join(this.options.storageDir, 'forecasts'), now);
    if (this.store.skipped) this.options.log.warn({ skipped: this.store.skipped }, `forecast store: ${this.store.skipped} damaged lines skipped (the others are kept)`);
    if (!this.source?.refresh || !this.def) return;
    const cfg = this.options.config.forecasts.source!;
    const expr = typeof cfg.refresh_cron === 'string' ? cfg.refresh_cron : this.def.defaultCron;
    try {
      this.task = cron.schedule(expr, () => this.refresh().catch(() => undefined), { timezone: this.options.site.timezone, name: 'forecast-source', noOverlap: true });
      this.task.unref?.();
    } catch (err) {
      this.options.log.error({ err }, `forecast refresh schedule "${expr}" could not be set up; the forecast is fetched at start only`);
    }
    // the first fetch runs in the background so a slow provider does not hold up the hub's start
    void this.refresh().catch(() => undefined);
  }

  async stop(): Promise<void> {
    await this.task?.destroy();
    await this.refreshing?.catch(() => undefined);
    await this.store?.flush();
  }

  /** Fetches a new forecast now; the last known forecast stays when it fails. */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    const p = (async () => {
      if (!this.source?.refresh) return;
      try {
        await this.source.refresh();
        if (this.lastError) this.options.log.info(`forecast source ${this.def?.type} works again`);
        this.lastError = undefined;
      } catch (err) {
        const first = this.lastError === undefined;
        this.lastError = (err as Error).message;
        const log = first ? this.options.log.warn.bind(this.options.log) : this.options.log.debug.bind(this.options.log);
        log({ err, retryable: isRetryable(err) }, `forecast source ${this.def?.type} failed; keeping the last known forecast, clear sky × recent production stands in where it ends`);
        throw err;
      }
    })().finally(() => (this.refreshing = undefined));
    this.refreshing = p;
    return p;
  }

  health(): ForecastHealth | null {
    const cfg = this.options.config.forecasts.source;
    if (!cfg) return null;
    const updated = this.source?.lastUpdated?.();
    const now = this.options.clock.now();
    const ahead = this.arrays.length ? this.arrayPoints(this.arrays[0].id).some((p) => p.end > now + HOUR) : false;
    return {
      type: cfg.type,
      description: this.source?.describe() ?? null,
      last_updated: updated !== undefined ? new Date(updated).toISOString() : null,
      error: this.lastError ?? null,
      degraded: !this.source || this.lastError !== undefined || !ahead,
    };
  }

  /** The source's forecast of one array: its own answer, or the array's power from the weather. */
  private arrayPoints(arrayId: string): readonly ForecastPoint[] {
    const src = this.source;
    if (!src) return [];
    const direct = src.pv?.().get(arrayId);
    if (direct?.length) return direct;
    if (!src.weather) return [];
    const at = src.lastUpdated?.();
    if (!this.weatherPoints || this.weatherPoints.at !== at) {
      const weather = src.weather();
      const byArray = new Map<string, ForecastPoint[]>();
      for (const a of this.arrays) {
        const plane = planeOf(a);
        byArray.set(a.id, weather.map((w) => ({ start: w.start, end: w.end, powerW: arrayAcPowerW(w, plane) })));
      }
      this.weatherPoints = { at, byArray };
    }
    return this.weatherPoints.byArray.get(arrayId) ?? [];
  }

  /** Sum of the source's forecasts of some arrays; NaN where any of them has no forecast. */
  private sourceForecast(arrayIds: string[]): PowerForecast {
    const parts = arrayIds.map((id) => seriesForecast(this.arrayPoints(id), id, nanForecast));
    return sumForecasts(parts, this.source?.describe() ?? 'no source');
  }

  /** The source where it has values, `fallback` elsewhere; says how many slots the fallback filled. */
  private withFallback(raw: PowerForecast, fallback: PowerForecast): PowerForecast & { standIn(slots: readonly ForecastSlot[]): number } {
    const fill = (slots: readonly ForecastSlot[], values: number[], fb: () => number[]) => {
      let fbv: number[] | undefined;
      return values.map((v, i) => (Number.isFinite(v) ? v : (fbv ??= fb())[i]));
    };
    return {
      name: this.source ? `${raw.name} (else ${fallback.name})` : fallback.name,
      powerW: (slots) => fill(slots, raw.powerW(slots), () => fallback.powerW(slots)),
      quantilesW: raw.quantilesW
        ? (slots) => {
            const q = raw.quantilesW!(slots);
            const fq = () => fallback.powerW(slots);
            return { p10: fill(slots, q.p10, fq), p50: fill(slots, q.p50, fq), p90: fill(slots, q.p90, fq) };
          }
        : undefined,
      standIn: (slots) => raw.powerW(slots).filter((v) => !Number.isFinite(v)).length,
    };
  }

  /** Pairs of (raw forecast in force, measured) per hour for a device, from the store. */
  calibrationPairs(deviceId: string): CalibrationPair[] {
    if (!this.store) return [];
    const forecast = this.store.measuredSteps(`asmade:pv_raw:${deviceId}`, -Infinity, Infinity);
    const out: CalibrationPair[] = [];
    for (const f of forecast) {
      const a = this.store.measuredW(`pv:${deviceId}`, f.start, f.end);
      if (a !== undefined) out.push({ start: f.start, end: f.end, forecastW: f.w, actualW: a });
    }
    return out;
  }

  pvForDevice(deviceId: string, deviceFallback: PowerForecast, now: EpochMs): { forecast: PowerForecast; notes: string[] } | undefined {
    const arrays = this.arrays.filter((a) => a.device === deviceId);
    if (!arrays.length) return undefined;
    const notes: string[] = [];
    const raw = this.withFallback(this.sourceForecast(arrays.map((a) => a.id)), deviceFallback);
    let forecast: PowerForecast = raw;
    const cal = this.options.config.forecasts.calibration;
    const pairs = this.source ? this.calibrationPairs(deviceId) : [];
    if (this.source && cal?.enabled !== false && pairs.length) {
      forecast = calibratedForecast(raw, fitPvCalibration(pairs, { timezone: this.options.site.timezone, seasonDays: cal?.season_days, minFactor: cal?.min_factor, maxFactor: cal?.max_factor }));
    }
    if (!forecast.quantilesW && pairs.length >= 24) forecast = withLearnedQuantiles(forecast, pairs, { timezone: this.options.site.timezone, mode: 'ratio' });
    const horizon = this.options.config.planner.horizon_hours;
    const probe: ForecastSlot[] = [];
    for (let t = Math.floor(now / HOUR) * HOUR; t < now + horizon * HOUR; t += HOUR) probe.push({ start: t, end: t + HOUR });
    if (this.source || this.options.config.forecasts.source) {
      const missing = this.source ? raw.standIn(probe) : probe.length;
      if (missing) notes.push(`${deviceId}: PV forecast ${this.standInReason()}; ${deviceFallback.name} stands in for ${missing} of ${probe.length} hours`);
    }
    this.lastRaw.set(deviceId, { slots: probe, w: this.sourceForecast(arrays.map((a) => a.id)).powerW(probe), name: raw.name });
    return { forecast, notes };
  }

  unmeteredArrays(now: EpochMs): { id: string; forecast: PowerForecast; notes: string[] }[] {
    return this.arrays
      .filter((a) => a.device === undefined)
      .map((a) => {
        const fallback = clearSkyPvForecast({ array: { kWp: a.kwp, tilt: a.tilt, azimuth: a.azimuth, latitude: a.latitude, longitude: a.longitude, performanceRatio: 0.85 }, timezone: this.options.site.timezone });
        const raw = this.withFallback(this.sourceForecast([a.id]), fallback);
        const probe: ForecastSlot[] = [];
        for (let t = Math.floor(now / HOUR) * HOUR; t < now + this.options.config.planner.horizon_hours * HOUR; t += HOUR) probe.push({ start: t, end: t + HOUR });
        const missing = this.source ? raw.standIn(probe) : probe.length;
        const notes = this.options.config.forecasts.source && missing ? [`array ${a.id}: PV forecast ${this.standInReason()}; ${fallback.name} stands in for ${missing} of ${probe.length} hours`] : [];
        return { id: a.id, forecast: raw, notes };
      });
  }

  private standInReason(): string {
    const type = this.options.config.forecasts.source?.type ?? 'source';
    if (!this.source) return `source ${type} is not running (${this.lastError ?? 'not created'})`;
    if (this.lastError) return `source ${type} is failing (${this.lastError}) and its last forecast ends`;
    return `source ${type} has no forecast for part of the horizon`;
  }

  /**
   * Measured ÷ forecast PV energy of each of the last {@link ROBUST_DAYS} whole local days before
   * `now` (oldest first), as the backtest computes them: the forecast is the one stored last before
   * the day began (the day-ahead forecast; where it does not reach an hour, the forecast in force
   * then), the measurement is the site's PV; a day with an hour missing either is left out.
   */
  dailyPvRatios(now: EpochMs): number[] {
    const store = this.store;
    if (!store) return [];
    const tz = this.options.site.timezone;
    const today = DateTime.fromMillis(now, { zone: tz }).startOf('day');
    const ratios: number[] = [];
    for (let d = ROBUST_DAYS; d >= 1; d--) {
      const from = today.minus({ days: d }).toMillis();
      const to = today.minus({ days: d - 1 }).toMillis();
      const snaps = store.snapshotsOf('pv', from, to);
      if (!snaps.length) continue;
      const dayAhead = asMadeSeries(snaps.filter((x) => x.madeAt <= from), from, to, HOUR);
      const inForce = asMadeSeries(snaps, from, to, HOUR);
      let forecastWh = 0;
      let actualWh = 0;
      let complete = true;
      for (let i = 0; i < dayAhead.length && complete; i++) {
        const f = dayAhead[i].forecastW ?? inForce[i].forecastW;
        const a = store.measuredW('pv', dayAhead[i].start, dayAhead[i].end);
        if (f === null || a === undefined) complete = false;
        else {
          forecastWh += f;
          actualWh += a;
        }
      }
      if (!complete) continue;
      const r = dailyPvRatio(actualWh / 1000, forecastWh / 1000);
      if (r !== undefined) ratios.push(r);
    }
    return ratios;
  }

  pvScale(now: EpochMs): PvScale {
    const u = this.options.config.forecasts.uncertainty;
    const mode = u?.pv ?? 'robust';
    const quantile = u?.robust_quantile ?? 0.9;
    if (mode === 'point') return { mode, factor: 1, quantile, ratios: [] };
    const ratios = this.dailyPvRatios(now);
    return { mode, factor: robustPvFactor(ratios, quantile), quantile, ratios };
  }

  outdoorC(t: EpochMs): number | undefined {
    const w = this.source?.weather?.();
    if (!w?.length) return undefined;
    return entryAt(w, t)?.tempC;
  }

  /**
   * Stores the forecasts of a plan as made (once per clock hour, hourly means from the next full
   * hour to the horizon's end), what was measured in the hours since, and the raw PV forecast that
   * was in force in each of those hours (what the calibration learns from).
   */
  async recordPlan(input: {
    now: EpochMs;
    slots: readonly ForecastSlot[];
    pvW: readonly number[];
    loadW: readonly number[];
    names: { pv: string; load: string };
    measured: (series: 'pv' | 'load' | `pv:${string}`, start: number, end: number) => number | undefined;
    pvDevices: string[];
  }): Promise<void> {
    const store = this.store;
    if (!store) return;
    const hour = Math.floor(input.now / HOUR) * HOUR;
    if (hour <= this.lastRecordedHour) return;
    this.lastRecordedHour = hour;
    const hourly = (values: readonly number[]) => {
      const out: number[] = [];
      const end = input.slots[input.slots.length - 1]?.end ?? hour;
      for (let t = hour + HOUR; t + HOUR <= end; t += HOUR) {
        let acc = 0;
        let covered = 0;
        input.slots.forEach((s, i) => {
          const o = Math.min(t + HOUR, s.end) - Math.max(t, s.start);
          if (o > 0) {
            acc += values[i] * o;
            covered += o;
          }
        });
        out.push(covered ? acc / covered : 0);
      }
      return out;
    };
    await store.addSnapshot('pv', { madeAt: input.now, start: hour + HOUR, stepMs: HOUR, valuesW: hourly(input.pvW), source: input.names.pv });
    await store.addSnapshot('load', { madeAt: input.now, start: hour + HOUR, stepMs: HOUR, valuesW: hourly(input.loadW), source: input.names.load });
    for (const [device, raw] of this.lastRaw) {
      const start = raw.slots[1]?.start;
      if (start === undefined) continue;
      await store.addSnapshot(`pv_raw:${device}`, { madeAt: input.now, start, stepMs: HOUR, valuesW: raw.w.slice(1).map((w) => (Number.isFinite(w) ? w : -1)), source: raw.name });
    }
    // measurements of the past day's hours, and the raw forecast in force in each
    const series: ('pv' | 'load' | `pv:${string}`)[] = ['pv', 'load', ...input.pvDevices.map((d) => `pv:${d}` as const)];
    for (const s of series) {
      const from = Math.max(hour - DAY, store.measuredUntil(s) ?? -Infinity);
      const values: (number | null)[] = [];
      for (let t = from; t < hour; t += HOUR) values.push(input.measured(s, t, t + HOUR) ?? null);
      if (values.length) await store.addMeasured(s, { start: from, stepMs: HOUR, valuesW: values });
    }
    for (const device of this.lastRaw.keys()) {
      const name = `asmade:pv_raw:${device}`;
      const from = Math.max(hour - DAY, store.measuredUntil(name) ?? -Infinity);
      if (from >= hour) continue;
      const made = asMadeSeries(store.snapshotsOf(`pv_raw:${device}`, from, hour), from, hour, HOUR);
      await store.addMeasured(name, { start: from, stepMs: HOUR, valuesW: made.map((m) => (m.forecastW !== null && m.forecastW >= 0 ? m.forecastW : null)) });
    }
  }

  /** GET /forecasts: each series as made, as now forecast and as measured, and its errors by lead time. */
  view(from: EpochMs, to: EpochMs): ForecastView {
    const store = this.store;
    const now = this.options.clock.now();
    const series = (['pv', 'load'] as const).map((name) => {
      const snaps = store?.snapshotsOf(name, from - 2 * DAY, to) ?? [];
      const latest = snaps.length ? snaps.reduce((a, b) => (b.madeAt > a.madeAt ? b : a)) : undefined;
      const asMade = asMadeSeries(snaps, Math.floor(from / HOUR) * HOUR, to, HOUR);
      const errors: HorizonError[] = errorsByHorizon(store?.snapshotsOf(name, from - 2 * DAY, to) ?? [], (s, e) => store?.measuredW(name, s, e), from, Math.min(to, now));
      return {
        series: name === 'pv' ? ('pv' as const) : ('base_load' as const),
        unit: 'W' as const,
        forecast: latest?.source ?? null,
        data: asMade.map((m) => {
          const latestW = latest ? latest.valuesW[Math.floor((m.start - latest.start) / latest.stepMs)] : undefined;
          const actual = m.end <= now ? store?.measuredW(name, m.start, m.end) : undefined;
          return {
            start_time: new Date(m.start).toISOString(),
            end_time: new Date(m.end).toISOString(),
            forecast_w: m.forecastW === null ? null : round1(m.forecastW),
            made_at: m.madeAt === null ? null : new Date(m.madeAt).toISOString(),
            latest_w: latestW === undefined || m.start < latest!.start ? null : round1(latestW),
            actual_w: actual === undefined ? null : round1(actual),
          };
        }),
        errors: errors.map((e) => ({ horizon: e.horizon, mae_w: round1(e.maeW), bias_w: round1(e.biasW), mean_actual_w: round1(e.meanActualW), slots: e.slots })),
      };
    });
    const calibration = this.arrays
      .filter((a) => a.device !== undefined)
      .map((a) => a.device!)
      .filter((d, i, all) => all.indexOf(d) === i)
      .map((device) => {
        const pairs = this.calibrationPairs(device);
        const cal = this.options.config.forecasts.calibration;
        const fit = fitPvCalibration(pairs, { timezone: this.options.site.timezone, seasonDays: cal?.season_days, minFactor: cal?.min_factor, maxFactor: cal?.max_factor });
        const day = Math.floor(now / DAY) * DAY;
        return { device, pairs: fit.pairs, enabled: cal?.enabled !== false, factor_by_utc_hour: Array.from({ length: 24 }, (_, h) => Math.round(fit.factorAt(day + h * HOUR + HOUR / 2) * 1000) / 1000) };
      });
    return {
      source: this.health(),
      arrays: this.arrays.map((a) => ({ id: a.id, kwp: a.kwp, tilt: a.tilt, azimuth: a.azimuth, device: a.device ?? null })),
      calibration,
      series,
    };
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export interface ForecastView {
  source: ForecastHealth | null;
  arrays: { id: string; kwp: number; tilt: number; azimuth: number; device: string | null }[];
  calibration: { device: string; pairs: number; enabled: boolean; factor_by_utc_hour: number[] }[];
  series: {
    series: 'pv' | 'base_load';
    unit: 'W';
    forecast: string | null;
    data: { start_time: string; end_time: string; forecast_w: number | null; made_at: string | null; latest_w: number | null; actual_w: number | null }[];
    errors: { horizon: string; mae_w: number; bias_w: number; mean_actual_w: number; slots: number }[];
  }[];
}

export type { EnergyInterval };
