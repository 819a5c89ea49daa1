import { OcppCallError, type ChargerStatus, type OcppConnection } from '../../src/api/index.js';
import { answerCommon, asRecord, str, type ConnectorPort, type OcppDialect, type StationPort } from './dialect.js';
import { readMeterValues16, type SampleReading } from './measurands.js';
import { setChargingProfile16, type RateUnit } from './profiles.js';

/** OCPP 1.6J: connectors by connectorId (0 = the charge point), numeric transaction ids the hub assigns. */

const STATUS: Record<string, ChargerStatus> = {
  Available: 'available',
  Preparing: 'preparing',
  Charging: 'charging',
  SuspendedEV: 'suspended_ev',
  SuspendedEVSE: 'suspended_evse',
  Finishing: 'finishing',
  Reserved: 'unavailable',
  Unavailable: 'unavailable',
  Faulted: 'faulted',
};

const EMPTY_REPLY = ['DiagnosticsStatusNotification', 'FirmwareStatusNotification'];

/** 1.6 meter values in hub units; the opening register of a transaction came with StartTransaction (a 0 here from some chargers would look like a reset). */
function readings(c: ConnectorPort, meterValue: unknown): SampleReading[] {
  const list = readMeterValues16(meterValue, c.config.energy_unit);
  for (const r of list) if (r.sample.context === 'Transaction.Begin') r.sample.energyWh = undefined;
  return list;
}

function answer(conn: OcppConnection, station: StationPort) {
  conn.handle('BootNotification', (p) => {
    const b = asRecord(p);
    return station.booted('charger', { vendor: str(b.chargePointVendor), model: str(b.chargePointModel), firmware: str(b.firmwareVersion) });
  });
  conn.handle('StatusNotification', (p) => {
    const s = asRecord(p);
    const connectorId = Number(s.connectorId);
    const status = str(s.status) ?? '';
    const errorCode = str(s.errorCode);
    if (errorCode && errorCode !== 'NoError') {
      station.logOnce(`err|${connectorId}|${errorCode}|${str(s.vendorErrorCode)}`, () => station.log.warn({ connectorId, errorCode, info: s.info, vendorErrorCode: s.vendorErrorCode }, `charger ${conn.identity} connector ${connectorId} reports ${errorCode}`));
    }
    const mapped = STATUS[status];
    if (!mapped) station.logOnce(`status|${status}`, () => station.log.warn({ status }, `charger ${conn.identity} sent unknown status "${status}"`));
    // connector 0 is the whole charge point: its fault stops every connector
    if (connectorId === 0) {
      if (mapped === 'faulted' || mapped === 'unavailable') for (const c of station.all()) c.status(mapped);
    } else station.connector(connectorId)?.status(mapped ?? 'unknown');
    return {};
  });
  conn.handle('Authorize', (p) => ({ idTagInfo: { status: station.tagStatus(str(asRecord(p).idTag)) } }));
  conn.handle('StartTransaction', (p) => {
    const s = asRecord(p);
    const connectorId = Number(s.connectorId);
    if (!Number.isInteger(connectorId)) throw new OcppCallError('FormationViolation', 'StartTransaction needs connectorId');
    const idTag = str(s.idTag);
    const transactionId = station.nextTransactionId();
    const c = station.connector(connectorId) ?? (connectorId === 0 ? station.single() : undefined);
    // a connector no device has still gets its id (else the charger retries), but books nothing
    if (!c) return { transactionId, idTagInfo: { status: station.tagStatus(idTag) } };
    const book = c.sessions;
    const start = book.sampleTime(Date.parse(str(s.timestamp) ?? ''));
    const meterStart = book.energyOf(Number(s.meterStart));
    const perSession = c.config.energy_register === 'session';
    book.openSession({ id: String(transactionId), connectorId, start, idTag, meterStartWh: perSession ? 0 : meterStart, energyWh: 0 });
    if (meterStart !== undefined) book.publish({ time: start, energyWh: perSession ? 0 : meterStart, currentA: {} }, String(transactionId));
    station.afterReply(() => c.reapplyLimit());
    return { transactionId, idTagInfo: { status: c.tagStatus(idTag) } };
  });
  conn.handle('StopTransaction', (p) => {
    const s = asRecord(p);
    const id = str(s.transactionId) ?? '';
    // id 0 or -1 comes from chargers that lost the hub's reply or ran offline: it is the open one (if only one connector has one)
    const running = station.all().filter((c) => c.sessions.open());
    const c = station.withTransaction(id) ?? (Number(id) <= 0 && running.length === 1 ? running[0] : undefined);
    const open = c?.sessions.open();
    if (!c || !open) {
      station.logOnce(`stop|${id}`, () => station.log.warn({ transaction: id }, `charger ${conn.identity} stopped unknown transaction ${id} (acknowledged)`));
    } else {
      const book = c.sessions;
      book.ingest(Array.isArray(s.transactionData) ? s.transactionData.flatMap((mv) => readings(c, [mv])) : [], open.id);
      const stop = book.energyOf(Number(s.meterStop));
      const time = book.sampleTime(Date.parse(str(s.timestamp) ?? ''));
      if (stop !== undefined) book.publish({ time, energyWh: stop, currentA: {} }, open.id);
      book.closeSession(time, str(s.reason));
    }
    return { idTagInfo: { status: 'Accepted' } };
  });
  conn.handle('MeterValues', (p) => {
    const s = asRecord(p);
    const connectorId = Number(s.connectorId);
    const txId = s.transactionId === undefined || s.transactionId === null ? undefined : String(s.transactionId);
    // connector 0 is the charge point's own meter: a transaction it names says whose energy it is, else it is the only connector's
    const c = connectorId === 0 ? ((txId !== undefined ? station.withTransaction(txId) : undefined) ?? station.single()) : station.connector(connectorId);
    if (!c) {
      if (connectorId === 0) station.logOnce('meter0', () => station.log.info({ charger: conn.identity }, `charger ${conn.identity} sends meter values of the whole charge point (connector 0); with several connectors they are not booked to any of them`));
      return {};
    }
    c.sessions.ingest(readings(c, s.meterValue), txId, connectorId);
    return {};
  });
  answerCommon(conn, station, EMPTY_REPLY);
}

/** 1.6 GetConfiguration: the keys that shape charging profiles and metering, kept in the station's facts. */
export async function readConfiguration(conn: OcppConnection, station: Pick<StationPort, 'facts'>): Promise<Record<string, string | undefined>> {
  const res = asRecord(await conn.call('GetConfiguration', {}));
  const keys: Record<string, string | undefined> = {};
  for (const k of Array.isArray(res.configurationKey) ? res.configurationKey : []) {
    const r = asRecord(k);
    if (typeof r.key === 'string') keys[r.key] = str(r.value);
  }
  const facts = station.facts;
  const units = keys.ChargingScheduleAllowedChargingRateUnit;
  if (units !== undefined) {
    // "Current", "Power", both, or (some chargers) "A"/"W"
    const list = units.split(/[,\s]+/).filter(Boolean);
    facts.rateUnits = [...new Set(list.flatMap((u): RateUnit[] => (/^(current|a)$/i.test(u) ? ['A'] : /^(power|w)$/i.test(u) ? ['W'] : [])))];
  }
  const num = (v?: string) => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : undefined);
  facts.maxPeriods = num(keys.ChargingScheduleMaxPeriods);
  facts.maxStackLevel = num(keys.ChargeProfileMaxStackLevel);
  facts.sampleInterval = keys.MeterValueSampleInterval;
  facts.sampledData = keys.MeterValuesSampledData;
  return keys;
}

export async function changeConfiguration(conn: OcppConnection, station: Pick<StationPort, 'log' | 'identity'>, key: string, value: string): Promise<string> {
  const res = asRecord(await conn.call('ChangeConfiguration', { key, value }));
  const status = str(res.status) ?? 'unknown';
  if (status !== 'Accepted') station.log.warn({ key, value, status }, `charger ${station.identity} answered ${status} to ${key}=${value}`);
  return status;
}

export const ocpp16: OcppDialect = {
  protocol: 'ocpp1.6',
  answer,
  async configure(conn, station) {
    await readConfiguration(conn, station).catch(station.failed('GetConfiguration'));
    const { configure, meter_interval_s, measurands } = station.settings;
    if (!configure) return;
    if (station.facts.sampleInterval !== String(meter_interval_s)) {
      await changeConfiguration(conn, station, 'MeterValueSampleInterval', String(meter_interval_s)).catch(station.failed('setting MeterValueSampleInterval'));
    }
    const wanted = measurands.join(',');
    if (station.facts.sampledData !== wanted) {
      const status = await changeConfiguration(conn, station, 'MeterValuesSampledData', wanted).catch(station.failed('setting MeterValuesSampledData'));
      if (status && status !== 'Accepted' && status !== 'RebootRequired') {
        // some chargers (EVBox) refuse the longer list; energy and power are what the hub needs most
        await changeConfiguration(conn, station, 'MeterValuesSampledData', 'Energy.Active.Import.Register,Power.Active.Import').catch(station.failed('setting MeterValuesSampledData'));
      }
    }
  },
  triggerMessage: (requestedMessage, connector) => ({ requestedMessage, connectorId: connector }),
  remoteStart: (connector, idTag) => ({ action: 'RemoteStartTransaction', params: { connectorId: connector, idTag } }),
  remoteStop: (transactionId) => ({ action: 'RemoteStopTransaction', params: { transactionId: Number(transactionId) } }),
  setChargingProfile: (spec, settings, connector, transactionId) => setChargingProfile16(spec, settings, connector, transactionId === undefined ? undefined : Number(transactionId)),
  clearChargingProfile: (id) => ({ id }),
  getCompositeSchedule: (connector, durationS, unit) => ({ connectorId: connector, duration: Math.round(durationS), chargingRateUnit: unit }),
};
