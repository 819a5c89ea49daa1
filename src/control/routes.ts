import { ApiError, badRequest, EV_CHARGE_MODES, type CapName, type Device, type EvChargeMode } from '../api/index.js';
import { access, type RouteModule } from '../core/http.js';
import type { HubServices } from '../core/services.js';
import { flexibilityOf } from './flexibility.js';
import { parseLimitsBody, type StoredLimits } from './limits.js';
import type { ControlLoop } from './loop.js';
import { chargeModeOf, type EffectiveSettings } from './model.js';
import { parseScheduleBody } from './schedule.js';
import { planView } from './view.js';

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

type Body = Record<string, unknown>;

function objectBody(body: unknown): Body {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body', 'must be a JSON object');
  return body as Body;
}

function onlyKeys(b: Body, keys: string[], prefix = '') {
  for (const k of Object.keys(b)) if (!keys.includes(k)) throw badRequest(`${prefix}${k}`, `unknown field (valid: ${keys.join(', ')})`);
}

const num = (b: Body, k: string, min: number, max: number, prefix = '') => {
  const v = b[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`${prefix}${k}`, 'must be a number');
  if (v < min || v > max) throw badRequest(`${prefix}${k}`, `must be between ${min} and ${max}`);
  return v;
};
const bool = (b: Body, k: string) => {
  const v = b[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw badRequest(k, 'must be true or false');
  return v;
};

/** `PUT /devices/{id}/target`: EVerest's OptimizerTarget in homeflex's words. */
export function parseTarget(body: unknown): NonNullable<EffectiveSettings['target']> {
  const b = objectBody(body);
  onlyKeys(b, ['energy_wh', 'soc_pct', 'leave_time', 'price_limit', 'solar_only', 'charge_now']);
  if (!Object.keys(b).length) throw badRequest('body', 'give at least one of energy_wh, soc_pct, leave_time, price_limit, solar_only, charge_now');
  const leave = b.leave_time;
  if (leave !== undefined && (typeof leave !== 'string' || (!HHMM.test(leave) && Number.isNaN(Date.parse(leave))))) throw badRequest('leave_time', 'must be "HH:MM" (local time) or an RFC 3339 time');
  if (b.energy_wh !== undefined && b.soc_pct !== undefined) throw badRequest('soc_pct', 'give energy_wh or soc_pct, not both');
  if (b.price_limit !== undefined && (typeof b.price_limit !== 'number' || !Number.isFinite(b.price_limit))) throw badRequest('price_limit', 'must be a rate in the site currency per kWh');
  const target = {
    energy_wh: num(b, 'energy_wh', 0, 1_000_000),
    soc_pct: num(b, 'soc_pct', 0, 100),
    leave_time: leave as string | undefined,
    price_limit: b.price_limit as number | undefined,
    solar_only: bool(b, 'solar_only'),
    charge_now: bool(b, 'charge_now'),
  };
  return Object.fromEntries(Object.entries(target).filter(([, v]) => v !== undefined));
}

/** `PUT /devices/{id}/comfort`: the band the room must stay in. */
export function parseComfort(body: unknown): NonNullable<EffectiveSettings['comfort']> {
  const b = objectBody(body);
  onlyKeys(b, ['min_c', 'max_c']);
  const min = num(b, 'min_c', -30, 60);
  const max = num(b, 'max_c', -30, 60);
  if (min === undefined) throw badRequest('min_c', 'is required (°C)');
  if (max === undefined) throw badRequest('max_c', 'is required (°C)');
  if (min >= max) throw badRequest('min_c', `must be below max_c (${max})`);
  return { min_c: min, max_c: max };
}

/** The device's effective settings and which of them come from the API. */
function controlView(loop: ControlLoop, hub: HubServices, d: Device) {
  const over = (hub.state.data.overrides[d.id] ?? {}) as EffectiveSettings;
  const eff = loop.settings(d.id);
  return {
    object: 'device_control',
    id: d.id,
    target: eff.target ?? null,
    schedule: eff.schedule ?? null,
    comfort: eff.comfort ?? (d.caps.thermostat ? { min_c: d.caps.thermostat.band.minC, max_c: d.caps.thermostat.band.maxC } : null),
    paused: eff.paused === true,
    ...(d.caps.charger ? { charge_mode: chargeModeOf(eff, hub.registry.entry(d.id)?.config ?? {}) } : {}),
    overridden: Object.keys(over),
    plan_id: loop.latest?.id ?? null,
  };
}

export function controlRoutes(loop: ControlLoop): RouteModule {
  return (app, hub) => {
    const device = (id: string, cap?: CapName, what?: string) => {
      const d = hub.registry.get(id);
      if (!d) throw new ApiError(404, 'device_not_found', `no device "${id}" (known: ${hub.registry.all().map((x) => x.id).join(', ') || 'none'})`);
      if (cap && !d.caps[cap]) throw new ApiError(422, 'not_supported', `device "${id}" has no ${cap} capability, so it has no ${what}`);
      return d;
    };
    /** Stores an override, re-plans at once and answers with the device's settings and the new plan id. */
    const override = async (d: Device, change: (o: EffectiveSettings) => void) => {
      await hub.state.update((s) => {
        const o = (s.overrides[d.id] ??= {}) as EffectiveSettings;
        change(o);
        if (!Object.keys(o).length) delete s.overrides[d.id];
      });
      hub.bus.emit('target.changed', { deviceId: d.id });
      await loop.settled();
      return controlView(loop, hub, d);
    };

    app.get('/plan', access('read'), async () => {
      if (!loop.latest) {
        const why = loop.lastError ? `: ${loop.lastError.message}` : ' yet (the hub is starting)';
        throw new ApiError(503, 'no_plan', `no plan${why}`);
      }
      return { ...planView(loop.latest, hub.site), ...(loop.lastError ? { stale: true, error: loop.lastError.message } : {}) };
    });

    app.get('/flexibility', access('read'), async () => {
      if (!loop.latest) throw new ApiError(503, 'no_plan', `no plan${loop.lastError ? `: ${loop.lastError.message}` : ' yet (the hub is starting)'}, so no flexibility`);
      return flexibilityOf(loop.latest, hub.site.id, hub.config.site.grid?.max_import_w, hub.config.planner.slot_minutes);
    });

    app.get('/limits', access('read'), async () => ({ object: 'list', data: Object.entries(hub.state.data.limits ?? {}).map(([id, l]) => ({ id, ...(l as StoredLimits) })) }));

    const limitTarget = (id: string): 'site' | 'circuit' | 'device' => {
      if (id === hub.site.id) return 'site';
      if (hub.config.site.circuits.some((c) => c.id === id)) return 'circuit';
      if (hub.registry.get(id)) return 'device';
      throw new ApiError(404, 'not_found', `"${id}" is neither the site (${hub.site.id}), a circuit (${hub.config.site.circuits.map((c) => c.id).join(', ') || 'none'}) nor a device`);
    };

    app.put<{ Params: { id: string } }>('/limits/:id', access('write'), async (req) => {
      const kind = limitTarget(req.params.id);
      const stored = parseLimitsBody(req.body, kind === 'device', hub.clock.now());
      await hub.state.update((s) => {
        const merged = { ...((s.limits[req.params.id] as StoredLimits | undefined) ?? {}), ...stored };
        // valid_until belongs to each PUT: without it the limits hold for ever, as before
        if (!stored.valid_until) delete merged.valid_until;
        for (const k of ['schedule_import', 'schedule_export', 'schedule_setpoints'] as const) if (merged[k]?.length === 0) delete merged[k];
        if (!merged.schedule_import && !merged.schedule_export && !merged.schedule_setpoints) delete s.limits[req.params.id];
        else s.limits[req.params.id] = merged;
      });
      hub.bus.emit('limits.changed', { nodeId: req.params.id });
      await loop.settled();
      return { object: 'limits', id: req.params.id, kind, ...((hub.state.data.limits[req.params.id] as StoredLimits | undefined) ?? { updated_at: stored.updated_at }), plan_id: loop.latest?.id ?? null };
    });

    app.delete<{ Params: { id: string } }>('/limits/:id', access('write'), async (req) => {
      const kind = limitTarget(req.params.id);
      await hub.state.update((s) => {
        delete s.limits[req.params.id];
      });
      hub.bus.emit('limits.changed', { nodeId: req.params.id });
      await loop.settled();
      return { object: 'limits', id: req.params.id, kind, deleted: true, plan_id: loop.latest?.id ?? null };
    });

    app.get<{ Params: { id: string } }>('/devices/:id/control', access('read'), async (req) => controlView(loop, hub, device(req.params.id)));

    app.put<{ Params: { id: string } }>('/devices/:id/target', access('write'), async (req) => {
      const d = device(req.params.id, 'charger', 'charging target');
      const target = parseTarget(req.body);
      // "charge now" keeps the rest of the target (leave time, price limit) for when it is lifted
      const keys = Object.keys(target);
      const merged = keys.length === 1 && keys[0] === 'charge_now' ? { ...(loop.settings(d.id).target ?? {}), ...target } : target;
      return override(d, (o) => (o.target = merged));
    });
    app.put<{ Params: { id: string } }>('/devices/:id/mode', access('write'), async (req) => {
      const d = device(req.params.id, 'charger', 'charge mode');
      const b = objectBody(req.body);
      onlyKeys(b, ['mode']);
      const mode = b.mode;
      if (typeof mode !== 'string' || !(EV_CHARGE_MODES as readonly string[]).includes(mode)) throw badRequest('mode', `must be one of ${EV_CHARGE_MODES.join(', ')}`);
      return override(d, (o) => (o.charge_mode = mode as EvChargeMode));
    });
    app.delete<{ Params: { id: string } }>('/devices/:id/mode', access('write'), async (req) => {
      const d = device(req.params.id, 'charger', 'charge mode');
      return override(d, (o) => delete o.charge_mode);
    });
    app.get('/surplus', access('read'), async () => ({ object: 'list', data: loop.surplus.view() }));
    app.put<{ Params: { id: string } }>('/devices/:id/schedule', access('write'), async (req) => {
      const d = device(req.params.id, 'switch', 'run schedule');
      const schedule = parseScheduleBody(req.body);
      return override(d, (o) => (o.schedule = schedule));
    });
    app.put<{ Params: { id: string } }>('/devices/:id/comfort', access('write'), async (req) => {
      const d = device(req.params.id, 'thermostat', 'comfort band');
      const comfort = parseComfort(req.body);
      return override(d, (o) => (o.comfort = comfort));
    });
    app.put<{ Params: { id: string } }>('/devices/:id/pause', access('write'), async (req) => {
      const d = device(req.params.id);
      const b = objectBody(req.body);
      onlyKeys(b, ['paused']);
      const paused = bool(b, 'paused');
      if (paused === undefined) throw badRequest('paused', 'is required (true or false)');
      return override(d, (o) => {
        if (paused) o.paused = true;
        else delete o.paused;
      });
    });
    for (const what of ['target', 'schedule', 'comfort'] as const) {
      app.delete<{ Params: { id: string } }>(`/devices/:id/${what}`, access('write'), async (req) => {
        const d = device(req.params.id);
        return override(d, (o) => delete o[what]);
      });
    }
  };
}
