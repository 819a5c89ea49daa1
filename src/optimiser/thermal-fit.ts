/**
 * Learns the 1R1C room model of `site/thermal.ts` from a thermostat's own history:
 *   T_{k+1} = a_k·T_k + (1 − a_k)·(T_out,k + R·(Q_gain − s·COP·P_k)),  a_k = e^{−Δt_k/τ},  τ = R·C.
 *
 * The history gives the indoor temperature, the outdoor temperature and the HVAC's electric power
 * (or its running state times its rated power), each held over the interval to the next sample.
 * COP must be given: with it, R, C and the gains are identifiable; without it only R·COP is.
 *
 * Method: output-error least squares on the exact discretisation. The data are cut into windows
 * (at gaps, and every `windowH` hours); inside a window the model is run forward from a free
 * initial temperature. For a fixed τ the simulated temperature is linear in the unknowns
 * (u = R·Q_gain, v = R, and each window's start temperature), so they are solved exactly; τ is
 * found by a log-grid search refined by golden section. Fitting the simulation, not the one-step
 * equation, keeps measurement noise on the indoor temperature out of the regressors (which would
 * bias τ low), while restarting each window keeps slow disturbances (sun, doors) from piling up.
 */

/** One sample of the history; inputs are held from `time` until the next sample's time. */
export interface ThermalSample {
  /** Unix ms. */
  time: number;
  indoorC: number;
  outdoorC: number;
  /** Mean electric power of the HVAC until the next sample (W); running ? rated W : 0 for on/off units. */
  electricW: number;
}

export interface ThermalFitOptions {
  mode: 'heat' | 'cool';
  cop: number;
  /** Gaps longer than this start a new window (hours). Default 1. */
  maxGapH?: number;
  /** Window length (hours). Default 24. */
  windowH?: number;
  /** Search range of τ = R·C (hours). Default 0.5…1000. */
  tauRangeH?: [number, number];
}

export interface ThermalFit {
  /** K/kW. */
  rKPerKw: number;
  /** kWh/K. */
  cKwhPerK: number;
  /** W. */
  gainsW: number;
  /** Time constant R·C (hours). */
  tauH: number;
  cop: number;
  /** Root mean square of the fit's residuals (°C): simulated vs measured inside the windows. */
  rmseC: number;
  /** How many samples and windows were used. */
  samples: number;
  windows: number;
}

export class ThermalFitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ThermalFitError';
  }
}

interface Window {
  /** Measured temperatures, one per sample of the window. */
  y: number[];
  outdoorC: number[];
  electricKw: number[];
  dtH: number[];
}

function windowsOf(samples: ThermalSample[], maxGapH: number, windowH: number): Window[] {
  const out: Window[] = [];
  let cur: Window | undefined;
  let startTime = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    const prev = samples[i - 1];
    const dtH = prev ? (s.time - prev.time) / 3_600_000 : 0;
    if (!cur || !prev || dtH > maxGapH || (s.time - startTime) / 3_600_000 > windowH) {
      if (cur && cur.y.length >= 3) out.push(cur);
      cur = { y: [s.indoorC], outdoorC: [], electricKw: [], dtH: [] };
      startTime = s.time;
      continue;
    }
    cur.outdoorC.push(prev.outdoorC);
    cur.electricKw.push(prev.electricW / 1000);
    cur.dtH.push(dtH);
    cur.y.push(s.indoorC);
  }
  if (cur && cur.y.length >= 3) out.push(cur);
  return out;
}

const dot = (a: number[], b: number[]) => a.reduce((acc, x, i) => acc + x * b[i], 0);

interface Solved {
  sse: number;
  u: number;
  v: number;
  det: number;
  n: number;
}

/** For a fixed τ: simulate the unit responses of each window, project out its start temperature, solve for u and v. */
function solveForTau(windows: Window[], tauH: number, sign: number, cop: number): Solved {
  let bb = 0, bg = 0, gg = 0, by = 0, gy = 0, yy = 0, n = 0;
  for (const w of windows) {
    const len = w.y.length;
    const alpha = new Array<number>(len), beta = new Array<number>(len), gamma = new Array<number>(len), phi = new Array<number>(len);
    alpha[0] = 0;
    beta[0] = 0;
    gamma[0] = 0;
    phi[0] = 1;
    for (let k = 0; k < len - 1; k++) {
      const a = Math.exp(-w.dtH[k] / tauH);
      alpha[k + 1] = a * alpha[k] + (1 - a) * w.outdoorC[k];
      beta[k + 1] = a * beta[k] + (1 - a);
      gamma[k + 1] = a * gamma[k] - (1 - a) * sign * cop * w.electricKw[k];
      phi[k + 1] = a * phi[k];
    }
    const target = w.y.map((y, k) => y - alpha[k]);
    const pp = dot(phi, phi);
    // the window's start temperature is free: remove its direction from every vector
    const project = (z: number[]) => {
      const c = dot(phi, z) / pp;
      return z.map((x, k) => x - c * phi[k]);
    };
    const t = project(target), b = project(beta), g = project(gamma);
    bb += dot(b, b);
    bg += dot(b, g);
    gg += dot(g, g);
    by += dot(b, t);
    gy += dot(g, t);
    yy += dot(t, t);
    n += len;
  }
  const det = bb * gg - bg * bg;
  if (!(det > 1e-12 * Math.max(1, bb * gg))) return { sse: Infinity, u: NaN, v: NaN, det, n };
  const u = (by * gg - gy * bg) / det;
  const v = (gy * bb - by * bg) / det;
  // ‖t − b·u − g·v‖² expanded with the normal equations
  const sse = Math.max(0, yy - u * by - v * gy);
  return { sse, u, v, det, n };
}

/** Fits R, C and the gains of the 1R1C model to a temperature history. Throws ThermalFitError saying why it cannot. */
export function fitThermalModel(history: ThermalSample[], options: ThermalFitOptions): ThermalFit {
  const sign = options.mode === 'cool' ? 1 : -1;
  if (!(options.cop > 0)) throw new ThermalFitError(`cop must be positive (got ${options.cop})`);
  const bad = history.findIndex((s) => ![s.time, s.indoorC, s.outdoorC, s.electricW].every(Number.isFinite) || s.electricW < 0);
  if (bad !== -1) throw new ThermalFitError(`sample ${bad} has a missing, non-finite or negative value`);
  const samples = [...history].sort((a, b) => a.time - b.time);
  const windows = windowsOf(samples, options.maxGapH ?? 1, options.windowH ?? 24);
  const used = windows.reduce((n, w) => n + w.y.length, 0);
  if (used < 12) throw new ThermalFitError(`too little history: ${used} usable samples in ${windows.length} windows (need at least 12, without gaps longer than ${options.maxGapH ?? 1} h)`);
  const powers = windows.flatMap((w) => w.electricKw);
  if (Math.max(...powers) - Math.min(...powers) < 1e-6) throw new ThermalFitError('the HVAC power never changes in this history, so its effect cannot be told apart from the gains');

  const [lo, hi] = options.tauRangeH ?? [0.5, 1000];
  const sseAt = (logTau: number) => solveForTau(windows, Math.exp(logTau), sign, options.cop).sse;
  // coarse log-grid, then golden section around the best point
  const steps = 120;
  let best = Math.log(lo);
  let bestSse = Infinity;
  for (let i = 0; i <= steps; i++) {
    const x = Math.log(lo) + ((Math.log(hi) - Math.log(lo)) * i) / steps;
    const e = sseAt(x);
    if (e < bestSse) {
      bestSse = e;
      best = x;
    }
  }
  const h = (Math.log(hi) - Math.log(lo)) / steps;
  let a = best - h, b = best + h;
  const gr = (Math.sqrt(5) - 1) / 2;
  let c = b - gr * (b - a), d = a + gr * (b - a);
  let fc = sseAt(c), fd = sseAt(d);
  for (let i = 0; i < 60; i++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - gr * (b - a);
      fc = sseAt(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + gr * (b - a);
      fd = sseAt(d);
    }
  }
  const tauH = Math.exp((a + b) / 2);
  const fit = solveForTau(windows, tauH, sign, options.cop);
  if (!Number.isFinite(fit.sse)) throw new ThermalFitError('the history does not determine the model (HVAC power and outdoor temperature move together)');
  if (!(fit.v > 0)) {
    throw new ThermalFitError(`the fitted thermal resistance is not positive (${fit.v.toFixed(3)} K/kW): the HVAC does not ${options.mode} the room in this history (wrong mode, COP or power?)`);
  }
  const atEdge = Math.abs(Math.log(tauH) - Math.log(lo)) < 1e-3 || Math.abs(Math.log(tauH) - Math.log(hi)) < 1e-3;
  if (atEdge) throw new ThermalFitError(`the time constant ran to the end of its search range (${tauH.toFixed(2)} h): the history is too short or too flat`);
  const rKPerKw = fit.v;
  return {
    rKPerKw,
    cKwhPerK: tauH / rKPerKw,
    gainsW: (fit.u / rKPerKw) * 1000,
    tauH,
    cop: options.cop,
    rmseC: Math.sqrt(fit.sse / fit.n),
    samples: used,
    windows: windows.length,
  };
}

/**
 * Runs the model forward over a history from its first measured temperature (inputs held per
 * interval) and returns the simulated temperatures: to check a fit on data it was not fitted on.
 */
export function simulateHistory(history: ThermalSample[], model: { rKPerKw: number; cKwhPerK: number; gainsW: number; cop: number }, mode: 'heat' | 'cool'): number[] {
  const sign = mode === 'cool' ? 1 : -1;
  const out = [history[0].indoorC];
  let t = history[0].indoorC;
  for (let k = 0; k < history.length - 1; k++) {
    const dtH = (history[k + 1].time - history[k].time) / 3_600_000;
    const a = Math.exp(-dtH / (model.rKPerKw * model.cKwhPerK));
    t = a * t + (1 - a) * (history[k].outdoorC + model.rKPerKw * (model.gainsW / 1000 - sign * model.cop * (history[k].electricW / 1000)));
    out.push(t);
  }
  return out;
}
