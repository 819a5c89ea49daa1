import WebSocket from 'ws';
import { permanentError, retryableError, type Logger } from '../../src/api/index.js';

/**
 * A client of Home Assistant's WebSocket API (developers.home-assistant.io/docs/api/websocket):
 * `auth_required` → `auth` with a long-lived access token → `auth_ok`; then commands with
 * increasing integer ids, answered by `result` frames, and subscriptions whose `event` frames carry
 * the subscribing command's id. Reconnects with backoff and subscribes again; never retries a
 * refused token, because Home Assistant bans addresses after repeated failed logins.
 */

export interface HaState {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown>;
  last_changed?: string;
  last_updated?: string;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface EventSubscription {
  eventType: string;
  handler: (event: { event_type: string; data: Record<string, unknown> }) => void;
  /** The id of the subscribe command on the current connection. */
  id?: number;
}

/** `http(s)://host:8123` or `ws(s)://…` to the WebSocket endpoint. */
/** The config check of a Home Assistant `url`: no issue, or one at `url` saying what is wrong. */
export function urlIssues(url: string | undefined): { path: string[]; message: string }[] {
  try {
    if (url !== undefined) websocketUrl(url);
    return [];
  } catch (err) {
    return [{ path: ['url'], message: (err as Error).message }];
  }
}

export function websocketUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw permanentError('ha_url', `url "${url}" must start with http://, https://, ws:// or wss://`);
  if (!u.pathname.endsWith('/api/websocket')) u.pathname = `${u.pathname.replace(/\/$/, '')}/api/websocket`;
  return u.toString();
}

export class HomeAssistantClient {
  private ws?: WebSocket;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private subscriptions: EventSubscription[] = [];
  private connectedListeners = new Set<() => void>();
  private statusListeners = new Set<() => void>();
  private stopped = false;
  private backoffMs = 1000;
  private reconnectTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private wasUp = false;
  private everUp = false;
  /** Set when Home Assistant refused the token: permanent until the configuration changes. */
  authError?: string;
  lastError?: string;
  haVersion?: string;
  authenticated = false;

  constructor(private readonly url: string, private readonly token: string, private readonly log: Logger, private readonly callTimeoutMs = 10_000) {}

  start() {
    this.stopped = false;
    this.connect();
  }

  /** Called after every successful login (first and after reconnects): read states again there. */
  onConnected(fn: () => void): () => void {
    this.connectedListeners.add(fn);
    return () => this.connectedListeners.delete(fn);
  }

  /** Called when the connection goes up or down. */
  onStatus(fn: () => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  private connect() {
    if (this.stopped || this.authError) return;
    const ws = (this.ws = new WebSocket(this.url, { handshakeTimeout: 10_000 }));
    ws.on('message', (data) => this.onFrame(ws, data.toString()));
    ws.on('error', (err) => {
      if (this.lastError !== err.message) this.log.warn({ url: this.url, err: err.message }, 'Home Assistant connection failed; retrying with backoff');
      this.lastError = err.message;
    });
    ws.on('close', () => this.onClose(ws));
  }

  private onClose(ws: WebSocket) {
    if (ws !== this.ws) return;
    this.authenticated = false;
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(retryableError('ha_disconnected', 'the Home Assistant connection closed before the answer'));
    }
    this.pending.clear();
    for (const s of this.subscriptions) s.id = undefined;
    if (this.wasUp && !this.stopped) this.log.warn({ url: this.url }, 'lost the Home Assistant connection; reconnecting');
    this.wasUp = false;
    this.emitStatus();
    if (this.stopped || this.authError) return;
    this.reconnectTimer = setTimeout(() => this.connect(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
  }

  private emitStatus() {
    for (const fn of this.statusListeners) fn();
  }

  private onFrame(ws: WebSocket, text: string) {
    let msg: { type?: string; id?: number; success?: boolean; result?: unknown; error?: { code?: string; message?: string }; event?: unknown; message?: string; ha_version?: string };
    try {
      msg = JSON.parse(text);
    } catch {
      this.log.warn({ frame: text.slice(0, 200) }, 'ignored a Home Assistant frame that is not JSON');
      return;
    }
    switch (msg.type) {
      case 'auth_required':
        ws.send(JSON.stringify({ type: 'auth', access_token: this.token }));
        return;
      case 'auth_ok':
        this.authenticated = true;
        this.haVersion = msg.ha_version;
        this.backoffMs = 1000;
        this.lastError = undefined;
        this.log.info({ url: this.url, ha_version: msg.ha_version }, this.everUp ? 'Home Assistant connection recovered' : 'connected to Home Assistant');
        this.wasUp = true;
        this.everUp = true;
        this.nextId = 1;
        this.pingTimer = setInterval(() => void this.command({ type: 'ping' }).catch(() => ws.terminate()), 30_000);
        this.pingTimer.unref?.();
        for (const s of this.subscriptions) this.sendSubscribe(s);
        this.emitStatus();
        for (const fn of this.connectedListeners) fn();
        return;
      case 'auth_invalid':
        this.authError = `Home Assistant refused the access token (${msg.message ?? 'auth_invalid'}); not retrying, to avoid an IP ban: fix the token and restart`;
        this.log.error({ url: this.url }, this.authError);
        this.emitStatus();
        ws.close();
        return;
      case 'result':
      case 'pong': {
        const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id!);
        clearTimeout(p.timer);
        if (msg.type === 'pong' || msg.success) p.resolve(msg.result);
        else p.reject(permanentError(`ha_${msg.error?.code ?? 'error'}`, `Home Assistant: ${msg.error?.message ?? 'command failed'} (${msg.error?.code ?? 'error'})`));
        return;
      }
      case 'event': {
        const sub = this.subscriptions.find((s) => s.id === msg.id);
        const event = msg.event as { event_type: string; data: Record<string, unknown> } | undefined;
        if (!sub || !event) return;
        try {
          sub.handler(event);
        } catch (err) {
          this.log.error({ err }, 'Home Assistant event handler failed');
        }
        return;
      }
      default:
        this.log.debug({ type: msg.type }, 'ignored an unexpected Home Assistant frame');
    }
  }

  get connected(): boolean {
    return this.authenticated && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Sends a command and resolves with its `result`; rejects with Home Assistant's error message. */
  command(body: Record<string, unknown>): Promise<unknown> {
    if (this.authError) return Promise.reject(permanentError('ha_auth', this.authError));
    if (!this.connected) return Promise.reject(retryableError('ha_offline', `not connected to Home Assistant${this.lastError ? ` (${this.lastError})` : ''}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(retryableError('ha_timeout', `Home Assistant did not answer ${String(body.type)} within ${this.callTimeoutMs} ms`));
      }, this.callTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws!.send(JSON.stringify({ id, ...body }));
    });
  }

  getStates(): Promise<HaState[]> {
    return this.command({ type: 'get_states' }) as Promise<HaState[]>;
  }

  callService(domain: string, service: string, serviceData: Record<string, unknown>, entityId: string): Promise<unknown> {
    return this.command({ type: 'call_service', domain, service, service_data: serviceData, target: { entity_id: entityId } });
  }

  private sendSubscribe(s: EventSubscription) {
    const id = this.nextId;
    this.command({ type: 'subscribe_events', event_type: s.eventType }).catch((err: Error) => this.log.warn({ err: err.message, event_type: s.eventType }, 'Home Assistant refused the subscription'));
    s.id = id;
  }

  /** Subscribes to an event type now and after every reconnect. */
  subscribeEvents(eventType: string, handler: EventSubscription['handler']): () => void {
    const s: EventSubscription = { eventType, handler };
    this.subscriptions.push(s);
    if (this.connected) this.sendSubscribe(s);
    return () => {
      this.subscriptions = this.subscriptions.filter((x) => x !== s);
      if (s.id !== undefined && this.connected) void this.command({ type: 'unsubscribe_events', subscription: s.id }).catch(() => undefined);
    };
  }

  async stop() {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => (ws.terminate(), resolve()), 1000);
      ws.once('close', () => (clearTimeout(t), resolve()));
      ws.close();
    });
  }
}

/** One connection per Home Assistant (url + token), shared by every entity on it. */
const pool = new Map<string, { client: HomeAssistantClient; users: number }>();

export function acquireClient(url: string, token: string, log: Logger): { client: HomeAssistantClient; release: () => Promise<void> } {
  const key = `${url}\n${token}`;
  let entry = pool.get(key);
  if (!entry) {
    entry = { client: new HomeAssistantClient(url, token, log), users: 0 };
    pool.set(key, entry);
    entry.client.start();
  }
  entry.users++;
  const e = entry;
  let released = false;
  return {
    client: e.client,
    release: async () => {
      if (released) return;
      released = true;
      e.users--;
      if (e.users === 0) {
        pool.delete(key);
        await e.client.stop();
      }
    },
  };
}
