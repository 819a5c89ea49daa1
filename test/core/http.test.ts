import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Hub } from '../../src/core/host.js';
import { Readable } from 'node:stream';
import { hostAllowed, httpConfigProblems, hubNames, JsonDepthGuard, tokenMatches } from '../../src/core/http.js';
import { HTTP_DEFAULTS } from '../../src/core/config/schema.js';
import { createLogger } from '../../src/core/logging.js';

const TOKEN = 'correct-horse-battery-staple';
let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

function logger() {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
  return { lines, make: (secrets: string[]) => createLogger({ destination, secrets }) };
}

describe('HTTP server', () => {
  it('needs the bearer token for writes when one is configured and compares it safely', async () => {
    const { make } = logger();
    hub = new Hub({
      configText: `site: { id: home }\nhttp: { port: 0, token: "${TOKEN}" }\n`,
      logger: make([TOKEN]),
      override: (c) => void (c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-http-'))),
    });
    await hub.start();
    // reads from this machine need no token
    expect((await fetch(`${hub.url}/api/v1/health`)).status).toBe(200);
    const write = (headers: Record<string, string>) => fetch(`${hub!.url}/api/v1/meters/interval`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: '[]' });
    const noToken = await write({});
    expect(noToken.status).toBe(401);
    expect(await noToken.json()).toMatchObject({ object: 'error', type: 'invalid_request', code: 'unauthorized' });
    expect((await write({ authorization: 'Bearer nope' })).status).toBe(401);
    // the right token gets past auth to the route itself
    const right = await write({ authorization: `Bearer ${TOKEN}` });
    expect(right.status).toBe(200);
    // a method the route does not have: 404 for a client that may read, like any unknown path
    expect((await fetch(`${hub.url}/api/v1/health`, { method: 'POST' })).status).toBe(404);
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches(TOKEN.slice(0, -1), TOKEN)).toBe(false);
    expect(tokenMatches(undefined, TOKEN)).toBe(false);
  });

  it('refuses to listen off loopback without a token', async () => {
    const { make } = logger();
    hub = new Hub({
      configText: 'site: { id: home }\nhttp: { port: 0 }\n',
      logger: make([]),
      override: (c) => {
        c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-http-'));
        c.http.host = '0.0.0.0'; // bypasses the config check on purpose: the server must refuse by itself
      },
    });
    await expect(hub.start()).rejects.toThrow(/not loopback.*no http.token.*refusing to start/);
  });

  it('keeps configured secrets out of the log', async () => {
    const { lines, make } = logger();
    const log = make([TOKEN, 'cp-password-42']);
    log.info({ config: { http: { token: TOKEN } }, note: `token is ${TOKEN}`, charger: { password: 'cp-password-42' } }, 'loaded');
    log.info({ headers: { authorization: `Bearer ${TOKEN}` } }, 'request');
    const text = lines.join('');
    expect(text).toContain('loaded');
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('cp-password-42');
    expect(text).toContain('[Redacted]');
  });

  it('counts JSON nesting as the body streams in, whatever the chunks, and ignores brackets inside strings', async () => {
    const depthOk = async (chunks: string[], max: number) => {
      const out: Buffer[] = [];
      try {
        for await (const c of Readable.from(chunks.map((x) => Buffer.from(x))).pipe(new JsonDepthGuard(max))) out.push(c as Buffer);
      } catch (err) {
        expect(String(err)).toContain(`deeper than ${max} levels`);
        return false;
      }
      expect(Buffer.concat(out).toString()).toBe(chunks.join(''));
      return true;
    };
    const texts: [string, number, boolean][] = [
      ['[[[]]]', 3, true],
      ['[[[[]]]]', 3, false],
      ['{"a":{"b":[1,{"c":2}]}}', 4, true],
      ['{"a":{"b":[1,{"c":[]}]}}', 4, false],
      ['{"s":"[[[[[[\\"[[[[","t":["]]]]"]}', 2, true],
      ['{"s":"\\\\","t":[[[1]]]}', 3, false],
      ['["é[", {"ü": [[]]}]', 4, true],
    ];
    for (const [text, max, ok] of texts) {
      expect(await depthOk([text], max), text).toBe(ok);
      // split at every byte: an escape or a quote across two chunks changes nothing
      for (let i = 1; i < text.length; i++) expect(await depthOk([text.slice(0, i), text.slice(i)], max), `${text} split at ${i}`).toBe(ok);
    }
  });

  it('accepts IP addresses, localhost and the hub’s names as Host, nothing else', () => {
    const names = hubNames({}, 'homeserver');
    expect([...names]).toEqual(['homeserver', 'homeserver.local']);
    for (const host of ['127.0.0.1', '127.0.0.1:8080', '192.168.1.20', '[::1]:8080', '[fe80::1]', 'localhost', 'LocalHost:80', 'hub.localhost', 'homeserver', 'HOMESERVER.local:8080', 'homeserver.']) {
      expect(hostAllowed(host, names), host).toBe(true);
    }
    for (const host of ['evil.example.com', 'homeserver.evil.com', 'localhost.evil.com', '2130706433', '127.1', '[::1', '::1', 'homeserver:', 'homeserver:8080:1', '', 'a b']) {
      expect(hostAllowed(host, names), host).toBe(false);
    }
    expect([...hubNames({ allowed_hosts: ['Hub.Example.com.'] }, 'homeserver')]).toEqual(['hub.example.com']);
  });

  it('locates bad trusted_proxies entries and a header timeout longer than the request timeout', () => {
    const base = { ...HTTP_DEFAULTS, trusted_proxies: ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8', 'proxy.lan', '10.0.0.0/33'] };
    expect(httpConfigProblems(base)).toEqual([{ path: ['http', 'trusted_proxies', 4], message: expect.stringContaining('"proxy.lan" is not an IP address or CIDR block') }]);
    expect(httpConfigProblems({ ...HTTP_DEFAULTS, trusted_proxies: ['10.0.0.0/33'] })[0].path).toEqual(['http', 'trusted_proxies', 0]);
    expect(httpConfigProblems({ ...HTTP_DEFAULTS, headers_timeout_ms: 60_000 })).toEqual([{ path: ['http', 'headers_timeout_ms'], message: expect.stringContaining('request_timeout_ms (10000)') }]);
  });
});
