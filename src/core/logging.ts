import { pino, type Logger as PinoLogger } from 'pino';
import { journalStream, stdoutIsJournal } from './service/journal.js';

/** Paths whose values never reach a log line. */
export const REDACT_PATHS = [
  'password', '*.password', '*.*.password', 'token', '*.token', '*.*.token',
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'api_key', '*.api_key', 'apiKey', '*.apiKey', 'secret', '*.secret',
];

export interface LogOptions {
  level?: string;
  format?: 'auto' | 'pretty' | 'json' | 'journal';
  /** Write here instead of stdout (tests). */
  destination?: NodeJS.WritableStream;
  /** Literal secrets (tokens, passwords from the YAML) scrubbed from every line. */
  secrets?: string[];
}

/** Replaces every occurrence of a known secret in the serialised line. */
function scrubbing(dest: NodeJS.WritableStream, secrets: string[]): NodeJS.WritableStream {
  const list = secrets.filter((s) => s && s.length >= 4);
  if (!list.length) return dest;
  return {
    write(chunk: string | Buffer) {
      let line = chunk.toString();
      for (const s of list) line = line.split(s).join('[Redacted]');
      return dest.write(line);
    },
  } as NodeJS.WritableStream;
}

export function createLogger(options: LogOptions = {}): PinoLogger {
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && !options.destination && process.stdout.isTTY && !stdoutIsJournal());
  const base = { level: options.level ?? 'info', redact: { paths: REDACT_PATHS, censor: '[Redacted]' } };
  if (pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  let dest = options.destination ?? (pino.destination({ dest: 1, sync: false }) as unknown as NodeJS.WritableStream);
  // under systemd, stdout goes to the journal: priorities as journald reads them
  if (format === 'journal' || (format === 'auto' && !options.destination && stdoutIsJournal())) dest = journalStream(dest);
  return pino(base, scrubbing(dest, options.secrets ?? []));
}
