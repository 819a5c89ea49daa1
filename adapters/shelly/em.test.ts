import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { startHub } from '../../test/peers/hub.js';
import { Mosquitto, observer, sleep, until } from '../../test/peers/mqtt.js';
import { describeWithPeers } from '../../test/peers/system.js';
import { gen1EmValues, gen2EmValues } from './em.js';
import { cleanupsAfterEach } from '../../test/peers/cleanups.js';

// Recorded whole-device dumps of a real Pro 3EM (Gen2) and a real 3EM (Gen1); see test/fixtures/mqtt-payloads/LICENSE-NOTE.md.
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'mqtt-payloads', 'shelly');
const pro3em = JSON.parse(readFileSync(join(fixtures, 'shellypro3em-A0DD6CA0C27C.json'), 'utf8')) as { shelly: { id: string }; status: Record<string, Record<string, unknown>> };
const em3 = JSON.parse(readFileSync(join(fixtures, 'shellyem3-485519D732F4.json'), 'utf8')) as { settings: { mqtt: { id: string } }; status: { emeters: { power: number; total: number; total_returned: number }[] } };

const cleanups = cleanupsAfterEach();

describe('Shelly EM readings', () => {
  it('Pro 3EM (em:0 + emdata:0 of a real GetStatus): net power per phase and the Wh totals', () => {
    expect(gen2EmValues(pro3em.status)).toEqual({ powerW: 6.78, phasesW: [0, 0, 6.8], importWh: 45236.97, exportWh: 0 });
  });
  it('3EM (emeters of a real Gen1 status): phases summed, totals summed', () => {
    expect(gen1EmValues(em3.status.emeters, [0, 1, 2])).toEqual({ powerW: 6.6, phasesW: [6.6, 0, 0], importWh: 31972.1, exportWh: 0 });
    expect(gen1EmValues(em3.status.emeters, [0, 4])).toBeUndefined();
  });
  it('Pro EM (em1:<i>, fields as the Gen2 EM1 API documents them)', () => {
    const status = { 'em1:0': { id: 0, act_power: -1200.5 }, 'em1data:0': { id: 0, total_act_energy: 1000, total_act_ret_energy: 250.5 } };
    expect(gen2EmValues(status)).toEqual({ powerW: -1200.5, phasesW: [-1200.5], importWh: 1000, exportWh: 250.5 });
  });
});

const site = (url: string, device: string) => `site: { id: home }\nconnections:\n  mqtt: { url: "${url}" }\ndevices:\n  - ${device}\n`;
const lines = (text: string, needle: string) => text.split('\n').filter((l) => l.includes(needle));

describeWithPeers(['mosquitto'], 'shelly-em against mosquitto', () => {
  it('Gen2 Pro 3EM: answers to EM.GetStatus / EMData.GetStatus from the recorded device, then NotifyStatus partial updates; a garbled payload is logged once and changes nothing', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const prefix = pro3em.shelly.id; // shellypro3em-a0dd6ca0c27c, as the real device names itself
    // the device stand-in: answers RPC requests on <prefix>/rpc from the recorded status, nothing else
    const device = await mqtt.connectAsync(broker.url, { clientId: prefix });
    cleanups.push(() => device.endAsync());
    const asked: string[] = [];
    device.on('message', (_t, payload) => {
      const req = JSON.parse(payload.toString()) as { id: number; src: string; method: string };
      asked.push(req.method);
      const result = req.method === 'EM.GetStatus' ? pro3em.status['em:0'] : req.method === 'EMData.GetStatus' ? pro3em.status['emdata:0'] : undefined;
      const answer = result ? { id: req.id, src: prefix, dst: req.src, result } : { id: req.id, src: prefix, dst: req.src, error: { code: -114, message: `Method ${req.method} failed: No handler!` } };
      void device.publishAsync(`${req.src}/rpc`, JSON.stringify(answer));
    });
    await device.subscribeAsync(`${prefix}/rpc`);

    const h = await startHub(site(broker.url, `{ id: grid, adapter: shelly-em, generation: 2, topic: ${prefix}, poll_s: 60 }`));
    cleanups.push(() => h.stop());
    const grid = h.hub.registry.get('grid')!;
    await until(() => grid.available && grid.caps.meter!.last('grid')?.importWh === 45236.97, 'first reading from the RPC answers');
    expect(asked.slice(0, 2)).toEqual(['EM.GetStatus', 'EMData.GetStatus']);
    expect(grid.caps.meter!.last('grid')).toMatchObject({ channel: 'grid', powerW: 6.78, phasesW: [0, 0, 6.8], exportWh: 0 });

    // NotifyStatus (Gen2 notification format) carries only what changed: phase A now exports
    const notify = (params: object) => broker.pub(`${prefix}/events/rpc`, JSON.stringify({ src: prefix, dst: `${prefix}/events`, method: 'NotifyStatus', params: { ts: 1733140000.12, ...params } }));
    notify({ 'em:0': { id: 0, a_act_power: -1500.5, total_act_power: -1493.7 } });
    await until(() => grid.caps.meter!.last('grid')?.powerW === -1493.7, 'partial update merged');
    expect(grid.caps.meter!.last('grid')!.phasesW).toEqual([-1500.5, 0, 6.8]);
    notify({ 'emdata:0': { id: 0, total_act_ret: 12.5 } });
    await until(() => grid.caps.meter!.last('grid')?.exportWh === 12.5, 'export counter');

    const before = grid.caps.meter!.last('grid');
    const count = h.readings.length;
    broker.pub(`${prefix}/events/rpc`, '{"method":"NotifyStatus","params":{"em:0":');
    broker.pub(`${prefix}/events/rpc`, 'garbage');
    await until(() => lines(h.logText(), 'that is not a JSON object').length >= 1, 'logged');
    await sleep(200);
    expect(lines(h.logText(), 'that is not a JSON object')).toHaveLength(1);
    expect(h.readings.length).toBe(count);
    expect(grid.caps.meter!.last('grid')).toBe(before);
  });

  it('Gen1 3EM: per-value topics of the recorded device, net per-phase power, totals in Wh', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const id = em3.settings.mqtt.id; // shellyem3-485519D732F4
    const base = `shellies/${id}`;
    const obs = await observer(broker.url, [`${base}/command`]);
    cleanups.push(() => obs.client.endAsync());
    const h = await startHub(site(broker.url, `{ id: grid, adapter: shelly-em, generation: 1, topic: ${id} }`));
    cleanups.push(() => h.stop());
    const grid = h.hub.registry.get('grid')!;
    await until(() => obs.messages.some((m) => m.payload === 'update'), 'the hub asks for an update');
    const publishAll = () =>
      em3.status.emeters.forEach((e, i) => {
        for (const key of ['power', 'total', 'total_returned'] as const) broker.pub(`${base}/emeter/${i}/${key}`, String(e[key]));
      });
    publishAll();
    await until(() => grid.available && grid.caps.meter!.last('grid')?.importWh === 31972.1, 'first reading');
    expect(grid.caps.meter!.last('grid')).toMatchObject({ powerW: 6.6, phasesW: [6.6, 0, 0], exportWh: 0 });
    // phase B starts exporting (PV on L2)
    broker.pub(`${base}/emeter/1/power`, '-2000.4');
    await until(() => grid.caps.meter!.last('grid')?.powerW === -1993.8, 'net of the phases');
    expect(grid.caps.meter!.last('grid')!.phasesW).toEqual([6.6, -2000.4, 0]);
    broker.pub(`${base}/online`, 'false');
    await until(() => !grid.available, 'offline by last will');
  });
});
