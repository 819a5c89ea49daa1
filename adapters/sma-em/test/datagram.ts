/**
 * A stand-in SMA Energy Meter's datagram, written from SMA's published protocol description
 * (the technical information "SMA Energy Meter Protocol", EMETER-Protokoll-TI-en-10: datagram
 * structure and OBIS identifiers; section numbers not re-checked here): header "SMA\0", tag 0x02A0 with group 1, SMA Net 2 tag 0x0010 whose data start
 * with protocol 0x6069, SUSy id, serial number and ticker; then measured values as OBIS
 * `channel.measuredValue.type.tariff` (type 4 = current value, 4 bytes, unit 0.1 W; type 8 =
 * counter, 8 bytes, unit Ws); the end tag is four zero bytes. It shares no code with the adapter.
 */
export interface StandInReading {
  serial: number;
  susyId?: number;
  ticker?: number;
  /** W and Wh as a meter shows them; the builder converts to 0.1 W and Ws. */
  importW: number;
  exportW: number;
  importWh: number;
  exportWh: number;
  phases?: { importW: number; exportW: number }[];
}

export function emeterDatagram(r: StandInReading): Buffer {
  const entries: Buffer[] = [];
  const current = (c: number, watts: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt8(0, 0);
    b.writeUInt8(c, 1);
    b.writeUInt8(4, 2);
    b.writeUInt8(0, 3);
    b.writeUInt32BE(Math.round(watts * 10), 4);
    entries.push(b);
  };
  const counter = (c: number, wh: number) => {
    const b = Buffer.alloc(12);
    b.writeUInt8(0, 0);
    b.writeUInt8(c, 1);
    b.writeUInt8(8, 2);
    b.writeUInt8(0, 3);
    b.writeBigUInt64BE(BigInt(Math.round(wh * 3600)), 4);
    entries.push(b);
  };
  current(1, r.importW);
  counter(1, r.importWh);
  current(2, r.exportW);
  counter(2, r.exportWh);
  // reactive and apparent power (3, 4, 9, 10) as a real meter sends them, which the hub skips
  current(3, 0);
  current(9, r.importW + r.exportW);
  (r.phases ?? []).forEach((p, i) => {
    current(21 + 20 * i, p.importW);
    current(22 + 20 * i, p.exportW);
    current(32 + 20 * i, 23_000); // voltage 32.4.0 (mV: 230 V is raw 230000), which the hub skips
  });
  const version = Buffer.from([0x90, 0x00, 0x00, 0x00, 0x02, 0x00, 0x12, 0x52]);
  entries.push(version);
  const body = Buffer.concat(entries);
  const head = Buffer.alloc(28);
  head.write('SMA\0', 0, 'latin1');
  head.writeUInt16BE(4, 4);
  head.writeUInt16BE(0x02a0, 6);
  head.writeUInt32BE(1, 8);
  head.writeUInt16BE(12 + body.length, 12);
  head.writeUInt16BE(0x0010, 14);
  head.writeUInt16BE(0x6069, 16);
  head.writeUInt16BE(r.susyId ?? 349, 18);
  head.writeUInt32BE(r.serial, 20);
  head.writeUInt32BE(r.ticker ?? 123456, 24);
  return Buffer.concat([head, body, Buffer.alloc(4)]);
}
