import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { TsChargePoint } from '../../adapters/ocpp/test/harness.js';
import { freePort } from '../peers/mqtt.js';
import { spawnCli } from '../peers/hub-process.js';

const root = resolve(import.meta.dirname, '..', '..');
const cli = ['--import', 'tsx', join(root, 'src', 'cli.ts')];
const TOKEN = 'tok-9f8e7d6c5b4a3210-secret';
const CP_PASSWORD = 'cp-pw-5e6f7a8b9c0d';
const MQTT_PASSWORD = 'mq-pw-1a2b3c4d5e6f';

async function startHub(yaml: string, env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-sec-'));
  const file = join(dir, 'site.yaml');
  writeFileSync(file, yaml.replace('STORAGE', JSON.stringify(join(dir, 'data'))));
  // a failed assertion must not leave the hub running (spawnCli kills it)
  const proc = spawnCli(['start', '--config', file], { ...process.env, ...env });
  const child = proc.child;
  const t0 = Date.now();
  let url: string | undefined;
  while (!url && Date.now() - t0 < 15_000 && child.exitCode === null) {
    url = /"url":"(http:[^"]+)"/.exec(proc.out)?.[1];
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    output: () => proc.out,
    stop: async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.on('exit', r));
      return proc.out;
    },
  };
}

describe('security', () => {
  it('never writes configured secrets to the log (HTTP token, charger passwords, MQTT password), whatever the requests and logins', async () => {
    const ocppPort = await freePort();
    const yaml = `site: { id: home }
http: { port: 0, token: \${HOMEFLEX_TOKEN} }
storage: { dir: STORAGE }
log: { level: trace, format: json }
connections:
  ocpp: { host: 127.0.0.1, port: ${ocppPort} }
  mqtt: { embedded: { port: 0 }, username: hub, password: \${MQTT_PASSWORD} }
devices:
  - { id: house, adapter: sim_load, tick_s: 1 }
  - { id: wallbox, adapter: ocpp, identity: CP1, password: \${CP_PASSWORD} }
  - { id: heater, adapter: tasmota, topic: tasmota_SEC, rated_power_w: 2000 }
`;
    const hub = await startHub(yaml, { HOMEFLEX_TOKEN: TOKEN, CP_PASSWORD, MQTT_PASSWORD });
    expect(hub.url, hub.output()).toBeDefined();
    const auth = { authorization: `Bearer ${TOKEN}` };
    await fetch(`${hub.url}/api/v1/health`, { headers: auth });
    await fetch(`${hub.url}/api/v1/devices`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN, password: CP_PASSWORD }) });
    await fetch(`${hub.url}/api/v1/devices`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}x` } });
    await fetch(`${hub.url}/api/v1/devices/${TOKEN}`, { headers: auth });
    // nor in what the API shows of the device's YAML
    const view = await (await fetch(`${hub.url}/api/v1/devices/wallbox`, { headers: auth })).text();
    expect(view).toContain('[Redacted]');
    expect(view).not.toContain(CP_PASSWORD);
    // the charger logs in with its password, then with a wrong one, and boots
    const ocpp = `ws://127.0.0.1:${ocppPort}/ocpp`;
    const wrong = new TsChargePoint('CP1');
    expect(await wrong.connect(ocpp, `${CP_PASSWORD}-guess`)).toBe(false);
    const cp = new TsChargePoint('CP1');
    expect(await cp.connect(ocpp, CP_PASSWORD)).toBe(true);
    await cp.call('BootNotification', { chargePointVendor: 'ACME', chargePointModel: CP_PASSWORD });
    // MQTT clients: the right login and a wrong one
    const brokerPort = Number(/"port":(\d+)[^\n]*embedded MQTT broker listening/.exec(hub.output())?.[1]);
    expect(brokerPort).toBeGreaterThan(0);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { username: 'hub', password: MQTT_PASSWORD });
    await client.publishAsync('tele/tasmota_SEC/LWT', 'Online');
    await client.endAsync();
    await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { username: 'hub', password: `${MQTT_PASSWORD}x`, reconnectPeriod: 0 }).then((c) => c.endAsync(), () => undefined);
    await new Promise((r) => setTimeout(r, 1500));
    cp.disconnect();
    const log = await hub.stop();
    expect(log).toContain('homeflex is running');
    expect(log).toMatch(/charger CP1 connected/);
    for (const secret of [TOKEN, CP_PASSWORD, MQTT_PASSWORD]) {
      expect(log).not.toContain(secret);
      expect(log).not.toContain(secret.slice(4, 16));
    }
    // nor as the Basic auth header a charger sends
    expect(log).not.toContain(Buffer.from(`CP1:${CP_PASSWORD}`).toString('base64').slice(0, 16));
  });

  it('enforces the request body limit with a clear error', async () => {
    const yaml = `site: { id: home }\nhttp: { port: 0, body_limit_bytes: 2048 }\nstorage: { dir: STORAGE }\nlog: { format: json }\n`;
    const hub = await startHub(yaml, {});
    const r = await fetch(`${hub.url}/api/v1/devices`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'a'.repeat(5000) }) });
    expect(r.status).toBe(413);
    expect(await r.json()).toMatchObject({ object: 'error', type: 'invalid_request', code: 'body_too_large' });
    await hub.stop();
  });

  it('refuses to start on a public address without a token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-sec-'));
    const file = join(dir, 'site.yaml');
    writeFileSync(file, `site: { id: home }\nhttp: { host: 0.0.0.0, port: 0 }\nstorage: { dir: data }\n`);
    const r = spawnSync(process.execPath, [...cli, 'start', '--config', file], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('site.yaml:2:15 http.host: listening on 0.0.0.0 (not loopback) needs http.token');
  });
});
