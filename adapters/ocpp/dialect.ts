import type { ChargerStatus, EpochMs, Logger, OcppConnection, OcppProtocol } from '../../src/api/index.js';
import { ocppTime, type ChargingScheduleSpec, type ProfileSettings, type RateUnit } from './profiles.js';
import type { OcppDeviceConfig } from './schema.js';
import type { SessionBook } from './sessions.js';

/**
 * What differs between OCPP 1.6J and 2.0.1 — message names, payload shapes, how a transaction is
 * told and how a charging profile is written — behind one interface. A dialect translates; the
 * station (connection), the session book (transactions, metering) and smart charging (profiles)
 * do the same thing whichever version the charger speaks.
 */
export interface OcppDialect {
  readonly protocol: OcppProtocol;
  /** Answers every message the charger sends, handing each to the connector it concerns. */
  answer(conn: OcppConnection, station: StationPort): void;
  /** Station-wide settings after boot (meter interval, measurands): GetConfiguration/ChangeConfiguration or SetVariables. */
  configure(conn: OcppConnection, station: StationPort): Promise<void>;
  triggerMessage(requestedMessage: TriggerableMessage, connector: number): Record<string, unknown>;
  remoteStart(connector: number, idTag: string, remoteStartId: () => number): OcppRequest;
  remoteStop(transactionId: string): OcppRequest;
  setChargingProfile(spec: ChargingScheduleSpec, settings: ProfileSettings, connector: number, transactionId?: string): Record<string, unknown>;
  clearChargingProfile(profileId: number): Record<string, unknown>;
  getCompositeSchedule(connector: number, durationS: number, unit: RateUnit): Record<string, unknown>;
}

export type TriggerableMessage = 'StatusNotification' | 'MeterValues' | 'BootNotification' | 'Heartbeat';

export interface OcppRequest {
  action: string;
  params: Record<string, unknown>;
}

/** What the charger told about itself (boot) and its configuration keys (1.6 GetConfiguration) that the hub adapts to. */
export interface ChargerFacts {
  vendor?: string;
  model?: string;
  firmware?: string;
  rateUnits?: RateUnit[];
  maxPeriods?: number;
  maxStackLevel?: number;
  sampleInterval?: string;
  sampledData?: string;
}

/** The charge point (one connection, one identity) as a dialect sees it. */
export interface StationPort {
  readonly identity: string;
  readonly log: Logger;
  /** Settings of the whole charge point (heartbeat, meter interval, measurands): the same in each of its entries. */
  readonly settings: Pick<OcppDeviceConfig, 'heartbeat_s' | 'meter_interval_s' | 'measurands' | 'configure'>;
  readonly facts: ChargerFacts;
  now(): EpochMs;
  logOnce(key: string, fn: () => void): void;
  /** Boot told who the charger is: configure it once the reply went out. Returns the BootNotification answer (both versions' shape). */
  booted(label: string, who: Pick<ChargerFacts, 'vendor' | 'model' | 'firmware'>): { status: 'Accepted'; currentTime: string; interval: number };
  /** A setup step failed: log it and go on (use as `.catch(station.failed('what'))`). */
  failed(what: string): (err: unknown) => undefined;
  /** Runs `fn` after the current reply went out (a call sent from inside a handler would race the reply). */
  afterReply(fn: () => Promise<unknown> | void): void;
  nextTransactionId(): number;
  /** Accepted when any of the charge point's connectors accepts the tag (1.6 Authorize names no connector). */
  tagStatus(idTag: string | undefined): 'Accepted' | 'Invalid';
  /** The device of connector (1.6) / EVSE (2.0.1) `n`; undefined, said once in the log, for one no entry configures. */
  connector(n: number): ConnectorPort | undefined;
  /** The connector running transaction `txId`. */
  withTransaction(txId: string): ConnectorPort | undefined;
  /** The only connector, when the charge point has one entry (then frames that name none, or connector 0, are its). */
  single(): ConnectorPort | undefined;
  all(): ConnectorPort[];
}

/** One connector / EVSE: the hub device behind it. */
export interface ConnectorPort {
  readonly number: number;
  readonly config: OcppDeviceConfig;
  readonly sessions: SessionBook;
  status(status: ChargerStatus): void;
  tagStatus(idTag: string | undefined): 'Accepted' | 'Invalid';
  /** A TxProfile needs the transaction id: send the plan again inside a new transaction. */
  reapplyLimit(): Promise<void>;
}

export const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
export const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? undefined : String(v));

/** A log-once filter: `once(key, fn)` runs `fn` the first time a key is seen (forgetting all after 1000 keys). */
export function logOncePer(): (key: string, fn: () => void) => void {
  const seen = new Set<string>();
  return (key, fn) => {
    if (seen.has(key)) return;
    if (seen.size > 1000) seen.clear();
    seen.add(key);
    fn();
  };
}

/** What both versions answer alike: Heartbeat (the hub's time), DataTransfer (no vendor extensions), and notifications the hub has nothing to do with. */
export function answerCommon(conn: OcppConnection, station: StationPort, emptyReplies: string[]) {
  conn.handle('Heartbeat', () => ({ currentTime: ocppTime(station.now()) }));
  conn.handle('DataTransfer', () => ({ status: 'UnknownVendorId' }));
  for (const action of emptyReplies) conn.handle(action, () => ({}));
}
