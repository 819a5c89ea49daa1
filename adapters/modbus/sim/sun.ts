/** Clear-sky PV output (W) of `kwp` at instant `t` for a site at `latitude`, local offset `tzOffsetMin`. */
export function clearSkyPvW(kwp: number, t: number, latitude: number, tzOffsetMin: number): number {
  const local = new Date(t + tzOffsetMin * 60_000);
  const dayOfYear = Math.floor((local.getTime() - Date.UTC(local.getUTCFullYear(), 0, 1)) / 86_400_000);
  const hour = local.getUTCHours() + local.getUTCMinutes() / 60 + local.getUTCSeconds() / 3600;
  const decl = (23.44 * Math.PI / 180) * Math.sin(((2 * Math.PI) / 365) * (dayOfYear - 81));
  const lat = (latitude * Math.PI) / 180;
  // solar noon about 12:30 local clock time (a zone's central meridian, half an hour of slack)
  const noon = 12.5;
  const hourAngle = ((hour - noon) * 15 * Math.PI) / 180;
  const sinElevation = Math.sin(lat) * Math.sin(decl) + Math.cos(lat) * Math.cos(decl) * Math.cos(hourAngle);
  if (sinElevation <= 0) return 0;
  // thinner air at high sun: about 0.8 of kWp at a clear summer noon in central Europe
  const airMass = 1 / Math.max(sinElevation, 0.05);
  return Math.round(kwp * 1000 * 0.95 * sinElevation * Math.pow(0.7, Math.pow(airMass, 0.678)) / 0.7);
}
