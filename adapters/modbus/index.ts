import { DateTime } from 'luxon';
import { configSchema, defineAdapter, Enum, Type, type ConfigIssue, type DeviceConfigBase, type Static } from '../../src/api/index.js';
import { ModbusConfigSchema, type ModbusDeviceConfig } from './config.js';
import { ModbusInverter } from './inverter.js';
import { loadProfile, ProfileError, type Profile } from './profile.js';
import { SunSpecInverterSim, type SimVariant } from './sim/inverter-sim.js';
import { probeSunSpec } from './sunspec/probe.js';
import { clearSkyPvW } from './sim/sun.js';

const profileProblems = (ref: string): { profile?: Profile; issues: ConfigIssue[] } => {
  try {
    return { profile: loadProfile(ref), issues: [] };
  } catch (err) {
    // one issue per problem: each names its own file:line inside the profile
    const messages = err instanceof ProfileError ? err.problems : [String((err as Error)?.message ?? err)];
    return { issues: messages.map((message) => ({ path: ['profile'], message })) };
  }
};

export const modbusAdapter = defineAdapter<ModbusDeviceConfig>({
  id: 'modbus',
  description: 'Battery and hybrid inverters over Modbus TCP or RTU, by register profile: SunSpec (auto-discovered), Victron GX, SolarEdge StorEdge, Huawei SUN2000, Sungrow SH, GoodWe ET/EH, Fronius GEN24',
  configSchema: configSchema(ModbusConfigSchema),
  check(config) {
    const issues: ConfigIssue[] = [];
    const { profile, issues: profileIssues } = profileProblems(config.profile);
    if (profileIssues.length) return profileIssues;
    const p = profile!;
    if (config.capacity_wh !== undefined && !p.measures.has('battery_soc') && !p.measures.has('battery_power')) {
      issues.push({ path: ['capacity_wh'], message: `profile ${p.id} reads no battery; remove capacity_wh or pick a battery profile` });
    }
    if (config.pv_kwp !== undefined && !p.measures.has('pv_power')) issues.push({ path: ['pv_kwp'], message: `profile ${p.id} reads no PV power` });
    if (config.pv_rated_w !== undefined && config.pv_kwp === undefined) issues.push({ path: ['pv_rated_w'], message: 'needs pv_kwp (the device has no PV without it)' });
    if (config.pv_rated_w !== undefined && !p.pvLimit) issues.push({ path: ['pv_rated_w'], message: `profile ${p.id} cannot limit PV power (no pv_limit)` });
    if (config.meter_unit !== undefined && ![...p.points.values()].some((x) => x.onMeter)) issues.push({ path: ['meter_unit'], message: `profile ${p.id} reads no separate meter unit` });
    if (config.soc_min_pct >= config.soc_max_pct) issues.push({ path: ['soc_min_pct'], message: `must be below soc_max_pct (${config.soc_max_pct})` });
    if (config.watchdog_s !== undefined && config.watchdog_s < 2 * config.poll_s) {
      issues.push({ path: ['watchdog_s'], message: `must be at least twice poll_s (${config.poll_s} s): commands are refreshed on polls` });
    }
    return issues;
  },
  create(ctx, config) {
    const inverter = new ModbusInverter(ctx, config, loadProfile(config.profile));
    return {
      devices: [inverter.device],
      start: () => inverter.start(),
      stop: () => inverter.stop(),
    };
  },
  probeModbus: (transport, unit) => probeSunSpec((address, count) => transport.readHolding(unit, address, count), transport.id, unit),
  modbusUnits(config) {
    let profile: Profile | undefined;
    try {
      profile = loadProfile(config.profile);
    } catch {
      // a broken profile is reported by check(); the unit given is all that is known
    }
    const unit = config.unit ?? profile?.defaultUnit ?? 1;
    return { connection: config.connection, units: [...new Set([unit, config.meter_unit ?? profile?.meterUnit ?? unit])] };
  },
});

const SunSpecSimConfigSchema = Type.Object({
  host: Type.String({ default: '127.0.0.1' }),
  port: Type.Integer({ minimum: 1, maximum: 65535, default: 1502 }),
  unit: Type.Integer({ minimum: 1, maximum: 247, default: 1 }),
  variant: Enum(['legacy', 'der'] satisfies SimVariant[], { default: 'legacy', description: 'legacy: models 1, 103, 160, 124, 203, 802; der: 1, 701, 702, 704, 713, 714, 203' }),
  capacity_wh: Type.Number({ minimum: 100, default: 10000 }),
  initial_soc_pct: Type.Number({ minimum: 0, maximum: 100, default: 50 }),
  max_charge_w: Type.Number({ minimum: 0, default: 5000 }),
  max_discharge_w: Type.Number({ minimum: 0, default: 5000 }),
  min_reserve_pct: Type.Number({ minimum: 0, maximum: 100, default: 5 }),
  pv_kwp: Type.Number({ minimum: 0, default: 4 }),
  latitude: Type.Number({ minimum: -90, maximum: 90, default: 50 }),
  tick_s: Type.Number({ minimum: 0.1, maximum: 60, default: 2 }),
});
type SunSpecSimConfig = DeviceConfigBase & Static<typeof SunSpecSimConfigSchema>;

/**
 * The demo's SunSpec battery inverter: a Modbus TCP server on the hub's machine. It makes no device
 * of its own; a `modbus` device with `profile: sunspec` reads and commands it like real hardware.
 */
export const sunspecSimAdapter = defineAdapter<SunSpecSimConfig>({
  id: 'sunspec_sim',
  simulatesPeer: true,
  description: 'Simulated SunSpec hybrid inverter (PV, battery, grid meter, model 124 controls) served on Modbus TCP; read it with a modbus device',
  configSchema: configSchema(SunSpecSimConfigSchema),
  create(ctx, config) {
    const sim = new SunSpecInverterSim(
      {
        capacityWh: config.capacity_wh,
        initialSocPct: config.initial_soc_pct,
        maxChargeW: config.max_charge_w,
        maxDischargeW: config.max_discharge_w,
        minReservePct: config.min_reserve_pct,
        variant: config.variant,
        units: [config.unit],
        serial: `HFSIM-${config.id}`,
      },
      () => ctx.clock.now(),
    );
    const saved = ctx.store.get<number>('soc_wh');
    if (saved !== undefined) sim.socWh = Math.min(saved, config.capacity_wh);
    // the rest of the house as other devices meter it (+ = it draws)
    const others = new Map<string, number>();
    const unsubscribe = ctx.bus.on('meter.reading', ({ deviceId, reading }) => {
      if ((reading.channel ?? 'device') === 'device' && reading.powerW !== undefined) others.set(deviceId, reading.powerW);
    });
    let stopTick: (() => void) | undefined;
    let last = ctx.clock.now();
    const tick = () => {
      const now = ctx.clock.now();
      const offset = DateTime.fromMillis(now, { zone: ctx.site.timezone }).offset;
      sim.step(now - last, { pvW: clearSkyPvW(config.pv_kwp, now, config.latitude, offset), houseW: [...others.values()].reduce((a, b) => a + b, 0) });
      last = now;
      void ctx.store.set('soc_wh', sim.socWh);
    };
    return {
      devices: [],
      async start() {
        tick();
        const port = await sim.listen(config.port, config.host);
        ctx.log.info({ host: config.host, port, unit: config.unit }, `simulated SunSpec inverter listening on ${config.host}:${port}`);
        stopTick = ctx.clock.every(config.tick_s * 1000, tick);
      },
      async stop() {
        stopTick?.();
        unsubscribe();
        await sim.close();
        await ctx.store.set('soc_wh', sim.socWh);
      },
    };
  },
});

export const modbusAdapters = [modbusAdapter, sunspecSimAdapter];
