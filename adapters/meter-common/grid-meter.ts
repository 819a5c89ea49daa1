import type { AdapterContext, Device, MeterCap, MeterChannel, MeterReading } from '../../src/api/index.js';

/** What one message of a grid meter says; counters are cumulative Wh, power is signed (+ = import). */
export interface GridValues {
  powerW?: number;
  phasesW?: number[];
  importWh?: number;
  exportWh?: number;
}

/** A plausible house connection: beyond this a value is a misread, not a measurement. */
const MAX_GRID_W = 250_000;
/** Faults of one kind are logged at most this often; the line in between counts them. */
const FAULT_LOG_MS = 10 * 60_000;

/**
 * The site's grid meter as a device: a `grid` meter channel fed by whatever protocol the adapter
 * speaks (DSMR telegrams, Shelly EM status, Speedwire datagrams, Home Assistant states). Owns the
 * device's availability (silence for `staleAfterMs` marks it unavailable, logged once, and once
 * again when it recovers) and the logging of bad input (one line per fault kind per 10 minutes,
 * with the count of those not logged), so a meter sending garbage every second fills no log.
 */
export class GridMeter {
  readonly device: Device;
  private reading?: MeterReading;
  private lastGood = 0;
  private everRead = false;
  private stopWatch?: () => void;
  private readonly faults = new Map<string, { loggedAt: number; suppressed: number }>();

  constructor(
    private readonly ctx: AdapterContext,
    config: { id: string; name?: string; circuit?: string },
    adapter: string,
    private readonly staleAfterMs: number,
    private readonly channel: MeterChannel = 'grid',
  ) {
    const meter: MeterCap = { channels: [channel], last: () => this.reading };
    this.device = { id: config.id, name: config.name ?? config.id, adapter, circuit: config.circuit, available: false, error: 'no reading from the meter yet', caps: { meter } };
  }

  start() {
    this.stopWatch = this.ctx.clock.every(Math.max(1000, Math.min(this.staleAfterMs / 2, 10_000)), () => {
      if (this.device.available && this.ctx.clock.now() - this.lastGood > this.staleAfterMs) this.setAvailable(`no reading for ${Math.round(this.staleAfterMs / 1000)} s`);
    });
  }

  stop() {
    this.stopWatch?.();
  }

  /** The last reading, if any. */
  last(): MeterReading | undefined {
    return this.reading;
  }

  /**
   * A good message: publishes the reading. Values out of any plausible range refuse the whole
   * message (a misread counter would book megawatt-hours); counters going backwards are left to
   * metering, which treats them as a reset.
   */
  report(v: GridValues): boolean {
    const bad = [v.powerW, ...(v.phasesW ?? [])].find((w) => w !== undefined && !(Math.abs(w) <= MAX_GRID_W));
    if (bad !== undefined) return this.fault('implausible', `a power of ${bad} W is beyond any house connection; message ignored`), false;
    for (const c of [v.importWh, v.exportWh]) if (c !== undefined && !(c >= 0 && Number.isFinite(c))) return this.fault('implausible', `a counter of ${c} Wh is not a meter reading; message ignored`), false;
    const reading: MeterReading = { time: this.ctx.clock.now(), channel: this.channel };
    if (v.powerW !== undefined) reading.powerW = round(v.powerW);
    if (v.phasesW?.length) reading.phasesW = v.phasesW.map(round);
    if (v.importWh !== undefined) reading.importWh = round(v.importWh);
    if (v.exportWh !== undefined) reading.exportWh = round(v.exportWh);
    this.reading = reading;
    this.lastGood = reading.time;
    this.ctx.bus.emit('meter.reading', { deviceId: this.device.id, reading });
    if (!this.device.available) this.setAvailable(undefined);
    return true;
  }

  /** Bad input (a garbled telegram, a payload that is not JSON): logged once per kind per 10 minutes; nothing else changes. */
  fault(kind: string, message: string, detail: Record<string, unknown> = {}) {
    const now = this.ctx.clock.now();
    const f = this.faults.get(kind);
    if (f && now - f.loggedAt < FAULT_LOG_MS) {
      f.suppressed++;
      return;
    }
    const more = f?.suppressed ? ` (${f.suppressed} more of this kind since the last line)` : '';
    this.ctx.log.warn({ ...detail, fault: kind }, `${message}${more}`);
    this.faults.set(kind, { loggedAt: now, suppressed: 0 });
  }

  /** The link itself is gone (port closed, connection refused): unavailable at once, with the reason. */
  linkDown(reason: string) {
    if (!this.device.available && this.device.error === reason) return;
    if (this.device.available) return this.setAvailable(reason);
    // not available yet (or down for another reason): one line for the new reason, no state event
    this.device.error = reason;
    this.ctx.log.warn({ reason }, `meter unavailable: ${reason}`);
  }

  private setAvailable(error: string | undefined) {
    const was = this.device.available;
    this.device.available = error === undefined;
    this.device.error = error;
    if (was !== this.device.available) {
      if (this.device.available) this.ctx.log.info(this.everRead ? 'meter reading again' : 'meter is reading');
      if (this.device.available) this.everRead = true;
      else this.ctx.log.warn({ reason: error }, `meter unavailable: ${error}`);
      this.ctx.bus.emit('device.state', { deviceId: this.device.id, available: this.device.available, error });
      this.ctx.bus.emit(this.device.available ? 'device.connected' : 'device.disconnected', { deviceId: this.device.id });
    }
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;
