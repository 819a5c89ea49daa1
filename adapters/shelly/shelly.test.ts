import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, observer, until } from '../../test/peers/mqtt.js';
import { gen2SwitchStatus, wattMinutesToWh } from './index.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'mqtt-payloads', 'shelly');
const plus1pm = JSON.parse(readFileSync(join(fixtures, 'shellyplus1pm-441793D69718.json'), 'utf8')) as { status: Record<string, unknown>; shelly: { id: string } };
const plugS = JSON.parse(readFileSync(join(fixtures, 'shellyplug-s-4022D88349C4.json'), 'utf8')) as { settings: { mqtt: { id: string } }; status: { relays: { ison: boolean }[] } };

const cleanups = cleanupsAfterEach();

const site = (url: string, device: string) => `site: { id: home }\nconnections:\n  mqtt: { url: "${url}" }\ndevices:\n  - ${device}\n`;

describe('shelly helpers', () => {
  it('converts Gen1 watt-minutes to Wh', () => {
    expect(wattMinutesToWh(6000)).toBe(100);
  });

  it('reads switch:0 of a real Plus 1PM Shelly.GetStatus', () => {
    expect(gen2SwitchStatus(plus1pm.status['switch:0'])).toEqual({ on: false, powerW: 0, totalWh: 66 });
    expect(gen2SwitchStatus({ output: true })).toEqual({ on: true, powerW: undefined, totalWh: undefined });
    expect(gen2SwitchStatus('nonsense')).toBeUndefined();
  });
});

describeWithPeers(['mosquitto'], 'shelly Gen1 against mosquitto, with mosquitto_pub as the device', () => {
  it('switches by command topic, meters watt-minutes as Wh, and survives the reset to zero on reboot', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const id = plugS.settings.mqtt.id; // shellyplug-s-4022D88349C4, as the real device names itself
    const base = `shellies/${id}`;
    const obs = await observer(broker.url, [`${base}/#`]);
    cleanups.push(() => obs.client.endAsync());
    const h = await startHub(site(broker.url, `{ id: kettle, adapter: shelly, generation: 1, topic: ${id}, rated_power_w: 2000 }`));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('kettle')!;
    // the hub asks the device to publish its state
    await until(() => obs.messages.some((m) => m.topic === `${base}/command` && m.payload === 'update'), 'update request');

    broker.pub(`${base}/online`, 'true', { retain: true });
    broker.pub(`${base}/relay/0`, plugS.status.relays[0].ison ? 'on' : 'off');
    await until(() => device.available && device.caps.switch!.isOn() === true, 'available and on');
    broker.pub(`${base}/relay/0/power`, '1998.5');
    broker.pub(`${base}/relay/0/energy`, '6000');
    await until(() => device.caps.meter!.last()?.importWh === 100, '6000 Wmin = 100 Wh');
    expect(device.caps.meter!.last()?.powerW).toBe(1998.5);

    // switch off: the hub commands, the device (here mosquitto_pub) confirms on relay/0
    const pending = device.caps.switch!.set(false);
    await until(() => obs.messages.some((m) => m.topic === `${base}/relay/0/command` && m.payload === 'off'), 'off command');
    broker.pub(`${base}/relay/0`, 'off');
    await pending;
    expect(device.caps.switch!.isOn()).toBe(false);

    // reboot: the counter starts again from zero
    broker.pub(`${base}/online`, 'false', { retain: true });
    await until(() => !device.available, 'offline');
    broker.pub(`${base}/online`, 'true', { retain: true });
    broker.pub(`${base}/relay/0/energy`, '120');
    await until(() => device.caps.meter!.last()?.importWh === 102, 'register 100 + 2 Wh after the reset');
    broker.pub(`${base}/relay/0/energy`, '180');
    await until(() => device.caps.meter!.last()?.importWh === 103, 'counting on');
    expect(h.logText()).toMatch(/energy counter went back/);

    // and across a hub restart the register is where it was
    broker.pub(`${base}/relay/0/energy`, 'garbage');
    await until(() => /ignored an energy counter that is not a non-negative number/.test(h.logText()), 'bad energy logged');
  });

  it('keeps the register across a hub restart while the device rebooted', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const base = 'shellies/shellyplug-s-X';
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-shelly-'));
    const yaml = site(broker.url, '{ id: kettle, adapter: shelly, generation: 1, topic: shellyplug-s-X }');
    const h1 = await startHub(yaml, { storageDir: dir });
    cleanups.push(() => h1.stop());
    const d1 = h1.hub.registry.get('kettle')!;
    broker.pub(`${base}/online`, 'true', { retain: true });
    await until(() => d1.available, 'online');
    broker.pub(`${base}/relay/0/energy`, '60000');
    await until(() => d1.caps.meter!.last()?.importWh === 1000, '1000 Wh');
    await h1.stop();
    // while the hub was down the plug rebooted; it has counted 30 Wmin since
    const h2 = await startHub(yaml, { storageDir: dir });
    cleanups.push(() => h2.stop());
    const d2 = h2.hub.registry.get('kettle')!;
    await until(() => d2.available, 'online again');
    broker.pub(`${base}/relay/0/energy`, '30');
    await until(() => d2.caps.meter!.last()?.importWh === 1000.5, 'register continues at 1000.5 Wh');
  });
});

describeWithPeers(['mosquitto'], 'shelly Gen2+ RPC against mosquitto', () => {
  /** A Plus 1PM speaking RPC over MQTT, answering from the real device's recorded status. */
  async function fakePlus(url: string) {
    const prefix = plus1pm.shelly.id;
    const status = structuredClone(plus1pm.status) as Record<string, Record<string, unknown>>;
    const calls: { method: string; params?: unknown; src: string }[] = [];
    const dev = await mqtt.connectAsync(url, { clientId: prefix, will: { topic: `${prefix}/online`, payload: Buffer.from('false'), retain: true, qos: 1 } });
    await dev.subscribeAsync(`${prefix}/rpc`, { qos: 1 });
    dev.on('message', (_topic, payload) => {
      const req = JSON.parse(payload.toString()) as { id: number; src: string; method: string; params?: { id: number; on: boolean } };
      calls.push(req);
      const reply = (body: Record<string, unknown>) => dev.publish(`${req.src}/rpc`, JSON.stringify({ id: req.id, src: prefix, dst: req.src, ...body }));
      if (req.method === 'Shelly.GetStatus') reply({ result: status });
      else if (req.method === 'Switch.Set' && req.params?.id === 0) {
        const was = status['switch:0'].output;
        status['switch:0'].output = req.params.on;
        status['switch:0'].apower = req.params.on ? 1500 : 0;
        reply({ result: { was_on: was } });
        dev.publish(`${prefix}/events/rpc`, JSON.stringify({ src: prefix, dst: `${prefix}/events`, method: 'NotifyStatus', params: { ts: 1, 'switch:0': { id: 0, output: req.params.on, apower: status['switch:0'].apower } } }));
      } else reply({ error: { code: -105, message: `Argument 'id', value ${req.params?.id} not found!` } });
    });
    await dev.publishAsync(`${prefix}/online`, 'true', { retain: true, qos: 1 });
    return { dev, prefix, status, calls };
  }

  it('reads Shelly.GetStatus, switches with Switch.Set, follows NotifyStatus with apower and aenergy.total in Wh', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const plus = await fakePlus(broker.url);
    cleanups.push(() => plus.dev.endAsync());
    const h = await startHub(site(broker.url, `{ id: boiler, adapter: shelly, generation: 2, topic: ${plus.prefix}, rated_power_w: 1500 }`));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('boiler')!;
    await until(() => device.available && device.caps.meter!.last()?.importWh === 66, 'status from GetStatus: 66 Wh');
    expect(device.caps.switch!.isOn()).toBe(false);
    expect(plus.calls[0]).toMatchObject({ method: 'Shelly.GetStatus', src: 'homeflex-home-boiler' });

    await device.caps.switch!.set(true);
    expect(plus.calls.at(-1)).toMatchObject({ method: 'Switch.Set', params: { id: 0, on: true } });
    expect(device.caps.switch!.isOn()).toBe(true);
    await until(() => device.caps.meter!.last()?.powerW === 1500, 'apower from NotifyStatus');

    // the minute energy notification
    plus.dev.publish(`${plus.prefix}/events/rpc`, JSON.stringify({ method: 'NotifyStatus', params: { ts: 2, 'switch:0': { id: 0, aenergy: { total: 91.25, by_minute: [0, 0, 0] } } } }));
    await until(() => device.caps.meter!.last()?.importWh === 91.25, 'aenergy.total');
    plus.dev.publish(`${plus.prefix}/events/rpc`, 'not json');
    await until(() => /ignored a malformed payload/.test(h.logText()), 'malformed logged');

    // the device goes away: its will says online false
    (plus.dev as unknown as { stream: { destroy(): void } }).stream.destroy();
    await until(() => !device.available, 'offline by will');
    await expect(device.caps.switch!.set(false)).rejects.toThrow(/offline/);
  });

  it('reports an RPC error from the device as the switch failure', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const plus = await fakePlus(broker.url);
    cleanups.push(() => plus.dev.endAsync());
    const h = await startHub(site(broker.url, `{ id: boiler, adapter: shelly, generation: 2, topic: ${plus.prefix}, relay: 3 }`));
    cleanups.push(() => h.stop());
    const device = h.hub.registry.get('boiler')!;
    await until(() => /the device has no switch:3/.test(h.logText()), 'missing component logged');
    await until(() => device.available, 'online');
    await expect(device.caps.switch!.set(true)).rejects.toThrow(/RPC error -105 Argument 'id', value 3 not found!/);
  });
});
