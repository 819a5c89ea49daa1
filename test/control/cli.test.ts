import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { planCommand } from '../../src/control/cli.js';
import type { PlanView } from '../../src/control/view.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { runCommand } from '../peers/cli-run.js';

const yaml = (port: number, dir: string) => `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { host: 127.0.0.1, port: ${port} }
storage: { dir: ${JSON.stringify(dir)} }
tariffs: { import: { type: fixed, rate: 0.3 }, export: { type: fixed, rate: 0.08 } }
devices:
  - { id: battery, adapter: sim_battery, capacity_wh: 10000 }
  - { id: house, adapter: sim_load }
  - { id: dishwasher, adapter: sim_socket, rated_power_w: 1800, schedule: { hours: 2, window: { from: "20:00", to: "06:00" } } }
`;

const running: Hub[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) await h.stop();
});

const run = (file: string, extra: string[] = []) => runCommand(planCommand, ['--config', file, ...extra], { defaultConfig: file });

describe('homeflex plan', () => {
  it('plans once from the file when no hub runs, and prints a table or JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-plan-'));
    const file = join(dir, 'site.yaml');
    writeFileSync(file, yaml(0, join(dir, 'data')));
    const table = await run(file);
    expect(table.code).toBe(0);
    expect(table.err).toMatch(/planning once from it \(no device is commanded\)/);
    expect(table.out).toMatch(/^plan plan_\w+ \((optimal|within_gap)\)/);
    expect(table.out).toMatch(/time\s+import\s+export\s+grid W\s+battery\s+dishwasher/);
    const json = await run(file, ['--json']);
    const plan = JSON.parse(json.out) as PlanView;
    expect(plan.object).toBe('plan');
    expect(plan.devices.find((d) => d.id === 'dishwasher')!.on!.filter(Boolean).length).toBeGreaterThanOrEqual(8);
  });

  it('asks the running hub for its plan when one answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-plan-'));
    const hub = new Hub({ configText: yaml(0, join(dir, 'data')), logger: createLogger({ level: 'silent' }) });
    running.push(hub);
    await hub.start();
    await hub.services.control!.settled();
    const port = Number(new URL(hub.url).port);
    const file = join(dir, 'site.yaml');
    writeFileSync(file, yaml(port, join(dir, 'other')));
    const r = await run(file, ['--json']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect((JSON.parse(r.out) as PlanView).id).toBe(hub.services.control!.latest!.id);
  });
});
