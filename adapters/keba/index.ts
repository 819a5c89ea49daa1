import {
  defineAdapter,
  evChargeModeProperties,
  evDefaultModeSchema,
  evTargetSchema,
  permanentError,
  retryableError,
  setAvailability,
  type AdapterContext,
  type ChargerLimit,
  type ChargerStatus,
  type ChargingSession,
  type Device,
  type DeviceConfigBase,
  type MeterReading,
} from '../../src/api/index.js';
import { CarSoc, carSocIssues, carSocProperties, type CarSocConfig } from '../homeassistant/car-soc.js';
import { openKebaLink, type KebaLink } from './udp.js';

/**
 * KEBA KeContact P30 (c-series, x-series; also the BMW and other OEM variants of it) through its UDP
 * interface on port 7090: `report 1/2/3` (JSON), `ena`, `curr`, `x2src`/`x2` (phase switching through
 * a contactor on the X2 output), `setenergy`, `display`. Field names and units as in KEBA's
 * "KeContact P30 UDP Programmers Guide".
 */
export interface KebaConfig extends DeviceConfigBase, CarSocConfig {
  host: string;
  port: number;
  local_port: number;
  bind_address: string;
  poll_s: number;
  timeout_ms: number;
  command_gap_ms: number;
  missed_polls: number;
  phases: 1 | 3;
  phase_switching: boolean;
  min_current_a: number;
  max_current_a: number;
  voltage: number;
  display: boolean;
  ev_capacity_wh?: number;
  target?: Record<string, unknown>;
  default_mode: string;
  charge_mode: string;
  surplus_priority: number;
}

/** Fields of report 2 and report 3 as the station sends them. */
export type KebaFields = Partial<Record<string, unknown>>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** "Plug" 7: cable in the station and the car, locked (5: in both, not yet locked). */
export const kebaPlugged = (f: KebaFields) => (num(f.Plug) ?? 0) >= 5;

/** report 2 "State" (0 starting, 1 not ready, 2 ready, 3 charging, 4 error, 5 interrupted) as a charger status. */
export function kebaStatus(f: KebaFields): ChargerStatus {
  const plugged = kebaPlugged(f);
  switch (f.State) {
    case 0:
      return 'unknown';
    case 1:
      return plugged ? 'suspended_evse' : 'available';
    case 2:
      // ready and waiting for the car: held back by the station when it offers no current
      return f['Enable user'] === 0 || f['Max curr'] === 0 ? 'suspended_evse' : 'suspended_ev';
    case 3:
      return 'charging';
    case 4:
      return 'faulted';
    case 5:
      return 'suspended_evse';
    default:
      return 'unknown';
  }
}

/** The phases in use: set by UDP (x2src 4) → X2 0 one, 1 three; otherwise the installed phases. */
export function kebaActivePhases(f: KebaFields, installed: 1 | 3): 1 | 3 {
  if (f['X2 phaseSwitch source'] === 4) return f['X2 phaseSwitch'] === 0 ? 1 : installed;
  return installed;
}

/** The UDP commands for a limit, only those whose field differs from report 2, in the order to send them. */
export function kebaCommands(limit: ChargerLimit, f: KebaFields, config: Pick<KebaConfig, 'phases' | 'phase_switching' | 'min_current_a' | 'max_current_a' | 'voltage'>): string[] {
  const switching = config.phase_switching && config.phases === 3;
  const phases = switching && limit.phases ? limit.phases : config.phases;
  const amps = Math.min(config.max_current_a, Math.floor(limit.watts / (config.voltage * phases) + 1e-9));
  const out: string[] = [];
  if (amps < config.min_current_a) {
    if (f['Enable user'] !== 0) out.push('ena 0');
    return out;
  }
  if (switching) {
    const x2 = phases === 1 ? 0 : 1;
    if (f['X2 phaseSwitch'] !== x2) out.push(`x2 ${x2}`);
    if (f['X2 phaseSwitch source'] !== 4) out.push('x2src 4');
  }
  const ma = amps * 1000;
  if (f['Curr user'] !== ma) out.push(`curr ${ma}`);
  // a setenergy limit the last session reached keeps the station disabled: clear it (guide 3.2.7)
  const setenergy = num(f.Setenergy) ?? 0;
  if (setenergy > 0 && (num(f['E pres']) ?? 0) >= setenergy) out.push('setenergy 0');
  if (f['Enable user'] !== 1) out.push('ena 1');
  return out;
}

/** What report 2 must show after a command (the guide confirms commands with TCH-OK only; the report says whether they took). */
function expected(command: string): [string, number] | undefined {
  const [name, arg] = command.split(' ');
  const v = Number(arg);
  switch (name) {
    case 'ena':
      return ['Enable user', v];
    case 'curr':
      return ['Curr user', v];
    case 'x2':
      return ['X2 phaseSwitch', v];
    case 'x2src':
      return ['X2 phaseSwitch source', v];
    case 'setenergy':
      return ['Setenergy', v];
    default:
      return undefined;
  }
}

export const keba = defineAdapter<KebaConfig>({
  id: 'keba',
  description: 'KEBA KeContact P30 (c-/x-series) over its UDP interface (port 7090): start/stop, current limit, 1-/3-phase switching through X2, meter',
  configSchema: {
    required: ['host'],
    properties: {
      host: { type: 'string', minLength: 1, description: 'The station’s address, e.g. 192.168.1.60 (enable UDP with DIP switch 1.3 on a c-series, in the web interface on an x-series)' },
      port: { type: 'integer', minimum: 1, maximum: 65535, default: 7090, description: 'The station’s UDP port' },
      local_port: { type: 'integer', minimum: 0, maximum: 65535, default: 7090, description: 'UDP port the hub listens on for answers: a P30 answers to port 7090 of the sender, so keep 7090 (shared by all keba devices); 0 = any free port (only for stations that answer to the sending port)' },
      bind_address: { type: 'string', default: '0.0.0.0', description: 'Address the hub’s UDP socket binds to; datagrams from any other sender than a configured station are ignored' },
      poll_s: { type: 'number', minimum: 1, maximum: 300, default: 5, description: 'How often report 2 and report 3 are read (s)' },
      timeout_ms: { type: 'integer', minimum: 200, maximum: 10000, default: 1500, description: 'How long to wait for one answer (ms)' },
      command_gap_ms: { type: 'integer', minimum: 100, maximum: 5000, default: 100, description: 'Least time between two datagrams to the station (KEBA: t_UDP_pause, 100 ms)' },
      missed_polls: { type: 'integer', minimum: 1, maximum: 100, default: 3, description: 'Polls in a row without an answer before the station counts as unavailable' },
      phases: { enum: [1, 3], default: 3, description: 'Phases wired to the station' },
      phase_switching: { type: 'boolean', default: false, description: 'Switch between 1 and 3 phases by UDP (x2src 4, x2): needs a contactor wired to the X2 output and firmware with x2 (P30 3.10.x and later)' },
      min_current_a: { type: 'number', minimum: 6, maximum: 32, default: 6 },
      max_current_a: { type: 'number', minimum: 6, maximum: 32, default: 16, description: 'At most "Curr HW" (DIP switches, cable)' },
      voltage: { type: 'number', minimum: 100, maximum: 260, default: 230 },
      display: { type: 'boolean', default: false, description: 'Show what homeflex set on the station’s display (x-series and c-series with display)' },
      ev_capacity_wh: { type: 'number', minimum: 1000, description: 'Car battery (Wh), for SoC targets and the most a fill adds' },
      target: evTargetSchema,
      default_mode: evDefaultModeSchema,
      ...evChargeModeProperties,
      ...carSocProperties,
    },
  },
  check(config) {
    const issues = [];
    if (config.min_current_a > config.max_current_a) issues.push({ path: ['min_current_a'], message: `is above max_current_a (${config.max_current_a})` });
    if (config.phase_switching && config.phases !== 3) issues.push({ path: ['phase_switching'], message: 'needs phases: 3' });
    issues.push(...carSocIssues(config));
    return issues;
  },
  create(ctx, config) {
    return new KebaStation(ctx, config).instance();
  },
});

interface Pending {
  /** Takes an answer; true when it was the one awaited. */
  take: (text: string, json?: Record<string, unknown>) => boolean;
}

/** One KEBA station: its last reports, the session the hub keeps for it, and a queue of UDP requests ≥ command_gap_ms apart. */
class KebaStation {
  private fields: KebaFields = {};
  private session?: ChargingSession;
  private sessionSeq: number;
  private readonly device: Device;
  private readonly readings = new Map<string, MeterReading>();
  private link?: KebaLink;
  private stopPoll?: () => void;
  private pending?: Pending;
  private queue: Promise<unknown> = Promise.resolve();
  private nextSendAt = 0;
  private missed = 0;
  private unansweredTold = false;
  private polling = false;
  private stopped = false;
  private readonly car?: CarSoc;

  constructor(private readonly ctx: AdapterContext, private readonly config: KebaConfig) {
    this.sessionSeq = ctx.store.get<number>('session_seq') ?? 0;
    this.car = CarSoc.of(ctx, config);
    const switching = config.phase_switching && config.phases === 3;
    const car = this.car;
    this.device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter: 'keba',
      circuit: config.circuit,
      available: false,
      error: 'waiting for the first report',
      caps: {
        meter: { channels: ['device'], last: (channel = 'device') => this.readings.get(channel) },
        charger: {
          status: () => (this.device.available ? kebaStatus(this.fields) : 'unavailable'),
          session: () => this.session,
          evSocPct: () => (kebaPlugged(this.fields) ? car?.socPct() : undefined),
          setLimit: (limit) => this.enqueue(() => this.setLimit(limit)),
          phases: config.phases,
          voltage: config.voltage,
          minCurrentA: config.min_current_a,
          maxCurrentA: config.max_current_a,
          get evCapacityWh() {
            return car?.capacityWh() ?? config.ev_capacity_wh;
          },
          ...(switching ? { phaseSwitching: { activePhases: () => (this.fields['X2 phaseSwitch source'] === undefined ? undefined : kebaActivePhases(this.fields, config.phases)) } } : {}),
        },
      },
    };
  }

  instance() {
    return {
      devices: [this.device],
      start: async () => {
        this.link = await openKebaLink(this.config.host, this.config.port, this.config.local_port, this.config.bind_address, (text) => this.onDatagram(text));
        this.car?.start();
        await this.enqueue(async () => {
          try {
            const r1 = await this.request('report 1', '1');
            this.ctx.log.info(`${this.config.id}: KEBA ${String(r1.Product ?? '?').trim()} serial ${String(r1.Serial ?? '?')}, firmware ${String(r1.Firmware ?? '?')}`);
          } catch {
            // the poll below says whether it answers
          }
        });
        await this.poll();
        this.stopPoll = this.ctx.clock.every(this.config.poll_s * 1000, () => void this.poll());
      },
      stop: async () => {
        this.stopped = true;
        this.stopPoll?.();
        await this.queue.catch(() => undefined);
        await this.car?.stop();
        await this.link?.close();
        this.link = undefined;
      },
    };
  }

  // ---------------------------------------------------------------- the UDP exchange

  /** Runs `job` after every earlier request (one request on the wire at a time). */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private onDatagram(text: string) {
    let json: Record<string, unknown> | undefined;
    const trimmed = text.trim();
    if (trimmed.startsWith('{')) {
      try {
        const parsed: unknown = JSON.parse(trimmed);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
      } catch {
        this.ctx.log.debug({ text: trimmed.slice(0, 80) }, `${this.config.id}: ignored a datagram that is not JSON`);
        return;
      }
    }
    if (this.pending?.take(trimmed, json)) return;
    // a status message (guide 3.4: State, Plug, Input, Enable sys, Max curr, E pres on change)
    if (json && json.ID === undefined) this.apply(json);
  }

  /** Sends one datagram at least command_gap_ms after the previous one and waits for its answer. */
  private async exchange<T>(text: string, match: (answer: string, json?: Record<string, unknown>) => T | undefined, quietAfterMs = 0): Promise<T> {
    if (!this.link || this.stopped) throw retryableError('keba_stopped', `keba ${this.config.id}: not started`);
    // timers may fire a millisecond early: wait until the clock has really passed the gap
    while (Date.now() < this.nextSendAt) await new Promise((r) => setTimeout(r, this.nextSendAt - Date.now() + 1));
    const answer = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        reject(retryableError('keba_no_answer', `keba ${this.config.id} (${this.config.host}:${this.config.port}): no answer to "${text}" within ${this.config.timeout_ms} ms`));
      }, this.config.timeout_ms);
      this.pending = {
        take: (a, json) => {
          const got = match(a, json);
          if (got === undefined) return false;
          // the gap counts from the answer too: the station has surely had the request by then
          this.nextSendAt = Math.max(this.nextSendAt, Date.now() + Math.max(this.config.command_gap_ms, quietAfterMs));
          clearTimeout(timer);
          this.pending = undefined;
          resolve(got);
          return true;
        },
      };
    });
    answer.catch(() => undefined);
    try {
      await this.link.send(text);
    } finally {
      this.nextSendAt = Date.now() + Math.max(this.config.command_gap_ms, quietAfterMs);
    }
    return answer;
  }

  private request(text: string, id: string) {
    return this.exchange(text, (_a, json) => (json && String(json.ID) === id ? json : undefined));
  }

  private async command(text: string) {
    // guide 3.3.1: after a disable no other command for 2 s
    const quiet = text === 'ena 0' ? 2000 : 0;
    const answer = await this.exchange(text, (a) => (/^TCH-(OK|ERR)/.test(a) ? a : undefined), quiet);
    if (answer.startsWith('TCH-ERR')) throw permanentError('keba_refused', `keba ${this.config.id} refused "${text}": ${answer}`);
  }

  // ---------------------------------------------------------------- reading

  private async poll() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      await this.enqueue(async () => {
        const r2 = await this.request('report 2', '2');
        const r3 = await this.request('report 3', '3');
        this.answered();
        this.apply(r2);
        this.apply(r3, true);
      });
    } catch (err) {
      this.unanswered((err as Error).message);
    } finally {
      this.polling = false;
    }
  }

  private answered() {
    this.missed = 0;
    if (this.unansweredTold) this.ctx.log.info(`${this.config.id}: KEBA answers again`);
    this.unansweredTold = false;
    setAvailability(this.ctx, this.device, undefined, `KEBA ${this.config.id}`);
  }

  /** An unanswered request is logged once (until the station answers again) and changes nothing; only `missed_polls` in a row make the station unavailable. */
  private unanswered(message: string) {
    this.missed++;
    if (!this.unansweredTold) {
      this.unansweredTold = true;
      this.ctx.log.warn(`${message}; the last reports stay in force, retrying every ${this.config.poll_s} s`);
    }
    // before its first report a station is unavailable anyway; after that only missed_polls in a row make it so
    if (this.missed >= this.config.missed_polls || this.fields.State === undefined) setAvailability(this.ctx, this.device, `no answer to ${this.missed} poll(s) in a row: ${message}`, `KEBA ${this.config.id}`);
  }

  /** Takes report fields: session start/end on Plug, a meter reading from report 3. */
  private apply(update: KebaFields, meter = false) {
    const before = kebaStatus(this.fields);
    const wasPlugged = kebaPlugged(this.fields);
    this.fields = { ...this.fields, ...update };
    delete this.fields.ID;
    const now = this.ctx.clock.now();
    const plugged = kebaPlugged(this.fields);
    if (plugged && !this.session) {
      this.sessionSeq += 1;
      void this.ctx.store.set('session_seq', this.sessionSeq);
      this.session = { id: `${this.config.id}-${this.sessionSeq}`, start: now, energyWh: 0 };
    }
    const ePres = num(this.fields['E pres']);
    if (this.session && ePres !== undefined && plugged) this.session.energyWh = Math.max(this.session.energyWh, ePres / 10);
    if (meter) {
      const mw = num(this.fields.P);
      const total = num(this.fields['E total']);
      const reading: MeterReading = { time: now, channel: 'device', powerW: mw === undefined ? undefined : mw / 1000, importWh: total === undefined ? undefined : total / 10, sessionId: plugged ? this.session?.id : undefined };
      this.readings.set('device', reading);
      this.ctx.bus.emit('meter.reading', { deviceId: this.config.id, reading });
    }
    if (!plugged && wasPlugged && this.session) {
      const ended = this.session;
      ended.end = now;
      this.session = undefined;
      this.ctx.bus.emit('session.ended', { deviceId: this.config.id, sessionId: ended.id, time: now });
    }
    if (kebaStatus(this.fields) !== before) this.ctx.bus.emit('device.state', { deviceId: this.config.id, available: this.device.available });
  }

  // ---------------------------------------------------------------- commanding

  private async setLimit(limit: ChargerLimit) {
    if (!this.device.available) throw retryableError('keba_unavailable', `keba ${this.config.id} is not answering`);
    // the newest report 2, so only what differs is sent
    this.apply(await this.request('report 2', '2'));
    const commands = kebaCommands(limit, this.fields, this.config);
    if (!commands.length) return;
    for (const c of commands) await this.command(c);
    // TCH-OK confirms reception only: read report 2 back and check every field
    const r2 = await this.request('report 2', '2');
    this.apply(r2);
    const notTaken = commands.map((c) => [c, expected(c)] as const).filter(([, e]) => e && r2[e[0]] !== e[1]);
    if (notTaken.length) {
      throw permanentError('keba_not_taken', `keba ${this.config.id} answered TCH-OK but report 2 shows ${notTaken.map(([c, e]) => `"${e![0]}" = ${JSON.stringify(r2[e![0]])} after "${c}"`).join(', ')}`);
    }
    this.ctx.log.info({ commands }, `${this.config.id}: sent ${commands.join('; ')}`);
    if (this.config.display) {
      const on = this.fields['Enable user'] === 1;
      const text = on ? `homeflex ${Number(this.fields['Curr user']) / 1000}A ${kebaActivePhases(this.fields, this.config.phases)}ph` : 'homeflex paused';
      // the display is a courtesy: its failure does not fail the limit
      await this.command(`display 0 0 0 0 ${text.replace(/ /g, '$')}`).catch((err: Error) => this.ctx.log.debug({ err: err.message }, 'display text not shown'));
    }
  }
}
