import { describe, expect, it } from 'vitest';
import { intervalsBetween, spliceReadings, stepEnergy } from '../../src/metering/cumulative.js';
import { FieldError, directionOf, parseCumulative, parseIntervalRecord, parseTime, tariffRateOf } from '../../src/metering/records.js';

const scope = { locationId: 'loc_home' };
const base = { location_id: 'loc_home', device_id: 'battery', start_time: '2024-08-02T01:00:00Z', end_time: '2024-08-02T02:00:00Z' };
const err = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FieldError);
    return (e as FieldError).message;
  }
  throw new Error('expected a FieldError');
};

describe('interval records', () => {
  it.each([
    [{ units: 'W', value: 2634 }, 2634],
    [{ units: 'KW', value: 2.634 }, 2634],
    [{ units: 'WH', value: 2634 }, 2634],
    [{ units: 'KWH', value: 2.634 }, 2634],
    [{ units: 'W', value: 8214, start_time: '2023-06-16T01:00:00Z', end_time: '2023-06-16T01:30:00Z' }, 4107],
    [{ units: 'WH', value: 4107, start_time: '2023-06-16T01:00:00Z', end_time: '2023-06-16T01:30:00Z' }, 4107],
    [{ units: 'kWh', value: '1.5' }, 1500],
  ])('turns %o into %d Wh (W is the mean power over the interval)', (fields, wh) => {
    expect(parseIntervalRecord({ ...base, ...fields }, scope).value).toBeCloseTo(wh, 9);
  });

  it('defaults direction to IMPORT and tariff_rate to the direction; device_id wins over location_id', () => {
    const r = parseIntervalRecord({ ...base, units: 'W', value: 1, direction: 'EXPORT' }, scope);
    expect([directionOf(r.flags), tariffRateOf(r.flags), r.subject, r.confidence]).toEqual(['EXPORT', 'EXPORT', 'd.battery', 1]);
    const loc = parseIntervalRecord({ ...base, device_id: undefined, units: 'W', value: 1, tariff_rate: 'LOCAL' }, scope);
    expect([directionOf(loc.flags), tariffRateOf(loc.flags), loc.subject]).toEqual(['IMPORT', 'LOCAL', 'l.loc_home']);
  });

  it.each([
    [{ units: 'MWH', value: 1 }, /^units: must be one of W, KW, WH, KWH \(got "MWH"\)/],
    [{ units: 'W', value: -5 }, /^value: must not be negative .*direction EXPORT/],
    [{ units: 'W', value: 'lots' }, /^value: must be a number/],
    [{ units: 'W', value: 1, end_time: '2024-08-02T01:00:00Z' }, /^end_time: must be after start_time/],
    [{ units: 'W', value: 1, start_time: '2024-02-30T00:00:00Z' }, /^start_time: "2024-02-30T00:00:00Z" is not a valid date/],
    [{ units: 'W', value: 1, start_time: '2024-08-02 01:00' }, /^start_time: .* is not an RFC 3339 time with an offset/],
    [{ units: 'W', value: 1, location_id: 'loc_other' }, /^location_id: unknown location "loc_other"; this hub's location is "loc_home"/],
    [{ units: 'W', value: 1, tarif_rate: 'LOCAL' }, /^tarif_rate: unknown field/],
    [{ units: 'W', value: 1, confidence: 0 }, /^confidence: must be above 0 and at most 1/],
    [{ units: 'W', value: 1, device_id: '../etc' }, /^device_id: must be 1-128 letters/],
    [{ units: 'W', value: 1, end_time: '2024-09-10T00:00:00Z' }, /^end_time: a record may cover at most 31 days/],
    [{ units: 'W', value: 1, start_time: '1969-12-31T23:00:00Z' }, /^start_time: must lie between 1970 and 2100/],
    [{ units: 'KWH', value: 2e6 }, /^value: 2000000000 Wh in one record is beyond any meter .*check units \(KWH\)/],
  ])('refuses %o with a message naming the field', (fields, message) => {
    expect(err(() => parseIntervalRecord({ ...base, ...fields }, scope))).toMatch(message);
  });

  it('reads offsets and fractions of RFC 3339 times', () => {
    expect(parseTime('2024-08-01T19:00:00+02:00', 't')).toBe(Date.parse('2024-08-01T17:00:00Z'));
    expect(parseTime('2024-08-01T17:00:00.5Z', 't')).toBe(Date.parse('2024-08-01T17:00:00.500Z'));
    expect(parseTime('2024-02-29T23:59:59-05:30', 't')).toBe(Date.parse('2024-03-01T05:29:59Z'));
  });
});

describe('cumulative registers', () => {
  it('takes differences, a counter reset as a new start from zero, and a small step back as jitter', () => {
    expect(stepEnergy(1000, 1250)).toBe(250);
    expect(stepEnergy(50_000, 120)).toBe(120);
    expect(stepEnergy(1000, 999.5)).toBe(0);
  });

  it('derives intervals between readings, tagged with the session and the later reading’s reference', () => {
    const pts = [
      { time: 0, valueWh: 100, session: null, ref: 'a' },
      { time: 60_000, valueWh: 160, session: 'S', ref: 'b' },
      { time: 120_000, valueWh: 30, session: 'S', ref: 'c' },
      { time: 180_000, valueWh: 90, session: null, ref: 'd' },
    ];
    expect(intervalsBetween(pts)).toEqual([
      { start: 0, end: 60_000, energyWh: 60, session: 'S', ref: 'b' },
      { start: 60_000, end: 120_000, energyWh: 30, session: 'S', ref: 'c' },
      { start: 120_000, end: 180_000, energyWh: 60, session: 'S', ref: 'd' },
    ]);
  });

  it('a gap longer than a usual reading interval belongs to no session (issue 14.5)', () => {
    const min = 60_000;
    const day = 86_400_000;
    // session S: three hours back-filled 53 days before the live readings
    const pts = [
      { time: 0, valueWh: 372_000, session: 'S', ref: null },
      { time: 180 * min, valueWh: 376_500, session: 'S', ref: null },
      { time: 53 * day, valueWh: 500_000, session: null, ref: null },
      { time: 53 * day + 16 * min, valueWh: 500_100, session: 'T', ref: null },
      { time: 53 * day + 20 * min, valueWh: 500_300, session: 'T', ref: null },
      { time: 53 * day + 40 * min, valueWh: 501_000, session: 'U', ref: null },
    ];
    const out = intervalsBetween(pts);
    const bySession = (id: string | null) => out.filter((i) => i.session === id).reduce((a, i) => a + i.energyWh, 0);
    expect(bySession('S')).toBe(4500);
    expect(bySession(null)).toBeCloseTo(123_500 + 100 + 700, 6);
    expect(bySession('T')).toBe(200);
    // two sessions a usual reading interval apart: the energy between them is the first one's (a charger that rebooted mid-session)
    expect(intervalsBetween([{ time: 0, valueWh: 0, session: 'T', ref: null }, { time: 2 * min, valueWh: 200, session: 'U', ref: null }])[0].session).toBe('T');
    // within a usual reading interval the untagged neighbour's energy is the session's
    expect(intervalsBetween([{ time: 0, valueWh: 0, session: null, ref: null }, { time: 15 * min, valueWh: 50, session: 'S', ref: null }])[0].session).toBe('S');
    expect(intervalsBetween([{ time: 0, valueWh: 0, session: 'S', ref: null }, { time: 15 * min + 1, valueWh: 50, session: null, ref: null }])[0].session).toBeNull();
  });

  it('spreads a gap longer than 31 days evenly over whole days', () => {
    const day = 86_400_000;
    const out = intervalsBetween([
      { time: 0, valueWh: 0, session: null, ref: null },
      { time: 40 * day, valueWh: 4000, session: null, ref: null },
    ]);
    expect(out).toHaveLength(40);
    expect(out.every((i) => i.energyWh === 100 && i.end - i.start === day)).toBe(true);
  });

  it('splits the interval a late reading falls into', () => {
    const stored = [
      { time: 0, valueWh: 100, session: null, ref: null },
      { time: 120_000, valueWh: 300, session: null, ref: null },
    ];
    const { removed, added } = spliceReadings(stored, [{ time: 60_000, valueWh: 250, session: null, ref: 'late' }]);
    expect(removed).toEqual([{ start: 0, end: 120_000, energyWh: 200, session: null, ref: null }]);
    expect(added.map((i) => [i.start, i.end, i.energyWh])).toEqual([
      [0, 60_000, 150],
      [60_000, 120_000, 50],
    ]);
  });

  it('validates the envelope and lists each bad reading', () => {
    const req = parseCumulative(
      { location_id: 'loc_home', device_id: 'ev', direction: 'IMPORT', tariff_rate: 'IMPORT', units: 'KWH', data: [{ time: 1722470400, value: 1.5, record_reference_id: 'r1' }, { time: 'noon', value: 2 }, { time: 1722474000, value: -1, record_reference_id: 'r3' }] },
      scope,
    );
    expect(req.readings).toEqual([{ time: 1722470400_000, valueWh: 1500, ref: 'r1', index: 0 }]);
    expect(req.failed).toEqual([
      { record_num: 1, record_reference_id: null, error: 'time: must be a number (got "noon")' },
      { record_num: 2, record_reference_id: 'r3', error: 'value: a register reading cannot be negative (got -1)' },
    ]);
    expect(err(() => parseCumulative({ device_id: 'ev', data: 'x' }, scope))).toMatch(/^data: must be an array/);
    expect(parseCumulative({ device_id: 'ev', data: [{ time: 1722470400000, value: 1 }] }, scope).failed[0].error).toBe('time: must be Unix time in seconds between 1970 and 2100 (got 1722470400000; milliseconds?)');
  });
});
