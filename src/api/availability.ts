import type { Device } from './capabilities.js';
import type { EventBus } from './events.js';
import type { Logger } from './logger.js';

/**
 * Sets a device's availability from the reason it cannot be used (`undefined`: it can). When that
 * changes, logs it (`<what> is available` / `<what> is unavailable`, with the reason), emits
 * `device.state`, then `device.connected` or `device.disconnected`: the plan leaves unavailable
 * devices out, so coming and going re-plans. `force` emits `device.state` even when nothing changed.
 * Returns whether the availability changed.
 */
export function setAvailability(ctx: { log: Logger; bus: EventBus }, device: Device, error: string | undefined, what: string, force = false): boolean {
  const was = device.available;
  device.available = error === undefined;
  device.error = error;
  const changed = was !== device.available;
  if (changed) {
    if (device.available) ctx.log.info(`${what} is available`);
    else ctx.log.warn({ reason: error }, `${what} is unavailable`);
  }
  if (force || changed) ctx.bus.emit('device.state', { deviceId: device.id, available: device.available, error });
  if (changed) ctx.bus.emit(device.available ? 'device.connected' : 'device.disconnected', { deviceId: device.id });
  return changed;
}
