import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in KEBA KeContact P30 (c-series / x-series) UDP interface, written from KEBA's published
 * "KeContact P30 UDP Programmers Guide" (V2.01, KEBA article 92651 and its successor that adds the
 * X2 phase-switch commands) and from nothing of homeflex's `keba` adapter, which it must not import.
 * Section numbers in the comments are the guide's. It answers on 127.0.0.1 at a port chosen at run
 * time and simulates the car behind the socket: it draws the current the station offers on the
 * phases in use.
 */

/** §2.1 "Required command delays": t_UDP_pause, the least time between two UDP commands. */
export const T_UDP_PAUSE_MS = 100;
/** §3.3.1 "ena" / §3.2.6 "currtime 0 1": after a disable no other command for 2 seconds. */
export const DISABLE_QUIET_MS = 2000;

export interface KebaStandinOptions {
  serial?: string;
  /** Time source for the energy counters (a test's manual clock); default Date.now. */
  now?: () => number;
  /** Phases wired to the station. */
  phases?: 1 | 3;
  voltage?: number;
  /** "Curr HW" (§3.2.3): the least of DIP switches, cable coding and temperature (mA). */
  currHwMa?: number;
  /** The car's own limit (W). */
  carMaxW?: number;
  /** Answer from a port of its own but send the answers to this port (a real P30 answers to 7090). */
  replyPort?: number;
}

export class KebaStandin {
  /** Every datagram received, in order: [time (wall clock ms), text, accepted]. */
  readonly received: { at: number; text: string; accepted: boolean; why?: string }[] = [];
  /** Accepted state-changing commands: [station time, command]. */
  readonly commands: [number, string][] = [];
  /** Unsolicited status messages sent (§3.4). */
  readonly statusSent: string[] = [];
  /** The last display text (§3.2.12). */
  displayText?: string;
  carMaxW: number;

  // report 2 fields (§3.2.3)
  plugState = 3; // §3.2.3 Plug: 3 = cable plugged into the station and locked (idle state of a fixed cable)
  enableUser = 1;
  currUserMa = 63000; // "Curr user … (Default: 63000 mA)"
  currHwMa: number;
  setenergy = 0; // 0.1 Wh
  x2src = 0; // phase-switch source, 0 = none
  x2 = 0; // X2 phaseSwitch: 0 = one phase, 1 = three phases
  failsafe = { tmo: 0, curr: 0 };
  // report 3 counters (§3.2.4), in 0.1 Wh
  ePres = 0;
  eTotal = 1_234_567;

  private socket?: Socket;
  private readonly now: () => number;
  private readonly phases: 1 | 3;
  private readonly voltage: number;
  private readonly serial: string;
  private lastTick: number;
  private lastDatagramAt = -Infinity;
  private quietUntil = -Infinity;
  private lastSender?: RemoteInfo;
  private dropNext = 0;
  private readonly replyPort?: number;
  private bootAt = Date.now();
  port?: number;

  constructor(options: KebaStandinOptions = {}) {
    this.now = options.now ?? Date.now;
    this.phases = options.phases ?? 3;
    this.voltage = options.voltage ?? 230;
    this.currHwMa = options.currHwMa ?? 16000;
    this.carMaxW = options.carMaxW ?? 11_000;
    this.serial = options.serial ?? '22054282';
    this.replyPort = options.replyPort;
    this.lastTick = this.now();
  }

  /** Does not answer the next `n` datagrams (a lost packet, a station busy rebooting). */
  drop(n: number) {
    this.dropNext += n;
  }

  /** Plugs a car in (Plug 7: station and vehicle, locked) or out (Plug 3); unplugging resets setenergy and currtime (§3.2.6, §3.2.7). */
  plug(plugged: boolean) {
    this.tick();
    const before = this.state();
    this.plugState = plugged ? 7 : 3;
    if (plugged) this.ePres = 0; // §3.2.4 "E pres … is reset at the beginning of a new charging session"
    else this.setenergy = 0;
    this.tick();
    this.sendStatus({ Plug: this.plugState });
    if (this.state() !== before) this.sendStatus({ State: this.state() });
  }

  /** The phases the station charges on: with a phase-switch source set, X2 0 = one phase, 1 = three. */
  activePhases(): 1 | 3 {
    return this.x2src !== 0 && this.x2 === 0 ? 1 : this.phases;
  }

  /** "Max curr" (§3.2.3): the current offered to the car (mA), 0 when it may not charge. */
  maxCurrMa(): number {
    const enabled = this.plugState === 7 && this.enableUser === 1 && (this.setenergy === 0 || this.ePres < this.setenergy);
    return enabled ? Math.min(this.currUserMa, this.currHwMa) : 0;
  }

  /** The power the car draws now (W). */
  powerW(): number {
    const ma = this.maxCurrMa();
    if (ma < 6000) return 0;
    return Math.min(this.carMaxW, (ma / 1000) * this.voltage * this.activePhases());
  }

  /** §3.2.3 State: 1 not ready, 2 ready and waiting for the vehicle, 3 charging. */
  state(): number {
    if (this.plugState !== 7 || this.maxCurrMa() === 0) return 1;
    return this.powerW() > 0 ? 3 : 2;
  }

  /** Integrates energy up to now. */
  tick() {
    const t = this.now();
    const dtH = Math.max(0, t - this.lastTick) / 3_600_000;
    this.lastTick = t;
    const wh = this.powerW() * dtH;
    this.ePres += wh * 10;
    this.eTotal += wh * 10;
  }

  /** When the phases in use changed (station time) and to what, through x2 / x2src commands. */
  readonly phaseChanges: [number, 1 | 3][] = [];

  report(id: 1 | 2 | 3): Record<string, unknown> {
    this.tick();
    const sec = Math.floor((Date.now() - this.bootAt) / 1000);
    if (id === 1) {
      // §3.2.2 report 1
      return { ID: '1', Product: 'KC-P30-EC240422-E00', Serial: this.serial, Firmware: 'P30 v 3.10.16 (200207-082607)', 'COM-module': 0, Backend: 0, timeQ: 0, Sec: sec };
    }
    if (id === 2) {
      // §3.2.3 report 2 (the two X2 fields follow the later guide revision)
      return {
        ID: '2', State: this.state(), Error1: 0, Error2: 0, Plug: this.plugState, AuthON: 0, Authreq: 0,
        'Enable sys': this.maxCurrMa() > 0 ? 1 : 0, 'Enable user': this.enableUser,
        'Max curr': this.maxCurrMa(), 'Max curr %': this.maxCurrMa() ? Math.round(this.maxCurrMa() / 60) : 1000,
        'Curr HW': this.currHwMa, 'Curr user': this.currUserMa, 'Curr FS': this.failsafe.curr, 'Tmo FS': this.failsafe.tmo,
        'Curr timer': 0, 'Tmo CT': 0, Setenergy: this.setenergy, Output: 0, Input: 0,
        'X2 phaseSwitch source': this.x2src, 'X2 phaseSwitch': this.x2, Serial: this.serial, Sec: sec,
      };
    }
    // §3.2.4 report 3: U in V, I in mA, P in mW, PF in 0.1 %, energies in 0.1 Wh
    const p = this.powerW();
    const n = this.activePhases();
    const ma = p > 0 ? Math.round((p / this.voltage / n) * 1000) : 0;
    return {
      ID: '3', U1: this.voltage, U2: this.phases === 3 ? this.voltage : 0, U3: this.phases === 3 ? this.voltage : 0,
      I1: ma, I2: n === 3 ? ma : 0, I3: n === 3 ? ma : 0, P: Math.round(p * 1000), PF: p > 0 ? 999 : 0,
      'E pres': Math.round(this.ePres), 'E total': Math.round(this.eTotal), Serial: this.serial, Sec: sec,
    };
  }

  /** Handles one command text; returns the answer or undefined (no answer). */
  private handle(text: string): string | undefined {
    const [cmd, ...args] = text.trim().split(/\s+/);
    const ok = 'TCH-OK :done';
    const int = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);
    const change = () => {
      this.tick();
      this.commands.push([this.now(), text.trim()]);
    };
    switch (cmd) {
      case 'i':
        // §3.2.1: the answer to "i" is the firmware string
        return `"Firmware":"P30 v 3.10.16 (200207-082607)"`;
      case 'report': {
        const id = int(args[0]);
        if (id === 1 || id === 2 || id === 3) return JSON.stringify(this.report(id), null, 0);
        return undefined;
      }
      case 'ena': {
        // §3.3.1: "Possible values: 0, 1; Other values may not be used."
        const m = int(args[0]);
        if (m !== 0 && m !== 1) return 'TCH-ERR :unknown parameter';
        change();
        this.enableUser = m;
        if (m === 0) this.quietUntil = Date.now() + DISABLE_QUIET_MS;
        return ok;
      }
      case 'curr': {
        // §3.3.2 curr [c]: "Current value in mA, Possible values: 6000 - 63000"
        const c = int(args[0]);
        if (c === undefined || c < 6000 || c > 63000) return 'TCH-ERR :value out of range';
        change();
        this.currUserMa = c;
        return ok;
      }
      case 'currtime': {
        // §3.2.6 currtime [c] [t]: 0 or 6000 - 63000 mA after t s; "currtime 0 1" stops like ena 0 (applied at once here)
        const c = int(args[0]);
        const t = int(args[1]);
        if (c === undefined || t === undefined || (c !== 0 && (c < 6000 || c > 63000)) || t > 860400) return 'TCH-ERR :value out of range';
        change();
        if (c === 0 && t > 0) {
          this.enableUser = 0;
          this.quietUntil = Date.now() + DISABLE_QUIET_MS;
        } else if (c > 0) {
          this.currUserMa = c;
          this.enableUser = 1;
        }
        return ok;
      }
      case 'setenergy': {
        // §3.2.7 setenergy [e]: 0.1 Wh, 0 = no limit, up to 999999999
        const e = int(args[0]);
        if (e === undefined || e > 999_999_999) return 'TCH-ERR :value out of range';
        change();
        this.setenergy = e;
        return ok;
      }
      case 'display': {
        // §3.2.12 display [a] [min] [max] [tk] [text]: at most 23 ASCII characters, $ = blank
        const textArg = args.slice(4).join(' ');
        if (args.length < 5) return 'TCH-ERR :missing parameter';
        this.displayText = textArg.slice(0, 23).replace(/\$/g, ' ');
        return ok;
      }
      case 'x2src': {
        // later revision: x2src [s]: 0 none, 1 OCPP, 2 REST API, 3 Modbus, 4 UDP
        const s = int(args[0]);
        if (s === undefined || s > 4) return 'TCH-ERR :value out of range';
        change();
        const before = this.activePhases();
        this.x2src = s;
        if (this.activePhases() !== before) this.phaseChanges.push([this.now(), this.activePhases()]);
        return ok;
      }
      case 'x2': {
        // later revision: x2 [p]: 0 = one phase, 1 = three phases; takes effect while a phase-switch source is set (x2src)
        const p = int(args[0]);
        if (p !== 0 && p !== 1) return 'TCH-ERR :value out of range';
        change();
        const before = this.activePhases();
        this.x2 = p;
        if (this.activePhases() !== before) this.phaseChanges.push([this.now(), this.activePhases()]);
        return ok;
      }
      case 'failsafe': {
        // §3.3.3 failsafe [t] [c] [s]
        const t = int(args[0]);
        const c = int(args[1]);
        if (t === undefined || c === undefined) return 'TCH-ERR :missing parameter';
        this.failsafe = { tmo: t, curr: c };
        return ok;
      }
      default:
        // the station does not answer unknown commands
        return undefined;
    }
  }

  private send(text: string, to: RemoteInfo) {
    this.socket?.send(Buffer.from(text), this.replyPort ?? to.port, to.address);
  }

  /** §3.4: status messages go to the sender of the last command received. */
  private sendStatus(fields: Record<string, number>) {
    if (!this.lastSender) return;
    const text = JSON.stringify(fields);
    this.statusSent.push(text);
    this.send(text, this.lastSender);
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      const text = msg.toString('ascii');
      const at = Date.now();
      let why: string | undefined;
      if (this.dropNext > 0) {
        this.dropNext--;
        why = 'dropped';
      } else if (at - this.lastDatagramAt < T_UDP_PAUSE_MS) why = 'within t_UDP_pause of the previous command';
      else if (at < this.quietUntil) why = 'within 2 s of a disable';
      this.lastDatagramAt = at;
      this.received.push({ at, text, accepted: !why, why });
      if (why) return;
      this.lastSender = rinfo;
      const answer = this.handle(text);
      if (answer !== undefined) this.send(answer, rinfo);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => resolve());
    });
    this.port = (socket.address() as AddressInfo).port;
    return this.port;
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
