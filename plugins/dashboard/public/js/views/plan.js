/* global document, ResizeObserver, getComputedStyle, devicePixelRatio, uPlot */
// Plan: the next 48 h of import and export prices with each device's planned power stacked under
// them, cheap and dear periods shaded, now and the EV's leave time marked. uPlot is the global its
// minified classic build defines (index.html loads it before the modules run).
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { ahead, deviceKind, priceBands, reasonText, slotAt } from '../model.js';
import { apiProblem, badge, empty, stat } from '../widgets.js';
import { plannedAction } from './now.js';
import { forecastCard } from './forecasts.js';

const HOUR = 3_600_000;
export const KIND_COLOUR = { ev: '#2563eb', battery: '#16a34a', hvac: '#ea580c', heatpump: '#dc2626', socket: '#9333ea', pv: '#eab308', meter: '#64748b', load: '#9333ea' };

const cssVar = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
const rgb = (colour) => {
  const m = /^#([0-9a-f]{6})$/i.exec(colour) ?? /^rgba?\((\d+),\s*(\d+),\s*(\d+)/i.exec(colour);
  if (!m) return [255, 255, 255];
  if (m.length === 2) {
    const n = parseInt(m[1], 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  return [Number(m[1]), Number(m[2]), Number(m[3])];
};
/** An opaque colour `share` of the way from `a` to `b`, so stacked layers need no transparency. */
const mix = (a, b, share) => {
  const [x, y] = [rgb(a), rgb(b)];
  return `rgb(${x.map((v, i) => Math.round(v + (y[i] - v) * share)).join(',')})`;
};

/** Hours on the time axis, and the weekday and date at local midnight. */
function axisLabel(ts) {
  const t = ts * 1000;
  const p = fmt.parts(t);
  return p.hour === 0 && p.minute === 0 ? `${p.weekday} ${p.day}` : fmt.time(t);
}

/** When each EV leaves next: from the plan when it says, else from the device's target. */
function deadlines(app, plan, now) {
  const out = [];
  for (const d of app.devices.values()) {
    if (deviceKind(d) !== 'ev') continue;
    const fromPlan = plan?.devices.find((x) => x.id === d.id)?.leaveTime;
    const leave = d.config?.target?.leave_time ?? d.config?.leave;
    const t = fromPlan ?? (leave ? fmt.nextLocalTime(now, leave) : undefined);
    if (t) out.push({ t, label: `${d.name} leaves ${fmt.time(t)}` });
  }
  return out;
}

/** Columns for uPlot: slot boundaries on x, stacked device power (kW) and the two price steps. */
function buildData(app, plan, t0, t1) {
  const edges = new Set();
  const within = (t) => t >= t0 && t <= t1;
  for (const s of plan?.slots ?? []) [s.start, s.end].filter(within).forEach((t) => edges.add(t));
  for (const s of [...app.prices.import, ...app.prices.export]) [s.start, s.end].filter(within).forEach((t) => edges.add(t));
  edges.add(t0);
  edges.add(t1);
  const xs = [...edges].sort((a, b) => a - b);
  const planned = (plan?.devices ?? []).filter((d) => d.powerW.some((w) => Math.abs(w) > 1));
  // the forecasts under the plan: what the house draws anyway, and what the PV gives (negative = produced)
  const forecasts = [
    plan?.baseLoadW?.some((w) => w > 1) ? { id: 'base-load', kind: 'meter', label: 'House (forecast)', powerW: plan.baseLoadW.map((w) => w ?? 0), reasons: [] } : null,
    plan?.pvW?.some((w) => w > 1) ? { id: 'pv-forecast', kind: 'pv', label: 'Solar (forecast)', powerW: plan.pvW.map((w) => -(w ?? 0)), reasons: [] } : null,
  ].filter(Boolean);
  const devices = [...forecasts, ...planned];
  const names = new Map([...app.devices.values()].map((d) => [d.id, d]));
  for (const f of forecasts) names.set(f.id, { name: f.label });
  const at = (t) => plan?.slots.findIndex((s) => s.start <= t && t < s.end) ?? -1;
  const slotIdx = xs.map(at);
  const pos = [];
  const neg = [];
  const runPos = xs.map(() => 0);
  const runNeg = xs.map(() => 0);
  for (const d of devices) {
    const w = slotIdx.map((i) => (i < 0 ? 0 : (d.powerW[i] ?? 0) / 1000));
    w.forEach((v, k) => (runPos[k] += Math.max(0, v)));
    pos.push({ d, values: [...runPos] });
    if (w.some((v) => v < -0.001)) {
      w.forEach((v, k) => (runNeg[k] += Math.min(0, v)));
      neg.push({ d, values: [...runNeg] });
    }
  }
  const price = (series) => xs.map((t) => slotAt(series, t)?.rate ?? null);
  const grid = plan?.gridW?.length ? slotIdx.map((i) => (i < 0 ? null : plan.gridW[i] / 1000)) : null;
  // one colour per kind, a darker or lighter shade of it for a second and third device of that kind
  const colours = new Map();
  const seen = {};
  for (const d of devices) {
    const kind = d.kind ?? deviceKind(names.get(d.id) ?? {});
    const n = (seen[kind] = (seen[kind] ?? -1) + 1);
    const base = KIND_COLOUR[kind] ?? KIND_COLOUR.meter;
    colours.set(d.id, n === 0 ? base : mix(base, n % 2 ? '#000000' : '#ffffff', 0.3 * Math.ceil(n / 2)));
  }
  return { xs, devices, names, colours, pos, neg, importRate: price(app.prices.import), exportRate: price(app.prices.export), grid, slotIdx };
}

function chart(el, readout, app, plan) {
  const now = app.now();
  const t0 = plan?.slots.length ? Math.max(plan.slots[0].start, now - 15 * 60_000) : Math.floor(now / (15 * 60_000)) * 15 * 60_000;
  const t1 = plan?.slots.length ? Math.min(t0 + 48 * HOUR, plan.slots[plan.slots.length - 1].end) : t0 + 48 * HOUR;
  const data = buildData(app, plan, t0, t1);
  const bands = priceBands(ahead(app.prices.import, now));
  const marks = deadlines(app, plan, now).filter((m) => m.t > t0 && m.t < t1);
  const text = cssVar('--text', '#0f172a');
  const muted = cssVar('--muted', '#64748b');
  const gridColour = cssVar('--grid', 'rgba(100,116,139,.18)');
  const stepped = uPlot.paths.stepped({ align: 1 });

  const series = [{}];
  const columns = [data.xs.map((t) => t / 1000)];
  const colour = (d) => data.colours.get(d.id);
  const layerFill = (c) => mix(c, cssVar('--card', '#ffffff'), 0.45);
  // stacked areas by painting: the whole stack first, then each smaller partial sum over it, all
  // filled to zero with opaque colours, so each device shows as the band between two sums
  const addStack = (stack) =>
    [...stack].reverse().forEach(({ d, values }) => {
      series.push({ label: data.names.get(d.id)?.name ?? d.id, scale: 'kW', stroke: colour(d), width: 1, fill: layerFill(colour(d)), fillTo: 0, paths: stepped, points: { show: false } });
      columns.push(values);
    });
  addStack(data.pos);
  addStack(data.neg);
  if (data.grid) {
    series.push({ label: 'Grid (net)', scale: 'kW', stroke: text, width: 1.25, dash: [4, 3], paths: stepped, points: { show: false } });
    columns.push(data.grid);
  }
  series.push({ label: 'Import price', scale: 'rate', stroke: '#dc2626', width: 2, paths: stepped, points: { show: false } });
  series.push({ label: 'Export price', scale: 'rate', stroke: '#0891b2', width: 2, dash: [6, 4], paths: stepped, points: { show: false } });
  columns.push(data.importRate, data.exportRate);

  const x = (u, t) => u.valToPos(t / 1000, 'x', true);
  // on a phone the axis titles go (the legend says what is what) and the plot gets the width
  const narrow = (el.clientWidth || 600) < 560;
  const opts = {
    width: el.clientWidth || 600,
    height: el.clientWidth < 560 ? 260 : 340,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), fmt.siteZone()),
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    scales: { x: { time: true }, kW: { auto: true, range: (_u, lo, hi) => [Math.min(0, lo * 1.1), Math.max(1, hi * 1.15)] }, rate: { auto: true, range: (_u, lo, hi) => [Math.min(0, lo), hi * 1.15 || 1] } },
    axes: [
      { stroke: muted, grid: { stroke: gridColour }, ticks: { stroke: gridColour }, space: 56, values: (_u, splits) => splits.map(axisLabel) },
      { scale: 'kW', label: narrow ? undefined : 'planned kW', stroke: muted, grid: { stroke: gridColour }, ticks: { stroke: gridColour }, size: narrow ? 34 : 48 },
      { scale: 'rate', side: 1, label: narrow ? undefined : `${app.site.currency}/kWh`, stroke: muted, grid: { show: false }, ticks: { stroke: gridColour }, size: narrow ? 40 : 56, values: (_u, vals) => vals.map((v) => v.toFixed(2)) },
    ],
    series,
    hooks: {
      drawClear: [
        (u) => {
          const { ctx, bbox } = u;
          ctx.save();
          for (const [list, fill] of [[bands.cheap, cssVar('--cheap', 'rgba(22,163,74,.12)')], [bands.dear, cssVar('--dear', 'rgba(220,38,38,.10)')]]) {
            ctx.fillStyle = fill;
            for (const b of list) {
              const a = Math.max(bbox.left, x(u, b.start));
              const z = Math.min(bbox.left + bbox.width, x(u, b.end));
              if (z > a) ctx.fillRect(a, bbox.top, z - a, bbox.height);
            }
          }
          ctx.restore();
        },
      ],
      draw: [
        (u) => {
          const { ctx, bbox } = u;
          const px = devicePixelRatio;
          ctx.save();
          ctx.font = `${11 * px}px system-ui, sans-serif`;
          ctx.textBaseline = 'top';
          const vline = (t, colour, label, dash, row = 0) => {
            const xx = Math.round(x(u, t));
            if (xx < bbox.left || xx > bbox.left + bbox.width) return;
            ctx.strokeStyle = colour;
            ctx.lineWidth = 1.5 * px;
            ctx.setLineDash(dash.map((d) => d * px));
            ctx.beginPath();
            ctx.moveTo(xx, bbox.top);
            ctx.lineTo(xx, bbox.top + bbox.height);
            ctx.stroke();
            ctx.fillStyle = colour;
            const w = ctx.measureText(label).width;
            ctx.fillText(label, Math.min(xx + 4 * px, bbox.left + bbox.width - w - 2 * px), bbox.top + (4 + 14 * row) * px);
          };
          vline(now, text, 'now', [2, 2]);
          marks.forEach((m, i) => vline(m.t, KIND_COLOUR.ev, m.label, [6, 3], i + 1));
          ctx.restore();
        },
      ],
      // off the chart the readout goes back to now
      setCursor: [(u) => showReadout(readout, app, plan, data, u.cursor.idx ?? nowIndex(data, now))],
    },
  };
  const plot = new uPlot(opts, columns, el);
  showReadout(readout, app, plan, data, nowIndex(data, now));
  return { plot, data, bands, marks };
}

const nowIndex = (data, now) => Math.max(0, data.xs.findIndex((t) => t > now) - 1);

/** The numbers under the cursor (or for now): prices, and each device's planned power and reason. */
function showReadout(el, app, plan, data, idx) {
  if (idx === null || idx === undefined || idx < 0) idx = 0;
  const t = data.xs[idx];
  const slot = data.slotIdx[idx];
  replace(
    el,
    h('strong', null, fmt.dayTime(t)),
    h('span', { class: 'chip rate-import' }, `import ${fmt.rate(data.importRate[idx])}`),
    h('span', { class: 'chip rate-export' }, `export ${fmt.rate(data.exportRate[idx])}`),
    data.devices.map((d) => {
      const w = slot >= 0 ? (d.powerW[slot] ?? 0) : 0;
      const reason = slot >= 0 ? d.reasons[slot] : undefined;
      const colour = data.colours.get(d.id);
      const what = d.id === 'pv-forecast' || d.id === 'base-load' ? fmt.power(Math.abs(w)) : plannedAction(d.kind === 'load' ? 'socket' : (d.kind ?? deviceKind(data.names.get(d.id) ?? {})), w);
      return h('span', { class: 'chip', style: { '--chip': colour } }, `${data.names.get(d.id)?.name ?? d.id} ${what}${reason && Math.abs(w) >= 10 ? ` · ${reasonText(reason)}` : ''}`);
    }),
  );
}

function legend(app, plan, data, bands, marks) {
  const items = data.devices.map((d) => {
    const colour = data.colours.get(d.id);
    return h('span', { class: 'key' }, h('i', { class: 'swatch', style: { background: colour } }), data.names.get(d.id)?.name ?? d.id);
  });
  return h(
    'div',
    { class: 'legend' },
    items,
    data.grid ? h('span', { class: 'key' }, h('i', { class: 'swatch line dashed' }), 'Grid (net)') : null,
    h('span', { class: 'key' }, h('i', { class: 'swatch line import' }), 'Import price'),
    h('span', { class: 'key' }, h('i', { class: 'swatch line export dashed' }), 'Export price'),
    bands.flat ? h('span', { class: 'key muted' }, 'flat import rate: no cheap or dear periods') : [h('span', { class: 'key' }, h('i', { class: 'swatch cheap' }), 'cheap'), h('span', { class: 'key' }, h('i', { class: 'swatch dear' }), 'dear')],
    marks.length ? h('span', { class: 'key' }, h('i', { class: 'swatch line deadline' }), 'EV leaves') : null,
  );
}

function summary(app, plan) {
  if (!plan) return null;
  const names = new Map([...app.devices.values()].map((d) => [d.id, d.name]));
  return h(
    'section',
    { class: 'card' },
    h('h2', null, 'Plan'),
    h(
      'div',
      { class: 'stats' },
      stat('Expected cost', fmt.money(plan.cost), 'imports minus export earnings over the horizon'),
      stat('Made', plan.createdAt ? fmt.time(plan.createdAt) : '—', [plan.createdAt ? fmt.relative(plan.createdAt, app.now()) : '', plan.trigger ? `on ${plan.trigger}` : ''].filter(Boolean).join(', ')),
      stat('Valid until', plan.validUntil ? fmt.dayTime(plan.validUntil) : '—', plan.status ? `solver: ${plan.status}${plan.solveMs !== undefined ? ` in ${fmt.num(plan.solveMs, 0)} ms` : ''}` : undefined),
    ),
    plan.stale ? h('p', { class: 'problem error' }, `This plan is out of date: ${plan.stale}`) : null,
    plan.warnings.length ? h('ul', { class: 'warnings' }, plan.warnings.map((w) => h('li', null, w))) : null,
    plan.notes.length ? h('ul', { class: 'notes' }, plan.notes.map((n) => h('li', null, typeof n === 'string' ? n : JSON.stringify(n)))) : null,
    h(
      'table',
      { class: 'compact plan-table' },
      h('thead', null, h('tr', null, h('th', null, 'Device'), h('th', { class: 'num' }, 'Planned energy'), h('th', null, 'Runs'), h('th', null, 'Note'))),
      h(
        'tbody',
        null,
        plan.devices.map((d) => {
          const runs = [];
          let open;
          d.powerW.forEach((w, i) => {
            const on = Math.abs(w) > 10;
            if (on && !open) runs.push((open = { start: plan.slots[i].start, end: plan.slots[i].end }));
            else if (on) open.end = plan.slots[i].end;
            else open = undefined;
          });
          const energy = d.energyWh ?? d.powerW.reduce((a, w, i) => a + (Math.max(0, w) * (plan.slots[i].end - plan.slots[i].start)) / HOUR, 0);
          const note = [d.paused ? badge('paused', 'info') : null, d.shortfallWh > 1 ? badge(`short by ${fmt.energy(d.shortfallWh)}`, 'bad') : null];
          return h(
            'tr',
            null,
            h('td', null, names.get(d.id) ?? d.id),
            h('td', { class: 'num' }, fmt.energy(energy)),
            h('td', null, runs.length ? runs.slice(0, 2).map((r) => `${fmt.dayTime(r.start)}–${fmt.startOfDay(r.end - 1) === fmt.startOfDay(r.start) ? fmt.time(r.end) : fmt.dayTime(r.end)}`).join(', ') + (runs.length > 2 ? `, and ${runs.length - 2} more` : '') : 'none'),
            h('td', null, note),
          );
        }),
      ),
    ),
  );
}

export function planView(root, app) {
  const chartCard = h('section', { class: 'card chart-card' });
  const below = h('div');
  const forecasts = forecastCard(app);
  replace(root, chartCard, below, forecasts.card);
  let current;
  let observer;

  const render = () => {
    current?.plot.destroy();
    const plan = app.plan.value;
    const holder = h('div', { class: 'chart' });
    const readout = h('div', { class: 'readout' });
    const problems = [app.prices.error ? apiProblem('Tariff rates', app.prices.error) : null, app.plan.error ? apiProblem('Plan', app.plan.error) : null];
    replace(chartCard, h('h2', null, 'Next 48 hours'), problems, holder, readout);
    if (!app.prices.import.length && !plan) {
      replace(holder, empty('Nothing to draw yet', 'No prices and no plan.'));
      current = undefined;
    } else {
      current = chart(holder, readout, app, plan);
      chartCard.append(legend(app, plan, current.data, current.bands, current.marks));
    }
    replace(below, summary(app, plan));
  };
  render();
  observer = new ResizeObserver(() => {
    const holder = chartCard.querySelector('.chart');
    if (current && holder && Math.abs(holder.clientWidth - current.plot.width) > 4) current.plot.setSize({ width: holder.clientWidth, height: holder.clientWidth < 560 ? 260 : 340 });
  });
  observer.observe(chartCard);
  const offs = [app.on('plan', render), app.on('plan', () => void forecasts.refresh()), app.on('prices', render), app.on('devices', () => undefined)];
  return {
    destroy: () => {
      offs.forEach((off) => off());
      forecasts.destroy();
      observer.disconnect();
      current?.plot.destroy();
    },
  };
}
