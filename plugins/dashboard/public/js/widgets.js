// Small pieces shared by the views: gauges, badges, the power-flow picture, empty and error states.
import { h, s } from './dom.js';
import * as fmt from './format.js';

export const badge = (text, kind = 'neutral', title) => h('span', { class: ['badge', kind], title }, text);

/** A horizontal gauge 0–100 % with an optional target marker. */
export function socBar(pct, { target, label } = {}) {
  const v = Math.max(0, Math.min(100, pct ?? 0));
  return h(
    'div',
    { class: 'gauge', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct ?? undefined, 'aria-label': label ?? 'State of charge' },
    h('div', { class: 'gauge-fill', style: { width: `${v}%` } }),
    target !== undefined && target !== null ? h('div', { class: 'gauge-target', style: { left: `${Math.max(0, Math.min(100, target))}%` }, title: `Target ${fmt.pct(target)}` }) : null,
    h('span', { class: 'gauge-text' }, pct === null || pct === undefined ? 'SoC unknown' : fmt.pct(pct, 0)),
  );
}

/** Room temperature against the comfort band: the band shaded on a scale, the temperature as a marker. */
export function bandBar(tempC, band, setpointC) {
  const lo = Math.min(band.min_c, tempC ?? band.min_c) - 2;
  const hi = Math.max(band.max_c, tempC ?? band.max_c) + 2;
  const at = (c) => `${((c - lo) / (hi - lo)) * 100}%`;
  const inside = tempC !== null && tempC !== undefined && tempC >= band.min_c && tempC <= band.max_c;
  return h(
    'div',
    { class: 'band', 'aria-label': `Room ${fmt.celsius(tempC)}, comfort band ${band.min_c}–${band.max_c} °C` },
    h('div', { class: 'band-range', style: { left: at(band.min_c), width: `calc(${at(band.max_c)} - ${at(band.min_c)})` } }),
    h('span', { class: 'band-edge', style: { left: at(band.min_c) } }, `${fmt.num(band.min_c, 1)}°`),
    h('span', { class: 'band-edge', style: { left: at(band.max_c) } }, `${fmt.num(band.max_c, 1)}°`),
    setpointC !== null && setpointC !== undefined ? h('div', { class: 'band-setpoint', style: { left: at(setpointC) }, title: `Setpoint ${fmt.celsius(setpointC)}` }) : null,
    tempC !== null && tempC !== undefined ? h('div', { class: ['band-marker', inside ? 'in' : 'out'], style: { left: at(tempC) } }, h('span', null, fmt.celsius(tempC))) : null,
  );
}

export const empty = (title, text) => h('div', { class: 'empty' }, h('strong', null, title), text ? h('p', null, text) : null);

/** An endpoint that failed: what the page asked for and what the hub answered. */
export function apiProblem(what, err) {
  const missing = err?.status === 404;
  return h(
    'div',
    { class: ['problem', missing ? 'missing' : 'error'] },
    h('strong', null, missing ? `${what}: not available on this hub` : `${what}: could not load`),
    h('p', null, err?.message ?? String(err)),
  );
}

/**
 * The power-flow picture: solar, grid, battery and house around a junction, each line animated in
 * the direction the energy moves and thicker the more flows.
 */
export function flowDiagram(flows) {
  const W = 320;
  const H = 250;
  const cx = W / 2;
  const cy = H / 2 - 4;
  const nodes = [
    { key: 'pv', label: 'Solar', x: cx, y: 44, w: flows.pvW, dir: flows.pvW > 5 ? 'in' : 'none', sub: flows.pvW > 5 ? 'producing' : 'idle' },
    { key: 'grid', label: 'Grid', x: 46, y: cy, w: Math.abs(flows.gridW), dir: flows.gridW > 5 ? 'in' : flows.gridW < -5 ? 'out' : 'none', sub: flows.gridW > 5 ? 'importing' : flows.gridW < -5 ? 'exporting' : 'balanced' },
    { key: 'battery', label: 'Battery', x: W - 46, y: cy, w: Math.abs(flows.batteryW), dir: flows.batteryW < -5 ? 'in' : flows.batteryW > 5 ? 'out' : 'none', sub: flows.batteryW > 5 ? 'charging' : flows.batteryW < -5 ? 'discharging' : 'idle' },
    { key: 'home', label: 'House', x: cx, y: H - 50, w: flows.homeW, dir: flows.homeW > 5 ? 'out' : 'none', sub: 'using' },
  ];
  const maxW = Math.max(1000, ...nodes.map((n) => n.w));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'flow', role: 'img', 'aria-label': nodes.map((n) => `${n.label} ${fmt.power(n.w)} ${n.sub}`).join(', ') });
  for (const n of nodes) {
    const width = 1.5 + (5 * n.w) / maxW;
    // 'in' = towards the junction; the dash animation runs along the path from its first point
    const [x1, y1, x2, y2] = n.dir === 'out' ? [cx, cy, n.x, n.y] : [n.x, n.y, cx, cy];
    svg.append(s('line', { x1, y1, x2, y2, class: ['flow-line', `flow-${n.key}`, n.dir === 'none' ? 'still' : 'moving'], 'stroke-width': width }));
  }
  svg.append(s('circle', { cx, cy, r: 5, class: 'flow-junction' }));
  for (const n of nodes) {
    svg.append(
      s(
        'g',
        { class: ['flow-node', `flow-${n.key}`], transform: `translate(${n.x} ${n.y})` },
        s('circle', { r: 27 }),
        s('text', { class: 'flow-value', y: 1 }, fmt.power(n.w)),
        s('text', { class: 'flow-label', y: 13 }, n.label),
        s('text', { class: 'flow-sub', y: n.key === 'pv' ? -34 : 42 }, n.sub),
      ),
    );
  }
  return svg;
}

/** A labelled number with a unit and a smaller line under it. */
export const stat = (label, value, sub, kind) => h('div', { class: ['stat', kind] }, h('span', { class: 'stat-label' }, label), h('span', { class: 'stat-value' }, value), sub ? h('span', { class: 'stat-sub' }, sub) : null);
