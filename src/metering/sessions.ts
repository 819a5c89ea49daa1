import type { ChargerCap, EpochMs } from '../api/index.js';
import type { HubState, StoredSession } from '../core/store/state.js';

/** Charger states with a car plugged in (as the planner's PLUGGED). */
const PLUGGED = new Set(['preparing', 'charging', 'suspended_ev', 'suspended_evse', 'finishing']);
/** Sessions that ended longer ago than this are dropped from the state file as new ones come. */
export const SESSION_KEEP_MS = 400 * 86_400_000;

const iso = (t: EpochMs) => new Date(t).toISOString();

/**
 * Keeps the hub's record of charging sessions (`HubState.sessions`): the plug-in time (the first
 * moment the hub saw the car plugged in, else the session's start), start, end and energy. The EV
 * savings baseline charges each session at full power from its plug-in. Fed by the metering part
 * on every event of a charger; writes only when a session starts or ends.
 */
export class SessionRecorder {
  private readonly pluggedSince = new Map<string, EpochMs>();

  constructor(private readonly state: { data: HubState; update(fn: (s: HubState) => void): Promise<void> }) {}

  observe(deviceId: string, charger: ChargerCap, now: EpochMs): Promise<void> | undefined {
    const plugged = PLUGGED.has(charger.status());
    if (!plugged) this.pluggedSince.delete(deviceId);
    else if (!this.pluggedSince.has(deviceId)) this.pluggedSince.set(deviceId, now);
    const s = charger.session();
    if (!s) return undefined;
    const stored = this.state.data.sessions[s.id];
    const since = this.pluggedSince.get(deviceId);
    const plugIn = Math.min(s.start, since !== undefined && since <= s.start ? since : s.start);
    const ended = s.end !== undefined;
    if (stored && stored.device_id === deviceId && (stored.end !== undefined || !ended)) return undefined;
    const entry: StoredSession = {
      ...(stored?.device_id === deviceId ? stored : {}),
      id: s.id,
      device_id: deviceId,
      start: iso(s.start),
      ...(plugIn < s.start ? { plug_in: iso(plugIn) } : {}),
      ...(ended ? { end: iso(s.end!) } : {}),
      energy_wh: Math.round(s.energyWh * 1000) / 1000,
      ...(s.idTag ? { id_tag: s.idTag } : {}),
    };
    return this.state.update((st) => {
      st.sessions[s.id] = entry;
      for (const [id, old] of Object.entries(st.sessions)) if (old.end && now - Date.parse(old.end) > SESSION_KEEP_MS) delete st.sessions[id];
    });
  }
}
