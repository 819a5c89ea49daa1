import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { builtinCatalog } from '../../../src/core/catalog.js';
import { hubChecks } from '../../../src/core/config/checks.js';
import { parseConfig } from '../../../src/core/config/load.js';
import { Rig, until } from './harness.js';

/**
 * Who may be a charger: off loopback every charger authenticates, a stranger cannot throw the real
 * charger off, frames are bounded, and a stream of unknown identities cannot flood the log. The
 * charger side is a raw `ws` client (not ocpp-rpc, which the hub itself uses).
 */

const rigs: Rig[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const r of rigs.splice(0)) await r.stop();
});

async function rig(options: Parameters<Rig['listen']>[0] = {}) {
  const r = await new Rig().listen(options);
  rigs.push(r);
  return r;
}

/** Dials as `identity` (with a Basic password when given); resolves with the open socket or the HTTP status of the refusal. */
function dial(url: string, identity: string, password?: string, tls: WebSocket.ClientOptions = {}): Promise<{ ws?: WebSocket; status?: number }> {
  const headers: Record<string, string> = password === undefined ? {} : { authorization: `Basic ${Buffer.from(`${identity}:${password}`).toString('base64')}` };
  const ws = new WebSocket(`${url}/${identity}`, ['ocpp1.6'], { headers, ...tls });
  sockets.push(ws);
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
    ws.once('error', () => resolve({ status: -1 }));
  });
}

const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

/** A BootNotification as a charger sends it; resolves with the hub's answer frame. */
function boot(ws: WebSocket, id = 'b1'): Promise<unknown[]> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const frame = JSON.parse(String(data)) as unknown[];
      if (frame[1] !== id) return;
      ws.off('message', onMessage);
      resolve(frame);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify([2, id, 'BootNotification', { chargePointVendor: 'ACME', chargePointModel: 'Wall' }]));
  });
}

describe('OCPP listener open to the network (requireAuth)', () => {
  it('refuses a charger whose device has no password, saying why', async () => {
    const r = await rig({ requireAuth: true });
    await r.device({ id: 'wallbox', identity: 'CP-OPEN' });
    expect((await dial(r.url, 'CP-OPEN')).status).toBe(401);
    expect((await dial(r.url, 'CP-OPEN', 'anything')).status).toBe(401);
    expect(r.logged(/charger CP-OPEN refused \(401\): its device has no password, and the OCPP port listens on 127\.0\.0\.1, open to the network/)).toHaveLength(1);
  });

  it('a stranger without the password cannot throw the authenticated charger off', async () => {
    const r = await rig({ requireAuth: true });
    await r.device({ id: 'wallbox', identity: 'CP-1', password: 'cp-1-secret' });
    const real = await dial(r.url, 'CP-1', 'cp-1-secret');
    expect(real.ws).toBeDefined();
    expect((await boot(real.ws!))[0]).toBe(3);
    let realClosed = false;
    real.ws!.once('close', () => (realClosed = true));
    for (const attempt of [undefined, 'guess', '']) expect((await dial(r.url, 'CP-1', attempt)).status).toBe(401);
    await new Promise((res) => setTimeout(res, 200));
    expect(realClosed).toBe(false);
    expect((await boot(real.ws!, 'b2'))[0]).toBe(3);
    // the same charger with its password may replace its own older connection (a reboot)
    const again = await dial(r.url, 'CP-1', 'cp-1-secret');
    expect(again.ws).toBeDefined();
    await until(() => realClosed, 2000, 'the older connection to close');
  });

  it('on loopback (the default test rig) a charger without a password is still admitted', async () => {
    const r = await rig();
    await r.device({ id: 'wallbox', identity: 'CP-LOCAL' });
    expect((await dial(r.url, 'CP-LOCAL')).ws).toBeDefined();
  });
});

describe('OCPP client certificates (security profile 3)', () => {
  it('admits a password-less charger only with a certificate signed by tls.ca that names its identity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-ocpp-mtls-'));
    const f = (n: string) => join(dir, n);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=homeflex test CA');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('server.key'), '-out', f('server.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1');
    for (const [name, cn, signed] of [['cp', 'CP-CERT', true], ['other', 'CP-OTHER', true], ['selfmade', 'CP-CERT', false]] as const) {
      openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/O=ACME/CN=${cn}`);
      if (signed) openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '1');
      else openssl('x509', '-req', '-in', f(`${name}.csr`), '-signkey', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '1');
    }
    const r = await rig({ requireAuth: true, tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') } });
    await r.device({ id: 'wallbox', identity: 'CP-CERT' });
    const url = `wss://127.0.0.1:${r.server.port}/ocpp`;
    const client = (name?: string): WebSocket.ClientOptions => ({ ca: readFileSync(f('server.pem')), ...(name ? { cert: readFileSync(f(`${name}.pem`)), key: readFileSync(f(`${name}.key`)) } : {}) });

    expect((await dial(url, 'CP-CERT', undefined, client())).status).toBe(401);
    expect((await dial(url, 'CP-CERT', undefined, client('other'))).status).toBe(401);
    expect((await dial(url, 'CP-CERT', undefined, client('selfmade'))).status).toBe(401);
    expect(r.logged(/charger CP-CERT refused \(401\): its device has no password and it presented no client certificate for CN=CP-CERT signed by connections\.ocpp\.tls\.ca/).length).toBeGreaterThan(0);
    const ok = await dial(url, 'CP-CERT', undefined, client('cp'));
    expect(ok.ws).toBeDefined();
    expect((await boot(ok.ws!))[0]).toBe(3);
  }, 60_000);
});

describe('OCPP frame size', () => {
  it('closes a charger connection sending a frame over the limit (1009), and admits it again', async () => {
    const r = await rig({ maxFrameBytes: 64 * 1024 });
    await r.device({ id: 'wallbox', identity: 'CP-BIG', password: 'big-secret' });
    const { ws } = await dial(r.url, 'CP-BIG', 'big-secret');
    const code = closed(ws!);
    ws!.send(JSON.stringify([2, 'x', 'DataTransfer', { vendorId: 'ACME', data: 'x'.repeat(100 * 1024) }]));
    expect(await code).toBe(1009);
    await until(() => r.logged(/charger CP-BIG sent a message larger than connections\.ocpp\.max_frame_bytes/).length, 2000, 'the log line');
    const back = await dial(r.url, 'CP-BIG', 'big-secret');
    expect((await boot(back.ws!))[0]).toBe(3);
  });

  it('has a default limit far below the 100 MiB ws accepts by itself', async () => {
    const r = await rig();
    await r.device({ id: 'wallbox', identity: 'CP-BIG2', password: 'big-secret' });
    const { ws } = await dial(r.url, 'CP-BIG2', 'big-secret');
    const code = closed(ws!);
    ws!.send(JSON.stringify([2, 'x', 'DataTransfer', { vendorId: 'ACME', data: 'x'.repeat(2 * 1024 * 1024) }]));
    expect(await code).toBe(1009);
  });
});

describe('unknown charger identities', () => {
  it('are logged once per identity and at most 20 times in 10 minutes overall, however many dial in', async () => {
    const r = await rig();
    for (let i = 0; i < 60; i++) expect((await dial(r.url, `STRANGER-${i % 40}`)).status).toBe(401);
    const lines = r.logged(/unknown charger identity/);
    expect(lines.length).toBe(20);
    expect(new Set(lines.map((l) => l.charger)).size).toBe(20);
  });
});

describe('connections.ocpp in the YAML', () => {
  const parse = (yaml: string) => parseConfig(yaml, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });
  const site = (ocpp: string, charger: string) => `site: { id: home }\nconnections:\n  ocpp: ${ocpp}\ndevices:\n  - { id: wallbox, adapter: ocpp, identity: CP1${charger} }\n`;

  it('refuses a charger without a password when the listener is not loopback, naming file and line', () => {
    expect(() => parse(site('{ port: 9000 }', ''))).toThrow(/site\.yaml:5:\d+ devices\[0\]: charger "CP1" has no password, but connections\.ocpp listens on 0\.0\.0\.0 \(not loopback\)/);
    expect(() => parse(site('{ host: 192.168.1.5 }', ''))).toThrow(/listens on 192\.168\.1\.5 \(not loopback\)/);
    expect(parse(site('{ port: 9000 }', ', password: long-secret')).devices).toHaveLength(1);
    expect(parse(site('{ host: 127.0.0.1 }', '')).devices).toHaveLength(1);
    expect(parse(site('{ host: 127.0.0.1, max_frame_bytes: 65536 }', '')).connections.ocpp?.max_frame_bytes).toBe(65536);
    // chargers may prove who they are by client certificate instead
    expect(parse(site('{ port: 9000, tls: { cert: s.pem, key: s.key, ca: ca.pem } }', '')).devices).toHaveLength(1);
  });
});
