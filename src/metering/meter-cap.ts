import { subjectId, subjectKind } from './records.js';
import type { MeterRecordStore } from './store-api.js';

/** Default of `storage.max_api_meters`. */
export const DEFAULT_MAX_API_METERS = 200;

/**
 * Meters that only the HTTP API feeds (a `device_id` no device of the site file names) are
 * accepted as FlatPeak accepts them, but each becomes a partition on disk: a site may gain at most
 * `storage.max_api_meters` of them, so a bad or hostile client cannot fill the disk with them.
 */
export class ApiMeterCap {
  constructor(
    private readonly store: MeterRecordStore,
    private readonly max: number,
    /** Device ids the hub knows (site file, adapters). */
    private readonly knownDevices: () => Iterable<string>,
  ) {}

  private isApiMeter(subject: string, known: Set<string>): boolean {
    if (subjectKind(subject) === 'location') return false;
    const id = subjectId(subject);
    // a device's channels (`battery:grid`) are the device's own
    return !known.has(id) && !known.has(id.split(':')[0]);
  }

  /**
   * Splits subjects into those that may be written and, for each refused one, the reason: an API
   * meter that is not stored yet, past the limit (counting the new ones admitted in this batch).
   */
  check(subjects: Iterable<string>): Map<string, string> {
    const known = new Set(this.knownDevices());
    const refused = new Map<string, string>();
    let count = -1;
    for (const subject of new Set(subjects)) {
      if (this.store.has(subject) || !this.isApiMeter(subject, known)) continue;
      if (count < 0) count = this.store.subjectIds().filter((s) => this.isApiMeter(s, known)).length;
      if (count < this.max) {
        count++;
        continue;
      }
      refused.set(
        subject,
        `device_id "${subjectId(subject)}": this site already has ${count} meters fed only through the API (device ids no device in the site file names), the most storage.max_api_meters (${this.max}) allows; send it under an existing device_id, or raise storage.max_api_meters`,
      );
    }
    return refused;
  }

  get limit() {
    return this.max;
  }
}
