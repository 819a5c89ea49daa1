import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceSubject, directionOf, locationSubject, tariffRateOf } from '../../src/metering/records.js';
import { MeteringService } from '../../src/metering/service.js';
import { MeterStore } from '../../src/metering/store.js';

const T0 = Date.UTC(2024, 7, 1, 10);
const S = 10_000;

const stores: MeterStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function metering() {
  const store = await MeterStore.open(mkdtempSync(join(tmpdir(), 'hf-readings-')));
  stores.push(store);
  return new MeteringService({ store, site: { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' }, prices: () => undefined, devices: () => [] });
}

const rows = (m: MeteringService, subject: string) => {
  const set = m.store.intervals(subject, -Infinity, Infinity, { labels: true });
  return Array.from({ length: set.n }, (_, i) => ({ start: (set.start[i] - T0) / S, end: (set.end[i] - T0) / S, wh: Math.round(set.energy[i] * 1000) / 1000, flow: `${directionOf(set.flags[i])}/${tariffRateOf(set.flags[i])}`, session: set.session![i] })).sort((a, b) => a.start - b.start || a.flow.localeCompare(b.flow));
};

describe('adapters’ meter readings', () => {
  it('only the site’s grid meter books to the location; another device’s grid channel is its own sub-meter (issue 18)', async () => {
    const store = await MeterStore.open(mkdtempSync(join(tmpdir(), 'hf-readings-')));
    stores.push(store);
    const m = new MeteringService({ store, site: { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' }, prices: () => undefined, devices: () => [], gridMeter: () => 'p1' });
    for (const k of [0, 6]) {
      m.onReading('p1', { time: T0 + k * S, importWh: 1000 + k * 10, exportWh: 0, channel: 'grid' }, 'meter');
      // a hybrid inverter's meter on the garage circuit: counters of another magnitude altogether
      m.onReading('garage', { time: T0 + k * S, importWh: 500_000 + k, exportWh: 80_000, channel: 'grid' }, 'storage');
    }
    await m.settled();
    expect(rows(m, locationSubject('home')).map((r) => [r.flow, r.wh])).toEqual([['IMPORT/IMPORT', 60]]);
    expect(rows(m, deviceSubject('garage:grid')).map((r) => [r.flow, r.wh])).toEqual([['IMPORT/IMPORT', 6]]);
  });

  it('stores a minute while energy flows, an hour while idle, and cuts at session changes', async () => {
    const m = await metering();
    let wh = 0;
    // 0–1 h idle, then plugged in (session A) and charging 3.6 kW for 3 minutes, then unplugged
    for (let k = 0; k <= 360; k++) m.onReading('ev', { time: T0 + k * S, importWh: wh }, 'ev');
    for (let k = 361; k <= 379; k++) {
      if (k > 361) wh += 10;
      m.onReading('ev', { time: T0 + k * S, importWh: wh, sessionId: 'A' }, 'ev');
    }
    m.onReading('ev', { time: T0 + 380 * S, importWh: wh }, 'ev');
    await m.drain();
    expect(rows(m, deviceSubject('ev'))).toEqual([
      { start: 0, end: 360, wh: 0, flow: 'IMPORT/IMPORT', session: null },
      { start: 360, end: 361, wh: 0, flow: 'IMPORT/IMPORT', session: 'A' },
      { start: 361, end: 367, wh: 60, flow: 'IMPORT/IMPORT', session: 'A' },
      { start: 367, end: 373, wh: 60, flow: 'IMPORT/IMPORT', session: 'A' },
      { start: 373, end: 379, wh: 60, flow: 'IMPORT/IMPORT', session: 'A' },
      { start: 379, end: 380, wh: 0, flow: 'IMPORT/IMPORT', session: 'A' },
    ]);
  });

  it('maps counters to direction and tariff: a battery supplies at the import rate, PV is local, the grid channel is the site', async () => {
    const m = await metering();
    for (const k of [0, 6]) {
      m.onReading('battery', { time: T0 + k * S, importWh: k * 10, exportWh: k * 5 }, 'storage');
      m.onReading('pv', { time: T0 + k * S, exportWh: k * 100 }, 'pv');
      m.onReading('meter', { time: T0 + k * S, importWh: k, exportWh: k * 2, channel: 'grid' }, 'meter');
      m.onReading('inverter', { time: T0 + k * S, importWh: k * 3, channel: 'battery' }, 'meter');
    }
    await m.settled();
    expect(rows(m, deviceSubject('battery')).map((r) => [r.flow, r.wh])).toEqual([
      ['EXPORT/IMPORT', 30],
      ['IMPORT/IMPORT', 60],
    ]);
    expect(rows(m, deviceSubject('pv')).map((r) => [r.flow, r.wh])).toEqual([['EXPORT/LOCAL', 600]]);
    expect(rows(m, locationSubject('home')).map((r) => [r.flow, r.wh])).toEqual([
      ['EXPORT/EXPORT', 12],
      ['IMPORT/IMPORT', 6],
    ]);
    expect(rows(m, deviceSubject('inverter:battery')).map((r) => [r.flow, r.wh])).toEqual([['IMPORT/IMPORT', 18]]);
  });

  it('continues after a restart from the last stored reading, so the downtime’s energy is kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-readings-'));
    const site = { id: 'home', name: 'Home', timezone: 'Europe/Berlin', currency: 'EUR' };
    let store = await MeterStore.open(dir);
    let m = new MeteringService({ store, site, prices: () => undefined, devices: () => [] });
    m.onReading('heater', { time: T0, importWh: 1000 }, 'meter');
    m.onReading('heater', { time: T0 + 6 * S, importWh: 1100 }, 'meter');
    await m.drain();
    await store.close();
    store = await MeterStore.open(dir);
    stores.push(store);
    m = new MeteringService({ store, site, prices: () => undefined, devices: () => [] });
    m.onReading('heater', { time: T0 + 360 * S, importWh: 1700 }, 'meter');
    await m.settled();
    expect(rows(m, deviceSubject('heater')).map((r) => [r.start, r.end, r.wh])).toEqual([
      [0, 6, 100],
      [6, 360, 600],
    ]);
  });
});
