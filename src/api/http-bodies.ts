import { EV_CHARGE_MODES, EvTargetSchema } from './device-config.js';
import { Enum, StrictObject, Type, type Static } from './fragment.js';

/**
 * The bodies of the hub's HTTP writes as TypeBox schemas: fastify validates each route's body with
 * its schema (one error mapper turns a failure into the API's 400 naming the field), the OpenAPI
 * document (`homeflex openapi`) carries them, and the handlers read the typed result.
 */

/** `PUT /devices/{id}/target`: the EV target, one schema with the YAML's `target`. */
export const TargetBody = EvTargetSchema;

/** `PUT /devices/{id}/mode`: a charger's charge mode. */
export const ChargeModeBody = StrictObject({ mode: Enum(EV_CHARGE_MODES, { description: 'plan, off, now, minpv or pv (see docs/charging.md)' }) });
export type ChargeModeBody = Static<typeof ChargeModeBody>;

/** `PUT /devices/{id}/pause`: take a device out of the plan (true) or give it back (false). */
export const PauseBody = StrictObject({ paused: Type.Boolean({ description: 'true pauses the device, false resumes it' }) });
export type PauseBody = Static<typeof PauseBody>;

const Celsius = (description: string) => Type.Number({ minimum: -30, maximum: 60, description });
/** `PUT /devices/{id}/comfort`: the band a room must stay in (min_c below max_c). */
export const ComfortBody = StrictObject({ min_c: Celsius('Lowest room temperature (°C)'), max_c: Celsius('Highest room temperature (°C)') });
export type ComfortBody = Static<typeof ComfortBody>;
