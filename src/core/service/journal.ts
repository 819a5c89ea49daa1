import { fstatSync } from 'node:fs';

/**
 * Log lines for systemd's journal. Under systemd, stdout is a stream to journald, which reads a
 * leading `<N>` as the entry's syslog priority (PRIORITY=N) and the rest as MESSAGE; the pino
 * fields follow the message as `key=value` so `journalctl -u homeflex` reads like a log, and
 * `journalctl -p warning` filters by the hub's own levels.
 */

/** pino's numeric level → syslog priority (journald's PRIORITY field). */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2; // fatal → crit
  if (level >= 50) return 3; // error → err
  if (level >= 40) return 4; // warn → warning
  if (level >= 30) return 6; // info → info
  return 7; // debug, trace → debug
}

const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v']);

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  if (value && typeof value === 'object') {
    const err = value as { type?: string; message?: string };
    // a serialised error: its message says more in a log line than the whole stack object
    if (typeof err.message === 'string' && typeof err.type === 'string') return JSON.stringify(`${err.type}: ${err.message}`);
    return JSON.stringify(value);
  }
  return String(value);
}

/** One pino JSON line → one journal line (`<priority>message key=value …`). */
export function journalLine(jsonLine: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return `<6>${jsonLine.trimEnd()}\n`;
  }
  const priority = syslogPriority(typeof entry.level === 'number' ? entry.level : 30);
  const fields = Object.entries(entry)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${fieldText(v)}`);
  const msg = typeof entry.msg === 'string' ? entry.msg.replace(/\n/g, ' ') : '';
  return `<${priority}>${[msg, ...fields].filter(Boolean).join(' ')}\n`;
}

/** A writable that turns pino's JSON lines into journal lines on `dest`. */
export function journalStream(dest: NodeJS.WritableStream): NodeJS.WritableStream {
  return {
    write(chunk: string | Buffer) {
      const text = chunk.toString();
      return dest.write(text.split('\n').filter(Boolean).map(journalLine).join(''));
    },
  } as NodeJS.WritableStream;
}

/** True when stdout is the journal stream systemd set up for this service (systemd.exec: $JOURNAL_STREAM). */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  const [dev, ino] = js.split(':');
  try {
    const st = fstatSync(1);
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}
