import type { EpochMs } from './series.js';

/**
 * A device is `{ id, name, caps }`; `caps` holds whichever small capability objects it has.
 * Capabilities carry the device's last known state (read synchronously) and its commands (async).
 */

/** A meter reading. Counters are cumulative Wh registers; `channel` names what is measured. */
export interface MeterReading {
  time: EpochMs;
  /** Signed power in W: + = into the device (import), − = out of it (export). */
  powerW?: number;
  /** Cumulative energy into the device (Wh), monotonically increasing except on counter reset. */
  importWh?: number;
  /** Cumulative energy out of the device (Wh). */
  exportWh?: number;
  /** For devices that measure several flows (an inverter: 'battery', 'pv', 'grid'). Default 'device'. A `grid` reading is the site's own meter: + = import from the grid. */
  channel?: MeterChannel;
  /** The charging session the energy belongs to, when there is one. */
  sessionId?: string;
  /** Signed power per phase L1, L2, L3 in W (+ = import), where the meter measures each phase (grid meters). */
  phasesW?: number[];
}

export type MeterChannel = 'device' | 'battery' | 'pv' | 'grid' | 'load';

export interface MeterCap {
  /** Last reading per channel. */
  last(channel?: MeterChannel): MeterReading | undefined;
  channels: MeterChannel[];
}

export interface SwitchCap {
  isOn(): boolean | undefined;
  set(on: boolean): Promise<void>;
  /** Rated power when on (W), used for planning. */
  ratedPowerW: number;
}

export type ChargerStatus =
  | 'available'
  | 'preparing'
  | 'charging'
  | 'suspended_ev'
  | 'suspended_evse'
  | 'finishing'
  | 'faulted'
  | 'unavailable'
  | 'unknown';

export interface ChargingSession {
  id: string;
  start: EpochMs;
  end?: EpochMs;
  /** Energy delivered in this session so far (Wh), never decreasing. */
  energyWh: number;
  idTag?: string;
}

export interface ChargerLimit {
  /** Total power limit in W (0 = pause). */
  watts: number;
  /** Phases to charge on; a charger with `phaseSwitching` switches to them (else its installed phases are used). */
  phases?: 1 | 3;
  /** The device falls back to its safe default after this instant (OCPP validTo). */
  validUntil?: EpochMs;
  /** Optional future steps so the charger can follow the plan by itself. */
  schedule?: { start: EpochMs; watts: number }[];
}

export interface ChargerCap {
  status(): ChargerStatus;
  session(): ChargingSession | undefined;
  /** The car's state of charge in % if the charger reports it. */
  evSocPct(): number | undefined;
  setLimit(limit: ChargerLimit): Promise<void>;
  phases: 1 | 3;
  voltage: number;
  minCurrentA: number;
  maxCurrentA: number;
  /** Car battery size for SoC targets (Wh), if known. */
  evCapacityWh?: number;
  /**
   * Present when the charger switches between one and three phases by command (go-e `psm`, KEBA
   * `x2`, OCPP `numberPhases`): `phases` is then what is installed, this what is in use now.
   */
  phaseSwitching?: { activePhases(): 1 | 3 | undefined };
}

export type StorageMode = 'auto' | 'charge' | 'discharge' | 'hold';

export interface StorageCommand {
  mode: StorageMode;
  /** Power for 'charge' / 'discharge' (W, positive). */
  powerW?: number;
  /** The inverter falls back to auto after this instant (watchdog). */
  validUntil?: EpochMs;
}

export interface StorageState {
  socPct?: number;
  /** Signed battery power W: + = charging, − = discharging. */
  powerW?: number;
  mode?: StorageMode;
}

export interface StorageParams {
  capacityWh: number;
  socMinWh: number;
  socMaxWh: number;
  maxChargeW: number;
  maxDischargeW: number;
  chargeEfficiency: number;
  dischargeEfficiency: number;
  /** Optional wear cost per kWh throughput (currency/kWh). */
  cycleCostPerKwh?: number;
}

export interface StorageCap {
  state(): StorageState;
  params: StorageParams;
  command(cmd: StorageCommand): Promise<void>;
}

export type HvacMode = 'cool' | 'heat' | 'off' | 'auto';

export interface ComfortBand {
  minC: number;
  maxC: number;
}

/** First-order (1R1C) thermal model. */
export interface ThermalModel {
  /** Thermal resistance to outdoors, K/kW. */
  rKPerKw: number;
  /** Heat capacity, kWh/K. */
  cKwhPerK: number;
  cop: number;
  maxElectricW: number;
  /** Mean internal and solar gains, W. */
  gainsW?: number;
  /** A heat pump: heating COP from the outdoor temperature, eta · T_sink / (T_sink − T_outdoor) in kelvin, instead of `cop`. */
  copCurve?: { sinkC: number; eta: number };
}

export interface ThermostatState {
  temperatureC?: number;
  setpointC?: number;
  mode?: HvacMode;
  running?: boolean;
}

export interface ThermostatCap {
  state(): ThermostatState;
  band: ComfortBand;
  model?: ThermalModel;
  setSetpoint(setpointC: number, mode?: HvacMode): Promise<void>;
}

export interface PvParams {
  kWp: number;
  /** Degrees from horizontal. */
  tilt?: number;
  /** Degrees, 180 = south. */
  azimuth?: number;
}

export interface PvCap {
  powerW(): number | undefined;
  params: PvParams;
}

/** A limit on what a PV inverter may produce: `maxW` undefined lifts it (full production). */
export interface PvLimitCommand {
  maxW?: number;
  /** The inverter lifts the limit by itself after this instant (its revert timer; homeflex re-sends before). */
  validUntil?: EpochMs;
}

/**
 * PV production that can be cut (issue 17): a power limit on the inverter (SunSpec 123/704, a
 * vendor register), or a micro-inverter's smart socket switched off (`steps: 'off'`: 0 or no limit).
 */
export interface CurtailCap {
  /** What 100 % is (W): the inverter's rated AC power. */
  ratedW: number;
  steps: 'limit' | 'off';
  limit(cmd: PvLimitCommand): Promise<void>;
  /** The limit in force (W), undefined when production is free. */
  current(): number | undefined;
}

/** What a child hub says it needs (its `GET /flexibility`), in homeflex's units. */
export interface NodeFlexibility {
  /** The child's location id, which its limits are set on. */
  siteId: string;
  /** Per slot of the child's plan: import it must have at least, could use at most, and plans (W). */
  slots: { start: EpochMs; end: EpochMs; minW: number; maxW: number; plannedW: number }[];
  /** Energy (Wh) its devices must have between `from` and `until`, at most `maxW` each. */
  needs: { deviceId: string; energyWh: number; from: EpochMs; until: EpochMs; maxW: number }[];
}

/** A child hub of an energy tree (the `homeflex` adapter): its flexibility, and its import limit to set. */
export interface NodeCap {
  flexibility(): NodeFlexibility | undefined;
  /** Sends the child its import limit from each step's start on; it holds until the adapter's validity runs out. */
  setImportLimit(schedule: { start: EpochMs; watts: number }[]): Promise<void>;
}

/** SG-Ready operating states (BWP label): 1 blocked, 2 normal, 3 recommended on, 4 forced on. */
export type SgReadyState = 1 | 2 | 3 | 4;

/** A hot-water tank heated by the heat pump (or a resistive element), as the plan models it. */
export interface HotWaterTank {
  volumeL: number;
  /** Never below this (°C) — in particular before a draw-off. */
  minC: number;
  /** Heated up to this at most (°C); the heat pump's own set-point in state 3/4. */
  maxC: number;
  /** Standing losses (W per K above the room the tank stands in). */
  lossWPerK: number;
  ambientC: number;
  /** Heat drawn per day (kWh) and its shape over the day: [local "HH:MM", kWh] taps, scaled to the daily total (default: EU 814/2013 profile M). */
  drawKwhPerDay: number;
  drawProfile?: [string, number][];
  heater: 'heat_pump' | 'resistive';
  /** The heater's electric power (W): the heat pump's for `heat_pump`, the element's for `resistive`. */
  heaterW: number;
}

/** Space heating by the heat pump: the 1R1C room, its comfort band, flow temperature and outdoor forecast. */
export interface SpaceHeating {
  model: { rKPerKw: number; cKwhPerK: number; gainsW: number };
  band: ComfortBand;
  /** Flow (sink) temperature of the heating circuit (°C): 35 floor heating, 45–55 radiators. */
  flowC: number;
  outdoorMinC: number;
  outdoorMaxC: number;
}

export interface HeatPumpParams {
  /** Electric power of the compressor when running (W). */
  maxElectricW: number;
  /** Carnot efficiency of the COP curve: COP = eta · T_sink / (T_sink − T_outdoor), in kelvin. */
  copEta: number;
  tank?: HotWaterTank;
  space?: SpaceHeating;
  /** The plan may block the heat pump (state 1) in dear slots when the tank and rooms can wait. */
  allowBlock: boolean;
  /** The state a boost asks for: 3 (recommended on) or 4 (forced on). */
  boostState: 3 | 4;
  /** Whether and in which state the surplus dispatcher may raise it on measured PV surplus. */
  surplusState?: 3 | 4;
}

/** An SG-Ready heat pump, driven through two relay inputs. */
export interface HeatPumpCap {
  /** The state the relays are in, undefined until both are known. */
  sgReadyState(): SgReadyState | undefined;
  /**
   * Asks for a state. Each state is held at least the device's minimum dwell: a request inside it is
   * kept and applied when the dwell ends (the latest request wins). Resolves once sent or queued.
   */
  setSgReady(state: SgReadyState, why?: string): Promise<void>;
  /** The state requested last (what the relays will show once the dwell allows). */
  requestedState(): SgReadyState | undefined;
  /** The tank's measured temperature (°C), when a sensor is configured. */
  tankC(): number | undefined;
  /** The rooms' measured temperature (°C), when a sensor is configured. */
  roomC(): number | undefined;
  params: HeatPumpParams;
}

export interface Capabilities {
  meter?: MeterCap;
  switch?: SwitchCap;
  charger?: ChargerCap;
  storage?: StorageCap;
  thermostat?: ThermostatCap;
  pv?: PvCap;
  curtail?: CurtailCap;
  node?: NodeCap;
  heatPump?: HeatPumpCap;
}

export type CapName = keyof Capabilities;

export interface Device {
  id: string;
  name: string;
  /** The adapter that created it. */
  adapter: string;
  caps: Capabilities;
  /** From the last poll or connection state. */
  available: boolean;
  /** Last error, when not available. */
  error?: string;
  /** The circuit this device hangs from (site.circuits[].id); default the grid connection. */
  circuit?: string;
}

export const hasCap = <K extends CapName>(
  device: Device,
  cap: K,
): device is Device & { caps: Required<Pick<Capabilities, K>> } => device.caps[cap] !== undefined;
