import { ApiError, badRequest, ChargeModeBody, ComfortBody, parseFragment, pathText, PauseBody, TargetBody, type CapName, type Device, type EvTarget, type TSchema } from '../api/index.js';
import { access, type RouteModule } from '../core/http.js';
import type { HubServices } from '../core/services.js';
import { flexibilityOf } from './flexibility.js';
import { parseLimitsBody, type StoredLimits } from './limits.js';
import type { ControlLoop } from './loop.js';
import { chargeModeOf, type EffectiveSettings } from './model.js';
import { parseScheduleBody } from './schedule.js';
import { planView } from './view.js';

/** `PUT /devices/{id}/target`: the EV target, in the schema the YAML's `target` has too (fastify checked the shape). */
export function parseTarget(body: unknown): EvTarget {
  const parsed = parseFragment(TargetBody, body);
  if (!parsed.ok) {
    const issue = parsed.issues[0];
    throw badRequest(pathText(issue.path) || 'body', issue.message);
  }
  if (!Object.keys(parsed.value).length) throw badRequest('body', `give at least one of ${Object.keys(TargetBody.properties).join(', ')}`);
  return parsed.value;
}

/** `PUT /devices/{id}/comfort`: the band the room must stay in; fastify checked the shape. */
export function parseComfort(body: ComfortBody): NonNullable<EffectiveSettings['comfort']> {
  if (body.min_c >= body.max_c) throw badRequest('min_c', `must be below max_c (${body.max_c})`);
  return { min_c: body.min_c, max_c: body.max_c };
}

/** Route options: who may call it and the schema fastify checks its body with. */
const writeWith = (body: TSchema) => ({ ...access('write'), schema: { body } });

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

    app.put<{ Params: { id: string } }>('/devices/:id/target', writeWith(TargetBody), async (req) => {
      const d = device(req.params.id, 'charger', 'charging target');
      const target = parseTarget(req.body);
      // "charge now" keeps the rest of the target (leave time, price limit) for when it is lifted
      const keys = Object.keys(target);
      const merged = keys.length === 1 && keys[0] === 'charge_now' ? { ...(loop.settings(d.id).target ?? {}), ...target } : target;
      return override(d, (o) => (o.target = merged));
    });
    app.put<{ Params: { id: string }; Body: ChargeModeBody }>('/devices/:id/mode', writeWith(ChargeModeBody), async (req) => {
      const d = device(req.params.id, 'charger', 'charge mode');
      return override(d, (o) => (o.charge_mode = req.body.mode));
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
    app.put<{ Params: { id: string }; Body: ComfortBody }>('/devices/:id/comfort', writeWith(ComfortBody), async (req) => {
      const d = device(req.params.id, 'thermostat', 'comfort band');
      const comfort = parseComfort(req.body);
      return override(d, (o) => (o.comfort = comfort));
    });
    app.put<{ Params: { id: string }; Body: PauseBody }>('/devices/:id/pause', writeWith(PauseBody), async (req) => {
      const d = device(req.params.id);
      const { paused } = req.body;
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
