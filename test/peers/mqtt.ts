import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../../src/api/index.js';
import { createLogger } from '../../src/core/logging.js';

/**
 * Real MQTT peers for tests: Debian's mosquitto broker on a free loopback port (installed by
 * .ci/run), and plain mqtt.js clients standing in for devices and observers.
 */

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it returns true; fails with `what` after `ms`. */
export async function until(check: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export class Mosquitto {
  private proc?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'homeflex-mosquitto-'));
  log = '';
  private constructor(readonly port: number, private readonly users?: Record<string, string>) {}

  /** Starts mosquitto listening on 127.0.0.1 only, anonymous unless `users` are given. */
  static async start(users?: Record<string, string>): Promise<Mosquitto> {
    const m = new Mosquitto(await freePort(), users);
    const lines = [`listener ${m.port} 127.0.0.1`, 'persistence false', 'log_dest stdout', 'log_type error', 'log_type warning'];
    if (users) {
      const pw = join(m.dir, 'passwd');
      writeFileSync(pw, '');
      for (const [u, p] of Object.entries(users)) {
        const r = spawnSync('mosquitto_passwd', ['-b', pw, u, p]);
        if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr}`);
      }
      // mosquitto drops root privileges before reading the file, so it must be readable by others
      chmodSync(m.dir, 0o755);
      chmodSync(pw, 0o644);
      lines.push('allow_anonymous false', `password_file ${pw}`);
    } else lines.push('allow_anonymous true');
    writeFileSync(join(m.dir, 'mosquitto.conf'), lines.join('\n') + '\n');
    await m.run();
    return m;
  }

  get url() {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  private async run() {
    const proc = (this.proc = spawn('mosquitto', ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] }));
    proc.stdout!.on('data', (d) => (this.log += d));
    proc.stderr!.on('data', (d) => (this.log += d));
    const end = Date.now() + 5000;
    while (!(await canConnect(this.port))) {
      if (proc.exitCode !== null || Date.now() > end) throw new Error(`mosquitto did not start on ${this.port}:\n${this.log}`);
      await sleep(20);
    }
  }

  /** Stops the broker (SIGTERM) and waits for it to exit. */
  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  async restart() {
    await this.stop();
    await this.run();
  }

  /** `mosquitto_pub` as an independent peer. */
  pub(topic: string, message: string, opts: { retain?: boolean; nullMessage?: boolean; file?: string } = {}) {
    const args = ['-h', '127.0.0.1', '-p', String(this.port), '-t', topic, '-q', '1'];
    if (opts.retain) args.push('-r');
    if (opts.nullMessage) args.push('-n');
    else if (opts.file) args.push('-f', opts.file);
    else args.push('-m', message);
    const r = spawnSync('mosquitto_pub', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mosquitto_pub failed: ${r.stderr}`);
  }

  /** `mosquitto_sub` collecting `count` messages (with topics) or stopping after `seconds`. */
  sub(filter: string, opts: { count?: number; seconds?: number; retainedOnly?: boolean } = {}): { topic: string; payload: string }[] {
    const args = ['-h', '127.0.0.1', '-p', String(this.port), '-t', filter, '-v', '-W', String(opts.seconds ?? 2)];
    if (opts.count) args.push('-C', String(opts.count));
    if (opts.retainedOnly) args.push('--retained-only');
    const r = spawnSync('mosquitto_sub', args, { encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean).map((line) => {
      const i = line.indexOf(' ');
      return i === -1 ? { topic: line, payload: '' } : { topic: line.slice(0, i), payload: line.slice(i + 1) };
    });
  }
}

/** A plain MQTT client that records every message it receives. */
export async function observer(url: string, filters: string[], options: mqtt.IClientOptions = {}): Promise<{ client: MqttClient; messages: { topic: string; payload: string; retain: boolean }[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, ...options });
  const messages: { topic: string; payload: string; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filters, { qos: 1 });
  return { client, messages };
}

/** A logger whose lines are kept for assertions. */
export function recordingLogger(level = 'debug'): { log: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { log: createLogger({ destination, level }), lines, text: () => lines.join('') };
}
