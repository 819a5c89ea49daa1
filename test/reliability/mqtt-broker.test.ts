import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { freePort } from '../peers/mqtt.js';
import { sleep, until } from './helpers.js';
import { spawnCli } from '../peers/hub-process.js';

const MB = 1024 * 1024;

/** Resident set size of a process (Linux), in bytes. */
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** The remaining-length field of an MQTT fixed header (variable byte integer). */
function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/**
 * An unauthenticated client declaring a CONNECT of `declared` bytes and sending it all; resolves
 * with how many bytes the broker took before it closed the connection (or all of them).
 */
function hugeConnect(port: number, declared: number): Promise<{ sent: number; closedEarly: boolean }> {
  return new Promise((resolveSend) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const chunk = Buffer.alloc(MB);
    let sent = 0;
    let done = false;
    const finish = (closedEarly: boolean) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolveSend({ sent, closedEarly });
    };
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(sent < declared));
    socket.on('connect', () => {
      socket.write(Buffer.concat([Buffer.from([0x10]), remainingLength(declared)]));
      const pump = () => {
        while (sent < declared && !socket.destroyed) {
          const n = Math.min(chunk.length, declared - sent);
          sent += n;
          if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void socket.once('drain', pump);
        }
        // everything sent: give the broker a moment to answer or close
        if (sent >= declared) setTimeout(() => finish(false), 2000);
      };
      pump();
    });
  });
}

describe('embedded MQTT broker under oversize packets (the hub process)', () => {
  it('refuses three unauthenticated 200 MB CONNECTs before buffering them: RSS grows by less than 20 MB, and logins still work', async () => {
    const brokerPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'homeflex-mqtt-rss-'));
    const file = join(dir, 'site.yaml');
    writeFileSync(
      file,
      `site: { id: home }
http: { port: 0 }
storage: { dir: ${JSON.stringify(join(dir, 'data'))} }
log: { level: info, format: json }
connections:
  mqtt: { username: hub, password: hub-secret-pw, embedded: { host: 127.0.0.1, port: ${brokerPort} } }
devices:
  - { id: house, adapter: sim_load, tick_s: 1 }
  - { id: heater, adapter: tasmota, topic: tasmota_RSS, rated_power_w: 2000 }
`,
    );
    const proc = spawnCli(['start', '--config', file]);
    const child = proc.child;
    await until(() => /connected to MQTT broker/.test(proc.out) && /"url":"http/.test(proc.out), 'the hub to start with its broker', 90_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc.out}`);
    });
    await sleep(3000);
    const before = rssOf(child.pid!);

    const results = await Promise.all([0, 1, 2].map(() => hugeConnect(brokerPort, 200 * MB)));
    await sleep(1500);
    const after = rssOf(child.pid!);
    const growth = after - before;
    console.log(`hub RSS before ${(before / MB).toFixed(1)} MB, after three 200 MB CONNECTs ${(after / MB).toFixed(1)} MB (growth ${(growth / MB).toFixed(1)} MB); bytes the broker took: ${results.map((r) => (r.sent / MB).toFixed(1) + ' MB').join(', ')}`);

    expect(results.every((r) => r.closedEarly)).toBe(true);
    expect(growth).toBeLessThan(20 * MB);
    expect(proc.out).toMatch(/embedded MQTT broker closed a connection from 127\.0\.0\.1: it declared a packet of 209715205 bytes before its login was accepted/);

    // the broker still serves logins
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { username: 'hub', password: 'hub-secret-pw', reconnectPeriod: 0 });
    expect(client.connected).toBe(true);
    await client.endAsync();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });
});
