import type { PartFactory } from '../core/services.js';
import { tariffRoutes } from './routes.js';
import { TariffService } from './service.js';

export interface TariffPartOptions {
  /** Injected so tests never make live calls; default the global fetch. */
  fetch?: typeof globalThis.fetch;
}

/** The tariff part of the hub: resolves prices (`hub.tariffs`), records their history, serves the tariff API. */
export function tariffPart(options: TariffPartOptions = {}): PartFactory {
  return (hub) => {
    const service = new TariffService({
      site: hub.site,
      clock: hub.clock,
      bus: hub.bus,
      log: hub.log.child({ component: 'tariffs' }),
      state: hub.state,
      storageDir: hub.config.storage.dir,
      tariffs: hub.config.tariffs,
      pvKwp: (hub.config.forecasts?.pv ?? []).reduce((a, p) => a + (p.kwp ?? 0), 0),
      configSource: hub.config.source,
      sources: hub.catalog?.tariffSources ?? [],
      fetch: options.fetch,
    });
    hub.tariffs = service;
    return {
      name: 'tariffs',
      routes: tariffRoutes(service),
      start: () => service.start(),
      stop: () => service.stop(),
    };
  };
}
