import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Hub } from '../../src/core/host.js';
import { reportCommand } from '../../src/metering/report.js';
import { quietLog } from '../peers/http-server.js';
import { runCommand } from '../peers/cli-run.js';

const SITE = `site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: time_of_use, rates: [ { from: "00:00", to: "07:00", rate: 0.20 }, { from: "07:00", to: "00:00", rate: 0.30 } ] }
  export: { type: fixed, rate: 0.10 }
`;

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

const run = (argv: string[]) => runCommand(reportCommand, argv, { env: {} });

async function startHub() {
  const dir = mkdtempSync(join(tmpdir(), 'hf-report-'));
  hub = new Hub({ configText: SITE, logger: quietLog, override: (c) => void (c.storage.dir = dir) });
  await hub.start();
  const r = (device: string, start: string, hours: number, watts: number, extra = {}) => ({ device_id: device, units: 'W', value: watts, start_time: start, end_time: new Date(Date.parse(start) + hours * 3_600_000).toISOString(), ...extra });
  const res = await fetch(`${hub.url}/api/v1/meters/interval`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([
      r('heatpump', '2024-08-01T01:00:00Z', 2, 1000), // 03:00–05:00 Berlin at 0.20
      r('heatpump', '2024-08-02T10:00:00Z', 1, 2000), // 12:00 Berlin at 0.30
      r('battery', '2024-08-01T02:00:00Z', 1, 3000, { direction: 'IMPORT' }),
      r('battery', '2024-08-01T18:00:00Z', 2, 1000, { direction: 'EXPORT', tariff_rate: 'IMPORT' }),
      r('boiler', '2024-06-01T18:00:00Z', 2, 1000),
    ]),
  });
  expect(res.status).toBe(200);
  return dir;
}

describe('homeflex report', () => {
  it('prints energy and cost per day for every meter, with totals and savings', async () => {
    await startHub();
    const { code, out, err } = await run(['--from', '2024-08-01', '--to', '2024-08-02', '--by', 'day', '--url', hub!.url]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toBe('Energy and cost, 2024-08-01T00:00:00+02:00 to 2024-08-03T00:00:00+02:00 (Europe/Berlin), by day');
    expect(lines.filter((l) => /^2024-08-01\s+heatpump\s+2\.000\s+0\.40\s+0\.000\s+0\.00\s+0\.40$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^2024-08-02\s+heatpump\s+2\.000\s+0\.60\s/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^total\s+heatpump\s+4\.000\s+1\.00\s/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^2024-08-01\s+battery\s+3\.000\s+0\.60\s+2\.000\s+0\.60\s+0\.00$/.test(l))).toHaveLength(1);
    // the battery saved 2 kWh × 0.30 − 3 kWh × 0.20 = 0.00; the whole site the same
    expect(out).toMatch(/\n\(1 meter without energy in this window left out\)\n/);
    expect(out).not.toMatch(/boiler/);
    expect(out).toMatch(/Savings against the baselines \(EUR\)\n/);
    expect(lines.filter((l) => /^battery\s+storage\s+0\.60\s+0\.60\s+0\.00\s+0\.0 %$/.test(l))).toHaveLength(1);
    // the site replayed (issue 15.6): no grid meter and no house meter, so the battery's 2 kWh at
    // 20:00–22:00 left the metered devices (exported at 0.10); paid 0.40 + 0.60 + 0.60 − 0.20 = 1.40,
    // without the battery 1.00; its size unknown, so its own mode is the same as none
    expect(out).toMatch(/\nSite \(device meters\): paid 1\.40 EUR; against no battery 0\.40 lost, against the battery's own mode 0\.40 lost\n/);
    expect(out).toMatch(/\(the battery's size is not known/);
  });

  it('writes CSV for one device by month, finding the hub from the site file', async () => {
    const dir = await startHub();
    const file = join(dir, 'site.yaml');
    writeFileSync(file, SITE.replace('port: 0', `port: ${new URL(hub!.url).port}`));
    const { code, out } = await run(['--from', '2024-07-01', '--to', '2024-08-31', '--by', 'month', '--device', 'heatpump', '--csv', '--config', file]);
    expect(code).toBe(0);
    expect(out).toBe('period,device,import_kwh,import_cost_EUR,export_kwh,export_value_EUR,net_cost_EUR\n2024-07,heatpump,0.000,0.00,0.000,0.00,0.00\n2024-08,heatpump,4.000,1.00,0.000,0.00,1.00\n');
  });

  it('says what is wrong', async () => {
    expect(await run(['--from', '2024-08-01', '--by', 'day'])).toMatchObject({ code: 2, err: expect.stringMatching(/^homeflex report needs --to\n/) });
    expect(await run(['--from', '2024-08-01', '--to', '2024-08-02', '--by', 'hour'])).toMatchObject({ code: 2, err: '--by hour: must be day, week, month or year\n' });
    expect(await run(['--from', '2024-08-01', '--to', '2024-08-02', '--by', 'day', '--url', 'http://127.0.0.1:9'])).toMatchObject({ code: 1, err: expect.stringMatching(/^homeflex report: no hub answers at http:\/\/127\.0\.0\.1:9 .*start it with "homeflex start --config FILE", or pass --url\n$/) });
    const dir = mkdtempSync(join(tmpdir(), 'hf-report-'));
    writeFileSync(join(dir, 'site.yaml'), SITE);
    expect(await run(['--from', '2024-08-01', '--to', '2024-08-02', '--by', 'day', '--config', join(dir, 'site.yaml')])).toMatchObject({ code: 1, err: expect.stringMatching(/http\.port is 0 .*pass --url/) });
    await startHub();
    expect(await run(['--from', '2024-08-05', '--to', '2024-08-02', '--by', 'day', '--url', hub!.url])).toMatchObject({ code: 1, err: 'homeflex report: --to must be after --from\n' });
    expect(await run(['--from', 'last week', '--to', '2024-08-02', '--by', 'day', '--url', hub!.url])).toMatchObject({ code: 1, err: expect.stringMatching(/--from last week: give a date YYYY-MM-DD/) });
    expect(await run(['--from', '2024-08-01', '--to', '2024-08-02', '--by', 'day', '--device', 'toaster', '--url', hub!.url])).toMatchObject({ code: 1, err: expect.stringMatching(/POST \/costs\/interval\/toaster.*: 404 no location or device "toaster"/) });
  });
});
