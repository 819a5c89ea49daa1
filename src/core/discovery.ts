import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isMap, isScalar, isSeq, parseDocument, stringify } from 'yaml';
import { ApiError, type AdapterDefinition } from '../api/index.js';
import { occupiedModbusUnits } from './discovery-modbus.js';
import { ConfigError, formatProblem } from './config/load.js';
import type { HubConfig } from './config/schema.js';
import { access, isLoopbackHost, type RouteModule } from './http.js';
import type { HubServices } from './services.js';
import { writeFileAtomic } from './store/atomic.js';
import type { FoundDevice } from './transports/index.js';

/** Devices found and not configured that are kept at most (the oldest seen go first). */
export const MAX_DISCOVERED = 50;

export interface Discovered extends FoundDevice {
  id: string;
  first_seen: string;
  last_seen: string;
  seen: number;
}

const ID_OK = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A device id for the site file from what a device calls itself. */
export function suggestId(source: string, key: string): string {
  const base = key.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 48);
  return base ? base : `${source}-${randomBytes(3).toString('hex')}`;
}

/**
 * What transports found that the site file does not configure: chargers dialling in under an
 * unknown identity, devices announcing themselves on the broker. Capped at MAX_DISCOVERED.
 */
export class Discovery {
  private readonly found = new Map<string, Discovered>();
  /** Keys of configured devices, by source ("ocpp:<identity>"): never listed as found. */
  constructor(private readonly configured: (source: string, key: string) => boolean, private readonly now: () => number = Date.now) {}

  report(f: FoundDevice) {
    if (this.configured(f.source, f.key)) return;
    const id = `${f.source}:${f.key}`;
    const at = new Date(this.now()).toISOString();
    const old = this.found.get(id);
    if (old) {
      this.found.delete(id); // re-inserted: the map's order is the order last seen
      this.found.set(id, { ...old, ...f, id, last_seen: at, seen: old.seen + 1 });
      return;
    }
    this.found.set(id, { ...f, id, first_seen: at, last_seen: at, seen: 1 });
    while (this.found.size > MAX_DISCOVERED) this.found.delete(this.found.keys().next().value!);
  }

  list(): Discovered[] {
    return [...this.found.values()].reverse();
  }

  get(id: string): Discovered | undefined {
    return this.found.get(id);
  }

  forget(id: string) {
    this.found.delete(id);
  }
}

/** Whether the site already has a device for what was found. */
export function configuredMatcher(config: HubConfig, adapters: readonly AdapterDefinition<any>[] = []) { // eslint-disable-line @typescript-eslint/no-explicit-any
  return (source: string, key: string) => {
    if (source === 'sunspec') {
      const at = key.lastIndexOf(':');
      return occupiedModbusUnits(config, adapters).get(key.slice(0, at))?.has(Number(key.slice(at + 1))) === true;
    }
    return config.devices.some((d) => {
      const c = d as Record<string, unknown>;
      if (source === 'ocpp') return d.adapter === 'ocpp' && c.identity === key;
      if (source === 'zigbee2mqtt') return d.adapter === source && (c.friendly_name ?? c.name ?? d.id) === key;
      return d.adapter === source && c.topic === key;
    });
  };
}

/**
 * The device entry for the site file and the credentials generated for it (shown once). An OCPP
 * charger gets a password when the OCPP port is open to the network (issue 11's access model:
 * security profile 1 there).
 */
export function deviceEntry(found: Discovered, config: HubConfig, id: string, name?: string): { entry: Record<string, unknown>; secrets: Record<string, string> } {
  const secrets: Record<string, string> = {};
  const entry: Record<string, unknown> = { id, adapter: found.adapter, ...(name ? { name } : {}), ...(found.config ?? {}) };
  if (found.source === 'ocpp') {
    entry.identity = found.key;
    const host = config.connections.ocpp?.host ?? '0.0.0.0';
    if (!isLoopbackHost(host) || config.connections.ocpp?.tls?.ca) {
      secrets.password = randomBytes(18).toString('base64url');
      entry.password = secrets.password;
    }
  }
  return { entry, secrets };
}

/**
 * Appends a device to the site file's `devices` list as text spliced into the file: every other
 * byte (comments, layout, `${VAR}` references) stays as written. The yaml package's Document API
 * finds where the list is; only the new entry is serialised.
 */
export function appendDevice(text: string, entry: Record<string, unknown>, comment: string): string {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new ApiError(409, 'site_file_invalid', `the site file does not parse (${doc.errors[0].message}); fix it first`);
  const block = (indent: string) =>
    [`# ${comment}`, ...stringify([entry], { lineWidth: 0 }).trimEnd().split('\n')].map((l) => indent + l).join('\n') + '\n';
  const lineEnd = (pos: number) => {
    const nl = text.indexOf('\n', pos);
    return nl < 0 ? text.length : nl + 1;
  };
  const withNewline = (t: string) => (t.length && !t.endsWith('\n') ? `${t}\n` : t);
  const root = doc.contents;
  if (!isMap(root)) throw new ApiError(409, 'site_file_invalid', 'the site file is not a YAML mapping');
  const pair = root.items.find((p) => isScalar(p.key) && p.key.value === 'devices');
  if (!pair) return `${withNewline(text)}\ndevices:\n${block('  ')}`;
  const value = pair.value as { range?: [number, number, number]; flow?: boolean; items?: { range?: [number, number, number] }[] } | null;
  const keyRange = (pair.key as { range?: [number, number, number] }).range!;
  const keyIndent = text.slice(text.lastIndexOf('\n', keyRange[0] - 1) + 1, keyRange[0]);
  if (value && isSeq(value) && !value.flow && value.items.length) {
    const first = (value.items[0] as { range?: [number, number, number] }).range![0];
    const lineStart = text.lastIndexOf('\n', first - 1) + 1;
    const indent = text.slice(lineStart, first).replace(/-.*$/, '');
    const last = value.items[value.items.length - 1] as { range?: [number, number, number] };
    const at = lineEnd(last.range![1] - 1);
    return withNewline(text.slice(0, at)) + block(indent) + text.slice(at);
  }
  if (value && !(isSeq(value) && value.items.length === 0) && !(isScalar(value) && value.value === null)) {
    throw new ApiError(409, 'site_file_invalid', 'devices: is not a list in the site file');
  }
  // devices: [] or devices: with nothing: the empty value goes, the entry follows the key's line
  let t = text;
  let afterKey = keyRange[1];
  if (value?.range && value.range[1] > value.range[0]) {
    t = text.slice(0, value.range[0]) + text.slice(value.range[1]);
    afterKey = value.range[0];
  }
  const nl = t.indexOf('\n', afterKey);
  const at = nl < 0 ? t.length : nl + 1;
  return withNewline(t.slice(0, at)) + block(`${keyIndent}  `) + t.slice(at);
}

export interface DiscoveryHost {
  configFile?: string;
  /** Parses and checks a site file text as the hub would load it (throws ConfigError). */
  check(text: string, file: string): HubConfig;
  addDevice(config: HubConfig['devices'][number]): Promise<void>;
}

/** `GET /discovered` and `POST /discovered/{id}/add`. */
export function discoveryRoutes(discovery: Discovery, host: DiscoveryHost): RouteModule {
  return async (app, hub: HubServices) => {
    app.get('/discovered', access('read'), async () => ({ object: 'list', max: MAX_DISCOVERED, data: discovery.list().map((d) => ({ ...d, suggested_id: suggestId(d.source, d.key) })) }));

    app.post<{ Params: { id: string }; Body: { id?: string; name?: string } | undefined }>('/discovered/:id/add', access('write'), async (req, reply) => {
      const found = discovery.get(req.params.id);
      if (!found) throw new ApiError(404, 'not_found', `nothing found with id "${req.params.id}" (GET /discovered lists what is)`);
      const body = req.body ?? {};
      if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'invalid_parameter', 'body: must be an object with optional id and name', { field: 'body' });
      const id = body.id ?? suggestId(found.source, found.key);
      if (typeof id !== 'string' || !ID_OK.test(id) || id.length > 64) throw new ApiError(400, 'invalid_parameter', `id: "${String(id)}" is not a device id (letters, digits, _ . -; up to 64)`, { field: 'id' });
      if (body.name !== undefined && typeof body.name !== 'string') throw new ApiError(400, 'invalid_parameter', 'name: must be a string', { field: 'name' });
      if (hub.config.devices.some((d) => d.id === id)) throw new ApiError(409, 'device_exists', `id: a device "${id}" is in the site file already; choose another id`, { field: 'id' });
      const file = host.configFile;
      if (!file) throw new ApiError(409, 'no_site_file', 'this hub was not started from a site file, so there is nothing to add the device to');
      const text = readFileSync(file, 'utf8');
      const { entry, secrets } = deviceEntry(found, hub.config, id, body.name);
      const next = appendDevice(text, entry, `added from the dashboard (found by ${found.source}) on ${new Date(hub.clock.now()).toISOString().slice(0, 10)}`);
      let checked: HubConfig;
      try {
        checked = host.check(next, file);
      } catch (err) {
        if (err instanceof ConfigError) throw new ApiError(422, 'invalid_config', `the site file with this device would not be valid: ${err.problems.map(formatProblem).join('; ')}`, { problems: err.problems.map(formatProblem) });
        throw err;
      }
      const device = checked.devices.find((d) => d.id === id)!;
      const mode = statSync(file).mode & 0o777;
      await writeFileAtomic(file, next);
      try {
        const { chmodSync } = await import('node:fs');
        chmodSync(file, mode);
      } catch {
        // keeps the new file's mode
      }
      discovery.forget(found.id);
      await host.addDevice(device);
      hub.log.info({ device: id, adapter: found.adapter, file }, `device ${id} added to ${file} from discovery and started`);
      return reply.status(201).send({ object: 'device_added', id, adapter: found.adapter, file, config: { ...entry, ...(secrets.password ? { password: '***' } : {}) }, ...(Object.keys(secrets).length ? { credentials: secrets } : {}) });
    });
  };
}
