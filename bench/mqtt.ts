import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { TasmotaSimulator } from '../adapters/tasmota/simulator.js';
import { Hub } from '../src/core/host.js';
import { createLogger } from '../src/core/logging.js';
import { fitThermalModel } from '../src/optimiser/thermal-fit.js';
import { syntheticHistory } from '../src/optimiser/thermal-history.js';
import { fmtMs, median, type BenchSection } from './types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const freePort = async () => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/**
 * MQTT devices (issue 8): a switch command's round trip through the hub's embedded broker to a
 * simulated Tasmota socket and back, how many device messages per second the adapters digest,
 * and how long learning a thermal model takes.
 */
export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-bench-mqtt-'));
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  const sockets = 20;
  const devices = Array.from({ length: sockets }, (_, i) => `  - { id: plug${i}, adapter: tasmota, topic: bench_${i}, rated_power_w: 1000 }`).join('\n');
  const hub = new Hub({
    configText: `site: { id: bench }\nhttp: { port: 0 }\nconnections: { mqtt: { embedded: { port: ${port} } } }\ndevices:\n${devices}\n`,
    logger: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), level: 'warn' }),
    override: (c) => void (c.storage.dir = dir),
  });
  let readings = 0;
  hub.bus.on('meter.reading', () => readings++);
  await hub.start();
  const sims = Array.from({ length: sockets }, (_, i) => new TasmotaSimulator({ url, topic: `bench_${i}`, ratedPowerW: 1000, autoTele: false }));
  try {
    await Promise.all(sims.map((s) => s.start()));
    const plug0 = hub.registry.get('plug0')!;
    for (let i = 0; i < 200 && !hub.registry.all().every((d) => d.available); i++) await sleep(20);

    // switch round trip: command out, device confirms, capability resolves
    const rtt: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = process.hrtime.bigint();
      await plug0.caps.switch!.set(i % 2 === 0);
      rtt.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }

    // ingestion: a separate client floods SENSOR messages for all sockets (QoS 0, as devices send them)
    const flood = await mqtt.connectAsync(url);
    const n = 20_000;
    const before = readings;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      flood.publish(`tele/bench_${i % sockets}/SENSOR`, JSON.stringify({ Time: '2026-01-01T00:00:00', ENERGY: { Total: 1 + i / 1e6, Power: i % 1000 } }));
      if (i % 1000 === 999) await sleep(0);
    }
    for (let i = 0; i < 500 && readings - before < n; i++) await sleep(10);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const got = readings - before;
    await flood.endAsync();
    const rate = got / seconds;

    // thermal fit: 7 and 30 days of 5-minute history
    const fitMs = (days: number) => {
      const h = syntheticHistory({ rKPerKw: 5, cKwhPerK: 3, cop: 3, maxElectricW: 1500, gainsW: 600, mode: 'cool', days, stepMin: 5, outdoorMinC: 23, outdoorMaxC: 35, setpoints: [[0, 25], [7, 24], [14, 23], [20, 25]], startC: 25, noiseC: 0.1 });
      const t = process.hrtime.bigint();
      fitThermalModel(h, { mode: 'cool', cop: 3 });
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    const fit7 = median([fitMs(7), fitMs(7), fitMs(7)]);
    const fit30 = median([fitMs(30), fitMs(30), fitMs(30)]);

    const rttMedian = median(rtt);
    return {
      title: 'MQTT devices (issue 8): switch round trip, message ingestion, thermal fit',
      rows: [
        { name: 'switch.set → cmnd/POWER → device → stat/RESULT → resolved (embedded broker, loopback), median of 200', value: fmtMs(rttMedian), target: '< 10 ms (Nagle’s algorithm left on costs ~40 ms)', ok: rttMedian < 10 },
        { name: 'same, 95th percentile', value: fmtMs(pct(rtt, 0.95)) },
        { name: `tele/SENSOR messages digested into meter readings (${sockets} sockets, ${n} messages)`, value: `${Math.round(rate).toLocaleString('en')} msg/s (${got} of ${n})`, target: '≥ 5,000 msg/s, none lost', ok: rate >= 5000 && got === n },
        { name: 'fit R, C, gains from 7 days of 5-minute history (2,016 samples)', value: fmtMs(fit7), target: '< 2 s', ok: fit7 < 2000 },
        { name: 'same from 30 days (8,640 samples)', value: fmtMs(fit30), target: '< 10 s', ok: fit30 < 10_000 },
      ],
      notes: [
        'The hub, its embedded aedes broker, the simulated sockets and the flooding client share one process and the machine\'s cores, so these are upper bounds of the hub\'s own cost.',
        'Fit quality (error figures) is in adapters/thermostat-common/README.md.',
      ],
    };
  } finally {
    await Promise.all(sims.map((s) => s.stop()));
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
