import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { RPCClient } from 'ocpp-rpc';
import { chromium } from 'playwright-core';
import { afterEach, expect, it } from 'vitest';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { axeViolations } from '../../test/peers/axe.js';
import { CHROMIUM_PATH, describeWithPeers } from '../../test/peers/system.js';
import { freePort } from '../../test/peers/mqtt.js';

/**
 * The discovery flow as a user does it (issue 20 item 2): a charger dials in under an identity no
 * device has, the Devices view shows it as found and not configured, and Add puts it in the site
 * file and brings it online, in Debian's chromium driven by playwright-core.
 */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});


describeWithPeers(['chromium'], 'discovery in the dashboard', { timeout: 90_000 }, () => {
  it('shows a charger dialling in as found, not configured; Add writes it into the site file and it comes online', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-discovery-e2e-'));
    const file = join(dir, 'site.yaml');
    const port = await freePort();
    const site = `# my house\nsite: { id: home, name: E2E home }\nhttp: { port: 0 }\nconnections:\n  ocpp: { host: 127.0.0.1, port: ${port}, allow_unknown: true }   # the wallbox dials in here\ndevices: []\n`;
    writeFileSync(file, site);
    const hub = new Hub({ configFile: file, logger: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: 'silent' }), override: (c) => void (c.storage.dir = join(dir, 'data')) });
    cleanups.push(() => hub.stop());
    await hub.start();

    const cp = new RPCClient({ endpoint: `ws://127.0.0.1:${port}/ocpp`, identity: 'WB-7731', protocols: ['ocpp1.6'], reconnect: true, backoff: { initialDelay: 200, maxDelay: 500 } } as never) as unknown as {
      connect(): Promise<unknown>;
      call(m: string, p: unknown): Promise<unknown>;
      handle(m: string, fn: () => unknown): void;
      close(o: { force: boolean }): Promise<unknown>;
    };
    cleanups.push(() => cp.close({ force: true }));
    for (const m of ['GetConfiguration', 'ChangeConfiguration', 'TriggerMessage', 'SetChargingProfile', 'ClearChargingProfile']) cp.handle(m, () => (m === 'GetConfiguration' ? { configurationKey: [], unknownKey: [] } : { status: 'Accepted' }));
    await cp.connect();
    const boot = () => cp.call('BootNotification', { chargePointVendor: 'Wallbe', chargePointModel: 'Eco 2.0' }).catch(() => undefined);
    await boot();

    const userDataDir = mkdtempSync(join(tmpdir(), 'homeflex-chromium-'));
    const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    cleanups.push(async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${hub.url}/#devices`);

    const found = page.locator('form.found-item[data-found="ocpp:WB-7731"]');
    await found.waitFor({ timeout: 20_000 });
    await expect(page.getByRole('heading', { name: /Found, not configured/ }).isVisible()).resolves.toBe(true);
    await expect(found.textContent()).resolves.toMatch(/WB-7731.*OCPP charger.*address\s*127\.0\.0\.1/s);
    // the found section and its Add form pass axe-core (labels, names, contrast, heading order)
    const violations = await axeViolations(page);
    expect(violations, `axe-core violations:\n${violations.join('\n')}`).toEqual([]);
    // the id field is labelled and reached by keyboard
    const idField = page.getByLabel('Device id');
    await idField.fill('garage');
    await idField.press('Enter');

    await page.locator('.found-note').getByText(/garage was added/).waitFor({ timeout: 10_000 });
    await page.locator('details[data-device="garage"]').waitFor({ timeout: 10_000 });
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith(site.slice(0, site.indexOf('devices:')))).toBe(true);
    expect(text).toMatch(/- id: garage\n\s+adapter: ocpp\n\s+identity: WB-7731\n/);
    // the charger is let go, dials again and is the device now
    const device = hub.registry.get('garage')!;
    const end = Date.now() + 20_000;
    while (!device.available && Date.now() < end) {
      await boot();
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(device.available).toBe(true);
    await page.locator('details[data-device="garage"] .badge', { hasText: 'available' }).waitFor({ timeout: 15_000 });
    await expect(page.locator('form.found-item').count()).resolves.toBe(0);
    expect(errors).toEqual([]);
  });
});
