import type { JsonSchema } from './adapter.js';

/** `HH:MM`, local time of the site. */
export const hhmmSchema = { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' } as const;

/**
 * The `target` key of a charger's `devices[]` entry, which the planner reads (EVerest's
 * OptimizerTarget in YAML form). Every charger adapter uses this one definition.
 */
export const evTargetSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'What the car needs: energy or state of charge by the leave time',
  properties: {
    energy_wh: { type: 'number', minimum: 0, description: 'Energy to add (Wh)' },
    soc_pct: { type: 'number', minimum: 0, maximum: 100, description: 'State of charge to reach (%)' },
    leave_time: { ...hhmmSchema, description: 'Local time the car leaves' },
    price_limit: { type: 'number', description: 'Always charge at or below this import rate' },
    solar_only: { type: 'boolean', description: 'Charge only from PV surplus' },
  },
};

/** What a plugged-in car without a target gets (a charger's `default_mode`). */
export const EV_DEFAULT_MODES = ['cheapest_fill', 'now', 'off'] as const;
export type EvDefaultMode = (typeof EV_DEFAULT_MODES)[number];

/** The `default_mode` key of a charger's `devices[]` entry; every charger adapter uses this one definition. */
export const evDefaultModeSchema: JsonSchema = {
  enum: [...EV_DEFAULT_MODES],
  default: 'cheapest_fill',
  description:
    'With no target: cheapest_fill = fill the car up in the cheapest slots, at the lowest priority (only with what every deadline leaves), never beyond the car; now = full power; off = do not charge',
};
