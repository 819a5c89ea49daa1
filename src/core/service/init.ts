import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { IANAZone } from 'luxon';
import type { HubConfig } from '../config/schema.js';

/** The answers that make a first site file. */
export interface InitAnswers {
  siteId: string;
  name: string;
  timezone: string;
  currency: string;
  /** A fixed rate ("0.30") or a day-ahead bidding zone ("DE-LU") priced through Energy-Charts. */
  importTariff: string;
  /** Fees and taxes added to the market price per kWh, and VAT in %, for a day-ahead import tariff. */
  fees: number;
  vat: number;
  exportRate: number;
  /** 127.0.0.1 (this machine only) or 0.0.0.0 (the LAN, with a token). */
  host: string;
  port: number;
  storageDir: string;
}

interface Question<K extends keyof InitAnswers> {
  key: K;
  flag: string;
  ask: string;
  fallback: () => string;
  /** The answer as stored, or an error message to ask again with. */
  parse(text: string): InitAnswers[K] | { error: string };
}

const BIDDING_ZONE = /^[A-Z]{2}(-[A-Z0-9]{1,4})?$/;
const num = (min: number, max: number, what: string) => (t: string) => {
  const v = Number(t.replace(',', '.'));
  return Number.isFinite(v) && v >= min && v <= max ? v : { error: `${what} must be a number from ${min} to ${max}` };
};

const systemZone = () => {
  const z = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return z && IANAZone.isValidZone(z) && z !== 'UTC' ? z : 'Europe/Berlin';
};

const QUESTIONS: Question<keyof InitAnswers>[] = [
  { key: 'siteId', flag: 'site-id', ask: 'Site id (used in the API as location_id)', fallback: () => 'home', parse: (t) => (/^[a-z0-9][a-z0-9_-]{0,62}$/.test(t) ? t : { error: 'use lower-case letters, digits, - and _ (at most 63)' }) },
  { key: 'name', flag: 'name', ask: 'Site name', fallback: () => 'Home', parse: (t) => (t.length > 0 && t.length <= 100 ? t : { error: 'give 1 to 100 characters' }) },
  { key: 'timezone', flag: 'timezone', ask: 'Time zone (IANA, e.g. Europe/Berlin)', fallback: systemZone, parse: (t) => (IANAZone.isValidZone(t) ? t : { error: `"${t}" is not an IANA time zone (e.g. Europe/Berlin, Europe/London)` }) },
  { key: 'currency', flag: 'currency', ask: 'Currency (ISO 4217)', fallback: () => 'EUR', parse: (t) => (/^[A-Z]{3}$/.test(t.toUpperCase()) ? t.toUpperCase() : { error: 'three letters, e.g. EUR, GBP, SEK' }) },
  { key: 'importTariff', flag: 'import', ask: 'Import tariff: a fixed rate per kWh (e.g. 0.30), or a day-ahead bidding zone (e.g. DE-LU, AT, NL, BE)', fallback: () => '0.30', parse: (t) => (BIDDING_ZONE.test(t.toUpperCase()) ? t.toUpperCase() : Number.isFinite(Number(t.replace(',', '.'))) && Number(t.replace(',', '.')) >= 0 && Number(t.replace(',', '.')) < 100 ? String(Number(t.replace(',', '.'))) : { error: 'a rate such as 0.30, or a bidding zone such as DE-LU' }) },
  { key: 'fees', flag: 'fees', ask: 'Fees and levies added to the market price, per kWh (day-ahead tariffs)', fallback: () => '0.17', parse: num(0, 10, 'fees') },
  { key: 'vat', flag: 'vat', ask: 'VAT in % (day-ahead tariffs)', fallback: () => '19', parse: num(0, 100, 'VAT') },
  { key: 'exportRate', flag: 'export', ask: 'Export (feed-in) rate per kWh, 0 for none', fallback: () => '0.08', parse: num(0, 100, 'the export rate') },
  { key: 'host', flag: 'host', ask: 'Serve the API and dashboard to this machine only (127.0.0.1) or the LAN (0.0.0.0)', fallback: () => '127.0.0.1', parse: (t) => (t === '127.0.0.1' || t === '0.0.0.0' || t === '::1' || t === '::' ? t : { error: 'answer 127.0.0.1 or 0.0.0.0' }) },
  { key: 'port', flag: 'port', ask: 'HTTP port', fallback: () => '8080', parse: (t) => (/^\d+$/.test(t) && Number(t) >= 1 && Number(t) <= 65535 ? Number(t) : { error: 'a port from 1 to 65535' }) },
  { key: 'storageDir', flag: 'storage', ask: 'Where to keep data (relative to the site file, or absolute)', fallback: () => './data', parse: (t) => (t.length ? t : { error: 'give a directory' }) },
];

const isZone = (t: string) => BIDDING_ZONE.test(t);

/** The commented site file. Secrets never go into it: the token is read from the environment. */
export function siteYaml(a: InitAnswers, tokenVar: string | undefined): string {
  const yamlString = (s: string) => JSON.stringify(s);
  const importLine = isZone(a.importTariff)
    ? `  # day-ahead prices of bidding zone ${a.importTariff} (EPEX via Energy-Charts), turned into your rate:\n  # rate = (market price + fees) × (1 + VAT/100)\n  import: { type: energy_charts, bzn: ${a.importTariff}, surcharge: { fixed: ${a.fees}, vat: ${a.vat} },\n            # used while the price service cannot be reached\n            fallback: { type: fixed, rate: ${Math.round((0.1 + a.fees) * (1 + a.vat / 100) * 100) / 100} } }`
    : `  import: { type: fixed, rate: ${a.importTariff} }\n  # other types: time_of_use (rates by time of day), file (a CSV/JSON series), energy_charts, entsoe,\n  # awattar, nordpool, octopus, tibber (day-ahead and supplier prices): see docs/tariffs.md`;
  return `# homeflex site file, written by \`homeflex init\`. Check it with: homeflex check-config ${'<this file>'}
# Every key is described by the JSON Schema (homeflex schema); unknown keys are errors.
site:
  id: ${a.siteId}   # location_id in the HTTP API
  name: ${yamlString(a.name)}
  timezone: ${a.timezone}   # days, months and "20:00" are resolved in this zone
  currency: ${a.currency}
  # grid: { max_import_w: 17000, max_export_w: 7000 }   # the connection's limits, if the plan must respect them

http:
  host: ${a.host}${a.host === '127.0.0.1' || a.host === '::1' ? '   # this machine only; 0.0.0.0 serves the LAN (needs a token)' : ''}
  port: ${a.port}
${tokenVar ? `  token: \${${tokenVar}}   # read from the environment (the service's environment file), never written here\n` : `  # token: \${HOMEFLEX_TOKEN}   # needed for writes from scripts, and for any access beyond this machine\n`}
storage:
  dir: ${yamlString(a.storageDir)}

tariffs:
${importLine}
${a.exportRate > 0 ? `  export: { type: fixed, rate: ${a.exportRate} }` : '  # export: { type: fixed, rate: 0.08 }   # a feed-in tariff, if you have one'}

# connections:                   # shared links the devices use
#   ocpp: { port: 9000 }          # chargers dial in to ws://<this host>:9000/<identity>
#   mqtt: { url: mqtt://127.0.0.1:1883 }
#   modbus: [ { id: lan, tcp: { host: 192.168.1.20, port: 502 } } ]

devices: []
# Examples (one per line; see each adapter's README for its keys):
#   - { id: ev, adapter: ocpp, identity: CP001, password: \${CP001_PASSWORD}, target: { energy_wh: 20000, leave_time: "07:30" } }
#   - { id: battery, adapter: modbus, connection: lan, unit: 1, profile: sunspec, capacity_wh: 10000 }
#   - { id: dishwasher, adapter: tasmota, topic: tasmota_6A1B2C, schedule: { hours: 2, window: { from: "20:00", to: "06:00" } } }
`;
}

export interface InitIo {
  out(text: string): void;
  err(text: string): void;
  input: NodeJS.ReadableStream;
  /** Validates the written text as check-config would (throws ConfigError). */
  check(text: string, file: string, env: NodeJS.ProcessEnv): HubConfig;
}

/** Reads answers line by line (a terminal or a pipe), asking again after a bad one. */
function lineReader(input: NodeJS.ReadableStream) {
  const rl = createInterface({ input, terminal: false });
  const lines: string[] = [];
  const waiting: ((line: string | undefined) => void)[] = [];
  let closed = false;
  rl.on('line', (l) => (waiting.length ? waiting.shift()!(l) : lines.push(l)));
  rl.on('close', () => {
    closed = true;
    while (waiting.length) waiting.shift()!(undefined);
  });
  return {
    next: () => new Promise<string | undefined>((res) => (lines.length ? res(lines.shift()) : closed ? res(undefined) : waiting.push(res))),
    close: () => rl.close(),
  };
}

/**
 * `homeflex init`: asks the few questions of a first site (each can be given as a flag; --yes takes
 * the defaults for the rest) and writes a commented site file that passes check-config, plus an
 * environment file with a generated API token when the hub serves the LAN.
 */
export async function initCommand(argv: string[], io: InitIo): Promise<number> {
  const options: Record<string, { type: 'string' | 'boolean'; default?: string | boolean }> = {
    out: { type: 'string', default: 'site.yaml' },
    yes: { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
  };
  for (const q of QUESTIONS) options[q.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    io.err(`${(err as Error).message}\nusage: homeflex init [--out site.yaml] [--yes] [--force] ${QUESTIONS.map((q) => `[--${q.flag} …]`).join(' ')}\n`);
    return 2;
  }
  const out = resolve(String(values.out));
  if (existsSync(out) && !values.force) {
    io.err(`${out} exists; choose another --out, or --force to replace it\n`);
    return 1;
  }
  const answers = {} as Record<keyof InitAnswers, unknown>;
  const reader = values.yes ? undefined : lineReader(io.input);
  try {
    for (const q of QUESTIONS) {
      if ((q.key === 'fees' || q.key === 'vat') && !isZone(String(answers.importTariff))) {
        answers[q.key] = q.parse(q.fallback());
        continue;
      }
      const given = values[q.flag];
      if (typeof given === 'string') {
        const v = q.parse(given);
        if (typeof v === 'object' && v && 'error' in v) {
          io.err(`--${q.flag} ${given}: ${v.error}\n`);
          return 2;
        }
        answers[q.key] = v;
        continue;
      }
      if (!reader) {
        answers[q.key] = q.parse(q.fallback());
        continue;
      }
      for (;;) {
        io.out(`${q.ask} [${q.fallback()}]: `);
        const line = await reader.next();
        if (line === undefined) {
          io.err('\ninput ended before every question was answered (pass --yes to take the defaults)\n');
          return 1;
        }
        const v = q.parse(line.trim() || q.fallback());
        if (typeof v === 'object' && v && 'error' in v) {
          io.out(`  ${v.error}\n`);
          continue;
        }
        answers[q.key] = v;
        break;
      }
    }
  } finally {
    reader?.close();
  }
  const a = answers as unknown as InitAnswers;
  const beyondLoopback = a.host !== '127.0.0.1' && a.host !== '::1';
  const tokenVar = beyondLoopback ? 'HOMEFLEX_TOKEN' : undefined;
  const token = beyondLoopback ? randomBytes(24).toString('base64url') : undefined;
  const text = siteYaml(a, tokenVar);
  // what is written must pass check-config, with the generated secret in the environment
  io.check(text, out, { ...process.env, ...(token ? { HOMEFLEX_TOKEN: token } : {}) });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text, { mode: 0o644 });
  io.out(`wrote ${out}\n`);
  if (token) {
    const envFile = join(dirname(out), `${basename(out).replace(/\.ya?ml$/, '')}.env`);
    writeFileSync(envFile, `# secrets for ${basename(out)}: keep this file readable by root only\nHOMEFLEX_TOKEN=${token}\n`, { mode: 0o600 });
    io.out(`wrote ${envFile} (the API token; the service reads it: homeflex install-service --environment-file ${envFile})\n`);
  }
  io.out(`next:  homeflex check-config ${out}${token ? `   (with HOMEFLEX_TOKEN set)` : ''}\n       homeflex start --config ${out}\n       sudo homeflex install-service --config ${out}\n`);
  return 0;
}
