import type { CapName, Device } from '../api/index.js';
import { hasCap } from '../api/index.js';

export interface DeviceEntry {
  device: Device;
  /** The YAML entry that configures it (secrets are shown redacted by the API). */
  config?: Record<string, unknown>;
}

/** Every device the adapters made, looked up by id or by capability. */
export class DeviceRegistry {
  private entries = new Map<string, DeviceEntry>();

  add(device: Device, config?: Record<string, unknown>) {
    if (this.entries.has(device.id)) throw new Error(`device id "${device.id}" is registered twice`);
    this.entries.set(device.id, { device, config });
  }
  remove(id: string) {
    this.entries.delete(id);
  }
  get(id: string): Device | undefined {
    return this.entries.get(id)?.device;
  }
  entry(id: string): DeviceEntry | undefined {
    return this.entries.get(id);
  }
  all(): Device[] {
    return [...this.entries.values()].map((e) => e.device);
  }
  withCap<K extends CapName>(cap: K) {
    return this.all().filter((d) => hasCap(d, cap));
  }
}
