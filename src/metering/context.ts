import { randomBytes } from 'node:crypto';
import { ApiError, type Device, type Logger, type SiteInfo } from '../api/index.js';
import type { PriceLookup } from '../core/services.js';
import { deviceSubject, locationSubject, subjectId, subjectKind } from './records.js';
import type { ApiMeterCap } from './meter-cap.js';
import type { MeterRecordStore } from './store-api.js';

/** A device as metering sees it: the running device (capabilities) and its YAML entry, either may be missing. */
export interface DeviceInfo {
  id: string;
  device?: Device;
  config?: Record<string, unknown>;
}

/** What the metering parts (ingest, readings, cost queries, savings) are given. */
export interface MeteringContext {
  store: MeterRecordStore;
  site: SiteInfo;
  /** The tariff part's price lookup, once there is one. */
  prices: () => PriceLookup | undefined;
  devices: () => DeviceInfo[];
  /** Charging sessions the hub knows (plug-in times for the EV baseline). */
  sessions?: () => Record<string, { device_id: string; start: string; plug_in?: string }>;
  log?: Logger;
  /** Caps the meters that only the API feeds (storage.max_api_meters). */
  apiMeters?: ApiMeterCap;
  /** The device whose `grid` channel is the site's meter; other grid channels are sub-meters (`device:grid`). */
  gridMeter?: () => string | undefined;
}

export const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

export const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The store subject behind a path id: the site's location id, a device id, or `device:channel`. */
export function resolveSubject(ctx: MeteringContext, objectId: string): string {
  if (objectId === ctx.site.id) return locationSubject(objectId);
  const subject = deviceSubject(objectId);
  if (ctx.store.has(subject) || ctx.devices().some((d) => d.id === objectId)) return subject;
  const known = [ctx.site.id, ...new Set([...ctx.devices().map((d) => d.id), ...ctx.store.subjects().filter((s) => subjectKind(s.subject) === 'device').map((s) => subjectId(s.subject))])];
  throw new ApiError(404, 'not_found', `no location or device "${objectId}" (known: ${known.join(', ')})`, { field: 'id' });
}
