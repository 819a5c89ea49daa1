import type { ConfigCheck } from './load.js';
import type { Catalog } from './compose.js';
import type { HubConfig } from './schema.js';

/** `forecasts`: array ids unique, their devices known, a location for the sun, the source's own checks. */
function forecastProblems(config: HubConfig, catalog: Catalog): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const f = config.forecasts;
  const ids = new Map<string, number>();
  const deviceIds = new Set(config.devices.map((d) => d.id));
  f.pv.forEach((a, i) => {
    const first = ids.get(a.id);
    if (first !== undefined) problems.push({ path: ['forecasts', 'pv', i, 'id'], message: `duplicate array id "${a.id}" (first used by forecasts.pv[${first}])` });
    else ids.set(a.id, i);
    if (a.device !== undefined && !deviceIds.has(a.device)) problems.push({ path: ['forecasts', 'pv', i, 'device'], message: `unknown device "${a.device}" (known: ${[...deviceIds].join(', ') || 'none'})` });
    if ((a.latitude ?? config.site.latitude) === undefined || (a.longitude ?? config.site.longitude) === undefined) {
      problems.push({ path: ['forecasts', 'pv', i], message: `array "${a.id}" needs latitude and longitude (here or in site) to know where the sun is` });
    }
  });
  if (f.source) {
    if (!f.pv.length) problems.push({ path: ['forecasts', 'source'], message: 'a forecast source needs the PV arrays it forecasts: add forecasts.pv' });
    const def = catalog.forecastSources?.find((s) => s.type === f.source!.type);
    for (const p of def?.check?.(f.source as never, f.pv) ?? []) problems.push({ path: ['forecasts', 'source', ...p.path], message: p.message });
  }
  const cal = f.calibration;
  if (cal && cal.min_factor > cal.max_factor) problems.push({ path: ['forecasts', 'calibration', 'min_factor'], message: `min_factor ${cal.min_factor} is above max_factor ${cal.max_factor}` });
  return problems;
}

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
      // as for HTTP: a broker reachable from the LAN takes commands for every device, so it needs a login
      const brokerHost = mqtt?.embedded?.host ?? '127.0.0.1';
      if (mqtt?.embedded && !['127.0.0.1', 'localhost', '::1'].includes(brokerHost) && (!mqtt.username || !mqtt.password)) {
        problems.push({ path: ['connections', 'mqtt', 'embedded', 'host'], message: `an embedded broker listening on ${brokerHost} (not loopback) needs connections.mqtt.username and password` });
      }
      for (const dir of ['import', 'export'] as const) {
        const t = config.tariffs[dir];
        if (!t) continue;
        const source = catalog.tariffSources.find((s) => s.type === t.type);
        for (const p of source?.check?.(t as never) ?? []) problems.push({ path: ['tariffs', dir, ...p.path], message: p.message });
        const fallback = t.fallback as { type?: string } | undefined;
        const fallbackSource = catalog.tariffSources.find((s) => s.type === fallback?.type);
        for (const p of fallbackSource?.check?.(fallback as never) ?? []) problems.push({ path: ['tariffs', dir, 'fallback', ...p.path], message: p.message });
      }
      problems.push(...forecastProblems(config, catalog));
      if (config.http.host !== '127.0.0.1' && config.http.host !== 'localhost' && config.http.host !== '::1' && !config.http.token) {
        problems.push({ path: ['http', 'host'], message: `listening on ${config.http.host} (not loopback) needs http.token` });
      }
      return problems;
    },
  ];
}
