import { describe, expect, it } from 'vitest';
import { readMeterValues16, readMeterValues201 } from '../measurands.js';
import { chargingRate, chargingSchedule, CLOCK_SKEW_MS, profileWattsAt, setChargingProfile16, setChargingProfile201, tenthsSafe, type ProfileSettings } from '../profiles.js';
import { ocppSchemas } from '../../../src/core/transports/ocpp-schema.js';

const T = '2026-03-01T12:00:00Z';
const sv = (sampledValue: Record<string, unknown>[]) => [{ timestamp: T, sampledValue }];

describe('1.6 meter values', () => {
  it.each([
    ['Wh register', [{ value: '12345.6', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }], { energyWh: 12345.6 }],
    ['kWh register', [{ value: '12.3456', measurand: 'Energy.Active.Import.Register', unit: 'kWh' }], { energyWh: 12345.6 }],
    ['omitted measurand and unit = Wh register', [{ value: '500' }], { energyWh: 500 }],
    ['value with spaces and decimal comma', [{ value: ' 1234,5 ' }], { energyWh: 1234.5 }],
    ['kW power', [{ value: '7.2', measurand: 'Power.Active.Import', unit: 'kW' }], { powerW: 7200 }],
    ['per-phase registers only: summed', ['L1', 'L2', 'L3'].map((phase) => ({ value: '1000', measurand: 'Energy.Active.Import.Register', phase })), { energyWh: 3000 }],
    ['total wins over phases', [{ value: '5000' }, { value: '1000', phase: 'L1' }], { energyWh: 5000 }],
    ['current tagged L1-N', [{ value: '16', measurand: 'Current.Import', phase: 'L1-N', unit: 'A' }], { currentA: { L1: 16 } }],
    ['SoC', [{ value: '81', measurand: 'SoC', unit: 'Percent', location: 'EV' }], { socPct: 81 }],
    ['line-to-line voltage ignored', [{ value: '400', measurand: 'Voltage', phase: 'L1-L2', unit: 'V' }], { energyWh: undefined }],
  ])('%s', (_name, values, expected) => {
    const [r] = readMeterValues16(sv(values));
    expect(r.sample).toMatchObject(expected);
    expect(r.sample.time).toBe(Date.parse(T));
  });

  it('applies the energy unit override for chargers that send kWh labelled Wh', () => {
    expect(readMeterValues16(sv([{ value: '12.5', unit: 'Wh' }]), 'kWh')[0].sample.energyWh).toBe(12500);
  });

  it('reports what was odd without dropping the rest', () => {
    const [r] = readMeterValues16([{ timestamp: 'yesterday', sampledValue: [{ value: 'n/a' }, { value: 42, measurand: 'Power.Active.Import' }, { value: '-5' }] }]);
    expect(r.sample.powerW).toBe(42);
    expect(r.sample.energyWh).toBeUndefined();
    expect(r.problems.join('\n')).toMatch(/timestamp "yesterday"/);
    expect(r.problems.join('\n')).toMatch(/value "n\/a" is not a number/);
    expect(r.problems.join('\n')).toMatch(/sent as number/);
    expect(r.problems.join('\n')).toMatch(/negative energy register/);
  });
});

describe('2.0.1 meter values', () => {
  it('scales by unit and multiplier', () => {
    const [r] = readMeterValues201(sv([
      { value: 12.5, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'kWh' } },
      { value: 72, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W', multiplier: 2 } },
      { value: 40, measurand: 'SoC', context: 'Transaction.Begin' },
    ]));
    expect(r.sample).toMatchObject({ energyWh: 12500, powerW: 7200, socPct: 40, context: 'Transaction.Begin' });
  });
});

const el = { phases: 3 as const, voltage: 230, minCurrentA: 6, maxCurrentA: 16 };
const settings: ProfileSettings = { purpose: 'TxProfile', stackLevel: 1, rateUnit: 'A', kind: 'Absolute', profileId: 7, numberPhases: true };

describe('charging rates', () => {
  it.each([
    [0, 'A', 3, 0],
    [3000, 'A', 3, 0], // 4.3 A per phase is below the 6 A minimum: pause
    [4140, 'A', 3, 6],
    [7400, 'A', 3, 10.5], // 10.72 A → 10.7, which naive multipleOf checks refuse (as 10.6): 10.5
    [4899, 'A', 3, 7], // 7.1 A fails naive multipleOf checks: 7.0
    [20000, 'A', 3, 16], // capped at the maximum
    [3000, 'A', 1, 13], // one phase: 13.04 A
    [7399.9, 'W', 3, 7399],
    [2000, 'W', 3, 0],
    [50000, 'W', 3, 11040],
  ] as const)('%d W as %s on %d phases → %d', (watts, unit, phases, expected) => {
    expect(chargingRate(watts, unit, phases, el)).toBe(expected);
  });

  it('never returns a tenth that a naive multipleOf 0.1 check refuses', () => {
    for (let i = 60; i <= 320; i++) expect(Number.isInteger(tenthsSafe(i / 10, 6) / 0.1)).toBe(true);
  });
});

describe('charging schedules', () => {
  const now = Date.parse('2026-03-01T18:00:00Z');
  it('turns the plan into periods from now, with validTo and duration so the charger falls back by itself', () => {
    const spec = chargingSchedule(
      { watts: 11040, validUntil: now + 3 * 3600_000, schedule: [{ start: now - 600_000, watts: 7360 }, { start: now + 3600_000, watts: 0 }, { start: now + 7200_000, watts: 11040 }, { start: now + 4 * 3600_000, watts: 4140 }] },
      settings,
      el,
      now,
    );
    expect(spec.start).toBe(now - CLOCK_SKEW_MS);
    expect(spec.periods).toEqual([
      { startPeriod: 0, limit: 10.5, numberPhases: 3 },
      { startPeriod: 3660, limit: 0, numberPhases: 3 },
      { startPeriod: 7260, limit: 16, numberPhases: 3 },
    ]);
    expect(spec.durationS).toBe(3 * 3600 + 60);
    const req = setChargingProfile16(spec, settings, 1, 55);
    expect(req.csChargingProfiles).toMatchObject({ chargingProfileId: 7, transactionId: 55, chargingProfilePurpose: 'TxProfile', validTo: '2026-03-01T21:00:00Z' });
    expect(ocppSchemas().check('ocpp1.6', 'SetChargingProfile', 'req', req)).toEqual([]);
    const req201 = setChargingProfile201(spec, settings, 1, 'abc');
    expect(ocppSchemas().check('ocpp2.0.1', 'SetChargingProfile', 'req', req201)).toEqual([]);
    expect(req201.chargingProfile.chargingSchedule[0].chargingSchedulePeriod).toHaveLength(3);
    // the charge point side reads it back
    const profile = req.csChargingProfiles as unknown as Parameters<typeof profileWattsAt>[0];
    expect(profileWattsAt(profile, now, now, 230, 3)).toBeCloseTo(10.5 * 690);
    expect(profileWattsAt(profile, now + 3700_000, now, 230, 3)).toBe(0);
    expect(profileWattsAt(profile, now + 4 * 3600_000, now, 230, 3)).toBeUndefined();
  });

  it('cuts the schedule at the charger’s period limit and ends it there', () => {
    const schedule = Array.from({ length: 10 }, (_, i) => ({ start: now + (i + 1) * 900_000, watts: i % 2 ? 4140 : 11040 }));
    const spec = chargingSchedule({ watts: 4140, schedule }, { ...settings, maxPeriods: 4 }, el, now);
    expect(spec.periods).toHaveLength(4);
    expect(spec.durationS).toBe(60 + 4 * 900);
  });

  it('sends only the current limit for Relative profiles and W for power-only chargers', () => {
    const spec = chargingSchedule({ watts: 5000, validUntil: now + 900_000, schedule: [{ start: now + 60_000, watts: 0 }] }, { ...settings, kind: 'Relative', rateUnit: 'W' }, el, now);
    expect(spec.periods).toEqual([{ startPeriod: 0, limit: 5000, numberPhases: 3 }]);
    const req = setChargingProfile16(spec, { ...settings, kind: 'Relative', rateUnit: 'W', purpose: 'TxDefaultProfile' }, 1);
    expect(req.csChargingProfiles).not.toHaveProperty('transactionId');
    expect((req.csChargingProfiles.chargingSchedule as Record<string, unknown>).startSchedule).toBeUndefined();
    expect(ocppSchemas().check('ocpp1.6', 'SetChargingProfile', 'req', req)).toEqual([]);
  });

  it('refuses a limit that already expired', () => {
    expect(() => chargingSchedule({ watts: 5000, validUntil: now - 1 }, settings, el, now)).toThrow(/expired/);
  });
});

describe('OCPP schemas', () => {
  it('reject what the OCA schema rejects and accept 0.1 steps', () => {
    const schemas = ocppSchemas();
    expect(schemas.check('ocpp1.6', 'ChangeConfiguration', 'req', { key: 'X', value: 5 })).toEqual(['/value must be string']);
    expect(schemas.check('ocpp1.6', 'BootNotification', 'conf', { status: 'Maybe', currentTime: T, interval: 1 })[0]).toMatch(/Accepted, Pending, Rejected/);
    expect(schemas.check('ocpp2.0.1', 'TransactionEvent', 'req', {})[0]).toMatch(/required/);
    expect(schemas.has('ocpp1.6', 'TransactionEvent', 'req')).toBe(false);
  });
});
