import type { HubConfig } from '../core/config/schema.js';
import type { PartFactory } from '../core/services.js';
import type { LpSolver } from '../optimiser/site/index.js';
import { ControlLoop } from './loop.js';
import { controlRoutes } from './routes.js';

/** Configurations whose hub only plans and sends no command (`homeflex plan` without a running hub). */
export const planOnly = new WeakSet<HubConfig>();

/**
 * The control part of the hub: plans the site (src/optimiser/site), drives the devices by the
 * plan, and serves GET /plan, PUT /limits/{id} and the device control endpoints.
 */
export function controlPart(options: { solver?: () => Promise<LpSolver> } = {}): PartFactory {
  return (hub) => {
    const loop = new ControlLoop(hub, { ...options, apply: !planOnly.has(hub.config) });
    hub.control = loop;
    return {
      name: 'control',
      routes: controlRoutes(loop),
      start: () => loop.start(),
      stop: () => loop.stop(),
    };
  };
}
