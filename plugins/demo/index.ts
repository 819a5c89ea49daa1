import { definePlugin, type EpochMs } from '../../src/api/index.js';
import { demoHistory, type HistoryDevice } from './history.js';
import { demoDayAheadTariff, householdRate, replayedPrice } from './prices.js';
import { DAY } from '../../src/api/time.js';

export { demoDayAheadTariff } from './prices.js';

interface DemoConfig {
  history_days: number;
}

/** What the plugin reads of the site file: its devices, its location and the import tariff's surcharge. */
interface SiteFile {
  site: { latitude?: number };
  devices: HistoryDevice[];
  tariffs: { import?: { type: string; surcharge?: { fixed?: number; percentage?: number; vat?: number } } };
}

const Q = 15 * 60_000;

/**
 * The demo: the `demo_day_ahead` tariff (real prices on today's dates), and at the first start
 * `history_days` of meter history for the simulated house, so a fresh demo has costs, savings and
 * forecasts from history to show. Not for real sites.
 */
export const demoPlugin = definePlugin<DemoConfig>({
  id: 'demo',
  description: 'The demo: real day-ahead prices replayed on today’s dates (tariff type demo_day_ahead) and simulated days of meter history written at the first start',
  configSchema: {
    properties: {
      history_days: { type: 'integer', minimum: 0, maximum: 28, default: 7, description: 'Days of meter history written at the first start (0: none)' },
    },
  },
  tariffSources: [demoDayAheadTariff],
  create(ctx, config) {
    return {
      async start() {
        const days = config.history_days ?? 7;
        const meters = ctx.meters;
        if (!days || ctx.store.get<EpochMs>('history_written_at') !== undefined || !meters) return;
        // the site file's shape is the YAML contract; a copy, since the history writer labels what it reads
        const hub = { config: structuredClone(ctx.hub.config()) as unknown as SiteFile };
        const to = Math.floor(ctx.clock.now() / Q) * Q;
        const from = to - days * DAY;
        const imp = hub.config.tariffs.import;
        const importRate = (t: EpochMs) => householdRate(replayedPrice(t, ctx.site.timezone), imp?.type === 'demo_day_ahead' ? imp.surcharge : undefined);
        const records = demoHistory({ siteId: ctx.site.id, timezone: ctx.site.timezone, latitude: hub.config.site.latitude ?? 50, devices: hub.config.devices, from, to, importRate });
        let stored = 0;
        for (let i = 0; i < records.length; i += 10_000) {
          const batch = await meters.ingestIntervals(records.slice(i, i + 10_000));
          stored += batch.records_processed;
          if (batch.failed_records.length) ctx.log.warn({ failed: batch.failed_records.slice(0, 3) }, 'some demo history records were refused');
        }
        await ctx.store.set('history_written_at', to);
        ctx.log.info({ records: stored, days }, `wrote ${days} days of simulated meter history for the demo`);
      },
    };
  },
});

const clock = (m: number) => `${String(Math.floor(m / 60) % 24).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
const toMinutes = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3));

/**
 * The demo's cars are at home when it starts, whatever the hour: each simulated car (`sim_ev`,
 * `sim_ocpp_cp`) arrives a quarter of an hour before `now` and keeps the length of its stay in the
 * file (18:00 to 07:30 is 13.5 hours), and its charger's target `leave_time` moves with it. Applied
 * by `homeflex start` to a site with the demo plugin, before the adapters are created.
 */
export function carsHomeAtStart(config: { devices: HistoryDevice[]; plugins: { id?: string }[] }, now: EpochMs, timezone: string): void {
  if (!config.plugins.some((p) => p.id === 'demo')) return;
  const local = new Date(now).toLocaleTimeString('en-GB', { timeZone: timezone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const arrive = Math.floor(toMinutes(local) / 15) * 15 - 15 + 24 * 60;
  for (const car of config.devices) {
    if (car.adapter !== 'sim_ev' && car.adapter !== 'sim_ocpp_cp') continue;
    const from = toMinutes(typeof car.arrive === 'string' ? car.arrive : '18:00');
    const to = toMinutes(typeof car.leave === 'string' ? car.leave : '07:30');
    const stay = (to - from + 24 * 60) % (24 * 60) || 24 * 60;
    car.arrive = clock(arrive);
    car.leave = clock(arrive + stay);
    const chargers = car.adapter === 'sim_ev' ? [car] : config.devices.filter((d) => d.adapter === 'ocpp' && d.identity === car.identity);
    for (const charger of chargers) {
      const target = charger.target as { leave_time?: string } | undefined;
      if (target?.leave_time) target.leave_time = car.leave as string;
    }
  }
}
