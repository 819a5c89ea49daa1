import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import type { Clock, HubEvents, MeterReading } from '../../src/api/index.js';
import type { PlanView } from '../../src/control/view.js';
import { ManualClock } from '../../src/core/clock.js';
import type { Catalog } from '../../src/core/config/compose.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { recordingLogger } from './mqtt.js';

export interface TestHub {
  hub: Hub;
  /** Log lines (JSON) so far. */
  logText: () => string;
  readings: { deviceId: string; reading: MeterReading }[];
  states: HubEvents['device.state'][];
  stop: () => Promise<void>;
}

/** Starts a real hub from YAML text with a fresh storage dir and HTTP on a free port. */
export async function startHub(yaml: string, options: { catalog?: Catalog; storageDir?: string; clock?: Clock } = {}): Promise<TestHub> {
  const rec = recordingLogger();
  const dir = options.storageDir ?? mkdtempSync(join(tmpdir(), 'homeflex-mqtt-hub-'));
  const hub = new Hub({
    configText: yaml,
    catalog: options.catalog,
    clock: options.clock,
    logger: rec.log,
    override: (c) => {
      c.storage.dir = dir;
      c.http.port = 0;
    },
  });
  const readings: TestHub['readings'] = [];
  const states: TestHub['states'] = [];
  hub.bus.on('meter.reading', (e) => readings.push(e));
  hub.bus.on('device.state', (e) => states.push(e));
  await hub.start();
  return { hub, logText: rec.text, readings, states, stop: () => hub.stop() };
}

/**
 * Quiet real hubs for a test file, each stopped (and its temporary storage removed) after each
 * test: from YAML text, on a manual clock at `at` (or the clock given), storage in a fresh
 * temporary folder (or `dir`), HTTP on port 0, the first plan made before it is handed over.
 */
export function quietHubs(prefix = 'homeflex-hub-') {
  const running: { hub: Hub; tmp?: string }[] = [];
  afterEach(async () => {
    for (const { hub, tmp } of running.splice(0)) {
      await hub.stop();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  });
  return async (configText: string, options: { at?: string; clock?: ManualClock; dir?: string } = {}) => {
    const clock = options.clock ?? new ManualClock(options.at ?? '2026-06-01T16:10:00Z');
    const tmp = options.dir ? undefined : mkdtempSync(join(tmpdir(), prefix));
    const dir = options.dir ?? tmp!;
    const hub = new Hub({ configText, clock, logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
    running.push({ hub, tmp });
    await hub.start();
    await hub.services.control?.settled();
    return { hub, clock, dir };
  };
}

/** The plan the hub serves (`GET /api/v1/plan`), which must answer 200. */
export async function fetchPlan(hub: Hub): Promise<PlanView> {
  const r = await fetch(`${hub.url}/api/v1/plan`);
  expect(r.status).toBe(200);
  return (await r.json()) as PlanView;
}
