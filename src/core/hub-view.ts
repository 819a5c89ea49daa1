import type { CostQuery, DeepReadonly, Device, EventBus, HubView, PartStatus, PlanSnapshot } from '../api/index.js';
import { deviceView, redactConfig } from './routes.js';
import type { HubServices } from './services.js';

/** A frozen deep copy: what a plugin gets can never reach back into the hub's own objects. */
export function frozenCopy<T>(value: T): DeepReadonly<T> {
  const freeze = (v: unknown): unknown => {
    if (v && typeof v === 'object' && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const x of Object.values(v)) freeze(x);
    }
    return v;
  };
  return freeze(value === undefined ? value : structuredClone(value)) as DeepReadonly<T>;
}

const refuseWrite = (what: string) => () => {
  throw new TypeError(`${what} is read-only for plugins`);
};

/**
 * A live device a plugin cannot change: every property write, delete or redefinition throws, on
 * the device and on its capability objects; methods (reads and commands) run on the real object.
 */
function readOnly<T extends object>(target: T, what: string, cache: WeakMap<object, object>): T {
  const known = cache.get(target);
  if (known) return known as T;
  const proxy = new Proxy(target, {
    get(t, key) {
      const v = Reflect.get(t, key, t) as unknown;
      // a frozen property must be answered as itself (a proxy invariant)
      const own = Reflect.getOwnPropertyDescriptor(t, key);
      if (own && !own.configurable && !own.writable) return v;
      if (typeof v === 'function') return (v as (...a: unknown[]) => unknown).bind(t);
      if (v && typeof v === 'object') return readOnly(v as object, what, cache);
      return v;
    },
    set: refuseWrite(what),
    deleteProperty: refuseWrite(what),
    defineProperty: refuseWrite(what),
    setPrototypeOf: refuseWrite(what),
  });
  cache.set(target, proxy);
  return proxy;
}

/** The hub's services as a plugin may see them (HubView in src/api/hub-view.ts). */
export function createHubView(hub: HubServices, bus: EventBus, pluginStatus: ReadonlyMap<string, PartStatus>): HubView {
  const proxies = new WeakMap<object, object>();
  const device = (d: Device) => readOnly(d, `device ${d.id}`, proxies);
  const { site } = hub.config;
  const view: HubView = {
    site: frozenCopy({
      id: site.id,
      name: site.name,
      timezone: site.timezone,
      currency: site.currency,
      ...(site.latitude !== undefined ? { latitude: site.latitude } : {}),
      ...(site.longitude !== undefined ? { longitude: site.longitude } : {}),
      grid: { max_import_w: site.grid?.max_import_w ?? null, max_export_w: site.grid?.max_export_w ?? null },
      circuits: site.circuits,
    }),
    devices: Object.freeze({
      list: () => Object.freeze(hub.registry.all().map(device)),
      get: (id: string) => {
        const d = hub.registry.get(id);
        return d ? device(d) : undefined;
      },
      json: (id: string) => {
        const d = hub.registry.get(id);
        return d ? (frozenCopy(deviceView(d, hub)) as ReturnType<HubView['devices']['json']>) : undefined;
      },
      status: (id: string) => {
        const s = hub.adapterStatus.get(id);
        return s ? frozenCopy(s) : undefined;
      },
    }),
    events: Object.freeze({
      on: ((topic, handler) => bus.on(topic, (payload) => handler(frozenCopy(payload) as never))) as HubView['events']['on'],
    }),
    config: () => redactedConfig(hub),
    plugins: Object.freeze({
      status: (id: string) => {
        const s = pluginStatus.get(id);
        return s ? frozenCopy(s) : undefined;
      },
    }),
  };
  const parts: Partial<Record<'prices' | 'plan' | 'costs' | 'savings', unknown>> = {};
  // the parts are made before any plugin and never replaced, so presence is known now
  if (hub.tariffs) {
    const tariffs = hub.tariffs;
    parts.prices = Object.freeze({ series: (direction: 'IMPORT' | 'EXPORT', window: { start: number; end: number }) => frozenCopy(tariffs.series(direction, window)) });
  }
  if (hub.control) {
    const control = hub.control;
    parts.plan = Object.freeze({
      latest: () => {
        const rec = control.latest;
        if (!rec) return undefined;
        const snapshot: PlanSnapshot = {
          id: rec.id,
          createdAt: rec.createdAt,
          validUntil: rec.validUntil,
          status: rec.plan.status,
          cost: rec.plan.cost,
          slots: rec.plan.slots.map((s) => ({ start: s.start, end: s.end })),
          devices: rec.plan.devices.map((d) => ({ id: d.id, kind: d.kind, powerW: d.powerW, modes: d.modes, on: d.on, setpointC: d.setpointC })),
        };
        return frozenCopy(snapshot);
      },
    });
  }
  if (hub.metering) {
    const metering = hub.metering;
    parts.costs = (objectId: string, q: CostQuery) => frozenCopy(metering.costs(objectId, q));
    parts.savings = (objectId: string, window: { start: number; end: number }) => frozenCopy(metering.savings(objectId, window));
  }
  return Object.freeze(Object.assign(view, parts)) as HubView;
}

/** The site file as loaded, secrets redacted, frozen: for plugins that read other sections (the demo). */
export const redactedConfig = (hub: HubServices) => frozenCopy(redactConfig(hub.config) as Record<string, unknown>);
