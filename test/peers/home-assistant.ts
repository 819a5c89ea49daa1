import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * A stand-in for a real Home Assistant instance (none can be installed here): a WebSocket server
 * speaking the documented message flow of developers.home-assistant.io/docs/api/websocket —
 * `auth_required` → `auth` → `auth_ok` | `auth_invalid` (then close); commands with integer ids
 * that must increase (`id_reuse` otherwise); `result` frames `{id, type, success, result | error}`;
 * `get_states`, `subscribe_events` / `unsubscribe_events` with `event` frames carrying the
 * subscription id, `call_service` for the climate services, and `ping` → `pong`. Climate entities
 * validate as Home Assistant does: a temperature outside min_temp/max_temp and an hvac_mode not
 * in hvac_modes are refused with `service_validation_error`.
 */
export interface FakeState {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown>;
  last_changed: string;
  last_updated: string;
  context: { id: string; parent_id: null; user_id: null };
}

export class FakeHomeAssistant {
  readonly states = new Map<string, FakeState>();
  /** Every command received, for assertions. */
  readonly received: Record<string, unknown>[] = [];
  authAttempts = 0;
  private http!: Server;
  private wss!: WebSocketServer;
  private sockets = new Set<WebSocket>();
  private subs = new Map<WebSocket, Map<number, string>>();
  port = 0;
  private seq = 0;

  constructor(readonly token: string, readonly haVersion = '2025.6.1') {}

  async start(port = 0) {
    this.http = createServer((_req, res) => res.writeHead(404).end());
    this.wss = new WebSocketServer({ server: this.http, path: '/api/websocket' });
    this.wss.on('connection', (ws) => this.session(ws));
    await new Promise<void>((r) => this.http.listen(port, '127.0.0.1', () => r()));
    this.port = (this.http.address() as AddressInfo).port;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Closes every connection and the listener, as a Home Assistant restart does. */
  async stop() {
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  setState(entityId: string, state: string, attributes: Record<string, unknown>) {
    const old = this.states.get(entityId);
    const now = new Date().toISOString();
    const next: FakeState = { entity_id: entityId, state, attributes, last_changed: old?.state === state ? old.last_changed : now, last_updated: now, context: { id: `ctx${++this.seq}`, parent_id: null, user_id: null } };
    this.states.set(entityId, next);
    for (const [ws, subs] of this.subs) {
      for (const [id, type] of subs) {
        if (type !== 'state_changed' && type !== '*') continue;
        ws.send(JSON.stringify({ id, type: 'event', event: { event_type: 'state_changed', data: { entity_id: entityId, old_state: old ?? null, new_state: next }, origin: 'LOCAL', time_fired: now, context: next.context } }));
      }
    }
  }

  private session(ws: WebSocket) {
    this.sockets.add(ws);
    let authed = false;
    let lastId = 0;
    const subs = new Map<number, string>();
    ws.on('close', () => {
      this.sockets.delete(ws);
      this.subs.delete(ws);
    });
    ws.send(JSON.stringify({ type: 'auth_required', ha_version: this.haVersion }));
    ws.on('message', (raw) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(raw.toString());
      } catch {
        ws.close(1002);
        return;
      }
      if (!authed) {
        this.authAttempts++;
        if (msg.type === 'auth' && msg.access_token === this.token) {
          authed = true;
          this.subs.set(ws, subs);
          ws.send(JSON.stringify({ type: 'auth_ok', ha_version: this.haVersion }));
        } else {
          ws.send(JSON.stringify({ type: 'auth_invalid', message: 'Invalid access token or password' }));
          ws.close();
        }
        return;
      }
      this.received.push(msg);
      const id = msg.id as number;
      const result = (r: unknown) => ws.send(JSON.stringify({ id, type: 'result', success: true, result: r }));
      const error = (code: string, message: string) => ws.send(JSON.stringify({ id, type: 'result', success: false, error: { code, message } }));
      if (!Number.isInteger(id) || id <= lastId) return error('id_reuse', 'Identifier values have to increase.');
      lastId = id;
      switch (msg.type) {
        case 'ping':
          return ws.send(JSON.stringify({ id, type: 'pong' }));
        case 'get_states':
          return result([...this.states.values()]);
        case 'subscribe_events':
          subs.set(id, (msg.event_type as string | undefined) ?? '*');
          return result(null);
        case 'unsubscribe_events':
          if (!subs.delete(msg.subscription as number)) return error('not_found', 'Subscription not found.');
          return result(null);
        case 'call_service':
          return this.callService(msg, result, error);
        default:
          return error('unknown_command', 'Unknown command.');
      }
    });
  }

  private callService(msg: Record<string, unknown>, result: (r: unknown) => void, error: (code: string, message: string) => void) {
    const target = (msg.target as { entity_id?: string } | undefined)?.entity_id;
    const data = (msg.service_data ?? {}) as Record<string, unknown>;
    const entity = target ? this.states.get(target) : undefined;
    if (msg.domain !== 'climate' || !entity) return error('not_found', `Service ${String(msg.domain)}.${String(msg.service)} not found for ${target}.`);
    const attrs = { ...entity.attributes };
    const modes = (attrs.hvac_modes as string[]) ?? [];
    let state = entity.state;
    const mode = data.hvac_mode as string | undefined;
    if (mode !== undefined) {
      if (!modes.includes(mode)) return error('service_validation_error', `HVAC mode ${mode} is not valid. Valid HVAC modes are: ${modes.join(', ')}`);
      state = mode;
    }
    if (msg.service === 'set_temperature') {
      for (const key of ['temperature', 'target_temp_low', 'target_temp_high']) {
        if (data[key] === undefined) continue;
        const v = data[key] as number;
        if (v < (attrs.min_temp as number) || v > (attrs.max_temp as number)) {
          return error('service_validation_error', `Provided temperature ${v} is not valid. Accepted range is ${attrs.min_temp} to ${attrs.max_temp}.`);
        }
        attrs[key] = v;
      }
    } else if (msg.service !== 'set_hvac_mode') return error('not_found', `Service climate.${String(msg.service)} not found.`);
    result({ context: { id: `ctx${++this.seq}`, parent_id: null, user_id: null }, response: null });
    // the integration updates the entity a moment after the call returns
    setTimeout(() => this.setState(target!, state, { ...attrs, hvac_action: state === 'off' ? 'off' : attrs.hvac_action }), 20);
  }
}
