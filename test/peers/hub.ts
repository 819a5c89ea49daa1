import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock, HubEvents, MeterReading } from '../../src/api/index.js';
import type { Catalog } from '../../src/core/config/compose.js';
import { Hub } from '../../src/core/host.js';
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
