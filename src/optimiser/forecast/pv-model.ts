import { sunPosition } from './pv.js';

const RAD = Math.PI / 180;

/** One PV array (plane) as the forecasts see it. */
export interface PvPlane {
  id: string;
  kWp: number;
  /** Degrees from horizontal: 0 flat, 90 vertical. */
  tilt: number;
  /** Degrees clockwise from north: 90 east, 180 south, 270 west. */
  azimuth: number;
  latitude: number;
  longitude: number;
  /** AC rating of the array's inverter (kW): output is clipped there. Default: no clipping. */
  inverterKw?: number;
  /** Power temperature coefficient per K (default −0.004 = −0.4 %/K). */
  tempCoeffPerK?: number;
  /** Nominal operating cell temperature (°C, default 45). */
  noctC?: number;
  /** DC losses before the inverter: wiring, soiling, mismatch (default 0.1). */
  losses?: number;
  /** Inverter efficiency (default 0.96). */
  inverterEfficiency?: number;
  /** Ground reflectance (default 0.2). */
  albedo?: number;
}

/** Irradiance and temperature averaged over `[start, end)` (W/m², °C), as a weather service forecasts them. */
export interface WeatherSlot {
  start: number;
  end: number;
  /** Global horizontal irradiance. */
  ghi: number;
  /** Direct normal irradiance; derived from GHI and DHI when absent. */
  dni?: number;
  /** Diffuse horizontal irradiance; estimated from GHI (Erbs) when absent. */
  dhi?: number;
  /** Air temperature at 2 m; 20 °C when absent. */
  tempC?: number;
}

/** Sun geometry averaged over an interval, sampled every 5 minutes while the sun is up. */
interface IntervalGeometry {
  /** Mean of max(0, cos zenith) over the whole interval. */
  cosZ: number;
  /** Mean of max(0, cos incidence on the plane) over the whole interval. */
  cosInc: number;
  /** Extraterrestrial normal irradiance (W/m²). */
  i0: number;
}

function geometry(start: number, end: number, plane: PvPlane): IntervalGeometry {
  const n = Math.max(1, Math.round((end - start) / 300_000));
  const tilt = plane.tilt * RAD;
  let cosZ = 0;
  let cosInc = 0;
  for (let k = 0; k < n; k++) {
    const t = start + ((k + 0.5) * (end - start)) / n;
    const sun = sunPosition(t, plane.latitude, plane.longitude);
    if (sun.zenith >= 90) continue;
    const z = sun.zenith * RAD;
    const cz = Math.cos(z);
    cosZ += cz;
    cosInc += Math.max(0, cz * Math.cos(tilt) + Math.sin(z) * Math.sin(tilt) * Math.cos((sun.azimuth - plane.azimuth) * RAD));
  }
  const doy = (new Date(start).getTime() - Date.UTC(new Date(start).getUTCFullYear(), 0, 1)) / 86_400_000;
  return { cosZ: cosZ / n, cosInc: cosInc / n, i0: 1367 * (1 + 0.033 * Math.cos((2 * Math.PI * doy) / 365)) };
}

/** Erbs et al.: the diffuse share of GHI from the clearness index kt. */
export function erbsDiffuseFraction(kt: number): number {
  if (kt <= 0.22) return 1 - 0.09 * kt;
  if (kt <= 0.8) return 0.9511 - 0.1604 * kt + 4.388 * kt ** 2 - 16.638 * kt ** 3 + 12.336 * kt ** 4;
  return 0.165;
}

/**
 * Plane-of-array irradiance (W/m²) by the Hay–Davies model: beam on the plane, sky diffuse split
 * into a circumsolar part (following the beam) and an isotropic part, and ground reflection.
 * Interval means are handled by averaging the geometry over the interval (sunrise and sunset
 * intervals see the sun only part of the time).
 */
export function planeOfArrayIrradiance(w: WeatherSlot, plane: PvPlane): { poa: number; beam: number; sky: number; ground: number } {
  const ghi = Math.max(0, w.ghi);
  const g = geometry(w.start, w.end, plane);
  if (ghi <= 0 || g.cosZ <= 0) return { poa: 0, beam: 0, sky: 0, ground: 0 };
  let dhi = w.dhi;
  if (dhi === undefined || !Number.isFinite(dhi)) {
    const kt = Math.min(1, ghi / (g.i0 * g.cosZ));
    dhi = ghi * erbsDiffuseFraction(kt);
  }
  dhi = Math.min(ghi, Math.max(0, dhi));
  // beam on the horizontal over the interval; the plane gets it in the ratio of the mean cosines
  const beamH = ghi - dhi;
  const rb = Math.min(10, g.cosInc / g.cosZ);
  const beam = beamH * rb;
  // anisotropy index: how much of the extraterrestrial beam gets through
  const ai = Math.min(1, Math.max(0, beamH / (g.i0 * g.cosZ)));
  const tilt = plane.tilt * RAD;
  const sky = dhi * (ai * rb + (1 - ai) * ((1 + Math.cos(tilt)) / 2));
  const ground = ghi * (plane.albedo ?? 0.2) * ((1 - Math.cos(tilt)) / 2);
  return { poa: beam + sky + ground, beam, sky, ground };
}

/**
 * AC power of an array (W) over a weather slot: plane-of-array irradiance (Hay–Davies), cell
 * temperature by NOCT, DC with the temperature coefficient and losses, the inverter's efficiency
 * and its clipping at `inverterKw`.
 */
export function arrayAcPowerW(w: WeatherSlot, plane: PvPlane): number {
  const { poa } = planeOfArrayIrradiance(w, plane);
  if (poa <= 0) return 0;
  const cellC = (w.tempC ?? 20) + (((plane.noctC ?? 45) - 20) / 800) * poa;
  const dc = plane.kWp * poa * (1 + (plane.tempCoeffPerK ?? -0.004) * (cellC - 25)) * (1 - (plane.losses ?? 0.1));
  const ac = Math.max(0, dc * (plane.inverterEfficiency ?? 0.96));
  return plane.inverterKw !== undefined ? Math.min(plane.inverterKw * 1000, ac) : ac;
}
