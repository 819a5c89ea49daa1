import { join } from 'node:path';
import type { Logger } from '../api/index.js';
import type { HubConfig } from '../core/config/schema.js';
import { PgMeterStore } from './pg-store.js';
import type { MeterRecordStore } from './store-api.js';
import { MeterStore } from './store.js';

/** Opens the meter store the configuration names: PostgreSQL (`storage.meters.postgres`) or files under `<storage.dir>/metering`. */
export async function openMeterStore(config: Pick<HubConfig, 'storage'>, siteId: string, log?: Logger): Promise<MeterRecordStore> {
  const days = config.storage.minute_records_days;
  const rollUpAfterMs = days === undefined ? undefined : days * 86_400_000;
  const pgc = config.storage.meters?.postgres;
  if (pgc) return PgMeterStore.open({ url: pgc.url, siteId, writeWaitMs: (pgc.write_wait_s ?? 10) * 1000, rollUpAfterMs, log });
  return MeterStore.open(join(config.storage.dir, 'metering'), { log, rollUpAfterMs });
}
