import type { AdapterContext, MeterCap, MeterChannel, MeterReading } from '../../src/api/index.js';

/** A simulated energy meter: integrates power into cumulative import/export Wh registers. */
export class SimMeter implements MeterCap {
  readonly channels: MeterChannel[];
  private readings = new Map<MeterChannel, MeterReading>();
  private counters = new Map<MeterChannel, { importWh: number; exportWh: number }>();

  constructor(private readonly ctx: AdapterContext, private readonly deviceId: string, channels: MeterChannel[] = ['device']) {
    this.channels = channels;
    for (const ch of channels) this.counters.set(ch, { importWh: 0, exportWh: 0 });
  }

  /** Restores counters persisted by an earlier run, so registers never go backwards across restarts. */
  restore() {
    const saved = this.ctx.store.get<Record<string, { importWh: number; exportWh: number }>>('counters');
    for (const [ch, c] of Object.entries(saved ?? {})) if (this.counters.has(ch as MeterChannel)) this.counters.set(ch as MeterChannel, c);
  }

  /** Adds `powerW` held for `dtMs` and publishes the reading. */
  record(powerW: number, dtMs: number, channel: MeterChannel = 'device', sessionId?: string) {
    const c = this.counters.get(channel)!;
    const wh = (Math.abs(powerW) * dtMs) / 3_600_000;
    if (powerW >= 0) c.importWh += wh;
    else c.exportWh += wh;
    const reading: MeterReading = { time: this.ctx.clock.now(), powerW, importWh: round(c.importWh), exportWh: round(c.exportWh), channel, sessionId };
    this.readings.set(channel, reading);
    this.ctx.bus.emit('meter.reading', { deviceId: this.deviceId, reading });
  }

  persist() {
    return this.ctx.store.set('counters', Object.fromEntries(this.counters));
  }

  last(channel: MeterChannel = this.channels[0]) {
    return this.readings.get(channel);
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;
