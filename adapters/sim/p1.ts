import { createServer, type Server, type Socket } from 'node:net';
import { DateTime } from 'luxon';
import { configSchema, defineAdapter, Type, type DeviceConfigBase, type MeterChannel, type Static } from '../../src/api/index.js';

const SimP1ConfigSchema = Type.Object({
  host: Type.String({ default: '127.0.0.1' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 2323, description: 'TCP port the telegrams are served on' }),
  tick_s: Type.Number({ minimum: 0.1, maximum: 60, default: 5, description: 'A telegram every this many seconds of hub time (a real DSMR 5 meter: 1 s)' }),
});
type SimP1Config = DeviceConfigBase & Static<typeof SimP1ConfigSchema>;

/** CRC-16/ARC over the telegram from "/" to "!", as the P1 companion standard asks (the demo's meter computes its own). */
function telegramCrc(text: string): string {
  let crc = 0;
  for (const byte of Buffer.from(text, 'latin1')) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc.toString(16).toUpperCase().padStart(4, '0');
}

const kw = (w: number, digits = 2) => `${(Math.max(0, w) / 1000).toFixed(3).padStart(digits + 4, '0')}*kW`;
const kwh = (wh: number) => `${(wh / 1000).toFixed(3).padStart(10, '0')}*kWh`;

/**
 * The demo's smart meter: a DSMR 5.0 meter at the grid connection, its P1 port served over TCP
 * the way a P1 Wi-Fi dongle or ser2net serves it. What it measures is the house as the other
 * devices meter it (each device's own power; a hybrid inverter by its battery and PV), split evenly
 * over three phases. A `dsmr` device reads it like a real meter.
 */
export const simP1Adapter = defineAdapter<SimP1Config>({
  id: 'sim_p1',
  simulatesPeer: true,
  description: 'Simulated DSMR 5.0 smart meter serving P1 telegrams over TCP (the demo’s grid meter); read it with a dsmr device',
  configSchema: configSchema(SimP1ConfigSchema),
  create(ctx, config) {
    const power = new Map<string, Map<MeterChannel, number>>();
    const unsubscribe = ctx.bus.on('meter.reading', ({ deviceId, reading }) => {
      const ch = reading.channel ?? 'device';
      if (reading.powerW === undefined || ch === 'grid' || ch === 'load') return;
      let m = power.get(deviceId);
      if (!m) power.set(deviceId, (m = new Map()));
      m.set(ch, reading.powerW);
    });
    const counters = { t1In: 0, t2In: 0, t1Out: 0, t2Out: 0, ...ctx.store.get<Record<string, number>>('counters') };
    const clients = new Set<Socket>();
    let server: Server | undefined;
    let stopTick: (() => void) | undefined;
    let last = ctx.clock.now();
    const siteW = () => {
      let sum = 0;
      for (const m of power.values()) sum += m.has('device') ? m.get('device')! : (m.get('battery') ?? 0) + (m.get('pv') ?? 0);
      return sum;
    };
    const tick = () => {
      const now = ctx.clock.now();
      const local = DateTime.fromMillis(now, { zone: ctx.site.timezone });
      const w = siteW();
      const h = Math.max(0, now - last) / 3_600_000;
      last = now;
      // tariff 1 (low) at night and at weekends, tariff 2 (normal) otherwise, as Dutch meters count
      const low = local.hour < 7 || local.hour >= 23 || local.weekday >= 6;
      if (w >= 0) counters[low ? 't1In' : 't2In'] += w * h;
      else counters[low ? 't1Out' : 't2Out'] += -w * h;
      const phase = w / 3;
      const lines = [
        '/ISK5\\2M550T-1012',
        '',
        '1-3:0.2.8(50)',
        `0-0:1.0.0(${local.toFormat('yyMMddHHmmss')}${local.isInDST ? 'S' : 'W'})`,
        '0-0:96.1.1(4530303434303037333938373530333138)',
        `1-0:1.8.1(${kwh(counters.t1In)})`,
        `1-0:1.8.2(${kwh(counters.t2In)})`,
        `1-0:2.8.1(${kwh(counters.t1Out)})`,
        `1-0:2.8.2(${kwh(counters.t2Out)})`,
        `0-0:96.14.0(000${low ? 1 : 2})`,
        `1-0:1.7.0(${kw(w)})`,
        `1-0:2.7.0(${kw(-w)})`,
        '1-0:32.7.0(230.0*V)',
        '1-0:52.7.0(230.0*V)',
        '1-0:72.7.0(230.0*V)',
        ...['31', '51', '71'].map((c) => `1-0:${c}.7.0(${String(Math.round(Math.abs(phase) / 230)).padStart(3, '0')}*A)`),
        ...['21', '41', '61'].map((c) => `1-0:${c}.7.0(${kw(phase)})`),
        ...['22', '42', '62'].map((c) => `1-0:${c}.7.0(${kw(-phase)})`),
        '!',
      ];
      const body = lines.join('\r\n');
      const telegram = `${body}${telegramCrc(body)}\r\n`;
      for (const c of clients) c.write(telegram, 'latin1');
      void ctx.store.set('counters', counters);
    };
    return {
      devices: [],
      async start() {
        server = createServer((socket) => {
          clients.add(socket);
          socket.on('error', () => undefined);
          socket.on('close', () => clients.delete(socket));
        });
        await new Promise<void>((resolve, reject) => {
          server!.once('error', reject);
          server!.listen(config.port, config.host, () => resolve());
        });
        ctx.log.info({ host: config.host, port: config.port }, `simulated P1 smart meter serving telegrams on ${config.host}:${config.port}`);
        stopTick = ctx.clock.every(config.tick_s * 1000, tick);
      },
      async stop() {
        stopTick?.();
        unsubscribe();
        for (const c of clients) c.destroy();
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
        await ctx.store.set('counters', counters);
      },
    };
  },
});
