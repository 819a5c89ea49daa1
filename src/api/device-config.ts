import type { JsonSchema } from './adapter.js';
import { configSchema, Enum, Hhmm, HHMM_PATTERN, StrictObject, Type, type Static } from './fragment.js';

/** `HH:MM`, local time of the site. */
export const hhmmSchema = { type: 'string', pattern: HHMM_PATTERN } as const;

/** An RFC 3339 instant with a date, a time and a zone (`Z` or an offset). */
export const RFC3339_PATTERN = '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d(:\\d\\d(\\.\\d+)?)?(Z|z|[+-]\\d\\d:\\d\\d)$';

/**
 * The EV target: the `target` key of a charger's `devices[]` entry and the body of
 * `PUT /devices/{id}/target`, one schema for both (EVerest's OptimizerTarget in homeflex's words).
 * `leave_time` is a standing daily "HH:MM" or one departure as an RFC 3339 instant. With both
 * `soc_pct` and `energy_wh`, `soc_pct` is planned when the car reports its state of charge, else
 * `energy_wh`. Every charger adapter and the API use this one definition.
 */
export const EvTargetSchema = StrictObject(
  {
    energy_wh: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'Energy to add (Wh)' })),
    soc_pct: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'State of charge to reach (%); needs the car to report it, else energy_wh is planned' })),
    leave_time: Type.Optional(
      Type.String({
        pattern: `${HHMM_PATTERN}|${RFC3339_PATTERN}`,
        description: 'When the car leaves: "HH:MM" local time (every day), or an RFC 3339 instant (this car only: the target ends when it leaves)',
      }),
    ),
    price_limit: Type.Optional(Type.Number({ description: 'Always charge at or below this import rate' })),
    solar_only: Type.Optional(Type.Boolean({ description: 'Charge only from PV surplus' })),
    charge_now: Type.Optional(Type.Boolean({ description: 'Full power now, until the car leaves (the dashboard\'s "charge now"); set through the API it ends when the car leaves' })),
  },
  { description: 'What the car needs: energy or state of charge by the leave time' },
);
export type EvTarget = Static<typeof EvTargetSchema>;
/** `EvTargetSchema` as plain JSON Schema, for schemas written as JSON. */
export const evTargetSchema: JsonSchema = configSchema(EvTargetSchema);

/** What a plugged-in car without a target gets (a charger's `default_mode`). */
export const EV_DEFAULT_MODES = ['cheapest_fill', 'now', 'off'] as const;
export type EvDefaultMode = (typeof EV_DEFAULT_MODES)[number];

/** The `default_mode` key of a charger's `devices[]` entry; every charger adapter uses this one definition. */
export const EvDefaultModeSchema = Enum(EV_DEFAULT_MODES, {
  default: 'cheapest_fill',
  description:
    'With no target: cheapest_fill = fill the car up in the cheapest slots, at the lowest priority (only with what every deadline leaves), never beyond the car; now = full power; off = do not charge',
});
export const evDefaultModeSchema: JsonSchema = configSchema(EvDefaultModeSchema);

/**
 * How a charger charges, in evcc's words: `plan` = by its target or `default_mode` (homeflex's planner);
 * `off`; `now` = full power; `minpv` = at least the minimum current, more from PV surplus; `pv` = only
 * from PV surplus. `minpv` and `pv` follow the measured surplus every few seconds (the surplus dispatcher).
 */
export const EV_CHARGE_MODES = ['plan', 'off', 'now', 'minpv', 'pv'] as const;
export type EvChargeMode = (typeof EV_CHARGE_MODES)[number];

/** The `charge_mode` and `surplus_priority` keys of a charger's `devices[]` entry; every charger adapter uses these definitions. */
export const EvChargeModeProperties = {
  charge_mode: Enum(EV_CHARGE_MODES, {
    default: 'plan',
    description:
      'plan = by the target or default_mode (the planner); off; now = full power; minpv = the minimum current always, more from PV surplus; pv = only from PV surplus (minpv and pv follow the measured surplus every few seconds, see surplus:)',
  }),
  surplus_priority: Type.Integer({ minimum: 0, maximum: 100, default: 50, description: 'Surplus followers with a higher priority take the PV surplus first' }),
};
export const evChargeModeProperties: Record<string, JsonSchema> = Object.fromEntries(Object.entries(EvChargeModeProperties).map(([k, v]) => [k, configSchema(v)]));

const DailyHours = () => Type.Number({ minimum: 0, maximum: 24 });

/**
 * The `schedule` key of a switched load (a socket, a relay), which the planner reads, and the body
 * of `PUT /devices/{id}/schedule`: one definition for the YAML and the API. The switched-systems
 * settings: daily "on" hours (or weekday and weekend hours) within a daily window, an end-by time,
 * an absolute price threshold. What a schema cannot say (at least hours or max_rate, end_by inside
 * the window, hours that fit) is checked by the control part.
 */
export const SwitchedScheduleSchema = StrictObject(
  {
    hours: Type.Optional(
      Type.Union([DailyHours(), StrictObject({ weekday: DailyHours(), weekend: DailyHours() })], {
        description: 'Daily "on" hours: a number, or {weekday, weekend} (the day the window starts)',
      }),
    ),
    window: Type.Optional(
      StrictObject(
        { from: Hhmm(), to: Hhmm() },
        { description: 'Daily window (local time); crosses midnight when to is before from; to = from is a whole day. Default: the whole local day' },
      ),
    ),
    end_by: Type.Optional(Hhmm({ description: 'The daily hours must be done by this local time (ends the window; without a window, the 24 h before it)' })),
    continuous: Type.Optional(Type.Boolean({ description: 'The daily hours in one unbroken block' })),
    max_rate: Type.Optional(Type.Number({ description: 'Also on whenever the import rate is at or below this (within the window, if one is set)' })),
    default_start: Type.Optional(Hhmm({ description: 'When the load would start without homeflex (the savings baseline); default the window start' })),
  },
  {
    description:
      'Switched-load settings: daily "on" hours within a window and/or an end-by time, optionally in one block, and/or on whenever the import rate is at or below max_rate',
  },
);
export type SwitchedSchedule = Static<typeof SwitchedScheduleSchema>;
/** `SwitchedScheduleSchema` as plain JSON Schema. */
export const switchedScheduleSchema: JsonSchema = configSchema(SwitchedScheduleSchema);
