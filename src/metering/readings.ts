import type { MeterReading } from '../api/index.js';
import type { DeviceKind } from '../api/device-kind.js';
import type { MeteringContext } from './context.js';
import { implausibleReadings, sortReadings, spliceReadings, type RegisterPoint } from './cumulative.js';
import { FLAG_REGISTER, MAX_RECORD_WH, deviceSubject, flagsOf, locationSubject, subjectId, type RowOp } from './records.js';
import type { MeterRecordStore } from './store-api.js';

/** Adapter readings become a stored interval at most this often per counter (sessions starting or ending cut one short). */
export const READING_INTERVAL_MS = 60_000;
/** A counter that stands still is stored this often (one zero-energy record per idle hour). */
export const IDLE_INTERVAL_MS = 3_600_000;

/** One cumulative counter of one device (channel, direction): the last point stored and the one held back. */
interface Stream {
  subject: string;
  flags: number;
  committed?: RegisterPoint;
  pending?: RegisterPoint;
}

/**
 * Operations that store register points and (re)derive the intervals around them, and the
 * readings refused as implausible (by time, with the reason). Call inside `store.exclusive`.
 */
export function registerOps(store: MeterRecordStore, subject: string, flags: number, incoming: RegisterPoint[]): { ops: RowOp[]; refused: Map<number, string> } {
  const all = sortReadings(incoming);
  const existing = store.pointsAround(subject, flags, all[0].time, all[all.length - 1].time);
  const refused = implausibleReadings(existing, all, MAX_RECORD_WH);
  const sorted = all.filter((p) => !refused.has(p.time));
  if (!sorted.length) return { ops: [], refused };
  const { removed, added } = spliceReadings(existing, sorted);
  const ops: RowOp[] = [];
  for (const p of sorted) ops.push({ op: 'put', subject, start: p.time, end: p.time, flags: flags | FLAG_REGISTER, value: p.valueWh, confidence: 1, session: p.session, ref: p.ref });
  for (const r of removed) ops.push({ op: 'del', subject, start: r.start, end: r.end, flags, value: 0, confidence: 1, session: null, ref: null });
  for (const a of added) ops.push({ op: 'put', subject, start: a.start, end: a.end, flags, value: a.energyWh, confidence: 1, session: a.session, ref: a.ref });
  return { ops, refused };
}


/**
 * Readings: adapters' cumulative counters (bus events) become register streams in the store, a
 * point at most once a minute (once an hour while idle), written in batches.
 */
export class ReadingStreams {
  private readonly streams = new Map<string, Stream>();
  private readonly outbox: { subject: string; flags: number; point: RegisterPoint }[] = [];
  private flushLoop?: Promise<void>;
  private flushScheduled = false;
  private readonly refusedSubjects = new Set<string>();

  constructor(private readonly ctx: MeteringContext) {}

  /**
   * An adapter's meter reading (bus event). Each cumulative counter becomes a register stream:
   * a point is stored at most once a minute, and at once when a charging session starts or ends,
   * so intervals never mix two sessions. Channel `grid` of the site's grid meter is the location;
   * any other device's grid channel is a sub-meter of its own (`device:grid`).
   */
  onReading(deviceId: string, reading: MeterReading, kind: DeviceKind) {
    const channel = reading.channel ?? 'device';
    const siteMeter = channel === 'grid' && (this.ctx.gridMeter?.() ?? deviceId) === deviceId;
    const subject = siteMeter ? locationSubject(this.ctx.site.id) : channel === 'device' ? deviceSubject(deviceId) : deviceSubject(`${deviceId}:${channel}`);
    const flowKind: DeviceKind = channel === 'battery' ? 'storage' : channel === 'pv' ? 'pv' : channel === 'device' ? kind : 'meter';
    for (const [value, direction] of [[reading.importWh, 'IMPORT'], [reading.exportWh, 'EXPORT']] as const) {
      if (value === undefined || !Number.isFinite(value) || value < 0) continue;
      // energy out of a battery goes to the premises (valued at the import rate); out of PV it is local and free
      const rate = direction === 'IMPORT' ? 'IMPORT' : flowKind === 'storage' ? 'IMPORT' : flowKind === 'pv' ? 'LOCAL' : 'EXPORT';
      const key = `${subject}|${direction}`;
      let st = this.streams.get(key);
      if (!st) this.streams.set(key, (st = { subject, flags: flagsOf(direction, rate) }));
      const point: RegisterPoint = { time: reading.time, valueWh: value, session: reading.sessionId ?? null, ref: null };
      this.offer(st, point);
    }
  }

  /**
   * A charging session ended: the readings of it still held back (the once-a-minute rule) are stored
   * now, so its energy and cost are complete when the stop is answered, not when the device speaks again.
   */
  onSessionEnded(deviceId: string, sessionId: string) {
    const prefixes = [`${deviceSubject(deviceId)}|`, `${deviceSubject(`${deviceId}:`)}`];
    for (const [key, st] of this.streams) {
      if (st.pending?.session === sessionId && prefixes.some((p) => key.startsWith(p))) this.commit(st, st.pending);
    }
  }

  /**
   * Decides whether a reading becomes a stored register point: once a minute while energy flows,
   * once an hour while the counter stands still (an idle device makes one record per hour, not 60),
   * and at once when the session changes. The last reading of an idle span is stored when energy
   * starts to flow again, so the energy lands in the minute it flowed.
   */
  private offer(st: Stream, point: RegisterPoint) {
    const c = st.committed;
    if (!c || point.time < c.time) {
      st.pending = undefined;
      return this.commit(st, point);
    }
    if (point.session !== c.session) {
      if (st.pending) this.commit(st, st.pending);
      return this.commit(st, point);
    }
    if (point.valueWh === c.valueWh) {
      if (point.time - c.time >= IDLE_INTERVAL_MS) this.commit(st, point);
      else st.pending = point;
      return;
    }
    if (st.pending && st.pending.valueWh === c.valueWh && st.pending.time > c.time) this.commit(st, st.pending);
    if (point.time - st.committed!.time >= READING_INTERVAL_MS) this.commit(st, point);
    else st.pending = point;
  }

  private commit(st: Stream, point: RegisterPoint) {
    st.committed = point;
    st.pending = undefined;
    this.outbox.push({ subject: st.subject, flags: st.flags, point });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => void this.flushReadings());
    }
  }

  /**
   * Stores the readings waiting in the outbox, one write for all streams. While a write is under
   * way new readings wait and go together in the next one, so a slow disk (or a test clock racing
   * ahead) makes batches bigger instead of a queue longer.
   */
  flushReadings(): Promise<void> {
    this.flushScheduled = false;
    this.flushLoop ??= this.runFlushes();
    return this.flushLoop;
  }

  private async runFlushes() {
    try {
      while (this.outbox.length) {
        const items = this.outbox.splice(0);
        await this.ctx.store
          .exclusive(async () => {
            const byStream = new Map<string, { subject: string; flags: number; points: RegisterPoint[] }>();
            for (const it of items) {
              const key = `${it.subject}|${it.flags}`;
              let g = byStream.get(key);
              if (!g) byStream.set(key, (g = { subject: it.subject, flags: it.flags, points: [] }));
              g.points.push(it.point);
            }
            const ops = [...byStream.values()].flatMap((g) => {
              const { ops: streamOps, refused } = registerOps(this.ctx.store, g.subject, g.flags, g.points);
              // a device sending garbage is said once per meter, not with every reading
              if (refused.size && !this.refusedSubjects.has(g.subject)) {
                this.refusedSubjects.add(g.subject);
                this.ctx.log?.warn({ subject: g.subject, refused: refused.size }, `meter ${subjectId(g.subject)}: readings left out, ${[...refused.values()][0]}`);
              }
              return streamOps;
            });
            const outcomes = ops.length ? await this.ctx.store.writeNow(ops) : [];
            const failed = outcomes.filter((o) => typeof o === 'object');
            if (failed.length) this.ctx.log?.error({ failed: failed.length, error: (failed[0] as { error: string }).error }, 'adapter meter readings could not be stored; the next reading covers the energy');
          })
          .catch((err: unknown) => this.ctx.log?.error({ err }, 'adapter meter readings could not be stored'));
      }
    } finally {
      // cleared in the same turn as the last empty-outbox check, so no reading can be left behind
      this.flushLoop = undefined;
    }
  }

  /** Resolves when every reading handed over so far is stored. */
  async settled(): Promise<void> {
    await this.flushReadings();
    await this.ctx.store.exclusive(() => undefined).catch(() => undefined);
  }

  /** Stores every reading still held back (at shutdown), then waits for the store. */
  async drain(): Promise<void> {
    for (const st of this.streams.values()) if (st.pending) this.commit(st, st.pending);
    await this.settled();
  }
}
