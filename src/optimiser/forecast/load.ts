import { DateTime } from 'luxon';
import { H25 } from './h25.js';
import { fillFromFallback, meanPowerW, type EnergyInterval, type PowerForecast } from './types.js';

const QUARTER = 900_000;

/** H25's day type of a local date: 0 Saturday, 1 Sunday (or a listed holiday), 2 working day. */
function dayType(d: DateTime, holidays: ReadonlySet<string>): 0 | 1 | 2 {
  if (d.weekday === 7 || holidays.has(d.toISODate()!)) return 1;
  return d.weekday === 6 ? 0 : 2;
}

/** The profile's share for the quarter hour starting at `t`, as kWh per 1,000,000 kWh/yr. */
function h25At(t: number, timezone: string, holidays: ReadonlySet<string>): number {
  const d = DateTime.fromMillis(t, { zone: timezone });
  const q = Math.min(95, Math.floor((d.hour * 60 + d.minute) / 15));
  return H25[d.month - 1][dayType(d, holidays)][q];
}

/**
 * The German household standard load profile (BDEW H25) scaled to `annualKwh`: the fallback
 * when the house has no meter history yet. Mean power over each slot, quarter hour by quarter hour.
 */
export function standardProfileLoad(options: { annualKwh: number; timezone: string; holidays?: readonly string[] }): PowerForecast {
  const holidays = new Set(options.holidays ?? []);
  // the table sums to ~1,000,000 kWh over a year; kWh per quarter hour × 4 = kW
  const scaleW = (options.annualKwh / 1_000_000) * 4 * 1000;
  return {
    name: `BDEW H25 × ${options.annualKwh} kWh/yr`,
    powerW(slots) {
      return slots.map(({ start, end }) => {
        let acc = 0;
        let weight = 0;
        for (let q = Math.floor(start / QUARTER) * QUARTER; q < end; q += QUARTER) {
          const overlap = Math.min(end, q + QUARTER) - Math.max(start, q);
          if (overlap <= 0) continue;
          acc += h25At(q, options.timezone, holidays) * overlap;
          weight += overlap;
        }
        return weight ? (acc / weight) * scaleW : 0;
      });
    },
  };
}

export interface HistoryLoadOptions {
  /** Metered base load of the house, sorted by start. */
  history: readonly EnergyInterval[];
  timezone: string;
  /** How many past weeks to average (default 4). */
  weeks?: number;
  /** Used for slots with no matching history. */
  fallback: PowerForecast;
}

/**
 * Base load from the house's own meter history: the mean of the same weekday and local time in
 * each of the last `weeks` weeks (DST-aware: "Tuesday 18:00" stays 18:00 local), falling back to
 * `fallback` where the history has nothing for a slot.
 */
export function historyLoadForecast(options: HistoryLoadOptions): PowerForecast {
  const weeks = options.weeks ?? 4;
  return {
    name: `same weekday and time, last ${weeks} weeks (else ${options.fallback.name})`,
    powerW(slots) {
      const out = new Array<number>(slots.length);
      const missing: number[] = [];
      slots.forEach(({ start, end }, i) => {
        const s = DateTime.fromMillis(start, { zone: options.timezone });
        const e = DateTime.fromMillis(end, { zone: options.timezone });
        let acc = 0;
        let n = 0;
        for (let k = 1; k <= weeks; k++) {
          const from = s.minus({ weeks: k }).toMillis();
          const to = e.minus({ weeks: k }).toMillis();
          if (to <= from) continue;
          const m = meanPowerW(options.history, from, to);
          if (m.coverage >= 0.5) {
            acc += m.powerW;
            n++;
          }
        }
        if (n) out[i] = acc / n;
        else missing.push(i);
      });
      return fillFromFallback(out, missing, slots, options.fallback);
    },
  };
}
