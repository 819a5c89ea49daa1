import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import type { PriceSeries, SiteInfo, TimeWindow } from '../../src/api/index.js';
import { builtinCatalog } from '../../src/core/catalog.js';
import { hubChecks } from '../../src/core/config/checks.js';
import { ConfigError, formatProblem, parseConfig } from '../../src/core/config/load.js';
import { calendarFractions, computeBill, QUARTER_MS, type QuarterFlows } from '../../src/metering/bill.js';
import { billTerms, gridFeeSeries, levySpans, type BillConfig } from '../../src/tariff/bill-config.js';
import { capacityChargeOfMonth } from '../../src/tariff/bill-model.js';
import { composeComponents, composedExport, composedImport } from '../../src/tariff/compose.js';

/**
 * Worked examples of the composed tariff and the bill (issue 17), each figure checked by hand in
 * the comments. Money is rounded to the cent per line, as an invoice; net, VAT and total are sums
 * of the rounded lines.
 */

const HOUR = 3_600_000;
const site = (timezone: string, currency = 'EUR'): SiteInfo => ({ id: 'home', name: 'Home', timezone, currency }) as SiteInfo;
const local = (iso: string, zone: string) => DateTime.fromISO(iso, { zone }).toMillis();

/** Hourly slots at one rate, or a rate from a function of the slot start. */
const hourly = (w: TimeWindow, rate: number | ((t: number) => number)): PriceSeries => {
  const out: PriceSeries = [];
  for (let t = w.start; t < w.end; t += HOUR) out.push({ start: t, end: t + HOUR, rate: typeof rate === 'number' ? rate : rate(t), confidence: 1 });
  return out;
};

/** Quarter-hour flows from a power function (kW at the quarter's start). */
const flowsOf = (w: TimeWindow, importKw: (t: number) => number, exportKw: (t: number) => number = () => 0): QuarterFlows => {
  const n = (w.end - w.start) / QUARTER_MS;
  const f = { start: w.start, importWh: new Float64Array(n), exportWh: new Float64Array(n) };
  for (let k = 0; k < n; k++) {
    const t = w.start + k * QUARTER_MS;
    f.importWh[k] = importKw(t) * 250; // kW × 0.25 h × 1000
    f.exportWh[k] = exportKw(t) * 250;
  }
  return f;
};

function billOf(config: BillConfig, s: SiteInfo, window: TimeWindow, importEnergy: PriceSeries, exportEnergy: PriceSeries, flows: QuarterFlows, driversAt?: Parameters<typeof computeBill>[0]['driversAt']) {
  const terms = billTerms(config, s);
  const components = composeComponents(window, importEnergy, exportEnergy, gridFeeSeries(config.grid_fees ?? [], s)(window), levySpans(config.levies ?? [], window, s.timezone), terms);
  return computeBill({ window, terms, components, flows, driversAt });
}

describe('a Flemish month with a 4.2 kW peak (Fluvius capacity tariff)', () => {
  const s = site('Europe/Brussels');
  const jan = { start: local('2026-01-01T00:00', s.timezone), end: local('2026-02-01T00:00', s.timezone) };
  const peakAt = local('2026-01-14T18:00', s.timezone);
  const secondAt = local('2026-01-20T19:00', s.timezone);
  // 0.5 kW all month; one quarter hour at 4.2 kW (the EV at 3.6 kW on top of the house), one at 4.0 kW
  const kw = (t: number) => (t === peakAt ? 4.2 : t === secondAt ? 4.0 : 0.5);
  const config: BillConfig = {
    vat: 6,
    grid_fees: [{ operator: 'Fluvius Antwerpen', rates: [{ from: '00:00', to: '24:00', rate: 0.05, window: 'all' }] }],
    levies: [{ name: 'excise', rate: 0.02 }],
    standing_charges: [{ name: 'data management', amount: 1.5, per: 'month' }],
    // 40.40 €/kW-year: Fluvius' 2023 Flanders average, excl. VAT; the 11 months before January as the operator reported them
    capacity_charge: {
      type: 'monthly_peak',
      price_per_kw_year: 40.4,
      prior_peaks_kw: { '2025-02': 3.0, '2025-03': 2.0, '2025-04': 3.6, '2025-05': 2.8, '2025-06': 2.5, '2025-07': 2.2, '2025-08': 2.6, '2025-09': 3.1, '2025-10': 3.3, '2025-11': 3.9, '2025-12': 4.0 },
    },
  };
  const drivers = (start: number) => (start === peakAt ? [{ deviceId: 'heat-pump', kwh: 0.075 }, { deviceId: 'ev', kwh: 0.9 }] : []);
  const bill = billOf(config, s, jan, hourly(jan, 0.12), [], flowsOf(jan, kw), drivers);

  it('bills the month to the cent', () => {
    // energy: 744 h × 0.5 kW = 372 kWh, + (4.2 − 0.5) × 0.25 = 0.925, + (4.0 − 0.5) × 0.25 = 0.875 → 373.8 kWh
    expect(bill.importKwh).toBeCloseTo(373.8, 9);
    // energy 373.8 × 0.12 = 44.856 → 44.86; grid fee 373.8 × 0.05 = 18.69; excise 373.8 × 0.02 = 7.476 → 7.48
    expect(bill.energy).toEqual([{ label: 'all', kwh: 373.8, rate: 0.12, amount: 44.86 }]);
    expect(bill.gridFees).toEqual([{ label: 'all', kwh: 373.8, rate: 0.05, amount: 18.69 }]);
    expect(bill.levies).toEqual([{ label: 'excise', kwh: 373.8, rate: 0.02, amount: 7.48 }]);
    expect(bill.standing).toEqual([{ label: 'data management', count: 1, per: 'month', rate: 1.5, amount: 1.5 }]);
    // capacity: 2.0 and 2.2 count as the 2.5 kW minimum: 3.0+2.5+3.6+2.8+2.5+2.5+2.6+3.1+3.3+3.9+4.0 = 33.8, + 4.2 = 38.0 kW
    // mean 38.0 / 12 = 3.1667 kW; 40.40 / 12 × 3.1667 = 40.4 × 38 / 144 = 10.6611 → 10.66
    expect(bill.capacity).toHaveLength(1);
    expect(bill.capacity[0].amount).toBe(10.66);
    expect(bill.capacity[0].outcome.measureKw).toBeCloseTo(38 / 12, 9);
    expect(bill.capacity[0].outcome.months!['2025-03']).toBe(2.5);
    // net 44.86 + 18.69 + 7.48 + 1.50 + 10.66 = 83.19; VAT 6 % = 4.9914 → 4.99; total 88.18
    expect(bill.net).toBe(83.19);
    expect(bill.vat).toBe(4.99);
    expect(bill.total).toBe(88.18);
  });

  it('names the peak that set the charge, when, and the device that drove it', () => {
    const { outcome, drivers: d } = bill.capacity[0];
    expect(outcome.monthKw).toBe(4.2);
    expect(outcome.peaks).toEqual([{ kw: 4.2, start: peakAt, end: peakAt + QUARTER_MS }]);
    // the EV drew 0.9 of the quarter's 4.2 × 0.25 = 1.05 kWh: 0.857143
    expect(d).toEqual([{ peakStart: peakAt, deviceId: 'ev', kwh: 0.9, share: 0.857143 }]);
  });

  it('a month below the minimum counts 2.5 kW', () => {
    const c = billTerms({ capacity_charge: { type: 'monthly_peak', price_per_kw_year: 40.4, average_months: 1 } }, s).capacity!;
    // only this month (average_months 1): max(2.5, 1.8) = 2.5 kW; 40.4 / 12 × 2.5 = 8.4167
    expect(capacityChargeOfMonth(c, '2026-01', [{ kw: 1.8, start: 0, end: QUARTER_MS }]).charge).toBeCloseTo(8.416667, 6);
  });
});

describe('a Norwegian month whose three top daily peaks land in step 2 (kapasitetsledd)', () => {
  const s = site('Europe/Oslo', 'NOK');
  const feb = { start: local('2026-02-01T00:00', s.timezone), end: local('2026-03-01T00:00', s.timezone) };
  const at = (iso: string) => local(iso, s.timezone);
  const extra = new Map<number, number>();
  const hour = (iso: string, kw: number) => [0, 1, 2, 3].forEach((q) => extra.set(at(iso) + q * QUARTER_MS, kw));
  hour('2026-02-03T17:00', 4.0); // day 3: 4.0 kW for an hour
  hour('2026-02-03T20:00', 3.8); //        and 3.8 kW later the same day (one day counts once)
  hour('2026-02-10T08:00', 2.2);
  hour('2026-02-20T23:00', 2.0); // at night
  extra.set(at('2026-02-25T12:00'), 8.0); // 8 kW for 15 minutes: the hour's mean is (8 + 1 + 1 + 1) / 4 = 2.75 kW
  const kw = (t: number) => extra.get(t) ?? 1.0;
  // steps and the day/night energy fee (energiledd) of a published Norwegian tariff (incl. VAT and taxes, NOK)
  const config: BillConfig = {
    grid_fees: [{ operator: 'Hallingdal', rates: [{ from: '06:00', to: '22:00', rate: 0.5426, window: 'day' }, { from: '22:00', to: '06:00', rate: 0.4801, window: 'night' }] }],
    capacity_charge: {
      type: 'daily_peaks_step',
      steps: [{ up_to_kw: 2, per_month: 275 }, { up_to_kw: 5, per_month: 375 }, { up_to_kw: 10, per_month: 450 }, { up_to_kw: 15, per_month: 525 }, { up_to_kw: 20, per_month: 725 }, { per_month: 1225 }],
    },
  };
  const bill = billOf(config, s, feb, hourly(feb, 1.0), [], flowsOf(feb, kw));

  it('takes the three highest daily hourly peaks on different days and bills step 2–5 kW', () => {
    // daily tops: 3 Feb 4.0, 25 Feb 2.75, 10 Feb 2.2 (20 Feb 2.0 is fourth); mean (4.0 + 2.75 + 2.2) / 3 = 2.98333 kW → 2–5 kW: 375
    const c = bill.capacity[0];
    expect(c.outcome.peaks.map((p) => p.kw)).toEqual([4.0, 2.75, 2.2]);
    expect(c.outcome.measureKw).toBeCloseTo(8.95 / 3, 9);
    expect(c.outcome.step).toEqual({ fromKw: 2, toKw: 5, perMonth: 375 });
    expect(c.amount).toBe(375);
  });

  it('bills the month to the øre', () => {
    // 672 h × 1 kW = 672 kWh, + 3.0 + 2.8 + 1.2 + 1.0 + 7 × 0.25 = 681.75 kWh
    // day (06–22): 28 × 16 = 448 + 3.0 + 2.8 + 1.2 + 1.75 = 456.75 kWh × 0.5426 = 247.83255 → 247.83
    // night: 28 × 8 = 224 + 1.0 = 225 kWh × 0.4801 = 108.0225 → 108.02
    expect(bill.energy.reduce((a, l) => a + l.amount, 0)).toBeCloseTo(681.75, 9);
    expect(bill.gridFees).toEqual([
      { label: 'night', kwh: 225, rate: 0.4801, amount: 108.02 },
      { label: 'day', kwh: 456.75, rate: 0.5426, amount: 247.83 },
    ]);
    // 681.75 + 247.83 + 108.02 + 375 = 1412.60 (rates include VAT: no VAT line)
    expect(bill.vat).toBe(0);
    expect(bill.total).toBe(1412.6);
  });
});

describe('a §14a EnWG module 3 day with its three windows', () => {
  const s = site('Europe/Berlin');
  // illustrative module 3 sheet: standard 8.00 ct, low 40 % of it, high twice it, in Q1 and Q4; standard all day in Q2 and Q3
  const config: BillConfig = {
    vat: 19,
    grid_fees: [
      {
        operator: 'Netze BW',
        valid_from: '2025-04-01',
        schedule: [
          {
            name: 'Q1, Q4',
            months: [1, 2, 3, 10, 11, 12],
            rates: [
              { from: '00:00', to: '06:00', rate: 0.032, window: 'low' },
              { from: '06:00', to: '17:00', rate: 0.08, window: 'standard' },
              { from: '17:00', to: '21:00', rate: 0.16, window: 'high' },
              { from: '21:00', to: '24:00', rate: 0.08, window: 'standard' },
            ],
          },
          { name: 'Q2, Q3', months: [4, 5, 6, 7, 8, 9], rates: [{ from: '00:00', to: '24:00', rate: 0.08, window: 'standard' }] },
        ],
      },
    ],
    levies: [{ name: 'Stromsteuer', rate: 0.0205 }],
  };
  const dayOf = (d: string) => ({ start: local(`${d}T00:00`, s.timezone), end: local(`${d}T00:00`, s.timezone) + 24 * HOUR });

  it('prices each window all-in: (energy + grid fee + levy) × 1.19', () => {
    const day = dayOf('2026-01-15');
    const terms = billTerms(config, s);
    const series = composedImport(day, hourly(day, 0.2), gridFeeSeries(config.grid_fees!, s)(day), levySpans(config.levies!, day, s.timezone), terms);
    const at = (h: number) => series.find((x) => x.start === day.start + h * HOUR)!.rate;
    expect(at(3)).toBe(0.300475); // low: (0.20 + 0.032 + 0.0205) × 1.19
    expect(at(10)).toBe(0.357595); // standard: (0.20 + 0.08 + 0.0205) × 1.19
    expect(at(18)).toBe(0.452795); // high: (0.20 + 0.16 + 0.0205) × 1.19
    expect(at(22)).toBe(0.357595);
    expect(series).toHaveLength(24);
  });

  it('bills the day by window', () => {
    const day = dayOf('2026-01-15');
    const bill = billOf(config, s, day, hourly(day, 0.2), [], flowsOf(day, () => 1));
    // 1 kW all day: low 6 kWh, standard 11 + 3 = 14 kWh, high 4 kWh
    expect(bill.gridFees).toEqual([
      { label: 'low', kwh: 6, rate: 0.032, amount: 0.19 }, // 0.192
      { label: 'standard', kwh: 14, rate: 0.08, amount: 1.12 },
      { label: 'high', kwh: 4, rate: 0.16, amount: 0.64 },
    ]);
    // energy 24 × 0.20 = 4.80 (by window 1.20 + 2.80 + 0.80); Stromsteuer 24 × 0.0205 = 0.492 → 0.49
    expect(bill.energy.map((l) => [l.label, l.amount])).toEqual([['low', 1.2], ['standard', 2.8], ['high', 0.8]]);
    // net 4.80 + 0.19 + 1.12 + 0.64 + 0.49 = 7.24; VAT 19 % = 1.3756 → 1.38; total 8.62
    expect(bill.net).toBe(7.24);
    expect(bill.vat).toBe(1.38);
    expect(bill.total).toBe(8.62);
  });

  it('switches with the quarter and with the validity dates', () => {
    const may = dayOf('2026-05-14');
    const fees = gridFeeSeries(config.grid_fees!, s);
    expect(new Set(fees(may).map((f) => f.window))).toEqual(new Set(['standard']));
    // before valid_from there is no schedule: no fee, no window
    expect(fees(dayOf('2025-03-14'))).toEqual([]);
  });
});

describe('a negative-price hour with no feed-in pay', () => {
  const s = site('Europe/Berlin');
  const day = { start: local('2026-06-14T00:00', s.timezone), end: local('2026-06-15T00:00', s.timezone) };
  const noon = local('2026-06-14T12:00', s.timezone);
  // day-ahead import energy: 0.10, but +0.02 at 12–13 and −0.05 at 13–14; feed-in paid 0.0786 (fixed)
  const importEnergy = hourly(day, (t) => (t === noon ? 0.02 : t === noon + HOUR ? -0.05 : 0.1));
  const exportEnergy = hourly(day, 0.0786);
  const config: BillConfig = { export_rules: { no_pay_at_negative_price: true } };
  const exportKw = (t: number) => (t >= noon && t < noon + HOUR ? 3 : t >= noon + HOUR && t < noon + 2 * HOUR ? 4 : 0);

  it('the export series pays nothing in the negative hour', () => {
    const series = composedExport(day, importEnergy, exportEnergy, billTerms(config, s));
    expect(series.find((x) => x.start === noon)!.rate).toBe(0.0786);
    expect(series.find((x) => x.start === noon + HOUR)!.rate).toBe(0);
    expect(series.filter((x) => x.rate === 0)).toHaveLength(1);
  });

  it('the bill pays 3 kWh at 12–13 and nothing for the 4 kWh at 13–14', () => {
    const bill = billOf(config, s, day, importEnergy, exportEnergy, flowsOf(day, () => 0, exportKw));
    // 3 × 0.0786 = 0.2358 → 0.24; the 4 kWh in the negative hour earn 0
    expect(bill.exportEarnings).toEqual([
      { label: 'feed-in', kwh: 3, rate: 0.0786, amount: 0.24 },
      { label: 'feed-in at negative prices (not paid)', kwh: 4, rate: 0, amount: 0 },
    ]);
    expect(bill.total).toBe(-0.24);
  });

  it('a negative dynamic export rate stays a cost; without the rule the fixed feed-in is paid', () => {
    const dynamic = hourly(day, (t) => (t === noon + HOUR ? -0.03 : 0.05));
    const ruled = composedExport(day, [], dynamic, billTerms({ export_rules: { no_pay_at_negative_price: true, price_reference: 'export' } }, s));
    expect(ruled.find((x) => x.start === noon + HOUR)!.rate).toBe(-0.03);
    const unruled = composedExport(day, importEnergy, exportEnergy, billTerms({ vat: 0 }, s));
    expect(unruled.find((x) => x.start === noon + HOUR)!.rate).toBe(0.0786);
  });
});

describe('standing charges over 23- and 25-hour DST days', () => {
  const s = site('Europe/Berlin');
  const config: BillConfig = { standing_charges: [{ name: 'Grundpreis', amount: 0.4, per: 'day' }, { name: 'Messstellenbetrieb', amount: 12, per: 'month' }] };
  const dayWindow = (d: string) => {
    const start = DateTime.fromISO(d, { zone: s.timezone });
    return { start: start.toMillis(), end: start.plus({ days: 1 }).toMillis() };
  };
  const standing = (w: TimeWindow) => billOf(config, s, w, hourly(w, 0.3), [], flowsOf(w, () => 0)).standing;

  it('a 23-hour spring day and a 25-hour autumn day are one day each', () => {
    const spring = dayWindow('2026-03-29');
    const autumn = dayWindow('2026-10-25');
    expect((spring.end - spring.start) / HOUR).toBe(23);
    expect((autumn.end - autumn.start) / HOUR).toBe(25);
    // daily 0.40 × 1; monthly 12.00 × 1/31 (March and October have 31 days) = 0.3871 → 0.39
    for (const w of [spring, autumn]) {
      expect(standing(w)).toEqual([
        { label: 'Grundpreis', count: 1, per: 'day', rate: 0.4, amount: 0.4 },
        { label: 'Messstellenbetrieb', count: 0.032258, per: 'month', rate: 12, amount: 0.39 },
      ]);
    }
  });

  it('the whole of March is 31 days and one month', () => {
    const march = { start: local('2026-03-01T00:00', s.timezone), end: local('2026-04-01T00:00', s.timezone) };
    // 31 × 0.40 = 12.40; 12.00 × 1
    expect(standing(march).map((l) => [l.count, l.amount])).toEqual([[31, 12.4], [1, 12]]);
    expect(calendarFractions(march, 'day', s.timezone)).toHaveLength(31);
  });
});

describe('bill keys in the site file', () => {
  const problemsOf = (tariffs: string) => {
    const text = `site: { id: home, timezone: Europe/Berlin, currency: EUR }\ntariffs:\n${tariffs}`;
    try {
      parseConfig(text, '/x/site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map(formatProblem);
      throw err;
    }
    return [];
  };

  it('accepts a composed tariff with every part, and today\'s {fixed, percentage, vat} surcharge', () => {
    expect(
      problemsOf(
        [
          '  import: { type: fixed, rate: 0.2 }',
          '  vat: 19',
          '  grid_fees:',
          '    - operator: Netze BW',
          '      valid_from: "2025-04-01"',
          '      rates: [{ from: "00:00", to: "06:00", rate: 0.03, window: low }, { from: "06:00", to: "00:00", rate: 0.08, window: standard }]',
          '  levies: [{ name: Stromsteuer, rate: 0.0205 }]',
          '  standing_charges: [{ name: Grundpreis, amount: 0.4, per: day }]',
          '  capacity_charge: { type: monthly_peak, price_per_kw_year: 40.4 }',
          '  export_rules: { no_pay_at_negative_price: true, max_export_percent_kwp: 60 }',
        ].join('\n'),
      ),
    ).toEqual([]);
    expect(problemsOf('  import: { type: file, path: /dev/null, surcharge: { fixed: 0.15, percentage: 10, vat: 19 } }').filter((p) => !p.includes('path'))).toEqual([]);
  });

  it('reports mistakes at their line and column', () => {
    const problems = problemsOf(
      [
        '  import: { type: file, path: /dev/null, surcharge: { vat: 19 } }', //         line 3
        '  vat: 19', //                                                                  4
        '  grid_fees:', //                                                               5
        '    - rates: [{ from: "00:00", to: "06:00", rate: 0.03 }]', //                  6: a day not covered
        '      valid_from: "2025-04-01"', //                                             7
        '    - rates: [{ from: "00:00", to: "24:00", rate: 0.08 }]', //                  8: no validity: overlaps
        '  capacity_charge:', //                                                         9
        '    type: daily_peaks_step', //                                                10
        '    steps: [{ up_to_kw: 5, per_month: 100 }, { up_to_kw: 2, per_month: 200 }]', // 11
        '  export_rules: { max_export_w: 0, max_export_percent_kwp: 60 }', //          12
        '  standing_charges: [{ name: x, amount: 1, per: week }]', //                  13
      ].join('\n'),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^site\.yaml:3:\d+ tariffs\.import\.surcharge\.vat: tariffs\.vat \(19 %\) adds VAT to the whole bill/),
        expect.stringMatching(/^site\.yaml:6:\d+ tariffs\.grid_fees\[0\]\.rates\[0\]\.to: no rate from 06:00 to 24:00/),
        expect.stringMatching(/^site\.yaml:8:\d+ tariffs\.grid_fees\[1\]: its validity overlaps grid_fees\[0\]: one grid fee schedule must be in force at a time/),
        expect.stringMatching(/^site\.yaml:11:\d+ tariffs\.capacity_charge\.steps\[1\]\.up_to_kw: the last step must be open ended/),
        expect.stringMatching(/^site\.yaml:11:\d+ tariffs\.capacity_charge\.steps\[1\]\.up_to_kw: steps must rise: 2 kW is not above the step before \(5 kW\)/),
        expect.stringMatching(/^site\.yaml:12:\d+ tariffs\.export_rules\.max_export_percent_kwp: give max_export_w or max_export_percent_kwp, not both/),
        expect.stringMatching(/^site\.yaml:13:\d+ tariffs\.standing_charges\[0\]\.per: unknown value "?week"? \(known: day, month\)/),
      ]),
    );
  });
});
