import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';

/**
 * A stand-in go-e Charger V3, written from go-e's published API v2 documents
 * (github.com/goecharger/go-eCharger-API-v2: http-en.md, mqtt-en.md, apikeys-en.md, apikeys-de.md)
 * and from nothing of homeflex's go-e adapter, which it must not import. It serves the HTTP API
 * (`/api/status`, `/api/set`) on a port of its own and, when given a broker, the MQTT API, and it
 * simulates the car behind the socket: it draws the current the charger allows on the phases in use.
 */

/** The documented type and range of each writable key the stand-in accepts (apikeys-en.md / apikeys-de.md "API Keys" table). */
const WRITABLE: Record<string, (v: unknown, keys: Record<string, unknown>) => string | undefined> = {
  // apikeys-en.md: "amp | R/W | uint8 | Config | requestedCurrent in Ampere"; 6 A up to the variant's maximum
  // ("var | variant: max Ampere value of unit (11: 11kW/16A, 22: 22kW/32A)")
  amp: (v, keys) => {
    const max = keys.var === 11 ? 16 : 32;
    return Number.isInteger(v) && (v as number) >= 6 && (v as number) <= max ? undefined : `value must be an integer between 6 and ${max}`;
  },
  // apikeys-en.md: "frc | R/W | uint8 | Config | forceState (Neutral=0, Off=1, On=2)"
  frc: (v) => (v === 0 || v === 1 || v === 2 ? undefined : 'value must be 0, 1 or 2'),
  // apikeys-de.md: "psm | R/W | uint8 | Config | phaseSwitchMode (Auto=0, Force_1=1, Force_3=2)"
  psm: (v) => (v === 0 || v === 1 || v === 2 ? undefined : 'value must be 0, 1 or 2'),
  // http-en.md "Setting values": fna="my charger" (a string must be JSON-quoted)
  fna: (v) => (typeof v === 'string' ? undefined : 'value must be string'),
};

export interface GoeStandinOptions {
  serial?: string;
  /** The variant (api key var): 11 (16 A) or 22 (32 A). */
  variant?: 11 | 22;
  /** Time source for the energy counters (a test's manual clock); default Date.now. */
  now?: () => number;
  /** Phases wired to the unit. */
  phases?: 1 | 3;
  voltage?: number;
  /** The car's own limit (W), e.g. a full battery draws 0. */
  carMaxW?: number;
}

export class GoeStandin {
  /** The unit's api keys (apikeys-en.md), as it reports them. */
  readonly keys: Record<string, unknown>;
  /** Every accepted write, in order: [time, key, value]. */
  readonly writes: [number, string, unknown][] = [];
  private server?: Server;
  private client?: MqttClient;
  private readonly now: () => number;
  private readonly phases: 1 | 3;
  private readonly voltage: number;
  private lastTick: number;
  private energyWh = 0;
  private sessionWh = 0;
  carMaxW: number;
  /** The HTTP API's base URL once listening. */
  url?: string;

  constructor(options: GoeStandinOptions = {}) {
    this.now = options.now ?? Date.now;
    this.phases = options.phases ?? 3;
    this.voltage = options.voltage ?? 230;
    this.carMaxW = options.carMaxW ?? 11_000;
    this.lastTick = this.now();
    this.keys = {
      sse: options.serial ?? '012345', // apikeys-en.md: sse, serial number
      fna: 'go-eCharger', // friendlyName
      var: options.variant ?? 22, // variant: 11 kW / 16 A or 22 kW / 32 A
      car: 1, // carState: Idle=1 (no car)
      alw: false, // Is the car allowed to charge at all now?
      acu: null, // How many ampere is the car allowed to charge now?
      amp: 16, // requestedCurrent (A)
      frc: 0, // forceState Neutral
      psm: 0, // phaseSwitchMode Auto (apikeys-de.md)
      pnp: this.phases, // numberOfPhases (apikeys-de.md)
      err: 0, // charge ctrl error None=0 (apikeys_firmware_sorted-en.md)
      eto: 0, // energy_total (Wh)
      wh: 0, // energy in Wh since car connected
      // nrg: U (L1, L2, L3, N), I (L1, L2, L3), P (L1, L2, L3, N, Total), pf (L1, L2, L3, N) — 16 entries
      nrg: [230, 230, 230, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      mcc: false, // MQTT connected
    };
  }

  /** Plugs a car in (carState WaitCar=3) or out (Idle=1; the session energy `wh` restarts). */
  plug(plugged: boolean) {
    this.tick();
    this.keys.car = plugged ? 3 : 1;
    if (!plugged) this.sessionWh = 0;
    this.tick();
  }

  /** The phases the unit charges on: psm Force_1 = one; Force_3 or Auto = all it has. */
  activePhases(): 1 | 3 {
    return this.keys.psm === 1 ? 1 : this.phases;
  }

  /** The power the car draws now (W). */
  powerW(): number {
    const plugged = this.keys.car !== 1;
    // forceState Off stops charging; Neutral leaves it to the unit's own logic, which here allows it
    const allowed = plugged && this.keys.frc !== 1;
    if (!allowed) return 0;
    return Math.min(this.carMaxW, (this.keys.amp as number) * this.voltage * this.activePhases());
  }

  /** Integrates energy up to now and refreshes the status keys. */
  tick() {
    const t = this.now();
    const dtH = Math.max(0, t - this.lastTick) / 3_600_000;
    this.lastTick = t;
    const p = this.powerW();
    this.energyWh += p * dtH;
    this.sessionWh += p * dtH;
    const plugged = this.keys.car !== 1;
    const allowed = plugged && this.keys.frc !== 1;
    this.keys.alw = allowed;
    this.keys.acu = allowed ? this.keys.amp : null;
    this.keys.car = !plugged ? 1 : p > 0 ? 2 : 3;
    this.keys.eto = Math.round(this.energyWh);
    this.keys.wh = Math.round(this.sessionWh * 10) / 10;
    const n = this.activePhases();
    const amps = p > 0 ? p / this.voltage / n : 0;
    const perPhase = p / n;
    const nrg = [230, 230, 230, 0, amps, n === 3 ? amps : 0, n === 3 ? amps : 0, perPhase, n === 3 ? perPhase : 0, n === 3 ? perPhase : 0, 0, p, p > 0 ? 0.99 : 0, 0, 0, 0];
    this.keys.nrg = nrg.map((x) => Math.round(x * 100) / 100);
  }

  /** Why a write would be refused, or undefined. */
  private refusal(key: string, value: unknown): string | undefined {
    const check = WRITABLE[key];
    if (!check) return `unknown or read-only key ${key}`;
    return check(value, this.keys);
  }

  /** Applies one write; returns undefined when accepted, else the error text. */
  private write(key: string, value: unknown): string | undefined {
    const bad = this.refusal(key, value);
    if (bad) return bad;
    this.tick();
    this.keys[key] = value;
    this.writes.push([this.now(), key, value]);
    this.tick();
    return undefined;
  }

  /** How many times the phases were switched by psm writes that changed the phases in use. */
  phaseSwitches(): number {
    let n = 0;
    let phases = this.phases === 3 ? 3 : 1;
    for (const [, key, value] of this.writes) {
      if (key !== 'psm') continue;
      const next = value === 1 ? 1 : this.phases;
      if (next !== phases) n++;
      phases = next;
    }
    return n;
  }

  // ---------------------------------------------------------------- HTTP API (http-en.md)
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'GET') return send(405, { error: 'only GET' });
      if (url.pathname === '/api/status') {
        this.tick();
        // "Getting selective values": since firmware 051.4 ?filter=rfb,alw,… (comma list); before, a JSON array
        const raw = url.searchParams.get('filter');
        let filter: string[] | undefined;
        if (raw !== null) filter = raw.startsWith('[') ? (JSON.parse(raw) as string[]) : raw.split(',').filter(Boolean);
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(this.keys)) if (!filter || filter.includes(k)) out[k] = v;
        return send(200, out);
      }
      if (url.pathname === '/api/set') {
        // "Setting values": each value a URL query parameter, encoded as JSON; the answer per key is
        // undocumented ("TODO for go-e: expected response content"): true or the error text here
        // (the unit's behaviour when one of several keys is refused is not documented: this one applies none)
        const out: Record<string, unknown> = {};
        const values: [string, unknown][] = [];
        let failed = false;
        for (const [k, text] of url.searchParams) {
          try {
            values.push([k, JSON.parse(text)]);
          } catch {
            out[k] = `invalid json: ${text}`;
            failed = true;
          }
        }
        for (const [k, v] of values) {
          const err = this.refusal(k, v);
          if (err) failed = true;
          out[k] = err ?? (failed ? 'not applied' : true);
        }
        if (failed) {
          for (const [k] of values) if (out[k] === true) out[k] = 'not applied';
          return send(400, out);
        }
        for (const [k, v] of values) out[k] = this.write(k, v) ?? true;
        void this.publishAll();
        return send(200, out);
      }
      send(404, { error: 'not found' });
    });
    await new Promise<void>((r) => this.server!.listen(port, host, () => r()));
    const { port: bound } = this.server.address() as AddressInfo;
    this.url = `http://${host}:${bound}`;
    return this.url;
  }

  // ---------------------------------------------------------------- MQTT API (mqtt-en.md)
  private get prefix() {
    return `go-eCharger/${this.keys.sse as string}`;
  }

  /** Connects to a broker as the unit: retained key topics, last will on mcc, writes on <key>/set, answers on <key>/result. */
  async connect(brokerUrl: string): Promise<void> {
    const prefix = this.prefix;
    this.client = mqtt.connect(brokerUrl, {
      clientId: `go-e-standin-${this.keys.sse as string}-${process.pid}`,
      // "Last Will": topic {prefix}{serial}/mcc, payload false, retained, QoS 1
      will: { topic: `${prefix}/mcc`, payload: Buffer.from('false'), retain: true, qos: 1 },
      reconnectPeriod: 200,
    });
    const client = this.client;
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    client.on('message', (topic, payload) => {
      const m = /^(.*)\/([^/]+)\/set$/.exec(topic);
      if (!m || m[1] !== prefix) return;
      const key = m[2];
      let result: string;
      let value: unknown;
      try {
        value = JSON.parse(payload.toString());
        result = this.write(key, value) ?? 'success';
      } catch {
        result = `invalid json IncompleteInput: ${payload.toString()}`;
      }
      void client.publishAsync(`${prefix}/${key}/result`, result, { qos: 1 });
      if (result === 'success') void this.publishAll();
    });
    await client.subscribeAsync(`${prefix}/+/set`, { qos: 1 });
    this.keys.mcc = true;
    await this.publishAll();
  }

  /** Publishes every key retained, as the unit does (mqtt-en.md "Topics"). */
  async publishAll(): Promise<void> {
    const client = this.client;
    if (!client?.connected) return;
    this.tick();
    await Promise.all(Object.entries(this.keys).map(([k, v]) => client.publishAsync(`${this.prefix}/${k}`, JSON.stringify(v), { retain: true, qos: 1 })));
  }

  /** Leaves the broker without a clean goodbye, so the broker sends the last will (mcc false). */
  dropMqtt() {
    this.client?.stream.destroy();
    this.client?.end(true);
    this.client = undefined;
  }

  async close(): Promise<void> {
    if (this.client) {
      const c = this.client;
      this.client = undefined;
      this.keys.mcc = false;
      await c.publishAsync(`${this.prefix}/mcc`, 'false', { retain: true, qos: 1 }).catch(() => undefined);
      await c.endAsync().catch(() => undefined);
    }
    if (this.server) {
      const s = this.server;
      this.server = undefined;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }
}
