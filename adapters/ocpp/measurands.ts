import type { EpochMs } from '../../src/api/index.js';

/** What one MeterValues entry (one timestamp) says about the charger, in hub units. */
export interface ChargerSample {
  time?: EpochMs;
  /** Energy.Active.Import.Register (Wh). */
  energyWh?: number;
  /** Power.Active.Import (W). */
  powerW?: number;
  /** Current.Import per phase (A). */
  currentA: { L1?: number; L2?: number; L3?: number };
  /** State of charge of the car (%). */
  socPct?: number;
  /** The reading's context (Sample.Periodic, Transaction.Begin, ...). */
  context?: string;
}

export interface SampleReading {
  sample: ChargerSample;
  /** What was wrong or odd in the frame, for the log. */
  problems: string[];
}

/** How a charger labels the energy register when its label is known to be wrong. */
export type EnergyUnitOverride = 'Wh' | 'kWh' | undefined;

const PREFIX: Record<string, number> = { k: 1000, M: 1_000_000, m: 0.001 };
/** Bounds of believable charger values: 1 TWh of register, 1 MW, 1000 A per phase. */
const MAX_REGISTER_WH = 1e12;
const MAX_POWER_W = 1e6;
const MAX_CURRENT_A = 1000;

/** Splits "kWh" into (1000, "Wh"); unknown units keep factor 1. */
function unitFactor(unit: string): { factor: number; base: string } {
  const u = unit.trim();
  const m = /^([kMm])(Wh|W|A|V|VA|var|varh)$/.exec(u);
  if (m) return { factor: PREFIX[m[1]], base: m[2] };
  return { factor: 1, base: u };
}

/** "L1-N" and "L1" are the same phase for our purposes; line-to-line readings are left out. */
function phaseOf(phase: unknown): 'L1' | 'L2' | 'L3' | 'N' | undefined | 'other' {
  if (phase === undefined || phase === null || phase === '') return undefined;
  const m = /^(L1|L2|L3)(-N)?$/.exec(String(phase).trim());
  if (m) return m[1] as 'L1' | 'L2' | 'L3';
  return String(phase).trim() === 'N' ? 'N' : 'other';
}

/** Real chargers send " 1234.5 ", "1234,5" or numbers where strings are due. */
function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  let s = value.trim();
  if (s.includes(',') && !s.includes('.')) s = s.replace(',', '.');
  if (s === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

function timeOf(ts: unknown): EpochMs | undefined {
  if (typeof ts !== 'string') return undefined;
  const t = Date.parse(ts);
  return Number.isFinite(t) ? t : undefined;
}

interface RawValue {
  value: number;
  measurand: string;
  phase: ReturnType<typeof phaseOf>;
  /** Unit without prefix, value already scaled to it. */
  unit: string;
  unitGiven: boolean;
  context?: string;
  location?: string;
}

/**
 * Combines the values of one timestamp: totals win over per-phase values, per-phase energy and
 * power registers are summed when no total is sent.
 */
function combine(values: RawValue[], problems: string[]): ChargerSample {
  const sample: ChargerSample = { currentA: {} };
  const pick = (measurand: string, unit: string) => {
    const of = values.filter((v) => v.measurand === measurand && (v.unit === unit || !v.unitGiven));
    const total = of.find((v) => v.phase === undefined);
    if (total) return total.value;
    const phases = of.filter((v) => v.phase === 'L1' || v.phase === 'L2' || v.phase === 'L3');
    if (phases.length) return phases.reduce((a, v) => a + v.value, 0);
    return undefined;
  };
  // scaling kWh by 1000 leaves binary noise (12.3456 kWh → 12345.599999999999 Wh): keep mWh
  const mwh = (v: number | undefined) => (v === undefined ? undefined : Math.round(v * 1000) / 1000);
  sample.energyWh = mwh(pick('Energy.Active.Import.Register', 'Wh'));
  sample.powerW = mwh(pick('Power.Active.Import', 'W'));
  for (const v of values) {
    if (v.measurand === 'Current.Import' && (v.unit === 'A' || !v.unitGiven)) {
      const ph = v.phase === undefined ? 'L1' : v.phase;
      if (ph === 'L1' || ph === 'L2' || ph === 'L3') sample.currentA[ph] = v.value;
    }
    if (v.measurand === 'SoC') {
      if (v.unit === 'Percent' || !v.unitGiven) sample.socPct = v.value;
      else problems.push(`SoC in unit "${v.unit}" ignored`);
    }
  }
  for (const v of values) {
    if (v.measurand === 'Energy.Active.Import.Register' && v.unitGiven && v.unit !== 'Wh') problems.push(`energy register in unit "${v.unit}" ignored`);
  }
  if (sample.energyWh !== undefined && sample.energyWh < 0) {
    problems.push(`negative energy register ${sample.energyWh} Wh ignored`);
    sample.energyWh = undefined;
  }
  // numbers no charger can mean (a register past 1 TWh, a megawatt, a SoC over 100 %) are garbage, not readings
  const beyond = (v: number | undefined, limit: number) => v !== undefined && !(Math.abs(v) <= limit);
  if (beyond(sample.energyWh, MAX_REGISTER_WH)) {
    problems.push(`energy register ${sample.energyWh} Wh is beyond any meter; ignored`);
    sample.energyWh = undefined;
  }
  if (beyond(sample.powerW, MAX_POWER_W)) {
    problems.push(`power ${sample.powerW} W is beyond any charger; ignored`);
    sample.powerW = undefined;
  }
  for (const ph of ['L1', 'L2', 'L3'] as const) {
    if (beyond(sample.currentA[ph], MAX_CURRENT_A)) {
      problems.push(`current ${sample.currentA[ph]} A on ${ph} is beyond any charger; ignored`);
      delete sample.currentA[ph];
    }
  }
  if (sample.socPct !== undefined && !(sample.socPct >= 0 && sample.socPct <= 100)) {
    problems.push(`SoC ${sample.socPct} % ignored`);
    sample.socPct = undefined;
  }
  sample.context = values.find((v) => v.context)?.context;
  return sample;
}

/** The unit a sampled value has when the charger names none. */
const defaultUnit = (measurand: string) => (measurand === 'SoC' ? 'Percent' : measurand.startsWith('Energy') ? 'Wh' : measurand.startsWith('Power') ? 'W' : 'A');

/**
 * The steps both OCPP versions share: one sample per `meterValue` entry, its timestamp checked, each
 * sampled value's number and measurand read; `scale` (per version) turns the rest into a raw value
 * or `undefined` to skip it.
 */
function readEntries(
  meterValue: unknown[],
  scale: (s: Record<string, unknown>, value: number, measurand: string, problems: string[]) => RawValue | undefined,
): SampleReading[] {
  return meterValue.map((entry) => {
    const problems: string[] = [];
    const e = (entry ?? {}) as { timestamp?: unknown; sampledValue?: unknown };
    const time = timeOf(e.timestamp);
    if (time === undefined) problems.push(`timestamp ${JSON.stringify(e.timestamp)} is not a date-time`);
    const raws: RawValue[] = [];
    for (const sv of Array.isArray(e.sampledValue) ? e.sampledValue : []) {
      const s = (sv ?? {}) as Record<string, unknown>;
      const value = numberOf(s.value);
      const measurand = typeof s.measurand === 'string' && s.measurand.trim() ? s.measurand.trim() : 'Energy.Active.Import.Register';
      if (value === undefined) {
        problems.push(`${measurand} value ${JSON.stringify(s.value)} is not a number`);
        continue;
      }
      const raw = scale(s, value, measurand, problems);
      if (raw) raws.push(raw);
    }
    const sample = combine(raws, problems);
    sample.time = time;
    return { sample, problems };
  });
}

/** OCPP 1.6 `meterValue[]` → one sample per timestamp, in the order sent. */
export function readMeterValues16(meterValue: unknown, energyUnit?: EnergyUnitOverride): SampleReading[] {
  if (!Array.isArray(meterValue)) return [{ sample: { currentA: {} }, problems: ['meterValue is not a list'] }];
  return readEntries(meterValue, (s, value, measurand, problems) => {
    if (typeof s.value !== 'string') problems.push(`${measurand} value sent as ${typeof s.value}, not as a string`);
    if (s.format === 'SignedData') return undefined;
    const given = typeof s.unit === 'string' && s.unit.trim() !== '';
    let { factor, base } = unitFactor(given ? String(s.unit) : defaultUnit(measurand));
    // a charger known to send kWh under the label "Wh" (or the reverse)
    if (measurand === 'Energy.Active.Import.Register' && energyUnit) ({ factor, base } = unitFactor(energyUnit));
    const phase = phaseOf(s.phase);
    if (phase === 'other') return undefined;
    return { value: value * factor, measurand, phase, unit: base, unitGiven: given || !!energyUnit, context: typeof s.context === 'string' ? s.context : undefined, location: typeof s.location === 'string' ? s.location : undefined };
  });
}

/** OCPP 2.0.1 `meterValue[]` (numbers, unitOfMeasure {unit, multiplier}) → one sample per timestamp. */
export function readMeterValues201(meterValue: unknown, energyUnit?: EnergyUnitOverride): SampleReading[] {
  if (!Array.isArray(meterValue)) return [];
  return readEntries(meterValue, (s, value, measurand) => {
    const uom = (s.unitOfMeasure ?? {}) as { unit?: unknown; multiplier?: unknown };
    const given = typeof uom.unit === 'string' && uom.unit.trim() !== '';
    let { factor, base } = unitFactor(given ? String(uom.unit) : defaultUnit(measurand));
    if (measurand === 'Energy.Active.Import.Register' && energyUnit) ({ factor, base } = unitFactor(energyUnit));
    const multiplier = typeof uom.multiplier === 'number' && Number.isInteger(uom.multiplier) ? uom.multiplier : 0;
    const phase = phaseOf(s.phase);
    if (phase === 'other') return undefined;
    return { value: value * factor * 10 ** multiplier, measurand, phase, unit: base, unitGiven: true, context: typeof s.context === 'string' ? s.context : undefined };
  });
}
