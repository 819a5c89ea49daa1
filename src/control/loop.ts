import { performance } from 'node:perf_hooks';
import type { Device, EpochMs } from '../api/index.js';
import type { HubServices } from '../core/services.js';
import { planSite, type LpSolver, type SitePlan, type SiteProblem } from '../optimiser/site/index.js';
import { applySlot, type SentState } from './apply.js';
import { EnergyHistory } from './history.js';
import { fromStored, type ExternalLimits, type StoredLimits } from './limits.js';
import { buildSiteProblem, chargeModeOf, PLUGGED, type EffectiveSettings } from './model.js';
import { sendNodeLimits } from './nodes.js';
import { SurplusDispatcher } from './surplus.js';
import { PlanThread, PlanTimeout } from './plan-thread.js';
import { shiftedPlan } from './shift.js';
import { planView, type PlanRecord } from './view.js';
import { MINUTE } from '../api/time.js';


/** Settings a device takes from its YAML entry; the API's overrides replace them key by key. */
function yamlSettings(config: Record<string, unknown>): EffectiveSettings {
  const out: EffectiveSettings = {};
  if (config.target && typeof config.target === 'object') out.target = config.target as EffectiveSettings['target'];
  if (config.schedule && typeof config.schedule === 'object') out.schedule = config.schedule as EffectiveSettings['schedule'];
  if (config.comfort && typeof config.comfort === 'object') out.comfort = config.comfort as EffectiveSettings['comfort'];
  if (typeof config.charge_mode === 'string') out.charge_mode = config.charge_mode as EffectiveSettings['charge_mode'];
  return out;
}

/**
 * The control loop: re-plans the site when prices, devices, targets or limits change and every
 * `planner.replan_minutes`, applies the plan's current slot at every slot boundary, and keeps
 * the latest plan in the state store.
 */
/** How long planning must keep failing before a person is told. */
const PLAN_FAILED_NOTICE_AFTER_MS = 10 * 60_000;

export class ControlLoop {
  readonly history = new EnergyHistory();
  latest?: PlanRecord;
  /** Why the last attempt to plan failed, when it did (shown by GET /plan). */
  lastError?: { at: EpochMs; message: string; since: EpochMs; told: boolean };
  /** The planner in-process (a solver handed in: tests, `homeflex plan`), else in its own thread. */
  private solver?: LpSolver;
  readonly thread?: PlanThread;
  private readonly sent: SentState = new Map();
  /** Devices that refuse their commands, with why (GET /metrics counts them). */
  readonly failing = new Map<string, string>();
  /** EV shortfalls already told (Wh), so a notice goes out once per matter. */
  private readonly toldShortfall = new Map<string, number>();
  private readonly unsubscribe: (() => void)[] = [];
  private abort?: AbortController;
  private running?: Promise<void>;
  private pending?: string;
  private lastPersist = 0;
  /** What of each device the plan depends on (available, a car plugged in), to re-plan when it changes. */
  private readonly planState = new Map<string, string>();
  private stopped = false;
  /** Counted for GET /metrics: plans adopted, of them stand-ins (a plan not solved in time), and devices starting to refuse commands. */
  readonly counts = { plans: 0, standIns: 0, commandFailures: 0 };
  /** The plan being made (replan), so the next waits for it. */
  private planning: Promise<unknown> = Promise.resolve();
  private readonly log;
  /** Follows measured PV surplus for chargers in charge_mode minpv or pv, between plans. */
  readonly surplus: SurplusDispatcher;

  constructor(private readonly hub: HubServices, private readonly options: { solver?: () => Promise<LpSolver>; apply?: boolean } = {}) {
    this.log = hub.log.child({ component: 'control' });
    if (!options.solver) this.thread = new PlanThread({ log: this.log });
    // a paused charger is the plan's (which holds it at 0), whatever its mode
    this.surplus = new SurplusDispatcher(hub, (id) => {
      const settings = this.settings(id);
      return settings.paused ? 'plan' : chargeModeOf(settings, this.hub.registry.entry(id)?.config ?? {});
    });
    // a heat pump the surplus let go takes the plan's state again at once
    this.surplus.onRelease = () => void this.applyCurrent().catch((err: unknown) => this.log.warn({ err }, 'could not apply the plan'));
  }

  get planner() {
    return this.hub.config.planner;
  }

  /** Effective settings of a device: YAML, then the run-time overrides. */
  settings(id: string): EffectiveSettings {
    const yaml = yamlSettings(this.hub.registry.entry(id)?.config ?? {});
    const over = (this.hub.state.data.overrides[id] ?? {}) as EffectiveSettings;
    return { ...yaml, ...over };
  }

  externalLimits(): Map<string, ExternalLimits> {
    const out = new Map<string, ExternalLimits>();
    for (const [id, s] of Object.entries(this.hub.state.data.limits ?? {})) out.set(id, fromStored(s as StoredLimits));
    return out;
  }

  async start(): Promise<void> {
    if (this.options.solver) this.solver = await this.options.solver();
    else this.thread!.warm();
    this.history.restore(this.hub.state.kv('control').get('history'));
    const { bus } = this.hub;
    this.unsubscribe.push(
      bus.on('meter.reading', ({ deviceId, reading }) => this.history.add(deviceId, reading)),
      bus.on('tariff.updated', ({ direction }) => this.request(`tariff.updated (${direction})`)),
      bus.on('device.connected', ({ deviceId }) => this.request(`device.connected (${deviceId})`)),
      // a charger's connection dropping is not the car leaving: the session (and charge now) goes on when it redials
      bus.on('device.disconnected', ({ deviceId }) => this.request(`device.disconnected (${deviceId})`)),
      bus.on('session.ended', ({ deviceId }) => {
        this.endSessionSettings(deviceId);
        this.request(`session.ended (${deviceId})`);
      }),
      bus.on('target.changed', ({ deviceId }) => this.request(`target.changed (${deviceId})`)),
      // adapters say "unavailable", "recovered" or "car plugged in" with device.state (a Modbus inverter, an OCPP charger's status)
      bus.on('device.state', ({ deviceId }) => {
        const d = this.hub.registry.get(deviceId);
        const wasPlugged = this.planState.get(deviceId)?.endsWith('|true');
        if (d && this.planStateChanged(d)) {
          // a car unplugged without a transaction (never authorised) leaves too
          if (wasPlugged && d.caps.charger?.status() === 'available') this.endSessionSettings(deviceId);
          this.request(`device.state (${deviceId})`);
        }
      }),
      bus.on('limits.changed', ({ nodeId }) => this.request(`limits.changed (${nodeId})`)),
    );
    for (const d of this.hub.registry.all()) this.planStateChanged(d);
    this.abort = new AbortController();
    await this.replan('start');
    void this.tickLoop(this.abort.signal);
    if (this.options.apply !== false) this.surplus.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort(new Error('control stopping'));
    this.surplus.stop();
    for (const u of this.unsubscribe.splice(0)) u();
    // a plan being solved is given up: the hub stops now, not when HiGHS is done
    await this.thread?.close();
    await this.running?.catch(() => undefined);
    await this.hub.state.kv('control').set('history', this.history.toJSON());
  }

  /** Asks for a re-plan; requests that arrive while one runs are folded into one more. */
  request(trigger: string): void {
    if (this.stopped) return;
    this.pending = this.pending ? `${this.pending}, ${trigger}` : trigger;
    if (!this.running) this.running = this.drain();
  }

  /** Resolves when no re-plan is queued or running (for tests and the CLI). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      // let a burst of events (several devices connecting at once) arrive before planning
      await new Promise((r) => setImmediate(r));
      while (this.pending && !this.stopped) {
        const trigger = this.pending;
        this.pending = undefined;
        await this.replan(trigger);
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Wakes at every slot boundary: re-plans when the plan is due, else applies the next slot. */
  private async tickLoop(signal: AbortSignal): Promise<void> {
    const step = Math.min(this.planner.slot_minutes, this.planner.replan_minutes) * MINUTE;
    while (!signal.aborted) {
      const now = this.hub.clock.now();
      const next = Math.floor(now / step) * step + step;
      try {
        await this.hub.clock.sleep(next - now, signal);
      } catch {
        return;
      }
      const at = this.hub.clock.now();
      // a clock that jumped back leaves the plan in the future (no slot holds now): plan again rather than wait for it
      const due = !this.latest || at - this.latest.createdAt >= this.planner.replan_minutes * MINUTE - 1000 || at < this.latest.plan.slots[0].start;
      if (due) this.request('schedule');
      else await this.applyCurrent();
      await this.settled();
    }
  }

  private planStateChanged(d: Device): boolean {
    const charger = d.caps.charger;
    const key = `${d.available}|${charger ? PLUGGED.has(charger.status()) : ''}`;
    const changed = this.planState.has(d.id) && this.planState.get(d.id) !== key;
    this.planState.set(d.id, key);
    return changed;
  }

  private devicesById(): Map<string, Device> {
    return new Map(this.hub.registry.all().map((d) => [d.id, d]));
  }

  /**
   * Makes a new plan, stores it, announces it and applies its first slot. Plans are made one at a
   * time, in the order asked, each from what is known when its turn comes: a plan solved in the
   * planning thread never replaces a newer one.
   */
  replan(trigger: string): Promise<PlanRecord | undefined> {
    const turn = this.planning.then(() => this.replanNow(trigger));
    this.planning = turn.catch(() => undefined);
    return turn;
  }

  private async replanNow(trigger: string): Promise<PlanRecord | undefined> {
    if (!this.solver && !this.thread) return undefined;
    const now = this.hub.clock.now();
    const devices = this.hub.registry.all().map((device) => ({ device, config: this.hub.registry.entry(device.id)?.config ?? {}, settings: this.settings(device.id) }));
    let record: PlanRecord;
    try {
      const { problem, notes } = buildSiteProblem({ now, config: this.hub.config, devices, prices: this.hub.tariffs, limits: this.externalLimits(), history: this.history, forecasts: this.hub.forecasts });
      const { plan, solveMs } = await this.solve(problem);
      const nextReplan = now + this.planner.replan_minutes * MINUTE;
      record = {
        id: `plan_${now.toString(36)}_${Math.floor(Math.random() * 36 ** 4).toString(36)}`,
        createdAt: now,
        validUntil: nextReplan + this.planner.slot_minutes * MINUTE,
        trigger,
        solveMs,
        problem,
        plan,
        notes,
        settings: Object.fromEntries(devices.map((d) => [d.device.id, d.settings])),
        external: { ...(this.hub.state.data.limits as Record<string, StoredLimits>) },
      };
    } catch (err) {
      const stale = err instanceof PlanTimeout ? await this.standIn(err, trigger, now) : undefined;
      if (stale || this.stopped) return stale;
      const message = (err as Error).message;
      if (this.lastError?.message !== message) this.log.error({ err, trigger }, `could not plan: ${message}`);
      const since = this.lastError?.since ?? now;
      // a person is told when planning stays impossible for a while (at start the first prices may still be on their way)
      const told = this.lastError?.told || now - since >= PLAN_FAILED_NOTICE_AFTER_MS;
      if (told && !this.lastError?.told) this.hub.bus.emit('notice', { kind: 'plan_failed', severity: 'error', key: 'plan', title: 'No plan could be made', message: `homeflex has not been able to plan since ${new Date(since).toISOString()}: ${message}. Devices fall back to their own safe modes when the last plan's commands expire.` });
      this.lastError = { at: now, message, since, told };
      return undefined;
    }
    if (this.lastError) {
      this.log.info('planning works again');
      if (this.lastError.told) this.hub.bus.emit('notice', { kind: 'plan_failed', severity: 'info', key: 'plan', resolved: true, title: 'Planning works again', message: `homeflex made a plan again (${trigger}).` });
    }
    this.lastError = undefined;
    return this.adopt(record, trigger, now);
  }

  /** Plans in the planning thread, or in-process when a solver was handed in. */
  private async solve(problem: SiteProblem): Promise<{ plan: SitePlan; solveMs: number }> {
    if (this.solver) {
      const t0 = performance.now();
      const plan = planSite(problem, this.solver);
      return { plan, solveMs: performance.now() - t0 };
    }
    return this.thread!.plan(problem, (this.planner.time_limit_s ?? 60) * 1000);
  }

  /** The previous plan shifted to now, for a plan that was not solved within its time limit. */
  private async standIn(err: PlanTimeout, trigger: string, now: EpochMs): Promise<PlanRecord | undefined> {
    const previous = this.latest;
    const note = `${err.message} (${trigger}): the plan of ${previous ? new Date(previous.createdAt).toISOString() : '-'} is kept, shifted to now`;
    const shifted = previous && shiftedPlan(previous, now, note);
    if (!shifted) return undefined;
    this.log.warn({ trigger, previous: previous.id }, note);
    this.counts.standIns++;
    const record: PlanRecord = { ...shifted, id: `plan_${now.toString(36)}_${Math.floor(Math.random() * 36 ** 4).toString(36)}`, createdAt: now, validUntil: now + this.planner.replan_minutes * MINUTE + this.planner.slot_minutes * MINUTE, trigger, solveMs: err.limitMs };
    return this.adopt(record, trigger, now);
  }

  /** Keeps a new plan: stores it, announces it and applies its first slot. */
  private async adopt(record: PlanRecord, trigger: string, now: EpochMs): Promise<PlanRecord> {
    this.latest = record;
    this.counts.plans++;
    this.log.info({ trigger, status: record.plan.status, cost: record.plan.cost, solve_ms: Math.round(record.solveMs), warnings: record.plan.warnings.length }, 'new plan');
    for (const w of record.plan.warnings) this.log.warn({ plan: record.id }, w);
    this.noticeShortfalls(record);
    const view = planView(record, this.hub.site);
    const persistHistory = now - this.lastPersist >= 60 * MINUTE;
    if (persistHistory) this.lastPersist = now;
    await this.hub.state
      .update((s) => {
        s.plans.latest = view;
        s.plans.history.push({ id: record.id, created_at: view.created_at, cost: record.plan.cost });
        if (s.plans.history.length > 500) s.plans.history.splice(0, s.plans.history.length - 500);
        if (persistHistory) (s.kv.control ??= {}).history = this.history.toJSON();
      })
      .catch((err: unknown) => this.log.error({ err }, 'could not store the plan'));
    this.hub.bus.emit('plan.updated', { planId: record.id, createdAt: now });
    await this.applyCurrent();
    if (this.options.apply !== false) await sendNodeLimits(record, this.hub.registry.all(), this.log);
    return record;
  }

  /** Applies the slot of the latest plan that holds now. */
  async applyCurrent(): Promise<void> {
    const rec = this.latest;
    if (!rec || this.options.apply === false) return;
    const now = this.hub.clock.now();
    const k = rec.plan.slots.findIndex((s) => s.start <= now && now < s.end);
    if (k < 0) return;
    const slotLen = this.planner.slot_minutes * MINUTE;
    const paused = new Set(Object.entries(rec.settings).filter(([, s]) => s.paused).map(([id]) => id));
    const before = new Map(this.failing);
    // chargers that follow the surplus get their limits from the surplus dispatcher
    const devices = this.devicesById();
    for (const id of [...devices.keys()]) if (this.surplus.owns(id)) devices.delete(id);
    await applySlot({ plan: rec.plan, k, devices, validUntil: rec.plan.slots[k].end + slotLen, sent: this.sent, log: this.log, paused, failing: this.failing });
    // a device that starts refusing (or refuses differently) is told once; one that takes commands again too
    for (const [id, message] of this.failing) {
      if (before.get(id) !== message) this.counts.commandFailures++;
      if (before.get(id) !== message) this.hub.bus.emit('notice', { kind: 'command_refused', severity: 'warning', deviceId: id, key: `refused:${id}`, title: `${id} refuses its commands`, message: `${id} did not take the plan's command: ${message}. It keeps its own mode until it does.` });
    }
    for (const id of before.keys()) {
      if (!this.failing.has(id)) this.hub.bus.emit('notice', { kind: 'command_refused', severity: 'info', deviceId: id, key: `refused:${id}`, resolved: true, title: `${id} takes its commands again`, message: `${id} follows the plan again.` });
    }
  }

  /** An EV that the plan cannot fill by its leave time is told once per target (and again if it gets worse by 1 kWh). */
  private noticeShortfalls(record: PlanRecord) {
    for (const dp of record.plan.devices) {
      if (dp.kind !== 'ev') continue;
      const short = dp.shortfallWh ?? 0;
      const key = `ev-target:${dp.id}`;
      const told = this.toldShortfall.get(dp.id);
      if (short >= 100) {
        if (told !== undefined && short < told + 1000) continue;
        this.toldShortfall.set(dp.id, short);
        const kwh = (short / 1000).toFixed(1);
        this.hub.bus.emit('notice', { kind: 'ev_target_at_risk', severity: 'warning', deviceId: dp.id, ...(told === undefined ? { key } : {}), title: `${dp.id} will be ${kwh} kWh short`, message: `The plan cannot deliver ${kwh} kWh of ${dp.id}'s target by its leave time (power, limits or time are not enough). Charging now or a later leave time would help.` });
      } else if (told !== undefined) {
        this.toldShortfall.delete(dp.id);
        this.hub.bus.emit('notice', { kind: 'ev_target_at_risk', severity: 'info', deviceId: dp.id, key, resolved: true, title: `${dp.id} will reach its target`, message: `The plan now delivers ${dp.id}'s whole target by its leave time.` });
      }
    }
  }

  /**
   * The car left: what was set for this car only ends. `charge_now` is dropped (the rest of the target
   * stays); a target override whose leave_time is an instant (RFC 3339) was this car's departure and is
   * dropped whole, so the next car gets the YAML's target. An "HH:MM" target is a standing daily one and stays.
   */
  private endSessionSettings(deviceId: string) {
    const over = this.hub.state.data.overrides[deviceId] as EffectiveSettings | undefined;
    const target = over?.target;
    if (!target) return;
    const forThisCar = typeof target.leave_time === 'string' && !/^\d\d:\d\d$/.test(target.leave_time);
    if (!target.charge_now && !forThisCar) return;
    this.log.info({ device: deviceId }, `${deviceId}: the car left, ${forThisCar ? `its target for this car (leave_time ${target.leave_time}) ends` : 'charge now ends'}`);
    void this.hub.state
      .update((s) => {
        const o = s.overrides[deviceId] as EffectiveSettings | undefined;
        if (!o?.target) return;
        if (forThisCar) delete o.target;
        else delete o.target.charge_now;
        // "charge now" alone copied the YAML's target into the override: without it, it is the YAML again
        const yaml = yamlSettings(this.hub.registry.entry(deviceId)?.config ?? {}).target;
        if (o.target && (!Object.keys(o.target).length || JSON.stringify(o.target) === JSON.stringify(yaml))) delete o.target;
        if (!Object.keys(o).length) delete s.overrides[deviceId];
      })
      .catch((err: unknown) => this.log.error({ err }, `could not end the session settings of ${deviceId}`));
  }
}
