import { billProblems } from '../../tariff/bill-config.js';
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { scheduleProblems, type ScheduleSetting } from '../../control/schedule.js';
import { httpConfigProblems } from '../http.js';
import type { ConfigCheck } from './load.js';
import { pluginFor, type Catalog } from './compose.js';
import type { HubConfig } from './schema.js';
import { brokerAccess, isLoopbackHost } from '../transports/mqtt-access.js';
import { isCurrency, isTimeZone, zoneHint } from './zones.js';

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

type Problems = { path: (string | number)[]; message: string }[];

/**
 * Checks across sections that a JSON Schema cannot express. They also run on a file with schema
 * errors (so `check-config` prints everything in one pass): each item is checked on its own, and
 * one that is too malformed to check is left to the schema's messages.
 */
export function hubChecks(catalog: Catalog): ConfigCheck[] {
  const each = <T>(items: unknown, check: (item: T, i: number) => void) => {
    if (!Array.isArray(items)) return;
    items.forEach((item: T, i) => {
      try {
        check(item, i);
      } catch {
        // malformed beyond checking: the schema has said what is wrong with it
      }
    });
  };
  return [
    (config) => pluginProblems(config, catalog),
    (config) => {
      const problems: Problems = [];
      // a zone luxon cannot resolve gives no local days at all: no prices, no plan
      if (typeof config.site?.timezone === 'string' && !isTimeZone(config.site.timezone)) problems.push({ path: ['site', 'timezone'], message: `unknown time zone "${config.site.timezone}"${zoneHint(config.site.timezone)}` });
      if (typeof config.site?.currency === 'string' && !isCurrency(config.site.currency)) problems.push({ path: ['site', 'currency'], message: `unknown currency "${config.site.currency}" (an ISO 4217 code such as EUR, GBP, USD, CHF)` });
      const seen = new Map<string, number>();
      each<(typeof config.devices)[number]>(config.devices, (d, i) => {
        const first = seen.get(d.id);
        if (first !== undefined) problems.push({ path: ['devices', i, 'id'], message: `duplicate device id "${d.id}" (first used by devices[${first}])` });
        else seen.set(d.id, i);
      });
      const circuits = new Set(Array.isArray(config.site.circuits) ? config.site.circuits.map((c) => c?.id) : []);
      each<(typeof config.site.circuits)[number]>(config.site.circuits, (c, i) => {
        if (c.parent !== undefined && !circuits.has(c.parent)) {
          problems.push({ path: ['site', 'circuits', i, 'parent'], message: `unknown circuit "${c.parent}" (known: ${[...circuits].join(', ') || 'none'})` });
        }
        if (c.id === config.site.id) problems.push({ path: ['site', 'circuits', i, 'id'], message: `a circuit cannot share the site id "${c.id}"` });
      });
      // a parent chain that loops never reaches the grid connection
      each<(typeof config.site.circuits)[number]>(config.site.circuits, (c, i) => {
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
      const gridMeter = (config.site as { grid_meter?: string }).grid_meter;
      if (gridMeter !== undefined && Array.isArray(config.devices) && !config.devices.some((d) => d?.id === gridMeter)) {
        problems.push({ path: ['site', 'grid_meter'], message: `unknown device "${gridMeter}" (known: ${config.devices.map((d) => d?.id).join(', ') || 'none'})` });
      }
      each<(typeof config.devices)[number]>(config.devices, (d, i) => {
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
        // a switched load's schedule, the same checks as PUT /devices/{id}/schedule
        const schedule = (d as { schedule?: unknown }).schedule;
        if (schedule && typeof schedule === 'object' && !Array.isArray(schedule)) {
          for (const p of scheduleProblems(schedule as ScheduleSetting)) problems.push({ path: ['devices', i, 'schedule', ...p.path], message: p.message });
        }
      });
      // checks across one adapter's entries (an OCPP charger's connectors: one entry per identity and connector)
      for (const adapter of catalog.adapters) {
        if (!adapter.checkEntries || !Array.isArray(config.devices)) continue;
        const entries = config.devices.flatMap((d, index) => (d && typeof d === 'object' && d.adapter === adapter.id ? [{ index, config: d as never }] : []));
        if (entries.length < 2) continue;
        each<'entries'>(['entries'], () => {
          for (const p of adapter.checkEntries!(entries)) problems.push({ path: ['devices', p.index, ...p.path], message: p.message });
        });
      }
      return problems;
    },
    (config) => {
      const problems: Problems = [];
      each<(typeof config.connections.modbus)[number]>(config.connections.modbus, (m, i) => {
        if (!m.tcp === !m.rtu) problems.push({ path: ['connections', 'modbus', i], message: 'give exactly one of "tcp" or "rtu"' });
      });
      const mqtt = config.connections.mqtt;
      if (mqtt?.url !== undefined && mqtt.embedded !== undefined) problems.push({ path: ['connections', 'mqtt', 'url'], message: 'give either "url" (an external broker) or "embedded", not both' });
      // as for HTTP: a broker reachable from the LAN takes commands for every device, so it needs logins and topic rules
      each<'mqtt'>(mqtt?.embedded ? ['mqtt'] : [], () => problems.push(...brokerAccess(config, catalog).problems));
      each<'ocpp'>(['ocpp'], () => problems.push(...ocppAuthProblems(config, catalog)));
      return problems;
    },
    (config) => {
      const problems: Problems = [];
      each<'import' | 'export'>(['import', 'export'], (dir) => {
        const t = config.tariffs[dir];
        if (!t) return;
        if (typeof t.currency === 'string' && !isCurrency(t.currency)) problems.push({ path: ['tariffs', dir, 'currency'], message: `unknown currency "${t.currency}" (an ISO 4217 code such as EUR, SEK, NOK, DKK)` });
        const source = catalog.tariffSources.find((s) => s.type === t.type);
        for (const p of source?.check?.(t as never) ?? []) problems.push({ path: ['tariffs', dir, ...p.path], message: p.message });
        const fallback = t.fallback as { type?: string } | undefined;
        for (const [tariff, at] of [[t, ['tariffs', dir]], [fallback, ['tariffs', dir, 'fallback']]] as const) {
          const problem = tariff?.type === 'file' ? priceFileProblem((tariff as { path?: unknown }).path, config.source) : undefined;
          if (problem) problems.push({ path: [...at, 'path'], message: problem });
        }
        const fallbackSource = catalog.tariffSources.find((s) => s.type === fallback?.type);
        for (const p of fallbackSource?.check?.(fallback as never) ?? []) problems.push({ path: ['tariffs', dir, 'fallback', ...p.path], message: p.message });
      });
      each<'tariffs'>(config.tariffs ? ['tariffs'] : [], () => {
        for (const p of billProblems(config.tariffs as never, config.site.timezone)) problems.push({ path: ['tariffs', ...p.path], message: p.message });
      });
      each<'forecasts'>(config.forecasts ? ['forecasts'] : [], () => problems.push(...forecastProblems(config, catalog)));
      return problems;
    },
    (config) => {
      const problems: Problems = [];
      if (config.http.host !== '127.0.0.1' && config.http.host !== 'localhost' && config.http.host !== '::1' && !config.http.token) {
        problems.push({ path: ['http', 'host'], message: `listening on ${config.http.host} (not loopback) needs http.token` });
      }
      problems.push(...httpConfigProblems(config.http));
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

/** `plugins[]`: each names one plugin (id, package or path), once; one named by package or path was loaded. */
function pluginProblems(config: HubConfig, catalog: Catalog): Problems {
  const problems: Problems = [];
  const seen = new Map<string, number>();
  if (!Array.isArray(config.plugins)) return problems;
  config.plugins.forEach((entry, i) => {
    if (!entry || typeof entry !== 'object') return;
    const e = entry as { id?: unknown; package?: unknown; path?: unknown };
    const given = (['id', 'package', 'path'] as const).filter((k) => e[k] !== undefined);
    if (given.length !== 1) {
      problems.push({ path: ['plugins', i], message: given.length ? `give one of id, package or path, not ${given.join(' and ')}` : 'missing required key "id" (a built-in plugin; or package / path for one from outside the build)' });
      return;
    }
    if (e.id !== undefined) return; // the schema says whether the id is known
    const key = given[0] as 'package' | 'path';
    if ((catalog.refused ?? []).some((r) => r.key === key && r.spec === e[key])) return; // said where it was refused
    const def = pluginFor(e, catalog);
    if (!def) {
      problems.push({ path: ['plugins', i, key], message: `plugin ${key} "${String(e[key])}" was not loaded (homeflex start and check-config load plugins named by package or path)` });
      return;
    }
    const first = seen.get(def.id);
    if (first !== undefined) problems.push({ path: ['plugins', i], message: `plugin "${def.id}" is named twice (first by plugins[${first}])` });
    else seen.set(def.id, i);
  });
  return problems;
}

/** A `file` tariff's price file must be there when the hub starts (relative paths: to the site file). */
function priceFileProblem(path: unknown, source: string): string | undefined {
  if (typeof path !== 'string' || !path) return undefined;
  const full = isAbsolute(path) ? path : resolve(dirname(resolve(source)), path);
  if (!existsSync(full)) return `the price file ${full} does not exist`;
  if (!statSync(full).isFile()) return `${full} is not a file`;
  return undefined;
}
