// Now: the prices in force, where the power goes, and what each device does and why.
import { h, replace, s } from '../dom.js';
import * as fmt from '../format.js';
import { ahead, deviceKind, devicePowerW, gridSourceText, KIND_LABEL, planSlotIndex, powerFlows, priceBands, priceLevel, reasonText, slotAt } from '../model.js';
import { apiProblem, badge, bandBar, empty, flowDiagram, socBar, stat } from '../widgets.js';

const LEVEL_BADGE = { cheap: ['cheap', 'good'], dear: ['dear', 'bad'], normal: ['normal', 'neutral'], flat: ['flat rate', 'neutral'] };

/** What the plan has a device do now, and its next change. */
export function planFor(plan, deviceId, now) {
  const d = plan?.devices.find((x) => x.id === deviceId);
  if (!d) return undefined;
  const i = planSlotIndex(plan, now);
  if (i < 0) return { device: d };
  const w = d.powerW[i] ?? 0;
  let next;
  for (let j = i + 1; j < plan.slots.length; j++) {
    const wj = d.powerW[j] ?? 0;
    if (Math.abs(wj - w) > Math.max(50, Math.abs(w) * 0.1)) {
      next = { start: plan.slots[j].start, powerW: wj, reason: d.reasons[j] };
      break;
    }
  }
  return { device: d, powerW: w, reason: d.reasons[i], next, slot: i };
}

function sparkline(series, now, bands) {
  const pts = series.filter((x) => x.end > now && x.start < now + 24 * 3_600_000);
  if (pts.length < 2) return null;
  const W = 300;
  const H = 44;
  const t0 = Math.max(pts[0].start, now);
  const t1 = pts[pts.length - 1].end;
  const rates = pts.map((p) => p.rate);
  const lo = Math.min(...rates, 0);
  const hi = Math.max(...rates);
  const x = (t) => ((Math.max(t, t0) - t0) / (t1 - t0)) * W;
  const y = (r) => H - 4 - ((r - lo) / (hi - lo || 1)) * (H - 8);
  let d = '';
  for (const p of pts) d += `${d ? 'L' : 'M'}${x(p.start).toFixed(1)},${y(p.rate).toFixed(1)}L${x(p.end).toFixed(1)},${y(p.rate).toFixed(1)}`;
  return s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'spark', preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Import price over the next 24 hours' },
    bands.cheap.map((b) => s('rect', { class: 'cheap', x: x(b.start), y: 0, width: Math.max(0, x(b.end) - x(b.start)), height: H })),
    bands.dear.map((b) => s('rect', { class: 'dear', x: x(b.start), y: 0, width: Math.max(0, x(b.end) - x(b.start)), height: H })),
    s('path', { d, class: 'spark-line' }),
  );
}

function pricesCard(app) {
  const now = app.now();
  const { prices } = app;
  if (prices.error) return h('section', { class: 'card prices' }, h('h2', null, 'Prices'), apiProblem('Tariff rates', prices.error));
  const imp = slotAt(prices.import, now);
  const exp = slotAt(prices.export, now);
  const bands = priceBands(ahead(prices.import, now));
  const level = priceLevel(prices.import, now, bands);
  const nextImp = prices.import.find((x) => x.start >= (imp?.end ?? now) && x.rate !== imp?.rate);
  const [levelText, levelKind] = LEVEL_BADGE[level] ?? [];
  const day = prices.import.filter((x) => x.end > now && x.start < now + 24 * 3_600_000);
  const cheapest = day.reduce((a, x) => (!a || x.rate < a.rate ? x : a), undefined);
  const dearest = day.reduce((a, x) => (!a || x.rate > a.rate ? x : a), undefined);
  const flat = level === 'flat';
  return h(
    'section',
    { class: 'card prices' },
    h('h2', null, 'Prices now'),
    h(
      'div',
      { class: 'stats' },
      stat('Import', fmt.rate(imp?.rate), imp ? (nextImp ? `until ${fmt.time(nextImp.start)}` : 'no change in the next 48 h') : 'no price for now', level),
      stat('Export', fmt.rate(exp?.rate), exp ? 'earned per kWh sent out' : 'no price for now'),
    ),
    levelText ? h('p', { class: 'price-level' }, badge(levelText, levelKind), nextImp ? ` then ${fmt.rate(nextImp.rate)} at ${fmt.time(nextImp.start)}` : '') : null,
    flat ? null : sparkline(prices.import, now, bands),
    !flat && cheapest && dearest
      ? h('div', { class: 'spark-scale' }, h('span', null, `cheapest ${fmt.rate(cheapest.rate)} at ${fmt.time(cheapest.start)}`), h('span', null, `dearest ${fmt.rate(dearest.rate)} at ${fmt.time(dearest.start)}`))
      : null,
    flat ? null : upcoming(bands, now),
    prices.sourceError ? h('p', { class: 'problem error' }, `Tariff source: ${prices.sourceError}`) : null,
  );
}

/** The next cheap and dear periods, as a household plans the washing around them. */
function upcoming(bands, now) {
  const soon = (list) => list.filter((b) => b.end > now).slice(0, 3);
  const span = (b) => `${fmt.dayTime(Math.max(b.start, now))}–${fmt.time(b.end)}`;
  const rows = [
    ['Cheap', soon(bands.cheap), 'good'],
    ['Dear', soon(bands.dear), 'bad'],
  ].filter(([, list]) => list.length);
  if (!rows.length) return null;
  return h('dl', { class: 'periods' }, rows.map(([label, list, kind]) => [h('dt', null, badge(label.toLowerCase(), kind)), h('dd', null, list.map(span).join(', '))]));
}

/** The flows card: the picture is kept and updated, or an empty state until the first reading. */
function flowsCard() {
  const diagram = flowDiagram();
  const source = h('p', { class: 'flow-source' });
  const picture = h('div', null, diagram.el, source);
  const body = h('div');
  const el = h('section', { class: 'card flows' }, h('h2', null, 'Power flows'), body);
  let showing;
  return {
    el,
    update(app) {
      const flows = powerFlows([...app.devices.values()]);
      if (!flows) {
        if (showing !== 'empty') replace(body, empty('No meter readings yet', 'They appear as the devices report.'));
        showing = 'empty';
        return;
      }
      if (showing !== 'diagram') replace(body, picture);
      showing = 'diagram';
      diagram.update(flows);
      source.textContent = gridSourceText(flows, fmt.power);
    },
  };
}

/** Planned power in the device's own words: "charging 7.4 kW", "discharging 2 kW", "on", "off". */
export function plannedAction(kind, w) {
  if (w === undefined || w === null || Math.abs(w) < 10) return 'off';
  const p = fmt.power(Math.abs(w));
  if (kind === 'battery') return w > 0 ? `charging ${p}` : `discharging ${p}`;
  if (kind === 'ev') return `charging ${p}`;
  if (kind === 'socket') return `on (${p})`;
  if (kind === 'hvac') return `running at ${p}`;
  if (kind === 'heatpump') return `heating at ${p}`;
  return w > 0 ? `drawing ${p}` : `delivering ${p}`;
}

/** "Plan: off now (price); charging 4.1 kW from Wed 02:30 (price)". */
export function planSentence(kind, p) {
  const why = (r) => (r ? ` (${reasonText(r)})` : '');
  const next = p.next ? `; ${plannedAction(kind, p.next.powerW)} from ${fmt.dayTime(p.next.start)}${why(p.next.reason)}` : '';
  return `${plannedAction(kind, p.powerW)} now${why(p.reason)}${next}`;
}

function whyLine(app, d) {
  if (app.plan.error || !app.plan.value) return null;
  const p = planFor(app.plan.value, d.id, app.now());
  if (!p || p.powerW === undefined) return null;
  return h('p', { class: 'why' }, `Plan: ${planSentence(deviceKind(d), p)}`);
}

const CHARGER_STATUS = {
  available: ['no car', 'neutral'],
  preparing: ['plugged in', 'info'],
  charging: ['charging', 'good'],
  suspended_ev: ['car full / paused', 'info'],
  suspended_evse: ['waiting', 'info'],
  finishing: ['finishing', 'info'],
  faulted: ['fault', 'bad'],
  unavailable: ['unavailable', 'bad'],
  unknown: ['unknown', 'neutral'],
};

function deviceBody(app, d) {
  const kind = deviceKind(d);
  const st = d.state ?? {};
  const p = devicePowerW(d);
  const rows = [];
  if (kind === 'ev') {
    const c = st.charger ?? {};
    const [label, k] = CHARGER_STATUS[c.status] ?? [c.status, 'neutral'];
    rows.push(h('div', { class: 'line' }, badge(label, k), h('span', { class: 'power' }, fmt.power(p))));
    const target = d.config?.target;
    if (c.status !== 'available') rows.push(socBar(c.ev_soc_pct, { target: target?.soc_pct, label: 'Car state of charge' }));
    const bits = [];
    if (c.session) bits.push(`session ${fmt.energy(c.session.energy_wh)}`);
    if (target?.energy_wh) bits.push(`target ${fmt.energy(target.energy_wh, 0)}`);
    if (target?.soc_pct) bits.push(`target ${fmt.pct(target.soc_pct)}`);
    if (target?.leave_time) bits.push(`leaves ${target.leave_time}`);
    if (bits.length) rows.push(h('p', { class: 'muted' }, bits.join(' · ')));
  } else if (kind === 'battery') {
    const b = st.storage ?? {};
    const w = b.power_w ?? p;
    rows.push(h('div', { class: 'line' }, badge(w > 5 ? 'charging' : w < -5 ? 'discharging' : 'idle', w > 5 ? 'good' : w < -5 ? 'info' : 'neutral'), h('span', { class: 'power' }, fmt.power(w === undefined ? undefined : Math.abs(w))), b.mode ? h('span', { class: 'muted' }, `mode ${b.mode}`) : null));
    rows.push(socBar(b.soc_pct, { label: 'Battery state of charge' }));
    rows.push(h('p', { class: 'muted' }, `${fmt.energy((b.capacity_wh * (b.soc_pct ?? 0)) / 100)} of ${fmt.energy(b.capacity_wh)}`));
  } else if (kind === 'hvac') {
    const t = st.thermostat ?? {};
    rows.push(h('div', { class: 'line' }, badge(t.running ? `${t.mode ?? ''} running`.trim() : t.mode === 'off' ? 'off' : 'idle', t.running ? 'good' : 'neutral'), h('span', { class: 'power' }, fmt.power(p)), h('span', { class: 'muted' }, `setpoint ${fmt.celsius(t.setpoint_c)}`)));
    if (t.band) rows.push(bandBar(t.temperature_c, t.band, t.setpoint_c));
  } else if (kind === 'heatpump') {
    const hp = st.heat_pump ?? {};
    const tone = { blocked: 'bad', normal: 'neutral', recommended: 'good', forced: 'good' }[hp.sg_ready_name] ?? 'neutral';
    const label = hp.sg_ready ? `SG-Ready ${hp.sg_ready}: ${hp.sg_ready_name}` : 'SG-Ready state unknown';
    const waiting = hp.requested && hp.requested !== hp.sg_ready ? h('span', { class: 'muted' }, `next: ${hp.requested}`) : null;
    rows.push(h('div', { class: 'line' }, badge(label, tone), h('span', { class: 'power' }, fmt.power(p)), waiting));
    if (hp.tank) rows.push(bandBar(hp.tank_c ?? undefined, { min_c: hp.tank.min_c, max_c: hp.tank.max_c }), h('p', { class: 'muted' }, `hot water ${fmt.celsius(hp.tank_c ?? undefined)} (${fmt.celsius(hp.tank.min_c)}–${fmt.celsius(hp.tank.max_c)}, ${fmt.num(hp.tank.volume_l, 0)} l)`));
    if (hp.band) rows.push(bandBar(hp.room_c ?? undefined, hp.band));
  } else if (kind === 'socket') {
    const on = st.switch?.on;
    rows.push(h('div', { class: 'line' }, badge(on ? 'on' : on === false ? 'off' : 'unknown', on ? 'good' : 'neutral'), h('span', { class: 'power' }, fmt.power(p))));
    const sched = d.config?.schedule;
    const hrs = (n) => `${fmt.num(n, n % 1 ? 1 : 0)} h`;
    const hours = typeof sched?.hours === 'object' ? `${hrs(sched.hours.weekday)} on weekdays, ${hrs(sched.hours.weekend)} at weekends` : sched?.hours ? hrs(sched.hours) : undefined;
    const win = sched?.window ? ` between ${sched.window.from} and ${sched.end_by ?? sched.window.to}` : sched?.end_by ? ` by ${sched.end_by}` : ' a day';
    if (hours) rows.push(h('p', { class: 'muted' }, `${hours}${win}`));
    if (sched?.max_rate !== undefined) rows.push(h('p', { class: 'muted' }, `on at or below ${fmt.num(sched.max_rate, 3)}/kWh`));
  } else if (kind === 'pv') {
    rows.push(h('div', { class: 'line' }, badge((st.pv?.power_w ?? 0) > 5 ? 'producing' : 'idle', (st.pv?.power_w ?? 0) > 5 ? 'sun' : 'neutral'), h('span', { class: 'power' }, fmt.power(st.pv?.power_w ?? (p === undefined ? undefined : -p))), st.pv?.kwp ? h('span', { class: 'muted' }, `${fmt.num(st.pv.kwp, 1)} kWp`) : null));
  } else {
    rows.push(h('div', { class: 'line' }, h('span', { class: 'power' }, fmt.power(p))));
  }
  return rows;
}

function deviceCard(app, d) {
  const kind = deviceKind(d);
  return h(
    'article',
    { class: ['device', `kind-${kind}`, d.available ? null : 'unavailable'], dataset: { device: d.id } },
    h('header', null, h('span', { class: 'kind-dot', title: KIND_LABEL[kind] }), h('h3', { class: 'device-name' }, d.name), d.available ? null : badge('unavailable', 'bad', d.error ?? undefined)),
    deviceBody(app, d),
    d.available ? whyLine(app, d) : h('p', { class: 'why bad' }, d.error ?? 'not available'),
  );
}

const ORDER = { ev: 0, battery: 1, hvac: 2, heatpump: 2.5, socket: 3, pv: 4, meter: 5 };

export function nowView(root, app) {
  const prices = h('div', { class: 'prices-slot' });
  const flows = flowsCard();
  const top = h('div', { class: 'grid two' }, prices, flows.el);
  const devices = h('section', { class: 'devices-grid' });
  const planNote = h('div');
  replace(root, top, h('h2', { class: 'section-title' }, 'Devices'), planNote, devices);

  const renderPrices = () => replace(prices, pricesCard(app));
  const renderDevices = () => {
    const list = [...app.devices.values()].sort((a, b) => (ORDER[deviceKind(a)] ?? 9) - (ORDER[deviceKind(b)] ?? 9) || a.name.localeCompare(b.name));
    replace(devices, list.length ? list.map((d) => deviceCard(app, d)) : empty('No devices', 'Add devices to the site file.'));
    replace(planNote, app.plan.error ? apiProblem('Plan', app.plan.error) : null);
  };
  const renderLive = () => (flows.update(app), renderDevices());
  renderPrices();
  renderLive();
  // the price in force and "until" move on with the clock even when nothing is pushed
  const tick = setInterval(renderPrices, 60_000);
  const offs = [app.on('prices', renderPrices), app.on('meter', renderLive), app.on('devices', renderLive), app.on('plan', renderDevices)];
  return {
    destroy: () => {
      clearInterval(tick);
      offs.forEach((off) => off());
    },
  };
}
