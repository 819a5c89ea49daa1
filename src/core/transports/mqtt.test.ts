import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Mosquitto, observer, recordingLogger, until } from '../../../test/peers/mqtt.js';
import { builtinCatalog } from '../catalog.js';
import { systemClock } from '../clock.js';
import { hubChecks } from '../config/checks.js';
import { parseConfig } from '../config/load.js';
import type { HubConfig } from '../config/schema.js';
import { createTransports } from './index.js';
import { HubMqtt, topicMatches } from './mqtt.js';
import { describeWithPeers } from '../../../test/peers/system.js';
import { cleanupsAfterEach } from '../../../test/peers/cleanups.js';

const contextFor = (mqttConf: Record<string, unknown>, log = recordingLogger().log) => ({
  config: { site: { id: 'home' }, connections: { mqtt: mqttConf, modbus: [] }, source: 'site.yaml' } as unknown as HubConfig,
  log,
  clock: systemClock,
});

const cleanups = cleanupsAfterEach();

function hubMqtt(conf: Record<string, unknown>, log = recordingLogger()) {
  const t = new HubMqtt(contextFor(conf, log.log), log.log);
  cleanups.push(() => t.stop());
  return t;
}

describe('topicMatches', () => {
  it.each([
    ['a/b/c', 'a/b/c', true],
    ['a/+/c', 'a/b/c', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+/b', '/b', true],
    ['+/b', 'a/c', false],
    ['+/+', '/b', true],
    ['#', '$SYS/x', false],
    ['shellies/+/online', 'shellies/plug-1/online', true],
    ['shellies/+/online', 'shellies/plug-1/relay/online', false],
  ])('%s against %s is %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe('connections.mqtt in the YAML', () => {
  it('refuses an external url and the embedded broker together, naming file and line', () => {
    const yaml = 'site: { id: home }\nconnections:\n  mqtt: { url: "mqtt://10.0.0.2:1883", embedded: { port: 1884 } }\n';
    expect(() => parseConfig(yaml, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) })).toThrow(
      /site\.yaml:3:\d+ connections\.mqtt\.url: give either "url" \(an external broker\) or "embedded", not both/,
    );
  });

  it('refuses an embedded broker open to the LAN without a login', () => {
    const options = { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) };
    const open = 'site: { id: home }\nconnections:\n  mqtt: { embedded: { host: 0.0.0.0, port: 1883 } }\n';
    expect(() => parseConfig(open, 'site.yaml', options)).toThrow(/connections\.mqtt\.embedded\.host: an embedded broker listening on 0\.0\.0\.0 \(not loopback\) needs connections\.mqtt\.username and password/);
    const withLogin = 'site: { id: home }\nconnections:\n  mqtt: { embedded: { host: 0.0.0.0, port: 1883 }, username: hub, password: long-secret }\n';
    expect(parseConfig(withLogin, 'site.yaml', options).connections.mqtt?.embedded?.host).toBe('0.0.0.0');
  });
});

describe('MQTT transport against the embedded aedes broker', () => {
  it('announces online (retained), delivers by wildcard, publishes, and says offline on a clean stop', async () => {
    const t = hubMqtt({ embedded: { host: '127.0.0.1', port: 0 } });
    await until(() => t.connected, 'hub client connected');
    const url = t.embeddedBrokerUrl!;
    const obs = await observer(url, ['homeflex/home/status', 'out/#']);
    cleanups.push(() => obs.client.endAsync());
    await until(() => obs.messages.some((m) => m.topic === 'homeflex/home/status' && m.payload === 'online' && m.retain), 'retained online');

    const got: string[] = [];
    t.subscribe('tele/+/SENSOR', (topic, payload) => got.push(`${topic} ${payload}`));
    await new Promise((r) => setTimeout(r, 100));
    await obs.client.publishAsync('tele/plug1/SENSOR', '{"ENERGY":{"Power":12}}');
    await obs.client.publishAsync('tele/plug1/STATE', 'not for us');
    await until(() => got.length === 1, 'wildcard delivery');
    expect(got[0]).toBe('tele/plug1/SENSOR {"ENERGY":{"Power":12}}');

    await t.publish('out/cmd', 'ON', { qos: 1 });
    await until(() => obs.messages.some((m) => m.topic === 'out/cmd' && m.payload === 'ON'), 'published message');

    await t.stop();
    expect(obs.messages.at(-1)).toMatchObject({ topic: 'homeflex/home/status', payload: 'offline' });
  });

  it('keeps delivering to other subscribers when one handler throws, and unsubscribes', async () => {
    const rec = recordingLogger();
    const t = hubMqtt({ embedded: { host: '127.0.0.1', port: 0 } }, rec);
    await until(() => t.connected, 'connected');
    const a: string[] = [];
    t.subscribe('x/1', () => {
      throw new Error('adapter bug');
    });
    const off = t.subscribe('x/1', (_t, p) => a.push(p.toString()));
    await new Promise((r) => setTimeout(r, 50));
    await t.publish('x/1', 'one', { qos: 1 });
    await until(() => a.length === 1, 'delivery despite a throwing handler');
    expect(rec.text()).toMatch(/MQTT message handler failed/);
    off();
    await t.publish('x/1', 'two', { qos: 1 });
    await new Promise((r) => setTimeout(r, 150));
    expect(a).toEqual(['one']);
  });

  it('requires the configured login on the embedded broker', async () => {
    const t = hubMqtt({ embedded: { host: '127.0.0.1', port: 0 }, username: 'hub', password: 'secret-pw' });
    await until(() => t.connected, 'hub logged in');
    const url = t.embeddedBrokerUrl!;
    await expect(observer(url, ['#'], { reconnectPeriod: 0, password: 'wrong', username: 'hub' })).rejects.toThrow(/Bad username or password|Not authorized/i);
    const ok = await observer(url, ['#'], { username: 'hub', password: 'secret-pw' });
    cleanups.push(() => ok.client.endAsync());
    expect(ok.client.connected).toBe(true);
  });

  it('rejects an invalid topic filter by name', () => {
    const t = hubMqtt({ embedded: { host: '127.0.0.1', port: 0 } });
    expect(() => t.subscribe('a/#/b', () => undefined)).toThrow(/"a\/#\/b" is not a valid MQTT topic filter/);
  });

  it('is created once through the host transports and stopped with them', async () => {
    const transports = createTransports(contextFor({ embedded: { host: '127.0.0.1', port: 0 } }));
    const a = transports.mqtt();
    expect(transports.mqtt()).toBe(a);
    await until(() => a.connected, 'connected');
    await transports.stop();
    expect(a.connected).toBe(false);
  });
});

describeWithPeers(['mosquitto'], 'MQTT transport against Debian mosquitto', () => {
  it('recovers when the broker restarts: resubscribes and publishes again', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const rec = recordingLogger();
    const t = hubMqtt({ url: broker.url }, rec);
    const got: string[] = [];
    t.subscribe('cmnd/+/POWER', (_topic, p) => got.push(p.toString()));
    await until(() => t.connected, 'connected');
    await new Promise((r) => setTimeout(r, 100));
    broker.pub('cmnd/plug/POWER', 'ON');
    await until(() => got.length === 1, 'first delivery');

    await broker.restart();
    await until(() => t.connected, 'reconnected after restart', 10_000);
    expect(rec.text()).toMatch(/lost the MQTT broker connection/);
    expect(rec.text()).toMatch(/MQTT broker connection recovered/);
    // mosquitto without persistence forgot the subscription: only our resubscription delivers this
    await until(() => {
      broker.pub('cmnd/plug/POWER', 'OFF');
      return got.includes('OFF');
    }, 'delivery after restart', 10_000);
    await t.publish('stat/plug/POWER', 'OFF', { qos: 1, retain: true });
    expect(broker.sub('stat/plug/POWER', { count: 1 })).toEqual([{ topic: 'stat/plug/POWER', payload: 'OFF' }]);
    expect(broker.sub('homeflex/home/status', { count: 1 })).toEqual([{ topic: 'homeflex/home/status', payload: 'online' }]);
  });

  it('leaves a retained "offline" last will when the hub vanishes, and says "online" again on reconnect', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const t = hubMqtt({ url: broker.url });
    await until(() => t.connected, 'connected');
    const obs = await observer(broker.url, ['homeflex/home/status']);
    cleanups.push(() => obs.client.endAsync());
    await until(() => obs.messages.some((m) => m.payload === 'online'), 'online');
    // cut the socket without DISCONNECT, as a crash or power cut would
    (t as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    await until(() => obs.messages.some((m) => m.payload === 'offline'), 'last will offline');
    await until(() => obs.messages.at(-1)?.payload === 'online', 'online after reconnect');
  });

  it('logs in with credentials, and says once that a wrong password was refused', async () => {
    const broker = await Mosquitto.start({ hub: 'right-password' });
    cleanups.push(() => broker.stop());
    const good = hubMqtt({ url: broker.url, username: 'hub', password: 'right-password' });
    await until(() => good.connected, 'logged in');
    const rec = recordingLogger();
    const bad = hubMqtt({ url: broker.url, username: 'hub', password: 'wrong-password' }, rec);
    await until(() => /refused the login/.test(rec.text()), 'refusal logged');
    await new Promise((r) => setTimeout(r, 2500));
    expect(rec.text().match(/refused the login/g)).toHaveLength(1);
    expect(bad.connected).toBe(false);
    await expect(bad.publish('x', 'y', {}, 200)).rejects.toThrow(/not connected to the MQTT broker/);
  });

  it('names the TLS CA file it cannot read', async () => {
    const rec = recordingLogger();
    const t = hubMqtt({ url: 'mqtts://127.0.0.1:1', ca: '/nonexistent/ca.pem' }, rec);
    await expect(t.publish('x', 'y')).rejects.toThrow(/connections\.mqtt\.ca: cannot read "\/nonexistent\/ca\.pem": ENOENT/);
  });

  it('reads the TLS CA file given', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const ca = join(broker.dir, 'ca.pem');
    writeFileSync(ca, 'not a certificate but readable');
    // plain mqtt:// ignores the CA; the point is that a readable file is accepted
    const t = hubMqtt({ url: broker.url, ca });
    await until(() => t.connected, 'connected with a CA configured');
  });
});
