import type { EpochMs } from '../../api/series.js';

/**
 * The site plan's input and output. Powers are W, energies Wh, temperatures °C, rates in the
 * site currency per kWh, times epoch ms. Per-slot arrays have one entry per `slots` entry.
 */

export interface PlanSlot {
  start: EpochMs;
  end: EpochMs;
}

/** Limits on one device's own flow per slot, and an optional fixed setpoint (external limits). */
export interface DeviceLimits {
  /** Most power the device may draw (W) per slot; undefined entries = no external limit. */
  maxImportW?: (number | undefined)[];
  /** Most power the device may deliver (W) per slot (battery discharge). */
  maxExportW?: (number | undefined)[];
  /** Fixed power per slot (W, + = draw, − = deliver); undefined entries are planned freely. */
  setpointW?: (number | undefined)[];
}

export interface BatteryModel {
  id: string;
  circuit?: string;
  capacityWh: number;
  socMinWh: number;
  socMaxWh: number;
  initialWh: number;
  maxChargeW: number;
  maxDischargeW: number;
  chargeEfficiency: number;
  dischargeEfficiency: number;
  /** Wear cost per kWh discharged (currency/kWh). */
  cycleCostPerKwh?: number;
  /** What a kWh stored at the horizon end is worth; default from the horizon's prices (see build.ts). */
  terminalValuePerKwh?: number;
  /** Stored energy the battery must hold at the horizon end (Wh), e.g. a reserve. */
  finalMinWh?: number;
  limits?: DeviceLimits;
}

/** One stay of a car at the charger: EVerest's OptimizerTarget resolved to energy. */
export interface EvSession {
  /** When the car is (or will be) plugged in; default the horizon start. */
  from?: EpochMs;
  /** When it leaves (leave_time); default the horizon end. */
  until?: EpochMs;
  /** Energy the charger must deliver by `until` (Wh). */
  energyNeededWh: number;
  /** Most energy the car can still take (Wh), from its SoC; default unlimited. */
  roomWh?: number;
  /**
   * Beyond `energyNeededWh`, fill the car up to `roomWh` by `until` at the lowest priority: in the
   * cheapest slots, and only with the capacity every deadline leaves over (a charger's
   * `default_mode: cheapest_fill`). Needs `roomWh`.
   */
  fill?: boolean;
}

export interface EvModel {
  id: string;
  circuit?: string;
  /** 0 or at least this while charging (6 A per phase × phases × voltage). */
  minPowerW: number;
  maxPowerW: number;
  sessions: EvSession[];
  /** Always charge while the import rate is at or below this (EVerest price_limit). */
  priceLimit?: number;
  /** Charge only from PV surplus (EVerest full_autonomy). */
  solarOnly?: boolean;
  limits?: DeviceLimits;
}

export interface HvacModel {
  id: string;
  circuit?: string;
  mode: 'cool' | 'heat';
  /** Thermal resistance to outdoors (K/kW). */
  rKPerKw: number;
  /** Heat capacity (kWh/K). */
  cKwhPerK: number;
  cop: number;
  maxElectricW: number;
  initialC: number;
  outdoorC: number[];
  /** Internal and solar gains per slot (W). */
  gainsW: number[];
  minC: number[];
  maxC: number[];
  /** COP per slot (a heat pump's COP follows the outdoor temperature); default `cop` in every slot. */
  copPerSlot?: number[];
  limits?: DeviceLimits;
}

/**
 * A hot-water tank, fully mixed: heat content C·(T − T_ambient) with C = volume × 1.163 Wh/(l·K),
 * standing losses `lossWPerK`·(T − T_ambient), draw-offs as heat taken out per slot. The heater
 * turns 1 kWh of electricity into `cop[t]` kWh of heat (1 for a resistive element).
 */
export interface TankModel {
  volumeL: number;
  initialC: number;
  /** The lowest temperature allowed at each slot's end (soft: shortfall costs a penalty). */
  minC: number[];
  maxC: number;
  lossWPerK: number;
  ambientC: number;
  /** Heat drawn off per slot (Wh). */
  drawWh: number[];
  cop: number[];
  /** The heater's own maximum (W); the heat pump's `maxElectricW` caps tank and space heating together. */
  maxElectricW: number;
}

/** A heat pump (SG-Ready or thermostat-driven): hot water in a tank, space heating of a 1R1C room, or both, sharing one compressor. */
export interface HeatPumpModel {
  id: string;
  circuit?: string;
  maxElectricW: number;
  tank?: TankModel;
  /** Space heating: the HVAC room model in heat mode (its `copPerSlot` from the outdoor temperature). */
  space?: Omit<HvacModel, 'id' | 'circuit' | 'mode' | 'limits' | 'maxElectricW'>;
  /** Driven by SG-Ready: the plan says which state per slot (see `sgReadyPlan`). */
  sgReady?: { allowBlock: boolean; boostState: 3 | 4 };
  limits?: DeviceLimits;
}

/** N hours of running within a window. */
export interface LoadRun {
  start: EpochMs;
  end: EpochMs;
  hours: number;
  /** One unbroken block. */
  continuous?: boolean;
  /** A block already running must go on from the first slot. */
  mustStartNow?: boolean;
}

export interface SwitchedLoadModel {
  id: string;
  circuit?: string;
  ratedPowerW: number;
  runs: LoadRun[];
  /** Also on whenever the import rate is at or below this... */
  onAtOrBelowRate?: number;
  /** ...in slots inside these windows (the load's daily windows); anywhere when undefined. */
  onAtOrBelowRateIn?: { start: EpochMs; end: EpochMs }[];
  limits?: DeviceLimits;
}

/** An uncontrolled flow: a PV array (negative = production) or a load on a circuit. */
export interface FixedFlow {
  id: string;
  circuit?: string;
  /** Signed power per slot (W): + = consumption, − = production. */
  powerW: number[];
  /**
   * Production the plan may cut (a PV inverter with a power limit, a micro-inverter behind a
   * switch): the plan chooses how much of the forecast production to give up per slot. With
   * `steps: 'off'` the flow is all or nothing (a smart socket): one binary per slot where cutting pays.
   */
  curtailable?: boolean | { steps: 'off' };
}

/** A node of the energy tree: its limits apply to the net flow of everything below it. */
export interface CircuitNode {
  id: string;
  /** Parent circuit id; undefined = the grid connection. */
  parent?: string;
  maxImportW: number[];
  maxExportW: number[];
}

export interface SiteProblem {
  slots: PlanSlot[];
  importRate: number[];
  exportRate: number[];
  /** Base load of the house (W, at the grid connection), forecast. */
  baseLoadW: number[];
  /** Uncontrolled flows such as PV arrays (forecast). */
  flows: FixedFlow[];
  grid: { maxImportW: number[]; maxExportW: number[] };
  circuits: CircuitNode[];
  batteries: BatteryModel[];
  evs: EvModel[];
  hvacs: HvacModel[];
  loads: SwitchedLoadModel[];
  /** Heat pumps and hot-water tanks (optional: a site without them leaves it out). */
  heatPumps?: HeatPumpModel[];
  /**
   * Other forecasts of the house (PV and base load), with weights, for planning under uncertainty:
   * the first slot is chosen to be best in expectation over them (each scenario's later slots
   * planned with its own forecast), the rest of the plan follows `baseLoadW` and `flows`. Used by
   * the battery DP; the LP plans with the point forecast alone.
   */
  scenarios?: PlanScenario[];
  /** Charges on peak import power (capacity tariffs); see PeakCharge and PeakTiers. */
  peakCharge?: PeakCharge;
  peakTiers?: PeakTiers;
  /**
   * Slots where export earns nothing or is unwanted (no feed-in payment at a negative spot price):
   * the plan keeps export out of them wherever it can (curtailing, storing), at a tie-break cost.
   */
  avoidExport?: boolean[];
  options?: SiteOptions;
}

/**
 * A charge on the month's highest slot-mean import power (Belgian/Flemish capacity tariff: the
 * monthly peak of the 15-minute mean import, billed at least at `minimumW`).
 *
 * Amortisation: raising this month's billed peak by 1 kW costs `pricePerKwMonth` (the full monthly
 * price), whenever in the month it happens; keeping under the peak already reached costs nothing.
 * That is what the bill does: the peak that is billed is the month's maximum, so a kW above the
 * running peak is billed in full at the month's end whichever day it occurs on. Under Flemish
 * 12-month averaging the same holds in total: one kW more this month adds 1/12 kW to each of the
 * next twelve monthly bills, so `pricePerKwMonth` = the annual price / 12.
 */
export interface PeakCharge {
  /** Currency per kW of billed peak per month. */
  pricePerKwMonth: number;
  /** The highest slot-mean import already metered this month (W); default 0. */
  runningPeakW?: number;
  /** The billed peak is never below this (W), e.g. 2500 in Flanders; default 0. */
  minimumW?: number;
  /**
   * The instant the billing month ends (epoch ms). Slots from then on belong to the next month:
   * its peak starts from `nextRunningPeakW` (default `minimumW`) and is charged the same way.
   */
  monthEnd?: EpochMs;
  /** The peak the next month is expected to reach anyway (W): its slots are free up to this. */
  nextRunningPeakW?: number;
}

/**
 * A stepped monthly fee by the mean of the three highest daily peaks of hourly mean import
 * (Norwegian "kapasitetsledd"). Tiers are upper limits (W, increasing) with the fee of the step.
 */
export interface PeakTiers {
  /** Steps in increasing order: the month's fee is that of the first step whose `upToW` the mean reaches no higher than. The last may be Infinity. */
  tiers: { upToW: number; feePerMonth: number }[];
  /** Days of the peak ("YYYY-MM-DD" in the site's zone) already reached this month, with their highest hourly mean import (W). Today's so far counts. */
  dailyPeaksW?: Record<string, number>;
  /** The site's IANA time zone, for days and hours (default UTC). */
  timezone?: string;
  /** Energy already imported in the hour the first slot falls in, before it (Wh). */
  currentHourWh?: number;
  /** How many top days count (default 3). */
  topDays?: number;
  /** The instant the billing month ends: later slots are not counted (documented approximation). */
  monthEnd?: EpochMs;
}

export interface PlanScenario {
  weight: number;
  /** Replaces `baseLoadW` in this scenario (default: the same). */
  baseLoadW?: number[];
  /** Replaces `flows` in this scenario (same ids; default: the same). */
  flows?: FixedFlow[];
}

export interface SiteOptions {
  /** Accept an integer solution proven within this share of the cost (default 0.005). */
  relGap?: number;
  /** Time the MILP solver may take when the relaxation is not already integral (s, default 2). */
  timeLimitS?: number;
  /** Break ties on purpose (earlier consumption, fewer cycles); default true. */
  tieBreak?: boolean;
  /** Return the linear relaxation (a bound; EV minimum power and on/off loads not enforced). */
  relaxIntegers?: boolean;
  /**
   * `auto` (default): a site with one battery and nothing else controllable is planned by the exact
   * battery DP (battery.ts) where every slot's cost is convex, else by the LP; `dp`: such a site is
   * always planned by the DP, near-optimal where a slot is not convex; `lp`: always the LP.
   */
  method?: 'auto' | 'dp' | 'lp';
}

/** Why a device does what it does in a slot. */
export type PlanReason = 'price' | 'limit' | 'comfort' | 'deadline' | 'solar' | 'setpoint' | 'idle';

/** What a planned device is to the optimiser (metering's `DeviceKind` is another, finer classification). */
export type PlannedDeviceKind = 'battery' | 'ev' | 'hvac' | 'load' | 'heatpump';

export interface DevicePlan {
  id: string;
  kind: PlannedDeviceKind;
  /** Planned mean power per slot (W): + = draw, − = deliver. */
  powerW: number[];
  reasons: PlanReason[];
  /** Battery: stored energy at each slot's end (Wh). */
  socWh?: number[];
  /** Battery: how to command the inverter: follow the house (auto), or a fixed charge/discharge/hold. */
  modes?: ('auto' | 'charge' | 'discharge' | 'hold')[];
  /** HVAC: room temperature at each slot's end. */
  temperatureC?: number[];
  /** HVAC: the setpoint that makes a thermostat follow the plan. */
  setpointC?: number[];
  /** Switched load: on or off. */
  on?: boolean[];
  /** EV and switched loads: energy or run time that cannot be delivered in time. */
  shortfallWh?: number;
  shortfallHours?: number;
  /** HVAC: degree-hours outside the comfort band. */
  discomfortKh?: number;
  /** Heat pump: the tank's temperature at each slot's end, and its power split (W). */
  tankC?: number[];
  tankW?: number[];
  spaceW?: number[];
  /** Heat pump: degree-hours the tank is below its minimum. */
  tankShortKh?: number;
  /** SG-Ready heat pump: the state per slot that makes it follow the plan (1 blocked … 4 forced on). */
  sgReady?: (1 | 2 | 3 | 4)[];
  energyWh: number;
}

export interface NodeLoad {
  id: string;
  /** Net flow per slot (W, + = import into the node). */
  netW: number[];
  maxImportW: number[];
  maxExportW: number[];
}

export type PlanStatus = 'optimal' | 'within_gap' | 'time_limit' | 'infeasible' | 'error';

export interface SitePlan {
  status: PlanStatus;
  slots: PlanSlot[];
  importRate: number[];
  exportRate: number[];
  /** Grid exchange per slot (W): import ≥ 0, export ≥ 0 (never both). */
  importW: number[];
  exportW: number[];
  /** Expected energy cost over the horizon (currency): imports minus export earnings. */
  cost: number;
  importWh: number;
  exportWh: number;
  devices: DevicePlan[];
  nodes: NodeLoad[];
  /** Curtailable production: how much of each flow's forecast the plan gives up (W) and the limit to command. */
  curtailment?: { id: string; curtailW: number[]; limitW: number[] }[];
  /** Capacity charges as planned: the billed peak (W) and its cost, the tier's mean and fee. */
  peak?: { peakW: number; nextMonthPeakW?: number; cost: number };
  tiers?: { meanTopW: number; feePerMonth: number; tier: number };
  /** Limits the plan could not keep (base load alone above a limit, for example). */
  warnings: string[];
  solver: {
    name: string;
    columns: number;
    rows: number;
    integerColumns: number;
    lpSolves: number;
    /** Simplex iterations of the first (relaxed) solve, from the crash basis. */
    rootIterations: number;
    usedMip: boolean;
    /** Proven gap of the returned solution (share of the cost scale). */
    gap: number;
  };
}

/** Whether a switched load's `max_rate` switches it on in this slot (the rate is at or below it, inside its windows). */
export function cheapEnough(load: SwitchedLoadModel, slot: PlanSlot, importRate: number): boolean {
  if (load.onAtOrBelowRate === undefined || importRate > load.onAtOrBelowRate) return false;
  return !load.onAtOrBelowRateIn || load.onAtOrBelowRateIn.some((w) => slot.start >= w.start - 1 && slot.end <= w.end + 1);
}
