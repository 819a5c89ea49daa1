import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { access, type RouteModule } from '../http.js';
import type { HubServices, PartFactory } from '../services.js';
import { MeterStore } from '../../metering/store.js';
import { DIR_MODE } from './atomic.js';
import { archiveStream, nightlyName, pruneBackups, takeSnapshot, writeArchive } from './backup.js';

/** The next moment after `now` when the local time in `timezone` is `at` (HH:MM); a time a DST change skips runs at the next valid minute. */
export function nextRun(now: number, at: string, timezone: string): number {
  const [hour, minute] = at.split(':').map(Number);
  let day = DateTime.fromMillis(now, { zone: timezone }).startOf('day');
  for (let i = 0; i < 3; i++, day = day.plus({ days: 1 })) {
    const t = day.set({ hour, minute }).toMillis();
    if (t > now) return t;
  }
  return now + 86_400_000;
}

/** A snapshot of the running hub's storage: state as in memory, meter store between two writes. */
async function hubSnapshot(hub: HubServices) {
  // readings the adapters handed over are stored before the snapshot is taken
  await hub.metering?.settled();
  return takeSnapshot(hub.config.storage.dir, { state: hub.state.data, meters: hub.metering?.store instanceof MeterStore ? hub.metering.store : undefined, siteId: hub.site.id });
}

/**
 * Backups of the running hub: `POST /api/v1/backup` answers with the archive (what
 * `homeflex backup` asks for while a hub holds the storage), and `storage.backup` makes one every
 * night at `at` into `dir`, keeping the newest `keep`.
 */
export const backupPart: PartFactory = (hub) => {
  const log = hub.log.child({ component: 'backup' });
  const nightly = hub.config.storage.backup;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();

  const runNightly = async () => {
    if (!nightly) return;
    const started = Date.now();
    mkdirSync(nightly.dir, { recursive: true, mode: DIR_MODE });
    const file = join(nightly.dir, nightlyName(hub.site.id, started));
    const snap = await hubSnapshot(hub);
    try {
      const bytes = await writeArchive(snap, file, started);
      const pruned = pruneBackups(nightly.dir, nightly.keep ?? 7);
      log.info({ file, bytes, files: snap.sources.length, ms: Date.now() - started, deleted: pruned }, `nightly backup written to ${file}`);
    } finally {
      snap.release();
    }
  };

  const schedule = () => {
    if (!nightly) return;
    const due = nextRun(Date.now(), nightly.at ?? '03:30', hub.site.timezone);
    timer = setTimeout(() => {
      running = runNightly()
        .catch((err: unknown) => log.error({ err, dir: nightly.dir }, `the nightly backup to ${nightly.dir} failed; the next is tried tomorrow`))
        .finally(schedule);
    }, Math.min(due - Date.now(), 2 ** 31 - 1));
    timer.unref();
  };

  return {
    name: 'backup',
    routes: (async (app) => {
        app.post('/backup', access('write'), async (_req, reply) => {
          const started = Date.now();
          const snap = await hubSnapshot(hub);
          const stream = archiveStream(snap, started);
          let done = false;
          const finish = () => {
            if (done) return;
            done = true;
            snap.release();
          };
          stream.once('end', finish);
          stream.once('error', finish);
          stream.once('close', finish);
          reply.raw.once('close', () => {
            if (!done) stream.destroy();
            finish();
          });
          log.info({ files: snap.sources.length }, 'backup requested over HTTP');
          return reply
            .type('application/gzip')
            .header('content-disposition', `attachment; filename="${nightlyName(hub.site.id, started)}"`)
            .header('cache-control', 'no-store')
            .send(stream);
        });
    }) satisfies RouteModule,
    async start() {
      schedule();
    },
    async stop() {
      clearTimeout(timer);
      await running.catch(() => undefined);
    },
  };
};
