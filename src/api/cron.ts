import cron from 'node-cron';
import type { ConfigIssue } from './adapter.js';

/** A malformed `refresh_cron`, reported at its key with what node-cron found wrong. */
export function cronIssues(expr: string | undefined): ConfigIssue[] {
  if (expr === undefined) return [];
  const v = cron.validateDetailed(expr);
  if (v.valid) return [];
  const why = v.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return [{ path: ['refresh_cron'], message: `"${expr}" is not a cron expression (${why || 'use five fields: minute hour day month weekday'})` }];
}
