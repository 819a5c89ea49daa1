import type { Device } from './capabilities.js';

/**
 * The device whose `grid` channel is the site's own meter: `site.grid_meter` where the YAML names
 * one, else the first device (in YAML order, then the rest) that has a grid channel. A site has one
 * grid connection: a second device with a grid channel (a hybrid inverter's meter on a sub-circuit)
 * is booked as a sub-meter of its own, never added to the site's.
 */
export function siteGridMeterId(configured: string | undefined, devices: readonly Device[], order: readonly string[] = []): string | undefined {
  if (configured) return configured;
  const rank = (id: string) => {
    const i = order.indexOf(id);
    return i < 0 ? order.length : i;
  };
  const withGrid = devices.filter((d) => d.caps.meter?.channels.includes('grid'));
  return withGrid.sort((a, b) => rank(a.id) - rank(b.id))[0]?.id;
}
