import { DateTime } from 'luxon';
import type { EpochMs } from '../../src/api/index.js';
// the demo's history follows the simulators' own physics, so forecasts from it match what they do next
import { baseLoadW, sunShare } from '../../src/api/physics.js';

/**
 * Days of meter history for the demo's simulated house, as a site would have sent them (FlatPeak
 * interval records, 15 minutes): what the devices drew and gave as homeflex would have run them —
 * cars charged in the cheapest quarter hours of their stay, switched loads in the cheapest of their
 * window, the battery soaking up PV surplus and covering the house when the price is high — and
 * the grid meter of the site. So Costs, savings and the history-based forecasts have something to
 * show on a fresh start.
 */

const Q = 15 * 60_000;
const QH = 0.25;

export interface HistoryDevice {
  id: string;
  adapter: string;
  [key: string]: unknown;
}

export interface HistoryInput {
  siteId: string;
  timezone: string;
  latitude: number;
  devices: HistoryDevice[];
  /** From (inclusive) and to (exclusive), on the 15-minute grid. */
  from: EpochMs;
  to: EpochMs;
  /** The household's import rate at an instant (for choosing cheap quarter hours). */
  importRate: (t: EpochMs) => number;
}

type MeterRecord = Record<string, unknown>;

const hhmm = (s: unknown, fallback: string) => (typeof s === 'string' && /^\d\d:\d\d$/.test(s) ? s : fallback);
const minutes = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3));

/** Every occurrence of a daily local window [from, to) that starts in [start, end), as quarter-hour indexes of the history. */
function windows(from: string, to: string, input: HistoryInput): { start: number; end: number; day: DateTime }[] {
  const out: { start: number; end: number; day: DateTime }[] = [];
  const f = minutes(from);
  const t = minutes(to);
  let day = DateTime.fromMillis(input.from, { zone: input.timezone }).startOf('day').minus({ days: 1 });
  for (; day.toMillis() < input.to; day = day.plus({ days: 1 })) {
    const ws = day.plus({ minutes: f }).toMillis();
    const we = (t <= f ? day.plus({ days: 1 }) : day).plus({ minutes: t }).toMillis();
    if (ws < input.from || we > input.to) continue;
    out.push({ start: (ws - input.from) / Q, end: (we - input.from) / Q, day });
  }
  return out;
}

/** The cheapest quarter hours of [start, end) that give `hours` (earlier on ties). */
function cheapest(start: number, end: number, hours: number, rate: number[]): number[] {
  const idx = [];
  for (let i = start; i < end; i++) idx.push(i);
  idx.sort((a, b) => rate[a] - rate[b] || a - b);
  return idx.slice(0, Math.ceil(hours / QH - 1e-9));
}

export function demoHistory(input: HistoryInput): MeterRecord[] {
  const n = Math.round((input.to - input.from) / Q);
  const time = (i: number) => input.from + i * Q;
  const rate = Array.from({ length: n }, (_, i) => input.importRate(time(i)));
  const iso = (i: number) => new Date(time(i)).toISOString();
  const records: MeterRecord[] = [];
  const rec = (subject: { device_id?: string; location_id?: string }, i: number, wh: number, direction: 'IMPORT' | 'EXPORT', tariffRate: 'IMPORT' | 'EXPORT' | 'LOCAL', session?: string) => {
    if (wh < 0.5 && !session) return;
    records.push({ ...subject, start_time: iso(i), end_time: iso(i + 1), units: 'WH', value: Math.round(wh * 10) / 10, direction, tariff_rate: tariffRate, ...(session ? { session_reference_id: session } : {}) });
  };
  const houseW = new Array(n).fill(0);
  const pvW = new Array(n).fill(0);
  const shiftedW = new Array(n).fill(0);
  let battery: HistoryDevice | undefined;

  for (const d of input.devices) {
    if (d.adapter === 'sim_load') {
      for (let i = 0; i < n; i++) {
        const local = DateTime.fromMillis(time(i) + Q / 2, { zone: input.timezone });
        const w = baseLoadW(local.hour + local.minute / 60, Number(d.annual_kwh ?? 4000));
        houseW[i] += w;
        rec({ device_id: d.id }, i, w * QH, 'IMPORT', 'IMPORT');
      }
    } else if (d.adapter === 'sim_pv') {
      for (let i = 0; i < n; i++) {
        const t = time(i) + Q / 2;
        const local = DateTime.fromMillis(t, { zone: input.timezone });
        // a different sky each day: 55 to 100 % of the clear-sky curve
        const sky = 0.55 + 0.45 * Math.abs(Math.sin(local.ordinal * 2.3));
        const w = Number(d.kwp ?? 6) * 1000 * sunShare(t, Number(d.latitude ?? input.latitude), local.offset) * sky;
        pvW[i] += w;
        rec({ device_id: d.id }, i, w * QH, 'EXPORT', 'LOCAL');
      }
    } else if (d.adapter === 'sim_ev' || (d.adapter === 'ocpp' && input.devices.some((s) => s.adapter === 'sim_ocpp_cp' && s.identity === d.identity))) {
      const car = d.adapter === 'sim_ev' ? d : input.devices.find((s) => s.adapter === 'sim_ocpp_cp' && s.identity === d.identity)!;
      const target = (d.target ?? {}) as { energy_wh?: number };
      const maxW = Number(car.max_current_a ?? 16) * Number(car.voltage ?? 230) * Number(car.phases ?? 3);
      const needWh = target.energy_wh ?? 15000;
      for (const w of windows(hhmm(car.arrive, '18:00'), hhmm(car.leave, '07:30'), input)) {
        const session = `demo-${d.id}-${w.day.toISODate()}`;
        const chosen = new Set(cheapest(w.start, w.end, needWh / maxW, rate));
        let left = needWh;
        // plugged in from its arrival: the session's first record is there, even if no energy flows yet
        for (let i = w.start; i < w.end && left > 0; i++) {
          const wh = chosen.has(i) ? Math.min(left, maxW * QH) : 0;
          left -= wh;
          shiftedW[i] += wh / QH;
          if (wh > 0 || i === w.start) rec({ device_id: d.id }, i, wh, 'IMPORT', 'IMPORT', session);
        }
      }
    } else if (typeof (d.schedule as { hours?: unknown } | undefined)?.hours === 'number' && (d.schedule as { window?: unknown }).window) {
      const s = d.schedule as { hours: number; window: { from: string; to: string } };
      const ratedW = Number(d.rated_power_w ?? 2000);
      for (const w of windows(s.window.from, s.window.to, input)) {
        for (const i of cheapest(w.start, w.end, s.hours, rate)) {
          shiftedW[i] += ratedW;
          rec({ device_id: d.id }, i, ratedW * QH, 'IMPORT', 'IMPORT');
        }
      }
    } else if (d.adapter === 'sim_battery') battery = d;
  }

  // the battery: soaks up PV surplus, covers the house in the dearest third of each day's prices
  const batteryW = new Array(n).fill(0);
  if (battery) {
    const capacity = Number(battery.capacity_wh ?? 10000);
    const maxC = Number(battery.max_charge_w ?? 5000);
    const maxD = Number(battery.max_discharge_w ?? 5000);
    const socMin = (Number(battery.soc_min_pct ?? 5) / 100) * capacity;
    const eff = Number(battery.charge_efficiency ?? 0.95);
    let soc = (Number(battery.initial_soc_pct ?? 50) / 100) * capacity;
    const dear = rate.map((_, i) => {
      const day = rate.slice(Math.max(0, i - (i % 96)), Math.max(0, i - (i % 96)) + 96).slice().sort((a, b) => a - b);
      return rate[i] >= day[Math.floor(day.length * 0.66)];
    });
    for (let i = 0; i < n; i++) {
      const net = houseW[i] + shiftedW[i] - pvW[i];
      if (net < 0 && soc < capacity) {
        const w = Math.min(-net, maxC, ((capacity - soc) / eff) / QH);
        soc += w * QH * eff;
        batteryW[i] = w;
        rec({ device_id: battery.id }, i, w * QH, 'IMPORT', 'LOCAL');
      } else if (net > 0 && dear[i] && soc > socMin) {
        const w = Math.min(net, maxD, ((soc - socMin) * eff) / QH);
        soc -= (w * QH) / eff;
        batteryW[i] = -w;
        rec({ device_id: battery.id }, i, w * QH, 'EXPORT', 'IMPORT');
      }
    }
  }

  // the site's grid meter: everything together
  for (let i = 0; i < n; i++) {
    const grid = houseW[i] + shiftedW[i] + batteryW[i] - pvW[i];
    if (grid > 0) rec({ location_id: input.siteId }, i, grid * QH, 'IMPORT', 'IMPORT');
    else rec({ location_id: input.siteId }, i, -grid * QH, 'EXPORT', 'EXPORT');
  }
  return records;
}
