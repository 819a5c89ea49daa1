import { storageHealth } from '../routes.js';
import type { PartFactory } from '../services.js';

/** How often the storage's health is looked at for the `storage_degraded` notice. */
export const STORAGE_CHECK_MS = 15_000;

/**
 * Raises `storage_degraded` when the state file or the meter store cannot be written, or meter data
 * was found damaged (what `GET /health` lists under storage), and resolves it when that is over.
 */
export const storageNoticePart: PartFactory = (hub) => {
  let timer: NodeJS.Timeout | undefined;
  let told: string | undefined;
  const check = () => {
    const h = storageHealth(hub);
    if (h.status !== 'ok') {
      const first = h.problems[0] ?? 'storage problem';
      // a new problem is told again; the same one is not repeated every check
      if (told === first) return;
      told = first;
      hub.bus.emit('notice', {
        kind: 'storage_degraded',
        severity: 'error',
        key: 'storage',
        title: 'Storage degraded',
        message: `${h.problems.join('; ')}. The hub keeps running; see GET /api/v1/health and docs/storage.md.`,
      });
    } else if (told !== undefined) {
      told = undefined;
      hub.bus.emit('notice', { kind: 'storage_degraded', severity: 'info', key: 'storage', resolved: true, title: 'Storage works again', message: 'The state file and the meter records are written again.' });
    }
  };
  return {
    name: 'storage-notices',
    async start() {
      check();
      timer = setInterval(check, STORAGE_CHECK_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
    },
  };
};
