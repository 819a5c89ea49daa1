import { hasCap, type MeterReading } from '../api/index.js';
import type { PartFactory } from '../core/services.js';
import { EnergyHistory } from '../control/history.js';
import { baseLoadSource } from '../control/model.js';
import { meanPowerW } from '../optimiser/forecast/index.js';
import { forecastRoutes } from './routes.js';
import { ForecastService } from './service.js';

export interface ForecastPartOptions {
  /** Injected so tests never make live calls; default the global fetch. */
  fetch?: typeof globalThis.fetch;
}

/**
 * The forecast part of the hub: runs `forecasts.source`, hands the planner its PV forecasts
 * (`hub.forecasts`), stores every plan's forecasts as made with what was measured, serves GET /forecasts.
 */
export function forecastPart(options: ForecastPartOptions = {}): PartFactory {
  return (hub) => {
    const service = new ForecastService({
      config: hub.config,
      site: hub.site,
      clock: hub.clock,
      log: hub.log.child({ component: 'forecasts' }),
      storageDir: hub.config.storage.dir,
      sources: hub.catalog?.forecastSources ?? [],
      cache: hub.state.kv('forecast:source'),
      fetch: options.fetch,
    });
    hub.forecasts = service;
    let unsubscribe: (() => void)[] = [];
    let recording: Promise<void> = Promise.resolve();
    // PV production per device: a hybrid inverter reports it on its `pv` channel, a PV meter on its own
    const pvHistory = new EnergyHistory(2);
    const pvChannel = new Set<string>();
    const onReading = (deviceId: string, reading: MeterReading) => {
      const d = hub.registry.get(deviceId);
      if (!d || !hasCap(d, 'pv')) return;
      const channel = reading.channel ?? 'device';
      if (channel === 'pv') pvChannel.add(deviceId);
      if (channel === 'pv' || (channel === 'device' && !pvChannel.has(deviceId))) pvHistory.add(deviceId, { ...reading, channel: 'device' });
    };

    const record = async () => {
      const rec = hub.control?.latest;
      const history = hub.control?.history;
      if (!rec || !history) return;
      const devices = hub.registry.all();
      const pvDevices = devices.filter((d) => hasCap(d, 'pv')).map((d) => d.id);
      const order = hub.config.devices.map((d) => d.id);
      const loadSource = baseLoadSource([...devices].sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id)), hub.config.site.grid_meter);
      const measured = (series: string, start: number, end: number) => {
        if (series === 'load' && 'grid' in loadSource) {
          const m = meanPowerW(history.houseLoad(loadSource.grid, loadSource.known, end), start, end);
          return m.coverage >= 0.9 ? m.powerW : undefined;
        }
        const [ids, sign, from] = series === 'pv' ? [pvDevices, -1 as const, pvHistory] : series === 'load' ? [(loadSource as { meters: string[] }).meters, 1 as const, history] : [[series.slice(3)], -1 as const, pvHistory];
        if (!ids.length) return undefined;
        const m = meanPowerW(from.intervals(ids, end, sign), start, end);
        return m.coverage >= 0.9 ? m.powerW : undefined;
      };
      const { problem, notes } = rec;
      // the PV forecast is stored as forecast, not as planned: robust planning's scale is taken out
      const scale = notes.pvScale;
      const unscaled = (id: string) => (scale && scale.factor > 0 && scale.flows.includes(id) ? 1 / scale.factor : 1);
      const pvW = problem.slots.map((_, i) => -problem.flows.reduce((a, f) => a + (f.powerW[i] ?? 0) * unscaled(f.id), 0));
      await service.recordPlan({
        now: rec.createdAt,
        slots: problem.slots,
        pvW,
        loadW: problem.baseLoadW,
        names: { pv: notes.forecasts.pv.join('; ') || 'no PV', load: notes.forecasts.baseLoad },
        measured,
        pvDevices,
      });
    };

    return {
      name: 'forecasts',
      routes: forecastRoutes(service),
      start: async () => {
        await service.start();
        unsubscribe = [
          hub.bus.on('meter.reading', ({ deviceId, reading }) => onReading(deviceId, reading)),
          hub.bus.on('plan.updated', () => {
            recording = recording.then(record).catch((err: unknown) => hub.log.error({ err }, 'could not store the plan’s forecasts'));
          }),
        ];
      },
      stop: async () => {
        unsubscribe.forEach((u) => u());
        await recording;
        await service.stop();
      },
    };
  };
}
