import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Notice } from '../../src/api/index.js';
import { Hub } from '../../src/core/host.js';
import { quietLog } from '../peers/http-server.js';


let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

const SITE = `site: { id: loc_home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.20 }, { from: "07:00", to: "00:00", rate: 0.40 } ] }
`;

async function start(dir: string) {
  hub = new Hub({ configText: SITE, logger: quietLog, override: (c) => void (c.storage.dir = dir) });
  const notices: Notice[] = [];
  hub.bus.on('notice', (n) => void notices.push(n));
  await hub.start();
  return { api: `${hub.url}/api/v1`, notices };
}

const until = async (fn: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!fn() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
};

describe('notices raised by the storage and the metering', () => {
  it('session_finished tells the session\'s energy, cost and saving when it ends', async () => {
    const { api, notices } = await start(mkdtempSync(join(tmpdir(), 'hf-notice-')));
    // plugged in at 18:00 Berlin (0.40), charged 3 x 1 h at 7.4 kW from 01:00 (0.20): the baseline
    // charges the same 22.2 kWh at full power from plug-in, at 0.40
    const plugIn = Date.parse('2026-03-02T17:00:00Z');
    const recs = [0, 1, 2].map((h) => {
      const start = Date.parse('2026-03-03T00:00:00Z') + h * 3_600_000;
      return { device_id: 'ev', units: 'WH', value: 7400, start_time: new Date(start).toISOString(), end_time: new Date(start + 3_600_000).toISOString(), session_reference_id: 'tx-42' };
    });
    const put = await fetch(`${api}/meters/interval`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(recs) });
    expect(put.status).toBe(200);
    await hub!.services.state.update((s) => {
      s.sessions['tx-42'] = { id: 'tx-42', device_id: 'ev', start: new Date(plugIn).toISOString(), end: '2026-03-03T03:00:00.000Z', energy_wh: 22_200 };
    });
    hub!.bus.emit('session.ended', { deviceId: 'ev', sessionId: 'tx-42', time: Date.parse('2026-03-03T03:00:00Z') });
    await until(() => notices.some((n) => n.kind === 'session_finished'));
    const n = notices.find((x) => x.kind === 'session_finished')!;
    expect(n).toMatchObject({ severity: 'info', deviceId: 'ev' });
    // 22.2 kWh at 0.20 = 4.44 EUR; at 0.40 it would have been 8.88: 4.44 saved
    expect(n.title).toBe('ev: charging finished, 22.20 kWh for 4.44 EUR');
    expect(n.message).toBe('Session tx-42 on ev: 22.20 kWh, cost 4.44 EUR, saved 4.44 EUR against charging at full power from plug-in.');
  });

  it('storage_degraded is raised when damaged meter data is found at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-notice-damaged-'));
    mkdirSync(join(dir, 'metering', 'd.ev'), { recursive: true });
    writeFileSync(join(dir, 'metering', 'FORMAT'), JSON.stringify({ format: 'homeflex-meter-store', version: 1 }));
    writeFileSync(join(dir, 'metering', 'd.ev', '2026-01.log.damaged-434'), Buffer.alloc(64, 7));
    const { notices } = await start(dir);
    await until(() => notices.some((n) => n.kind === 'storage_degraded'));
    const n = notices.find((x) => x.kind === 'storage_degraded')!;
    expect(n).toMatchObject({ severity: 'error', key: 'storage', title: 'Storage degraded' });
    expect(n.message).toMatch(/2026-01\.log.*damaged bytes at offset 434/);
    // told once, not at every check
    expect(notices.filter((x) => x.kind === 'storage_degraded')).toHaveLength(1);
  });
});
