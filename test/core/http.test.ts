import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Hub } from '../../src/core/host.js';
import { tokenMatches } from '../../src/core/http.js';
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
});
