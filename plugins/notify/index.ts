import { Type, type Static } from '@sinclair/typebox';
import { DateTime } from 'luxon';
import { definePlugin, NOTICE_KINDS, type Notice, type NoticeKind, type PluginContext } from '../../src/api/index.js';
import { mqttChannel, ntfyChannel, smtpChannel, webhookChannel, type Channel } from './channels.js';
import { minutesOf, quietUntil } from './quiet.js';

/**
 * Notifications: what the hub's parts raise as notices (an EV target at risk, a command refused,
 * prices not received, a plan that could not be made, a session finished, storage degraded) and
 * devices offline for longer than `offline_after_minutes`, sent to ntfy, webhooks, e-mail (SMTP) or
 * MQTT, each channel with its own event filter and quiet hours. A failing channel is logged once,
 * retried with growing waits, and never holds up the hub or the other channels.
 */

const Kind = Type.Union(NOTICE_KINDS.map((k) => Type.Literal(k)));
const HHMM = Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$|^24:00$', description: 'Local time HH:MM (site time zone)' });
const QuietHours = Type.Object(
  {
    from: HHMM,
    to: HHMM,
    urgent: Type.Boolean({ default: true, description: 'Errors (severity error) are sent even in quiet hours' }),
  },
  { additionalProperties: false, description: 'Hold notices from `from` to `to` (crossing midnight when to ≤ from) and send them when the quiet hours end' },
);
const common = {
  id: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'Channel id, for logs' }),
  events: Type.Optional(Type.Array(Kind, { uniqueItems: true, description: 'Which kinds of notice this channel gets (default: all)' })),
  min_severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('error')], { default: 'info' }),
  quiet_hours: Type.Optional(QuietHours),
};
const NtfyChannel = Type.Object({ ...common, type: Type.Literal('ntfy'), url: Type.String({ default: 'https://ntfy.sh', pattern: '^https?://', description: 'The ntfy server' }), topic: Type.String({ minLength: 1 }), token: Type.Optional(Type.String({ description: 'Access token of a protected topic' })) }, { additionalProperties: false });
const WebhookChannel = Type.Object({ ...common, type: Type.Literal('webhook'), url: Type.String({ pattern: '^https?://', description: 'Receives each notice as a JSON POST' }), headers: Type.Optional(Type.Record(Type.String(), Type.String())) }, { additionalProperties: false });
const SmtpChannel = Type.Object(
  {
    ...common,
    type: Type.Literal('smtp'),
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 587 }),
    secure: Type.Boolean({ default: false, description: 'Implicit TLS (port 465)' }),
    require_tls: Type.Boolean({ default: true, description: 'Refuse to send without STARTTLS (set false only for a server on this machine)' }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    from: Type.String({ minLength: 3 }),
    to: Type.Array(Type.String({ minLength: 3 }), { minItems: 1 }),
  },
  { additionalProperties: false },
);
const MqttChannel = Type.Object({ ...common, type: Type.Literal('mqtt'), topic: Type.String({ minLength: 1, pattern: '^[^+#]+$', description: 'Each notice is published here as JSON (not retained)' }) }, { additionalProperties: false });
type ChannelConfig = Static<typeof NtfyChannel> | Static<typeof WebhookChannel> | Static<typeof SmtpChannel> | Static<typeof MqttChannel>;
const BRANCHES = { ntfy: NtfyChannel, webhook: WebhookChannel, smtp: SmtpChannel, mqtt: MqttChannel };
/** One "if type == x then its keys" branch per channel type, as the site file's other typed lists: one located error per mistake. */
const ChannelSchema = {
  type: 'object',
  required: ['id', 'type'],
  properties: { type: { type: 'string', enum: Object.keys(BRANCHES), description: 'ntfy, webhook, smtp or mqtt' } },
  allOf: Object.entries(BRANCHES).map(([type, then]) => ({ if: { type: 'object', properties: { type: { const: type } }, required: ['type'] }, then })),
};
export const NotifyConfigSchema = Type.Object({
  channels: Type.Array(Type.Unsafe<ChannelConfig>(ChannelSchema), { minItems: 1 }),
  offline_after_minutes: Type.Number({ minimum: 1, maximum: 10080, default: 10, description: 'A device unavailable this long is reported offline' }),
  quiet_hours: Type.Optional(QuietHours),
});
export type NotifyConfig = Static<typeof NotifyConfigSchema> & { id: string };

const RANK = { info: 0, warning: 1, error: 2 } as const;
const RETRY_MS = [30_000, 60_000, 120_000, 300_000, 900_000, 1_800_000];
/** Notices kept per channel while it fails or is quiet; the oldest go first beyond this. */
const QUEUE_MAX = 100;
const TICK_MS = 15_000;

interface Pending {
  notice: Notice;
  attempts: number;
  due: number;
}

/** One channel's queue: filter, quiet hours, retries with backoff, errors logged once. */
class Outbox {
  private queue: Pending[] = [];
  private sending = false;
  private failing?: string;
  constructor(
    readonly channel: Channel,
    private readonly config: ChannelConfig,
    private readonly quiet: NotifyConfig['quiet_hours'],
    private readonly ctx: PluginContext,
  ) {}

  wants(n: Notice): boolean {
    if (this.config.events && !this.config.events.includes(n.kind)) return false;
    return RANK[n.severity] >= RANK[this.config.min_severity ?? 'info'];
  }

  add(n: Notice) {
    this.queue.push({ notice: n, attempts: 0, due: this.ctx.clock.now() });
    if (this.queue.length > QUEUE_MAX) {
      const dropped = this.queue.splice(0, this.queue.length - QUEUE_MAX);
      this.ctx.log.warn({ channel: this.channel.id, dropped: dropped.length }, `notification channel ${this.channel.id}: ${dropped.length} old notice(s) dropped (more than ${QUEUE_MAX} waiting)`);
    }
    void this.flush();
  }

  private heldUntil(n: Notice, now: number): number | undefined {
    const q = this.config.quiet_hours ?? this.quiet;
    if (!q || (n.severity === 'error' && q.urgent !== false)) return undefined;
    return quietUntil(now, this.ctx.site.timezone, q.from, q.to);
  }

  /** Sends what is due, one at a time, in order; never throws. */
  async flush(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length) {
        const now = this.ctx.clock.now();
        const next = this.queue.find((p) => p.due <= now && this.heldUntil(p.notice, now) === undefined);
        if (!next) return;
        try {
          await this.channel.send(next.notice, this.ctx.site);
          this.queue.splice(this.queue.indexOf(next), 1);
          if (this.failing) this.ctx.log.info({ channel: this.channel.id }, `notification channel ${this.channel.id} works again`);
          this.failing = undefined;
        } catch (err) {
          const message = (err as Error).message;
          if (this.failing !== message) this.ctx.log.warn({ channel: this.channel.id, err: message }, `notification channel ${this.channel.id} (${this.channel.type}) failed: ${message}; retrying`);
          this.failing = message;
          // everything waiting on this channel waits for the next try, in order
          const wait = RETRY_MS[Math.min(next.attempts, RETRY_MS.length - 1)];
          next.attempts++;
          for (const p of this.queue) p.due = Math.max(p.due, now + wait);
          return;
        }
      }
    } finally {
      this.sending = false;
    }
  }

  get waiting() {
    return this.queue.length;
  }
}

function makeChannel(c: ChannelConfig, ctx: PluginContext): Channel {
  const now = () => ctx.clock.now();
  switch (c.type) {
    case 'ntfy':
      return ntfyChannel(c);
    case 'webhook':
      return webhookChannel(c, now);
    case 'smtp':
      return smtpChannel({ ...c, port: c.port ?? 587, secure: c.secure ?? false, require_tls: c.require_tls ?? true });
    case 'mqtt':
      return mqttChannel(c, () => ctx.transports.mqtt(), now);
  }
}

const fmtMinutes = (ms: number) => (ms >= 2 * 3_600_000 ? `${Math.round(ms / 3_600_000)} h` : `${Math.round(ms / 60_000)} min`);

export const notifyPlugin = definePlugin<NotifyConfig>({
  id: 'notify',
  description: 'Notifications on ntfy, webhooks, e-mail and MQTT',
  configSchema: NotifyConfigSchema as unknown as Record<string, unknown>,
  create(ctx, config) {
    // the schema's pattern already holds; this turns any slip into an error at start, not at night
    for (const q of [config.quiet_hours, ...config.channels.map((c) => c.quiet_hours)]) {
      if (!q) continue;
      minutesOf(q.from);
      minutesOf(q.to);
    }
    const outboxes = config.channels.map((c) => new Outbox(makeChannel(c, ctx), c, config.quiet_hours, ctx));
    /** Matters already told (by key), so a repeated notice is not sent again until it is resolved. */
    const told = new Set<string>();
    const offlineSince = new Map<string, { since: number; error?: string; told: boolean }>();
    const offlineAfter = (config.offline_after_minutes ?? 10) * 60_000;
    const unsubscribe: (() => void)[] = [];

    const raise = (n: Notice) => {
      if (n.key) {
        if (n.resolved) {
          if (!told.delete(n.key)) return; // nobody was told it started
        } else if (told.has(n.key)) return;
        else told.add(n.key);
      }
      for (const o of outboxes) if (o.wants(n)) o.add(n);
    };

    const checkOffline = () => {
      const now = ctx.clock.now();
      for (const [id, o] of offlineSince) {
        if (o.told || now - o.since < offlineAfter) continue;
        o.told = true;
        const since = DateTime.fromMillis(o.since, { zone: ctx.site.timezone }).toFormat('HH:mm');
        raise({ kind: 'device_offline', severity: 'warning', deviceId: id, key: `offline:${id}`, title: `${id} is offline`, message: `${id} has been unavailable since ${since} (${fmtMinutes(now - o.since)})${o.error ? `: ${o.error}` : ''}. It is left out of the plan until it is back.` });
      }
    };

    return {
      async start() {
        unsubscribe.push(
          ctx.bus.on('notice', (n) => raise(n)),
          ctx.bus.on('device.state', (s) => {
            const now = ctx.clock.now();
            if (!s.available) {
              if (!offlineSince.has(s.deviceId)) offlineSince.set(s.deviceId, { since: now, error: s.error, told: false });
              return;
            }
            const was = offlineSince.get(s.deviceId);
            offlineSince.delete(s.deviceId);
            if (was?.told) raise({ kind: 'device_offline', severity: 'info', deviceId: s.deviceId, key: `offline:${s.deviceId}`, resolved: true, title: `${s.deviceId} is back`, message: `${s.deviceId} is available again after ${fmtMinutes(now - was.since)} offline.` });
          }),
          ctx.clock.every(TICK_MS, () => {
            checkOffline();
            for (const o of outboxes) void o.flush();
          }),
        );
        ctx.log.info({ channels: outboxes.map((o) => `${o.channel.id} (${o.channel.type})`) }, 'notifications ready');
      },
      async stop() {
        for (const u of unsubscribe.splice(0)) u();
        const left = outboxes.filter((o) => o.waiting);
        if (left.length) ctx.log.warn({ channels: left.map((o) => o.channel.id) }, `notifications not sent when the hub stopped: ${left.map((o) => `${o.channel.id} ${o.waiting}`).join(', ')}`);
        await Promise.all(outboxes.map((o) => o.channel.close?.().catch(() => undefined)));
      },
    };
  },
});

export type { NoticeKind };
