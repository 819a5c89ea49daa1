import { ApiError, type Device } from '../api/index.js';
import { access, type RouteModule } from './http.js';
import type { HubServices } from './services.js';
import { siteGridMeterId } from '../api/grid-meter.js';

const SECRET_KEYS = /pass(word)?|token|secret|api_?key/i;

/** A config entry with secret values replaced, for showing to clients. */
export function redactConfig(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactConfig);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEYS.test(k) ? '[Redacted]' : redactConfig(v)]));
  }
  return value;
}


const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

/** The JSON shape of a device in the API: identity, availability, and each capability's state. */
export function deviceView(device: Device, hub: HubServices) {
  const { caps } = device;
  const entry = hub.registry.entry(device.id);
  const status = hub.adapterStatus.get(device.id);
  const state: Record<string, unknown> = {};
  if (caps.meter) {
    // a grid channel is the site's meter, or a sub-meter when another device is (site.grid_meter)
    const siteMeter = caps.meter.channels.includes('grid') ? siteGridMeterId(hub.config.site.grid_meter, hub.registry.all(), hub.config.devices.map((d) => d.id)) === device.id : undefined;
    state.meter = Object.fromEntries(
      caps.meter.channels.map((ch) => {
        const r = caps.meter!.last(ch);
        return [ch, r ? { time: iso(r.time), power_w: r.powerW, import_wh: r.importWh, export_wh: r.exportWh, session_reference_id: r.sessionId, ...(r.phasesW ? { phases_w: r.phasesW } : {}), ...(ch === 'grid' ? { site_meter: siteMeter } : {}) } : null];
      }),
    );
  }
  if (caps.switch) state.switch = { on: caps.switch.isOn() ?? null, rated_power_w: caps.switch.ratedPowerW };
  if (caps.charger) {
    const s = caps.charger.session();
    state.charger = {
      status: caps.charger.status(),
      ev_soc_pct: caps.charger.evSocPct() ?? null,
      phases: caps.charger.phases,
      min_current_a: caps.charger.minCurrentA,
      max_current_a: caps.charger.maxCurrentA,
      session: s ? { id: s.id, start_time: iso(s.start), end_time: iso(s.end), energy_wh: s.energyWh } : null,
    };
  }
  if (caps.storage) {
    const s = caps.storage.state();
    const p = caps.storage.params;
    state.storage = { soc_pct: s.socPct ?? null, power_w: s.powerW ?? null, mode: s.mode ?? null, capacity_wh: p.capacityWh, max_charge_w: p.maxChargeW, max_discharge_w: p.maxDischargeW };
  }
  if (caps.thermostat) {
    const s = caps.thermostat.state();
    state.thermostat = { temperature_c: s.temperatureC ?? null, setpoint_c: s.setpointC ?? null, mode: s.mode ?? null, running: s.running ?? null, band: { min_c: caps.thermostat.band.minC, max_c: caps.thermostat.band.maxC } };
  }
  if (caps.pv) state.pv = { power_w: caps.pv.powerW() ?? null, kwp: caps.pv.params.kWp };
  if (caps.heatPump) {
    const h = caps.heatPump;
    const names = ['blocked', 'normal', 'recommended', 'forced'];
    const s = h.sgReadyState();
    const r = h.requestedState();
    state.heat_pump = {
      sg_ready: s ?? null,
      sg_ready_name: s ? names[s - 1] : null,
      requested: r ?? null,
      tank_c: h.tankC() ?? null,
      room_c: h.roomC() ?? null,
      power_w: h.params.maxElectricW,
      tank: h.params.tank ? { min_c: h.params.tank.minC, max_c: h.params.tank.maxC, volume_l: h.params.tank.volumeL } : null,
      band: h.params.space ? { min_c: h.params.space.band.minC, max_c: h.params.space.band.maxC } : null,
    };
  }
  return {
    id: device.id,
    object: 'device',
    name: device.name,
    adapter: device.adapter,
    circuit: device.circuit ?? null,
    available: device.available,
    error: device.error ?? status?.error ?? null,
    adapter_status: status?.status ?? null,
    capabilities: Object.keys(caps).filter((k) => caps[k as keyof typeof caps]),
    state,
    config: entry?.config ? redactConfig(entry.config) : null,
  };
}

/** The state file and the meter store: whether writes succeed, and acknowledged data found damaged. */
export function storageHealth(hub: HubServices) {
  const state = hub.state.health;
  const meters = hub.metering?.store.health;
  const problems: string[] = [];
  if (!state.ok) problems.push(`the state file ${state.file} cannot be written since ${state.since} (${state.error}); changes are kept in memory and saved when it can`);
  if (meters?.writeError) problems.push(`meter records cannot be stored since ${meters.writeError.since} (${meters.writeError.error}); meter writes answer store_unavailable`);
  for (const d of meters?.damaged ?? []) {
    problems.push(`${d.file}: ${d.length} damaged bytes at offset ${d.offset} (${d.records ?? 'unknown number of'} records, ${d.firstTime ?? '?'} to ${d.lastTime ?? '?'})${d.aside ? `, kept in ${d.aside}` : ''}`);
  }
  return {
    status: problems.length ? 'degraded' : 'ok',
    problems,
    state: { writable: state.ok, error: state.error ?? null, since: state.since ?? null },
    meters: meters
      ? {
          writable: !meters.writeError,
          error: meters.writeError?.error ?? null,
          since: meters.writeError?.since ?? null,
          damaged: meters.damaged.map((d) => ({ kind: d.kind, file: d.file, offset: d.offset, bytes: d.length, records: d.records, first_time: d.firstTime, last_time: d.lastTime, kept_in: d.aside, detected_at: d.detectedAt })),
        }
      : null,
  };
}

export const coreRoutes: RouteModule = (app, hub) => {
  app.get('/health', access('read'), async () => {
    const statuses = [...hub.adapterStatus.values()];
    const failed = statuses.filter((s) => s.status === 'failed').length;
    const storage = storageHealth(hub);
    const plugins = [...(hub.pluginStatus ?? new Map()).entries()].map(([id, s]) => ({ id, source: s.source, status: s.status, error: s.error ?? null }));
    const pluginsFailed = plugins.filter((p) => p.status === 'failed').length;
    return {
      object: 'health',
      status: failed || pluginsFailed || storage.status !== 'ok' ? 'degraded' : 'ok',
      version: process.env.npm_package_version ?? '0.1.0',
      site_id: hub.site.id,
      time: new Date(hub.clock.now()).toISOString(),
      uptime_s: Math.round((Date.now() - hub.startedAt) / 1000),
      devices: { total: hub.registry.all().length, available: hub.registry.all().filter((d) => d.available).length },
      adapters: { running: statuses.filter((s) => s.status === 'running').length, failed },
      plugins: { running: plugins.filter((p) => p.status === 'running').length, failed: pluginsFailed, list: plugins },
      storage,
    };
  });

  app.get('/plugins', access('read'), async () => ({
    object: 'list',
    data: [...(hub.pluginStatus ?? new Map()).entries()].map(([id, s]) => ({ object: 'plugin', id, source: s.source, status: s.status, error: s.error ?? null })),
  }));

  app.get('/devices', access('read'), async () => ({ object: 'list', data: hub.registry.all().map((d) => deviceView(d, hub)) }));

  app.get<{ Params: { id: string } }>('/devices/:id', access('read'), async (req) => {
    const d = hub.registry.get(req.params.id);
    if (!d) throw new ApiError(404, 'device_not_found', `no device "${req.params.id}" (known: ${hub.registry.all().map((x) => x.id).join(', ') || 'none'})`);
    return deviceView(d, hub);
  });
};
