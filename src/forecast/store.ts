import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ForecastSnapshot } from '../optimiser/forecast/index.js';
import { DAY } from '../api/time.js';
import { checkStoreFormat } from '../core/store/format.js';


/** Measured mean power per equal step from `start` (W); null where nothing was measured. */
export interface MeasuredSeries {
  start: number;
  stepMs: number;
  valuesW: (number | null)[];
}

type Line =
  | { k: 'f'; series: string; made_at: number; start: number; step_ms: number; w: number[]; source: string }
  | { k: 'm'; series: string; start: number; step_ms: number; w: (number | null)[] };

/**
 * Forecasts as they were made, and what was measured afterwards, one JSON line each in
 * `<storage.dir>/forecasts/YYYY-MM.jsonl` (by UTC month). Files are only appended to; the last
 * `keepDays` days are held in memory for the API, the errors and the calibration. A damaged line
 * is skipped and counted, never a reason to lose the others.
 */
export class ForecastStore {
  private readonly snapshots = new Map<string, ForecastSnapshot[]>();
  private readonly measured = new Map<string, Map<number, { stepMs: number; w: number }>>();
  private writing: Promise<void> = Promise.resolve();
  /** Lines that could not be read when the store was opened. */
  skipped = 0;

  private constructor(private readonly dir: string) {}

  /**
   * Reads what is stored: forecasts made in the last `snapshotDays` days, measurements (and the
   * forecasts in force, stored as series) of the last `measuredDays` days.
   */
  static async open(dir: string, now: number, options: { snapshotDays?: number; measuredDays?: number } = {}): Promise<ForecastStore> {
    const store = new ForecastStore(dir);
    await mkdir(dir, { recursive: true });
    checkStoreFormat(dir, 'homeflex-forecast-store', 1);
    const oldest = now - (options.measuredDays ?? 400) * DAY;
    const oldestSnapshot = now - (options.snapshotDays ?? 35) * DAY;
    const months = (await readdir(dir)).filter((f) => /^\d{4}-\d{2}\.jsonl$/.test(f)).sort();
    for (const file of months) {
      // a month that ended before the oldest day kept holds nothing we need
      const monthEnd = Date.UTC(Number(file.slice(0, 4)), Number(file.slice(5, 7)), 1);
      if (monthEnd < oldest) continue;
      const text = await readFile(join(dir, file), 'utf8');
      for (const raw of text.split('\n')) {
        if (!raw.trim()) continue;
        try {
          store.add(JSON.parse(raw) as Line, oldest, oldestSnapshot);
        } catch {
          store.skipped++;
        }
      }
    }
    return store;
  }

  private add(line: Line, oldest: number, oldestSnapshot: number) {
    if (!line || typeof line.series !== 'string' || !Number.isFinite(line.start) || !Number.isFinite(line.step_ms) || line.step_ms <= 0 || !Array.isArray(line.w)) throw new Error('not a forecast line');
    if (line.k === 'f') {
      if (!Number.isFinite(line.made_at)) throw new Error('no made_at');
      if (line.made_at < oldestSnapshot) return;
      const list = this.snapshots.get(line.series) ?? [];
      list.push({ madeAt: line.made_at, start: line.start, stepMs: line.step_ms, valuesW: line.w.map(Number), source: String(line.source ?? '') });
      this.snapshots.set(line.series, list);
    } else if (line.k === 'm') {
      const m = this.measured.get(line.series) ?? new Map();
      line.w.forEach((w, i) => {
        if (w === null || !Number.isFinite(w)) return;
        const t = line.start + i * line.step_ms;
        if (t >= oldest) m.set(t, { stepMs: line.step_ms, w });
      });
      this.measured.set(line.series, m);
    } else throw new Error('unknown line kind');
  }

  private append(line: Line, at: number): Promise<void> {
    const file = join(this.dir, `${new Date(at).toISOString().slice(0, 7)}.jsonl`);
    const text = JSON.stringify(line) + '\n';
    this.writing = this.writing.then(() => appendFile(file, text));
    return this.writing;
  }

  /** Stores a forecast as made (values rounded to 0.1 W). */
  async addSnapshot(series: string, s: ForecastSnapshot): Promise<void> {
    const line: Line = { k: 'f', series, made_at: s.madeAt, start: s.start, step_ms: s.stepMs, w: s.valuesW.map((w) => Math.round(w * 10) / 10), source: s.source };
    this.add(line, -Infinity, -Infinity);
    await this.append(line, s.madeAt);
  }

  /** Stores measured values; slots already stored are not written again. */
  async addMeasured(series: string, m: MeasuredSeries): Promise<void> {
    const known = this.measured.get(series);
    const w = m.valuesW.map((v, i) => (v === null || known?.has(m.start + i * m.stepMs) ? null : Math.round(v * 10) / 10));
    if (w.every((v) => v === null)) return;
    const line: Line = { k: 'm', series, start: m.start, step_ms: m.stepMs, w };
    this.add(line, -Infinity, -Infinity);
    await this.append(line, m.start);
  }

  snapshotsOf(series: string, from = -Infinity, to = Infinity): ForecastSnapshot[] {
    return (this.snapshots.get(series) ?? []).filter((s) => s.madeAt < to && s.start + s.valuesW.length * s.stepMs > from);
  }

  /** Mean measured power over `[start, end)` when measured steps cover it all. */
  measuredW(series: string, start: number, end: number): number | undefined {
    const m = this.measured.get(series);
    if (!m) return undefined;
    const exact = m.get(start);
    if (exact && exact.stepMs === end - start) return exact.w;
    let acc = 0;
    let covered = 0;
    for (const [t, v] of m) {
      const overlap = Math.min(end, t + v.stepMs) - Math.max(start, t);
      if (overlap <= 0) continue;
      acc += v.w * overlap;
      covered += overlap;
    }
    return covered >= end - start - 1 ? acc / covered : undefined;
  }

  /** The last measured step's end of a series. */
  measuredUntil(series: string): number | undefined {
    const m = this.measured.get(series);
    if (!m?.size) return undefined;
    let last = -Infinity;
    for (const [t, v] of m) last = Math.max(last, t + v.stepMs);
    return last;
  }

  /** Measured steps of a series inside `[from, to)`, sorted. */
  measuredSteps(series: string, from: number, to: number): { start: number; end: number; w: number }[] {
    const m = this.measured.get(series);
    if (!m) return [];
    return [...m].filter(([t, v]) => t >= from && t + v.stepMs <= to).map(([t, v]) => ({ start: t, end: t + v.stepMs, w: v.w })).sort((a, b) => a.start - b.start);
  }

  series(): string[] {
    return [...new Set([...this.snapshots.keys(), ...this.measured.keys()])];
  }

  /** Waits for pending writes. */
  flush(): Promise<void> {
    return this.writing;
  }
}
