import type { MeterReading, MqttTransport } from '../api/index.js';
import { deviceView } from './routes.js';
import type { HubServices } from './services.js';
import { telemetryTopics } from './transports/mqtt.js';

/** A meter reading as telemetry: the fields and units of GET /devices/{id} (state.meter.<channel>). */
export function meterPayload(deviceId: string, reading: MeterReading) {
  return {
    device_id: deviceId,
    channel: reading.channel ?? 'device',
    time: new Date(reading.time).toISOString(),
    power_w: reading.powerW ?? null,
    import_wh: reading.importWh ?? null,
    export_wh: reading.exportWh ?? null,
    session_reference_id: reading.sessionId ?? null,
    ...(reading.phasesW ? { phases_w: reading.phasesW } : {}),
  };
}

/**
 * Publishes every device's state (retained, on every change of availability or state and at start)
 * and every meter reading (retained: the last one per channel) to `homeflex/<site>/telemetry/…`, so
 * a Mosquitto bridge or an EMQX cluster can carry a fleet's hubs. Best effort: a message that cannot
 * be published while the broker is away is dropped; after a reconnect every device's state and last
 * reading per channel are published again (a broker restarted without persistence lost them).
 * Returns the function that stops it.
 */
export function startTelemetry(mqtt: MqttTransport & { onReconnect?(listener: () => void): () => void }, hub: HubServices): () => void {
  const topics = telemetryTopics(hub.site.id);
  const log = hub.log.child({ component: 'telemetry' });
  let failures = 0;
  const publish = (topic: string, body: unknown) => {
    mqtt.publish(topic, JSON.stringify(body), { retain: true, qos: 0 }).then(
      () => {
        if (failures) log.info(`telemetry is published again (${failures} messages were dropped)`);
        failures = 0;
      },
      (err: unknown) => {
        if (!failures++) log.warn({ err }, `telemetry cannot be published (${(err as Error).message}); messages are dropped until it can`);
      },
    );
  };
  const state = (deviceId: string) => {
    const d = hub.registry.get(deviceId);
    if (d) publish(topics.state(deviceId), deviceView(d, hub));
  };
  /** the last reading of each device and channel, by topic, to publish again after a reconnect */
  const lastReading = new Map<string, ReturnType<typeof meterPayload>>();
  const everything = () => {
    for (const d of hub.registry.all()) state(d.id);
    for (const [topic, body] of lastReading) publish(topic, body);
  };
  const off = [
    hub.bus.on('device.state', ({ deviceId }) => state(deviceId)),
    hub.bus.on('device.connected', ({ deviceId }) => state(deviceId)),
    hub.bus.on('device.disconnected', ({ deviceId }) => state(deviceId)),
    hub.bus.on('meter.reading', ({ deviceId, reading }) => {
      const topic = topics.meter(deviceId, reading.channel ?? 'device');
      const body = meterPayload(deviceId, reading);
      lastReading.set(topic, body);
      publish(topic, body);
    }),
    ...(mqtt.onReconnect ? [mqtt.onReconnect(everything)] : []),
  ];
  everything();
  return () => {
    for (const o of off) o();
  };
}
