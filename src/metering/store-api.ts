import type { WriteTimes } from '../core/store/write-times.js';
import type { RegisterPoint } from './cumulative.js';
import type { RowOp } from './records.js';
import type { DamageReport, IntervalSet, MeterStoreHealth, WriteOutcome } from './store.js';

/** One subject of a meter store with how many interval rows it holds and the time they cover. */
export interface SubjectSummary {
  subject: string;
  months: number;
  rows: number;
  firstTime: number | null;
  lastTime: number | null;
}

/**
 * What the metering service asks of a meter record store. Two implement it: the file store
 * (`MeterStore`, under `<storage.dir>/metering`) and the PostgreSQL store (`PgMeterStore`,
 * `storage.meters.postgres`). Both acknowledge a write only once it is durable (fsync'd, or
 * committed) and replace a record resubmitted with the same key; reads answer from memory, so the
 * cost and savings code is the same for both.
 */
export interface MeterRecordStore {
  /** Problems found when opening (logged by the hub). */
  readonly problems: string[];
  /** Acknowledged data found damaged (the file store; PostgreSQL keeps none). */
  readonly damage: DamageReport[];
  /** How the store is doing, for /health. */
  readonly health: MeterStoreHealth;
  /** How long writes took (GET /metrics). */
  readonly writeTimes: WriteTimes;
  /** Runs `fn` alone: no other write or maintenance runs meanwhile. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T>;
  /** Stores rows durably; resolves once they are, with what became of each. */
  write(ops: readonly RowOp[]): Promise<WriteOutcome[]>;
  /** `write` for code already running inside `exclusive`. */
  writeNow(ops: readonly RowOp[]): Promise<WriteOutcome[]>;
  /** Background upkeep (compaction, roll-ups). */
  maintain(): Promise<void>;
  /** Compacts whatever waits to be compacted (tests and benchmarks). */
  compactAll(): Promise<void>;
  /** Runs the roll-up of old months now (storage.minute_records_days; tests). */
  rollUpNow(): Promise<void>;
  close(): Promise<void>;
  subjects(): SubjectSummary[];
  has(subject: string): boolean;
  subjectIds(): string[];
  intervals(subject: string, start: number, end: number, opts?: { flows?: ReadonlySet<number>; labels?: boolean; session?: string }): IntervalSet;
  estimateRows(subject: string, start: number, end: number): number;
  sessionSubjects(session: string): string[];
  buckets(subject: string, start: number, end: number, flows?: ReadonlySet<number>): IntervalSet;
  pointsAround(subject: string, flags: number, from: number, to: number): RegisterPoint[];
}
