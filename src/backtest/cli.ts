import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import { loadSolver } from '../control/solver.js';
import { runBacktest, STRATEGIES, type BacktestData, type BatterySpec, type EvSpec, type HvacSpec, type StrategyName } from './engine.js';
import { fixedRate, InputError, readSeries, type Interval, type SeriesSource } from './read.js';
import { chartHtml, slotsCsv, summaryJson } from './report.js';
import { PUBLISHED_NRMSE, pvNrmse, readPvForecastArchive, sigmasForNrmse, syntheticPvForecast, type PvForecastArchive } from './weather.js';

export const BACKTEST_USAGE = `homeflex backtest — replay a period with rolling planning and compare strategies

  --prices FILE          import prices: CSV time,value (currency/kWh), an Energy-Charts JSON file or
                         folder of them (EUR/MWh), or Energinet Elspotprices.csv
  --export-prices FILE|RATE   export prices, same formats, or one fixed rate (default 0)
  --load FILE            house load: CSV time,value (kWh per interval), a CityLearn Building_N.csv or
                         an Ausgrid data_*.csv (data of other years is replayed on the same dates)
  --pv FILE              PV production, same formats
  --battery SPEC         capacity_wh=10000,power_w=5000,charge_efficiency=0.95,discharge_efficiency=0.95,
                         soc_min_wh=500,initial_wh=5000 (also charge_w, discharge_w, soc_max_wh, cycle_cost)
  --ev SPEC              arrive=18:00,leave=07:30,energy_wh=15000,max_w=11040,min_w=4140[,room_wh=..,weekdays_only=true]
  --hvac SPEC            mode=cool,r_k_per_kw=5,c_kwh_per_k=3,cop=3,max_w=1500,gains_w=600,min_c=22,max_c=25,
                         initial_c=24 and outdoor=FILE (CSV or CityLearn weather.csv) or outdoor_min_c=..,outdoor_max_c=..
  --forecast perfect|history|weather   homeflex sees the future (perfect), or forecasts load from
                         history and PV from history (history) or from --weather (weather), and knows
                         prices only once published (13:00 for the next day)
  --weather FILE|synthetic[:nrmse=0.14,phi=0.6,rho=0.8,seed=1]   the PV forecast archive for --forecast weather:
                         CSV issued,time,value (kWh per interval, as issued at that time), or a synthetic
                         day-ahead forecast with that hourly nRMSE (share of kWp over daylight hours;
                         default 0.14, Larson, Nonnenmacher & Coimbra, Renewable Energy 91, 2016)
  --uncertainty robust|scenarios|point   how forecast plans treat PV error (default robust)
  --from ISO --to ISO    the period (local times in --timezone unless they carry a zone)
  --out DIR              writes summary.json, slots.csv and chart.html
  --timezone TZ          default Europe/Berlin
  --import-add RATE      added to every import price before VAT (grid fees, taxes; default 0)
  --import-vat SHARE     VAT on import prices, e.g. 0.19 (default 0)
  --pv-kwp N --latitude N --longitude N --tilt N --azimuth N   the PV array (history forecasts)
  --replan-minutes N     homeflex re-plans this often (default 1440, daily; the hub itself uses 15)
  --strategies LIST      ${STRATEGIES.join(',')} (default all)
  --no-progress          no progress bar on stderr
`;

/** Parses "key=value,key=value" into numbers and strings, refusing keys not listed. */
function spec(flag: string, text: string, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new InputError(`--${flag}: "${part}" is not key=value`);
    const k = part.slice(0, eq).trim();
    if (!keys.includes(k)) throw new InputError(`--${flag}: unknown key "${k}" (valid: ${keys.join(', ')})`);
    out[k] = part.slice(eq + 1).trim();
  }
  return out;
}

function number(flag: string, key: string, v: string | undefined, fallback?: number, min = -Infinity, max = Infinity): number {
  if (v === undefined) {
    if (fallback === undefined) throw new InputError(`--${flag}: ${key} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InputError(`--${flag}: ${key}=${v} is not a number`);
  if (n < min || n > max) throw new InputError(`--${flag}: ${key}=${v} must be between ${min} and ${max}`);
  return n;
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

export function parseBattery(text: string): BatterySpec {
  const s = spec('battery', text, ['capacity_wh', 'power_w', 'charge_w', 'discharge_w', 'charge_efficiency', 'discharge_efficiency', 'soc_min_wh', 'soc_max_wh', 'initial_wh', 'cycle_cost']);
  const capacityWh = number('battery', 'capacity_wh', s.capacity_wh, undefined, 1);
  const power = s.power_w !== undefined ? number('battery', 'power_w', s.power_w, undefined, 0) : undefined;
  const b: BatterySpec = {
    capacityWh,
    chargeW: number('battery', 'charge_w', s.charge_w, power, 0),
    dischargeW: number('battery', 'discharge_w', s.discharge_w, power, 0),
    chargeEfficiency: number('battery', 'charge_efficiency', s.charge_efficiency, 0.95, 0.01, 1),
    dischargeEfficiency: number('battery', 'discharge_efficiency', s.discharge_efficiency, 0.95, 0.01, 1),
    socMinWh: number('battery', 'soc_min_wh', s.soc_min_wh, 0, 0, capacityWh),
    socMaxWh: number('battery', 'soc_max_wh', s.soc_max_wh, capacityWh, 0, capacityWh),
    initialWh: number('battery', 'initial_wh', s.initial_wh, capacityWh / 2, 0, capacityWh),
    cycleCostPerKwh: number('battery', 'cycle_cost', s.cycle_cost, 0, 0),
  };
  if (b.socMinWh > b.socMaxWh) throw new InputError('--battery: soc_min_wh is above soc_max_wh');
  return b;
}

export function parseEv(text: string): EvSpec {
  const s = spec('ev', text, ['arrive', 'leave', 'energy_wh', 'max_w', 'min_w', 'room_wh', 'weekdays_only']);
  for (const k of ['arrive', 'leave'] as const) if (!s[k] || !HHMM.test(s[k])) throw new InputError(`--ev: ${k} must be HH:MM`);
  const maxW = number('ev', 'max_w', s.max_w, 11040, 1);
  return {
    arrive: s.arrive,
    leave: s.leave,
    energyWh: number('ev', 'energy_wh', s.energy_wh, undefined, 0),
    maxW,
    minW: number('ev', 'min_w', s.min_w, Math.min(maxW, 4140), 0, maxW),
    roomWh: s.room_wh !== undefined ? number('ev', 'room_wh', s.room_wh, undefined, 0) : undefined,
    weekdaysOnly: s.weekdays_only === 'true',
  };
}

export function parseHvac(text: string): { hvac: HvacSpec; outdoorFile?: string } {
  const s = spec('hvac', text, ['mode', 'r_k_per_kw', 'c_kwh_per_k', 'cop', 'max_w', 'gains_w', 'min_c', 'max_c', 'initial_c', 'outdoor', 'outdoor_min_c', 'outdoor_max_c']);
  const mode = s.mode ?? 'cool';
  if (mode !== 'cool' && mode !== 'heat') throw new InputError('--hvac: mode must be cool or heat');
  const minC = number('hvac', 'min_c', s.min_c, 22);
  const maxC = number('hvac', 'max_c', s.max_c, 25);
  if (minC >= maxC) throw new InputError('--hvac: min_c must be below max_c');
  return {
    hvac: {
      mode,
      rKPerKw: number('hvac', 'r_k_per_kw', s.r_k_per_kw, 5, 0.01),
      cKwhPerK: number('hvac', 'c_kwh_per_k', s.c_kwh_per_k, 3, 0.01),
      cop: number('hvac', 'cop', s.cop, 3, 0.1),
      maxElectricW: number('hvac', 'max_w', s.max_w, 1500, 0),
      gainsW: number('hvac', 'gains_w', s.gains_w, 600),
      minC,
      maxC,
      initialC: number('hvac', 'initial_c', s.initial_c, (minC + maxC) / 2),
      outdoorMinC: s.outdoor_min_c !== undefined ? number('hvac', 'outdoor_min_c', s.outdoor_min_c) : undefined,
      outdoorMaxC: s.outdoor_max_c !== undefined ? number('hvac', 'outdoor_max_c', s.outdoor_max_c) : undefined,
    },
    outdoorFile: s.outdoor,
  };
}

function instant(flag: string, text: string | undefined, timezone: string): number {
  if (!text) throw new InputError(`--${flag} is required (an ISO 8601 date or time)`);
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(text);
  const d = zoned ? DateTime.fromISO(text, { setZone: true }) : DateTime.fromISO(text, { zone: timezone });
  if (!d.isValid) throw new InputError(`--${flag}: "${text}" is not an ISO 8601 date or time`);
  return d.toMillis();
}

/** Checks a price series covers the period without gaps, naming the first hole. */
function checkCoverage(series: Interval[], from: number, to: number, what: string) {
  let t = from;
  for (const r of series) {
    if (r.end <= t) continue;
    if (r.start > t) break;
    t = r.end;
    if (t >= to) return;
  }
  throw new InputError(`${what}: no price for ${new Date(t).toISOString()} (the period runs ${new Date(from).toISOString()} to ${new Date(to).toISOString()})`);
}

/** A progress bar on stderr, redrawn at most every 100 ms. */
function progressBar(enabled: boolean) {
  let last = 0;
  return {
    update(done: number, total: number, at: number, what: string) {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const share = total ? done / total : 1;
      const width = 30;
      const full = Math.round(share * width);
      process.stderr.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(share * 100).toFixed(0).padStart(3)}% ${what.padEnd(16)} ${new Date(at).toISOString().slice(0, 10)}`);
    },
    end() {
      if (enabled) process.stderr.write('\n');
    },
  };
}

export async function backtestCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        prices: { type: 'string' },
        'export-prices': { type: 'string' },
        load: { type: 'string' },
        pv: { type: 'string' },
        battery: { type: 'string' },
        ev: { type: 'string' },
        hvac: { type: 'string' },
        forecast: { type: 'string', default: 'perfect' },
        from: { type: 'string' },
        to: { type: 'string' },
        out: { type: 'string' },
        timezone: { type: 'string', default: 'Europe/Berlin' },
        'import-add': { type: 'string' },
        'import-vat': { type: 'string' },
        'pv-kwp': { type: 'string' },
        latitude: { type: 'string' },
        longitude: { type: 'string' },
        tilt: { type: 'string' },
        azimuth: { type: 'string' },
        'replan-minutes': { type: 'string', default: '1440' },
        weather: { type: 'string' },
        uncertainty: { type: 'string', default: 'robust' },
        strategies: { type: 'string' },
        'no-progress': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`homeflex backtest: ${(err as Error).message}\n\n${BACKTEST_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(BACKTEST_USAGE);
    return 0;
  }
  const str = (k: string) => values[k] as string | undefined;
  try {
    const tz = str('timezone')!;
    if (!DateTime.now().setZone(tz).isValid) throw new InputError(`--timezone: "${tz}" is not an IANA time zone`);
    for (const k of ['prices', 'load', 'pv', 'out']) if (!str(k)) throw new InputError(`--${k} is required`);
    const forecast = str('forecast');
    if (forecast !== 'perfect' && forecast !== 'history' && forecast !== 'weather') throw new InputError('--forecast must be perfect, history or weather');
    if (forecast === 'weather' && !str('weather')) throw new InputError('--forecast weather needs --weather FILE or --weather synthetic:nrmse=0.14');
    const uncertainty = str('uncertainty');
    if (uncertainty !== 'robust' && uncertainty !== 'scenarios' && uncertainty !== 'point') throw new InputError('--uncertainty must be robust, scenarios or point');
    const from = instant('from', str('from'), tz);
    const to = instant('to', str('to'), tz);
    if (to <= from) throw new InputError('--to must be after --from');
    const strategies = (str('strategies')?.split(',') ?? STRATEGIES) as StrategyName[];
    for (const s of strategies) if (!STRATEGIES.includes(s)) throw new InputError(`--strategies: unknown "${s}" (valid: ${STRATEGIES.join(', ')})`);
    const battery = str('battery') ? parseBattery(str('battery')!) : undefined;
    const ev = str('ev') ? parseEv(str('ev')!) : undefined;
    const hv = str('hvac') ? parseHvac(str('hvac')!) : undefined;
    const replanMinutes = number('replan-minutes', 'value', str('replan-minutes'), 1440, 15, 10080);
    const add = number('import-add', 'value', str('import-add'), 0);
    const vat = number('import-vat', 'value', str('import-vat'), 0, 0, 1);
    const pvKwp = str('pv-kwp') ? number('pv-kwp', 'value', str('pv-kwp'), undefined, 0) : undefined;

    const horizonHours = 48;
    const span = { from: from - 36 * 24 * 3_600_000, to: to + (horizonHours + 24) * 3_600_000 };
    const sources: Record<string, SeriesSource> = {
      import: readSeries(str('prices')!, 'import', { timezone: tz }),
      export: str('export-prices') === undefined ? fixedRate(0) : Number.isFinite(Number(str('export-prices'))) ? fixedRate(Number(str('export-prices'))) : readSeries(str('export-prices')!, 'export', { timezone: tz }),
      load: readSeries(str('load')!, 'load', { timezone: tz }),
      pv: readSeries(str('pv')!, 'pv', { timezone: tz, pvKwp }),
    };
    if (hv?.outdoorFile) sources.outdoor = readSeries(hv.outdoorFile, 'outdoor', { timezone: tz });
    const importRate = sources.import.over(span.from, span.to).map((r) => ({ ...r, value: (r.value + add) * (1 + vat) }));
    const exportRate = sources.export.over(span.from, span.to);
    checkCoverage(importRate, from, to, '--prices');
    checkCoverage(exportRate, from, to, '--export-prices');
    const data: BacktestData = {
      importRate,
      exportRate,
      load: sources.load.over(span.from, span.to),
      pv: sources.pv.over(span.from, span.to),
      outdoor: sources.outdoor?.over(span.from, span.to),
    };
    const maxPvKwh = Math.max(0, ...data.pv.map((r) => (r.value * 3_600_000) / (r.end - r.start)));
    const pvArray = {
      kWp: pvKwp ?? Math.round((maxPvKwh / 0.85) * 100) / 100,
      latitude: number('latitude', 'value', str('latitude'), 50.1, -90, 90),
      longitude: number('longitude', 'value', str('longitude'), 8.7, -180, 180),
      tilt: number('tilt', 'value', str('tilt'), 30, 0, 90),
      azimuth: number('azimuth', 'value', str('azimuth'), 180, 0, 360),
    };

    let pvForecastArchive: PvForecastArchive | undefined;
    let weatherNote: { describe: string; nrmse: number } | undefined;
    if (forecast === 'weather') {
      const w = str('weather')!;
      if (w === 'synthetic' || w.startsWith('synthetic:')) {
        const s = spec('weather', w.slice('synthetic'.length).replace(/^:/, ''), ['nrmse', 'phi', 'rho', 'seed']);
        const base = { pv: data.pv, timezone: tz, phi: number('weather', 'phi', s.phi, 0.6, 0, 0.99), rho: number('weather', 'rho', s.rho, 0.8, 0, 0.99), seed: number('weather', 'seed', s.seed, 1) };
        const sigmas = sigmasForNrmse(base, pvArray.kWp, number('weather', 'nrmse', s.nrmse, PUBLISHED_NRMSE, 0, 2), from, to);
        pvForecastArchive = syntheticPvForecast({ ...base, ...sigmas });
      } else pvForecastArchive = readPvForecastArchive(w, tz);
      weatherNote = { describe: pvForecastArchive.describe, nrmse: Math.round(pvNrmse(data.pv, pvForecastArchive, pvArray.kWp, from, to) * 10000) / 10000 };
    }
    const solver = await loadSolver();
    const bar = progressBar(!values['no-progress'] && process.stderr.isTTY !== false);
    const t0 = Date.now();
    const result = await runBacktest(
      data,
      { from, to, timezone: tz, battery, ev, hvac: hv?.hvac, forecast, pvForecastArchive, uncertainty, replanMinutes, slotMinutes: 15, horizonHours, pvArray, strategies, onProgress: (d, total, at, what) => bar.update(d, total, at, what) },
      solver,
    );
    bar.end();
    const seconds = (Date.now() - t0) / 1000;
    const out = str('out')!;
    mkdirSync(out, { recursive: true });
    const summary = summaryJson(result, {
      period: { from: new Date(from).toISOString(), to: new Date(to).toISOString(), timezone: tz },
      inputs: Object.fromEntries(Object.entries(sources).map(([k, s]) => [k, s.describe])),
      import_price: { add, vat },
      battery: battery ?? null,
      ev: ev ?? null,
      hvac: hv?.hvac ?? null,
      forecast,
      weather_forecast: weatherNote ?? null,
      uncertainty: forecast === 'perfect' ? null : uncertainty,
      replan_minutes: replanMinutes,
      pv_array_for_forecasts: forecast !== 'perfect' ? pvArray : null,
      runtime_s: Math.round(seconds * 10) / 10,
      solver: solver.name,
    });
    writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    writeFileSync(join(out, 'slots.csv'), slotsCsv(result));
    writeFileSync(join(out, 'chart.html'), chartHtml(result, `homeflex backtest ${new Date(from).toISOString().slice(0, 10)} to ${new Date(to).toISOString().slice(0, 10)}`, 'EUR'));
    const rows = result.strategies.map((s) => {
      const st = summary.strategies[s.name] as { cost: number; savings: number | null; share_of_optimum_savings: number | null; import_kwh: number; export_kwh: number };
      return `  ${s.name.padEnd(17)} cost ${st.cost.toFixed(2).padStart(9)}  import ${st.import_kwh.toFixed(0).padStart(6)} kWh  export ${st.export_kwh.toFixed(0).padStart(6)} kWh` + (st.savings !== null ? `  saves ${st.savings.toFixed(2).padStart(8)}` : '') + (st.share_of_optimum_savings !== null ? `  (${(st.share_of_optimum_savings * 100).toFixed(1)} % of the optimum's savings)` : '');
    });
    process.stdout.write(`backtest ${new Date(from).toISOString()} to ${new Date(to).toISOString()} (${forecast} forecasts) in ${seconds.toFixed(1)} s\n${rows.join('\n')}\nwrote ${join(out, 'summary.json')}, slots.csv and chart.html\n`);
    return 0;
  } catch (err) {
    if (err instanceof InputError) {
      process.stderr.write(`homeflex backtest: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
