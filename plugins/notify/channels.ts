import { createTransport, type Transporter } from 'nodemailer';
import type { MqttTransport, Notice } from '../../src/api/index.js';

/** A way to reach a person. `send` throws when the message did not get through (it is retried). */
export interface Channel {
  readonly id: string;
  readonly type: string;
  send(notice: Notice, site: { id: string; name: string }): Promise<void>;
  close?(): Promise<void>;
}

const TIMEOUT_MS = 10_000;

async function post(url: string, init: RequestInit, what: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`${what}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
  }
  const body = await res.text().catch(() => '');
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status}${body ? ` ${body.slice(0, 200)}` : ''}`);
}

const NTFY_PRIORITY = { info: '3', warning: '4', error: '5' } as const;
const NTFY_TAGS = { info: 'information_source', warning: 'warning', error: 'rotating_light' } as const;

/** ntfy (ntfy.sh or a self-hosted server): a POST to <url>/<topic>, title and priority as headers. */
export function ntfyChannel(c: { id: string; url: string; topic: string; token?: string }): Channel {
  const target = `${c.url.replace(/\/+$/, '')}/${encodeURIComponent(c.topic)}`;
  return {
    id: c.id,
    type: 'ntfy',
    send: (n, site) =>
      post(
        target,
        {
          method: 'POST',
          headers: {
            // HTTP headers are Latin-1: ntfy decodes RFC 2047 encoded words for the rest
            Title: `=?UTF-8?B?${Buffer.from(`${site.name}: ${n.title}`).toString('base64')}?=`,
            Priority: NTFY_PRIORITY[n.severity],
            Tags: `${NTFY_TAGS[n.severity]},homeflex,${n.kind}`,
            'Content-Type': 'text/plain; charset=utf-8',
            ...(c.token ? { Authorization: `Bearer ${c.token}` } : {}),
          },
          body: n.message,
        },
        `ntfy ${target}`,
      ),
  };
}

/** The JSON a webhook receives. */
export const webhookBody = (n: Notice, site: { id: string; name: string }, at: number) => ({
  site: site.id,
  site_name: site.name,
  kind: n.kind,
  severity: n.severity,
  title: n.title,
  message: n.message,
  device_id: n.deviceId ?? null,
  resolved: n.resolved ?? false,
  time: new Date(at).toISOString(),
});

export function webhookChannel(c: { id: string; url: string; headers?: Record<string, string> }, now: () => number): Channel {
  return {
    id: c.id,
    type: 'webhook',
    send: (n, site) => post(c.url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(c.headers ?? {}) }, body: JSON.stringify(webhookBody(n, site, now())) }, `webhook ${new URL(c.url).origin}`),
  };
}

export interface SmtpConfig {
  id: string;
  host: string;
  port: number;
  /** Implicit TLS (port 465); otherwise STARTTLS is used when the server offers it (required with `require_tls`). */
  secure: boolean;
  require_tls: boolean;
  username?: string;
  password?: string;
  from: string;
  to: string[];
}

export function smtpChannel(c: SmtpConfig): Channel {
  const transport: Transporter = createTransport({
    host: c.host,
    port: c.port,
    secure: c.secure,
    requireTLS: c.require_tls,
    auth: c.username ? { user: c.username, pass: c.password ?? '' } : undefined,
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
  });
  return {
    id: c.id,
    type: 'smtp',
    async send(n, site) {
      try {
        await transport.sendMail({ from: c.from, to: c.to, subject: `[homeflex ${site.name}] ${n.title}`, text: `${n.message}\n\n— homeflex, site ${site.id}` });
      } catch (err) {
        throw new Error(`smtp ${c.host}:${c.port}: ${(err as Error).message}`, { cause: err });
      }
    },
    close: async () => transport.close(),
  };
}

/** MQTT: the notice as JSON on `<topic>` (not retained: a notice is an event, not a state). */
export function mqttChannel(c: { id: string; topic: string }, mqtt: () => MqttTransport, now: () => number): Channel {
  return {
    id: c.id,
    type: 'mqtt',
    async send(n, site) {
      await mqtt().publish(c.topic, JSON.stringify(webhookBody(n, site, now())), { qos: 1, retain: false });
    },
  };
}
