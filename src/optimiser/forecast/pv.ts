import { DateTime } from 'luxon';
import { meanPowerW, type EnergyInterval, type ForecastSlot, type PowerForecast } from './types.js';
import { DAY } from '../../api/time.js';

const RAD = Math.PI / 180;

export interface PvArray {
  kWp: number;
  /** Degrees from horizontal (default 30). */
  tilt?: number;
  /** Degrees clockwise from north; 180 = south (default 180). */
  azimuth?: number;
  latitude: number;
  longitude: number;
  /** Share of the clear-sky DC output that reaches the AC side (default 0.85). */
  performanceRatio?: number;
}

/** Sun position at instant `t` (UTC ms): zenith and azimuth (degrees, azimuth clockwise from north). */
export function sunPosition(t: number, latitude: number, longitude: number): { zenith: number; azimuth: number } {
  const d = new Date(t);
  const start = Date.UTC(d.getUTCFullYear(), 0, 1);
  const dayOfYear = Math.floor((t - start) / DAY);
  const hourUtc = d.getUTCHours() + d.getUTCMinutes() / 60 + d.getUTCSeconds() / 3600;
  // NOAA's fractional-year approximations of the equation of time and the declination
  const g = ((2 * Math.PI) / 365) * (dayOfYear + (hourUtc - 12) / 24);
  const eqTimeMin = 229.18 * (0.000075 + 0.001868 * Math.cos(g) - 0.032077 * Math.sin(g) - 0.014615 * Math.cos(2 * g) - 0.040849 * Math.sin(2 * g));
  const decl = 0.006918 - 0.399912 * Math.cos(g) + 0.070257 * Math.sin(g) - 0.006758 * Math.cos(2 * g) + 0.000907 * Math.sin(2 * g) - 0.002697 * Math.cos(3 * g) + 0.00148 * Math.sin(3 * g);
  const solarMin = hourUtc * 60 + eqTimeMin + 4 * longitude;
  const hourAngle = (solarMin / 4 - 180) * RAD;
  const lat = latitude * RAD;
  const cosZ = Math.sin(lat) * Math.sin(decl) + Math.cos(lat) * Math.cos(decl) * Math.cos(hourAngle);
  const zenith = Math.acos(Math.max(-1, Math.min(1, cosZ)));
  const sinZ = Math.sin(zenith);
  let azimuth = 180;
  if (sinZ > 1e-9) {
    const cosA = (Math.sin(decl) - Math.sin(lat) * cosZ) / (Math.cos(lat) * sinZ);
    azimuth = Math.acos(Math.max(-1, Math.min(1, cosA))) / RAD;
    if (hourAngle > 0) azimuth = 360 - azimuth;
  }
  return { zenith: zenith / RAD, azimuth };
}

/** Clear-sky AC output (W) of an array at instant `t`: Meinel direct beam, 10 % diffuse, 20 % albedo. */
export function clearSkyPvW(t: number, a: PvArray): number {
  const { zenith, azimuth } = sunPosition(t, a.latitude, a.longitude);
  if (zenith >= 90) return 0;
  const cosZ = Math.cos(zenith * RAD);
  // Kasten–Young air mass, then Meinel's clear-sky beam
  const airMass = 1 / (cosZ + 0.50572 * Math.pow(96.07995 - zenith, -1.6364));
  const dni = 1353 * Math.pow(0.7, Math.pow(airMass, 0.678));
  const dhi = 0.1 * dni;
  const ghi = dni * cosZ + dhi;
  const tilt = (a.tilt ?? 30) * RAD;
  const cosIncidence = cosZ * Math.cos(tilt) + Math.sin(zenith * RAD) * Math.sin(tilt) * Math.cos((azimuth - (a.azimuth ?? 180)) * RAD);
  const poa = dni * Math.max(0, cosIncidence) + (dhi * (1 + Math.cos(tilt))) / 2 + (0.2 * ghi * (1 - Math.cos(tilt))) / 2;
  return Math.min(a.kWp * 1000, a.kWp * poa * (a.performanceRatio ?? 0.85));
}

/** Mean clear-sky power over `[start, end)`, sampled every 5 minutes. */
export function clearSkyMeanW(start: number, end: number, a: PvArray): number {
  const n = Math.max(1, Math.round((end - start) / 300_000));
  let acc = 0;
  for (let k = 0; k < n; k++) acc += clearSkyPvW(start + ((k + 0.5) * (end - start)) / n, a);
  return acc / n;
}

export interface PvForecastOptions {
  array: PvArray;
  timezone: string;
  /** Recent AC production of the array (sorted), used to scale the clear-sky curve. */
  history?: readonly EnergyInterval[];
  /** Days of history to learn from (default 3). */
  days?: number;
  /** Share of clear sky assumed without history (default 0.6, a central-European yearly mean). */
  defaultClearness?: number;
}

/**
 * PV from the array's clear-sky output, scaled by how much of clear sky it actually produced in
 * the last days, hour of day by hour of day (which also corrects orientation and shading errors),
 * with the all-day ratio where an hour saw too little sun to judge.
 */
export function clearSkyPvForecast(options: PvForecastOptions): PowerForecast {
  const days = options.days ?? 3;
  const base = options.defaultClearness ?? 0.6;
  const hourOf = (t: number) => DateTime.fromMillis(t, { zone: options.timezone }).hour;
  return {
    name: `clear sky × recent production (${days} days), ${options.array.kWp} kWp`,
    powerW(slots: readonly ForecastSlot[]) {
      if (!slots.length) return [];
      const since = slots[0].start - days * DAY;
      const actualByHour = new Array(24).fill(0);
      const clearByHour = new Array(24).fill(0);
      // learn from the history hour by hour (interval boundaries need not be hourly)
      for (let h = Math.floor(since / 3_600_000) * 3_600_000; h < slots[0].start; h += 3_600_000) {
        const m = meanPowerW(options.history ?? [], h, h + 3_600_000);
        if (m.coverage < 0.5) continue;
        const clear = clearSkyMeanW(h, h + 3_600_000, options.array);
        const hour = hourOf(h);
        actualByHour[hour] += m.powerW;
        clearByHour[hour] += clear;
      }
      const clearTotal = clearByHour.reduce((a, b) => a + b, 0);
      const actualTotal = actualByHour.reduce((a, b) => a + b, 0);
      const overall = clearTotal > 100 ? Math.min(1.3, actualTotal / clearTotal) : base;
      const peak = Math.max(...clearByHour);
      const ratio = clearByHour.map((c, h) => (c > 0.1 * peak && peak > 0 ? Math.min(1.5, actualByHour[h] / c) : overall));
      return slots.map(({ start, end }) => clearSkyMeanW(start, end, options.array) * ratio[hourOf(start)]);
    },
  };
}
