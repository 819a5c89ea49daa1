import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { describeWithPeers } from '../../test/peers/system.js';

/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the demo
 * site on simulated devices, with a day of real DE-LU day-ahead prices imported through the API.
 * Screenshots of every view are kept in test-artifacts/dashboard/.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'dashboard');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">Evil & <b>bold</b>';
// 18:05 in Berlin: the car has just come home, the evening price peak is on
const START = '2025-10-14T16:05:00Z';

/** Household rates from the day-ahead price: (wholesale + 0.17 €/kWh of fees) + 19 % VAT. */
function importRates(days: string[]) {
  const data: { valid_from: string; valid_to: string; rate: number }[] = [];
  for (const day of days) {
    const body = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'tariffs', 'energy-charts', `${day}.json`), 'utf8')) as { unix_seconds: number[]; price: number[] };
    body.unix_seconds.forEach((t, i) => {
      const end = body.unix_seconds[i + 1] ?? t + 900;
      data.push({ valid_from: new Date(t * 1000).toISOString(), valid_to: new Date(end * 1000).toISOString(), rate: Math.round((body.price[i] / 1000 + 0.17) * 1.19 * 10000) / 10000 });
    });
  }
  return { currency_code: 'EUR', data };
}

/**
 * Two weeks of meter history as a site would send it: hourly grid import and export of the house
 * (an evening peak, PV export at midday) and the EV's overnight sessions, tagged with their ids.
 */
function meterHistory(siteId: string, until: number) {
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;
  const records: Record<string, unknown>[] = [];
  const from = Math.floor(until / DAY) * DAY - 14 * DAY;
  for (let t = from; t + HOUR <= until; t += HOUR) {
    const hour = (new Date(t).getUTCHours() + 2) % 24; // CEST
    const load = 350 + (hour >= 17 && hour <= 21 ? 900 : 0) + (hour >= 7 && hour <= 8 ? 500 : 0) + ((t / HOUR) % 5) * 40;
    const pv = hour >= 9 && hour <= 16 ? 2400 * Math.sin(((hour - 8.5) / 8.5) * Math.PI) * (0.6 + ((t / DAY) % 3) * 0.2) : 0;
    const net = load - pv;
    const slot = { location_id: siteId, units: 'WH', start_time: new Date(t).toISOString(), end_time: new Date(t + HOUR).toISOString() };
    records.push({ ...slot, direction: 'IMPORT', value: Math.max(0, Math.round(net)) });
    records.push({ ...slot, direction: 'EXPORT', value: Math.max(0, Math.round(-net)) });
  }
  // an EV session every other night, from 22:00 local for 6 h at 7 kW
  for (let day = 1, n = 1; day <= 13; day += 2, n++) {
    const start = from + day * DAY + 20 * HOUR;
    for (let h = 0; h < 6; h++) {
      records.push({ device_id: 'ev', units: 'WH', value: 7000, direction: 'IMPORT', session_reference_id: `history-${n}`, start_time: new Date(start + h * HOUR).toISOString(), end_time: new Date(start + (h + 1) * HOUR).toISOString() });
    }
  }
  return records;
}

/** The demo site, plus one device whose name is markup. */
function demoWithHostileDevice() {
  const config = parse(readFileSync(join(ROOT, 'config', 'demo.yaml'), 'utf8')) as { devices: Record<string, unknown>[] };
  config.devices.push({ id: 'hostile', adapter: 'sim_load', name: HOSTILE_NAME, annual_kwh: 300 });
  return stringify(config);
}

async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'homeflex-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    // far from the site's zone, so a time shown in the browser's zone by mistake is caught
    timezoneId: 'Pacific/Auckland',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Requests a test provokes to fail on purpose (a bad comfort band), by path: not counted as problems. */
const provoked = new Set<string>();

/** Every console error, uncaught exception and failed request of a page, to assert there are none. */
function watch(page: Page) {
  const problems: string[] = [];
  const meant = (url: string) => provoked.has(new URL(url).pathname);
  page.on('console', (m) => {
    if (m.type() === 'error' && !meant(m.location().url)) problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // the event stream is cut when the page navigates or closes; that is not a failure
    if (!r.url().endsWith('/api/v1/events')) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !meant(r.url())) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  return problems;
}

const TOKEN = 'e2e-dashboard-token-0123456789';

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

describeWithPeers(['chromium'], 'dashboard in a real browser', { timeout: 90_000 }, () => {
  let hub: Hub;
  let clock: ManualClock;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    clock = new ManualClock(START);
    hub = new Hub({
      configText: demoWithHostileDevice(),
      configFile: join(ROOT, 'config', 'demo.yaml'),
      clock,
      logger: createLogger({ level: 'silent' }),
      override: (c) => {
        c.http.port = 0;
        c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-e2e-'));
        // tests run side by side: every listener on a port chosen at run time
        if (c.connections.ocpp) c.connections.ocpp.port = 0;
      },
    });
    await hub.start();
    const put = await fetch(`${hub.url}/api/v1/tariffs/rates/${hub.site.id}?direction=IMPORT`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(importRates(['2025-10-14', '2025-10-15', '2025-10-16'])),
    });
    expect(put.status, await put.clone().text()).toBe(200);
    const meters = await fetch(`${hub.url}/api/v1/meters/interval`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(meterHistory(hub.site.id, Date.parse(START))) });
    const batch = (await meters.json()) as { records_accepted: number; failed_records: unknown[] };
    expect(batch.failed_records).toEqual([]);
    // a minute of simulated time so every device has reported
    await clock.advance(60_000);
    browser = await launchChromium();
    page = await browser.context.newPage();
    problems = watch(page);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  it('Now shows the prices, the power flows and each device with its state', async () => {
    await page.goto(`${hub.url}/#now`);
    await page.locator('.device[data-device="ev"] .power').waitFor();
    await expect.poll(() => page.locator('#live').getAttribute('data-status')).toBe('live');
    // the site's time (Europe/Berlin), not the browser's
    expect(await page.locator('#hub-time').textContent()).toBe('Tue 18:06');
    // the evening peak: import at the dear end of the day's range
    const importRate = await page.locator('.prices .stat').first().textContent();
    expect(importRate).toMatch(/Import€0\.\d{3}\/kWh/);
    expect(await page.locator('.prices .price-level .badge').textContent()).toMatch(/^(cheap|normal|dear)$/);
    expect(await page.locator('svg.flow .flow-node').count()).toBe(4);
    for (const id of ['ev', 'battery', 'pv', 'house', 'living-ac', 'dishwasher']) {
      expect(await page.locator(`.device[data-device="${id}"]`).count(), id).toBe(1);
    }
    expect(await page.locator('.device[data-device="ev"] .badge').first().textContent()).toMatch(/charging|plugged in|waiting/);
    expect(await page.locator('.device[data-device="battery"] .gauge-text').textContent()).toMatch(/\d+ %/);
    expect(await page.locator('.device[data-device="living-ac"] .band-marker').textContent()).toMatch(/\d+(\.\d)? °C/);
    await shot(page, 'now');
  });

  it('shows a device going down and coming back as it happens, without a reload', async () => {
    await page.goto(`${hub.url}/#now`);
    const house = page.locator('.device[data-device="house"]');
    await house.waitFor();
    const device = hub.registry.get('house')!;
    device.available = false;
    device.error = 'meter did not answer (test)';
    hub.bus.emit('device.state', { deviceId: 'house', available: false, error: device.error });
    await house.locator('.why.bad').waitFor();
    expect(await house.locator('.why.bad').textContent()).toBe('meter did not answer (test)');
    device.available = true;
    delete device.error;
    hub.bus.emit('device.state', { deviceId: 'house', available: true });
    await house.locator('.why.bad').waitFor({ state: 'detached' });
  });

  it('fits a phone screen, light and dark', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const view of ['now', 'plan', 'control']) {
      await page.goto(`${hub.url}/#${view}`);
      await page.locator(view === 'plan' ? '.chart canvas' : '.card').first().waitFor();
      // nothing wider than the screen: no sideways scrolling
      expect(await page.evaluate('document.documentElement.scrollWidth'), view).toBeLessThanOrEqual(390);
      await shot(page, `${view}-phone`);
    }
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${hub.url}/#now`);
    await page.locator('.device[data-device="ev"] .power').waitFor();
    expect(await page.evaluate('getComputedStyle(document.body).backgroundColor')).toBe('rgb(11, 18, 17)');
    await shot(page, 'now-phone-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('Plan draws 48 h of prices with the planned power of the devices, cheap and dear shaded', async () => {
    await page.goto(`${hub.url}/#plan`);
    await page.locator('.chart canvas').waitFor();
    const legend = await page.locator('.legend').textContent();
    expect(legend).toContain('Import price');
    expect(legend).toContain('cheap');
    expect(legend).toContain('EV leaves');
    expect(await page.locator('.readout .rate-import').textContent()).toMatch(/import €0\.\d{3}\/kWh/);
    await shot(page, 'plan');
  });

  it('Costs shows energy and cost by day, savings, sessions, and downloads the table as CSV', async () => {
    await page.goto(`${hub.url}/#costs`);
    const rows = page.locator('.costs-table tbody tr');
    await rows.first().waitFor();
    // the last 14 days, by day in the site's zone
    expect(await rows.count()).toBeGreaterThanOrEqual(14);
    const total = await page.locator('.costs-table tfoot').textContent();
    expect(total).toMatch(/Total[\d.,]+ kWh€[\d.,]+/);
    await page.locator('.saving').first().waitFor();
    expect(await page.locator('.saving h3').first().textContent()).toBe('Whole site');
    await page.locator('.sessions tbody tr').first().waitFor();
    expect(await page.locator('.sessions tbody').textContent()).toContain('history-');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    const csv = readFileSync((await download.path())!, 'utf8').trim().split('\r\n');
    expect(csv[0]).toBe('start_time,end_time,period,import_kwh,import_cost_EUR,export_kwh,export_earnings_EUR,net_cost_EUR');
    expect(csv.length - 1).toBe(await rows.count());
    await shot(page, 'costs');

    // by month: one row per month touched
    await page.getByRole('button', { name: 'By month' }).click();
    await expect.poll(() => rows.count()).toBeLessThanOrEqual(13);
    expect(await rows.first().textContent()).toMatch(/^\d{4}-\d{2}/);
  });

  it('Control: a new EV target goes through the API and the plan changes at once', async () => {
    const planOf = async () => (await (await fetch(`${hub.url}/api/v1/plan`)).json()) as { id: string; devices: { id: string; energy_wh: number; paused?: boolean }[] };
    const before = await planOf();
    // 20 kWh by the site file, less what the car has had since it came home
    expect(before.devices.find((d) => d.id === 'ev')!.energy_wh).toBeGreaterThan(19000);
    await page.goto(`${hub.url}/#control`);
    const ev = page.locator('.control[data-device="ev"]');
    await ev.locator('input[name="amount"]').waitFor();
    expect(await ev.locator('input[name="amount"]').inputValue()).toBe('20');
    await ev.locator('input[name="amount"]').fill('8');
    await ev.getByRole('button', { name: 'Set target' }).click();
    await page.locator('.replan .replanned').waitFor();
    // the car has had a little energy since it came home: the plan delivers the rest of the 8 kWh
    expect(await page.locator('.replan').textContent()).toMatch(/expected cost €[\d.]+ → €[\d.]+; Car charger (20\.0|19\.\d) kWh → (8\.0|7\.\d) kWh planned/);
    const after = await planOf();
    expect(after.id).not.toBe(before.id);
    expect(after.devices.find((d) => d.id === 'ev')!.energy_wh).toBeGreaterThan(7000);
    expect(after.devices.find((d) => d.id === 'ev')!.energy_wh).toBeLessThanOrEqual(8000);
    // the setting is marked as changed here, with a way back to the site file
    await ev.locator('.override').waitFor();
    await shot(page, 'control');

    // the API's error for a bad band is shown beside the form, naming the field
    const ac = page.locator('.control[data-device="living-ac"]');
    provoked.add('/api/v1/devices/living-ac/comfort');
    await ac.locator('input[name="min_c"]').fill('26');
    await ac.locator('input[name="max_c"]').fill('24');
    await ac.getByRole('button', { name: 'Set comfort band' }).click();
    expect(await ac.locator('.form-error').textContent()).toBe('min_c: must be below max_c (24)');

    // pausing a device takes it out of the plan; resuming brings it back
    const dishwasher = page.locator('.control[data-device="dishwasher"]');
    await dishwasher.getByRole('button', { name: 'Pause' }).click();
    await dishwasher.getByRole('button', { name: 'Resume' }).waitFor();
    expect((await planOf()).devices.find((d) => d.id === 'dishwasher')?.paused).toBe(true);
    await dishwasher.getByRole('button', { name: 'Resume' }).click();
    await dishwasher.getByRole('button', { name: 'Pause' }).waitFor();
    expect((await planOf()).devices.find((d) => d.id === 'dishwasher')?.paused).toBeUndefined();

    // back to the site file's target
    await ev.getByRole('button', { name: 'use the site file again' }).click();
    await expect.poll(async () => (await planOf()).devices.find((d) => d.id === 'ev')!.energy_wh).toBeGreaterThan(19000);
  });

  it('Devices shows availability, readings and the YAML of each device', async () => {
    await page.goto(`${hub.url}/#devices`);
    await page.locator('details[data-device="ev"]').click();
    const ev = page.locator('details[data-device="ev"]');
    expect(await ev.locator('.yaml').textContent()).toContain('adapter: sim_ev');
    expect(await ev.locator('table.compact tbody tr').count()).toBeGreaterThan(0);
    const devices = ((await (await fetch(`${hub.url}/api/v1/devices`)).json()) as { data: { available: boolean }[] }).data;
    expect(await page.locator('.stats.bar').textContent()).toContain(`${devices.filter((d) => d.available).length} of ${devices.length} available`);
    expect(await page.locator('details.device-detail').count()).toBe(devices.length);
    await shot(page, 'devices');
  });

  it('shows an injected device name as text and never runs it', async () => {
    for (const view of ['now', 'devices']) {
      await page.goto(`${hub.url}/#${view}`);
      const name = page.locator('[data-device="hostile"] .device-name');
      await name.waitFor();
      expect(await name.textContent()).toBe(HOSTILE_NAME);
      expect(await page.locator('[data-device="hostile"] img, [data-device="hostile"] b').count()).toBe(0);
    }
    await page.locator('details[data-device="hostile"]').click();
    expect(await page.locator('details[data-device="hostile"] .yaml').textContent()).toContain('onerror');
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
  });

  it('logged no console errors, page errors or failed requests', () => {
    expect(problems).toEqual([]);
  });
});

describeWithPeers(['chromium'], 'dashboard with an access token', { timeout: 90_000 }, () => {
  let hub: Hub;
  let browser: Awaited<ReturnType<typeof launchChromium>>;

  beforeAll(async () => {
    hub = new Hub({
      configText: `site: { id: home, name: Token home, timezone: Europe/Berlin, currency: EUR }\nhttp: { port: 0, token: "${TOKEN}" }\ntariffs: { import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.21 }, { from: "07:00", to: "00:00", rate: 0.34 } ] }, export: { type: fixed, rate: 0.08 } }\ndevices:\n  - { id: ev, adapter: sim_ev, name: Car, target: { energy_wh: 12000, leave_time: "07:00" } }\n`,
      clock: new ManualClock(START),
      logger: createLogger({ level: 'silent' }),
      override: (c) => void (c.storage.dir = mkdtempSync(join(tmpdir(), 'homeflex-e2e-token-'))),
    });
    await hub.start();
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  it('asks for the token before a change, refuses a wrong one with the hub’s message, and keeps the right one', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${hub.url}/#control`);
    const ev = page.locator('.control[data-device="ev"]');
    await ev.locator('input[name="amount"]').waitFor();
    await ev.locator('input[name="amount"]').fill('6');
    await ev.getByRole('button', { name: 'Set target' }).click();
    const dialog = page.locator('#token-dialog');
    await dialog.waitFor();
    expect(await page.locator('#token-reason').textContent()).toContain('need the hub’s access token');

    await page.locator('#token-input').fill('wrong-token-wrong-token');
    await page.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await ev.locator('input[name="amount"]').fill('6');
    await ev.getByRole('button', { name: 'Set target' }).click();
    await dialog.waitFor();
    expect(await page.locator('#token-reason').textContent()).toContain('a valid "Authorization: Bearer <http.token>" header is required');

    await page.locator('#token-input').fill(TOKEN);
    await page.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await ev.locator('input[name="amount"]').fill('6');
    await ev.getByRole('button', { name: 'Set target' }).click();
    await page.locator('.replan .replanned').waitFor();
    expect(await page.evaluate('localStorage.getItem("homeflex.token")')).toBe(TOKEN);
    const plan = (await (await fetch(`${hub.url}/api/v1/plan`)).json()) as { devices: { id: string; energy_wh: number }[] };
    expect(plan.devices.find((d) => d.id === 'ev')!.energy_wh).toBe(6000);
    expect(await page.locator('#token-button').textContent()).toBe('Token ✓');
    await page.close();
  });
});
