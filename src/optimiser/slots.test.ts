import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PriceSeries } from '../api/index.js';
import { NotEnoughPricesError, slotsByThreshold, slotsByTime, switchedSchedule, type PricePeriod } from './slots.js';

const T = (s: string) => Date.parse(s);
/** Consecutive slots of `minutes` each from `start`, one per rate. */
const steps = (start: string, rates: number[], minutes = 60): PriceSeries =>
  rates.map((rate, i) => ({ start: T(start) + i * minutes * 60_000, end: T(start) + (i + 1) * minutes * 60_000, rate, confidence: 1 }));
/** Periods as [start, end, rate_avg] with ISO times (UTC, no milliseconds) for readable tables. */
const view = (ps: PricePeriod[]) => ps.map((p) => [new Date(p.start).toISOString().slice(0, 16), new Date(p.end).toISOString().slice(0, 16), Math.round(p.rateAvg * 1e6) / 1e6]);
const day = { start: T('2026-01-05T00:00Z'), end: T('2026-01-06T00:00Z') };

describe('slots by time, split', () => {
  const cases: { name: string; series: PriceSeries; segment: 'LOW' | 'HIGH'; minutes: number; want: (string | number)[][] }[] = [
    { name: '60-min slots: the two cheapest hours', series: steps('2026-01-05T00:00Z', [5, 3, 4, 1, 2]), segment: 'LOW', minutes: 120, want: [['2026-01-05T03:00', '2026-01-05T05:00', 1.5]] },
    { name: 'the dearest hour', series: steps('2026-01-05T00:00Z', [5, 3, 4, 1, 2]), segment: 'HIGH', minutes: 60, want: [['2026-01-05T00:00', '2026-01-05T01:00', 5]] },
    { name: 'a tie goes to the earlier slot', series: steps('2026-01-05T00:00Z', [2, 1, 3, 1]), segment: 'LOW', minutes: 60, want: [['2026-01-05T01:00', '2026-01-05T02:00', 1]] },
    { name: 'a tie in HIGH goes to the earlier slot', series: steps('2026-01-05T00:00Z', [2, 7, 3, 7]), segment: 'HIGH', minutes: 60, want: [['2026-01-05T01:00', '2026-01-05T02:00', 7]] },
    {
      name: 'partial slot shortened at its end when it follows a chosen slot',
      series: steps('2026-01-05T00:00Z', [5, 1, 2, 9]),
      segment: 'LOW',
      minutes: 90,
      want: [['2026-01-05T01:00', '2026-01-05T02:30', 1.333333]],
    },
    {
      name: 'partial slot shortened at its start when it precedes a chosen slot',
      series: steps('2026-01-05T00:00Z', [9, 2, 1, 5]),
      segment: 'LOW',
      minutes: 90,
      want: [['2026-01-05T01:30', '2026-01-05T03:00', 1.333333]],
    },
    {
      name: 'a lone partial slot keeps its start',
      series: steps('2026-01-05T00:00Z', [1, 9, 2, 9]),
      segment: 'LOW',
      minutes: 90,
      want: [
        ['2026-01-05T00:00', '2026-01-05T01:00', 1],
        ['2026-01-05T02:00', '2026-01-05T02:30', 2],
      ],
    },
    {
      name: '15-min slots',
      series: steps('2026-01-05T00:00Z', [0.3, 0.1, 0.2, 0.05, 0.4, 0.1], 15),
      segment: 'LOW',
      minutes: 45,
      want: [
        ['2026-01-05T00:15', '2026-01-05T00:30', 0.1],
        ['2026-01-05T00:45', '2026-01-05T01:00', 0.05],
        ['2026-01-05T01:15', '2026-01-05T01:30', 0.1],
      ],
    },
    {
      name: '30-min slots with a partial one',
      series: steps('2026-01-05T00:00Z', [0.3, 0.1, 0.2, 0.4], 30),
      segment: 'LOW',
      minutes: 40,
      want: [['2026-01-05T00:30', '2026-01-05T01:10', 0.125]],
    },
    {
      name: 'a series that changes from 60- to 15-minute slots',
      series: [...steps('2026-01-05T00:00Z', [0.2, 0.3]), ...steps('2026-01-05T02:00Z', [0.25, 0.1, 0.15, 0.35], 15)],
      segment: 'LOW',
      minutes: 90,
      want: [
        ['2026-01-05T00:00', '2026-01-05T01:00', 0.2],
        ['2026-01-05T02:15', '2026-01-05T02:45', 0.125],
      ],
    },
    {
      name: 'negative prices are the cheapest',
      series: steps('2026-01-05T00:00Z', [0.1, -0.05, 0.02, -0.2]),
      segment: 'LOW',
      minutes: 120,
      want: [
        ['2026-01-05T01:00', '2026-01-05T02:00', -0.05],
        ['2026-01-05T03:00', '2026-01-05T04:00', -0.2],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(view(slotsByTime(c.series, { window: day, segment: c.segment, durationMinutes: c.minutes }))).toEqual(c.want);
    });
  }

  it('cuts slots at the window edges (window starting and ending mid-slot)', () => {
    const series = steps('2026-01-05T00:00Z', [1, 5, 5, 0.5]);
    const window = { start: T('2026-01-05T00:30Z'), end: T('2026-01-05T03:20Z') };
    expect(view(slotsByTime(series, { window, segment: 'LOW', durationMinutes: 50 }))).toEqual([
      ['2026-01-05T00:30', '2026-01-05T01:00', 1],
      ['2026-01-05T03:00', '2026-01-05T03:20', 0.5],
    ]);
  });

  it('crosses midnight: 20:00 to 06:00 Berlin time picks the night hours', () => {
    // Berlin is UTC+1 in January: 20:00 local = 19:00Z; rates by UTC hour from 19:00Z
    const series = steps('2026-01-05T19:00Z', [0.4, 0.35, 0.3, 0.28, 0.2, 0.15, 0.12, 0.14, 0.25, 0.3, 0.4]);
    const window = { start: T('2026-01-05T19:00Z'), end: T('2026-01-06T05:00Z') };
    expect(view(slotsByTime(series, { window, segment: 'LOW', durationMinutes: 180 }))).toEqual([['2026-01-06T00:00', '2026-01-06T03:00', 0.136667]]);
  });

  it('an empty window or too long a duration is an error giving the priced minutes', () => {
    const series = steps('2026-01-05T00:00Z', [1, 2]);
    expect(() => slotsByTime([], { window: day, segment: 'LOW', durationMinutes: 30 })).toThrow(NotEnoughPricesError);
    try {
      slotsByTime(series, { window: day, segment: 'LOW', durationMinutes: 150 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(NotEnoughPricesError);
      expect((err as NotEnoughPricesError).availableMinutes).toBe(120);
      expect((err as Error).message).toBe('the window holds 120 priced minutes, fewer than the 150 requested');
    }
    expect(slotsByTime(series, { window: day, segment: 'LOW', durationMinutes: 0 })).toEqual([]);
  });
});

describe('slots by time, continuous', () => {
  it('one unbroken stretch, even when split would pick better single slots', () => {
    const series = steps('2026-01-05T00:00Z', [1, 9, 1, 1, 9]);
    expect(view(slotsByTime(series, { window: day, segment: 'LOW', durationMinutes: 120, continuous: true }))).toEqual([['2026-01-05T02:00', '2026-01-05T04:00', 1]]);
    expect(view(slotsByTime(series, { window: day, segment: 'LOW', durationMinutes: 120 }))).toEqual([
      ['2026-01-05T00:00', '2026-01-05T01:00', 1],
      ['2026-01-05T02:00', '2026-01-05T03:00', 1],
    ]);
  });

  it('a partial stretch may start or end mid-slot', () => {
    // [0:00-1:30] = 3·60+1·30 = 210; [1:00-2:30] = 60+2·30 = 120; [1:30-3:00] = 30+2·60 = 150
    const series = steps('2026-01-05T00:00Z', [3, 1, 2]);
    expect(view(slotsByTime(series, { window: day, segment: 'LOW', durationMinutes: 90, continuous: true }))).toEqual([['2026-01-05T01:00', '2026-01-05T02:30', 1.333333]]);
    // ending on a boundary wins: [0:30-2:00] = 3·30+60 = 150 vs [1:00-2:30] = 60+2·30 = 120
    const series2 = steps('2026-01-05T00:00Z', [3, 1, 4]);
    expect(view(slotsByTime(series2, { window: day, segment: 'LOW', durationMinutes: 90, continuous: true }))).toEqual([['2026-01-05T00:30', '2026-01-05T02:00', 1.666667]]);
  });

  it('ties go to the earlier start; HIGH takes the dearest stretch', () => {
    const series = steps('2026-01-05T00:00Z', [2, 2, 5, 2, 2, 6, 6]);
    expect(view(slotsByTime(series, { window: day, segment: 'LOW', durationMinutes: 120, continuous: true }))).toEqual([['2026-01-05T00:00', '2026-01-05T02:00', 2]]);
    expect(view(slotsByTime(series, { window: day, segment: 'HIGH', durationMinutes: 120, continuous: true }))).toEqual([['2026-01-05T05:00', '2026-01-05T07:00', 6]]);
  });

  it('does not bridge a gap in the prices', () => {
    const series = [...steps('2026-01-05T00:00Z', [1, 1]), ...steps('2026-01-05T03:00Z', [1, 5, 5])];
    expect(view(slotsByTime(series, { window: day, segment: 'LOW', durationMinutes: 180, continuous: true }))).toEqual([['2026-01-05T03:00', '2026-01-05T06:00', 3.666667]]);
    expect(() => slotsByTime(series, { window: day, segment: 'LOW', durationMinutes: 240, continuous: true })).toThrow('no unbroken run of 240 priced minutes in the window (the longest is 180 minutes)');
  });
});

describe('slots by time on DST days (Europe/Berlin)', () => {
  it('the 23-hour day has 92 quarter hours: 23 h fit, 24 h do not', () => {
    // 2026-03-29 00:00 local = 03-28T23:00Z; 24:00 local = 03-29T22:00Z
    const window = { start: T('2026-03-28T23:00Z'), end: T('2026-03-29T22:00Z') };
    const series = steps('2026-03-28T23:00Z', Array.from({ length: 92 }, (_, i) => (i % 7) / 10), 15);
    expect(slotsByTime(series, { window, segment: 'LOW', durationMinutes: 23 * 60 })).toEqual([{ start: window.start, end: window.end, rateAvg: expect.any(Number), confidence: 1 }]);
    expect(() => slotsByTime(series, { window, segment: 'LOW', durationMinutes: 24 * 60 })).toThrow('the window holds 1380 priced minutes, fewer than the 1440 requested');
  });

  it('the 25-hour day offers both 02:00-03:00 hours', () => {
    // 2026-10-25: 00:00 local = 10-24T22:00Z, 24:00 local = 10-25T23:00Z; the repeated hour is 00:00Z and 01:00Z
    const window = { start: T('2026-10-24T22:00Z'), end: T('2026-10-25T23:00Z') };
    const rates = Array.from({ length: 25 }, (_, i) => (i === 2 || i === 3 ? 0.05 : 0.3));
    const series = steps('2026-10-24T22:00Z', rates);
    expect(view(slotsByTime(series, { window, segment: 'LOW', durationMinutes: 120 }))).toEqual([['2026-10-25T00:00', '2026-10-25T02:00', 0.05]]);
    expect(slotsByTime(series, { window, segment: 'HIGH', durationMinutes: 25 * 60 })).toHaveLength(1);
  });
});

describe('slots by threshold', () => {
  const series = steps('2026-01-05T00:00Z', [0.1, 0.2, 0.3, 0.4, 0.5, 0.2, 0.1]);
  it('relative 0.75 HIGH is the top quarter of the range, touching slots merged', () => {
    // min 0.1, max 0.5: threshold 0.4
    const r = slotsByThreshold(series, { window: day, segment: 'HIGH', relative: 0.75 });
    expect(r.threshold).toBeCloseTo(0.4, 12);
    expect(view(r.periods)).toEqual([['2026-01-05T03:00', '2026-01-05T05:00', 0.45]]);
    expect(r.durationMinutes).toBe(120);
  });
  it('LOW at an absolute rate includes slots equal to it', () => {
    const r = slotsByThreshold(series, { window: day, segment: 'LOW', absolute: 0.2 });
    expect(view(r.periods)).toEqual([
      ['2026-01-05T00:00', '2026-01-05T02:00', 0.15],
      ['2026-01-05T05:00', '2026-01-05T07:00', 0.15],
    ]);
    expect(r.durationMinutes).toBe(240);
  });
  it('absolute wins over relative; relative 1 LOW is everything, HIGH is the maximum', () => {
    expect(slotsByThreshold(series, { window: day, segment: 'HIGH', absolute: 0.45, relative: 0.01 }).durationMinutes).toBe(60);
    expect(slotsByThreshold(series, { window: day, segment: 'LOW', relative: 1 }).durationMinutes).toBe(7 * 60);
    expect(view(slotsByThreshold(series, { window: day, segment: 'HIGH', relative: 1 }).periods)).toEqual([['2026-01-05T04:00', '2026-01-05T05:00', 0.5]]);
  });
  it('float noise does not drop a slot at the threshold (0.1 + 0.2 vs 0.3)', () => {
    const s = steps('2026-01-05T00:00Z', [0.1, 0.3, 0.5]);
    expect(slotsByThreshold(s, { window: day, segment: 'LOW', absolute: 0.1 + 0.2 }).durationMinutes).toBe(120);
    // relative 0.5 of [0.1, 0.5] = 0.30000000000000004
    expect(slotsByThreshold(s, { window: day, segment: 'HIGH', relative: 0.5 }).durationMinutes).toBe(120);
  });
  it('negative prices: LOW at 0 finds the paid-to-consume hours', () => {
    const s = steps('2026-01-05T00:00Z', [0.05, -0.01, -0.03, 0.02, -0.01]);
    expect(view(slotsByThreshold(s, { window: day, segment: 'LOW', absolute: 0 }).periods)).toEqual([
      ['2026-01-05T01:00', '2026-01-05T03:00', -0.02],
      ['2026-01-05T04:00', '2026-01-05T05:00', -0.01],
    ]);
  });
  it('an empty window has no slots and no threshold', () => {
    expect(slotsByThreshold([], { window: day, segment: 'LOW', relative: 0.5 })).toEqual({ periods: [], durationMinutes: 0 });
  });
});

describe('switched-system settings', () => {
  // hourly rates for a week in Berlin winter (UTC+1): cheap 02:00-04:00 local every night
  const start = '2026-01-04T23:00Z'; // Monday 2026-01-05 00:00 local
  const rates = Array.from({ length: 24 * 8 }, (_, h) => {
    const local = h % 24;
    return local === 2 || local === 3 ? 0.1 : local === 4 ? 0.15 : local >= 20 || local < 6 ? 0.25 : 0.35;
  });
  const series = steps(start, rates);
  const range = { start: T('2026-01-05T00:00Z'), end: T('2026-01-11T23:00Z') };

  it('daily hours by weekday and weekend inside a window that crosses midnight', () => {
    const days = switchedSchedule(series, { hours: { weekday: 2, weekend: 3 }, window: { from: '20:00', to: '06:00' } }, range, 'Europe/Berlin');
    expect(days.map((d) => d.date)).toEqual(['2026-01-05', '2026-01-06', '2026-01-07', '2026-01-08', '2026-01-09', '2026-01-10', '2026-01-11']);
    // Monday evening to Tuesday: 02:00-04:00 local = 01:00-03:00Z
    expect(view(days[0].periods)).toEqual([['2026-01-06T01:00', '2026-01-06T03:00', 0.1]]);
    // Saturday 2026-01-10 evening: three hours 02:00-05:00 local
    expect(view(days[5].periods)).toEqual([['2026-01-11T01:00', '2026-01-11T04:00', 0.116667]]);
    expect(days.every((d) => d.shortMinutes === 0)).toBe(true);
  });

  it('must end by 03:00 moves the end of the window earlier', () => {
    const days = switchedSchedule(series, { hours: 2, window: { from: '20:00', to: '06:00' }, mustEndBy: '03:00' }, range, 'Europe/Berlin');
    // one cheap hour 02:00-03:00, then the cheapest other hour: 20:00 local (0.25, earliest of the ties)
    expect(view(days[0].periods)).toEqual([
      ['2026-01-05T19:00', '2026-01-05T20:00', 0.25],
      ['2026-01-06T01:00', '2026-01-06T02:00', 0.1],
    ]);
  });

  it('a threshold alone switches on wherever the rate is at or below it; with hours it caps them', () => {
    const [mon] = switchedSchedule(series, { absolute: 0.15, window: { from: '20:00', to: '06:00' } }, range, 'Europe/Berlin');
    expect(view(mon.periods)).toEqual([['2026-01-06T01:00', '2026-01-06T04:00', 0.116667]]);
    const [rel] = switchedSchedule(series, { relative: 0.4, hours: 5, window: { from: '20:00', to: '06:00' } }, range, 'Europe/Berlin');
    // min 0.1, max 0.25 over the window: 0.16 lets three hours through, so two are missing
    expect(view(rel.periods)).toEqual([['2026-01-06T01:00', '2026-01-06T04:00', 0.116667]]);
    expect(rel.shortMinutes).toBe(120);
  });

  it('DST: the night of 2026-03-29 has one hour less, and the window still ends at 06:00 local', () => {
    const s = steps('2026-03-28T00:00Z', Array.from({ length: 48 }, () => 0.2));
    const [d] = switchedSchedule(s, { hours: 1, window: { from: '20:00', to: '06:00' } }, { start: T('2026-03-28T12:00Z'), end: T('2026-03-29T12:00Z') }, 'Europe/Berlin');
    // 20:00 CET = 19:00Z; 06:00 CEST = 04:00Z: nine hours
    expect(d.window).toEqual({ start: T('2026-03-28T19:00Z'), end: T('2026-03-29T04:00Z') });
    expect(view(d.periods)).toEqual([['2026-03-28T19:00', '2026-03-28T20:00', 0.2]]);
  });
});

describe('slots by time, split: the fast selection equals sorting every slot (property)', () => {
  /** The definition: sort by rate (ties by time), take whole slots while they fit, shorten the next. */
  function reference(series: PriceSeries, minutes: number, segment: 'LOW' | 'HIGH') {
    const sign = segment === 'LOW' ? 1 : -1;
    const order = series.map((_, i) => i).sort((a, b) => sign * (series[a].rate - series[b].rate) || a - b);
    let left = minutes * 60_000;
    const taken = new Set<number>();
    let partial = -1;
    for (const i of order) {
      if (left <= 0) break;
      const len = series[i].end - series[i].start;
      if (len <= left) {
        taken.add(i);
        left -= len;
      } else {
        partial = i;
        break;
      }
    }
    return { taken, partial, left };
  }
  it('takes the same slots and shortens the same one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ minutes: fc.constantFrom(15, 30, 60), rate: fc.integer({ min: -3, max: 4 }) }), { minLength: 1, maxLength: 30 }),
        fc.constantFrom<'LOW' | 'HIGH'>('LOW', 'HIGH'),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        (slots, segment, share) => {
          let t = Date.parse('2026-01-05T00:00Z');
          const series: PriceSeries = slots.map((s) => ({ start: t, end: (t += s.minutes * 60_000), rate: s.rate / 10, confidence: 1 }));
          const total = slots.reduce((a, s) => a + s.minutes, 0);
          const minutes = Math.max(1, Math.round(total * share));
          const got = slotsByTime(series, { window: { start: series[0].start, end: t }, segment, durationMinutes: minutes });
          const want = reference(series, minutes, segment);
          // every whole slot the reference takes lies inside a returned period, and the minutes add up
          for (const i of want.taken) expect(got.some((p) => p.start <= series[i].start && series[i].end <= p.end)).toBe(true);
          const covered = got.reduce((a, p) => a + (p.end - p.start), 0);
          expect(covered).toBe(minutes * 60_000);
          const wholeTaken = [...want.taken].reduce((a, i) => a + series[i].end - series[i].start, 0);
          // the only other time is the shortened slot's part
          expect(covered - wholeTaken).toBe(want.partial >= 0 ? want.left : 0);
          if (want.partial >= 0) {
            const p = series[want.partial];
            expect(got.some((g) => g.start < p.end && p.start < g.end)).toBe(true);
          }
          return true;
        },
      ),
      { numRuns: 400, seed: 7 },
    );
  });
});

describe('slots by time, continuous: the best stretch by brute force over every minute (property)', () => {
  it('finds the lowest (highest) mean, ties to the earlier start, never across a gap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ minutes: fc.constantFrom(15, 30, 60), rate: fc.integer({ min: -3, max: 4 }), gapBefore: fc.constantFrom(0, 0, 0, 15) }), { minLength: 1, maxLength: 16 }),
        fc.constantFrom<'LOW' | 'HIGH'>('LOW', 'HIGH'),
        fc.integer({ min: 1, max: 180 }),
        (slots, segment, minutes) => {
          let t = Date.parse('2026-01-05T00:00Z');
          const series: PriceSeries = slots.map((s) => {
            t += s.gapBefore * 60_000;
            return { start: t, end: (t += s.minutes * 60_000), rate: s.rate, confidence: 1 };
          });
          const window = { start: series[0].start, end: t };
          // brute force: every whole-minute start whose stretch is fully priced
          const rateAt = (m: number) => series.find((s) => s.start <= m && m < s.end)?.rate;
          let best: { start: number; sum: number } | undefined;
          for (let s0 = window.start; s0 + minutes * 60_000 <= window.end; s0 += 60_000) {
            let sum = 0;
            let ok = true;
            for (let m = 0; m < minutes && ok; m++) {
              const r = rateAt(s0 + m * 60_000);
              if (r === undefined) ok = false;
              else sum += (segment === 'LOW' ? 1 : -1) * r;
            }
            if (ok && (!best || sum < best.sum)) best = { start: s0, sum };
          }
          if (!best) {
            expect(() => slotsByTime(series, { window, segment, durationMinutes: minutes, continuous: true })).toThrow(NotEnoughPricesError);
            return true;
          }
          const [p] = slotsByTime(series, { window, segment, durationMinutes: minutes, continuous: true });
          expect(p.start).toBe(best.start);
          expect(p.end - p.start).toBe(minutes * 60_000);
          return true;
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });
});
