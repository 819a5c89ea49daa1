import type { MeterReading } from './capabilities.js';
import type { PriceSeries, Direction } from './series.js';

/** What a notice is about; users choose which kinds reach which channel. */
export type NoticeKind =
  | 'ev_target_at_risk'
  | 'device_offline'
  | 'command_refused'
  | 'storage_degraded'
  | 'prices_missing'
  | 'plan_failed'
  | 'session_finished';

export const NOTICE_KINDS: readonly NoticeKind[] = ['ev_target_at_risk', 'device_offline', 'command_refused', 'storage_degraded', 'prices_missing', 'plan_failed', 'session_finished'];

/** Something a person should hear about, raised by the part that knows it (notifications, dashboard). */
export interface Notice {
  kind: NoticeKind;
  severity: 'info' | 'warning' | 'error';
  /** One line: "ev will be 4.2 kWh short at 07:30". */
  title: string;
  message: string;
  deviceId?: string;
  /** Notices with the same key are one matter: repeated ones are not sent again until it is resolved. */
  key?: string;
  /** True when the matter with this key is over (the device is back, planning works again). */
  resolved?: boolean;
}

/** Everything the event bus carries, by topic. */
export interface HubEvents {
  /** A device's state changed (availability, switch, SoC, setpoint...). */
  'device.state': { deviceId: string; available: boolean; error?: string };
  /** A new device appeared (OCPP charger dialled in) or left. */
  'device.connected': { deviceId: string };
  'device.disconnected': { deviceId: string };
  /** A meter reading from a device. */
  'meter.reading': { deviceId: string; reading: MeterReading };
  /** A tariff source published new prices. */
  'tariff.updated': { direction: Direction; series: PriceSeries; source: string };
  /** A user or API changed a device's target, schedule or comfort band. */
  'target.changed': { deviceId: string };
  /** External limits changed. */
  'limits.changed': { nodeId: string };
  /** A new plan was made. */
  'plan.updated': { planId: string; createdAt: number };
  /** Something a person should hear about. */
  notice: Notice;
}

export type HubEventName = keyof HubEvents;

export interface EventBus {
  emit<K extends HubEventName>(topic: K, payload: HubEvents[K]): void;
  /** Returns an unsubscribe function. */
  on<K extends HubEventName>(topic: K, handler: (payload: HubEvents[K]) => void): () => void;
}
