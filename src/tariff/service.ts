import { dirname, isAbsolute, join, resolve } from 'node:path';
import { DateTime } from 'luxon';
import cron, { type ScheduledTask } from 'node-cron';
import type { Clock, Direction, EpochMs, EventBus, Logger, PriceSeries, SiteInfo, TariffSource, TariffSourceDefinition, TimeWindow } from '../api/index.js';
import { isRetryable } from '../api/index.js';
import type { PriceLookup, PriceSourceHealth } from '../core/services.js';
import type { StateStore } from '../core/store/state.js';
import type { TariffConfig } from '../core/config/schema.js';
import { billTerms, gridFeeSeries, hasBill, inForce, levySpans, type BillConfig, type GridFeeSlot } from './bill-config.js';
import type { BillTerms, ComposedTariff, SlotComponents } from './bill-model.js';
import { composeComponents, composedExport, composedImport, type LevySpan } from './compose.js';
import { PriceHistory } from './history.js';
import { compactSeries, gapsIn, HOUR, overlaySeries, replaceRange, sliceSeries } from './series.js';

export const DIRECTIONS: Direction[] = ['IMPORT', 'EXPORT'];
const DEFAULT_REFRESH_CRON = '*/15 * * * *';
/** Confidence of a price from the fallback tariff: a stand-in for the source's own price, not a forecast of it. */
export const FALLBACK_CONFIDENCE = 0.5;
/** How far past "now" a slot may reach and still be recorded whole when it comes into force. */
const LONGEST_SLOT = 2 * HOUR;

type StoredSlot = [start: EpochMs, end: EpochMs, rate: number, confidence: number];

interface ImportedSeries {
  currency_code: string;
  updated_at: string;
  slots: StoredSlot[];
}

export interface TariffServiceOptions {
  site: SiteInfo;
  clock: Clock;
  bus: EventBus;
  log: Logger;
  state: StateStore;
  /** Where the price history lives (`<storage.dir>`). */
  storageDir: string;
  /** `tariffs` of the site file: the energy sources, and the bill parts beside them (grid fees, levies, VAT, …). */
  tariffs: { import?: TariffConfig; export?: TariffConfig } & BillConfig;
  /** PV kWp of the site (forecasts.pv), for an export cap given in percent of kWp. */
  pvKwp?: number;
  /** The site file (relative paths in tariff configs are relative to it). */
  configSource: string;
  sources: TariffSourceDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  fetch?: typeof globalThis.fetch;
}

interface DirectionState {
  config?: TariffConfig;
  source?: TariffSource;
  /** `fallback` of the tariff: fills where the source has no prices while it is failing. */
  fallback?: TariffSource;
  imported: PriceSeries;
  importedAt?: EpochMs;
  lastError?: string;
  task?: ScheduledTask;
}

export interface SourceStatus {
  direction: Direction;
  type: string | null;
  description: string | null;
  last_updated: string | null;
  next_update: string | null;
  error: string | null;
  imported_until: string | null;
  /** The configured fallback and whether it stands in now. */
  fallback: { type: string; description: string; active: boolean } | null;
}

/**
 * Resolves the price series of each direction: a dynamic series imported through the API wins where
 * it has slots, the configured tariff source fills the rest, and for the past the recorded history
 * of what was in force answers first (so costs keep the price of their time after a tariff change).
 */
export class TariffService implements PriceLookup, ComposedTariff {
  readonly site: SiteInfo;
  private readonly clock: Clock;
  private readonly bus: EventBus;
  private readonly log: Logger;
  private readonly state: StateStore;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly dirs: Record<Direction, DirectionState>;
  readonly history: PriceHistory;
  private stopTick?: () => void;
  private refreshing = new Map<Direction, Promise<void>>();
  /** The bill parts beyond energy; undefined = none configured (the series are the energy rates alone, as before). */
  private readonly bill?: { terms: BillTerms; fees: (w: TimeWindow) => GridFeeSlot[]; config: BillConfig };

  constructor(private readonly options: TariffServiceOptions) {
    this.site = options.site;
    this.clock = options.clock;
    this.bus = options.bus;
    this.log = options.log;
    this.state = options.state;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    if (hasBill(options.tariffs)) {
      this.bill = { terms: billTerms(options.tariffs, options.site, options.pvKwp), fees: gridFeeSeries(options.tariffs.grid_fees ?? [], options.site), config: options.tariffs };
    }
    const { history, problems } = PriceHistory.open(join(options.storageDir, 'tariff-history'));
    this.history = history;
    for (const p of problems) this.log.error(p);
    const imported = this.state.data.tariffs.imported as Partial<Record<Direction, ImportedSeries>>;
    this.dirs = { IMPORT: { imported: [] }, EXPORT: { imported: [] } };
    for (const direction of DIRECTIONS) {
      const d = this.dirs[direction];
      const stored = imported[direction];
      if (stored) {
        d.imported = stored.slots.map(([start, end, rate, confidence]) => ({ start, end, rate, confidence }));
        d.importedAt = Date.parse(stored.updated_at);
      }
      const config = direction === 'IMPORT' ? options.tariffs.import : options.tariffs.export;
      if (config) this.createSource(direction, config);
    }
  }

  private createSource(direction: Direction, config: TariffConfig) {
    const def = this.options.sources.find((s) => s.type === config.type);
    const d = this.dirs[direction];
    d.config = config;
    if (!def) {
      d.lastError = `unknown tariff type "${config.type}" (known: ${this.options.sources.map((s) => s.type).join(', ')})`;
      this.log.error({ direction }, d.lastError);
      return;
    }
    const { fallback, ...resolved } = config;
    if (fallback && typeof fallback === 'object') this.createFallback(direction, fallback as TariffConfig);
    if (typeof resolved.path === 'string' && !isAbsolute(resolved.path)) resolved.path = resolve(dirname(resolve(this.options.configSource)), resolved.path);
    const log = this.log.child({ tariff: config.type, direction });
    const cache = this.state.kv(`tariff:${direction.toLowerCase()}`);
    try {
      d.source = def.create({ log, clock: this.clock, site: this.site, fetch: this.fetchFn, cache }, resolved);
    } catch (err) {
      d.lastError = `tariff ${config.type} could not be created: ${(err as Error).message}`;
      log.error({ err }, d.lastError);
    }
  }

  private createFallback(direction: Direction, config: TariffConfig) {
    const def = this.options.sources.find((s) => s.type === config.type);
    const log = this.log.child({ tariff: config.type, direction, fallback: true });
    try {
      if (!def) throw new Error(`unknown tariff type "${config.type}"`);
      this.dirs[direction].fallback = def.create({ log, clock: this.clock, site: this.site, fetch: this.fetchFn, cache: this.state.kv(`tariff:${direction.toLowerCase()}:fallback`) }, config);
    } catch (err) {
      log.error({ err }, `the fallback tariff of ${direction} could not be created: ${(err as Error).message}`);
    }
  }

  /**
   * Whether a direction's source is failing: it could not be created, its last refresh failed, or
   * (a dynamic source) its known prices do not reach the present. While it is, the fallback fills.
   */
  degraded(direction: Direction): boolean {
    const d = this.dirs[direction];
    if (!d.config) return false;
    if (!d.source || d.lastError) return true;
    if (!d.source.refresh) return false;
    const now = this.clock.now();
    const inForce = { start: now, end: now + 1 };
    return !sliceSeries(d.imported, inForce).length && !d.source.series(inForce).length;
  }

  /** Starts refreshing dynamic sources on their cron schedule and recording the history. */
  async start(): Promise<void> {
    for (const direction of DIRECTIONS) {
      const d = this.dirs[direction];
      if (!d.source?.refresh) continue;
      const expr = typeof d.config?.refresh_cron === 'string' ? d.config.refresh_cron : DEFAULT_REFRESH_CRON;
      try {
        d.task = cron.schedule(expr, () => this.refresh(direction).catch(() => undefined), { timezone: this.site.timezone, name: `tariff-${direction.toLowerCase()}`, noOverlap: true });
        d.task.unref?.();
      } catch (err) {
        this.log.error({ err, direction }, `tariff refresh schedule "${expr}" could not be set up; prices are fetched at start only`);
      }
      // the first fetch runs in the background so a slow provider does not hold up the hub's start
      void this.refresh(direction).catch(() => undefined);
    }
    this.recordHistory();
    this.stopTick = this.clock.every(60_000, () => this.recordHistory());
  }

  async stop(): Promise<void> {
    this.stopTick?.();
    for (const d of Object.values(this.dirs)) await d.task?.destroy();
    await Promise.allSettled([...this.refreshing.values()]);
    this.recordHistory();
    await this.history.flush().catch((err: unknown) => this.log.error({ err }, 'could not write the tariff history'));
  }

  /** Fetches new prices of a dynamic source now; the last known prices stay when it fails. */
  refresh(direction: Direction): Promise<void> {
    const running = this.refreshing.get(direction);
    if (running) return running;
    const d = this.dirs[direction];
    const p = (async () => {
      if (!d.source?.refresh) return;
      const before = d.source.lastUpdated?.();
      const wasDegraded = this.degraded(direction);
      const hadError = d.lastError !== undefined;
      try {
        await d.source.refresh();
        d.lastError = undefined;
      } catch (err) {
        d.lastError = (err as Error).message;
        const fallback = d.fallback ? `; the fallback tariff (${d.fallback.describe()}) fills where they end` : '';
        this.log.warn({ err, direction, retryable: isRetryable(err) }, `tariff ${d.config?.type} refresh failed; keeping the last known prices${fallback}`);
        // the source starts failing: the plan re-plans on the fallback (and says why)
        if (!wasDegraded || !hadError) this.announce(direction, d.fallback ? 'fallback' : (d.config?.type ?? 'tariff'));
        if (!wasDegraded && this.degraded(direction)) {
          const standIn = d.fallback ? `the fallback tariff (${d.fallback.describe()}) stands in` : 'the plan repeats the last known prices';
          this.bus.emit('notice', { kind: 'prices_missing', severity: 'warning', key: `prices:${direction}`, title: `${direction.toLowerCase()} prices not received`, message: `The ${d.config?.type} tariff could not be fetched (${d.lastError}) and the known prices no longer cover now; ${standIn} until it answers again.` });
        }
        throw err;
      }
      if (d.source.lastUpdated?.() !== before || hadError || (wasDegraded && !this.degraded(direction))) this.announce(direction, d.config?.type ?? 'tariff');
      if (wasDegraded && !this.degraded(direction)) this.bus.emit('notice', { kind: 'prices_missing', severity: 'info', key: `prices:${direction}`, resolved: true, title: `${direction.toLowerCase()} prices received again`, message: `The ${d.config?.type} tariff answers again.` });
    })().finally(() => this.refreshing.delete(direction));
    this.refreshing.set(direction, p);
    return p;
  }

  private announce(direction: Direction, source: string) {
    const now = this.clock.now();
    const start = DateTime.fromMillis(now, { zone: this.site.timezone }).startOf('day').toMillis();
    this.bus.emit('tariff.updated', { direction, source, series: this.compose(direction, { start, end: start + 3 * 24 * HOUR }, (dir, w) => this.live(dir, w)) });
  }

  /**
   * The prices in force now and later: imported slots first, the configured source in the gaps,
   * and while the source is failing the fallback tariff (at lower confidence) in what is left.
   */
  live(direction: Direction, window: TimeWindow, options: { fallback?: boolean } = {}): PriceSeries {
    const d = this.dirs[direction];
    const imported = sliceSeries(d.imported, window);
    let configured: PriceSeries = [];
    try {
      configured = d.source?.series(window) ?? [];
    } catch (err) {
      this.log.error({ err, direction }, 'tariff source failed to give its series');
    }
    const known = overlaySeries(imported, configured);
    if (options.fallback === false || !d.fallback || !this.degraded(direction)) return known;
    const gaps = gapsIn(known, window);
    if (!gaps.length) return known;
    const standIn = gaps.flatMap((g) => d.fallback!.series(g)).map((s) => ({ ...s, confidence: Math.min(s.confidence, FALLBACK_CONFIDENCE) }));
    return overlaySeries(known, standIn);
  }

  /** Records the slots that have come into force since the last time (whole slots, as they begin). */
  recordHistory(): void {
    const now = this.clock.now();
    let changed = false;
    for (const direction of DIRECTIONS) {
      const frozen = this.history.frozenUntil(direction);
      if (frozen !== undefined && frozen > now) continue;
      const from = frozen ?? DateTime.fromMillis(now, { zone: this.site.timezone }).startOf('day').toMillis();
      // the fallback is not history: real prices published late still price that time
      const slots = this.live(direction, { start: from, end: now + LONGEST_SLOT }, { fallback: false }).filter((s) => s.start <= now);
      const until = Math.max(now + 1, slots.length ? slots[slots.length - 1].end : 0);
      this.history.record(direction, compactSeries(slots), from, until);
      this.history.freezeUntil(direction, until);
      changed = true;
    }
    if (changed) void this.history.flush().catch((err: unknown) => this.log.error({ err }, 'could not write the tariff history'));
  }

  /**
   * The per-kWh series a consumer pays or earns: the energy rates with the bill's per-kWh parts
   * composed in (IMPORT: energy + grid fee of the window + levies, then VAT; EXPORT: after the export
   * rules). Without bill parts configured, the energy series as it is.
   */
  series(direction: Direction, window: TimeWindow): PriceSeries {
    return this.compose(direction, window, (dir, w) => this.energySeries(dir, w));
  }

  private compose(direction: Direction, window: TimeWindow, energy: (direction: Direction, window: TimeWindow) => PriceSeries): PriceSeries {
    const bill = this.bill;
    if (!bill) return energy(direction, window);
    if (direction === 'IMPORT') return composedImport(window, energy('IMPORT', window), bill.fees(window), this.levySpans(window), bill.terms);
    const rules = bill.terms.exportRules;
    const reference = rules.noPayAtNegativePrice && rules.priceReference === 'import' ? energy('IMPORT', window) : [];
    return composedExport(window, reference, energy('EXPORT', window), bill.terms);
  }

  /** The levies in force over a window, cut to their validity. */
  private levySpans(window: TimeWindow): LevySpan[] {
    return levySpans(this.bill?.config.levies ?? [], window, this.site.timezone);
  }

  /** The bill's terms (VAT, standing charges, capacity charge, export rules); all empty without bill parts. */
  terms(): BillTerms {
    return this.bill?.terms ?? billTerms({}, this.site, this.options.pvKwp);
  }

  /** Whether bill parts beyond energy are configured. */
  hasBill(): boolean {
    return this.bill !== undefined;
  }

  /** Every per-kWh part of the bill over a window (energy from the history where recorded, as `series`). */
  components(window: TimeWindow): SlotComponents[] {
    if (window.end <= window.start) return [];
    const terms = this.terms();
    return composeComponents(window, this.energySeries('IMPORT', window), this.energySeries('EXPORT', window), this.bill?.fees(window) ?? [], this.levySpans(window), terms);
  }

  /** Whether a dated bill item is in force at `t` (site-local dates). */
  inForce(item: { validFrom?: string; validTo?: string }, t: EpochMs): boolean {
    return inForce(item, t, this.site.timezone);
  }

  /**
   * The energy series in force for a direction and window: recorded history for the past (the live
   * prices fill what was never recorded), live prices from the edge of the history on.
   */
  energySeries(direction: Direction, window: TimeWindow): PriceSeries {
    if (window.end <= window.start) return [];
    this.recordHistory();
    const edge = this.history.frozenUntil(direction) ?? -Infinity;
    const parts: PriceSeries[] = [];
    if (window.start < edge) {
      const past = { start: window.start, end: Math.min(window.end, edge) };
      const recorded = this.history.slice(direction, past);
      const gaps = gapsIn(recorded, past);
      parts.push(gaps.length ? overlaySeries(recorded, gaps.flatMap((g) => this.live(direction, g))) : recorded);
    }
    if (window.end > edge) parts.push(this.live(direction, { start: Math.max(window.start, edge), end: window.end }));
    if (parts.length === 1) return parts[0];
    // one slot cut in two by the history's edge (which sits at a record time, not a slot boundary) is one slot again
    const [past, future] = parts;
    const last = past[past.length - 1];
    const first = future[0];
    if (last && first && last.end === first.start && last.rate === first.rate && last.confidence === first.confidence) return [...past.slice(0, -1), { ...last, end: first.end }, ...future.slice(1)];
    return parts.flat();
  }

  /**
   * Stores a dynamic price series sent through the API: it replaces what was imported before in its
   * time range, and slots already in force are written into the history as well.
   */
  async importSeries(direction: Direction, series: PriceSeries): Promise<{ from: EpochMs; to: EpochMs; count: number }> {
    if (!series.length) return { from: 0, to: 0, count: 0 };
    const from = series[0].start;
    const to = series[series.length - 1].end;
    const d = this.dirs[direction];
    const now = this.clock.now();
    this.recordHistory();
    // imported slots that ended over a week ago live on in the history; keeping them here only grows the state file
    const keepFrom = now - 7 * 24 * HOUR;
    d.imported = replaceRange(d.imported, series, from, to).filter((s) => s.end > keepFrom);
    d.importedAt = now;
    const edge = this.history.frozenUntil(direction);
    if (edge !== undefined && from < edge) {
      // run by run, so a gap between the sent slots keeps what was recorded there
      const past = sliceSeries(series, { start: from, end: Math.min(to, edge) });
      for (let a = 0; a < past.length; ) {
        let b = a + 1;
        while (b < past.length && past[b].start === past[b - 1].end) b++;
        this.history.record(direction, past.slice(a, b), past[a].start, past[b - 1].end);
        a = b;
      }
    }
    const stored: ImportedSeries = {
      currency_code: this.site.currency,
      updated_at: new Date(now).toISOString(),
      slots: d.imported.map((s): StoredSlot => [s.start, s.end, s.rate, s.confidence]),
    };
    await this.state.update((s) => {
      s.tariffs.imported[direction] = stored;
    });
    await this.history.flush();
    this.announce(direction, 'import');
    return { from, to, count: series.length };
  }

  /** The slots of the series imported with PUT /tariffs/rates that overlap the window (kept 7 days back). */
  imported(direction: Direction, window: TimeWindow): PriceSeries {
    return sliceSeries(this.dirs[direction].imported, window);
  }

  status(direction: Direction): SourceStatus {
    const d = this.dirs[direction];
    const updated = Math.max(d.source?.lastUpdated?.() ?? -Infinity, d.importedAt ?? -Infinity);
    const next = d.task?.getNextRun();
    const lastImported = d.imported[d.imported.length - 1];
    return {
      direction,
      type: d.config?.type ?? null,
      description: d.source?.describe() ?? null,
      last_updated: Number.isFinite(updated) ? new Date(updated).toISOString() : null,
      next_update: next ? next.toISOString() : null,
      error: d.lastError ?? null,
      imported_until: lastImported ? new Date(lastImported.end).toISOString() : null,
      fallback: d.fallback ? { type: String(d.config?.fallback && (d.config.fallback as TariffConfig).type), description: d.fallback.describe(), active: this.degraded(direction) } : null,
    };
  }

  /** For the plan's notes: whether the source is failing and what stands in. */
  health(direction: Direction): PriceSourceHealth {
    const d = this.dirs[direction];
    return { type: d.config?.type ?? null, error: d.lastError ?? null, degraded: this.degraded(direction), fallback: d.fallback?.describe() ?? null };
  }
}
