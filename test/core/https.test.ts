import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { backupCommand } from '../../src/core/store/backup-cli.js';
import { describeWithPeers } from '../peers/system.js';
import { runCommand } from '../peers/cli-run.js';

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

/** A self-signed certificate for localhost and 127.0.0.1, made by openssl now. */
function makeCert(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

/** The fingerprint of the certificate a new TLS connection to the hub is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

function get(port: number, path: string, ca: Buffer, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method, ca, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describeWithPeers(['openssl'], 'HTTPS', () => {
  it('serves HTTPS with the configured certificate, verified by a real TLS client, and reloads a renewed one for new connections', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-https-'));
    const first = makeCert(dir, 'first');
    // the site file names fixed paths; a renewal replaces the files behind them
    renameSync(first.cert, join(dir, 'hub.crt'));
    renameSync(first.key, join(dir, 'hub.key'));
    const site = join(dir, 'site.yaml');
    writeFileSync(site, `site: { id: home }\nhttp: { port: 0, tls: { cert: hub.crt, key: hub.key } }\nstorage: { dir: ./data }\n`);
    const lines: string[] = [];
    const logger = createLogger({ destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }), level: 'info', format: 'json' });
    hub = new Hub({ configFile: site, clock: new ManualClock('2026-06-01T10:00:00Z'), logger });
    await hub.start();
    expect(hub.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(hub.url).port);
    const ca1 = readFileSync(join(dir, 'hub.crt'));
    // a verifying client: the chain and the name check out against the first certificate
    const health = await get(port, '/api/v1/health', ca1);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: expect.any(String) });
    expect(await servedFingerprint(port)).toBe(first.fingerprint);
    // plain HTTP is not served on the port
    await expect(fetch(`http://127.0.0.1:${port}/api/v1/health`)).rejects.toThrow();

    // a connection opened before the renewal keeps working
    const kept = connect({ host: '127.0.0.1', port, ca: ca1, servername: 'localhost' });
    await new Promise((r) => kept.once('secureConnect', r));

    // renewal: a key that does not fit the certificate yet keeps the old pair in service
    const second = makeCert(dir, 'second');
    const other = makeCert(dir, 'other');
    writeFileSync(join(dir, 'hub.crt.new'), readFileSync(second.cert));
    renameSync(join(dir, 'hub.crt.new'), join(dir, 'hub.crt'));
    writeFileSync(join(dir, 'hub.key'), readFileSync(other.key));
    const deadline = Date.now() + 15_000;
    while (!lines.some((l) => l.includes('HTTPS certificate not reloaded')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(lines.find((l) => l.includes('HTTPS certificate not reloaded'))).toMatch(/does not fit the certificate/);
    expect(await servedFingerprint(port)).toBe(first.fingerprint);

    // the matching key arrives: new connections get the new certificate
    writeFileSync(join(dir, 'hub.key'), readFileSync(second.key));
    let served = first.fingerprint;
    while (served === first.fingerprint && Date.now() < deadline + 15_000) {
      await new Promise((r) => setTimeout(r, 200));
      served = await servedFingerprint(port);
    }
    expect(served).toBe(second.fingerprint);
    expect(served).not.toBe(first.fingerprint);
    const ca2 = readFileSync(join(dir, 'hub.crt'));
    expect((await get(port, '/api/v1/health', ca2)).status).toBe(200);
    // a client that still trusts only the old certificate is refused by its own verification
    await expect(get(port, '/api/v1/health', ca1)).rejects.toThrow();
    expect(lines.some((l) => l.includes('HTTPS certificate reloaded') && l.includes(second.fingerprint))).toBe(true);
    // the connection opened before still has the first certificate and is still open
    expect(kept.getPeerCertificate().fingerprint256).toBe(first.fingerprint);
    expect(kept.destroyed).toBe(false);
    kept.destroy();

    // homeflex backup talks HTTPS to the running hub, pinned to the certificate the site file names
    const out = join(dir, 'b.tar.gz');
    const { code, err } = await runCommand(backupCommand, ['--out', out, '--config', site, '--url', hub.url], { defaultConfig: site });
    expect(err).toBe('');
    expect(code).toBe(0);
  }, 60_000);

  it('refuses to start with a key that does not fit the certificate, naming both files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-https-bad-'));
    const a = makeCert(dir, 'a');
    const b = makeCert(dir, 'b');
    const logger = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: 'silent' });
    hub = new Hub({ configText: `site: { id: home }\nhttp: { port: 0, tls: { cert: ${a.cert}, key: ${b.key} } }\n`, logger, override: (c) => void (c.storage.dir = join(dir, 'data')) });
    await expect(hub.start()).rejects.toThrow(`http.tls: the key ${b.key} does not fit the certificate ${a.cert}`);
  });
});

describe('behind a reverse proxy', () => {
  const TOKEN = 'proxy-test-token-0123456789';
  const start = async (trusted: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-proxy-'));
    const logger = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: 'silent' });
    hub = new Hub({
      configText: `site: { id: home }\nhttp: { port: 0, token: ${TOKEN}, allowed_hosts: [hub.example.com], trusted_proxies: [${trusted}] }\n`,
      logger,
      clock: new ManualClock('2026-06-01T10:00:00Z'),
      override: (c) => void (c.storage.dir = dir),
    });
    await hub.start();
    return `${hub.url}/api/v1`;
  };
  // what nginx sends without "proxy_set_header Host": its upstream address as Host, the public name in X-Forwarded-Host
  const proxied = (origin: string, fwdHost: string) => ({ authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', origin, 'x-forwarded-host': fwdHost, 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' });
  const write = (api: string, headers: Record<string, string>) => fetch(`${api}/limits/home`, { method: 'PUT', headers, body: JSON.stringify({ schedule_import: [{ timestamp: '2026-06-01T10:00:00Z', total_power_W: 9000 }] }) });

  it('takes the page origin from a trusted proxy\'s X-Forwarded-Host, and ignores that header from anyone else', async () => {
    let api = await start('127.0.0.1');
    const ok = await write(api, proxied('https://hub.example.com', 'hub.example.com'));
    expect(ok.status, await ok.clone().text()).toBe(200);
    // a foreign page is still refused through the proxy
    const foreign = await write(api, proxied('https://evil.example', 'hub.example.com'));
    expect(foreign.status).toBe(403);
    // a forwarded name that is not the hub's is refused like a Host header (DNS rebinding through the proxy)
    const rebound = await write(api, proxied('https://evil.example', 'evil.example'));
    expect(rebound.status).toBe(421);
    await hub!.stop();
    hub = undefined;
    // not a trusted proxy: X-Forwarded-Host is only the client's word and decides nothing
    api = await start('10.9.9.9');
    const untrusted = await write(api, proxied('https://hub.example.com', 'evil.example'));
    expect(untrusted.status).toBe(200);
  }, 30_000);
});
