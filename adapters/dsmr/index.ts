import { connect, type Socket } from 'node:net';
import { configSchema, defineAdapter, Enum, StrictObject, Type, type AdapterContext, type ConfigIssue, type DeviceConfigBase, type Static } from '../../src/api/index.js';
import { GridMeter } from '../meter-common/grid-meter.js';
import { TelegramFramer, gridValues, parseTelegram } from './telegram.js';

export const DsmrConfigSchema = Type.Object({
  serial: Type.Optional(
    StrictObject(
      {
        path: Type.String({ minLength: 1, description: 'e.g. /dev/ttyUSB0 or /dev/serial/by-id/usb-FTDI_…' }),
        baud: Enum([9600, 115200], { type: 'integer', default: 115200, description: '115200 for DSMR 4 and 5, e-MUCS, Sweden and Luxembourg; 9600 for DSMR 2.2 and 3' }),
        format: Enum(['8N1', '7E1'], { default: '8N1', description: '8N1 for DSMR 4 and later; 7E1 for DSMR 2.2 and 3' }),
      },
      { description: 'A P1 cable on this machine' },
    ),
  ),
  tcp: Type.Optional(
    StrictObject(
      { host: Type.String({ minLength: 1 }), port: Type.Integer({ minimum: 1, maximum: 65535 }) },
      { description: 'A P1 dongle or ser2net that streams the raw telegrams over TCP' },
    ),
  ),
  stale_after_s: Type.Number({ minimum: 5, maximum: 3600, default: 60, description: 'The meter counts as unavailable after this long without a good telegram (a meter sends one every 1 s (DSMR 5) or 10 s)' }),
  require_crc: Type.Boolean({ default: false, description: 'Refuse telegrams without a CRC (set this for DSMR 4 and later, so a DSMR 3 style end line cannot slip a garbled telegram through)' }),
});
export type DsmrConfig = DeviceConfigBase & Static<typeof DsmrConfigSchema>;

/** A byte source that ends: a serial port or a TCP connection. */
interface Link {
  /** Resolves when the link closes (with the reason), rejects when it cannot be opened. */
  run(onData: (chunk: Buffer) => void, signal: AbortSignal): Promise<string>;
  describe: string;
}

export const dsmr = defineAdapter<DsmrConfig>({
  id: 'dsmr',
  description: 'DSMR / P1 smart meter (NL, BE e-MUCS, LU, SE HAN) on a serial port or over TCP (ser2net, P1 Wi-Fi dongles): the site grid meter',
  configSchema: configSchema(DsmrConfigSchema),
  check(config: DsmrConfig): ConfigIssue[] {
    if (!config.serial === !config.tcp) return [{ path: [], message: 'give exactly one of serial: { path } (a P1 cable) or tcp: { host, port } (a P1 dongle or ser2net)' }];
    return [];
  },
  create(ctx, config) {
    const meter = new GridMeter(ctx, config, 'dsmr', config.stale_after_s * 1000);
    const link = config.serial ? serialLink(config.serial) : tcpLink(config.tcp!);
    const framer = new TelegramFramer();
    let first = true;
    const onData = (chunk: Buffer) => {
      for (const f of framer.push(chunk)) {
        if (!f.ok) {
          meter.fault(f.kind, `telegram dropped: ${f.reason}`);
          continue;
        }
        if (config.require_crc && !f.crc) {
          meter.fault('no_crc', 'telegram dropped: it has no CRC and require_crc is set');
          continue;
        }
        try {
          const t = parseTelegram(f.text, !f.crc);
          const values = gridValues(t);
          if (first) {
            first = false;
            ctx.log.info({ header: t.header, version: t.version ?? null, crc: f.crc }, `first telegram from ${t.header}${t.version ? ` (P1 version ${t.version})` : ''}, ${f.crc ? 'CRC checked' : 'without CRC (DSMR 2.2 / 3)'}`);
          }
          meter.report(values);
        } catch (err) {
          meter.fault('garbled', `telegram dropped: ${(err as Error).message}`);
        }
      }
    };
    const abort = new AbortController();
    let loop: Promise<void> | undefined;
    return {
      devices: [meter.device],
      async start(signal) {
        meter.start();
        signal.addEventListener('abort', () => abort.abort(), { once: true });
        loop = runLink(ctx, link, onData, meter, abort.signal);
      },
      async stop() {
        abort.abort();
        meter.stop();
        await loop;
      },
    };
  },
});

/** Keeps the link open: on loss, waits 1, 2, 4 … 30 s and opens it again; a good telegram resets the wait. */
async function runLink(ctx: AdapterContext, link: Link, onData: (b: Buffer) => void, meter: GridMeter, signal: AbortSignal) {
  let backoff = 1000;
  while (!signal.aborted) {
    const openedAt = ctx.clock.now();
    try {
      const reason = await link.run(onData, signal);
      if (signal.aborted) return;
      meter.linkDown(`${link.describe}: ${reason}`);
    } catch (err) {
      if (signal.aborted) return;
      meter.linkDown(`${link.describe}: ${(err as Error).message}`);
    }
    if (ctx.clock.now() - openedAt > 60_000) backoff = 1000;
    await ctx.clock.sleep(backoff, signal).catch(() => undefined);
    backoff = Math.min(backoff * 2, 30_000);
  }
}

function tcpLink(cfg: { host: string; port: number }): Link {
  return {
    describe: `tcp ${cfg.host}:${cfg.port}`,
    run(onData, signal) {
      return new Promise<string>((resolve, reject) => {
        const socket: Socket = connect({ host: cfg.host, port: cfg.port });
        let opened = false;
        const onAbort = () => socket.destroy();
        signal.addEventListener('abort', onAbort, { once: true });
        socket.setKeepAlive(true, 30_000);
        socket.on('connect', () => (opened = true));
        socket.on('data', onData);
        socket.on('error', (err) => (opened ? resolve(`connection lost (${err.message})`) : reject(new Error(`cannot connect (${err.message})`))));
        socket.on('close', () => {
          signal.removeEventListener('abort', onAbort);
          resolve('connection closed by the peer');
        });
      });
    },
  };
}

function serialLink(cfg: NonNullable<DsmrConfig['serial']>): Link {
  return {
    describe: `serial ${cfg.path}`,
    async run(onData, signal) {
      let SerialPort: typeof import('serialport').SerialPort;
      try {
        ({ SerialPort } = await import('serialport'));
      } catch (err) {
        throw new Error(`serial ports are not available in this build (${(err as Error).message}); use a P1 dongle or ser2net over tcp`, { cause: err });
      }
      const seven = cfg.format === '7E1';
      const port = new SerialPort({ path: cfg.path, baudRate: cfg.baud, dataBits: seven ? 7 : 8, parity: seven ? 'even' : 'none', stopBits: 1, autoOpen: false });
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(new Error(`cannot open (${err.message})`)) : resolve())));
      return new Promise<string>((resolve) => {
        const onAbort = () => port.close(() => undefined);
        signal.addEventListener('abort', onAbort, { once: true });
        // 7E1 arrives with the parity bit stripped by the UART; mask it anyway for adapters that pass it on
        port.on('data', (b: Buffer) => onData(seven ? Buffer.from(b.map((x) => x & 0x7f)) : b));
        port.on('error', (err) => resolve(`port error (${err.message})`));
        port.on('close', () => {
          signal.removeEventListener('abort', onAbort);
          resolve('port closed');
        });
      });
    },
  };
}
