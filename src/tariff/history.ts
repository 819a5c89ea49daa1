import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Direction, EpochMs, PriceSeries, TimeWindow } from '../api/index.js';
import { writeFileAtomic } from '../core/store/atomic.js';
import { replaceRange, seriesProblems, sliceSeries } from './series.js';
import { NewerVersionError, storedVersion } from '../core/store/format.js';

type StoredSlot = [start: EpochMs, end: EpochMs, rate: number, confidence: number];

/**
 * The version of the files below, stored in each. v0.1.0 wrote them without one: those are version 1
 * and read as they are; a file of a newer version is refused.
 */
export const TARIFF_HISTORY_VERSION = 1;

interface MonthFile {
  version?: number;
  direction: Direction;
  month: string;
  slots: StoredSlot[];
}

interface MetaFile {
  version?: number;
  frozen_until: Partial<Record<Direction, EpochMs>>;
}

const monthOf = (t: EpochMs) => new Date(t).toISOString().slice(0, 7);
const DIRECTIONS: Direction[] = ['IMPORT', 'EXPORT'];

/**
 * The prices that were in force, per direction: slots are recorded as they come into force and are
 * never changed by later tariff edits, so costs of past energy keep their price. Kept as one JSON
 * file per direction and UTC month under `<storage.dir>/tariff-history/`, written atomically.
 */
export class PriceHistory {
  private readonly slots: Record<Direction, PriceSeries> = { IMPORT: [], EXPORT: [] };
  private readonly frozen: Partial<Record<Direction, EpochMs>> = {};
  private readonly dirtyMonths = new Set<string>();
  private metaDirty = false;
  private writing: Promise<void> = Promise.resolve();

  private constructor(readonly dir: string) {}

  /** Loads the history; a damaged month file is moved aside (named in the error list) rather than lost. */
  static open(dir: string): { history: PriceHistory; problems: string[] } {
    const h = new PriceHistory(dir);
    const problems: string[] = [];
    mkdirSync(dir, { recursive: true });
    const metaFile = join(dir, 'meta.json');
    if (existsSync(metaFile)) {
      try {
        const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as MetaFile;
        storedVersion(metaFile, meta.version, TARIFF_HISTORY_VERSION, 'tariff history');
        Object.assign(h.frozen, meta.frozen_until ?? {});
      } catch (err) {
        if (err instanceof NewerVersionError) throw err;
        problems.push(`${metaFile}: ${(err as Error).message}; history is kept, recording restarts from now`);
      }
    }
    for (const name of readdirSync(dir).sort()) {
      const m = /^(import|export)-(\d{4}-\d{2})\.json$/.exec(name);
      if (!m) continue;
      const file = join(dir, name);
      try {
        const doc = JSON.parse(readFileSync(file, 'utf8')) as MonthFile;
        storedVersion(file, doc.version, TARIFF_HISTORY_VERSION, 'tariff history');
        const series = doc.slots.map(([start, end, rate, confidence]) => ({ start, end, rate, confidence }));
        const bad = seriesProblems(series);
        if (bad.length) throw new Error(`slot ${bad[0].index}: ${bad[0].message}`);
        const dir_ = m[1].toUpperCase() as Direction;
        h.slots[dir_] = replaceRange(h.slots[dir_], series, series[0]?.start ?? 0, series[series.length - 1]?.end ?? 0);
      } catch (err) {
        if (err instanceof NewerVersionError) throw err;
        const aside = `${file}.damaged-${Date.now()}`;
        renameSync(file, aside);
        problems.push(`${file} could not be read (${(err as Error).message}); moved to ${aside}`);
      }
    }
    return { history: h, problems };
  }

  frozenUntil(direction: Direction): EpochMs | undefined {
    return this.frozen[direction];
  }

  slice(direction: Direction, window: TimeWindow): PriceSeries {
    return sliceSeries(this.slots[direction], window);
  }

  /** Records `slots` (inside `[from, to)`) as in force, replacing what was recorded there. */
  record(direction: Direction, slots: PriceSeries, from: EpochMs, to: EpochMs) {
    if (to <= from) return;
    const current = this.slots[direction];
    if (!current.length || from >= current[current.length - 1].end) current.push(...slots); // the usual case: appending as time passes
    else this.slots[direction] = replaceRange(current, slots, from, to);
    for (let t = Date.UTC(new Date(from).getUTCFullYear(), new Date(from).getUTCMonth(), 1); t < to; t = Date.UTC(new Date(t).getUTCFullYear(), new Date(t).getUTCMonth() + 1, 1)) {
      this.dirtyMonths.add(`${direction}:${monthOf(t)}`);
    }
  }

  /** Moves the frozen edge forward (never back). */
  freezeUntil(direction: Direction, t: EpochMs) {
    if ((this.frozen[direction] ?? -Infinity) >= t) return;
    this.frozen[direction] = t;
    this.metaDirty = true;
  }

  /** Writes changed months and the frozen edges; writes never overlap. */
  flush(): Promise<void> {
    const months = [...this.dirtyMonths];
    const meta = this.metaDirty;
    this.dirtyMonths.clear();
    this.metaDirty = false;
    if (!months.length && !meta) return this.writing;
    const next = this.writing.then(async () => {
      for (const key of months) {
        const [direction, month] = key.split(':') as [Direction, string];
        const start = Date.parse(`${month}-01T00:00:00Z`);
        const end = Date.UTC(new Date(start).getUTCFullYear(), new Date(start).getUTCMonth() + 1, 1);
        const slots = sliceSeries(this.slots[direction], { start, end }).map((s): StoredSlot => [s.start, s.end, s.rate, s.confidence]);
        const doc: MonthFile = { version: TARIFF_HISTORY_VERSION, direction, month, slots };
        await writeFileAtomic(join(this.dir, `${direction.toLowerCase()}-${month}.json`), JSON.stringify(doc));
      }
      if (meta) await writeFileAtomic(join(this.dir, 'meta.json'), JSON.stringify({ version: TARIFF_HISTORY_VERSION, frozen_until: this.frozen } satisfies MetaFile));
    });
    // a failed write (full disk) is written again with the next flush rather than forgotten
    next.catch(() => {
      for (const key of months) this.dirtyMonths.add(key);
      if (meta) this.metaDirty = true;
    });
    this.writing = next.catch(() => undefined);
    return next;
  }

  /** For tests and diagnostics: how many slots are recorded. */
  size(direction?: Direction): number {
    return (direction ? [direction] : DIRECTIONS).reduce((a, d) => a + this.slots[d].length, 0);
  }
}
