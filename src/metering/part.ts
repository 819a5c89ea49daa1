import { deviceKind } from '../api/index.js';
import type { PartFactory } from '../core/services.js';
import { meteringRoutes } from './routes.js';
import { MeteringService, type DeviceInfo } from './service.js';
import { SessionRecorder } from './sessions.js';
import { sessionFinishedNotice } from './session-notice.js';
import { ApiMeterCap, DEFAULT_MAX_API_METERS } from './meter-cap.js';
import { openMeterStore } from './store-open.js';
import { siteGridMeterId } from '../api/grid-meter.js';

/** How often the store compacts quiet partitions and trims its memory (wall-clock). */
const MAINTENANCE_MS = 10 * 60_000;

/**
 * The metering part: opens the record store under `<storage.dir>/metering`, turns every adapter's
 * meter readings into interval records, serves the meter, cost and savings API, and sets
 * `hub.metering` for the other parts (dashboard, report).
 */
export const meteringPart: PartFactory = async (hub) => {
  const log = hub.log.child({ component: 'metering' });
  const store = await openMeterStore(hub.config, hub.site.id, log);
  for (const problem of store.problems) log.warn(problem);
  for (const d of store.damage.filter((x) => x.aside && !store.problems.some((p) => p.startsWith(x.file)))) {
    log.error({ file: d.file, kept_in: d.aside, records: d.records, first_time: d.firstTime, last_time: d.lastTime }, `damaged meter data set aside earlier is still in ${d.aside}: its records are not in any query; delete the file once dealt with (homeflex store check lists it)`);
  }
  const devices = (): DeviceInfo[] => {
    const out = new Map<string, DeviceInfo>();
    // a simulator of a peer (wallbox-sim) is no device of the house
    for (const c of hub.config.devices) if (!hub.catalog?.adapters.find((a) => a.id === c.adapter)?.simulatesPeer) out.set(c.id, { id: c.id, config: c, device: hub.registry.get(c.id) });
    for (const d of hub.registry.all()) if (!out.has(d.id)) out.set(d.id, { id: d.id, device: d, config: hub.registry.entry(d.id)?.config });
    return [...out.values()];
  };
  const apiMeters = new ApiMeterCap(store, hub.config.storage.max_api_meters ?? DEFAULT_MAX_API_METERS, () => devices().map((d) => d.id));
  const gridMeter = () => siteGridMeterId(hub.config.site.grid_meter, hub.registry.all(), hub.config.devices.map((d) => d.id));
  const metering = new MeteringService({ store, site: hub.site, prices: () => hub.tariffs, devices, sessions: () => hub.state.data.sessions, log, apiMeters, gridMeter });
  hub.metering = metering;
  // subscribed now, before the adapters exist, so their first readings are heard
  const sessions = new SessionRecorder(hub.state);
  const recordSession = (deviceId: string) => {
    const charger = hub.registry.get(deviceId)?.caps.charger;
    if (charger) void sessions.observe(deviceId, charger, hub.clock.now())?.catch((err: unknown) => log.error({ err, device: deviceId }, 'charging session not recorded'));
  };
  const unsubscribers = [
    hub.bus.on('meter.reading', ({ deviceId, reading }) => {
      metering.onReading(deviceId, reading, deviceKind(hub.registry.get(deviceId)?.caps, hub.registry.entry(deviceId)?.config) ?? 'meter');
      recordSession(deviceId);
    }),
    ...(['device.state', 'device.connected', 'device.disconnected'] as const).map((topic) => hub.bus.on(topic, ({ deviceId }) => recordSession(deviceId))),
    hub.bus.on('session.ended', ({ deviceId, sessionId }) => {
      metering.onSessionEnded(deviceId, sessionId);
      recordSession(deviceId);
      void sessionFinishedNotice(hub, metering, deviceId, sessionId).catch((err: unknown) => log.warn({ err, device: deviceId, session: sessionId }, 'no session_finished notice'));
    }),
  ];
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'metering',
    routes: meteringRoutes(metering),
    async start() {
      timer = setInterval(() => void store.maintain().catch((err: unknown) => log.error({ err }, 'meter store maintenance failed')), MAINTENANCE_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      for (const off of unsubscribers) off();
      await metering.drain();
      await store.close();
    },
  };
};
