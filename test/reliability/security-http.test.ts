import { connect } from 'node:net';
import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from '../peers/hub.js';
import { routesOf } from './helpers.js';

/**
 * The HTTP listener as an intruder on the home network meets it. A LAN client is stood in for by a
 * connection from 127.0.0.3: the hub counts only 127.0.0.1 and ::1 (the source address every local
 * client gets by default) as this machine, so any other source address takes the LAN client's path.
 */

const TOKEN = 'tok-4b1d2e3f5a6c7d8e-http';
const LAN = '127.0.0.3';
const NOW = Date.now();
const iso = (h: number) => new Date(NOW + h * 3_600_000).toISOString();
const SITE = (http: string) => `
site: { id: home, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: 17000, max_export_w: 7000 } }
http: { ${http} }
planner: { horizon_hours: 6 }
tariffs:
  import: { type: fixed, rate: 0.30 }
  export: { type: fixed, rate: 0.08 }
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 60 }
  - { id: ev, adapter: sim_ev, arrive: "00:00", leave: "23:59", tick_s: 60, target: { energy_wh: 5000, leave_time: "18:00" } }
`;

interface RawAnswer {
  status: number;
  headers: string;
  body: string;
}

/** One HTTP/1.1 request written byte for byte on a TCP socket (odd targets included), from `from`. */
function raw(port: number, method: string, target: string, opts: { from?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawAnswer> {
  const headers: Record<string, string> = { host: `127.0.0.1:${port}`, connection: 'close', ...(opts.headers ?? {}) };
  if (opts.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(opts.body));
  }
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: opts.from });
    let data = '';
    let settle: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(settle);
      const split = data.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), headers: data.slice(0, split), body: split < 0 ? '' : data.slice(split + 4) });
      socket.destroy();
    };
    socket.setTimeout(20_000, () => reject(new Error(`${method} ${target}: no answer in 20 s`)));
    socket.on('data', (b) => {
      data += b;
      // an event stream never ends: its headers are the answer
      if (data.includes('\r\n\r\n')) settle ??= setTimeout(done, 300);
    });
    socket.on('close', done);
    socket.on('error', (err) => (data ? done() : reject(err)));
    socket.write(head);
    if (opts.body !== undefined) socket.write(opts.body);
  });
}

const portOf = (h: TestHub) => Number(new URL(h.hub.url).port);

/** A path of the route with its parameters filled in. */
const sample = (url: string) => url.replace(':location_id', 'home').replace(':id', 'battery').replace(':ref', 'ev-1');

/** The same path as an intruder would write it to slip past a prefix check. */
function oddForms(path: string, port: number): string[] {
  const first = path.search(/[a-z]/i);
  const hex = (c: string) => '%' + c.charCodeAt(0).toString(16);
  const lastSlash = path.lastIndexOf('/');
  return [
    path.slice(0, first) + hex(path[first]) + path.slice(first + 1), // /%61pi/v1/…
    path.slice(0, lastSlash + 1) + hex(path[lastSlash + 1]).toUpperCase() + path.slice(lastSlash + 2),
    path.slice(0, lastSlash) + '%2F' + path.slice(lastSlash + 1),
    path.slice(0, lastSlash) + '%2f' + path.slice(lastSlash + 1),
    '/' + path, // //api/v1/…
    path.replace('/', '/./'),
    path.slice(0, lastSlash) + '/./' + path.slice(lastSlash + 1),
    path.slice(0, lastSlash) + '/x/..' + path.slice(lastSlash),
    path.toUpperCase(),
    path.replace(/^\/\w+/, (s) => s[0] + s[1].toUpperCase() + s.slice(2)),
    path + ';x',
    path.replace(/^(\/[^/]+)/, '$1;x'),
    path + '/',
    path + '?',
    path + '#x',
    `http://127.0.0.1:${port}${path}`, // absolute-form request target
    `http://localhost:${port}${path.slice(0, first)}${hex(path[first])}${path.slice(first + 1)}`,
  ];
}

describe('HTTP: who may call what', () => {
  let h: TestHub;
  let port: number;
  let routes: { method: string; url: string }[];
  beforeAll(async () => {
    h = await startHub(SITE(`token: "${TOKEN}"`));
    port = portOf(h);
    routes = routesOf(h.hub.http!.printRoutes({ commonPrefix: false }));
  });
  afterAll(() => h?.stop());
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('answers a LAN client without the token 401 on every route but the dashboard’s own files, however the path is written', async () => {
    expect(routes.length).toBeGreaterThan(25);
    const isPageFile = (url: string) => !url.startsWith('/api/') && !url.includes(':');
    const apiRoutes = routes.filter((r) => !isPageFile(r.url));
    expect(apiRoutes.map((r) => `${r.method} ${r.url}`)).toContain('PUT /api/v1/limits/:id');
    const leaks: string[] = [];
    let tried = 0;
    for (const r of apiRoutes) {
      const path = sample(r.url);
      // the route is real: with the token it gets past authorisation
      const withToken = await raw(port, r.method, path, { from: LAN, headers: auth, body: r.method === 'GET' || r.method === 'DELETE' ? undefined : '{}' });
      expect(withToken.status, `${r.method} ${path} with the token`).not.toBe(401);
      for (const target of [path, ...oddForms(path, port)]) {
        const a = await raw(port, r.method, target, { from: LAN, body: r.method === 'GET' || r.method === 'DELETE' ? undefined : '{}' });
        tried++;
        const badUrl = a.status === 400 && a.body.includes('"bad_url"');
        if (a.status !== 401 && !badUrl) leaks.push(`${r.method} ${target} -> ${a.status} ${a.body.slice(0, 80)}`);
      }
    }
    expect(leaks, `answered without the token:\n${leaks.join('\n')}`).toEqual([]);
    console.log(`${apiRoutes.length} API routes, ${tried} requests without the token from ${LAN}: all 401`);
    expect(tried).toBeGreaterThan(400);
    // the page's own files hold no data: they are served to anyone
    for (const r of routes.filter((x) => isPageFile(x.url))) expect((await raw(port, 'GET', r.url, { from: LAN })).status, r.url).toBe(200);
  });

  it('stores nothing that a refused write carried: the battery is not commanded and no limit persists', async () => {
    const limits = JSON.stringify({ schedule_import: [{ timestamp: iso(0), total_power_W: 0 }], schedule_export: [] });
    for (const target of ['/%61pi/v1/limits/home', `http://127.0.0.1:${port}/api/v1/limits/home`, '/api/v1/limits/home;x', '/api/v1/limits/%68ome']) {
      expect((await raw(port, 'PUT', target, { from: LAN, body: limits })).status, target).toBe(401);
    }
    expect((await raw(port, 'PUT', '/%61pi/v1/devices/battery/pause', { from: LAN, body: '{"paused":true}' })).status).toBe(401);
    const stored = await raw(port, 'GET', '/api/v1/limits', { headers: auth });
    expect(JSON.parse(stored.body)).toMatchObject({ data: [] });
    expect(h.hub.services.state.data.limits).toEqual({});
    const control = JSON.parse((await raw(port, 'GET', '/api/v1/devices/battery/control', { headers: auth })).body) as Record<string, unknown>;
    expect(JSON.stringify(control)).not.toMatch(/"paused":true/);
    // the same write with the token is taken
    expect((await raw(port, 'PUT', '/api/v1/limits/home', { from: LAN, headers: auth, body: limits })).status).toBe(200);
    expect(Object.keys(h.hub.services.state.data.limits)).toEqual(['home']);
    expect((await raw(port, 'DELETE', '/api/v1/limits/home', { headers: auth })).status).toBe(200);
  });

  it('lets this machine read without the token, cost queries included, but not write', async () => {
    const costs = await raw(port, 'POST', '/api/v1/costs/interval/home?aggregation=DAY', { body: JSON.stringify({ start_time: iso(-48), end_time: iso(0) }) });
    expect(costs.status, costs.body).toBe(200);
    expect((await raw(port, 'POST', '/api/v1/costs/session/ev-1', { body: '{}' })).status).not.toBe(401);
    expect((await raw(port, 'GET', '/api/v1/devices')).status).toBe(200);
    expect((await raw(port, 'PUT', '/api/v1/devices/battery/pause', { body: '{"paused":true}' })).status).toBe(401);
  });

  it('never takes a forwarded request for this machine', async () => {
    const forwarded: Record<string, string>[] = [{ 'x-forwarded-for': '192.0.2.9' }, { forwarded: 'for=192.0.2.9;proto=https' }, { 'x-real-ip': '192.0.2.9' }, { 'x-forwarded-host': 'hub.example.com' }, { via: '1.1 proxy' }];
    for (const header of forwarded) {
      const a = await raw(port, 'GET', '/api/v1/devices', { headers: header });
      expect(a.status, JSON.stringify(header)).toBe(401);
      expect((await raw(port, 'GET', '/api/v1/devices', { headers: { ...header, ...auth } })).status).toBe(200);
    }
  });

  it('refuses a JSON body nested deeper than the limit before parsing it, and 4 × 8 MB of "[[[…" do not stall the hub', async () => {
    const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const deep = await raw(port, 'POST', '/api/v1/costs/interval/home', { headers: auth, body: `{"start_time":${nested(64)}}` });
    expect(deep.status).toBe(400);
    expect(JSON.parse(deep.body)).toMatchObject({ object: 'error', code: 'body_too_deep', message: expect.stringContaining('64') });
    const shallow = await raw(port, 'POST', '/api/v1/costs/interval/home', { headers: auth, body: `{"start_time":${nested(62)}}` });
    expect(JSON.parse(shallow.body).code).not.toBe('body_too_deep');
    // brackets inside strings are text, not nesting
    const text = await raw(port, 'POST', '/api/v1/costs/interval/home', { headers: auth, body: JSON.stringify({ start_time: nested(500), end_time: '"\\[' }) });
    expect(JSON.parse(text.body).code).not.toBe('body_too_deep');

    const bomb = Buffer.from(nested(4_000_000)); // 8 MB, under the 8 MiB body limit
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const rss0 = process.memoryUsage().rss;
    const t0 = Date.now();
    const answers = await Promise.all([0, 1, 2, 3].map(() => raw(port, 'POST', '/api/v1/costs/interval/home', { headers: auth, body: bomb })));
    const took = Date.now() - t0;
    lag.disable();
    const rssGrowthMb = (process.memoryUsage().rss - rss0) / 1e6;
    console.log(`4 × 8 MB nested JSON: answered in ${took} ms, longest event-loop stall ${(lag.max / 1e6).toFixed(0)} ms, RSS +${rssGrowthMb.toFixed(0)} MB`);
    for (const a of answers) expect(JSON.parse(a.body)).toMatchObject({ code: 'body_too_deep' });
    // before: no answer within 20 s; the bound leaves room for a shared, loaded machine
    expect(lag.max / 1e6).toBeLessThan(2000);
    expect(took).toBeLessThan(10_000);
    expect((await raw(port, 'GET', '/api/v1/health')).status).toBe(200);
  });
});

describe('HTTP: DNS rebinding and foreign pages', () => {
  let h: TestHub;
  let port: number;
  beforeAll(async () => {
    h = await startHub(SITE('host: 127.0.0.1'));
    port = portOf(h);
  });
  afterAll(() => h?.stop());
  const pause = (opts: { headers?: Record<string, string>; target?: string } = {}) => raw(port, 'PUT', opts.target ?? '/api/v1/devices/battery/pause', { headers: opts.headers, body: '{"paused":false}' });

  it('answers 421 to a Host that is not one of the hub’s names, and acts on nothing', async () => {
    let paused = 0;
    const off = h.hub.bus.on('target.changed', () => paused++);
    for (const host of ['evil.example.com', `evil.example.com:${port}`, 'localhost.evil.example.com', '127.0.0.1.nip.io', 'EVIL.example.com.', `${hostname()}.evil.example.com`, '2130706433', '']) {
      const a = await pause({ headers: { host } });
      expect(a.status, `Host: ${host}`).toBe(421);
      expect(JSON.parse(a.body)).toMatchObject({ object: 'error', code: 'misdirected_request' });
      expect((await raw(port, 'GET', '/api/v1/devices', { headers: { host } })).status).toBe(421);
    }
    // an absolute-form target names the host too
    expect((await pause({ target: `http://evil.example.com/api/v1/devices/battery/pause` })).status).toBe(421);
    expect(paused).toBe(0);
    off();
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `hub.localhost:${port}`, `[::1]:${port}`, '192.168.1.20:8080', hostname(), `${hostname()}.local:${port}`, `${hostname().toUpperCase()}.`]) {
      expect((await pause({ headers: { host } })).status, `Host: ${host}`).toBe(200);
    }
  });

  it('refuses a write from a page of another origin (403) but takes the hub’s own page and programs without Origin', async () => {
    for (const origin of ['http://evil.example.com', `http://127.0.0.1:${port + 1}`, `http://localhost:${port}`, 'null', 'file://', `ftp://127.0.0.1:${port}`]) {
      const a = await pause({ headers: { origin } });
      expect(a.status, `Origin: ${origin}`).toBe(403);
      expect(JSON.parse(a.body)).toMatchObject({ object: 'error', code: 'foreign_origin' });
    }
    expect((await pause({ headers: { origin: `http://127.0.0.1:${port}` } })).status).toBe(200);
    expect((await pause({ headers: { origin: `http://localhost:${port}`, host: `localhost:${port}` } })).status).toBe(200);
    expect((await pause()).status).toBe(200);
  });

  it('takes the names in http.allowed_hosts instead of the default ones, and a reverse proxy’s Origin', async () => {
    const other = await startHub(SITE('allowed_hosts: [hub.example.com]'));
    try {
      const p = portOf(other);
      const put = (headers: Record<string, string>) => raw(p, 'PUT', '/api/v1/devices/battery/pause', { headers, body: '{"paused":false}' });
      expect((await put({ host: 'hub.example.com' })).status).toBe(200);
      expect((await put({ host: 'HUB.EXAMPLE.COM.:443' })).status).toBe(200);
      expect((await put({ host: hostname() })).status).toBe(421);
      // nginx's default proxy_pass sends the upstream's address as Host; the page is on the public name
      expect((await put({ host: `127.0.0.1:${p}`, origin: 'https://hub.example.com' })).status).toBe(200);
      expect((await put({ host: `127.0.0.1:${p}`, origin: 'https://evil.example.com' })).status).toBe(403);
    } finally {
      await other.stop();
    }
  });

  it('treats everything from a configured http.trusted_proxies address as forwarded: the token is needed to read', async () => {
    const proxied = await startHub(SITE(`token: "${TOKEN}", trusted_proxies: [127.0.0.1, "10.0.0.0/8"]`));
    try {
      const p = portOf(proxied);
      expect((await raw(p, 'GET', '/api/v1/devices')).status).toBe(401);
      expect((await raw(p, 'GET', '/api/v1/devices', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
      expect((await raw(p, 'GET', '/')).status).toBe(200);
    } finally {
      await proxied.stop();
    }
  });
});
