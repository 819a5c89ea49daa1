import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AdapterStore, Logger, PriceSeries, TariffSourceContext } from '../../api/index.js';
import { builtinCatalog } from '../../core/catalog.js';
import { ManualClock } from '../../core/clock.js';
import { hubChecks } from '../../core/config/checks.js';
import { ConfigError, formatProblem, parseConfig } from '../../core/config/load.js';
import { fileTariff, readPriceFile } from './file.js';
import { fixedTariff } from './fixed.js';
import { checkRates, timeOfUseTariff, type TimeOfUseConfig } from './time_of_use.js';
import { joined } from '../../../test/peers/series.js';

const T = (s: string) => Date.parse(s);
const quietLog: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quietLog };
const memoryStore = (): AdapterStore => {
  const m = new Map<string, unknown>();
  return { get: <V>(k: string) => m.get(k) as V | undefined, set: async (k, v) => void m.set(k, v) };
};
const ctx = (zone = 'Europe/Berlin'): TariffSourceContext => ({
  log: quietLog,
  clock: new ManualClock('2026-01-05T12:00:00Z'),
  site: { id: 'home', name: 'Home', timezone: zone, currency: 'EUR' },
  fetch: () => Promise.reject(new Error('no network in tests')),
  cache: memoryStore(),
});
const view = (s: PriceSeries) => s.map((x) => [new Date(x.start).toISOString().slice(0, 16), new Date(x.end).toISOString().slice(0, 16), x.rate]);

const dayNight: TimeOfUseConfig = {
  type: 'time_of_use',
  rates: [
    { from: '00:00', to: '07:00', rate: 0.21 },
    { from: '07:00', to: '00:00', rate: 0.34 },
  ],
};

describe('time_of_use series', () => {
  it('a normal January day in Berlin: 7 night hours and 17 day hours, cut at every hour', () => {
    const s = timeOfUseTariff.create(ctx(), dayNight).series({ start: T('2026-01-04T23:00Z'), end: T('2026-01-05T23:00Z') });
    expect(s).toHaveLength(24);
    expect(view(joined(s))).toEqual([
      ['2026-01-04T23:00', '2026-01-05T06:00', 0.21],
      ['2026-01-05T06:00', '2026-01-05T23:00', 0.34],
    ]);
  });

  it('the 23-hour day (2026-03-29): the night range loses the skipped hour', () => {
    const s = timeOfUseTariff.create(ctx(), dayNight).series({ start: T('2026-03-28T23:00Z'), end: T('2026-03-29T22:00Z') });
    expect(view(joined(s))).toEqual([
      ['2026-03-28T23:00', '2026-03-29T05:00', 0.21],
      ['2026-03-29T05:00', '2026-03-29T22:00', 0.34],
    ]);
    expect(s.reduce((a, x) => a + x.end - x.start, 0)).toBe(23 * 3_600_000);
  });

  it('the 25-hour day (2026-10-25): the night range has the repeated hour', () => {
    const s = timeOfUseTariff.create(ctx(), dayNight).series({ start: T('2026-10-24T22:00Z'), end: T('2026-10-25T23:00Z') });
    expect(view(joined(s))).toEqual([
      ['2026-10-24T22:00', '2026-10-25T06:00', 0.21],
      ['2026-10-25T06:00', '2026-10-25T23:00', 0.34],
    ]);
    expect(s.reduce((a, x) => a + x.end - x.start, 0)).toBe(25 * 3_600_000);
  });

  it('a range crossing midnight, weekend rates and winter months', () => {
    const config: TimeOfUseConfig = {
      type: 'time_of_use',
      schedule: [
        { name: 'winter weekdays', months: ['oct', 'nov', 'dec', 1, 2, 3], days: 'weekdays', rates: [{ from: '22:00', to: '06:00', rate: 0.2 }, { from: '06:00', to: '22:00', rate: 0.4 }] },
        { name: 'weekend', days: 'weekend', rates: [{ from: '00:00', to: '00:00', rate: 0.25 }] },
        { name: 'summer weekdays', months: [4, 5, 6, 7, 8, 9], days: ['mon', 'tue', 'wed', 'thu', 'fri'], rates: [{ from: '00:00', to: '24:00', rate: 0.3 }] },
      ],
    };
    expect(timeOfUseTariff.check!(config)).toEqual([]);
    const source = timeOfUseTariff.create(ctx(), config);
    // Friday 2026-01-09 to Saturday 2026-01-10 (UTC+1)
    expect(view(joined(source.series({ start: T('2026-01-09T20:00Z'), end: T('2026-01-10T02:00Z') })))).toEqual([
      ['2026-01-09T20:00', '2026-01-09T21:00', 0.4],
      ['2026-01-09T21:00', '2026-01-09T23:00', 0.2],
      ['2026-01-09T23:00', '2026-01-10T02:00', 0.25],
    ]);
    // a Wednesday in July (UTC+2)
    expect(view(joined(source.series({ start: T('2026-07-14T22:00Z'), end: T('2026-07-15T22:00Z') })))).toEqual([['2026-07-14T22:00', '2026-07-15T22:00', 0.3]]);
  });

  it('the fixed tariff gives one rate in hourly slots', () => {
    const s = fixedTariff.create(ctx(), { type: 'fixed', rate: 0.3 }).series({ start: T('2026-01-05T00:30Z'), end: T('2026-01-05T03:00Z') });
    expect(view(s)).toEqual([
      ['2026-01-05T00:30', '2026-01-05T01:00', 0.3],
      ['2026-01-05T01:00', '2026-01-05T02:00', 0.3],
      ['2026-01-05T02:00', '2026-01-05T03:00', 0.3],
    ]);
  });
});

describe('time_of_use checks', () => {
  it('reports a gap and an overlap at the range that shows them', () => {
    expect(
      checkRates(
        [
          { from: '00:00', to: '06:00', rate: 0.2 },
          { from: '07:00', to: '18:00', rate: 0.3 },
          { from: '17:00', to: '00:00', rate: 0.4 },
        ],
        ['rates'],
      ),
    ).toEqual([
      { path: ['rates', 1, 'from'], message: 'no rate from 06:00 to 07:00: the rates of a day must cover all 24 hours' },
      { path: ['rates', 2, 'from'], message: 'overlaps rates[1] from 17:00 to 18:00: each time of day needs exactly one rate' },
    ]);
    expect(checkRates([{ from: '22:00', to: '06:00', rate: 0.2 }], ['rates'])).toEqual([
      { path: ['rates', 0, 'from'], message: 'no rate from 06:00 to 22:00: the rates of a day must cover all 24 hours' },
    ]);
  });

  it('check-config prints file:line:col for gaps, overlaps and uncovered days', () => {
    const text = [
      'site: { id: home, timezone: Europe/Berlin }', //   1
      'tariffs:', //                                      2
      '  import:', //                                     3
      '    type: time_of_use', //                         4
      '    rates:', //                                    5
      '      - { from: "00:00", to: "07:00", rate: 0.21 }', // 6
      '      - { from: "06:00", to: "23:00", rate: 0.34 }', // 7
      '  export:', //                                     8
      '    type: time_of_use', //                         9
      '    schedule:', //                                 10
      '      - { days: weekdays, rates: [ { from: "00:00", to: "00:00", rate: 0.08 } ] }', // 11
      '      - { days: [fri, sat], rates: [ { from: "00:00", to: "00:00", rate: 0.1 } ] }', // 12
    ].join('\n');
    let problems: string[] = [];
    try {
      parseConfig(text, 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems.map(formatProblem);
    }
    expect(problems).toEqual([
      'site.yaml:7:17 tariffs.import.rates[1].from: overlaps rates[0] from 06:00 to 07:00: each time of day needs exactly one rate',
      'site.yaml:7:30 tariffs.import.rates[1].to: no rate from 23:00 to 24:00: the rates of a day must cover all 24 hours',
      'site.yaml:11:7 tariffs.export.schedule: no rate set applies to Sundays in any month',
      'site.yaml:12:9 tariffs.export.schedule[1]: applies to the same days as schedule[0] (Fridays in January, February, March, April, May, June, July, August, September, October, November, December): exactly one rate set must apply to each day',
    ]);
  });

  it('rejects a malformed time with the allowed form', () => {
    expect(() =>
      parseConfig('site: { id: home }\ntariffs:\n  import: { type: time_of_use, rates: [ { from: "7am", to: "00:00", rate: 0.2 } ] }\n', 'site.yaml', { catalog: builtinCatalog, checks: hubChecks(builtinCatalog), env: {} }),
    ).toThrow(/site\.yaml:3:49 tariffs\.import\.rates\[0\]\.from: "7am" does not match the allowed form/);
  });
});

describe('file tariff', () => {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-prices-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads CSV with valid_from/valid_to/rate', () => {
    const f = join(dir, 'a.csv');
    writeFileSync(f, 'valid_from,valid_to,rate\n2026-01-05T00:00:00Z,2026-01-05T00:15:00Z,0.21\n2026-01-05T00:15:00Z,2026-01-05T01:00:00Z,0.19\n');
    expect(view(readPriceFile(f, {}, 'Europe/Berlin'))).toEqual([
      ['2026-01-05T00:00', '2026-01-05T00:15', 0.21],
      ['2026-01-05T00:15', '2026-01-05T01:00', 0.19],
    ]);
  });

  it('reads a wholesale CSV in EUR/MWh with local naive times, a decimal comma and a surcharge', () => {
    const f = join(dir, 'b.csv');
    writeFileSync(f, 'start;price\n2026-01-05 00:00;100,0\n2026-01-05 01:00;-20,5\n');
    // (0.1·1.1 + 0.15)·1.19 = 0.3094; (−0.0205·1.1 + 0.15)·1.19 = 0.1516655; the last row repeats the step
    expect(view(readPriceFile(f, { price_unit: 'MWh', surcharge: { fixed: 0.15, percentage: 10, vat: 19 } }, 'Europe/Berlin'))).toEqual([
      ['2026-01-04T23:00', '2026-01-05T00:00', 0.3094],
      ['2026-01-05T00:00', '2026-01-05T01:00', 0.1516655],
    ]);
  });

  it('reads JSON in the FlatPeak shape', () => {
    const f = join(dir, 'c.json');
    writeFileSync(f, JSON.stringify({ data: [{ valid_from: '2026-01-05T00:00:00Z', valid_to: '2026-01-05T01:00:00Z', tariff: { rate: 0.3, confidence: 1 } }] }));
    expect(view(readPriceFile(f, {}, 'UTC'))).toEqual([['2026-01-05T00:00', '2026-01-05T01:00', 0.3]]);
  });

  it('names the file and line of a bad row', () => {
    const f = join(dir, 'd.csv');
    writeFileSync(f, 'valid_from,valid_to,rate\n2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,0.2\n2026-01-05T01:00:00Z,2026-01-05T02:00:00Z,cheap\n');
    expect(() => readPriceFile(f, {}, 'UTC')).toThrow('d.csv:3 rate "cheap" is not a number');
    writeFileSync(f, 'valid_from,valid_to,rate\n2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,0.2\n2026-01-05T00:30:00Z,2026-01-05T02:00:00Z,0.3\n');
    expect(() => readPriceFile(f, {}, 'UTC')).toThrow(/^d\.csv:3 starts at 2026-01-05T00:30:00\.000Z, before the previous slot ends/);
    writeFileSync(f, 'when,rate\n');
    expect(() => readPriceFile(f, {}, 'UTC')).toThrow(/^d\.csv:1 header "when,rate" needs a start column/);
  });

  it('at first start keeps the good rows of a file with a bad one, and names the bad row by file and line', async () => {
    const f = join(dir, 'g.csv');
    writeFileSync(f, 'valid_from,valid_to,rate\n2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,0.2\n2026-01-05T01:00:00Z,2026-01-05T02:00:00Z,cheap\n2026-01-05T02:00:00Z,2026-01-05T03:00:00Z,0.3\n2026-01-05T02:30:00Z,2026-01-05T03:30:00Z,0.4\n2026-01-05T03:00:00Z,2026-01-05T04:00:00Z,0.25\n');
    const c = ctx();
    const source = fileTariff.create(c, { type: 'file', path: f });
    const w = { start: T('2026-01-05T00:00Z'), end: T('2026-01-06T00:00Z') };
    expect(view(source.series(w))).toEqual([
      ['2026-01-05T00:00', '2026-01-05T01:00', 0.2],
      ['2026-01-05T02:00', '2026-01-05T03:00', 0.3],
      ['2026-01-05T03:00', '2026-01-05T04:00', 0.25],
    ]);
    await expect(source.refresh!()).rejects.toThrow('g.csv:3 rate "cheap" is not a number (and 1 more row left out)');
    // the strict reader (backtests, tools) still refuses the file at its first bad row
    expect(() => readPriceFile(f, {}, 'UTC')).toThrow('g.csv:3 rate "cheap" is not a number');
  });

  it('keeps the last good prices when the file breaks, and picks up a changed file on refresh', async () => {
    const f = join(dir, 'e.csv');
    writeFileSync(f, 'valid_from,valid_to,rate\n2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,0.2\n');
    const c = ctx();
    const source = fileTariff.create(c, { type: 'file', path: f });
    const w = { start: T('2026-01-05T00:00Z'), end: T('2026-01-06T00:00Z') };
    expect(view(source.series(w))).toEqual([['2026-01-05T00:00', '2026-01-05T01:00', 0.2]]);
    writeFileSync(f, 'valid_from,valid_to,rate\n2026-01-05T00:00:00Z,oops,0.2\n');
    await expect(source.refresh!()).rejects.toThrow('e.csv:2 end "oops" is not a time');
    expect(view(source.series(w))).toEqual([['2026-01-05T00:00', '2026-01-05T01:00', 0.2]]);
    writeFileSync(f, 'valid_from,valid_to,rate\n2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,0.25\n');
    await source.refresh!();
    expect(view(source.series(w))).toEqual([['2026-01-05T00:00', '2026-01-05T01:00', 0.25]]);
    // a restart with the file gone still has the cached prices
    rmSync(f);
    const again = fileTariff.create(c, { type: 'file', path: f });
    expect(view(again.series(w))).toEqual([['2026-01-05T00:00', '2026-01-05T01:00', 0.25]]);
    await expect(again.refresh!()).rejects.toThrow('the price file does not exist');
  });
});
