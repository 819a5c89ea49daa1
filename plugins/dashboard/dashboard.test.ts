import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { defineAdapter, type Device } from '../../src/api/index.js';
import { HubBus } from '../../src/core/bus.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { DeviceRegistry } from '../../src/core/registry.js';
import type { HubServices } from '../../src/core/services.js';
import { deviceView } from '../../src/core/routes.js';
import { LiveFeed } from './live.js';

const TOKEN = 'dashboard-test-token-0123456789';
const quiet = { fatal() {}, error() {}, warn() {}, info() {}, debug() {}, trace() {}, child() { return quiet; } } as unknown as HubServices['log'];

/** A device whose name is markup, as a hostile or careless configuration could give it. */
const probe = defineAdapter({
  id: 'probe',
  description: 'a device with a password in its configuration',
  configSchema: { properties: { password: { type: 'string' } } },
  create: (_ctx, c) => ({ devices: [{ id: c.id, name: c.name ?? c.id, adapter: 'probe', caps: {}, available: true } satisfies Device], start: async () => undefined, stop: async () => undefined }),
});
const catalog = { ...builtinCatalog, adapters: [...builtinCatalog.adapters, probe] };

let hub: Hub | undefined;
const servers: Server[] = [];
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function startHub(extra = '', devices = '  - { id: load, adapter: sim_load, name: House }\n') {
  hub = new Hub({
    configText: `site: { id: home, name: Test home, timezone: Europe/Berlin, currency: EUR }\nhttp: { port: 0${extra} }\ndevices:\n${devices}`,
    catalog,
    clock: new ManualClock('2026-06-15T10:00:00Z'),
    logger: quiet,
    override: (c) => void (c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-dashboard-'))),
  });
  await hub.start();
  return hub;
}

type Sse = { event: string; data: unknown };

/** An open text/event-stream: `until` reads on until the events seen so far satisfy it. */
async function openEvents(url: string, init: RequestInit = {}) {
  const ac = new AbortController();
  const res = await fetch(url, { ...init, signal: ac.signal });
  const events: Sse[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    res,
    events,
    async until(enough: (events: Sse[]) => boolean) {
      while (!enough(events)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended after ${events.map((e) => e.event).join(', ')}`);
        buffer += decoder.decode(value, { stream: true });
        let i;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
      return events;
    },
    close: () => ac.abort(),
  };
}

const saw = (name: string) => (events: Sse[]) => events.some((e) => e.event === name);

describe('dashboard: the page', () => {
  it('serves the page at / with a strict content security policy, revalidation and gzip', async () => {
    const h = await startHub();
    const page = await fetch(`${h.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/js/main.js">');
    // every file the page names is served
    for (const ref of html.matchAll(/(?:src|href)="(\/[^"#]*)"/g)) expect((await fetch(`${h.url}${ref[1]}`)).status, ref[1]).toBe(200);

    // every ES module is preloaded from the page, so none waits for the one importing it
    const preloaded = [...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) => m[1]).sort();
    const modules = [...(await import('./assets.js')).loadAssets().keys()].filter((p) => p.startsWith('/js/')).sort();
    expect(preloaded).toEqual(modules);

    const etag = page.headers.get('etag')!;
    expect((await fetch(`${h.url}/`, { headers: { 'if-none-match': etag } })).status).toBe(304);

    const raw = await h.http!.inject({ url: '/vendor/uPlot.iife.min.js', headers: { 'accept-encoding': 'gzip' } });
    expect(raw.headers['content-encoding']).toBe('gzip');
    expect(raw.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const js = gunzipSync(raw.rawPayload).toString();
    expect(js).toContain('var uPlot=function()');
  });

  it('never turns text into markup: no innerHTML or its relatives anywhere in the page’s code', async () => {
    const { loadAssets } = await import('./assets.js');
    const code = [...loadAssets().values()].filter((a) => a.path.startsWith('/js/'));
    expect(code.length).toBeGreaterThan(5);
    for (const a of code) expect(a.body.toString(), a.path).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
  });

  it('leaves unknown paths to the API’s JSON 404, at the root and under /api/v1', async () => {
    const h = await startHub();
    for (const path of ['/nope.html', '/js/../../package.json', '/api/v1/nope']) {
      const r = await fetch(`${h.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(await r.json()).toMatchObject({ object: 'error', code: 'not_found' });
    }
  });

  it('describes the site and each device’s YAML with secrets redacted', async () => {
    const h = await startHub('', '  - { id: meter1, adapter: probe, name: "Garage <b>meter</b>", password: hunter2-secret }\n');
    const info = (await (await fetch(`${h.url}/api/v1/dashboard`)).json()) as { devices: { id: string; yaml: string }[] };
    expect(info).toMatchObject({ object: 'dashboard', site: { id: 'home', name: 'Test home', timezone: 'Europe/Berlin', currency: 'EUR' }, time: '2026-06-15T10:00:00.000Z', token_required_for_writes: false });
    const yaml = info.devices.find((d) => d.id === 'meter1')!.yaml;
    expect(yaml).toContain('name: Garage <b>meter</b>');
    expect(yaml).toContain('password: "[Redacted]"');
    expect(JSON.stringify(info)).not.toContain('hunter2-secret');
  });

  it('serves the page to anyone but the data only with the token off this machine', async () => {
    const h = await startHub(`, token: "${TOKEN}"`);
    const remote = { remoteAddress: '192.0.2.77' };
    expect((await h.http!.inject({ url: '/', ...remote })).statusCode).toBe(200);
    for (const url of ['/api/v1/dashboard', '/api/v1/events']) {
      const denied = await h.http!.inject({ url, ...remote });
      expect(denied.statusCode, url).toBe(401);
      expect(denied.json()).toMatchObject({ code: 'unauthorized' });
    }
    const allowed = await h.http!.inject({ url: '/api/v1/dashboard', headers: { authorization: `Bearer ${TOKEN}` }, ...remote });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.json().token_required_for_writes).toBe(true);
  });
});

describe('dashboard: live events', () => {
  it('streams hello, device changes, plans and tariffs from the bus, and the hub stops with streams open', async () => {
    const h = await startHub();
    const stream = await openEvents(`${h.url}/api/v1/events`);
    expect(stream.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await stream.until(saw('hello'));
    h.bus.emit('device.state', { deviceId: 'load', available: false, error: 'no answer' });
    h.bus.emit('plan.updated', { planId: 'plan_1', createdAt: Date.parse('2026-06-15T10:00:00Z') });
    h.bus.emit('tariff.updated', { direction: 'IMPORT', series: [], source: 'api' });
    const events = await stream.until(saw('tariff'));
    expect(events.map((e) => e.event)).toEqual(['hello', 'device', 'plan', 'tariff']);
    expect(events[0].data).toEqual({ time: '2026-06-15T10:00:00.000Z', site_id: 'home' });
    expect(events[1].data).toMatchObject({ id: 'load', object: 'device', name: 'House', capabilities: ['meter'] });
    expect(events[2].data).toEqual({ plan_id: 'plan_1', created_at: '2026-06-15T10:00:00.000Z' });
    expect(events[3].data).toEqual({ direction: 'IMPORT', source: 'api' });

    // the stream is still open: stopping the hub must end it rather than wait for it
    await h.stop();
    hub = undefined;
    await expect(stream.until(() => false)).rejects.toThrow(/stream ended/);
  });
});

describe('LiveFeed', () => {
  function services() {
    const bus = new HubBus();
    const registry = new DeviceRegistry();
    const clock = new ManualClock('2026-06-15T10:00:00Z');
    registry.add({ id: 'pv', name: 'Roof', adapter: 'sim_pv', caps: {}, available: true });
    const services = { bus, registry, clock, site: { id: 'home', name: 'Home', timezone: 'UTC', currency: 'EUR' }, adapterStatus: new Map(), log: quiet } as unknown as HubServices;
    // the feed reads devices as the API shows them (the plugin hands it HubView.devices.json)
    return Object.assign(services, { deviceJson: (id: string) => (registry.get(id) ? deviceView(registry.get(id)!, services) : undefined) });
  }
  async function serve(feed: LiveFeed) {
    const server = createServer((_req, res) => feed.open(res));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  it('sends meter readings coalesced: the latest per device and channel, in one event', async () => {
    const hubServices = services();
    const feed = new LiveFeed(hubServices, { meterIntervalMs: 40 });
    feed.start();
    const url = await serve(feed);
    const stream = await openEvents(url);
    await stream.until(saw('hello'));
    for (const powerW of [-1000, -1500, -2000]) hubServices.bus.emit('meter.reading', { deviceId: 'pv', reading: { time: Date.parse('2026-06-15T10:00:00Z'), powerW, exportWh: 10 } });
    hubServices.bus.emit('meter.reading', { deviceId: 'pv', reading: { time: Date.parse('2026-06-15T10:00:00Z'), powerW: 30, channel: 'grid' } });
    const events = await stream.until(saw('meter'));
    stream.close();
    const meter = events.find((e) => e.event === 'meter')!.data as { data: { device_id: string; channel: string; power_w: number }[] };
    expect(meter.data).toEqual([
      { device_id: 'pv', channel: 'device', time: '2026-06-15T10:00:00.000Z', power_w: -2000, import_wh: null, export_wh: 10, session_reference_id: null },
      { device_id: 'pv', channel: 'grid', time: '2026-06-15T10:00:00.000Z', power_w: 30, import_wh: null, export_wh: null, session_reference_id: null, site_meter: true },
    ]);
    feed.stop();
  });

  it('sends a device once per burst of changes, as it is afterwards, and forgets a client that left', async () => {
    const hubServices = services();
    const feed = new LiveFeed(hubServices);
    feed.start();
    const url = await serve(feed);
    const stream = await openEvents(url);
    await stream.until(saw('hello'));
    const device = hubServices.registry.get('pv')!;
    device.available = false;
    hubServices.bus.emit('device.state', { deviceId: 'pv', available: false });
    device.error = 'inverter offline';
    hubServices.bus.emit('device.state', { deviceId: 'pv', available: false, error: 'inverter offline' });
    await new Promise((r) => setTimeout(r, 0));
    hubServices.bus.emit('target.changed', { deviceId: 'pv' });
    const events = await stream.until(saw('target'));
    stream.close();
    expect(events.map((e) => e.event)).toEqual(['hello', 'device', 'target']);
    expect(events[1].data).toMatchObject({ id: 'pv', available: false, error: 'inverter offline' });
    for (let i = 0; i < 100 && feed.clientCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(feed.clientCount).toBe(0);
    feed.stop();
  });

  it('refuses more streams than it allows with a clear error', async () => {
    const h = await startHub();
    const feeds = Array.from({ length: 32 }, () => new AbortController());
    const opened = await Promise.all(feeds.map((ac) => fetch(`${h.url}/api/v1/events`, { signal: ac.signal })));
    expect(opened.every((r) => r.status === 200)).toBe(true);
    const refused = await fetch(`${h.url}/api/v1/events`);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ object: 'error', type: 'api_error', code: 'too_many_streams' });
    feeds.forEach((ac) => ac.abort());
  });
});

describe('dashboard: the month savings card (issue 15.6)', () => {
  it('says what was saved against no battery and how much of it beat the battery’s own mode', async () => {
    // @ts-expect-error the page's modules are plain JavaScript
    const { monthSavingsText } = (await import('./public/js/views/costs.js')) as { monthSavingsText: (s: object, money: (v: number) => string) => string };
    const money = (v: number) => `${v.toFixed(2)} €`;
    expect(monthSavingsText({ savings_vs_none: 23.4, savings_vs_self_consumption: 6.1 }, money)).toBe("This month: 23.40 € saved, of which 6.10 € more than the battery's own mode");
    expect(monthSavingsText({ savings_vs_none: 0.52, savings_vs_self_consumption: -0.64 }, money)).toBe("This month: 0.52 € saved, 0.64 € less than the battery's own mode would have saved");
    expect(monthSavingsText({ savings_vs_none: -1.5, savings_vs_self_consumption: -2 }, money)).toBe("This month: 1.50 € more than without a battery, 2.00 € less than the battery's own mode would have saved");
  });
});

describe('dashboard: power flows from a grid meter (issue 18)', () => {
  type Flows = { gridW: number; homeW: number; pvW: number; gridMeasuredBy: string[]; gridPhasesW?: number[] };
  const load = async () =>
    // @ts-expect-error the page's modules are plain JavaScript
    (await import('./public/js/model.js')) as { powerFlows: (d: object[]) => Flows | undefined; gridSourceText: (f: Flows, p: (w: number) => string) => string };
  const roof = { id: 'roof', name: 'Roof', capabilities: ['meter', 'pv'], state: { meter: { device: { power_w: -3000 } } } };
  const heater = { id: 'heater', name: 'Heater', capabilities: ['meter', 'switch'], state: { meter: { device: { power_w: 2000 } } } };
  const p1 = { id: 'p1', name: 'P1 meter', capabilities: ['meter'], state: { meter: { grid: { power_w: 400, phases_w: [1200, -500, -300] } } } };
  const kw = (w: number) => `${(w / 1000).toFixed(1)} kW`;

  it('shows the measured grid power and the house as grid + PV, not the sum of the device meters', async () => {
    const { powerFlows, gridSourceText } = await load();
    const measured = powerFlows([roof, heater, p1])!;
    // the device meters alone say −1000 W (exporting); the P1 meter measures +400 W: the house has 1.4 kW nobody meters
    expect(measured.gridW).toBe(400);
    expect(measured.homeW).toBe(3400);
    expect(gridSourceText(measured, kw)).toBe('Grid measured by P1 meter · L1 1.2 kW · L2 -0.5 kW · L3 -0.3 kW');
    const modelled = powerFlows([roof, heater])!;
    expect(modelled.gridW).toBe(-1000);
    expect(gridSourceText(modelled, kw)).toBe('Grid estimated from the device meters (no grid meter)');
  });
});

describe('dashboard: one grid connection', () => {
  it('a grid channel that is not the site meter (site_meter: false) is left out of the grid figure', async () => {
    // @ts-expect-error the page's modules are plain JavaScript
    const { powerFlows } = (await import('./public/js/model.js')) as { powerFlows: (d: object[]) => { gridW: number; gridMeasuredBy: string[] } };
    const p1 = { id: 'p1', name: 'P1', capabilities: ['meter'], state: { meter: { grid: { power_w: 400, site_meter: true } } } };
    const inverter = { id: 'inv', name: 'Garage inverter', capabilities: ['meter', 'storage'], state: { meter: { battery: { power_w: 0 }, grid: { power_w: 2500, site_meter: false } } } };
    const f = powerFlows([p1, inverter]);
    expect(f.gridW).toBe(400);
    expect(f.gridMeasuredBy).toEqual(['P1']);
  });
});
