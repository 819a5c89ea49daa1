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
 * the direction the energy moves and thicker the more flows. Built once and updated in place, so
 * the animation runs on smoothly as readings arrive.
 */
export function flowDiagram() {
  const W = 320;
  const H = 250;
  const cx = W / 2;
  const cy = H / 2 - 4;
  const spots = { pv: [cx, 44, 'Solar'], grid: [46, cy, 'Grid'], battery: [W - 46, cy, 'Battery'], home: [cx, H - 50, 'House'] };
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'flow', role: 'img' });
  const parts = {};
  for (const key of Object.keys(spots)) {
    parts[key] = { line: s('line', { class: ['flow-line', `flow-${key}`, 'still'] }), dir: undefined };
    svg.append(parts[key].line);
  }
  svg.append(s('circle', { cx, cy, r: 5, class: 'flow-junction' }));
  for (const [key, [x, y, label]] of Object.entries(spots)) {
    parts[key].value = s('text', { class: 'flow-value', y: 1 });
    parts[key].sub = s('text', { class: 'flow-sub', y: key === 'pv' ? -34 : 42 });
    svg.append(s('g', { class: ['flow-node', `flow-${key}`], transform: `translate(${x} ${y})` }, s('circle', { r: 27 }), parts[key].value, s('text', { class: 'flow-label', y: 13 }, label), parts[key].sub));
  }
  const update = (flows) => {
    const nodes = {
      pv: { w: flows.pvW, dir: flows.pvW > 5 ? 'in' : 'none', sub: flows.pvW > 5 ? 'producing' : 'idle' },
      grid: { w: Math.abs(flows.gridW), dir: flows.gridW > 5 ? 'in' : flows.gridW < -5 ? 'out' : 'none', sub: flows.gridW > 5 ? 'importing' : flows.gridW < -5 ? 'exporting' : 'balanced' },
      battery: { w: Math.abs(flows.batteryW), dir: flows.batteryW < -5 ? 'in' : flows.batteryW > 5 ? 'out' : 'none', sub: flows.batteryW > 5 ? 'charging' : flows.batteryW < -5 ? 'discharging' : 'idle' },
      home: { w: flows.homeW, dir: flows.homeW > 5 ? 'out' : 'none', sub: 'using' },
    };
    const maxW = Math.max(1000, ...Object.values(nodes).map((n) => n.w));
    for (const [key, n] of Object.entries(nodes)) {
      const part = parts[key];
      const [x, y] = spots[key];
      part.line.setAttribute('stroke-width', String(1.5 + (5 * n.w) / maxW));
      if (part.dir !== n.dir) {
        // 'in' runs towards the junction: the dash animation moves from a line's first point
        const [x1, y1, x2, y2] = n.dir === 'out' ? [cx, cy, x, y] : [x, y, cx, cy];
        for (const [k, v] of Object.entries({ x1, y1, x2, y2 })) part.line.setAttribute(k, String(v));
        part.line.setAttribute('class', `flow-line flow-${key} ${n.dir === 'none' ? 'still' : 'moving'}`);
        part.dir = n.dir;
      }
      part.value.textContent = fmt.power(n.w);
      part.sub.textContent = n.sub;
    }
    svg.setAttribute('aria-label', Object.entries(nodes).map(([key, n]) => `${spots[key][2]} ${fmt.power(n.w)} ${n.sub}`).join(', '));
  };
  return { el: svg, update };
}

/** A labelled number with a unit and a smaller line under it. */
export const stat = (label, value, sub, kind) => h('div', { class: ['stat', kind] }, h('span', { class: 'stat-label' }, label), h('span', { class: 'stat-value' }, value), sub ? h('span', { class: 'stat-sub' }, sub) : null);
