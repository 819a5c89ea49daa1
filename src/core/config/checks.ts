import type { ConfigCheck } from './load.js';
import type { Catalog } from './compose.js';
import type { HubConfig } from './schema.js';
import { brokerAccess, isLoopbackHost } from '../transports/mqtt-access.js';

/** Checks across sections that a JSON Schema cannot express. */
export function hubChecks(catalog: Catalog): ConfigCheck[] {
  return [
    (config) => {
      const problems: { path: (string | number)[]; message: string }[] = [];
      const seen = new Map<string, number>();
      config.devices.forEach((d, i) => {
        const first = seen.get(d.id);
        if (first !== undefined) problems.push({ path: ['devices', i, 'id'], message: `duplicate device id "${d.id}" (first used by devices[${first}])` });
        else seen.set(d.id, i);
      });
      const circuits = new Set(config.site.circuits.map((c) => c.id));
      config.site.circuits.forEach((c, i) => {
        if (c.parent !== undefined && !circuits.has(c.parent)) {
          problems.push({ path: ['site', 'circuits', i, 'parent'], message: `unknown circuit "${c.parent}" (known: ${[...circuits].join(', ') || 'none'})` });
        }
        if (c.id === config.site.id) problems.push({ path: ['site', 'circuits', i, 'id'], message: `a circuit cannot share the site id "${c.id}"` });
      });
      // a parent chain that loops never reaches the grid connection
      config.site.circuits.forEach((c, i) => {
        const byId = new Map(config.site.circuits.map((x) => [x.id, x]));
        const visited = new Set<string>();
        for (let cur: typeof c | undefined = c; cur?.parent; cur = byId.get(cur.parent)) {
          if (visited.has(cur.id)) {
            problems.push({ path: ['site', 'circuits', i, 'parent'], message: `circuit "${c.id}" is part of a loop of parents` });
            break;
          }
          visited.add(cur.id);
        }
      });
      config.devices.forEach((d, i) => {
        if (d.circuit !== undefined && !circuits.has(d.circuit)) {
          problems.push({ path: ['devices', i, 'circuit'], message: `unknown circuit "${d.circuit}" (known: ${[...circuits].join(', ') || 'none; add site.circuits'})` });
        }
        const conn = (d as { connection?: unknown }).connection;
        if (typeof conn === 'string') {
          const ids = config.connections.modbus.map((m) => m.id);
          if (!ids.includes(conn)) problems.push({ path: ['devices', i, 'connection'], message: `unknown Modbus connection "${conn}" (known: ${ids.join(', ') || 'none; add connections.modbus'})` });
        }
        const adapter = catalog.adapters.find((a) => a.id === d.adapter);
        for (const need of adapter?.needs ?? []) {
          if (!config.connections[need]) problems.push({ path: ['devices', i, 'adapter'], message: `adapter "${d.adapter}" needs connections.${need}, which this file does not configure` });
        }
        for (const p of adapter?.check?.(d as never) ?? []) problems.push({ path: ['devices', i, ...p.path], message: p.message });
      });
      config.connections.modbus.forEach((m, i) => {
        if (!m.tcp === !m.rtu) problems.push({ path: ['connections', 'modbus', i], message: 'give exactly one of "tcp" or "rtu"' });
      });
      const mqtt = config.connections.mqtt;
      if (mqtt?.url !== undefined && mqtt.embedded !== undefined) problems.push({ path: ['connections', 'mqtt', 'url'], message: 'give either "url" (an external broker) or "embedded", not both' });
      // as for HTTP: a broker reachable from the LAN takes commands for every device, so it needs logins and topic rules
      if (mqtt?.embedded) problems.push(...brokerAccess(config, catalog).problems);
      problems.push(...ocppAuthProblems(config, catalog));
      for (const dir of ['import', 'export'] as const) {
        const t = config.tariffs[dir];
        if (!t) continue;
        const source = catalog.tariffSources.find((s) => s.type === t.type);
        for (const p of source?.check?.(t as never) ?? []) problems.push({ path: ['tariffs', dir, ...p.path], message: p.message });
        const fallback = t.fallback as { type?: string } | undefined;
        const fallbackSource = catalog.tariffSources.find((s) => s.type === fallback?.type);
        for (const p of fallbackSource?.check?.(fallback as never) ?? []) problems.push({ path: ['tariffs', dir, 'fallback', ...p.path], message: p.message });
      }
      if (config.http.host !== '127.0.0.1' && config.http.host !== 'localhost' && config.http.host !== '::1' && !config.http.token) {
        problems.push({ path: ['http', 'host'], message: `listening on ${config.http.host} (not loopback) needs http.token` });
      }
      return problems;
    },
  ];
}

/**
 * Off loopback anyone on the LAN can dial the OCPP port, so every charger must prove who it is:
 * a Basic password, or a client certificate under TLS (server TLS alone authenticates no charger).
 */
function ocppAuthProblems(config: HubConfig, catalog: Catalog): { path: (string | number)[]; message: string }[] {
  const ocpp = config.connections.ocpp;
  if (!ocpp) return [];
  const host = ocpp.host ?? '0.0.0.0';
  // with tls.ca a charger without a password must show a client certificate naming it
  if (isLoopbackHost(host) || ocpp.tls?.ca) return [];
  const problems: { path: (string | number)[]; message: string }[] = [];
  config.devices.forEach((d, i) => {
    const { identity, password } = d as { identity?: unknown; password?: unknown };
    if (!catalog.adapters.find((a) => a.id === d.adapter)?.needs?.includes('ocpp') || typeof identity !== 'string' || password !== undefined) return;
    problems.push({
      path: ['devices', i],
      message: `charger "${identity}" has no password, but connections.ocpp listens on ${host} (not loopback), where anyone on the network could connect as it: set password (the charger sends it as HTTP Basic auth, user = identity), give chargers client certificates (connections.ocpp.tls.ca), or listen on 127.0.0.1`,
    });
  });
  return problems;
}
