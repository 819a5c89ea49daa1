export * from './types.js';
export { planSite } from './solve.js';
export { buildSiteLp } from './build.js';
export { highsSolver } from './highs.js';
export type { LpSolver, LpSession, LpModel, LpResult } from './lp.js';
export * from './thermal.js';
export { planBatteryOnly, batteryOnlyObstacle } from './battery.js';
export * from './heatpump.js';
