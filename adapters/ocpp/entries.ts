import type { ConfigIssue } from '../../src/api/index.js';
import { MEASURANDS, type OcppDeviceConfig } from './schema.js';

/** Keys of the whole charge point (one connection, one boot, one configuration), so equal in every entry of one identity. */
const CHARGER_WIDE: Partial<Record<keyof OcppDeviceConfig, unknown>> = { password: undefined, heartbeat_s: 300, meter_interval_s: 60, measurands: MEASURANDS, configure: true, boot_wait_s: 10 };

/** chargingProfileId the hub uses on a connector: a charge point holds one profile per id, so connector n uses profile.id + n − 1. */
export const profileIdOf = (c: Pick<OcppDeviceConfig, 'connector' | 'profile'>) => (c.profile?.id ?? 1001) + (c.connector ?? 1) - 1;

/**
 * A charger with several connectors is one `devices[]` entry per connector, all with its identity:
 * each identity + connector once, and the charger's own settings the same in each.
 */
export function checkOcppEntries(entries: { index: number; config: OcppDeviceConfig }[]): (ConfigIssue & { index: number })[] {
  const issues: (ConfigIssue & { index: number })[] = [];
  const byIdentity = new Map<string, { index: number; config: OcppDeviceConfig }[]>();
  for (const e of entries) {
    if (typeof e.config?.identity !== 'string') continue;
    const group = byIdentity.get(e.config.identity) ?? [];
    group.push(e);
    byIdentity.set(e.config.identity, group);
  }
  for (const [identity, group] of byIdentity) {
    if (group.length < 2) continue;
    const first = group[0];
    const name = (e: { index: number; config: OcppDeviceConfig }) => `devices[${e.index}] ("${e.config.id}")`;
    const connectors = new Map<number, { index: number; config: OcppDeviceConfig }>();
    const profileIds = new Map<number, { index: number; config: OcppDeviceConfig }>();
    for (const e of group) {
      const n = e.config.connector ?? 1;
      const taken = connectors.get(n);
      if (taken) {
        issues.push({
          index: e.index,
          path: [e.config.connector === undefined ? 'identity' : 'connector'],
          message: `charger "${identity}" connector ${n} is already ${name(taken)}: give each connector of a charger its own entry with its own connector (1.6 connectorId, 2.0.1 EVSE id)`,
        });
        continue;
      }
      connectors.set(n, e);
      const id = profileIdOf(e.config);
      const sameId = profileIds.get(id);
      if (sameId) issues.push({ index: e.index, path: ['profile', 'id'], message: `gives chargingProfileId ${id} (profile.id + connector − 1), as ${name(sameId)} does on the same charger "${identity}": a charger holds one profile per id, so the connectors would replace each other's` });
      else profileIds.set(id, e);
      if (e.config.profile?.purpose === 'ChargePointMaxProfile') {
        issues.push({ index: e.index, path: ['profile', 'purpose'], message: `ChargePointMaxProfile limits the whole charger "${identity}", which has several connectors (${group.map(name).join(', ')}): use auto, TxProfile or TxDefaultProfile, which limit one connector` });
      }
    }
    for (const e of group.slice(1)) {
      for (const [key, fallback] of Object.entries(CHARGER_WIDE) as [keyof OcppDeviceConfig, unknown][]) {
        const a = JSON.stringify(first.config[key] ?? fallback);
        const b = JSON.stringify(e.config[key] ?? fallback);
        if (a === b) continue;
        issues.push({
          index: e.index,
          path: [key],
          message: key === 'password' ? `must be the password of ${name(first)}: the connectors of charger "${identity}" share one connection and one login` : `must be the same as in ${name(first)} (${a}): ${key} is a setting of the whole charger "${identity}", not of a connector`,
        });
      }
    }
  }
  return issues;
}
