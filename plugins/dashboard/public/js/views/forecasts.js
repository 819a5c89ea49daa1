/* global document, getComputedStyle, uPlot */
// Forecast versus actual: PV and the house's base load over the last two days as the hub forecast
// them when it planned (solid), as measured (dark), and as forecast now for the next two days
// (dashed), with the error by lead time from GET /api/v1/forecasts.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { apiProblem } from '../widgets.js';

const cssVar = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

function chart(el, series, app) {
  const xs = series[0].data.map((d) => Date.parse(d.start_time) / 1000);
  const kw = (v) => (v === null || v === undefined ? null : v / 1000);
  const colour = { pv: '#eab308', base_load: '#64748b' };
  const label = { pv: 'Solar', base_load: 'House' };
  const uSeries = [{}];
  const columns = [xs];
  const stepped = uPlot.paths.stepped({ align: 1 });
  for (const s of series) {
    const c = colour[s.series] ?? '#64748b';
    uSeries.push({ label: `${label[s.series]} forecast as made`, stroke: c, width: 1.5, paths: stepped, points: { show: false } });
    columns.push(s.data.map((d) => kw(d.forecast_w)));
    uSeries.push({ label: `${label[s.series]} forecast now`, stroke: c, width: 1.5, dash: [5, 4], paths: stepped, points: { show: false } });
    columns.push(s.data.map((d) => (Date.parse(d.start_time) >= app.now() - 3_600_000 ? kw(d.latest_w) : null)));
    uSeries.push({ label: `${label[s.series]} measured`, stroke: cssVar('--text', '#0f172a'), width: 2, paths: stepped, points: { show: false } });
    columns.push(s.data.map((d) => kw(d.actual_w)));
  }
  const muted = cssVar('--muted', '#64748b');
  const gridColour = cssVar('--grid', 'rgba(100,116,139,.18)');
  const now = app.now() / 1000;
  return new uPlot(
    {
      width: el.clientWidth || 600,
      height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), fmt.siteZone()),
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { auto: true, range: (_u, lo, hi) => [Math.min(0, lo), Math.max(0.5, hi * 1.1)] } },
      axes: [
        { stroke: muted, grid: { stroke: gridColour }, ticks: { stroke: gridColour }, values: (_u, splits) => splits.map((t) => fmt.dayTime(t * 1000)) },
        { label: 'kW', stroke: muted, grid: { stroke: gridColour }, ticks: { stroke: gridColour } },
      ],
      series: uSeries,
      hooks: {
        draw: [
          (u) => {
            const x = Math.round(u.valToPos(now, 'x', true));
            const { ctx, bbox } = u;
            ctx.save();
            ctx.strokeStyle = muted;
            ctx.setLineDash([2, 2]);
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
            ctx.restore();
          },
        ],
      },
    },
    columns,
    el,
  );
}

function errorTable(series) {
  const rows = [];
  for (const s of series) for (const e of s.errors) if (e.slots) rows.push({ s: s.series === 'pv' ? 'Solar' : 'House', ...e });
  if (!rows.length) return h('p', { class: 'muted' }, 'No errors yet: forecasts are compared with the meters once the hour they forecast has passed.');
  return h(
    'table',
    { class: 'compact forecast-errors' },
    h('thead', null, h('tr', null, h('th', null, 'Series'), h('th', null, 'Lead time'), h('th', { class: 'num' }, 'Hours'), h('th', { class: 'num' }, 'MAE'), h('th', { class: 'num' }, 'Bias'))),
    h('tbody', null, rows.map((r) => h('tr', null, h('td', null, r.s), h('td', null, r.horizon), h('td', { class: 'num' }, String(r.slots)), h('td', { class: 'num' }, fmt.power(r.mae_w)), h('td', { class: 'num' }, `${r.bias_w > 0 ? '+' : ''}${fmt.power(r.bias_w)}`)))),
  );
}

/** The "Forecast vs actual" card of the Plan view; fetches GET /forecasts itself. */
export function forecastCard(app) {
  const card = h('section', { class: 'card forecast-card' });
  let plot;
  const render = async () => {
    let view;
    try {
      view = await api.get('/forecasts');
    } catch (err) {
      replace(card, h('h2', null, 'Forecast vs actual'), apiProblem('Forecasts', err));
      return;
    }
    plot?.destroy();
    const holder = h('div', { class: 'forecast-chart' });
    const src = view.source;
    const status = src
      ? h('p', { class: src.degraded ? 'problem missing' : 'muted' }, `Solar forecast: ${src.description ?? src.type}${src.degraded ? ` — ${src.error ? `failing (${src.error})` : 'no forecast for the coming hours'}; clear sky × recent production stands in` : src.last_updated ? `, updated ${fmt.relative(Date.parse(src.last_updated), app.now())}` : ''}`)
      : h('p', { class: 'muted' }, 'Solar forecast: clear sky × recent production (no forecast source configured)');
    replace(card, h('h2', null, 'Forecast vs actual'), status, holder, errorTable(view.series));
    if (view.series.length && view.series[0].data.length) plot = chart(holder, view.series, app);
  };
  void render();
  return { card, refresh: render, destroy: () => plot?.destroy() };
}
