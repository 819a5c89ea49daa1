import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { fitThermalModel, ThermalFitError, type ThermalSample } from '../optimiser/thermal-fit.js';

/** A history file problem, located as `file:line`. */
export class HistoryFileError extends Error {}

/**
 * Reads a thermostat history CSV: a header, then one row per sample with `time` (RFC 3339 or Unix
 * ms), `indoor_c`, `outdoor_c`, and either `electric_w` or `running` (0/1, on/off, true/false,
 * heating/cooling/idle) times `maxElectricW`.
 */
export function readHistoryCsv(text: string, file: string, maxElectricW?: number): ThermalSample[] {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase());
  const col = (name: string) => header.indexOf(name);
  const missing = ['time', 'indoor_c', 'outdoor_c'].filter((n) => col(n) === -1);
  const power = col('electric_w');
  const running = col('running');
  if (power === -1 && running === -1) missing.push('electric_w or running');
  if (missing.length) throw new HistoryFileError(`${file}:1: the header lacks ${missing.join(', ')} (it has: ${header.join(', ') || 'nothing'})`);
  if (power === -1 && maxElectricW === undefined) throw new HistoryFileError(`${file}:1: a "running" column needs --max-electric-w (the unit's power while running)`);
  const out: ThermalSample[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    const cells = lines[i].split(',').map((c) => c.trim());
    const where = `${file}:${i + 1}`;
    const t = /^\d+$/.test(cells[col('time')] ?? '') ? Number(cells[col('time')]) : Date.parse(cells[col('time')] ?? '');
    if (!Number.isFinite(t)) throw new HistoryFileError(`${where}: time "${cells[col('time')] ?? ''}" is neither RFC 3339 nor Unix milliseconds`);
    const number = (name: string) => {
      const raw = cells[col(name)] ?? '';
      const v = Number(raw);
      if (raw === '' || !Number.isFinite(v)) throw new HistoryFileError(`${where}: ${name} "${raw}" is not a number`);
      return v;
    };
    let electricW: number;
    if (power !== -1) {
      electricW = number('electric_w');
      if (electricW < 0) throw new HistoryFileError(`${where}: electric_w ${electricW} is negative`);
    } else {
      const r = (cells[running] ?? '').toLowerCase();
      const on = ['1', 'on', 'true', 'heating', 'cooling', 'heat', 'cool'].includes(r);
      if (!on && !['0', 'off', 'false', 'idle'].includes(r)) throw new HistoryFileError(`${where}: running "${cells[running] ?? ''}" is not 0/1, on/off, true/false or heating/cooling/idle`);
      electricW = on ? maxElectricW! : 0;
    }
    out.push({ time: t, indoorC: number('indoor_c'), outdoorC: number('outdoor_c'), electricW });
  }
  return out;
}

const USAGE = 'usage: homeflex fit-thermal --history FILE.csv --mode heat|cool [--cop 3] [--max-electric-w W]\n';

/** `homeflex fit-thermal`: learns R, C and gains from a history file and prints them as device YAML keys. */
export async function fitThermalCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { history: { type: 'string' }, mode: { type: 'string' }, cop: { type: 'string' }, 'max-electric-w': { type: 'string' } } }));
  } catch (e) {
    err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!values.history || (values.mode !== 'heat' && values.mode !== 'cool')) {
    err(USAGE);
    return 2;
  }
  const cop = values.cop === undefined ? 3 : Number(values.cop);
  const maxW = values['max-electric-w'] === undefined ? undefined : Number(values['max-electric-w']);
  if (!(cop > 0) || (maxW !== undefined && !(maxW > 0))) {
    err(`--cop and --max-electric-w must be positive numbers\n${USAGE}`);
    return 2;
  }
  let text: string;
  try {
    text = readFileSync(values.history, 'utf8');
  } catch (e) {
    err(`cannot read ${values.history}: ${(e as NodeJS.ErrnoException).code ?? e}\n`);
    return 1;
  }
  try {
    const history = readHistoryCsv(text, basename(values.history), maxW);
    const fit = fitThermalModel(history, { mode: values.mode, cop });
    const r = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
    out(
      `# fitted on ${fit.samples} samples in ${fit.windows} windows; residual RMS ${r(fit.rmseC, 3)} °C; time constant ${r(fit.tauH, 2)} h\n` +
        `r_k_per_kw: ${r(fit.rKPerKw, 3)}\nc_kwh_per_k: ${r(fit.cKwhPerK, 3)}\ngains_w: ${Math.round(fit.gainsW)}\ncop: ${cop}\n` +
        (maxW !== undefined ? `max_electric_w: ${maxW}\n` : ''),
    );
    return 0;
  } catch (e) {
    if (e instanceof HistoryFileError || e instanceof ThermalFitError) {
      err(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
