import { spawn } from 'node:child_process';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { TasmotaSimulator } from '../../../adapters/tasmota/simulator.js';
import { startHub, type TestHub } from '../../../test/peers/hub.js';
import { freePort, observer, sleep, until } from '../../../test/peers/mqtt.js';
import { describeWithPeers } from '../../../test/peers/system.js';
import { builtinCatalog } from '../catalog.js';
import { hubChecks } from '../config/checks.js';
import { parseConfig } from '../config/load.js';
import { brokerAccess, filterCovers, mayPublish, maySubscribe } from './mqtt-access.js';
import { cleanupsAfterEach } from '../../../test/peers/cleanups.js';

const cleanups = cleanupsAfterEach();

const parse = (yaml: string) => parseConfig(yaml, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog) });

const SITE = (port = 0) => `site: { id: home }
connections:
  mqtt:
    username: hub
    password: hub-secret-pw
    embedded:
      port: ${port}
      users:
        - { username: plug-a, password: plug-a-pw, devices: [plug-a] }
        - { username: plug-b, password: plug-b-pw, devices: [plug-b] }
        - { username: bridge, password: bridge-pw, devices: [living-ac, bedroom-ac] }
        - { username: homeassistant, password: ha-pw, subscribe: ["homeassistant/#", "homeflex/#"], publish: ["homeassistant/status", "homeflex/home/device/+/switch/set"] }
devices:
  - { id: plug-a, adapter: tasmota, topic: plug_a, rated_power_w: 1000, confirm_timeout_s: 3 }
  - { id: plug-b, adapter: tasmota, topic: plug_b, rated_power_w: 1000, confirm_timeout_s: 3 }
  - { id: living-ac, adapter: zigbee2mqtt, friendly_name: living, comfort: { min_c: 20, max_c: 24 } }
  - { id: bedroom-ac, adapter: zigbee2mqtt, friendly_name: bedroom, comfort: { min_c: 18, max_c: 22 } }
`;

describe('the embedded broker access model (rules)', () => {
  it.each([
    ['a/#', 'a/b/+', true],
    ['a/#', 'a', true],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/+/c', true],
    ['a/b/c', 'a/+/c', false],
    ['a/+', 'a/#', false],
    ['a/#', '#', false],
    ['#', '$SYS/x', false],
    ['cmnd/plug_a/#', 'cmnd/plug_b/#', false],
  ])('%s covers %s: %s', (allowed, requested, expected) => {
    expect(filterCovers(allowed, requested)).toBe(expected);
  });

  it('derives each login from its devices: state topics to publish, commands to receive, and no login but the hub publishes a command', () => {
    const config = parse(SITE());
    const { access, problems } = brokerAccess(config, builtinCatalog);
    expect(problems).toEqual([]);
    const grant = (u: string) => access.logins.find((l) => l.username === u)!.grant;
    expect(grant('hub').all).toBe(true);
    expect(grant('plug-a')).toMatchObject({ all: false, publish: ['stat/plug_a/#', 'tele/plug_a/#'], subscribe: ['cmnd/plug_a/#', 'cmnd/tasmotas/#'] });
    expect(mayPublish(access, grant('plug-a'), 'tele/plug_a/SENSOR')).toBe(true);
    expect(mayPublish(access, grant('plug-a'), 'tele/plug_b/SENSOR')).toBe(false);
    expect(mayPublish(access, grant('plug-a'), 'cmnd/plug_a/POWER')).toBe(false);
    expect(mayPublish(access, grant('bridge'), 'zigbee2mqtt/living')).toBe(true);
    expect(mayPublish(access, grant('bridge'), 'zigbee2mqtt/kitchen_light')).toBe(true);
    expect(mayPublish(access, grant('bridge'), 'zigbee2mqtt/living/set')).toBe(false);
    expect(mayPublish(access, grant('homeassistant'), 'homeflex/home/device/plug-a/switch/set')).toBe(true);
    expect(mayPublish(access, grant('homeassistant'), 'homeflex/home/status')).toBe(false);
    expect(mayPublish(access, grant('hub'), 'cmnd/plug_b/POWER')).toBe(true);
    expect(maySubscribe(grant('plug-a'), 'cmnd/plug_a/#')).toBe(true);
    expect(maySubscribe(grant('plug-a'), 'cmnd/+/POWER')).toBe(false);
    expect(maySubscribe(grant('plug-a'), '#')).toBe(false);
  });

  it('refuses logins that cannot work, naming file, line and key', () => {
    const bad = (users: string, devices = '') =>
      `site: { id: home }\nconnections:\n  ocpp: { host: 127.0.0.1 }\n  mqtt:\n    username: hub\n    password: hub-pw\n    embedded:\n      users:\n${users}\ndevices:\n  - { id: plug-a, adapter: tasmota, topic: plug_a }\n  - { id: ev, adapter: ocpp, identity: CP1 }\n${devices}`;
    expect(() => parse(bad('        - { username: x, password: y, devices: [nope] }'))).toThrow(/site\.yaml:9:\d+ connections\.mqtt\.embedded\.users\[0\]\.devices\[0\]: unknown device "nope" \(MQTT devices: plug-a\)/);
    expect(() => parse(bad('        - { username: x, password: y, devices: [ev] }'))).toThrow(/users\[0\]\.devices\[0\]: device "ev" \(adapter ocpp\) is not an MQTT client/);
    expect(() => parse(bad('        - { username: x, password: y, devices: [plug-a] }\n        - { username: z, password: y, devices: [plug-a] }'))).toThrow(
      /site\.yaml:10:\d+ connections\.mqtt\.embedded\.users\[1\]\.devices\[0\]: device "plug-a" is already the client of users\[0\] \(x\): one login per MQTT client/,
    );
    expect(() => parse(bad('        - { username: hub, password: y, devices: [plug-a] }'))).toThrow(/users\[0\]\.username: "hub" is the hub's own login/);
    expect(() => parse(bad('        - { username: x, password: y }'))).toThrow(/users\[0\]: give devices, publish or subscribe/);
    expect(() => parse(bad('        - { username: x, password: y, publish: ["a/#/b"] }'))).toThrow(/users\[0\]\.publish\[0\]: not a valid MQTT topic filter/);
    expect(() => parse(bad('        - { username: x, password: y, devices: [plug-a], colour: red }'))).toThrow(/users\[0\]\.colour: unknown key/);
    const noHubLogin = 'site: { id: home }\nconnections:\n  mqtt:\n    embedded:\n      users: [ { username: x, password: y, devices: [plug-a] } ]\ndevices:\n  - { id: plug-a, adapter: tasmota, topic: plug_a }\n';
    expect(() => parse(noHubLogin)).toThrow(/site\.yaml:5:\d+ connections\.mqtt\.embedded\.users: an embedded broker with users needs connections\.mqtt\.username and password/);
  });
});

/** The hub with two Tasmota simulators, each under its own login. */
async function rig() {
  const port = await freePort();
  const h: TestHub = await startHub(SITE(port));
  cleanups.push(() => h.stop());
  const url = `mqtt://127.0.0.1:${port}`;
  const sims = [] as TasmotaSimulator[];
  for (const [topic, user] of [['plug_a', 'plug-a'], ['plug_b', 'plug-b']] as const) {
    const sim = new TasmotaSimulator({ url, topic, ratedPowerW: 1000, totalKwh: 1, username: user, password: `${user}-pw`, autoTele: false });
    await sim.start();
    cleanups.push(() => sim.stop());
    sims.push(sim);
  }
  const [a, b] = ['plug-a', 'plug-b'].map((id) => h.hub.registry.get(id)!);
  await until(() => a!.available && b!.available, 'both sockets available');
  return { h, url, simA: sims[0]!, simB: sims[1]!, a: a!, b: b! };
}

describe('the embedded broker access model, against real MQTT clients', () => {
  it('lets the hub command every device, while one socket’s login can neither command another nor read its topics', async () => {
    const { h, url, simA, simB, a, b } = await rig();
    // the hub's login commands both
    await a.caps.switch!.set(true);
    await b.caps.switch!.set(true);
    expect(simA.on && simB.on).toBe(true);
    await b.caps.switch!.set(false);

    // plug-a's credential: its publish to plug-b's command topic is acknowledged and dropped
    const intruder = await mqtt.connectAsync(url, { username: 'plug-a', password: 'plug-a-pw', clientId: 'intruder-a', reconnectPeriod: 0 });
    cleanups.push(() => intruder.endAsync());
    await intruder.publishAsync('cmnd/plug_b/POWER', 'ON', { qos: 1 });
    await intruder.publishAsync('cmnd/plug_a/POWER', 'OFF', { qos: 1 });
    await intruder.publishAsync('cmnd/tasmotas/POWER', 'ON', { qos: 1 });
    // nor may it forge plug-b's readings
    await intruder.publishAsync('tele/plug_b/SENSOR', JSON.stringify({ ENERGY: { Total: 99999, Power: 5 } }), { qos: 1 });
    await sleep(400);
    expect(simB.on).toBe(false);
    expect(simA.on).toBe(true);
    expect(h.readings.some((r) => r.deviceId === 'plug-b' && (r.reading.importWh ?? 0) > 1e6)).toBe(false);
    expect(intruder.connected).toBe(true);
    expect(h.logText()).toMatch(/dropped a publish to cmnd\/plug_b\/POWER from login \\"plug-a\\": not one of its topics/);

    // subscriptions outside its own topics are refused (SUBACK 0x80), its own granted
    const grantedQos = (filter: string) =>
      intruder.subscribeAsync(filter, { qos: 1 }).then(
        (g) => g[0]!.qos,
        (err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0],
      );
    for (const refused of ['cmnd/plug_b/#', 'tele/plug_b/#', '#', '$SYS/#', 'cmnd/+/POWER']) expect([refused, await grantedQos(refused)]).toEqual([refused, 128]);
    expect(await grantedQos('cmnd/plug_a/#')).toBe(1);
    expect(intruder.connected).toBe(true);

    // a Zigbee2MQTT bridge publishes anything under its base topic, but no set/get command
    const hubEye = await observer(url, ['zigbee2mqtt/#'], { username: 'hub', password: 'hub-secret-pw' });
    cleanups.push(() => hubEye.client.endAsync());
    const bridge = await mqtt.connectAsync(url, { username: 'bridge', password: 'bridge-pw', reconnectPeriod: 0 });
    cleanups.push(() => bridge.endAsync());
    await bridge.publishAsync('zigbee2mqtt/living/set', '{"occupied_heating_setpoint":30}', { qos: 1 });
    await bridge.publishAsync('zigbee2mqtt/bridge/request/permit_join', '{"value":true}', { qos: 1 });
    await bridge.publishAsync('zigbee2mqtt/kitchen_light', '{"state":"ON"}', { qos: 1 });
    await until(() => hubEye.messages.some((m) => m.topic === 'zigbee2mqtt/kitchen_light'), 'the bridge’s own state message');
    expect(hubEye.messages.map((m) => m.topic)).not.toContain('zigbee2mqtt/living/set');
    expect(hubEye.messages.map((m) => m.topic)).not.toContain('zigbee2mqtt/bridge/request/permit_join');

    // a login cannot take over another login's client id (it would throw the device off the broker)
    await expect(mqtt.connectAsync(url, { username: 'plug-a', password: 'plug-a-pw', clientId: 'DVES_plug_b', reconnectPeriod: 0 })).rejects.toThrow(/Identifier rejected/i);
    await sleep(200);
    await b.caps.switch!.set(true);
    expect(simB.on).toBe(true);

    // with logins configured, anonymous clients and wrong passwords are refused
    await expect(mqtt.connectAsync(url, { reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/i);
    await expect(mqtt.connectAsync(url, { username: 'plug-a', password: 'plug-b-pw', reconnectPeriod: 0 })).rejects.toThrow(/Bad username or password/i);
  });
});

describeWithPeers(['mosquitto'], 'the embedded broker access model, against mosquitto_pub', () => {
  it('holds against mosquitto_pub as an independent client', async () => {
    const { url, simB } = await rig();
    const port = new URL(url).port;
    // the broker runs in this process: the peer must not block the event loop (no spawnSync)
    const pub = (user: string, password: string, topic: string, message: string) =>
      new Promise<number | null>((resolve) => {
        const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', user, '-P', password, '-t', topic, '-m', message, '-q', '1'], { stdio: 'ignore' });
        p.on('exit', (code) => resolve(code));
      });
    expect(await pub('plug-a', 'plug-a-pw', 'cmnd/plug_b/POWER', 'ON')).toBe(0);
    await sleep(300);
    expect(simB.on).toBe(false);
    expect(await pub('hub', 'hub-secret-pw', 'cmnd/plug_b/POWER', 'ON')).toBe(0);
    await until(() => simB.on, 'the hub login switching plug-b');
    expect(await pub('nobody', 'x', 'cmnd/plug_b/POWER', 'OFF')).not.toBe(0);
  });
});
