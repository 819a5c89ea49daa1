import { describe, expect, it } from 'vitest';
import { nodeModel } from '../../src/control/model.js';
import { parseFlexibility } from './index.js';

const slot = (start: string, end: string, min: number, max: number) => ({ start_time: start, end_time: end, min_w: min, max_w: max, planned_w: min });

describe('a child hub\'s flexibility', () => {
  it('is refused with the field at fault when the answer is not what a homeflex hub sends', () => {
    expect(() => parseFlexibility({ object: 'plan' })).toThrow(/not a flexibility object/);
    expect(() => parseFlexibility({ object: 'flexibility', slots: [], needs: [] })).toThrow(/site_id/);
    expect(() => parseFlexibility({ object: 'flexibility', site_id: 'f', slots: [slot('2026-06-01T04:00:00Z', 'x', 0, 1)], needs: [] })).toThrow(/slots\[0\]\.end_time/);
    expect(() => parseFlexibility({ object: 'flexibility', site_id: 'f', slots: [], needs: [{ device_id: 'ev', energy_wh: 'lots', from: '2026-06-01T04:00:00Z', deadline: '2026-06-01T05:00:00Z', max_w: 1 }] })).toThrow(/needs\[0\]\.energy_wh/);
  });

  it('becomes a fixed must-have load plus an EV-like load with its needs in deadline order', () => {
    const flex = parseFlexibility({
      object: 'flexibility',
      site_id: 'floor',
      slots: [slot('2026-06-01T04:00:00Z', '2026-06-01T04:30:00Z', 500, 20500), slot('2026-06-01T04:30:00Z', '2026-06-01T05:00:00Z', 800, 10800)],
      needs: [
        { device_id: 'b', energy_wh: 3000, from: '2026-06-01T04:00:00Z', deadline: '2026-06-01T05:00:00Z', max_w: 11000 },
        { device_id: 'a', energy_wh: 2000, from: '2026-06-01T04:00:00Z', deadline: '2026-06-01T04:30:00Z', max_w: 11000 },
        { device_id: 'c', energy_wh: 1000, from: '2026-06-01T04:00:00Z', deadline: '2026-06-01T05:00:00Z', max_w: 11000 },
      ],
    });
    const t0 = Date.parse('2026-06-01T04:00:00Z');
    const slots = [0, 1, 2, 3].map((k) => ({ start: t0 + k * 15 * 60_000, end: t0 + (k + 1) * 15 * 60_000 }));
    const { ev, base } = nodeModel('floor', undefined, flex, slots);
    expect(base).toEqual({ id: 'floor.base', circuit: undefined, powerW: [500, 500, 800, 800] });
    expect(ev.limits!.maxImportW).toEqual([20000, 20000, 10000, 10000]);
    expect(ev.maxPowerW).toBe(20000);
    expect(ev.sessions).toEqual([
      { from: t0, until: Date.parse('2026-06-01T04:30:00Z'), energyNeededWh: 2000 },
      { from: Date.parse('2026-06-01T04:30:00Z'), until: Date.parse('2026-06-01T05:00:00Z'), energyNeededWh: 4000 },
    ]);
  });
});
