import { Ajv, type ErrorObject } from 'ajv';
import { DateTime } from 'luxon';
import { badRequest, switchedScheduleSchema, type ConfigIssue, type EpochMs } from '../api/index.js';

/**
 * A switched load's `schedule` (YAML key and `PUT /devices/{id}/schedule` body, one schema:
 * `switchedScheduleSchema`), and how the planner reads it.
 */
export interface ScheduleSetting {
  hours?: number | { weekday: number; weekend: number };
  window?: { from: string; to: string };
  end_by?: string;
  continuous?: boolean;
  max_rate?: number;
  default_start?: string;
}

const DAY_MIN = 24 * 60;
const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
/** Length of a daily window in minutes: to before (or at) from crosses midnight; to = from is 24 h. */
const windowMinutes = (w: { from: string; to: string }) => (minutesOf(w.to) - minutesOf(w.from) + DAY_MIN) % DAY_MIN || DAY_MIN;

/**
 * The daily window the load runs in: `window.from` to `end_by` (else `window.to`); without a window,
 * the 24 hours before `end_by`. Undefined when neither is set (hours per local day; max_rate at any time).
 */
export function runWindow(s: ScheduleSetting): { from: string; to: string } | undefined {
  if (!s.window && !s.end_by) return undefined;
  const to = s.end_by ?? s.window!.to;
  return { from: s.window?.from ?? to, to };
}

/** The "on" hours of the window that starts at `start`: weekend hours on Saturdays and Sundays (of the start, local). */
export function hoursFor(s: ScheduleSetting, start: EpochMs, timezone: string): number {
  if (s.hours === undefined) return 0;
  if (typeof s.hours === 'number') return s.hours;
  return DateTime.fromMillis(start, { zone: timezone }).weekday >= 6 ? s.hours.weekend : s.hours.weekday;
}

/** What the schema cannot express; paths relative to the schedule. */
export function scheduleProblems(s: ScheduleSetting): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (s.hours === undefined && s.max_rate === undefined) {
    issues.push({ path: [], message: 'give hours (daily "on" hours), max_rate (on at or below this import rate), or both' });
  }
  if (s.continuous && s.hours === undefined) issues.push({ path: ['continuous'], message: 'needs hours (the length of the block)' });
  if (s.window && s.end_by !== undefined) {
    const into = (minutesOf(s.end_by) - minutesOf(s.window.from) + DAY_MIN) % DAY_MIN;
    if (into === 0 || into > windowMinutes(s.window)) {
      issues.push({ path: ['end_by'], message: `${s.end_by} is not inside the window ${s.window.from}–${s.window.to}` });
    }
  }
  const win = runWindow(s);
  const length = win ? windowMinutes(win) / 60 : 24;
  const hours = typeof s.hours === 'object' ? [['weekday', s.hours.weekday], ['weekend', s.hours.weekend]] as const : s.hours !== undefined ? [[undefined, s.hours]] as const : [];
  for (const [key, h] of hours) {
    if (h > length + 1e-9) issues.push({ path: key ? ['hours', key] : ['hours'], message: `${h} h do not fit in the ${Math.round(length * 100) / 100} h window${win ? ` ${win.from}–${win.to}` : ''}` });
  }
  return issues;
}

const validateSchedule = new Ajv({ allErrors: false, strict: false }).compile(switchedScheduleSchema);

const fieldOf = (path: (string | number)[]) => path.join('.') || 'body';

function schemaMessage(e: ErrorObject): { field: string; message: string } {
  const path = e.instancePath.split('/').filter(Boolean);
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') {
    const allowed = path.length === 0 ? Object.keys(switchedScheduleSchema.properties as object) : path[0] === 'window' ? ['from', 'to'] : ['weekday', 'weekend'];
    return { field: fieldOf([...path, String(p.additionalProperty)]), message: `unknown field (valid: ${allowed.join(', ')})` };
  }
  if (e.keyword === 'required') return { field: fieldOf([...path, String(p.missingProperty)]), message: 'is required' };
  if (path[0] === 'hours' && path.length === 1) return { field: 'hours', message: 'must be a number of hours (0 to 24) or {"weekday": h, "weekend": h}' };
  if (e.keyword === 'pattern') return { field: fieldOf(path), message: 'must be "HH:MM" (local time)' };
  if (e.keyword === 'type' && path.length === 0) return { field: 'body', message: 'must be a JSON object' };
  return { field: fieldOf(path), message: e.message ?? 'is invalid' };
}

/** `PUT /devices/{id}/schedule`: the same schema and checks as the YAML key; a 400 names the field. */
export function parseScheduleBody(body: unknown): ScheduleSetting {
  if (!validateSchedule(body)) {
    const errors = validateSchedule.errors!;
    // hours given as an object: say what is wrong inside it, not that it is no number
    const hours = (body as { hours?: unknown }).hours;
    const inside = hours && typeof hours === 'object' ? errors.find((e) => e.schemaPath.includes('/anyOf/1/')) : undefined;
    const first = inside ?? errors[0];
    const { field, message } = schemaMessage(first);
    throw badRequest(field, message);
  }
  const s = body as ScheduleSetting;
  const problem = scheduleProblems(s)[0];
  if (problem) throw badRequest(fieldOf(problem.path), problem.message);
  return s;
}
