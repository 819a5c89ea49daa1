import { permanentError, retryableError, type AdapterContext, type OcppConnection, type OcppTransport } from '../../src/api/index.js';
import { logOncePer, type ChargerFacts, type ConnectorPort, type OcppDialect, type StationPort } from './dialect.js';
import { ocpp16 } from './ocpp16.js';
import { ocpp201 } from './ocpp201.js';
import { ocppTime } from './profiles.js';
import type { OcppDeviceConfig } from './schema.js';

/** A connector's device as the station drives it (implemented by OcppChargePoint). */
export interface StationMember extends ConnectorPort {
  readonly ctx: AdapterContext;
  readonly deviceId: string;
  /** The charger (re)connected. */
  connected(conn: OcppConnection): void;
  /** The connection ended; `stopping` when the hub closed it. */
  disconnected(stopping: boolean): void;
  /** After boot or a reconnect, once the charge point is configured: ask for the connector's status, re-send its plan. */
  setup(conn: OcppConnection): Promise<void>;
}

export const dialectFor = (conn: OcppConnection): OcppDialect => (conn.protocol === 'ocpp2.0.1' ? ocpp201 : ocpp16);

/** The charge points of each transport, by identity: the connectors of one charger share its connection. */
const stations = new WeakMap<OcppTransport, Map<string, ChargeStation>>();

/**
 * Adds a connector's device to the charge point of its identity (claiming the identity for the first
 * one). Refuses a second device for the same connector, or one with another password.
 */
export function joinStation(transport: OcppTransport, member: StationMember): ChargeStation {
  let byIdentity = stations.get(transport);
  if (!byIdentity) stations.set(transport, (byIdentity = new Map()));
  const identity = member.config.identity;
  let station = byIdentity.get(identity);
  if (!station) {
    const created = new ChargeStation(transport, member.ctx, member.config, () => {
      if (byIdentity.get(identity) === created) byIdentity.delete(identity);
    });
    byIdentity.set(identity, (station = created));
  }
  station.add(member);
  return station;
}

/**
 * One charge point (one identity, one WebSocket connection) with its connectors: admits the
 * charger, answers it through the dialect of the OCPP version it speaks, configures it after boot,
 * and hands each connector's messages to that connector's device.
 */
export class ChargeStation implements StationPort {
  readonly identity: string;
  readonly facts: ChargerFacts = {};
  private readonly members = new Map<number, StationMember>();
  private conn?: OcppConnection;
  private dialect?: OcppDialect;
  private configuredConn?: OcppConnection;
  private releaseClaim?: () => void;
  private stopped = false;
  private readonly waits = new Set<AbortController>();

  constructor(
    private readonly transport: OcppTransport,
    private readonly ctx: AdapterContext,
    readonly settings: OcppDeviceConfig,
    private readonly forget: () => void,
  ) {
    this.identity = settings.identity;
  }

  get log() {
    return this.ctx.log;
  }

  get connection(): OcppConnection | undefined {
    return this.conn;
  }

  add(member: StationMember) {
    const n = member.config.connector;
    const taken = this.members.get(n);
    if (taken) throw permanentError('ocpp_identity_taken', `charger identity "${this.identity}" connector ${n} is claimed by two devices (${taken.deviceId} and ${member.deviceId})`);
    if ((member.config.password ?? null) !== (this.settings.password ?? null)) {
      throw permanentError('ocpp_identity_conflict', `charger identity "${this.identity}": device ${member.deviceId} has another password than the other connectors of that charger (one charger, one login)`);
    }
    this.members.set(n, member);
    // a device added while the charger is online (its entry started later) joins the running connection
    if (this.conn?.open) {
      const conn = this.conn;
      member.connected(conn);
      if (this.configuredConn === conn) this.afterReply(() => member.setup(conn));
    }
  }

  /** Claims the identity for the first connector; the others share that claim. */
  async start(): Promise<void> {
    if (!this.releaseClaim) {
      try {
        this.releaseClaim = this.transport.claim(this.identity, { password: this.settings.password }, (c) => this.attach(c));
      } catch (err) {
        this.members.clear();
        this.forget();
        throw err;
      }
    }
    await this.transport.ready();
  }

  /** A connector's device stops; the last one releases the identity and closes the connection. */
  async leave(member: StationMember): Promise<void> {
    if (this.members.get(member.config.connector) !== member) return;
    if (this.members.size > 1) {
      this.members.delete(member.config.connector);
      member.disconnected(true);
      return;
    }
    this.stopped = true;
    for (const w of this.waits) w.abort();
    this.releaseClaim?.();
    this.forget();
    await this.conn?.close();
    this.members.clear();
  }

  readonly logOnce = logOncePer();

  now() {
    return this.ctx.clock.now();
  }

  nextTransactionId() {
    return this.transport.nextTransactionId();
  }

  tagStatus(idTag: string | undefined): 'Accepted' | 'Invalid' {
    return [...this.members.values()].some((m) => m.tagStatus(idTag) === 'Accepted') ? 'Accepted' : 'Invalid';
  }

  connector(n: number): ConnectorPort | undefined {
    const member = this.members.get(n);
    if (!member && Number.isInteger(n) && n > 0) {
      this.logOnce(`connector|${n}`, () => this.log.info({ charger: this.identity, connector: n }, `charger ${this.identity} reports connector ${n}, which no device has (connector: ${n} in a devices[] entry with identity: ${this.identity}); its messages are ignored`));
    }
    return member;
  }

  withTransaction(txId: string): ConnectorPort | undefined {
    return [...this.members.values()].find((m) => m.sessions.open()?.id === txId);
  }

  single(): ConnectorPort | undefined {
    return this.members.size === 1 ? [...this.members.values()][0] : undefined;
  }

  all(): ConnectorPort[] {
    return [...this.members.values()].sort((a, b) => a.number - b.number);
  }

  /** The open connection and the dialect it speaks; a retryable error while the charger is offline. */
  link(): { conn: OcppConnection; dialect: OcppDialect } {
    if (!this.conn?.open || !this.dialect) throw retryableError('not_connected', `charger ${this.identity} is not connected`);
    return { conn: this.conn, dialect: this.dialect };
  }

  afterReply(fn: () => Promise<unknown> | void) {
    setImmediate(() => {
      void Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.log.warn({ err }, `charger ${this.identity}: ${(err as Error).message}`));
    });
  }

  booted(label: string, who: Pick<ChargerFacts, 'vendor' | 'model' | 'firmware'>) {
    Object.assign(this.facts, who);
    this.log.info({ vendor: this.facts.vendor, model: this.facts.model, firmware: this.facts.firmware }, `${label} ${this.identity} booted: ${this.facts.vendor ?? '?'} ${this.facts.model ?? '?'}`);
    const conn = this.conn;
    if (conn) this.afterReply(() => this.setup(conn));
    return { status: 'Accepted' as const, currentTime: ocppTime(this.now()), interval: this.settings.heartbeat_s };
  }

  private attach(conn: OcppConnection) {
    if (this.stopped) {
      void conn.close();
      return;
    }
    this.conn = conn;
    this.dialect = dialectFor(conn);
    for (const m of this.all() as StationMember[]) m.connected(conn);
    this.log.info({ charger: conn.identity, protocol: conn.protocol }, `charger ${conn.identity} connected (${conn.protocol})`);
    this.dialect.answer(conn, this);
    conn.onClose((info) => {
      if (this.conn !== conn) return;
      this.conn = undefined;
      // the hub closing every charger as it stops is expected, not 500 warnings
      if (this.stopped) this.log.info({ charger: conn.identity, code: info.code }, `charger ${conn.identity} disconnected (hub stopping)`);
      else this.log.warn({ charger: conn.identity, code: info.code, reason: info.reason }, `charger ${conn.identity} disconnected`);
      for (const m of this.all() as StationMember[]) m.disconnected(this.stopped);
    });
    // a charger that reconnects without booting is configured after a short wait (cancelled with the connection, so stopping is not held up)
    const wait = new AbortController();
    this.waits.add(wait);
    conn.onClose(() => wait.abort());
    void this.ctx.clock
      .sleep(this.settings.boot_wait_s * 1000, wait.signal)
      .then(() => this.setup(conn))
      .catch(() => undefined)
      .finally(() => this.waits.delete(wait));
  }

  /** A step of the setup failed: said in the log, the setup goes on. */
  failed(what: string) {
    return (err: unknown) => {
      this.log.warn({ err: (err as Error).message }, `charger ${this.identity}: ${what} failed: ${(err as Error).message}`);
      return undefined;
    };
  }

  /** After boot (or a reconnect without boot): the charge point's own settings, then each connector's status and plan. */
  private async setup(conn: OcppConnection) {
    if (this.configuredConn === conn || this.conn !== conn || !conn.open) return;
    this.configuredConn = conn;
    await dialectFor(conn).configure(conn, this);
    for (const m of this.all() as StationMember[]) await m.setup(conn);
  }
}

