import type { MqttClientTopics } from '../../api/index.js';
import type { Catalog } from '../config/compose.js';
import type { HubConfig } from '../config/schema.js';

/**
 * The embedded broker's access model, defined once: one login per MQTT client; the hub's own login
 * (`connections.mqtt.username`) may do everything; every other login (`embedded.users[]`) may
 * publish and subscribe only under its own topics — those its devices declare, plus any listed —
 * and never publish a command to any configured device.
 */

/** MQTT topic filter matching with `+` (one level) and `#` (the rest); `$` topics never match a leading wildcard. */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i === f.length - 1;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Whether every topic `requested` can match is also matched by `allowed` (both topic filters). */
export function filterCovers(allowed: string, requested: string): boolean {
  if (allowed === requested) return true;
  const a = allowed.split('/');
  const r = requested.split('/');
  if (requested.startsWith('$') && (a[0] === '+' || a[0] === '#')) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '#') return true;
    if (i >= r.length) return false;
    if (r[i] === '#') return false;
    if (a[i] === '+') continue;
    if (r[i] === '+' || a[i] !== r[i]) return false;
  }
  return a.length === r.length;
}

/** Why `filter` is not a valid MQTT topic filter, or undefined when it is. */
export function filterProblem(filter: string): string | undefined {
  const levels = filter.split('/');
  const hashAt = levels.indexOf('#');
  if (!filter) return 'an empty topic filter';
  if (hashAt !== -1 && hashAt !== levels.length - 1) return `"${filter}": # must be the last level`;
  if (levels.some((l) => (l.includes('+') && l !== '+') || (l.includes('#') && l !== '#'))) return `"${filter}": + and # must fill a whole level`;
  return undefined;
}

/** What one login may do. */
export interface MqttGrant {
  username: string;
  /** The hub's login (and anonymous clients on a loopback broker without logins): everything. */
  all: boolean;
  publish: string[];
  subscribe: string[];
}

export interface BrokerAccess {
  /** Anonymous clients are let in (with every right): only on a loopback broker without any login configured. */
  anonymous: boolean;
  logins: { username: string; password: string; grant: MqttGrant }[];
  /** Filters only a login with `all` may publish to: every configured device's commands and the hub's status. */
  commands: string[];
}

export const isLoopbackHost = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** May `grant` publish to `topic`? */
export function mayPublish(access: BrokerAccess, grant: MqttGrant, topic: string): boolean {
  if (grant.all) return true;
  if (access.commands.some((f) => topicMatches(f, topic))) return false;
  return grant.publish.some((f) => topicMatches(f, topic));
}

/** May `grant` subscribe to `filter`? */
export function maySubscribe(grant: MqttGrant, filter: string): boolean {
  return grant.all || grant.subscribe.some((f) => filterCovers(f, filter));
}

type Problem = { path: (string | number)[]; message: string };

/**
 * The broker's logins and rules from the site file, and what is wrong with them (located, for
 * check-config). Devices name their own topics through their adapter's `mqttClient`.
 */
export function brokerAccess(config: HubConfig, catalog: Catalog): { access: BrokerAccess; problems: Problem[] } {
  const problems: Problem[] = [];
  const mqtt = config.connections.mqtt ?? {};
  const embedded = mqtt.embedded;
  const users = embedded?.users ?? [];
  const base = ['connections', 'mqtt', 'embedded'];
  const site = { id: config.site.id, name: config.site.name, timezone: config.site.timezone, currency: config.site.currency };

  const clientTopics = new Map<string, { adapter: string; topics?: MqttClientTopics }>();
  for (const d of config.devices ?? []) {
    const def = catalog.adapters.find((a) => a.id === d.adapter);
    let topics: MqttClientTopics | undefined;
    try {
      topics = def?.mqttClient?.(d as never, site);
    } catch {
      topics = undefined; // the adapter's own check reports what is wrong with the device
    }
    clientTopics.set(d.id, { adapter: d.adapter, topics });
  }
  const mqttDevices = [...clientTopics].filter(([, v]) => v.topics).map(([id]) => id);

  // the hub's status and its telemetry (telemetryTopics in mqtt.ts) are the hub's word: no other login may publish them
  const commands = [`homeflex/${config.site.id}/status`, `homeflex/${config.site.id}/telemetry/#`];
  for (const { topics } of clientTopics.values()) for (const c of topics?.commands ?? []) if (!commands.includes(c)) commands.push(c);

  const logins: BrokerAccess['logins'] = [];
  if (mqtt.username !== undefined) {
    logins.push({ username: mqtt.username, password: mqtt.password ?? '', grant: { username: mqtt.username, all: true, publish: [], subscribe: [] } });
  }
  const clientOf = new Map<string, number>();
  users.forEach((u, i) => {
    const at = [...base, 'users', i];
    if (u.username === mqtt.username) problems.push({ path: [...at, 'username'], message: `"${u.username}" is the hub's own login (connections.mqtt.username); give each MQTT client a login of its own` });
    const first = users.findIndex((x) => x.username === u.username);
    if (first !== i) problems.push({ path: [...at, 'username'], message: `duplicate login "${u.username}" (first used by users[${first}])` });
    const devices = u.devices ?? [];
    const publish = [...(u.publish ?? [])];
    const subscribe = [...(u.subscribe ?? [])];
    if (!devices.length && !publish.length && !subscribe.length) problems.push({ path: at, message: 'give devices, publish or subscribe: a login with none of them may do nothing' });
    devices.forEach((id, j) => {
      const dev = clientTopics.get(id);
      if (!dev) return problems.push({ path: [...at, 'devices', j], message: `unknown device "${id}" (MQTT devices: ${mqttDevices.join(', ') || 'none'})` });
      if (!dev.topics) return problems.push({ path: [...at, 'devices', j], message: `device "${id}" (adapter ${dev.adapter}) is not an MQTT client (MQTT devices: ${mqttDevices.join(', ') || 'none'})` });
      const owner = clientOf.get(id);
      if (owner !== undefined && owner !== i) problems.push({ path: [...at, 'devices', j], message: `device "${id}" is already the client of users[${owner}] (${users[owner]!.username}): one login per MQTT client` });
      clientOf.set(id, i);
      publish.push(...dev.topics.publish);
      subscribe.push(...dev.topics.subscribe);
    });
    for (const key of ['publish', 'subscribe'] as const) {
      (u[key] ?? []).forEach((f, j) => {
        const why = filterProblem(f);
        if (why) problems.push({ path: [...at, key, j], message: `not a valid MQTT topic filter: ${why}` });
      });
    }
    logins.push({ username: u.username, password: u.password, grant: { username: u.username, all: false, publish: [...new Set(publish)], subscribe: [...new Set(subscribe)] } });
  });

  const host = embedded?.host ?? '127.0.0.1';
  if (embedded && (mqtt.username === undefined || mqtt.password === undefined) && (users.length || !isLoopbackHost(host))) {
    const why = !isLoopbackHost(host) ? `listening on ${host} (not loopback)` : 'with users';
    problems.push({ path: [...base, users.length && isLoopbackHost(host) ? 'users' : 'host'], message: `an embedded broker ${why} needs connections.mqtt.username and password (the hub's own login): it refuses anonymous clients` });
  }
  return { access: { anonymous: mqtt.username === undefined && !users.length && isLoopbackHost(host), logins, commands }, problems };
}
