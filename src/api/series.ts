/** Time is carried as Unix epoch milliseconds (UTC instants) everywhere inside the hub. */
export type EpochMs = number;

/** One slot of a price series: `[start, end)` half-open, rate in major currency units per kWh. */
export interface PriceSlot {
  start: EpochMs;
  end: EpochMs;
  rate: number;
  /** 1 = a published price; < 1 = a forecast or a fallback. */
  confidence: number;
}

/** A sorted, non-overlapping list of price slots. Slots may differ in length. */
export type PriceSeries = PriceSlot[];

export type Direction = 'IMPORT' | 'EXPORT';
export type TariffRate = 'IMPORT' | 'EXPORT' | 'LOCAL';

/** A value that holds from `start` until the next entry (EVerest ScheduleReqEntry style). */
export interface TimedValue {
  time: EpochMs;
  value: number;
}

export interface TimeWindow {
  start: EpochMs;
  end: EpochMs;
}
