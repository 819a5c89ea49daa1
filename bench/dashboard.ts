import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAssets } from '../plugins/dashboard/assets.js';
import { demoConfig } from '../src/cli.js';
import { createLogger } from '../src/core/logging.js';
import { Hub } from '../src/core/host.js';
import { fmtMs, median, timeIt, type BenchSection } from './types.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STREAMS = 32;

/** Everything the page loads, and what the page asks of the hub: bytes, serving time, event fan-out, first render. */
export async function run(): Promise<BenchSection> {
  const assets = [...loadAssets().values()].filter((a) => a.path !== '/');
  const raw = assets.reduce((n, a) => n + a.body.length, 0);
  const gz = assets.reduce((n, a) => n + (a.gzip()?.length ?? a.body.length), 0);

  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bench-dashboard-'));
  const hub = new Hub({
    configFile: demoConfig,
    logger: createLogger({ level: 'silent' }),
    override: (c) => {
      c.http.port = 0;
      c.storage.dir = dir;
      if (c.connections.ocpp) c.connections.ocpp.port = 0;
    },
  });
  await hub.start();
  const rows: BenchSection['rows'] = [];
  const notes: string[] = [];
  try {
    rows.push({ name: `page weight: ${assets.length} files (HTML, CSS, ES modules, uPlot)`, value: `${(gz / 1024).toFixed(1)} kB gzipped (${(raw / 1024).toFixed(1)} kB raw)`, target: '< 100 kB gzipped', ok: gz < 100 * 1024 });

    const page = await timeIt(async () => (await fetch(`${hub.url}/`, { headers: { 'accept-encoding': 'gzip' } })).arrayBuffer(), 200, 20);
    rows.push({ name: 'GET / over loopback HTTP (median of 200)', value: fmtMs(median(page)), target: '< 5 ms', ok: median(page) < 5 });
    const all = await timeIt(() => Promise.all(assets.map(async (a) => (await fetch(`${hub.url}${a.path}`, { headers: { 'accept-encoding': 'gzip' } })).arrayBuffer())), 50, 5);
    rows.push({ name: `all ${assets.length} files in parallel (median of 50)`, value: fmtMs(median(all)), target: '< 50 ms', ok: median(all) < 50 });
    const info = await timeIt(async () => (await fetch(`${hub.url}/api/v1/dashboard`)).json(), 200, 20);
    rows.push({ name: 'GET /api/v1/dashboard (median of 200)', value: fmtMs(median(info)), target: '< 5 ms', ok: median(info) < 5 });

    // one plan event to 32 open streams, on a hub with nothing else to do: the feed's own cost
    const bare = new Hub({ configText: 'site: { id: bench }\nhttp: { port: 0 }\n', logger: createLogger({ level: 'silent' }), override: (c) => void (c.storage.dir = join(dir, 'bare')) });
    await bare.start();
    try {
      const streams = await Promise.all(Array.from({ length: STREAMS }, () => openStream(`${bare.url}/api/v1/events`)));
      await Promise.all(streams.map((s) => s.next('hello')));
      const fanout: number[] = [];
      for (let i = 0; i < 60; i++) {
        const t0 = process.hrtime.bigint();
        const arrived = Promise.all(streams.map((s) => s.next('plan')));
        bare.bus.emit('plan.updated', { planId: `bench-${i}`, createdAt: Date.now() });
        await arrived;
        if (i >= 10) fanout.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      streams.forEach((s) => s.close());
      rows.push({ name: `plan event to ${STREAMS} open event streams, bus to every client's parser (median of 50, hub otherwise idle)`, value: fmtMs(median(fanout)), target: '< 20 ms', ok: median(fanout) < 20 });
    } finally {
      await bare.stop();
    }

    if (existsSync(CHROMIUM)) {
      const { chromium } = await import('playwright-core');
      const userDataDir = mkdtempSync(join(tmpdir(), 'homeflex-bench-chromium-'));
      const context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const tab = await context.newPage();
      const loads: number[] = [];
      for (let i = 0; i < 8; i++) {
        const t0 = Date.now();
        // a new query string each time: a full page load, with the browser's cache warm (304s)
        await tab.goto(`${hub.url}/?load=${i}#now`);
        await tab.locator('.device .power').first().waitFor();
        if (i >= 2) loads.push(Date.now() - t0);
      }
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
      rows.push({ name: 'Chromium: navigation to the Now view drawn with every device (median of 6, warm cache)', value: `${median(loads)} ms`, target: '< 1000 ms', ok: median(loads) < 1000 });
    } else {
      notes.push(`No browser at ${CHROMIUM} (set CHROMIUM_PATH): the first-render row was not measured.`);
    }
    notes.push('The hub is the demo on simulated devices, in-process, on loopback; the browser is headless Chromium on the same machine.');
  } finally {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { title: 'Dashboard (issue 9): page weight, serving, live events, first render', rows, notes };
}

/** A minimal event-stream reader: `next(name)` resolves when an event of that name arrives. */
async function openStream(url: string) {
  const ac = new AbortController();
  const res = await fetch(url, { signal: ac.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const seen: string[] = [];
  const pump = async (name: string) => {
    for (;;) {
      const i = seen.indexOf(name);
      if (i >= 0) return void seen.splice(0, i + 1);
      const { value, done } = await reader.read();
      if (done) throw new Error('event stream ended');
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const ev = /^event: (.*)$/m.exec(buffer.slice(0, end))?.[1];
        buffer = buffer.slice(end + 2);
        if (ev) seen.push(ev);
      }
    }
  };
  return { next: pump, close: () => ac.abort() };
}
