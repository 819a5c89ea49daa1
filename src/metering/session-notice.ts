import type { HubServices } from '../core/services.js';
import type { MeteringService } from './service.js';

const money = (v: number, currency: string) => `${v.toFixed(2)} ${currency}`;

/**
 * The `session_finished` notice of a charging session that just ended: its energy, what it cost
 * and what it saved against charging at full power from plug-in (the EV savings baseline). Waits
 * until the session's last readings are stored.
 */
export async function sessionFinishedNotice(hub: HubServices, metering: MeteringService, deviceId: string, sessionId: string): Promise<void> {
  // one tick first, so the metering's own flush of the session's last readings (scheduled by
  // onSessionEnded) starts before this waits for it: forcing a flush synchronously at session end
  // made a session that a new transaction closed lose its records' session tag
  // (test/reliability/ocpp-faults.test.ts), and not waiting at all read the store mid-write
  // (test/metering/api.test.ts) — an ordering race in the metering service still to look into
  await new Promise((r) => setImmediate(r));
  await metering.settled();
  const currency = hub.site.currency;
  const stored = hub.state.data.sessions[sessionId];
  let energyWh = stored?.energy_wh ?? 0;
  let cost: number | null = null;
  let saving: number | null = null;
  try {
    const costs = metering.sessionCosts(sessionId, { direction: 'IMPORT', aggregation: 'DAY', includeTariff: false });
    energyWh = costs.total.energy.value;
    cost = costs.total.tariff.value;
  } catch {
    // no meter records carry the session (a charger that reports no meter values): energy from the charger
  }
  const plugIn = stored ? Date.parse(stored.plug_in ?? stored.start) : NaN;
  if (Number.isFinite(plugIn)) {
    try {
      // from plug-in to the end: this session alone plugged in within it (records outside any
      // session count the same in the baseline and the actual, so they change no saving)
      const end = Math.max(stored?.end ? Date.parse(stored.end) : hub.clock.now(), plugIn) + 1;
      const s = metering.savings(deviceId, { start: plugIn, end }, 'ev') as { savings?: number; sessions?: { session_reference_id: string }[] };
      if (typeof s.savings === 'number' && s.sessions?.length === 1 && s.sessions[0].session_reference_id === sessionId) saving = s.savings;
    } catch {
      // no savings for it (no full power known): the notice says energy and cost
    }
  }
  const kwh = (energyWh / 1000).toFixed(2);
  const parts = [`${kwh} kWh`];
  if (cost !== null) parts.push(`cost ${money(cost, currency)}`);
  if (saving !== null) parts.push(`${saving >= 0 ? 'saved' : 'cost'} ${money(Math.abs(saving), currency)} ${saving >= 0 ? 'against' : 'more than'} charging at full power from plug-in`);
  hub.bus.emit('notice', {
    kind: 'session_finished',
    severity: 'info',
    deviceId,
    title: `${deviceId}: charging finished, ${kwh} kWh${cost !== null ? ` for ${money(cost, currency)}` : ''}`,
    message: `Session ${sessionId} on ${deviceId}: ${parts.join(', ')}.`,
  });
}
