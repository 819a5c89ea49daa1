import { OcppCallError, type ChargerStatus, type OcppConnection } from '../../src/api/index.js';
import { answerCommon, asRecord, str, type OcppDialect, type StationPort } from './dialect.js';
import { readMeterValues201 } from './measurands.js';
import { setChargingProfile201 } from './profiles.js';

/** OCPP 2.0.1: EVSEs by evseId (0 = the station), transactions the station names and tells as TransactionEvents. */

const CHARGING_STATE: Record<string, ChargerStatus> = {
  Charging: 'charging',
  EVConnected: 'preparing',
  SuspendedEV: 'suspended_ev',
  SuspendedEVSE: 'suspended_evse',
  Idle: 'available',
};

const CONNECTOR_STATUS: Record<string, ChargerStatus> = {
  Available: 'available',
  Occupied: 'preparing',
  Reserved: 'unavailable',
  Unavailable: 'unavailable',
  Faulted: 'faulted',
};

const EMPTY_REPLY = ['NotifyEvent', 'NotifyReport', 'SecurityEventNotification', 'FirmwareStatusNotification', 'LogStatusNotification', 'NotifyChargingLimit', 'ClearedChargingLimit', 'ReportChargingProfiles', 'NotifyMonitoringReport', 'NotifyDisplayMessages', 'NotifyCustomerInformation', 'PublishFirmwareStatusNotification'];

function answer(conn: OcppConnection, station: StationPort) {
  conn.handle('BootNotification', (p) => {
    const cs = asRecord(asRecord(p).chargingStation);
    return station.booted('charging station', { vendor: str(cs.vendorName), model: str(cs.model), firmware: str(cs.firmwareVersion) });
  });
  conn.handle('StatusNotification', (p) => {
    const s = asRecord(p);
    const c = station.connector(Number(s.evseId));
    if (c) {
      const mapped = CONNECTOR_STATUS[str(s.connectorStatus) ?? ''];
      // Occupied says less than the transaction's chargingState: keep that when it is known
      if (mapped === 'preparing' && c.sessions.open()) return {};
      c.status(mapped ?? 'unknown');
    }
    return {};
  });
  conn.handle('Authorize', (p) => ({ idTokenInfo: { status: station.tagStatus(str(asRecord(asRecord(p).idToken).idToken)) } }));
  conn.handle('TransactionEvent', (p) => {
    const s = asRecord(p);
    const info = asRecord(s.transactionInfo);
    const txId = str(info.transactionId);
    if (!txId) throw new OcppCallError('FormationViolation', 'TransactionEvent needs transactionInfo.transactionId');
    // the EVSE comes with the first event of a transaction; later ones belong where the transaction runs
    const evse = asRecord(s.evse).id;
    const c = evse !== undefined ? station.connector(Number(evse)) : (station.withTransaction(txId) ?? station.single());
    if (!c) {
      if (evse === undefined) station.logOnce(`noevse|${txId}`, () => station.log.warn({ transaction: txId }, `charging station ${conn.identity} sent TransactionEvent for unknown transaction ${txId} without an EVSE; not booked`));
      return {};
    }
    const evseId = c.number;
    const book = c.sessions;
    const type = str(s.eventType);
    const time = book.sampleTime(Date.parse(str(s.timestamp) ?? ''));
    const idToken = str(asRecord(s.idToken).idToken);
    const readings = readMeterValues201(s.meterValue, c.config.energy_unit);
    const open = book.open();
    if (type === 'Started' && open?.id !== txId) {
      const begin = readings.find((r) => r.sample.context === 'Transaction.Begin' && r.sample.energyWh !== undefined)?.sample.energyWh;
      book.openSession({ id: txId, connectorId: evseId, start: time, idTag: idToken, meterStartWh: c.config.energy_register === 'session' ? 0 : begin, energyWh: 0 });
      station.afterReply(() => c.reapplyLimit());
    }
    if (type === 'Updated' && open?.id !== txId && !book.wasClosed(txId) && !readings.length) {
      book.openSession({ id: txId, connectorId: evseId, start: time, idTag: idToken, energyWh: 0, adopted: true });
    }
    book.ingest(readings, txId, evseId);
    const chargingState = str(info.chargingState);
    if (chargingState && CHARGING_STATE[chargingState]) c.status(CHARGING_STATE[chargingState]);
    if (type === 'Ended') {
      if (book.open()?.id === txId) book.closeSession(time, str(info.stoppedReason));
      else station.logOnce(`stop|${txId}`, () => station.log.warn({ transaction: txId }, `charging station ${conn.identity} ended unknown transaction ${txId} (acknowledged)`));
    }
    return idToken ? { idTokenInfo: { status: c.tagStatus(idToken) } } : {};
  });
  conn.handle('MeterValues', (p) => {
    const s = asRecord(p);
    const evseId = Number(s.evseId);
    // EVSE 0 is the station's own meter: counted for a station with one EVSE only
    const c = evseId === 0 ? station.single() : station.connector(evseId);
    if (!c) {
      if (evseId === 0) station.logOnce('meter0', () => station.log.info({ charger: conn.identity }, `charging station ${conn.identity} sends meter values of the whole station (evseId 0); with several EVSEs they are not booked to any of them`));
      return {};
    }
    c.sessions.ingest(readMeterValues201(s.meterValue, c.config.energy_unit), undefined, evseId);
    return {};
  });
  conn.handle('NotifyEVChargingNeeds', () => ({ status: 'Rejected' }));
  answerCommon(conn, station, EMPTY_REPLY);
}

const sampledData = (name: string, value: string) => ({ component: { name: 'SampledDataCtrlr' }, variable: { name }, attributeValue: value });

export const ocpp201: OcppDialect = {
  protocol: 'ocpp2.0.1',
  answer,
  async configure(conn, station) {
    const { configure, meter_interval_s, measurands } = station.settings;
    if (!configure) return;
    const res = asRecord(
      await conn
        .call('SetVariables', { setVariableData: [sampledData('TxUpdatedInterval', String(meter_interval_s)), sampledData('TxUpdatedMeasurands', measurands.join(','))] })
        .catch(station.failed('SetVariables')),
    );
    const refused = (Array.isArray(res.setVariableResult) ? res.setVariableResult : []).map(asRecord).filter((r) => r.attributeStatus !== 'Accepted');
    if (refused.length) station.log.warn({ refused }, `charging station ${conn.identity} refused some SetVariables`);
  },
  triggerMessage: (requestedMessage, connector) => ({
    requestedMessage,
    ...(requestedMessage === 'StatusNotification' || requestedMessage === 'MeterValues' ? { evse: { id: connector, ...(requestedMessage === 'StatusNotification' ? { connectorId: 1 } : {}) } } : {}),
  }),
  remoteStart: (connector, idTag, remoteStartId) => ({ action: 'RequestStartTransaction', params: { evseId: connector, remoteStartId: remoteStartId(), idToken: { idToken: idTag, type: 'Central' } } }),
  remoteStop: (transactionId) => ({ action: 'RequestStopTransaction', params: { transactionId } }),
  setChargingProfile: (spec, settings, connector, transactionId) => setChargingProfile201(spec, settings, connector, transactionId),
  clearChargingProfile: (id) => ({ chargingProfileId: id }),
  getCompositeSchedule: (connector, durationS, unit) => ({ evseId: connector, duration: Math.round(durationS), chargingRateUnit: unit }),
};
