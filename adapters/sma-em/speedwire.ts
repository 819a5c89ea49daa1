import type { GridValues } from '../meter-common/grid-meter.js';

/**
 * SMA Speedwire energy-meter datagrams (SMA Energy Meter, Sunny Home Manager 2.0): "SMA\0", the
 * SMA Net 2 tag holding protocol 0x6069, the device's SUSy id, serial and a millisecond ticker,
 * then OBIS channels: a 4-byte header (channel, measured value, type, tariff) and a 4-byte
 * (type 4: current value) or 8-byte (type 8: counter) big-endian value, until a zero header.
 * Current values are in 0.1 W, counters in Ws (SMA, "SMA Energy Meter protocol", EMETER-Protokoll-TI).
 */
export interface EnergyMeterDatagram {
  susyId: number;
  serial: number;
  tickerMs: number;
  /** OBIS `c.d` (e.g. `1.4`, `21.8`) → value in the datagram's unit. */
  channels: Map<string, bigint>;
}

export const EMETER_PROTOCOL = 0x6069;

/** Parses one datagram; null for other Speedwire traffic (inverter protocol 0x6065, discovery), an error for garbage. */
export function parseDatagram(buf: Buffer): EnergyMeterDatagram | null {
  if (buf.length < 4 || buf.toString('latin1', 0, 4) !== 'SMA\0') throw new Error('does not start with "SMA\\0"');
  if (buf.length < 28) {
    if (buf.length >= 18 && buf.readUInt16BE(16) !== EMETER_PROTOCOL) return null;
    throw new Error(`${buf.length} bytes: shorter than an energy meter header (28)`);
  }
  if (buf.readUInt16BE(14) !== 0x0010) throw new Error(`tag 0x${buf.readUInt16BE(14).toString(16)} where SMA Net 2 (0x0010) belongs`);
  if (buf.readUInt16BE(16) !== EMETER_PROTOCOL) return null;
  const dataLength = buf.readUInt16BE(12);
  const end = 16 + dataLength;
  if (end > buf.length) throw new Error(`says ${dataLength} bytes of data, has ${buf.length - 16}`);
  const channels = new Map<string, bigint>();
  let at = 28;
  while (at + 4 <= end) {
    const header = buf.readUInt32BE(at);
    if (header === 0) break;
    const [channel, value, type] = [buf[at], buf[at + 1], buf[at + 2]];
    at += 4;
    // the software version (0x90000000) is a 4-byte value of its own kind
    const size = channel === 0x90 ? 4 : type === 4 ? 4 : type === 8 ? 8 : -1;
    if (size < 0) throw new Error(`OBIS channel ${channel}:${value}.${type} at byte ${at - 4} has unknown type ${type}`);
    if (at + size > end) throw new Error(`OBIS ${value}.${type} at byte ${at - 4} runs past the data`);
    if (channel === 0) channels.set(`${value}.${type}`, size === 4 ? BigInt(buf.readUInt32BE(at)) : buf.readBigUInt64BE(at));
    at += size;
  }
  return { susyId: buf.readUInt16BE(18), serial: buf.readUInt32BE(20), tickerMs: buf.readUInt32BE(24), channels };
}

/** Net power (import − export) of the sum and of each phase, and the import/export counters. */
export function emeterValues(d: EnergyMeterDatagram): GridValues {
  const w = (c: string) => {
    const v = d.channels.get(c);
    return v === undefined ? undefined : Number(v) / 10;
  };
  const net = (imp: number, exp: number) => {
    const a = w(`${imp}.4`);
    const b = w(`${exp}.4`);
    return a === undefined && b === undefined ? undefined : (a ?? 0) - (b ?? 0);
  };
  const wh = (c: string) => {
    const v = d.channels.get(c);
    return v === undefined ? undefined : Number(v) / 3600;
  };
  const phases = [net(21, 22), net(41, 42), net(61, 62)];
  const powerW = net(1, 2);
  if (powerW === undefined) throw new Error('no active power channels (1.4.0 / 2.4.0)');
  return { powerW, phasesW: phases.every((p) => p !== undefined) ? (phases as number[]) : undefined, importWh: wh('1.8'), exportWh: wh('2.8') };
}
