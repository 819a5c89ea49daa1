/* global Blob, document */
// Costs and savings: energy and cost per day, week, month or year for the site or one device,
// the savings against the baselines, a CSV of the table, and the cost of each charging session.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { deviceKind } from '../model.js';
import { apiProblem, badge, empty, stat } from '../widgets.js';

const DAY = 86_400_000;
const AGGREGATIONS = [
  ['DAY', 'By day', 'Last 14 days'],
  ['WEEK', 'By week', 'Last 8 weeks'],
  ['MONTH', 'By month', 'Last 12 months'],
  ['YEAR', 'By year', 'Last 3 years'],
];

/** The default window for an aggregation, ending at the end of the current local day. */
export function defaultRange(aggregation, now) {
  const end = fmt.startOfDay(now + DAY + 3_600_000 * 3);
  const p = fmt.parts(now);
  switch (aggregation) {
    case 'WEEK':
      return { start: fmt.startOfDay(end - 8 * 7 * DAY), end };
    case 'MONTH':
      return { start: fmt.localInstant(p.month === 12 ? p.year : p.year - 1, (p.month % 12) + 1, 1), end };
    case 'YEAR':
      return { start: fmt.localInstant(p.year - 2, 1, 1), end };
    default:
      return { start: fmt.startOfDay(end - 14 * DAY + 3_600_000 * 3), end };
  }
}

const bucketLabel = (aggregation, start, end) => {
  switch (aggregation) {
    case 'YEAR':
      return String(fmt.parts(start).year);
    case 'MONTH': {
      const p = fmt.parts(start);
      return `${p.year}-${String(p.month).padStart(2, '0')}`;
    }
    case 'WEEK':
      return `${fmt.date(start)} – ${fmt.date(end - 1)}`;
    case 'NONE':
      return `${fmt.dateTime(start)} – ${fmt.time(end)}`;
    default:
      return `${fmt.parts(start).weekday} ${fmt.date(start)}`;
  }
};

const ms = (t) => Date.parse(t);
const energyWh = (row) => row.energy?.value ?? row.energy_wh ?? 0;
const costOf = (row) => row.tariff?.value ?? row.cost?.value ?? row.cost ?? 0;

/** POST /costs/interval for one direction → Map(bucket start → {start, end, wh, cost}). */
async function costs(scope, direction, aggregation, range) {
  const body = await api.post(`/costs/interval/${encodeURIComponent(scope)}`, { start_time: new Date(range.start).toISOString(), end_time: new Date(range.end).toISOString() }, { direction, aggregation, include_tariff: true });
  const unit = (body.energy_units ?? 'WH').toUpperCase() === 'KWH' ? 1000 : 1;
  const out = new Map();
  for (const r of body.data ?? []) {
    const start = ms(r.start_time);
    const prev = out.get(start) ?? { start, end: ms(r.end_time), wh: 0, cost: 0 };
    prev.wh += energyWh(r) * unit;
    prev.cost += costOf(r);
    out.set(start, prev);
  }
  return out;
}

/** Rows of the table: one per bucket, import and export side by side. */
export function mergeRows(imports, exports, aggregation) {
  const starts = [...new Set([...imports.keys(), ...exports.keys()])].sort((a, b) => a - b);
  return starts.map((start) => {
    const i = imports.get(start);
    const e = exports.get(start);
    const end = i?.end ?? e?.end;
    return { start, end, label: bucketLabel(aggregation, start, end), importWh: i?.wh ?? 0, importCost: i?.cost ?? 0, exportWh: e?.wh ?? 0, exportEarnings: e?.cost ?? 0, net: (i?.cost ?? 0) - (e?.cost ?? 0) };
  });
}

/** The table as CSV (RFC 4180 quoting), in kWh and the site currency. */
export function toCsv(rows, currency) {
  const q = (v) => (typeof v === 'number' ? String(Math.round(v * 10000) / 10000) : /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const head = ['start_time', 'end_time', 'period', 'import_kwh', `import_cost_${currency}`, 'export_kwh', `export_earnings_${currency}`, `net_cost_${currency}`];
  const lines = rows.map((r) => [new Date(r.start).toISOString(), new Date(r.end).toISOString(), r.label, r.importWh / 1000, r.importCost, r.exportWh / 1000, r.exportEarnings, r.net].map(q).join(','));
  return [head.join(','), ...lines].join('\r\n') + '\r\n';
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

function table(rows, currency) {
  const maxCost = Math.max(0.01, ...rows.map((r) => Math.max(r.importCost, r.exportEarnings)));
  const bar = (v, cls) => h('span', { class: ['cell-bar', cls], style: { width: `${Math.max(0, (v / maxCost) * 100)}%` } });
  const total = rows.reduce((a, r) => ({ importWh: a.importWh + r.importWh, importCost: a.importCost + r.importCost, exportWh: a.exportWh + r.exportWh, exportEarnings: a.exportEarnings + r.exportEarnings, net: a.net + r.net }), { importWh: 0, importCost: 0, exportWh: 0, exportEarnings: 0, net: 0 });
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'costs-table' },
      h('thead', null, h('tr', null, h('th', null, 'Period'), h('th', { class: 'num' }, 'Imported'), h('th', { class: 'num' }, `Cost (${currency})`), h('th', { class: 'num' }, 'Exported'), h('th', { class: 'num' }, `Earned (${currency})`), h('th', { class: 'num' }, 'Net'))),
      h(
        'tbody',
        null,
        rows.map((r) =>
          h(
            'tr',
            null,
            h('td', null, r.label),
            h('td', { class: 'num' }, fmt.energy(r.importWh, 1)),
            h('td', { class: 'num bar-cell' }, bar(r.importCost, 'import'), h('span', null, fmt.money(r.importCost))),
            h('td', { class: 'num' }, fmt.energy(r.exportWh, 1)),
            h('td', { class: 'num bar-cell' }, bar(r.exportEarnings, 'export'), h('span', null, fmt.money(r.exportEarnings))),
            h('td', { class: 'num strong' }, fmt.money(r.net)),
          ),
        ),
      ),
      h('tfoot', null, h('tr', null, h('th', null, 'Total'), h('th', { class: 'num' }, fmt.energy(total.importWh, 1)), h('th', { class: 'num' }, fmt.money(total.importCost)), h('th', { class: 'num' }, fmt.energy(total.exportWh, 1)), h('th', { class: 'num' }, fmt.money(total.exportEarnings)), h('th', { class: 'num' }, fmt.money(total.net)))),
    ),
  );
}

/** GET /savings → one card: what the baseline would have cost, what it cost, and the difference. */
function savingsCard(name, s) {
  const savings = s.savings?.value ?? s.savings;
  const pct = s.savings_percentage ?? s.savings?.percentage;
  const baseline = s.baseline_cost?.value ?? s.baseline_cost;
  const actual = s.actual_cost?.value ?? s.actual_cost;
  const be = s.baseline_energy?.value ?? s.baseline_energy_wh ?? s.baseline_energy;
  const ae = s.actual_energy?.value ?? s.actual_energy_wh ?? s.actual_energy;
  const cents = (v) => (v === null || v === undefined ? v : Math.round(v * 100) / 100 || 0);
  const saved = cents(savings);
  return h(
    'article',
    { class: ['card', 'saving', saved > 0 ? 'good' : saved < 0 ? 'bad' : null] },
    h('h3', null, name),
    h('div', { class: 'stats' }, stat(saved < 0 ? 'Cost more by' : 'Saved', fmt.money(Math.abs(saved ?? 0)), pct !== undefined && pct !== null ? `${fmt.num(Math.abs(pct), 1)} % of the baseline` : undefined, saved > 0 ? 'cheap' : saved < 0 ? 'dear' : undefined)),
    h('dl', { class: 'facts' }, h('dt', null, 'Baseline'), h('dd', null, `${fmt.money(baseline)}${be !== undefined && be !== null ? ` · ${fmt.energy(be)}` : ''}`), h('dt', null, 'Actual'), h('dd', null, `${fmt.money(actual)}${ae !== undefined && ae !== null ? ` · ${fmt.energy(ae)}` : ''}`)),
    typeof s.net_savings === 'number' && Math.abs((s.forgone_export_value ?? 0)) > 0.005
      ? h('p', { class: 'net-savings' }, `Net of the export income given up by storing PV (${fmt.money(s.forgone_export_value)}): ${fmt.money(s.net_savings)}`)
      : null,
    s.baseline ? h('p', { class: 'baseline-note' }, `Baseline: ${s.baseline}`) : null,
  );
}

/**
 * The month card's sentence from GET /savings/{site}?baseline=self_consumption: what homeflex saved
 * against no battery, and how much of it the battery's own mode would not have saved.
 */
export function monthSavingsText(s, money) {
  const vsNone = s.savings_vs_none;
  const vsOwn = s.savings_vs_self_consumption;
  const head = vsNone >= 0 ? `This month: ${money(vsNone)} saved` : `This month: ${money(-vsNone)} more than without a battery`;
  const tail = vsOwn >= 0 ? `of which ${money(vsOwn)} more than the battery's own mode` : `${money(-vsOwn)} less than the battery's own mode would have saved`;
  return `${head}, ${tail}`;
}

/** The whole site this month against no battery and the battery's own mode, replayed on what was measured. */
function monthCard(s) {
  const vsOwn = s.savings_vs_self_consumption;
  return h(
    'article',
    { class: ['card', 'saving', 'month-savings', vsOwn > 0.005 ? 'good' : vsOwn < -0.005 ? 'bad' : null] },
    h('h3', null, 'This month, whole site'),
    h('p', { class: 'month-savings-text' }, monthSavingsText(s, fmt.money)),
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, 'Paid'),
      h('dd', null, fmt.money(s.actual?.cost ?? s.actual_cost)),
      h('dt', null, 'No battery'),
      h('dd', null, fmt.money(s.baselines?.none?.cost)),
      h('dt', null, "Battery's own mode"),
      h('dd', null, fmt.money(s.baselines?.self_consumption?.cost)),
    ),
    h('p', { class: 'baseline-note' }, `Replayed on the ${s.measured_by === 'grid_meter' ? 'grid meter' : 'device meters'} per 15 minutes at the prices of the time${(s.warnings ?? []).length ? ` (${s.warnings.join('; ')})` : ''}`),
  );
}

/**
 * The bill's lines from GET /bill/{site}?month= as [section, item, quantity, amount]: energy and grid
 * fees by tariff window, levies, standing and capacity charges, net, VAT, export earnings, total.
 */
export function billLines(b, money = (v) => v.toFixed(2)) {
  const kwh = (v) => `${(Math.round(v * 1000) / 1000).toLocaleString('en')} kWh`;
  const rows = [];
  for (const l of b.energy ?? []) rows.push(['Energy', l.window, kwh(l.kwh), money(l.amount)]);
  for (const l of b.grid_fees ?? []) rows.push(['Grid fee', l.window, kwh(l.kwh), money(l.amount)]);
  for (const l of b.levies ?? []) rows.push(['Levy', l.name, kwh(l.kwh), money(l.amount)]);
  for (const l of b.standing_charges ?? []) rows.push(['Standing charge', l.name, `${Math.round(l.count * 100) / 100} ${l.per}${l.count === 1 ? '' : 's'}`, money(l.amount)]);
  for (const c of b.capacity_charges ?? []) rows.push(['Capacity charge', c.description, '', money(c.amount)]);
  rows.push(['Net', '', '', money(b.net)]);
  // no VAT line where the rates include it (no tariffs.vat)
  if (b.vat_percent) rows.push(['VAT', `${b.vat_percent} %`, '', money(b.vat)]);
  for (const l of b.export_earnings ?? []) rows.push(['Export', l.label, kwh(l.kwh), money(-l.amount)]);
  return rows;
}

/** One sentence per capacity peak: how high, when, and which device drove it. */
export function peakSentences(b, when = (t) => t) {
  return (b.capacity_charges ?? []).flatMap((c) =>
    c.peaks.map((p) => `Peak ${p.kw} kW on ${when(p.start_time)}${p.driven_by ? `, driven by ${p.driven_by.device_id} (${Math.round(p.driven_by.share * 100)} % of the import then)` : ''}`),
  );
}

function billTable(b) {
  const rows = billLines(b, fmt.money);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'compact bill-table' },
      h('thead', null, h('tr', null, h('th', null, 'Part'), h('th', null, 'Item'), h('th', { class: 'num' }, 'Quantity'), h('th', { class: 'num' }, `Amount (${b.currency_code})`))),
      h('tbody', null, rows.map((r) => h('tr', { class: r[0] === 'Net' || r[0] === 'VAT' ? 'subtotal' : null }, h('td', null, r[0]), h('td', null, r[1]), h('td', { class: 'num' }, r[2]), h('td', { class: 'num' }, r[3])))),
      h('tfoot', null, h('tr', null, h('th', null, 'Total'), h('td', null, ''), h('th', { class: 'num' }, `${fmt.energy(b.import_kwh * 1000, 1)} in`), h('th', { class: 'num strong' }, fmt.money(b.total)))),
    ),
    peakSentences(b, (t) => fmt.dateTime(ms(t))).map((t) => h('p', { class: 'peak-note' }, t)),
    (b.warnings ?? []).map((w) => h('p', { class: 'muted' }, w)),
  );
}

/** Most sessions listed; older ones are in the period totals above. */
const MAX_SESSIONS = 40;

/**
 * The charging sessions that began in the range: each EV's savings name them (with plug-in time),
 * and POST /costs/session prices each over all its records.
 */
async function sessions(app, range) {
  const q = { start_time: new Date(range.start).toISOString(), end_time: new Date(range.end).toISOString() };
  const evs = [...app.devices.values()].filter((d) => deviceKind(d) === 'ev');
  const found = (await Promise.all(evs.map(async (ev) => ((await api.get(`/savings/${encodeURIComponent(ev.id)}`, q)).sessions ?? []).map((s) => ({ ...s, device: ev.name })))))
    .flat()
    .sort((a, b) => ms(b.plug_in_time) - ms(a.plug_in_time))
    .slice(0, MAX_SESSIONS);
  return Promise.all(
    found.map(async (s) => {
      const c = await api.post(`/costs/session/${encodeURIComponent(s.session_reference_id)}`, {}, { aggregation: 'YEAR', include_tariff: true });
      const wh = c.total?.energy?.value ?? s.energy ?? 0;
      return { id: s.session_reference_id, device: s.device, start: ms(s.plug_in_time), end: ms(c.end_time), wh, cost: c.total?.tariff?.value ?? 0 };
    }),
  );
}

export function costsView(root, app) {
  let aggregation = 'DAY';
  let scope = app.site.id;
  let range = defaultRange(aggregation, app.now());
  let rows = [];
  const scopeSelect = h('select', { 'aria-label': 'Site or device', onchange: (e) => ((scope = e.target.value), void load()) }, h('option', { value: app.site.id }, `${app.site.name} (whole site)`), [...app.devices.values()].map((d) => h('option', { value: d.id }, d.name)));
  const aggButtons = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Aggregation' });
  const fromInput = h('input', { type: 'date', 'aria-label': 'From' });
  const toInput = h('input', { type: 'date', 'aria-label': 'To' });
  const csvButton = h('button', { type: 'button', disabled: true, onclick: () => download(`homeflex-${scope}-${aggregation.toLowerCase()}-${fromInput.value}-${toInput.value}.csv`, toCsv(rows, app.site.currency)) }, 'Download CSV');
  const tableCard = h('section', { class: 'card' });
  const savingsBox = h('section', { class: 'savings-grid' });
  const sessionsCard = h('section', { class: 'card sessions' });
  const billCard = h('section', { class: 'card bill' });
  const nowParts = fmt.parts(app.now());
  const monthInput = h('input', { type: 'month', 'aria-label': 'Bill month', value: `${nowParts.year}-${String(nowParts.month).padStart(2, '0')}` });
  monthInput.addEventListener('change', () => void loadBill(seq));

  const isoDate = (t) => {
    const p = fmt.parts(t);
    return `${p.year}-${String(p.month).padStart(2, '0')}-${String(p.day).padStart(2, '0')}`;
  };
  const fromDate = (v) => {
    const [y, m, d] = v.split('-').map(Number);
    return fmt.localInstant(y, m, d);
  };
  const syncInputs = () => {
    fromInput.value = isoDate(range.start);
    toInput.value = isoDate(range.end - 1);
  };
  const dateChanged = () => {
    if (!fromInput.value || !toInput.value) return;
    range = { start: fromDate(fromInput.value), end: fromDate(toInput.value) + DAY };
    if (range.end <= range.start) return;
    void load();
  };
  fromInput.addEventListener('change', dateChanged);
  toInput.addEventListener('change', dateChanged);
  const renderAgg = () =>
    replace(
      aggButtons,
      AGGREGATIONS.map(([value, label, hint]) =>
        h('button', { type: 'button', 'aria-pressed': String(value === aggregation), title: hint, onclick: () => ((aggregation = value), (range = defaultRange(value, app.now())), renderAgg(), syncInputs(), void load()) }, label),
      ),
    );

  replace(
    root,
    h('section', { class: 'card controls' }, h('div', { class: 'control-row' }, scopeSelect, aggButtons), h('div', { class: 'control-row' }, h('label', null, 'From ', fromInput), h('label', null, 'to ', toInput), csvButton)),
    tableCard,
    billCard,
    h('h2', { class: 'section-title' }, 'Savings'),
    savingsBox,
    sessionsCard,
  );
  renderAgg();
  syncInputs();

  let seq = 0;
  async function load() {
    const mine = ++seq;
    replace(tableCard, h('h2', null, 'Energy and cost'), h('p', { class: 'loading' }, 'Loading…'));
    csvButton.disabled = true;
    try {
      const [imp, exp] = await Promise.all([costs(scope, 'IMPORT', aggregation, range), costs(scope, 'EXPORT', aggregation, range)]);
      if (mine !== seq) return;
      rows = mergeRows(imp, exp, aggregation);
      replace(tableCard, h('h2', null, 'Energy and cost'), rows.length ? table(rows, app.site.currency) : empty('No energy recorded in this period'));
      csvButton.disabled = !rows.length;
    } catch (err) {
      if (mine !== seq) return;
      replace(tableCard, h('h2', null, 'Energy and cost'), apiProblem('Costs', err));
    }
    void loadSavings(mine);
    void loadSessions(mine);
    void loadBill(mine);
  }

  /** The site's bill of the chosen month: what the supplier will bill, part by part. */
  async function loadBill(mine) {
    const title = h('div', { class: 'card-head' }, h('h2', null, 'Bill'), h('label', null, 'Month ', monthInput));
    if (scope !== app.site.id) return replace(billCard, title, empty('The bill is the whole site\'s: choose the site above'));
    try {
      const b = await api.get(`/bill/${encodeURIComponent(app.site.id)}`, { month: monthInput.value });
      if (mine !== seq) return;
      replace(billCard, title, billTable(b));
    } catch (err) {
      if (mine !== seq) return;
      replace(billCard, title, apiProblem('Bill', err));
    }
  }

  async function loadSavings(mine) {
    const q = { start_time: new Date(range.start).toISOString(), end_time: new Date(range.end).toISOString() };
    const targets = scope === app.site.id ? [{ id: app.site.id, name: 'Whole site' }, ...[...app.devices.values()].filter((d) => ['ev', 'battery', 'hvac', 'socket'].includes(deviceKind(d)))] : [app.devices.get(scope) ?? { id: scope, name: scope }];
    const results = await Promise.all(targets.map((t) => api.get(`/savings/${encodeURIComponent(t.id)}`, q).then((s) => ({ t, s }), (err) => ({ t, err }))));
    // this month so far, whatever the range above: the site against no battery and the battery's own mode
    const now = app.now();
    const p = fmt.parts(now);
    const month = scope === app.site.id ? await api.get(`/savings/${encodeURIComponent(app.site.id)}`, { baseline: 'self_consumption', start_time: new Date(fmt.localInstant(p.year, p.month, 1)).toISOString(), end_time: new Date(now).toISOString() }).catch(() => null) : null;
    if (mine !== seq) return;
    const ok = results.filter((r) => r.s);
    const failed = results.filter((r) => r.err);
    // a device that moved no energy in the period gets one line between them all, not a card of zeros
    const moved = (s) => [s.baseline_cost, s.actual_cost, s.baseline_energy?.value, s.actual_energy?.value].some((v) => typeof v === 'number' && Math.abs(v) > 0.0005);
    const idle = ok.filter(({ t, s }) => t.id !== app.site.id && !moved(s));
    replace(
      savingsBox,
      month ? monthCard(month) : null,
      ok.filter((r) => !idle.includes(r)).map(({ t, s }) => savingsCard(t.name, s)),
      idle.length ? h('p', { class: 'muted idle-note' }, `No energy in this period: ${idle.map(({ t }) => t.name).join(', ')}.`) : null,
      failed.length === results.length ? apiProblem('Savings', failed[0].err) : null,
    );
  }

  async function loadSessions(mine) {
    try {
      const list = await sessions(app, range);
      if (mine !== seq) return;
      replace(
        sessionsCard,
        h('h2', null, 'Charging sessions'),
        list.length
          ? h('div', { class: 'table-wrap' }, h(
              'table',
              { class: 'compact' },
              h('thead', null, h('tr', null, h('th', null, 'Session'), h('th', null, 'Charger'), h('th', null, 'From'), h('th', null, 'To'), h('th', { class: 'num' }, 'Energy'), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num' }, 'Per kWh'))),
              h('tbody', null, list.map((s) => h('tr', null, h('td', null, s.id), h('td', null, s.device), h('td', null, fmt.dateTime(s.start)), h('td', null, fmt.dateTime(s.end)), h('td', { class: 'num' }, fmt.energy(s.wh, 2)), h('td', { class: 'num' }, fmt.money(s.cost)), h('td', { class: 'num' }, s.wh > 0 ? fmt.rate(s.cost / (s.wh / 1000)) : '—')))),
            ))
          : empty('No charging sessions in this period'),
      );
    } catch (err) {
      if (mine !== seq) return;
      replace(sessionsCard, h('h2', null, 'Charging sessions'), apiProblem('Sessions', err));
    }
  }

  void load();
  const offs = [app.on('devices', () => undefined)];
  return { destroy: () => offs.forEach((off) => off()), badge };
}
