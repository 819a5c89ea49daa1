import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import type { AdapterStore, Logger } from '../../src/api/index.js';

/**
 * A real HTTP server on 127.0.0.1, on a port chosen at run time, for the tests of the enclosing
 * describe (or file): listens before them, closes after them. `onListening` gets its base URL.
 */
export function httpServerForTests(onRequest: (req: IncomingMessage, res: ServerResponse) => void, onListening: (base: string) => void): void {
  let server: Server;
  beforeAll(async () => {
    server = createServer(onRequest);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onListening(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
}

/** A provider that is busy `failures` times (HTTP 503), then answers `body()`: for retry tests. */
export function busyThen(failures: number, body: () => string | Buffer): (req: IncomingMessage, res: ServerResponse) => void {
  let n = 0;
  return (_req, res) => {
    if (++n <= failures) {
      res.statusCode = 503;
      res.end('busy');
    } else res.end(body());
  };
}

/** A logger that drops everything. */
export const quietLog: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quietLog };

/** An in-memory source cache; `copy` stores a JSON copy, as the hub's store does. */
export function memoryStore(copy = false): AdapterStore {
  const m = new Map<string, unknown>();
  return { get: <V>(k: string) => m.get(k) as V | undefined, set: async (k, v) => void m.set(k, copy ? JSON.parse(JSON.stringify(v)) : v) };
}
