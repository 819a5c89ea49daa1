/**
 * Simple physics of a simulated house (sun, base load, outdoor temperature, a 1R1C room), shared by
 * the simulator adapters and the demo plugin's history; part of the SDK so that both depend on it
 * and not on each other (DESIGN §1: adapters and plugins import src/api only).
 */
import { DAY } from './time.js';


/** Clear-sky PV output as a share of kWp at instant `t`, for a site at `latitude` (degrees). */
export function sunShare(t: number, latitude: number, tzOffsetMin: number): number {
  const local = new Date(t + tzOffsetMin * 60_000);
  const dayOfYear = Math.floor((local.getTime() - Date.UTC(local.getUTCFullYear(), 0, 1)) / DAY);
  const hour = local.getUTCHours() + local.getUTCMinutes() / 60;
  const decl = 23.44 * Math.sin(((2 * Math.PI) / 365) * (dayOfYear - 81)) * (Math.PI / 180);
  const lat = latitude * (Math.PI / 180);
  const hourAngle = ((hour - 12.5) * 15 * Math.PI) / 180; // solar noon about 12:30 local standard time
  const elevation = Math.asin(Math.sin(lat) * Math.sin(decl) + Math.cos(lat) * Math.cos(decl) * Math.cos(hourAngle));
  if (elevation <= 0) return 0;
  // air mass attenuation, scaled so a clear summer noon at 50°N gives about 0.8 of kWp
  const airMass = 1 / Math.max(Math.sin(elevation), 0.05);
  return Math.max(0, 0.95 * Math.sin(elevation) * Math.pow(0.7, Math.pow(airMass, 0.678)) / 0.7);
}

/** Household base load (W) for a local hour: night floor, morning and evening peaks. */
export function baseLoadW(localHour: number, annualKwh: number): number {
  const shape = 0.35 + 1.2 * Math.exp(-((localHour - 7.5) ** 2) / 1.5) + 2.2 * Math.exp(-((localHour - 19) ** 2) / 4) + 0.4 * Math.exp(-((localHour - 13) ** 2) / 3);
  const meanShape = 0.35 + (1.2 * Math.sqrt(1.5 * Math.PI) + 2.2 * Math.sqrt(4 * Math.PI) + 0.4 * Math.sqrt(3 * Math.PI)) / 24;
  return (annualKwh * 1000 / 8760) * (shape / meanShape);
}

/** Outdoor temperature (°C) as a daily sinusoid peaking at 15:00 local. */
export function outdoorC(localHour: number, minC: number, maxC: number): number {
  return (minC + maxC) / 2 + ((maxC - minC) / 2) * Math.cos(((localHour - 15) / 24) * 2 * Math.PI);
}

/**
 * One exact step of the 1R1C room model: C dT/dt = (Tout − T)/R + gains − s·COP·P.
 * R in K/kW, C in kWh/K, powers in kW, dtH in hours; s = +1 cooling, −1 heating.
 */
export function thermalStep(t: number, tOut: number, gainsKw: number, electricKw: number, cop: number, s: 1 | -1, rKPerKw: number, cKwhPerK: number, dtH: number): number {
  const a = Math.exp(-dtH / (rKPerKw * cKwhPerK));
  return a * t + (1 - a) * (tOut + rKPerKw * (gainsKw - s * cop * electricKw));
}
