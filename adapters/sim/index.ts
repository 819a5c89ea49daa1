import { DateTime } from 'luxon';
import {
  configSchema,
  defineAdapter,
  Enum,
  EvChargeModeProperties,
  EvDefaultModeSchema,
  EvTargetSchema,
  Hhmm,
  StrictObject,
  SwitchedScheduleSchema,
  Type,
  type Static,
  type AdapterContext,
  type AdapterInstance,
  type ChargerLimit,
  type ChargerStatus,
  type ChargingSession,
  type DeviceConfigBase,
  type Device,
  type StorageCommand,
  type StorageMode,
} from '../../src/api/index.js';
import { SimMeter } from './meter.js';
import { baseLoadW, outdoorC, sunShare, thermalStep } from '../../src/api/physics.js';
import { simP1Adapter } from './p1.js';

const tickSchema = { tick_s: Type.Number({ minimum: 0.1, maximum: 3600, default: 10, description: 'Simulation step (s of hub clock time)' }) };

const localHour = (ctx: AdapterContext, t = ctx.clock.now()) => {
  const d = DateTime.fromMillis(t, { zone: ctx.site.timezone });
  return d.hour + d.minute / 60 + d.second / 3600;
};

/** Runs `step(dtMs)` every tick of the hub clock and persists counters now and then. */
function ticking(ctx: AdapterContext, tickS: number, meter: SimMeter, step: (dtMs: number) => void): Pick<AdapterInstance, 'start' | 'stop'> {
  let stopTick: (() => void) | undefined;
  let last = 0;
  let sincePersist = 0;
  return {
    async start() {
      meter.restore();
      last = ctx.clock.now();
      step(0);
      stopTick = ctx.clock.every(tickS * 1000, () => {
        const now = ctx.clock.now();
        // a wall clock that went back (NTP, a board without RTC) ran no energy backwards: nothing happened in between
        const dt = Math.max(0, now - last);
        last = now;
        step(dt);
        sincePersist += dt;
        if (sincePersist >= 60_000) {
          sincePersist = 0;
          void meter.persist();
        }
      });
    },
    async stop() {
      stopTick?.();
      await meter.persist();
    },
  };
}

const device = (config: DeviceConfigBase, adapter: string, caps: Device['caps']): Device => ({
  id: config.id,
  name: config.name ?? config.id,
  adapter,
  caps,
  available: true,
  circuit: config.circuit,
});

// ---------------------------------------------------------------- EV and charger
const SimEvConfigSchema = Type.Object({
  capacity_wh: Type.Number({ minimum: 1000, default: 60000, description: 'Car battery (Wh)' }),
  max_current_a: Type.Number({ minimum: 6, maximum: 80, default: 16 }),
  min_current_a: Type.Number({ minimum: 0, maximum: 32, default: 6 }),
  phases: Enum([1, 3], { default: 3 }),
  voltage: Type.Number({ default: 230 }),
  arrive: Hhmm({ default: '18:00', description: 'Local time the car plugs in' }),
  leave: Hhmm({ default: '07:30', description: 'Local time the car leaves' }),
  arrival_soc_pct: Type.Number({ minimum: 0, maximum: 100, default: 30 }),
  failsafe_w: Type.Optional(Type.Number({ minimum: 0, description: 'Power after the last limit expires (default: full power)' })),
  target: Type.Optional(EvTargetSchema),
  default_mode: EvDefaultModeSchema,
  ...EvChargeModeProperties,
  ...tickSchema,
});
type SimEvConfig = DeviceConfigBase & Static<typeof SimEvConfigSchema>;

export const simEv = defineAdapter<SimEvConfig>({
  id: 'sim_ev',
  description: 'Simulated EV charger with a car that plugs in and leaves every day',
  configSchema: configSchema(SimEvConfigSchema),
  create(ctx, config) {
    const meter = new SimMeter(ctx, config.id);
    const maxW = config.max_current_a * config.voltage * config.phases;
    const toMin = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
    const arrive = toMin(config.arrive);
    const leave = toMin(config.leave);
    let socWh = 0;
    let plugged = false;
    let session: ChargingSession | undefined;
    let limit: ChargerLimit | undefined;
    let powerW = 0;
    let sessionSeq = ctx.store.get<number>('session_seq') ?? 0;
    const isHome = () => {
      const m = Math.floor(localHour(ctx) * 60);
      return arrive > leave ? m >= arrive || m < leave : m >= arrive && m < leave;
    };
    const wantedW = (now: number) => {
      if (!limit || (limit.validUntil !== undefined && now >= limit.validUntil)) return config.failsafe_w ?? maxW;
      let w = limit.watts;
      for (const step of limit.schedule ?? []) if (step.start <= now) w = step.watts;
      return w;
    };
    const status = (): ChargerStatus => (!plugged ? 'available' : powerW > 0 ? 'charging' : socWh >= config.capacity_wh ? 'suspended_ev' : 'suspended_evse');
    const dev = device(config, 'sim_ev', {
      meter,
      charger: {
        status,
        session: () => session,
        evSocPct: () => (plugged ? Math.round((socWh / config.capacity_wh) * 1000) / 10 : undefined),
        setLimit: async (l) => {
          limit = l;
        },
        phases: config.phases,
        voltage: config.voltage,
        minCurrentA: config.min_current_a,
        maxCurrentA: config.max_current_a,
        evCapacityWh: config.capacity_wh,
      },
    });
    const minW = config.min_current_a * config.voltage * config.phases;
    const tick = ticking(ctx, config.tick_s, meter, (dtMs) => {
      const now = ctx.clock.now();
      const home = isHome();
      if (home && !plugged) {
        plugged = true;
        socWh = (config.arrival_soc_pct / 100) * config.capacity_wh;
        sessionSeq += 1;
        void ctx.store.set('session_seq', sessionSeq);
        session = { id: `${config.id}-${sessionSeq}`, start: now, energyWh: 0 };
        ctx.bus.emit('device.connected', { deviceId: config.id });
      } else if (!home && plugged) {
        plugged = false;
        if (session) session.end = now;
        ctx.bus.emit('device.disconnected', { deviceId: config.id });
      }
      // energy of the step that just ended, at the power held during it
      if (dtMs > 0 && powerW > 0 && session) {
        const wh = (powerW * dtMs) / 3_600_000;
        socWh = Math.min(config.capacity_wh, socWh + wh * 0.92);
        session.energyWh += wh;
      }
      // the reading on the tick the car leaves carries no session: it closes the session's last interval
      meter.record(powerW, dtMs, 'device', plugged ? session?.id : undefined);
      if (!plugged && session?.end === now) ctx.bus.emit('session.ended', { deviceId: config.id, sessionId: session.id, time: now });
      const want = plugged && socWh < config.capacity_wh ? Math.min(maxW, wantedW(now)) : 0;
      powerW = want >= minW ? want : 0;
    });
    return { devices: [dev], ...tick };
  },
});

// ---------------------------------------------------------------- home battery
const SimBatteryConfigSchema = Type.Object({
  capacity_wh: Type.Number({ minimum: 100, default: 10000 }),
  initial_soc_pct: Type.Number({ minimum: 0, maximum: 100, default: 50 }),
  soc_min_pct: Type.Number({ minimum: 0, maximum: 100, default: 5 }),
  max_charge_w: Type.Number({ minimum: 0, default: 5000 }),
  max_discharge_w: Type.Number({ minimum: 0, default: 5000 }),
  charge_efficiency: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.95 }),
  discharge_efficiency: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.95 }),
  ...tickSchema,
});
type SimBatteryConfig = DeviceConfigBase & Static<typeof SimBatteryConfigSchema>;

export const simBattery = defineAdapter<SimBatteryConfig>({
  id: 'sim_battery',
  description: 'Simulated home battery with inverter; in auto mode it covers the house from the other devices’ meters',
  configSchema: configSchema(SimBatteryConfigSchema),
  create(ctx, config) {
    const meter = new SimMeter(ctx, config.id);
    let socWh = ctx.store.get<number>('soc_wh') ?? (config.initial_soc_pct / 100) * config.capacity_wh;
    let command: StorageCommand = { mode: 'auto' };
    let powerW = 0;
    const socMinWh = (config.soc_min_pct / 100) * config.capacity_wh;
    // net site power of everything else, from the other devices' meters (+ = the house draws)
    const others = new Map<string, number>();
    const unsubscribe = ctx.bus.on('meter.reading', ({ deviceId, reading }) => {
      if (deviceId !== config.id && (reading.channel ?? 'device') === 'device' && reading.powerW !== undefined) others.set(deviceId, reading.powerW);
    });
    const mode = (now: number): StorageMode => (command.validUntil !== undefined && now >= command.validUntil ? 'auto' : command.mode);
    const dev = device(config, 'sim_battery', {
      meter,
      storage: {
        state: () => ({ socPct: Math.round((socWh / config.capacity_wh) * 1000) / 10, powerW, mode: mode(ctx.clock.now()) }),
        params: {
          capacityWh: config.capacity_wh,
          socMinWh,
          socMaxWh: config.capacity_wh,
          maxChargeW: config.max_charge_w,
          maxDischargeW: config.max_discharge_w,
          chargeEfficiency: config.charge_efficiency,
          dischargeEfficiency: config.discharge_efficiency,
        },
        command: async (cmd) => {
          command = cmd;
        },
      },
    });
    const tick = ticking(ctx, config.tick_s, meter, (dtMs) => {
      const now = ctx.clock.now();
      if (dtMs > 0) {
        const h = dtMs / 3_600_000;
        if (powerW > 0) socWh = Math.min(config.capacity_wh, socWh + powerW * h * config.charge_efficiency);
        else socWh = Math.max(0, socWh + (powerW * h) / config.discharge_efficiency);
      }
      meter.record(powerW, dtMs);
      const m = mode(now);
      let want = 0;
      if (m === 'charge') want = Math.min(command.powerW ?? config.max_charge_w, config.max_charge_w);
      else if (m === 'discharge') want = -Math.min(command.powerW ?? config.max_discharge_w, config.max_discharge_w);
      else if (m === 'auto') {
        const net = [...others.values()].reduce((a, b) => a + b, 0);
        want = net > 0 ? -Math.min(net, config.max_discharge_w) : Math.min(-net, config.max_charge_w);
      }
      if (want > 0 && socWh >= config.capacity_wh) want = 0;
      if (want < 0 && socWh <= socMinWh) want = 0;
      powerW = Math.round(want);
      void ctx.store.set('soc_wh', socWh);
    });
    return {
      devices: [dev],
      start: tick.start,
      stop: async () => {
        unsubscribe();
        await tick.stop();
      },
    };
  },
});

// ---------------------------------------------------------------- PV
const SimPvConfigSchema = Type.Object({
  kwp: Type.Number({ exclusiveMinimum: 0, default: 6 }),
  latitude: Type.Number({ minimum: -90, maximum: 90, default: 50 }),
  cloudiness: Type.Number({ minimum: 0, maximum: 1, default: 0.2, description: 'Mean share of output lost to clouds' }),
  ...tickSchema,
});
type SimPvConfig = DeviceConfigBase & Static<typeof SimPvConfigSchema>;

export const simPv = defineAdapter<SimPvConfig>({
  id: 'sim_pv',
  description: 'Simulated PV array following a clear-sky sun curve',
  configSchema: configSchema(SimPvConfigSchema),
  create(ctx, config) {
    const meter = new SimMeter(ctx, config.id);
    let powerW = 0;
    const dev = device(config, 'sim_pv', { meter, pv: { powerW: () => powerW, params: { kWp: config.kwp } } });
    const tick = ticking(ctx, config.tick_s, meter, (dtMs) => {
      meter.record(-powerW, dtMs);
      const now = ctx.clock.now();
      const offset = DateTime.fromMillis(now, { zone: ctx.site.timezone }).offset;
      const cloud = 1 - config.cloudiness * (0.5 + 0.5 * Math.sin(now / 1_800_000));
      powerW = Math.round(config.kwp * 1000 * sunShare(now, config.latitude, offset) * cloud);
    });
    return { devices: [dev], ...tick };
  },
});

// ---------------------------------------------------------------- house base load
const SimLoadConfigSchema = Type.Object({ annual_kwh: Type.Number({ minimum: 0, default: 3500 }), ...tickSchema });
type SimLoadConfig = DeviceConfigBase & Static<typeof SimLoadConfigSchema>;

export const simLoad = defineAdapter<SimLoadConfig>({
  id: 'sim_load',
  description: 'Simulated house base load (not controllable) with morning and evening peaks',
  configSchema: configSchema(SimLoadConfigSchema),
  create(ctx, config) {
    const meter = new SimMeter(ctx, config.id);
    let powerW = 0;
    const dev = device(config, 'sim_load', { meter });
    const tick = ticking(ctx, config.tick_s, meter, (dtMs) => {
      meter.record(powerW, dtMs);
      powerW = Math.round(baseLoadW(localHour(ctx), config.annual_kwh));
    });
    return { devices: [dev], ...tick };
  },
});

// ---------------------------------------------------------------- air conditioner
const SimHvacConfigSchema = Type.Object({
  r_k_per_kw: Type.Number({ exclusiveMinimum: 0, default: 5 }),
  c_kwh_per_k: Type.Number({ exclusiveMinimum: 0, default: 3 }),
  cop: Type.Number({ exclusiveMinimum: 0, default: 3 }),
  max_electric_w: Type.Number({ exclusiveMinimum: 0, default: 1500 }),
  gains_w: Type.Number({ default: 600 }),
  outdoor_min_c: Type.Number({ default: 23 }),
  outdoor_max_c: Type.Number({ default: 35 }),
  initial_c: Type.Number({ default: 24.5 }),
  setpoint_c: Type.Number({ default: 24 }),
  mode: Enum(['cool', 'heat'], { default: 'cool' }),
  comfort: StrictObject({ min_c: Type.Number(), max_c: Type.Number() }, { default: { min_c: 22, max_c: 25 } }),
  ...tickSchema,
});
type SimHvacConfig = DeviceConfigBase & Static<typeof SimHvacConfigSchema>;

export const simHvac = defineAdapter<SimHvacConfig>({
  id: 'sim_hvac',
  description: 'Simulated air conditioner or heat pump with a first-order room model and a thermostat',
  configSchema: configSchema(SimHvacConfigSchema),
  check: (config) => (config.comfort && config.comfort.min_c >= config.comfort.max_c ? [{ path: ['comfort', 'min_c'], message: `must be below comfort.max_c (${config.comfort.max_c})` }] : []),
  create(ctx, config) {
    const meter = new SimMeter(ctx, config.id);
    let tempC = ctx.store.get<number>('temp_c') ?? config.initial_c;
    let setpoint = config.setpoint_c;
    let mode: 'cool' | 'heat' | 'off' = config.mode;
    let running = false;
    const s: 1 | -1 = config.mode === 'cool' ? 1 : -1;
    const dev = device(config, 'sim_hvac', {
      meter,
      thermostat: {
        state: () => ({ temperatureC: Math.round(tempC * 100) / 100, setpointC: setpoint, mode, running }),
        band: { minC: config.comfort.min_c, maxC: config.comfort.max_c },
        model: { rKPerKw: config.r_k_per_kw, cKwhPerK: config.c_kwh_per_k, cop: config.cop, maxElectricW: config.max_electric_w, gainsW: config.gains_w },
        setSetpoint: async (c, m) => {
          setpoint = c;
          if (m === 'off' || m === 'cool' || m === 'heat') mode = m;
        },
      },
    });
    const tick = ticking(ctx, config.tick_s, meter, (dtMs) => {
      const powerW = running ? config.max_electric_w : 0;
      if (dtMs > 0) {
        const tOut = outdoorC(localHour(ctx), config.outdoor_min_c, config.outdoor_max_c);
        tempC = thermalStep(tempC, tOut, config.gains_w / 1000, powerW / 1000, config.cop, s, config.r_k_per_kw, config.c_kwh_per_k, dtMs / 3_600_000);
      }
      meter.record(powerW, dtMs);
      // thermostat with 0.3 K hysteresis around the setpoint
      if (mode === 'off') running = false;
      else if (s === 1) running = running ? tempC > setpoint - 0.3 : tempC > setpoint + 0.3;
      else running = running ? tempC < setpoint + 0.3 : tempC < setpoint - 0.3;
      void ctx.store.set('temp_c', tempC);
    });
    return { devices: [dev], ...tick };
  },
});

// ---------------------------------------------------------------- smart socket
const SimSocketConfigSchema = Type.Object({
  rated_power_w: Type.Number({ minimum: 0, default: 2000 }),
  initially_on: Type.Boolean({ default: false }),
  schedule: Type.Optional(SwitchedScheduleSchema),
  ...tickSchema,
});
type SimSocketConfig = DeviceConfigBase & Static<typeof SimSocketConfigSchema>;

export const simSocket = defineAdapter<SimSocketConfig>({
  id: 'sim_socket',
  description: 'Simulated smart socket with an appliance of fixed power behind it',
  configSchema: configSchema(SimSocketConfigSchema),
  create(ctx, config) {
    const meter = new SimMeter(ctx, config.id);
    let on = config.initially_on;
    const dev = device(config, 'sim_socket', {
      meter,
      switch: {
        isOn: () => on,
        set: async (v) => {
          on = v;
          ctx.bus.emit('device.state', { deviceId: config.id, available: true });
        },
        ratedPowerW: config.rated_power_w,
      },
    });
    const tick = ticking(ctx, config.tick_s, meter, (dtMs) => meter.record(on ? config.rated_power_w : 0, dtMs));
    return { devices: [dev], ...tick };
  },
});

export const simAdapters = [simEv, simBattery, simPv, simLoad, simHvac, simSocket, simP1Adapter];
