import type { Capabilities } from './capabilities.js';

/**
 * What kind of load or source a device is, for metering (its savings baseline, how its exported
 * energy is valued): a battery, an EV charger, a heat pump or air conditioner, a switched load on a
 * schedule, PV, or a plain meter.
 */
export type DeviceKind = 'storage' | 'ev' | 'hvac' | 'switched_load' | 'pv' | 'meter';
export const DEVICE_KINDS: readonly DeviceKind[] = ['storage', 'ev', 'hvac', 'switched_load', 'pv', 'meter'];

export const isDeviceKind = (k: string): k is DeviceKind => (DEVICE_KINDS as readonly string[]).includes(k);

/**
 * The one device classifier: from the running device's capabilities, else from its YAML keys;
 * undefined when neither is known (metering then looks at the device's records). A device with
 * several capabilities is the first of storage, charger, thermostat, scheduled switch, PV.
 */
export function deviceKind(caps: Capabilities | undefined, config?: Record<string, unknown>): DeviceKind | undefined {
  if (caps) {
    if (caps.storage) return 'storage';
    if (caps.charger) return 'ev';
    if (caps.thermostat) return 'hvac';
    if (caps.switch) return config?.schedule ? 'switched_load' : 'meter';
    if (caps.pv) return 'pv';
    return 'meter';
  }
  if (config) {
    if (config.schedule) return 'switched_load';
    if (config.comfort) return 'hvac';
    if (config.target || config.max_current_a) return 'ev';
    if (config.capacity_wh) return 'storage';
    if (config.kwp) return 'pv';
  }
  return undefined;
}
