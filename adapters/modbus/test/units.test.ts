import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRaw, decodeString, encodeRaw, encodeString, isNotImplemented, type ValueType } from '../codec.js';
import { compile } from '../expr.js';
import { parseProfile, ProfileError } from '../profile.js';
import { planReads } from '../registers.js';
import { discoverSunSpec } from '../sunspec/discovery.js';
import { layoutModel, sunspecModels } from '../sunspec/models.js';
import { SunSpecImage } from '../sim/image.js';
import { smaDump } from './peers.js';

describe('register codecs', () => {
  it.each<[ValueType, number[], 'high_first' | 'low_first', number]>([
    ['u16', [0xffff], 'high_first', 65535],
    ['i16', [0xfffd], 'high_first', -3],
    ['u32', [0x0001, 0x0002], 'high_first', 65538],
    ['i32', [0xffff, 0xf630], 'high_first', -2512],
    ['i32', [0xfc23, 0xffff], 'low_first', -989],
    ['f32', [0x4624, 0x4980], 'high_first', 10514.375],
    ['f32', [0x4980, 0x4624], 'low_first', 10514.375],
    ['acc32', [0x002d, 0x54fc], 'high_first', 2970876],
    ['u64', [0, 0, 1, 0], 'high_first', 65536],
    ['sunssf', [0xfffe], 'high_first', -2],
  ])('%s %j (%s) decodes to %d', (type, words, order, value) => {
    expect(decodeRaw(type, words, order)).toBe(value);
  });

  it('encodes what it decodes, for every integer type and both word orders', () => {
    const types: [ValueType, number, number][] = [['u16', 0, 0xffff], ['i16', -0x8000, 0x7fff], ['u32', 0, 0xffffffff], ['i32', -0x80000000, 0x7fffffff]];
    for (const [type, lo, hi] of types) {
      fc.assert(
        fc.property(fc.integer({ min: lo, max: hi }), fc.constantFrom<'high_first' | 'low_first'>('high_first', 'low_first'), (v, order) => decodeRaw(type, encodeRaw(type, v, order), order) === v),
      );
    }
  });

  it('refuses values that do not fit, saying the range', () => {
    expect(() => encodeRaw('u16', 70000)).toThrow('70000 does not fit a u16 register (0 to 65535)');
    expect(() => encodeRaw('i16', -40000)).toThrow('does not fit a i16 register');
    expect(() => encodeRaw('u32', -1)).toThrow('does not fit a u32 register');
  });

  it('knows the SunSpec "not implemented" values', () => {
    expect(isNotImplemented('i16', -0x8000)).toBe(true);
    expect(isNotImplemented('u16', 0xffff)).toBe(true);
    expect(isNotImplemented('acc32', 0)).toBe(true);
    expect(isNotImplemented('i32', -0x80000000)).toBe(true);
    expect(isNotImplemented('f32', NaN)).toBe(true);
    expect(isNotImplemented('u16', 0)).toBe(false);
  });

  it('reads and writes string registers', () => {
    expect(decodeString([0x534d, 0x4100, 0, 0])).toBe('SMA');
    expect(decodeString(encodeString('SB3.6-1AV-41', 16))).toBe('SB3.6-1AV-41');
  });
});

describe('profile expressions', () => {
  const values: Record<string, number | undefined> = { a: 10, b: 4, state: 0b100101, missing: undefined };
  const lookup = (n: string) => values[n];
  it.each<[string, number | undefined]>([
    ['a + b * 2', 18],
    ['(a + b) * 2', 28],
    ['-a', -10],
    ['a / 0', undefined],
    ['missing + 1', undefined],
    ['sum(a, missing, b)', 14],
    ['sum(missing)', undefined],
    ['coalesce(missing, b)', 4],
    ['has(missing) ? 1 : 2', 2],
    ['a > b && b >= 4', 1],
    ['a == 10 || missing', 1],
    ['missing || a', 1],
    ['a < 0 && missing', 0],
    ['missing && a', undefined],
    ['clamp(a * 20, 0, 100)', 100],
    ['bit(state, 2) - bit(state, 1)', 1],
    ['0xCC', 204],
    ['null', undefined],
    ['round(2.5) + ceil(0.2) + floor(-0.2) + abs(-3) + min(1, 2) + max(1, 2)', 3 + 1 - 1 + 3 + 1 + 2],
  ])('%s = %s', (src, expected) => {
    expect(compile(src).evaluate(lookup)).toBe(expected);
  });

  it('says where an expression is wrong', () => {
    expect(() => compile('a +')).toThrow('unexpected end at column 4 of "a +"');
    expect(() => compile('foo(1)')).toThrow('unknown function "foo"');
    expect(() => compile('bit(1)')).toThrow('bit() takes 2 arguments, got 1');
    expect(() => compile('a + zz', (n) => n === 'a')).toThrow('unknown name "zz" at column 5');
    expect(() => compile('a $ b')).toThrow('unexpected character "$" at column 3');
  });
});

describe('profile files', () => {
  const problems = (text: string): string[] => {
    try {
      parseProfile(text, 'my.yaml');
    } catch (err) {
      expect(err).toBeInstanceOf(ProfileError);
      return (err as ProfileError).problems;
    }
    throw new Error('expected problems');
  };

  it('locates schema errors by file, line and key', () => {
    const p = problems(['id: mine', 'name: Mine', 'points:', '  soc: { address: 10, type: u17 }', 'measures:', '  battery_soc: soc'].join('\n'));
    expect(p).toEqual(['my.yaml:4:29 points.soc.type: must be one of u16, i16, u32, i32, f32, u64, i64, acc32, acc64, string, sunssf, enum16, bitfield16, bitfield32']);
  });

  it('catches sign conventions, unknown names, read-only writes and missing auto', () => {
    const p = problems(
      [
        'id: mine',
        'name: Mine',
        'points:',
        '  w: { address: 10, type: i16 }',
        '  mode: { address: 20, type: u16 }',
        'measures:',
        '  battery_power: w',
        '  grid_power: { expr: "w + nope", positive: import }',
        'modes:',
        '  charge:',
        '    - writes: [ { point: mode, value: power } ]',
      ].join('\n'),
    );
    expect(p).toEqual([
      expect.stringMatching(/^my\.yaml:7:18 measures\.battery_power: battery_power needs "positive: charging" or "positive: discharging"/),
      expect.stringMatching(/^my\.yaml:8:\d+ measures\.grid_power: unknown name "nope"/),
      expect.stringMatching(/^my\.yaml:11:\d+ modes\.charge\[0\]\.writes\[0\]\.point: point "mode" is read-only/),
      expect.stringMatching(/^my\.yaml:10:3 modes: a profile that commands the inverter must say how to return it to "auto"/),
    ]);
  });

  it('checks SunSpec points against the model definitions', () => {
    const p = problems(
      [
        'id: mine',
        'name: Mine',
        'sunspec: true',
        'points:',
        '  soc: { model: 124, point: ChaStat }',
        '  dcw: { model: 160, point: module.DCW }',
        '  ro: { model: 802, point: SoC, access: rw }',
        '  nope: { model: 999, point: W }',
        'measures:',
        '  battery_soc: soc',
      ].join('\n'),
    );
    expect(p[0]).toMatch(/^my\.yaml:5:\d+ points\.soc\.point: model 124 has no point "ChaStat" \(it has ID, L, WChaMax/);
    expect(p[1]).toMatch(/points\.dcw: module\.DCW is in a repeating group: give "index"/);
    expect(p[2]).toMatch(/points\.ro\.access: model 802 point SoC is read-only/);
    expect(p[3]).toMatch(/points\.nope\.model: SunSpec model 999 is not known to homeflex/);
  });

  it('refuses point names that shadow measures or command variables', () => {
    const p = problems(['id: mine', 'name: Mine', 'points:', '  power: { address: 1, type: u16 }', '  pv_power: { address: 2, type: u16 }', 'measures:', '  battery_soc: power'].join('\n'));
    expect(p.join('\n')).toMatch(/"pv_power" is a measure name/);
    expect(p.join('\n')).toMatch(/"power" is a command variable/);
  });
});

describe('read planning', () => {
  const span = (key: string, address: number, count = 1, fn: 'holding' | 'input' = 'holding', unit = 1) => ({ key, unit, function: fn, address, count });
  it('joins nearby registers of one unit and function, within the request size', () => {
    const blocks = planReads([span('a', 100), span('b', 110, 2), span('c', 140), span('d', 100, 1, 'input'), span('e', 100, 1, 'holding', 2)], 125, 16);
    expect(blocks.map((b) => [b.unit, b.function, b.address, b.count, b.members])).toEqual([
      [1, 'holding', 100, 12, ['a', 'b']],
      [1, 'holding', 140, 1, ['c']],
      [1, 'input', 100, 1, ['d']],
      [2, 'holding', 100, 1, ['e']],
    ]);
    expect(planReads([span('a', 0), span('b', 100)], 50, 200).length).toBe(2);
  });

  it('reads points alone that the device refused to read joined', () => {
    const blocks = planReads([span('a', 100), span('b', 101), span('c', 102)], 125, 16, new Set(['b']));
    expect(blocks.map((b) => b.members)).toEqual([['a'], ['b'], ['c']]);
  });
});

describe('SunSpec model layouts', () => {
  it('lays out the SMA dump the way its registers say', async () => {
    const words = smaDump();
    const read = async (address: number, count: number) => {
      const out = words.slice(address - 40000, address - 40000 + count);
      if (address < 40000 || out.length < count) throw new Error(`outside the dump: ${address}`);
      return out;
    };
    const map = await discoverSunSpec(read, 1, [40000]);
    expect(map.models.map((m) => [m.id, m.start, m.length])).toEqual([
      [1, 40002, 66], [11, 40070, 13], [12, 40085, 98], [101, 40185, 50], [120, 40237, 26], [121, 40265, 30], [122, 40297, 44],
      [123, 40343, 24], [124, 40369, 24], [126, 40395, 64], [127, 40461, 10], [128, 40473, 14], [131, 40489, 64], [132, 40555, 64],
      [160, 40621, 128], [129, 40751, 60], [130, 40813, 60],
    ]);
    const mppt = map.models.find((m) => m.id === 160)!;
    // six modules of 20 registers after 8 fixed ones
    expect(mppt.layout!.get('module[5].DCEvt')!.offset).toBe(2 + 8 + 5 * 20 + 18);
    expect(mppt.layout!.has('module[6].DCW')).toBe(false);
  });

  it('gives every model homeflex uses a layout that fills its declared length', () => {
    for (const [id, def] of sunspecModels()) {
      const img = new SunSpecImage([{ id, repeats: 2 }]);
      const length = img.read(40003, 1)![0];
      const layout = layoutModel(def, length);
      const end = Math.max(...[...layout.values()].map((l) => l.offset + l.def.size));
      expect([id, end]).toEqual([id, length + 2]);
    }
  });

  it('reports a device without a SunSpec marker with what it found at each base', async () => {
    const read = async (address: number) => (address === 40000 ? [0x1234, 0x5678] : [0, 0]);
    await expect(discoverSunSpec(read, 3)).rejects.toThrow('unit 3: no SunSpec marker "SunS" (0x5375 0x6E53) found (40000: 0x1234 0x5678; 0: 0x0000 0x0000; 50000: 0x0000 0x0000)');
  });
});
