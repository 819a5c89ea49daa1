import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { StorageCommand } from '../../../src/api/index.js';
import { ManualClock } from '../../../src/core/clock.js';
import { encodeRaw } from '../codec.js';
import { ModbusInverter, type ModbusDeviceConfig } from '../inverter.js';
import { loadProfile, shippedProfileIds, type MeasureName } from '../profile.js';
import { SunSpecImage, type ModelSpec } from '../sim/image.js';
import { adapterContext, deviceDefaults, tcpConnection } from './harness.js';
import { emptyUnit, goodweFrame, ImageServer, putWords, smaDump, type DeviceImage, type UnitImage } from './peers.js';

/**
 * Every shipped profile, loaded and run against a register image served over Modbus TCP on
 * 127.0.0.1: what it decodes, and what each command writes.
 */

interface CommandCase {
  cmd: StorageCommand;
  /** Expected writes in order: [unit, address, words]. */
  writes: [number, number, number[]][];
}

interface ProfileCase {
  profile: string;
  /** Where the register image comes from. */
  source: string;
  image: () => DeviceImage;
  config?: Partial<ModbusDeviceConfig>;
  expect: Partial<Record<MeasureName, number | undefined>>;
  points?: Record<string, number | undefined>;
  commands?: CommandCase[];
  /** Commands the profile must refuse on this device, with the message. */
  refuses?: { cmd: StorageCommand; message: RegExp }[];
}

const u32 = (v: number) => encodeRaw('u32', v);
const i32 = (v: number) => encodeRaw('i32', v);
const u32le = (v: number) => encodeRaw('u32', v, 'low_first');
const i32le = (v: number) => encodeRaw('i32', v, 'low_first');
const f32le = (v: number) => encodeRaw('f32', v, 'low_first');

function unitFrom(words: Map<number, number>): UnitImage {
  return { holding: words, input: new Map() };
}

function sunspecUnit(specs: ModelSpec[], fill: (img: SunSpecImage) => void): UnitImage {
  const img = new SunSpecImage(specs);
  fill(img);
  return unitFrom(new Map(img.words));
}

const CASES: ProfileCase[] = [
  {
    profile: 'sunspec',
    source: 'real dump: SMA SB3.6-1AV-41 holding registers from 40000 (nielsbasjes/sunspec-device)',
    image: () => {
      const u = emptyUnit();
      putWords(u.holding, 40000, smaDump());
      return new Map([[126, u]]);
    },
    config: { unit: 126, capacity_wh: undefined },
    // a PV-only inverter (model 124 present but nothing implemented): AC power and energy are the PV's
    expect: { pv_power: 970, pv_energy_wh: 29708760, battery_soc: undefined, battery_power: undefined, grid_power: undefined },
    // model 160: 1.8 A × 330 V ≈ 610 W and 1.9 A × 231 V ≈ 440 W. The toolkit's own expected values
    // (180, 190) read the modules two registers early; DC 1050 W against 970 W AC confirms this reading
    points: { pv0_w: 610, pv1_w: 440, pv2_w: undefined, inv_w: 970 },
    refuses: [{ cmd: { mode: 'charge', powerW: 1000 }, message: /cannot set "charge" with profile sunspec: variant 1: cannot compute in_wrte/ }],
  },
  {
    profile: 'goodwe-et',
    source: 'real frames: GoodWe GW10K-ET running data (35100+), meter (36000+), battery (37000+) (marcelblijleven/goodwe)',
    image: () => {
      const u = emptyUnit();
      putWords(u.holding, 35100, goodweFrame('GW10K-ET_running_data.hex'));
      putWords(u.holding, 36000, goodweFrame('GW10K-ET_meter_data.hex'));
      putWords(u.holding, 37000, goodweFrame('GW10K-ET_battery_info.hex'));
      putWords(u.holding, 47511, [1, 0]);
      return new Map([[247, u]]);
    },
    // values as the goodwe library's test_et.py states them: SoC 68 %, ppv 3456 W, battery mode
    // "Charge", e_bat_charge_total 2758.1 kWh, meter_e_total_imp 3254.462 kWh, active_power_total -110 W
    expect: {
      battery_soc: 68,
      battery_power: 2512,
      pv_power: 3456,
      pv_energy_wh: 6085300,
      battery_charge_wh: 2758100,
      battery_discharge_wh: 2442100,
      grid_power: 110,
      grid_import_wh: 3254462.25,
      grid_export_wh: 10514.375,
    },
    commands: [
      { cmd: { mode: 'charge', powerW: 3000 }, writes: [[247, 47512, [3000]], [247, 47511, [11]]] },
      { cmd: { mode: 'discharge', powerW: 9000 }, writes: [[247, 47512, [5000]], [247, 47511, [12]]] },
      { cmd: { mode: 'hold' }, writes: [[247, 47512, [0]], [247, 47511, [8]]] },
      { cmd: { mode: 'auto' }, writes: [[247, 47511, [1]], [247, 47512, [0]]] },
    ],
  },
  {
    profile: 'victron-gx',
    source: 'synthetic values at the addresses of the GX register map (attributes.csv is a map, not a dump)',
    image: () => {
      const u = emptyUnit();
      putWords(u.input, 808, [0, 0, 0, 150, 0, 0]);
      putWords(u.input, 820, [300, 200, encodeRaw('i16', -100)[0]]);
      putWords(u.input, 842, [encodeRaw('i16', -1200)[0], 64]);
      putWords(u.input, 850, [900]);
      putWords(u.holding, 2716, [0, 0]);
      return new Map([[100, u]]);
    },
    expect: { battery_soc: 64, battery_power: -1200, pv_power: 1050, grid_power: 400 },
    commands: [
      // house load = grid 400 - battery (-1200) = 1600 W; charging at 2000 W needs 3600 W from the grid
      { cmd: { mode: 'charge', powerW: 2000 }, writes: [[100, 2716, i32(3600)]] },
      { cmd: { mode: 'discharge', powerW: 1000 }, writes: [[100, 2716, i32(600)]] },
      { cmd: { mode: 'hold' }, writes: [[100, 2716, i32(1600)]] },
      { cmd: { mode: 'auto' }, writes: [[100, 2716, i32(0)]] },
    ],
  },
  {
    profile: 'solaredge-storedge',
    source: 'synthetic: SolarEdge SunSpec layout (inverter 103, meter 1 + 203 chained) and 0xE000 storage block',
    image: () => {
      const u = sunspecUnit([{ id: 1 }, { id: 103 }, { id: 1 }, { id: 203 }], (img) => {
        img.setRaw(1, 'Mn', 'SolarEdge');
        img.setRaw(1, 'Md', 'SE8K-RWS48BEN4');
        img.setRaw(103, 'W_SF', 0);
        img.setRaw(103, 'DCW_SF', -1);
        img.set(103, 'W', 2400);
        img.set(103, 'DCW', 2500.5);
        img.setRaw(203, 'W_SF', 0);
        img.setRaw(203, 'TotWh_SF', 0);
        img.set(203, 'W', 300);
        img.set(203, 'TotWhImp', 1_200_000);
        img.set(203, 'TotWhExp', 3_400_000);
      });
      putWords(u.holding, 0xe142, f32le(9700));
      putWords(u.holding, 0xe174, f32le(-1850.5));
      putWords(u.holding, 0xe184, f32le(55.5));
      return new Map([[1, u]]);
    },
    expect: { battery_soc: 55.5, battery_power: -1850.5, battery_capacity_wh: 9700, pv_power: 650, grid_power: -300, grid_import_wh: 1_200_000, grid_export_wh: 3_400_000 },
    config: { watchdog_s: 60 },
    commands: [
      {
        cmd: { mode: 'charge', powerW: 2500 },
        writes: [[1, 0xe004, [4]], [1, 0xe005, [1]], [1, 0xe00a, [7]], [1, 0xe00b, u32le(60)], [1, 0xe00e, f32le(2500)], [1, 0xe00d, [3]]],
      },
      { cmd: { mode: 'hold' }, writes: [[1, 0xe004, [4]], [1, 0xe00a, [7]], [1, 0xe00b, u32le(60)], [1, 0xe010, f32le(0)], [1, 0xe00d, [7]]] },
      { cmd: { mode: 'auto' }, writes: [[1, 0xe004, [1]]] },
    ],
  },
  {
    profile: 'huawei-sun2000',
    source: 'synthetic: Huawei SUN2000 Modbus interface definitions',
    image: () => {
      const u = emptyUnit();
      putWords(u.holding, 32064, i32(4200));
      putWords(u.holding, 37113, i32(-650));
      putWords(u.holding, 37119, [...i32(123456), ...i32(98765)]);
      putWords(u.holding, 37758, [...u32(10000), 655, 0, 0, 0, 0, ...i32(3000)]);
      putWords(u.holding, 37780, [...u32(45678), ...u32(40000)]);
      return new Map([[1, u]]);
    },
    expect: {
      battery_soc: 65.5,
      battery_power: 3000,
      battery_capacity_wh: 10000,
      battery_charge_wh: 456780,
      battery_discharge_wh: 400000,
      pv_power: 4200,
      grid_power: 650,
      grid_export_wh: 1234560,
      grid_import_wh: 987650,
    },
    config: { max_charge_w: 5000, max_discharge_w: 5000 },
    commands: [
      {
        cmd: { mode: 'charge', powerW: 3000 },
        writes: [[1, 47087, [1]], [1, 47075, u32(5000)], [1, 47246, [0]], [1, 47083, [2]], [1, 47247, u32(3000)], [1, 47100, [1]]],
      },
      { cmd: { mode: 'discharge', powerW: 2000 }, writes: [[1, 47077, u32(5000)], [1, 47246, [0]], [1, 47083, [2]], [1, 47249, u32(2000)], [1, 47100, [2]]] },
      { cmd: { mode: 'hold' }, writes: [[1, 47100, [0]], [1, 47077, u32(0)]] },
      { cmd: { mode: 'auto' }, writes: [[1, 47100, [0]], [1, 47075, u32(5000)], [1, 47077, u32(5000)]] },
    ],
  },
  {
    profile: 'sungrow-sh',
    source: 'synthetic: Sungrow hybrid inverter protocol (input registers, 0-based)',
    image: () => {
      const u = emptyUnit();
      putWords(u.input, 5016, u32le(2800));
      // running state: bit 0 PV, bit 2 battery discharging, bit 5 importing
      putWords(u.input, 13000, [0b100101, 0, ...u32le(123456)]);
      putWords(u.input, 13009, i32le(-989));
      putWords(u.input, 13021, [1500, 873]);
      putWords(u.input, 13026, u32le(1257));
      putWords(u.input, 13036, u32le(4183));
      putWords(u.input, 13040, u32le(1311));
      putWords(u.input, 13045, u32le(20480));
      return new Map([[1, u]]);
    },
    expect: {
      battery_soc: 87.3,
      battery_power: -1500,
      battery_charge_wh: 131100,
      battery_discharge_wh: 125700,
      pv_power: 2800,
      pv_energy_wh: 12345600,
      grid_power: 989,
      grid_import_wh: 418300,
      grid_export_wh: 2048000,
    },
    commands: [
      { cmd: { mode: 'discharge', powerW: 2000 }, writes: [[1, 13049, [2]], [1, 13051, [2000]], [1, 13050, [0xbb]]] },
      { cmd: { mode: 'charge', powerW: 1500 }, writes: [[1, 13049, [2]], [1, 13051, [1500]], [1, 13050, [0xaa]]] },
      { cmd: { mode: 'auto' }, writes: [[1, 13049, [0]], [1, 13050, [0xcc]]] },
    ],
  },
  {
    profile: 'fronius-gen24',
    source: 'synthetic: Fronius GEN24 SunSpec layout (103, 160 with 4 modules, 124; meter 203 on unit 200)',
    image: () => {
      const inverter = sunspecUnit([{ id: 1 }, { id: 103 }, { id: 160, repeats: 4 }, { id: 124 }], (img) => {
        img.setRaw(1, 'Mn', 'Fronius');
        for (const p of ['DCA_SF', 'DCV_SF', 'DCW_SF', 'DCWH_SF']) img.setRaw(160, p, 0);
        [2100, 1900, 0, 1500].forEach((w, i) => img.set(160, `module[${i}].DCW`, w));
        [5_000_000, 4_000_000, 900_000, 800_000].forEach((wh, i) => img.set(160, `module[${i}].DCWH`, wh));
        for (const [p, v] of [['WChaMax_SF', 0], ['ChaState_SF', -1], ['InOutWRte_SF', -2], ['WChaDisChaGra_SF', 0]] as const) img.setRaw(124, p, v);
        img.set(124, 'WChaMax', 10000);
        img.set(124, 'ChaState', 42.5);
      });
      const meter = sunspecUnit([{ id: 1 }, { id: 203 }], (img) => {
        img.setRaw(203, 'W_SF', 0);
        img.setRaw(203, 'TotWh_SF', 0);
        img.set(203, 'W', 800);
        img.set(203, 'TotWhImp', 2_000_000);
        img.set(203, 'TotWhExp', 7_000_000);
      });
      return new Map([[1, inverter], [200, meter]]);
    },
    expect: {
      battery_soc: 42.5,
      battery_power: -1500,
      battery_charge_wh: 900_000,
      battery_discharge_wh: 800_000,
      pv_power: 4000,
      pv_energy_wh: 9_000_000,
      grid_power: -800,
      grid_import_wh: 2_000_000,
      grid_export_wh: 7_000_000,
    },
    config: { watchdog_s: 120, max_charge_w: 10000, max_discharge_w: 10000 },
    commands: [],
  },
];

// addresses of model 124 in the Fronius image, for its expected writes
{
  const img = new SunSpecImage([{ id: 1 }, { id: 103 }, { id: 160, repeats: 4 }, { id: 124 }]);
  const at = (p: string) => img.address(124, p);
  const gen24 = CASES.find((c) => c.profile === 'fronius-gen24')!;
  gen24.commands = [
    { cmd: { mode: 'charge', powerW: 3000 }, writes: [[1, at('ChaGriSet'), [1]], [1, at('OutWRte'), encodeRaw('i16', -3000)], [1, at('InOutWRte_RvrtTms'), [120]], [1, at('StorCtl_Mod'), [2]]] },
    { cmd: { mode: 'discharge', powerW: 2500 }, writes: [[1, at('InWRte'), encodeRaw('i16', -2500)], [1, at('InOutWRte_RvrtTms'), [120]], [1, at('StorCtl_Mod'), [1]]] },
    { cmd: { mode: 'hold' }, writes: [[1, at('OutWRte'), [0]], [1, at('InOutWRte_RvrtTms'), [120]], [1, at('StorCtl_Mod'), [2]]] },
    { cmd: { mode: 'auto' }, writes: [[1, at('StorCtl_Mod'), [0]], [1, at('InWRte'), [10000]], [1, at('OutWRte'), [10000]], [1, at('InOutWRte_RvrtTms'), [0]]] },
  ];
}

const servers: ImageServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

describe('shipped Modbus profiles', () => {
  it('has a table case for every shipped profile', () => {
    expect(CASES.map((c) => c.profile).sort()).toEqual(shippedProfileIds());
  });

  describe.each(CASES)('$profile', (c) => {
    it(`decodes ${c.source}`, async () => {
      const server = new ImageServer(c.image());
      servers.push(server);
      const clock = new ManualClock('2026-05-01T12:00:00Z');
      const conn = tcpConnection(await server.listen(), { clock });
      const ctx = adapterContext(conn, { clock });
      const config: ModbusDeviceConfig = {
        ...deviceDefaults,
        id: 'inverter',
        adapter: 'modbus',
        connection: 'lan',
        profile: c.profile,
        capacity_wh: 10000,
        ...c.config,
      };
      const inv = new ModbusInverter(ctx, config, loadProfile(c.profile));
      await inv.start();
      expect(inv.device.error).toBeUndefined();
      expect(inv.device.available).toBe(true);
      for (const [name, value] of Object.entries(c.expect)) expect([name, inv.measure(name as MeasureName)]).toEqual([name, value]);
      for (const [name, value] of Object.entries(c.points ?? {})) expect([name, inv.pointValues().get(name)]).toEqual([name, value]);
      for (const cc of c.commands ?? []) {
        server.writes.length = 0;
        await inv.device.caps.storage!.command(cc.cmd);
        expect(server.writes.map((w) => [w.unit, w.address, w.words])).toEqual(cc.writes);
        await inv.pollOnce();
        expect(inv.device.caps.storage!.state().mode).toBe(cc.cmd.mode);
      }
      for (const r of c.refuses ?? []) {
        const storage = inv.device.caps.storage;
        if (!storage) {
          // no capacity_wh: no storage capability; the command path is exercised through the inverter itself
          await expect(inv.command(r.cmd)).rejects.toThrow(r.message);
        } else await expect(storage.command(r.cmd)).rejects.toThrow(r.message);
      }
      await inv.stop();
      await conn.stop();
    });
  });
});

describe('Victron GX profile against the GX register map', () => {
  // attributes.csv: service, path, D-Bus type, unit, register, Modbus type, scale, R/W; value = register / scale
  const rows = readFileSync(fileURLToPath(new URL('./fixtures/victron-gx-attributes.csv', import.meta.url)), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const cells = line.split(',');
      // the enum column may hold commas; the last four cells are fixed
      const [register, type, scale, rw] = cells.slice(-4);
      return { service: cells[0], path: cells[1], register: Number(register), type, scale: Number(scale), rw };
    });
  const TYPES: Record<string, string> = { u16: 'uint16', i16: 'int16', u32: 'uint32', i32: 'int32' };
  const profile = loadProfile('victron-gx');
  it.each([...profile.points.values()])('point $name matches the register the GX serves', (p) => {
    expect(p.kind).toBe('fixed');
    if (p.kind !== 'fixed') return;
    const row = rows.find((r) => r.register === p.address && ['com.victronenergy.system', 'com.victronenergy.settings', 'com.victronenergy.hub4'].includes(r.service));
    expect(row, `register ${p.address} is in the map`).toBeDefined();
    expect(row!.type).toBe(TYPES[p.type]);
    expect(p.scale).toBeCloseTo(1 / row!.scale);
    expect(row!.rw === 'W').toBe(p.writable);
  });
});
