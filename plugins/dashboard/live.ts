import type { ServerResponse } from 'node:http';
import type { Clock, EventBus, HubEvents, MeterReading } from '../../src/api/index.js';

/** What the feed reads of the hub: its events, the time, the site, and a device as the API shows it. */
export interface LiveSource {
  bus: Pick<EventBus, 'on'>;
  clock: Pick<Clock, 'now'>;
  site: { id: string };
  /** The device's JSON as `GET /api/v1/devices/{id}` answers it, or undefined when it is gone. */
  deviceJson(id: string): unknown;
  /** The device whose grid channel is the site's own meter (site.grid_meter or the first with a grid channel). */
  siteMeterId?(): string | undefined;
}

export interface LiveFeedOptions {
  /** Meter readings are coalesced per device and channel and sent at most this often (ms). */
  meterIntervalMs?: number;
  /** A comment line this often keeps proxies and phones from dropping an idle stream (ms). */
  keepaliveMs?: number;
  /** More streams than this are refused with 503, so a Pi is never swamped by open tabs. */
  maxClients?: number;
}

/** Bytes queued for one client beyond which meter readings are skipped, and beyond which it is dropped. */
const SLOW_CLIENT_BYTES = 256 * 1024;
const STUCK_CLIENT_BYTES = 1024 * 1024;

const iso = (t: number) => new Date(t).toISOString();

const meterEvent = (deviceId: string, r: MeterReading, siteMeter?: boolean) => ({
  device_id: deviceId,
  channel: r.channel ?? 'device',
  time: iso(r.time),
  power_w: r.powerW ?? null,
  import_wh: r.importWh ?? null,
  export_wh: r.exportWh ?? null,
  session_reference_id: r.sessionId ?? null,
  ...(r.phasesW ? { phases_w: r.phasesW } : {}),
  ...(siteMeter !== undefined ? { site_meter: siteMeter } : {}),
});

/**
 * Server-Sent Events fed by the hub's bus: `device` (the device's full API view), `meter`
 * (coalesced), `plan`, `tariff`, `target` and `limits`. The page refetches what an event names.
 */
export class LiveFeed {
  private clients = new Set<ServerResponse>();
  private unsubscribe: (() => void)[] = [];
  private pendingMeter = new Map<string, ReturnType<typeof meterEvent>>();
  private pendingDevices = new Set<string>();
  private deviceFlushQueued = false;
  // network pacing is about the phone on the other end, so these timers run on wall-clock time
  private meterTimer?: NodeJS.Timeout;
  private keepaliveTimer?: NodeJS.Timeout;
  private readonly meterIntervalMs: number;
  private readonly keepaliveMs: number;
  readonly maxClients: number;

  constructor(private readonly hub: LiveSource, options: LiveFeedOptions = {}) {
    this.meterIntervalMs = options.meterIntervalMs ?? 2000;
    this.keepaliveMs = options.keepaliveMs ?? 15_000;
    this.maxClients = options.maxClients ?? 32;
  }

  get clientCount() {
    return this.clients.size;
  }

  /** Listens to the bus; events are only kept while at least one page is connected. */
  start() {
    const { bus } = this.hub;
    const deviceChanged = ({ deviceId }: { deviceId: string }) => this.queueDevice(deviceId);
    this.unsubscribe.push(
      bus.on('device.state', deviceChanged),
      bus.on('device.connected', deviceChanged),
      bus.on('device.disconnected', deviceChanged),
      bus.on('meter.reading', ({ deviceId, reading }) => {
        if (!this.clients.size) return;
        // a grid channel says whether it is the site's meter (site.grid_meter) or a sub-meter
        const siteMeter = reading.channel === 'grid' ? (this.hub.siteMeterId?.() ?? deviceId) === deviceId : undefined;
        this.pendingMeter.set(`${deviceId}\u0000${reading.channel ?? 'device'}`, meterEvent(deviceId, reading, siteMeter));
      }),
      bus.on('plan.updated', (p: HubEvents['plan.updated']) => this.broadcast('plan', { plan_id: p.planId, created_at: iso(p.createdAt) })),
      bus.on('tariff.updated', (p: HubEvents['tariff.updated']) => this.broadcast('tariff', { direction: p.direction, source: p.source })),
      bus.on('target.changed', (p: HubEvents['target.changed']) => this.broadcast('target', { device_id: p.deviceId })),
      bus.on('limits.changed', (p: HubEvents['limits.changed']) => this.broadcast('limits', { node_id: p.nodeId })),
    );
  }

  /** Ends every stream (before the HTTP server closes, which would otherwise wait for them). */
  stop() {
    for (const off of this.unsubscribe.splice(0)) off();
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.timers();
  }

  /** Takes over a response and keeps it open as an event stream until the client goes away. */
  open(res: ServerResponse) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // nginx and similar proxies would otherwise buffer the stream
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 3000\n\n`);
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      this.timers();
    });
    this.send(res, 'hello', { time: iso(this.hub.clock.now()), site_id: this.hub.site.id });
    this.timers();
  }

  private timers() {
    if (this.clients.size && !this.meterTimer) {
      this.meterTimer = setInterval(() => this.flushMeters(), this.meterIntervalMs);
      this.keepaliveTimer = setInterval(() => this.clients.forEach((res) => res.write(`: keepalive\n\n`)), this.keepaliveMs);
      this.meterTimer.unref();
      this.keepaliveTimer.unref();
    } else if (!this.clients.size && this.meterTimer) {
      clearInterval(this.meterTimer);
      clearInterval(this.keepaliveTimer);
      this.meterTimer = this.keepaliveTimer = undefined;
      this.pendingMeter.clear();
    }
  }

  private queueDevice(deviceId: string) {
    if (!this.clients.size) return;
    this.pendingDevices.add(deviceId);
    // an adapter often emits several changes in one tick: send the device once, as it is afterwards
    if (this.deviceFlushQueued) return;
    this.deviceFlushQueued = true;
    queueMicrotask(() => this.flushDevices());
  }

  private flushDevices() {
    this.deviceFlushQueued = false;
    const ids = [...this.pendingDevices];
    this.pendingDevices.clear();
    for (const id of ids) {
      const device = this.hub.deviceJson(id);
      this.write('device', device ?? { id, object: 'device', removed: true });
    }
  }

  private flushMeters() {
    if (!this.pendingMeter.size) return;
    const readings = [...this.pendingMeter.values()];
    this.pendingMeter.clear();
    for (const res of this.clients) {
      if (res.writableLength > SLOW_CLIENT_BYTES) continue;
      this.send(res, 'meter', { data: readings });
    }
  }

  /** Sends to every client, after any device change still queued, so events keep the order they happened in. */
  private broadcast(event: string, data: unknown) {
    if (this.pendingDevices.size) this.flushDevices();
    this.write(event, data);
  }

  private write(event: string, data: unknown) {
    for (const res of this.clients) this.send(res, event, data);
  }

  private send(res: ServerResponse, event: string, data: unknown) {
    if (res.writableLength > STUCK_CLIENT_BYTES) {
      // a client that reads nothing for this long is gone or stuck; it reconnects if it is not
      res.destroy();
      return;
    }
    // JSON.stringify never emits a raw newline, so one data: line is always a whole message
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
