import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { configSchema, defineAdapter, Type, type DeviceConfigBase, type Static } from '../../src/api/index.js';
import { GridMeter } from '../meter-common/grid-meter.js';
import { emeterValues, parseDatagram } from './speedwire.js';

export const SmaEmConfigSchema = Type.Object({
  serial: Type.Optional(Type.Integer({ minimum: 1, maximum: 4294967295, description: 'The meter’s serial number (on its label and in the log); needed where several SMA meters multicast on the LAN' })),
  interface: Type.Optional(Type.String({ minLength: 1, description: 'The network interface (name such as eth0, or its IPv4 address) to receive the multicast on; default: the OS’s choice' })),
  group: Type.String({ default: '239.12.255.254', description: 'Speedwire multicast group' }),
  port: Type.Integer({ minimum: 1, maximum: 65535, default: 9522 }),
  stale_after_s: Type.Number({ minimum: 2, maximum: 3600, default: 30, description: 'Unavailable after this long without a datagram (the meter sends one every second or faster)' }),
});
export type SmaEmConfig = DeviceConfigBase & Static<typeof SmaEmConfigSchema>;

/** The IPv4 address of an interface given by name (eth0) or address; undefined = let the OS choose. */
function interfaceAddress(spec: string | undefined): string | undefined {
  if (!spec || /^\d+\.\d+\.\d+\.\d+$/.test(spec)) return spec;
  const addr = networkInterfaces()[spec]?.find((a) => a.family === 'IPv4');
  if (!addr) throw new Error(`interface "${spec}" has no IPv4 address (known: ${Object.keys(networkInterfaces()).join(', ')})`);
  return addr.address;
}

export const smaEm = defineAdapter<SmaEmConfig>({
  id: 'sma-em',
  description: 'SMA Energy Meter / Sunny Home Manager 2.0 (Speedwire multicast, OBIS channels): the site grid meter with net power per phase',
  configSchema: configSchema(SmaEmConfigSchema),
  create(ctx, config) {
    const meter = new GridMeter(ctx, config, 'sma-em', config.stale_after_s * 1000);
    let socket: Socket | undefined;
    const seen = new Set<number>();
    const onMessage = (buf: Buffer, from: { address: string }) => {
      let d;
      try {
        d = parseDatagram(buf);
      } catch (err) {
        return meter.fault('garbled', `datagram from ${from.address} dropped: ${(err as Error).message}`, { bytes: buf.length });
      }
      if (!d) return;
      if (config.serial !== undefined && d.serial !== config.serial) return;
      if (!seen.has(d.serial)) {
        seen.add(d.serial);
        ctx.log.info({ serial: d.serial, susy_id: d.susyId, from: from.address }, `energy meter ${d.serial} (SUSy ${d.susyId}) heard from ${from.address}`);
        if (config.serial === undefined && seen.size === 2) ctx.log.warn({ serials: [...seen] }, `several SMA energy meters multicast here (${[...seen].join(', ')}): set serial to the one at the grid connection`);
      }
      if (config.serial === undefined && seen.size > 1 && d.serial !== [...seen][0]) return;
      try {
        meter.report(emeterValues(d));
      } catch (err) {
        meter.fault('garbled', `datagram from ${from.address} dropped: ${(err as Error).message}`);
      }
    };
    return {
      devices: [meter.device],
      async start() {
        const local = interfaceAddress(config.interface);
        socket = createSocket({ type: 'udp4', reuseAddr: true });
        socket.on('message', onMessage);
        socket.on('error', (err) => meter.linkDown(`udp ${config.group}:${config.port}: ${err.message}`));
        await new Promise<void>((resolve, reject) => {
          socket!.once('error', reject);
          socket!.bind(config.port, () => {
            socket!.off('error', reject);
            resolve();
          });
        });
        socket.addMembership(config.group, local);
        meter.start();
        ctx.log.info({ group: config.group, port: config.port, interface: local ?? 'default' }, `listening for SMA energy meters on ${config.group}:${config.port}${local ? ` via ${local}` : ''}`);
      },
      async stop() {
        meter.stop();
        await new Promise<void>((resolve) => (socket ? socket.close(() => resolve()) : resolve()));
      },
    };
  },
});
