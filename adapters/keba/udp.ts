import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';

/**
 * The hub's UDP socket for KEBA stations. A P30 sends its answers to port 7090 of the sender
 * whatever port the request came from, so every station on one local port shares one socket; the
 * datagrams are handed to the station whose address and port sent them.
 */
type Handler = (text: string) => void;

interface Shared {
  socket: Socket;
  ready: Promise<void>;
  handlers: Map<string, Handler>;
  users: number;
}

const shared = new Map<string, Shared>();

/** Largest datagram taken from a station (a report is under 1 KiB). */
const MAX_DATAGRAM = 4096;

export interface KebaLink {
  send(text: string): Promise<void>;
  close(): Promise<void>;
  /** The address the station was resolved to. */
  address: string;
}

/** Opens (or joins) the socket on `localPort` (0 = a port of its own) and routes datagrams from host:port to `onMessage`. */
export async function openKebaLink(host: string, port: number, localPort: number, bindAddress: string, onMessage: Handler): Promise<KebaLink> {
  const address = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? host : (await lookup(host, { family: 4 })).address;
  const key = localPort === 0 ? `own:${Math.random()}` : `${bindAddress}:${localPort}`;
  let s = shared.get(key);
  if (!s) {
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    const handlers = new Map<string, Handler>();
    socket.on('message', (msg, rinfo) => {
      if (msg.length > MAX_DATAGRAM) return;
      handlers.get(`${rinfo.address}:${rinfo.port}`)?.(msg.toString('latin1'));
    });
    const ready = new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(localPort, bindAddress, () => {
        socket.off('error', reject);
        socket.on('error', () => undefined);
        resolve();
      });
    });
    s = { socket, ready, handlers, users: 0 };
    shared.set(key, s);
  }
  const entry = s;
  const peer = `${address}:${port}`;
  if (entry.handlers.has(peer)) throw new Error(`another keba device already talks to ${peer}`);
  entry.handlers.set(peer, onMessage);
  entry.users++;
  try {
    await entry.ready;
  } catch (err) {
    entry.handlers.delete(peer);
    entry.users--;
    shared.delete(key);
    throw new Error(`cannot open UDP port ${localPort} on ${bindAddress} for KEBA answers: ${(err as Error).message}`, { cause: err });
  }
  return {
    address,
    send: (text) =>
      new Promise<void>((resolve, reject) => {
        entry.socket.send(Buffer.from(text, 'latin1'), port, address, (err) => (err ? reject(err) : resolve()));
      }),
    close: async () => {
      entry.handlers.delete(peer);
      entry.users--;
      if (entry.users === 0) {
        shared.delete(key);
        await new Promise<void>((r) => entry.socket.close(() => r()));
      }
    },
  };
}
