import type { PriceLookup } from '../core/services.js';
import { PgMeterStore } from './pg-store.js';
import { ID_PATTERN } from './records.js';
import { MeteringService } from './service.js';

/**
 * Another site in the hub's PostgreSQL database, named by a path id: `loc_b` (that site's location)
 * or `heatpump@loc_b` (a device of it). Undefined when the id is not one (the hub's own ids, a file
 * store, or no such site in the database). The site's records are read for the one answer and let
 * go; they are priced with this hub's tariffs and timezone.
 */
export async function withOtherSite<T>(metering: MeteringService, prices: () => PriceLookup | undefined, id: string, fn: (service: MeteringService, objectId: string) => T): Promise<T | undefined> {
  const store = metering.store;
  if (!(store instanceof PgMeterStore) || id === metering.site.id) return undefined;
  const at = id.lastIndexOf('@');
  const siteId = at >= 0 ? id.slice(at + 1) : id;
  if (siteId === metering.site.id || !ID_PATTERN.test(siteId)) return undefined;
  // a device id of this hub is never another site
  if (at < 0 && metering.store.has(`d.${id}`)) return undefined;
  if (!(await store.siteExists(siteId))) return undefined;
  const other = await store.openSite(siteId);
  try {
    const service = new MeteringService({ store: other, site: { ...metering.site, id: siteId }, prices, devices: () => [] });
    return fn(service, at >= 0 ? id.slice(0, at) : siteId);
  } finally {
    await other.close();
  }
}
