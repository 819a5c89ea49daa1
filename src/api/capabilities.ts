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

/** EVerest's OptimizerTarget, in homeflex's units. */
export interface EvTarget {
  /** Energy still to add (Wh). */
  energyWh?: number;
  /** Charge until this state of charge (%), needs the car's SoC and battery capacity. */
  socPct?: number;
  /** When the car leaves: an instant. */
  leaveTime?: EpochMs;
  /** Always charge while the import rate is at or below this (currency/kWh). */
  priceLimit?: number;
  /** Charge only from PV surplus. */
  solarOnly?: boolean;
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

export interface Capabilities {
  meter?: MeterCap;
  switch?: SwitchCap;
  charger?: ChargerCap;
  storage?: StorageCap;
  thermostat?: ThermostatCap;
  pv?: PvCap;
  curtail?: CurtailCap;
  node?: NodeCap;
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
