import { DateTime } from 'luxon';
import { defineAdapter, type ConfigIssue, type DeviceConfigBase } from '../../src/api/index.js';
import { ModbusInverter, type ModbusDeviceConfig } from './inverter.js';
import { loadProfile, ProfileError, shippedProfileIds, type Profile } from './profile.js';
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
  configSchema: {
    required: ['connection', 'profile'],
    properties: {
      connection: { type: 'string', description: 'The connections.modbus[] id the device is behind' },
      unit: { type: 'integer', minimum: 0, maximum: 255, description: 'Modbus unit id (default: the profile\'s, usually 1)' },
      profile: { type: 'string', minLength: 1, description: `Register profile: ${safeProfileIds().join(', ')}; or the path of your own .yaml profile` },
      meter_unit: { type: 'integer', minimum: 0, maximum: 255, description: 'Unit id of the grid meter when it answers on its own unit (Fronius: 200)' },
      capacity_wh: { type: 'number', exclusiveMinimum: 0, description: 'Usable battery capacity (Wh); gives the device the storage capability' },
      max_charge_w: { type: 'number', minimum: 0, description: 'Charge power limit for commands and planning (default capacity_wh / 2)' },
      max_discharge_w: { type: 'number', minimum: 0, description: 'Discharge power limit for commands and planning (default capacity_wh / 2)' },
      soc_min_pct: { type: 'number', minimum: 0, maximum: 100, default: 5 },
      soc_max_pct: { type: 'number', minimum: 0, maximum: 100, default: 100 },
      charge_efficiency: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.95 },
      discharge_efficiency: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.95 },
      poll_s: { type: 'number', minimum: 1, maximum: 3600, default: 10, description: 'Seconds between polls' },
      watchdog_s: { type: 'integer', minimum: 10, maximum: 86400, description: 'Revert time written to the inverter with each command; homeflex re-sends before it runs out (default: the profile\'s)' },
      pv_kwp: { type: 'number', exclusiveMinimum: 0, description: 'Peak power of the PV strings on this inverter; gives the device the pv capability' },
      pv_rated_w: { type: 'number', exclusiveMinimum: 0, description: 'Rated AC power of the PV inverter (W): what a curtailment limit in % refers to where the inverter does not publish it (default pv_kwp × 1000)' },
      pv_tilt: { type: 'number', minimum: 0, maximum: 90 },
      pv_azimuth: { type: 'number', minimum: 0, maximum: 360 },
      invert: {
        type: 'array',
        uniqueItems: true,
        default: [],
        items: { enum: ['battery_power', 'grid_power', 'pv_power'] },
        description: 'Flip the sign of these measures (firmware that disagrees with its own documentation)',
      },
      read_only: { type: 'boolean', default: false, description: 'Only read; refuse every command' },
    },
  },
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

function safeProfileIds(): string[] {
  try {
    return shippedProfileIds();
  } catch {
    return [];
  }
}

interface SunSpecSimConfig extends DeviceConfigBase {
  host: string;
  port: number;
  unit: number;
  variant: SimVariant;
  capacity_wh: number;
  initial_soc_pct: number;
  max_charge_w: number;
  max_discharge_w: number;
  min_reserve_pct: number;
  pv_kwp: number;
  latitude: number;
  tick_s: number;
}

/**
 * The demo's SunSpec battery inverter: a Modbus TCP server on the hub's machine. It makes no device
 * of its own; a `modbus` device with `profile: sunspec` reads and commands it like real hardware.
 */
export const sunspecSimAdapter = defineAdapter<SunSpecSimConfig>({
  id: 'sunspec_sim',
  simulatesPeer: true,
  description: 'Simulated SunSpec hybrid inverter (PV, battery, grid meter, model 124 controls) served on Modbus TCP; read it with a modbus device',
  configSchema: {
    properties: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'integer', minimum: 1, maximum: 65535, default: 1502 },
      unit: { type: 'integer', minimum: 1, maximum: 247, default: 1 },
      variant: { enum: ['legacy', 'der'], default: 'legacy', description: 'legacy: models 1, 103, 160, 124, 203, 802; der: 1, 701, 702, 704, 713, 714, 203' },
      capacity_wh: { type: 'number', minimum: 100, default: 10000 },
      initial_soc_pct: { type: 'number', minimum: 0, maximum: 100, default: 50 },
      max_charge_w: { type: 'number', minimum: 0, default: 5000 },
      max_discharge_w: { type: 'number', minimum: 0, default: 5000 },
      min_reserve_pct: { type: 'number', minimum: 0, maximum: 100, default: 5 },
      pv_kwp: { type: 'number', minimum: 0, default: 4 },
      latitude: { type: 'number', minimum: -90, maximum: 90, default: 50 },
      tick_s: { type: 'number', minimum: 0.1, maximum: 60, default: 2 },
    },
  },
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
