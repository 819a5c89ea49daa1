import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { Mosquitto, freePort } from '../peers/mqtt.js';
import { describeWithPeers } from '../peers/system.js';

const hubs: Hub[] = [];
const clients: MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  for (const h of hubs.splice(0)) await h.stop();
});

async function startHub(telemetry: boolean) {
  const port = await freePort();
  const yaml = `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.30 }
connections:
  mqtt:
    username: hub
    password: hub-secret-1
    telemetry: ${telemetry}
    embedded:
      host: 127.0.0.1
      port: ${port}
      users:
        - { username: ops, password: ops-secret-1, subscribe: ["homeflex/#"], publish: ["homeflex/#"] }
        - { username: socket, password: socket-secret-1, devices: [heater] }
devices:
  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 1 }
  - { id: heater, adapter: tasmota, topic: tasmota_TEL, rated_power_w: 2000 }
`;
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-telemetry-'));
  const hub = new Hub({ configText: yaml, logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
  hubs.push(hub);
  await hub.start();
  return { hub, url: `mqtt://127.0.0.1:${port}` };
}

/** A client that keeps every message under homeflex/home/telemetry/#, with its retain flag. */
async function watcher(url: string, username = 'ops', password = 'ops-secret-1') {
  const client = await mqtt.connectAsync(url, { username, password, reconnectPeriod: 0 });
  clients.push(client);
  const seen: { topic: string; body: Record<string, unknown>; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown>, retain: packet.retain }));
  await client.subscribeAsync('homeflex/home/telemetry/#', { qos: 0 });
  return { client, seen };
}

async function until(cond: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('MQTT telemetry (connections.mqtt.telemetry)', () => {
  it('publishes every device state and meter reading, retained, under homeflex/<site>/telemetry, and only the hub may', async () => {
    const { hub, url } = await startHub(true);
    const live = await watcher(url);
    // a meter reading of the simulated house every second, on its channel
    await until(() => live.seen.some((m) => m.topic === 'homeflex/home/telemetry/house/meter/device' && !m.retain));
    const reading = live.seen.find((m) => m.topic === 'homeflex/home/telemetry/house/meter/device')!.body;
    expect(reading).toMatchObject({ device_id: 'house', channel: 'device', power_w: expect.any(Number), import_wh: expect.any(Number) });
    expect(Date.parse(reading.time as string)).toBeGreaterThan(Date.now() - 60_000);

    // a client that comes later gets each device's last state and reading, retained
    const late = await watcher(url);
    await until(() => ['house/state', 'heater/state', 'house/meter/device'].every((t) => late.seen.some((m) => m.topic === `homeflex/home/telemetry/${t}` && m.retain)));
    const house = late.seen.find((m) => m.topic === 'homeflex/home/telemetry/house/state')!.body;
    const api = (await (await fetch(`${hub.url}/api/v1/devices/house`)).json()) as Record<string, unknown>;
    expect(house).toMatchObject({ id: 'house', object: 'device', available: true, adapter: api.adapter });
    const heater = late.seen.find((m) => m.topic === 'homeflex/home/telemetry/heater/state')!.body;
    expect(heater).toMatchObject({ id: 'heater', available: false });

    // a state change is published: the socket comes online
    const socket = await mqtt.connectAsync(url, { username: 'socket', password: 'socket-secret-1', reconnectPeriod: 0 });
    clients.push(socket);
    await socket.publishAsync('tele/tasmota_TEL/LWT', 'Online', { retain: true });
    await socket.publishAsync('stat/tasmota_TEL/POWER', 'ON');
    await until(() => live.seen.some((m) => m.topic === 'homeflex/home/telemetry/heater/state' && m.body.available === true));

    // another login may not publish telemetry, even with homeflex/# in its publish list: the spoof is dropped
    const before = live.seen.length;
    await live.client.publishAsync('homeflex/home/telemetry/house/state', JSON.stringify({ id: 'house', spoofed: true }), { retain: true, qos: 1 });
    await socket.publishAsync('homeflex/home/telemetry/heater/state', JSON.stringify({ id: 'heater', spoofed: true }), { retain: true, qos: 1 });
    await new Promise((r) => setTimeout(r, 1500));
    expect(live.seen.slice(before).filter((m) => m.body.spoofed)).toEqual([]);
    const third = await watcher(url);
    await until(() => third.seen.some((m) => m.topic === 'homeflex/home/telemetry/house/state'));
    expect(third.seen.find((m) => m.topic === 'homeflex/home/telemetry/house/state')!.body).not.toHaveProperty('spoofed');
  });

  it('publishes nothing when telemetry is off', async () => {
    const { url } = await startHub(false);
    const w = await watcher(url);
    await new Promise((r) => setTimeout(r, 2500));
    expect(w.seen).toEqual([]);
  });
});

describeWithPeers(['mosquitto'], 'MQTT telemetry through Debian mosquitto', () => {
  it('publishes every state and last reading again after the broker restarted without persistence', async () => {
    const broker = await Mosquitto.start();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'homeflex-telemetry-'));
      const yaml = `
site: { id: home, timezone: Europe/Berlin, currency: EUR }
http: { port: 0 }
tariffs:
  import: { type: fixed, rate: 0.30 }
connections:
  mqtt: { url: "${broker.url}", telemetry: true }
devices:
  - { id: house, adapter: sim_load, annual_kwh: 4000, tick_s: 1 }
  - { id: heater, adapter: tasmota, topic: tasmota_TEL, rated_power_w: 2000 }
`;
      const hub = new Hub({ configText: yaml, logger: createLogger({ level: 'silent' }), override: (c) => ((c.storage.dir = dir), (c.http.port = 0)) });
      hubs.push(hub);
      await hub.start();
      const retained = () => broker.sub('homeflex/home/telemetry/#', { retainedOnly: true, seconds: 1 }).map((m) => m.topic);
      await until(() => retained().includes('homeflex/home/telemetry/heater/state'));

      // the broker forgets everything; the heater's state does not change, so only the reconnect publishes it again
      await broker.restart();
      expect(broker.sub('homeflex/home/telemetry/heater/#', { retainedOnly: true, seconds: 1 })).toEqual([]);
      await until(() => retained().includes('homeflex/home/telemetry/heater/state'), 15_000);
      const after = broker.sub('homeflex/home/telemetry/heater/state', { retainedOnly: true, seconds: 1 });
      expect(JSON.parse(after[0].payload)).toMatchObject({ id: 'heater', object: 'device', available: false });
    } finally {
      await broker.stop();
    }
  });
});
