import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Device, SgReadyState } from '../../src/api/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { ConfigError, formatProblem, parseConfig } from '../../src/core/config/load.js';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, observer, until } from '../../test/peers/mqtt.js';
import { describeWithPeers, SYSTEM_PYTHON } from '../../test/peers/system.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';
import { HeatPumpSimulator } from './simulator.js';

const cleanups = cleanupsAfterEach();

const problemsOf = (text: string) => {
  try {
    parseConfig(text, '/x/site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
};

describe('sg_ready configuration', () => {
  it('names the line and key of each mistake', () => {
    const text = [
      'site: { id: home }', //                                                                         1
      'connections: { mqtt: { url: "mqtt://127.0.0.1:1883" } }', //                                    2
      'devices:', //                                                                                   3
      '  - id: hp', //                                                                                 4
      '    adapter: sg_ready', //                                                                      5
      '    relays: { a: { tasmota: hp1, relay: 1 }, b: { tasmota: hp1, relay: 1 } }', //               6
      '    states: { recommended: [true, false] }', //                                                 7
      '    tank: { min_c: 60, max_c: 55 }', //                                                         8
    ].join('\n');
    const problems = problemsOf(text);
    expect(problems).toEqual([
      expect.stringMatching(/^site\.yaml:6:\d+ devices\[0\]\.relays\.b: is the same output as relays\.a \(tasmota hp1 POWER1\): SG-Ready needs two$/),
      expect.stringMatching(/^site\.yaml:7:\d+ devices\[0\]\.states\.recommended: has the same relay pair as blocked: every state needs its own$/),
      expect.stringMatching(/^site\.yaml:8:\d+ devices\[0\]\.tank\.min_c: must be below tank\.max_c \(55\)$/),
    ]);
  });

  it('refuses an output of no known kind and a fifth state', () => {
    const text = ['site: { id: home }', 'devices:', '  - { id: hp, adapter: sg_ready, tank: {},', '      relays: { a: { knx: 1/2/3 }, b: { tasmota: x } }, states: { boost: [true, true] } }'].join('\n');
    const problems = problemsOf(text).join('\n');
    expect(problems).toMatch(/site\.yaml:4:\d+ devices\[0\]\.relays\.a/);
    expect(problems).toMatch(/site\.yaml:4:\d+ devices\[0\]\.states\.boost: unknown key "boost"/);
  });
});

const STATES: Record<SgReadyState, [boolean, boolean]> = { 1: [true, false], 2: [false, false], 3: [false, true], 4: [true, true] };

describeWithPeers(['mosquitto'], 'sg_ready on Tasmota relays against Debian mosquitto', () => {
  it('sets the exact relay pair of each state, holds each state its dwell, never passes through a block, and reads the tank', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const clock = new ManualClock(Date.UTC(2026, 0, 15, 10));
    const sim = new HeatPumpSimulator({ url: broker.url, topic: 'tasmota_HP', initialC: 47.5, now: () => clock.now() });
    await sim.start();
    cleanups.push(() => sim.stop());
    const obs = await observer(broker.url, ['cmnd/tasmota_HP/#']);
    cleanups.push(() => obs.client.endAsync());
    // no tariff: the hub cannot plan, so only this test commands the heat pump
    const h = await startHub(
      [
        'site: { id: home }',
        `connections: { mqtt: { url: "${broker.url}" } }`,
        'devices:',
        '  - { id: hp, adapter: sg_ready, min_dwell_s: 600, max_block_s: 3600, confirm_timeout_s: 3,',
        '      relays: { a: { tasmota: tasmota_HP, relay: 1 }, b: { tasmota: tasmota_HP, relay: 2 } },',
        '      tank: { volume_l: 200, min_c: 45, max_c: 60, temperature: { tasmota: tasmota_HP, sensor: DS18B20 } },',
        '      meter: { tasmota: tasmota_HP } }',
      ].join('\n') + '\n',
      { clock },
    );
    cleanups.push(() => h.stop());
    const hp = h.hub.registry.get('hp') as Device;
    await until(() => hp.available, 'relay states known');
    const cap = hp.caps.heatPump!;
    expect(cap.sgReadyState()).toBe(2);
    sim.publishSensor();
    await until(() => cap.tankC() !== undefined, 'tank temperature');
    expect(cap.tankC()).toBeCloseTo(47.5, 1);
    await until(() => h.readings.some((r) => r.deviceId === 'hp'), 'meter reading');

    const pair = () => [sim.relayA, sim.relayB];
    const relayCommands = () => obs.messages.filter((m) => /POWER[12]$/.test(m.topic) && m.payload !== '').map((m) => `${m.topic.split('/').pop()} ${m.payload}`);
    // normal → forced: both relays change; B goes first, so the pump passes through "recommended", never "blocked"
    await cap.setSgReady(4, 'test');
    expect(pair()).toEqual(STATES[4]);
    expect(cap.sgReadyState()).toBe(4);
    expect(relayCommands()).toEqual(['POWER2 ON', 'POWER1 ON']);
    // inside the dwell a new request waits, and only the latest counts
    await clock.advance(60_000);
    await cap.setSgReady(3);
    await cap.setSgReady(1);
    expect(pair()).toEqual(STATES[4]);
    expect(cap.requestedState()).toBe(1);
    await clock.advance(539_000);
    expect(pair()).toEqual(STATES[4]);
    await clock.advance(1_000);
    await until(() => cap.sgReadyState() === 1, 'blocked after the dwell');
    expect(pair()).toEqual(STATES[1]);
    // forced (1/1) → blocked (1/0): one relay, one command
    expect(relayCommands()).toEqual(['POWER2 ON', 'POWER1 ON', 'POWER2 OFF']);
    // a block ends by itself after max_block_s
    await clock.advance(3_600_000);
    await until(() => cap.sgReadyState() === 2, 'back to normal after max_block_s');
    expect(pair()).toEqual(STATES[2]);
    // recommended from normal: B alone; the simulated pump heats in 3, not in 1
    await clock.advance(600_000);
    await cap.setSgReady(3);
    expect(pair()).toEqual(STATES[3]);
    expect(h.logText()).toMatch(/state 1 \(blocked\) waits 540 s/);
    expect(h.logText()).toMatch(/block held 3600 s, the longest allowed: back to normal/);
  });
});

describeWithPeers(['mosquitto'], 'sg_ready on generic MQTT relays (Shelly Gen1 topics) against Debian mosquitto', () => {
  it('publishes the configured payloads and takes the state from the state topics', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    // a stand-in for two Shelly 1 relays: answers each command on its state topic
    const dev = await observer(broker.url, ['shellies/+/relay/0/command']);
    cleanups.push(() => dev.client.endAsync());
    dev.client.on('message', (topic, payload) => void dev.client.publish(topic.replace(/\/command$/, ''), payload.toString(), { retain: true }));
    for (const id of ['shelly1-A', 'shelly1-B']) await dev.client.publishAsync(`shellies/${id}/relay/0`, 'off', { retain: true });
    const h = await startHub(
      [
        'site: { id: home }',
        `connections: { mqtt: { url: "${broker.url}" } }`,
        'devices:',
        '  - { id: hp, adapter: sg_ready, min_dwell_s: 0, tank: {},',
        '      relays: { a: { mqtt: { command_topic: shellies/shelly1-A/relay/0/command, state_topic: shellies/shelly1-A/relay/0 } },',
        '                b: { mqtt: { command_topic: shellies/shelly1-B/relay/0/command, state_topic: shellies/shelly1-B/relay/0 } } } }',
      ].join('\n') + '\n',
    );
    cleanups.push(() => h.stop());
    const hp = h.hub.registry.get('hp') as Device;
    await until(() => hp.available, 'relay states known');
    for (const s of [3, 4, 1, 2] as SgReadyState[]) {
      await hp.caps.heatPump!.setSgReady(s);
      expect(hp.caps.heatPump!.sgReadyState()).toBe(s);
    }
    const sent = dev.messages.map((m) => `${m.topic.split('/')[1]} ${m.payload}`);
    // 2→3: B on; 3→4: A on; 4→1: B off; 1→2: A off
    expect(sent).toEqual(['shelly1-B on', 'shelly1-A on', 'shelly1-B off', 'shelly1-A off']);
  });
});

describeWithPeers(['pymodbus'], 'sg_ready on Modbus coils against Debian pymodbus', () => {
  it('writes the coil pair of each state (function 5) and reads the tank register', async () => {
    const script = fileURLToPath(new URL('./test/coil_server.py', import.meta.url));
    const child = spawn(SYSTEM_PYTHON, [script, '--temp', '523'], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => /ready \d+/.test(out), 'pymodbus ready', 10_000);
    const port = Number(/ready (\d+)/.exec(out)![1]);
    const h = await startHub(
      [
        'site: { id: home }',
        `connections: { modbus: [ { id: io, tcp: { host: 127.0.0.1, port: ${port} } } ] }`,
        'devices:',
        '  - { id: hp, adapter: sg_ready, min_dwell_s: 0, poll_s: 1,',
        '      relays: { a: { modbus: { connection: io, unit: 1, coil: 2 } }, b: { modbus: { connection: io, unit: 1, coil: 3 } } },',
        '      tank: { temperature: { modbus: { connection: io, unit: 1, register: 100, scale: 0.1 } } } }',
      ].join('\n') + '\n',
    );
    cleanups.push(() => h.stop());
    const hp = h.hub.registry.get('hp') as Device;
    await until(() => hp.available, 'coils read');
    expect(hp.caps.heatPump!.sgReadyState()).toBe(2);
    expect(hp.caps.heatPump!.tankC()).toBeCloseTo(52.3, 5);
    const writes = () => out.split('\n').filter((l) => l.startsWith('coil '));
    await hp.caps.heatPump!.setSgReady(4);
    // normal → forced: coil 3 (B) first, then coil 2 (A)
    expect(writes()).toEqual(['coil 3 1', 'coil 2 1']);
    await hp.caps.heatPump!.setSgReady(1);
    await hp.caps.heatPump!.setSgReady(3);
    // forced → blocked: B off; blocked → recommended: both change, B first would make 1/1 (forced), A first 0/0 (normal)
    expect(writes()).toEqual(['coil 3 1', 'coil 2 1', 'coil 3 0', 'coil 2 0', 'coil 3 1']);
    expect(hp.caps.heatPump!.sgReadyState()).toBe(3);
  });
});
