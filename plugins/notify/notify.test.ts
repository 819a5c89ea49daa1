import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { freePort, Mosquitto, observer, until } from '../../test/peers/mqtt.js';
import { describeWithPeers, SYSTEM_PYTHON } from '../../test/peers/system.js';
import { quietUntil } from './quiet.js';

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
async function listening(port: number, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An HTTP sink: every request it gets, with headers and body; `failNext` answers 503 that many times. */
async function httpSink() {
  const got: { path: string; headers: IncomingMessage['headers']; body: string }[] = [];
  let failNext = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (b) => (body += b));
    req.on('end', () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end('busy');
        return;
      }
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { got, url: `http://127.0.0.1:${port}`, fail: (n: number) => (failNext = n), close: () => new Promise<void>((r) => server.close(() => r())) };
}

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const r of running.splice(0).reverse()) await r.stop();
});

function logLines() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (l: string) => (lines.push(JSON.parse(l)), true) } as unknown as NodeJS.WritableStream });
  return { lines, logger };
}

async function hubWith(plugin: string, devices: string, at: string, extra = '', tariffs = 'tariffs: { import: { type: fixed, rate: 0.30 }, export: { type: fixed, rate: 0.08 } }') {
  const clock = new ManualClock(at);
  const { lines, logger } = logLines();
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-notify-'));
  const hub = new Hub({
    configText: `
site: { id: home, name: Home, timezone: Europe/Berlin, currency: EUR, grid: { max_import_w: 11000, max_export_w: 7000 } }
http: { port: 0 }
${tariffs}
${extra}
devices:
${devices}
plugins:
${plugin}
`,
    clock,
    logger,
    override: (c) => ((c.storage.dir = dir), (c.http.port = 0)),
  });
  running.push(hub);
  await hub.start();
  await hub.services.control?.settled();
  return { hub, clock, lines };
}

describe('quiet hours in local time', () => {
  it('22:00 to 07:00 lasts 8 real hours on the spring-forward night and 10 on the fall-back night', () => {
    const z = 'Europe/Berlin';
    // 2026-03-28 23:00 CET → quiet until 2026-03-29 07:00 CEST (05:00Z)
    expect(new Date(quietUntil(Date.parse('2026-03-28T22:00:00Z'), z, '22:00', '07:00')!).toISOString()).toBe('2026-03-29T05:00:00.000Z');
    expect(quietUntil(Date.parse('2026-03-28T21:00:00Z'), z, '22:00', '07:00')! - Date.parse('2026-03-28T21:00:00Z')).toBe(8 * 3_600_000);
    // 2026-10-24 22:00 CEST (20:00Z) → 2026-10-25 07:00 CET (06:00Z): 10 hours
    expect(quietUntil(Date.parse('2026-10-24T20:00:00Z'), z, '22:00', '07:00')! - Date.parse('2026-10-24T20:00:00Z')).toBe(10 * 3_600_000);
    // in the repeated hour (02:30 CEST, then 02:30 CET) it is quiet both times, until 07:00 CET
    expect(new Date(quietUntil(Date.parse('2026-10-25T00:30:00Z'), z, '22:00', '07:00')!).toISOString()).toBe('2026-10-25T06:00:00.000Z');
    expect(new Date(quietUntil(Date.parse('2026-10-25T01:30:00Z'), z, '22:00', '07:00')!).toISOString()).toBe('2026-10-25T06:00:00.000Z');
    // outside, and a window within one day
    expect(quietUntil(Date.parse('2026-10-25T06:00:00Z'), z, '22:00', '07:00')).toBeUndefined();
    expect(new Date(quietUntil(Date.parse('2026-03-29T11:00:00Z'), z, '12:00', '14:00')!).toISOString()).toBe('2026-03-29T12:00:00.000Z');
    // quiet hours that begin in the skipped hour (02:00-03:00 does not exist on 29 March)
    expect(quietUntil(Date.parse('2026-03-29T00:30:00Z'), z, '02:30', '06:00')).toBeUndefined(); // 01:30 CET
    expect(quietUntil(Date.parse('2026-03-29T01:10:00Z'), z, '02:30', '06:00')).toBe(Date.parse('2026-03-29T04:00:00Z')); // 03:10 CEST
  });
});

describe('notifications to ntfy and a webhook (HTTP sinks)', () => {
  it('tell a device offline after N minutes and back, an EV short of its target from the real plan, once each', async () => {
    const ntfy = await httpSink();
    const hook = await httpSink();
    running.push({ stop: () => ntfy.close() }, { stop: () => hook.close() });
    const { hub, clock } = await hubWith(
      `  - { id: notify, offline_after_minutes: 10, channels: [
        { id: phone, type: ntfy, url: "${ntfy.url}", topic: "home-alerts", token: tk_secret_token_1 },
        { id: hook, type: webhook, url: "${hook.url}/hook", events: [device_offline], headers: { X-Key: abc } } ] }`,
      `  - { id: ev, adapter: sim_ev, arrive: "18:00", leave: "19:30", arrival_soc_pct: 40, max_current_a: 16, phases: 1, tick_s: 60, target: { energy_wh: 30000, leave_time: "19:30" } }
  - { id: battery, adapter: sim_battery, capacity_wh: 10000, initial_soc_pct: 50, tick_s: 60 }`,
      '2026-06-01T16:10:00Z',
    );
    // the plan cannot put 30 kWh into the car in 80 minutes at 3.7 kW: told once on ntfy, not on the webhook (filtered)
    await until(() => ntfy.got.length >= 1, 'the shortfall notice');
    const short = ntfy.got[0];
    expect(short.path).toBe('/home-alerts');
    expect(Buffer.from(/=\?UTF-8\?B\?(.*)\?=/.exec(String(short.headers.title))![1], 'base64').toString()).toMatch(/^Home: ev will be \d+\.\d kWh short$/);
    expect(short.headers.priority).toBe('4');
    expect(short.headers.authorization).toBe('Bearer tk_secret_token_1');
    expect(String(short.headers.tags)).toContain('ev_target_at_risk');
    // re-plans do not repeat it
    await hub.services.control!.replan('test');
    await hub.services.control!.replan('test');
    await new Promise((r) => setTimeout(r, 100));
    expect(ntfy.got.filter((g) => String(g.headers.tags).includes('ev_target_at_risk'))).toHaveLength(1);

    // the battery goes away: nothing for 10 minutes, then one notice on both channels, then one "back"
    hub.bus.emit('device.state', { deviceId: 'battery', available: false, error: 'no answer from unit 1' });
    await clock.advance(9 * 60_000);
    expect(hook.got).toHaveLength(0);
    await clock.advance(2 * 60_000);
    await until(() => hook.got.length === 1, 'the offline webhook');
    const body = JSON.parse(hook.got[0].body) as Record<string, unknown>;
    expect(body).toMatchObject({ site: 'home', kind: 'device_offline', severity: 'warning', device_id: 'battery', title: 'battery is offline', resolved: false });
    expect(String(body.message)).toContain('no answer from unit 1');
    expect(hook.got[0].headers['x-key']).toBe('abc');
    await clock.advance(30 * 60_000);
    hub.bus.emit('device.state', { deviceId: 'battery', available: true });
    await until(() => hook.got.length === 2, 'the back-online webhook');
    expect(JSON.parse(hook.got[1].body)).toMatchObject({ kind: 'device_offline', severity: 'info', resolved: true, title: 'battery is back' });
    expect(hook.got).toHaveLength(2);
  });

  it('tell a plan that cannot be made only when it stays so for 10 minutes, and once when it works again', async () => {
    const ntfy = await httpSink();
    running.push({ stop: () => ntfy.close() });
    const { hub, clock } = await hubWith(
      `  - { id: notify, channels: [ { id: phone, type: ntfy, url: "${ntfy.url}", topic: t } ] }`,
      '  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 60 }',
      '2026-06-01T10:00:00Z',
      '',
      'tariffs: {}',
    );
    await clock.advance(5 * 60_000);
    await hub.services.control!.replan('test');
    await new Promise((r) => setTimeout(r, 100));
    expect(ntfy.got).toHaveLength(0);
    await clock.advance(6 * 60_000);
    await hub.services.control!.replan('test');
    await until(() => ntfy.got.length === 1, 'the plan_failed notice');
    expect(ntfy.got[0].headers.priority).toBe('5');
    expect(ntfy.got[0].body).toContain('no prices');
    await hub.services.control!.replan('test');
    await new Promise((r) => setTimeout(r, 100));
    expect(ntfy.got).toHaveLength(1);
    // prices arrive through the API: planning works again, told once
    const at = Date.parse('2026-06-01T10:00:00Z');
    const data = Array.from({ length: 96 }, (_, i) => ({ valid_from: new Date(at + i * 1_800_000).toISOString(), valid_to: new Date(at + (i + 1) * 1_800_000).toISOString(), rate: 0.3 }));
    const put = await fetch(`${hub.url}/api/v1/tariffs/rates/home?direction=IMPORT`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ currency_code: 'EUR', data }) });
    expect(put.status).toBe(200);
    await hub.services.control!.replan('test');
    await until(() => ntfy.got.length === 2, 'the works-again notice');
    expect(String(ntfy.got[1].headers.tags)).toContain('plan_failed');
  });

  it('a failing channel is logged once, retried with growing waits, and delivers in order when it works again; quiet hours hold the rest', async () => {
    const hook = await httpSink();
    running.push({ stop: () => hook.close() });
    // 21:50 Berlin; quiet from 22:00 to 07:00
    const { hub, clock, lines } = await hubWith(
      `  - { id: notify, quiet_hours: { from: "22:00", to: "07:00" }, channels: [ { id: hook, type: webhook, url: "${hook.url}/h" } ] }`,
      '  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 60 }',
      '2026-10-24T19:50:00Z',
    );
    hook.fail(3);
    hub.bus.emit('notice', { kind: 'command_refused', severity: 'warning', deviceId: 'battery', title: 'first', message: 'one' });
    hub.bus.emit('notice', { kind: 'session_finished', severity: 'info', title: 'second', message: 'two' });
    await until(() => lines.some((l) => String(l.msg).includes('notification channel hook (webhook) failed')), 'the failure log');
    await clock.advance(30_000); // first retry fails
    await clock.advance(60_000); // second retry fails
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.filter((l) => String(l.msg).includes('notification channel hook (webhook) failed'))).toHaveLength(1);
    await clock.advance(120_000); // third retry: works
    await until(() => hook.got.length === 2, 'both notices after the retries');
    expect(hook.got.map((g) => JSON.parse(g.body).title)).toEqual(['first', 'second']);
    expect(lines.some((l) => l.msg === 'notification channel hook works again')).toBe(true);

    // 22:30 (quiet): a warning waits; an error goes out at once (urgent)
    await clock.advance(25 * 60_000);
    hub.bus.emit('notice', { kind: 'prices_missing', severity: 'warning', title: 'held', message: 'prices' });
    hub.bus.emit('notice', { kind: 'plan_failed', severity: 'error', title: 'urgent', message: 'no plan' });
    await until(() => hook.got.length === 3, 'the urgent notice');
    expect(JSON.parse(hook.got[2].body).title).toBe('urgent');
    // the night of 24/25 October has 25 hours: 07:00 CET is 06:00Z, 10 h after 22:00 CEST
    await clock.jump(Date.parse('2026-10-25T05:59:00Z'));
    await clock.advance(30_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(hook.got).toHaveLength(3);
    await clock.advance(60_000);
    await until(() => hook.got.length === 4, 'the held notice at 07:00');
    expect(JSON.parse(hook.got[3].body)).toMatchObject({ title: 'held', time: expect.stringMatching(/^2026-10-25T06:00/) });
  });
});

describeWithPeers(['aiosmtpd'], 'notifications by e-mail (aiosmtpd as the SMTP server)', () => {
  let smtp: ChildProcess | undefined;
  afterEach(() => void smtp?.kill());

  it('sends the notice as a mail; a server that cannot do STARTTLS is refused while require_tls is on', async () => {
    const port = await freePort();
    smtp = spawn(SYSTEM_PYTHON, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let received = '';
    smtp.stdout!.on('data', (b) => (received += b));
    smtp.stderr!.on('data', (b) => (received += b));
    await listening(port);
    const { hub, lines } = await hubWith(
      `  - { id: notify, channels: [
        { id: mail, type: smtp, host: 127.0.0.1, port: ${port}, require_tls: false, from: "hub@home.example", to: ["me@home.example"] },
        { id: strict, type: smtp, host: 127.0.0.1, port: ${port}, from: "hub@home.example", to: ["me@home.example"] } ] }`,
      '  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 60 }',
      '2026-06-01T10:00:00Z',
    );
    hub.bus.emit('notice', { kind: 'session_finished', severity: 'info', deviceId: 'ev', title: 'ev charged 18.2 kWh for 4.37 EUR', message: 'Session S1 ended: 18.2 kWh, 4.37 EUR, 1.10 EUR less than charging at once.' });
    await until(() => received.includes('Session S1 ended'), 'the mail at the sink', 15_000);
    expect(received).toContain('Subject: [homeflex Home] ev charged 18.2 kWh for 4.37 EUR');
    expect(received).toMatch(/To: me@home\.example/);
    await until(() => lines.some((l) => /notification channel strict \(smtp\) failed: smtp 127\.0\.0\.1:\d+: .*STARTTLS/i.test(String(l.msg))), 'the STARTTLS refusal', 15_000);
  });
});

describeWithPeers(['mosquitto'], 'notifications on MQTT (Debian mosquitto)', () => {
  it('publishes each notice as JSON on the configured topic, not retained', async () => {
    const broker = await Mosquitto.start();
    running.push({ stop: () => broker.stop() });
    const watch = await observer(broker.url, ['homeflex/home/notices']);
    running.push({ stop: () => watch.client.endAsync() });
    const { hub } = await hubWith(
      '  - { id: notify, channels: [ { id: bus, type: mqtt, topic: homeflex/home/notices, events: [command_refused] } ] }',
      '  - { id: battery, adapter: sim_battery, capacity_wh: 10000, tick_s: 60 }',
      '2026-06-01T10:00:00Z',
      `connections: { mqtt: { url: "${broker.url}" } }`,
    );
    hub.bus.emit('notice', { kind: 'session_finished', severity: 'info', title: 'filtered out', message: 'x' });
    hub.bus.emit('notice', { kind: 'command_refused', severity: 'warning', deviceId: 'battery', title: 'battery refuses its commands', message: 'exception 4' });
    await until(() => watch.messages.length >= 1, 'the MQTT notice');
    await new Promise((r) => setTimeout(r, 200));
    expect(watch.messages).toHaveLength(1);
    expect(watch.messages[0].retain).toBe(false);
    expect(JSON.parse(watch.messages[0].payload)).toMatchObject({ site: 'home', kind: 'command_refused', device_id: 'battery', title: 'battery refuses its commands' });
  });
});
