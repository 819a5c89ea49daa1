/* global document, window */
import { api, getToken, liveEvents, setToken, whenUnauthorized } from './api.js';
import { h, replace } from './dom.js';
import * as fmt from './format.js';
import { normalizePlan, normalizeRates } from './model.js';
import { nowView } from './views/now.js';
import { planView } from './views/plan.js';
import { costsView } from './views/costs.js';
import { controlView } from './views/control.js';
import { devicesView } from './views/devices.js';

const VIEWS = { now: nowView, plan: planView, costs: costsView, control: controlView, devices: devicesView };
const HOUR = 3_600_000;

/**
 * What every view reads: the site, the devices (kept current by the event stream), the next 48 h
 * of prices and the plan. Views subscribe to topics and re-render what changed.
 */
const app = {
  info: undefined,
  site: undefined,
  /** Hub clock minus browser clock (the hub may run a simulated clock). */
  clockOffsetMs: 0,
  devices: new Map(),
  yaml: new Map(),
  prices: { import: [], export: [], error: undefined },
  plan: { value: undefined, error: undefined },
  listeners: new Map(),
  now: () => Date.now() + app.clockOffsetMs,
  on(topic, fn) {
    let set = app.listeners.get(topic);
    if (!set) app.listeners.set(topic, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  },
  emit(topic, detail) {
    for (const fn of app.listeners.get(topic) ?? []) {
      try {
        fn(detail);
      } catch (err) {
        reportError(err);
      }
    }
  },
  toast,
  /** Runs a write, reports its error with the field the API names, and says what happened. */
  async write(what, fn) {
    if (app.info?.token_required_for_writes && !getToken()) {
      askToken('Changes need the hub’s access token.');
      throw new Error('no token');
    }
    try {
      const result = await fn();
      toast(what, 'ok');
      return result;
    } catch (err) {
      toast(`${what} failed: ${err.message}`, 'error');
      throw err;
    }
  },
  refreshDevices,
  refreshPrices,
  refreshPlan,
};

function reportError(err) {
  console.warn('homeflex dashboard:', err);
}

function toast(message, kind = 'info') {
  const el = h('div', { class: ['toast', kind] }, message);
  document.getElementById('toasts').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 3500);
}

// ------------------------------------------------------------------ data

async function refreshDevices() {
  const list = await api.get('/devices');
  app.devices = new Map(list.data.map((d) => [d.id, d]));
  app.emit('devices');
}

async function refreshPrices() {
  const loc = app.site.id;
  const start = Math.floor(app.now() / HOUR) * HOUR - HOUR;
  const window = { start_time: new Date(start).toISOString(), end_time: new Date(start + 50 * HOUR).toISOString() };
  try {
    const [imp, exp] = await Promise.all([
      api.get(`/tariffs/rates/${encodeURIComponent(loc)}`, { ...window, direction: 'IMPORT' }),
      api.get(`/tariffs/rates/${encodeURIComponent(loc)}`, { ...window, direction: 'EXPORT' }),
    ]);
    // a failing source says what stands in for it (the fallback tariff, at lower confidence)
    const sourceError = [imp, exp]
      .map((b) => b?.source?.fallback?.active ? `${b.source.error ?? `no ${b.direction} prices for now`}; prices from the fallback tariff (${b.source.fallback.description})` : b?.source?.error)
      .filter(Boolean)
      .join('; ');
    app.prices = { import: normalizeRates(imp), export: normalizeRates(exp), error: undefined, sourceError };
  } catch (err) {
    app.prices = { import: [], export: [], error: err };
  }
  app.emit('prices');
}

async function refreshPlan() {
  try {
    app.plan = { value: normalizePlan(await api.get('/plan')), error: undefined };
  } catch (err) {
    app.plan = { value: undefined, error: err };
  }
  app.emit('plan');
}

function applyMeters(readings) {
  for (const r of readings) {
    const d = app.devices.get(r.device_id);
    if (!d) continue;
    d.state.meter ??= {};
    // what the device view said about the channel (site_meter) stays; the reading's values replace the old ones
    d.state.meter[r.channel] = { ...d.state.meter[r.channel], time: r.time, power_w: r.power_w, import_wh: r.import_wh, export_wh: r.export_wh, session_reference_id: r.session_reference_id, phases_w: r.phases_w, ...(r.site_meter !== undefined ? { site_meter: r.site_meter } : {}) };
  }
  app.emit('meter');
}

let pending = new Map();
/** Several events in a burst (a re-plan after a price change) cause one fetch, not several. */
function soon(key, fn, ms = 150) {
  clearTimeout(pending.get(key));
  pending.set(key, setTimeout(() => void fn().catch(reportError), ms));
}

let helloSeen = 0;

function onLiveEvent(event, data) {
  switch (event) {
    case 'hello':
      app.clockOffsetMs = Date.parse(data.time) - Date.now();
      // a reconnect (the hub restarted, the phone woke up): what happened meanwhile was not pushed
      if (helloSeen++) soon('all', () => Promise.all([refreshDevices(), refreshPrices(), refreshPlan()]));
      break;
    case 'device':
      if (data.removed) app.devices.delete(data.id);
      else app.devices.set(data.id, data);
      app.emit('devices');
      break;
    case 'meter':
      applyMeters(data.data);
      break;
    case 'plan':
      soon('plan', refreshPlan);
      break;
    case 'tariff':
      soon('prices', refreshPrices);
      break;
    case 'target':
    case 'limits':
      soon('devices', refreshDevices);
      app.emit(event, data);
      break;
  }
}

// ------------------------------------------------------------------ token

const dialog = () => document.getElementById('token-dialog');

function askToken(reason) {
  const d = dialog();
  if (d.open) return;
  document.getElementById('token-reason').textContent = reason ?? 'The hub asks for its bearer token (http.token in the site file).';
  document.getElementById('token-input').value = getToken();
  d.showModal();
}

function setupToken() {
  whenUnauthorized((err) => askToken(err.message));
  document.getElementById('token-button').addEventListener('click', () => askToken('Set or forget the hub’s access token for this browser.'));
  dialog().addEventListener('close', () => {
    const choice = dialog().returnValue;
    if (choice === 'save') setToken(document.getElementById('token-input').value.trim());
    else if (choice === 'forget') setToken('');
    else return;
    updateTokenButton();
    // a page that already shows the site keeps its view (and what was typed): only the data and the stream are renewed
    if (!app.site) return void boot();
    live?.reconnect();
    void Promise.all([refreshDevices().catch(reportError), refreshPrices(), refreshPlan()]);
  });
  updateTokenButton();
}

function updateTokenButton() {
  const b = document.getElementById('token-button');
  b.textContent = getToken() ? 'Token ✓' : 'Token';
}

// ------------------------------------------------------------------ shell

let current;
let live;

function route() {
  const name = (window.location.hash.replace(/^#\/?/, '') || 'now').split('/')[0];
  const view = VIEWS[name] ?? VIEWS.now;
  // aria-current="page", not a bare attribute: an empty value means false to a screen reader
  for (const a of document.querySelectorAll('#tabs a')) {
    if (a.dataset.view === (VIEWS[name] ? name : 'now')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  current?.destroy?.();
  const container = document.getElementById('view');
  replace(container);
  container.dataset.view = VIEWS[name] ? name : 'now';
  // the view's name in the title: what a screen reader announces after a switch of view
  const link = document.querySelector(`#tabs a[data-view="${container.dataset.view}"]`);
  if (app.site) document.title = `${link?.textContent ?? ''} · ${app.site.name} · homeflex`;
  current = view(container, app);
}

function tickClock() {
  const el = document.getElementById('hub-time');
  if (app.site) el.textContent = fmt.dayTime(app.now());
}

function setLive(status) {
  const el = document.getElementById('live');
  el.dataset.status = status;
  el.querySelector('.live-text').textContent = status;
}

let booted = false;
async function boot() {
  try {
    app.info = await api.get('/dashboard');
  } catch (err) {
    replace(document.getElementById('view'), h('div', { class: 'card error' }, h('h2', null, 'Cannot reach the hub'), h('p', null, err.message)));
    return;
  }
  app.site = app.info.site;
  app.clockOffsetMs = Date.parse(app.info.time) - Date.now();
  app.yaml = new Map(app.info.devices.map((d) => [d.id, d.yaml]));
  fmt.configure(app.site);
  document.getElementById('site-name').textContent = app.site.name;
  document.title = `${app.site.name} · homeflex`;
  await Promise.all([refreshDevices().catch(reportError), refreshPrices(), refreshPlan()]);
  live?.stop();
  live = liveEvents(onLiveEvent, setLive);
  if (!booted) {
    booted = true;
    window.addEventListener('hashchange', route);
    setInterval(tickClock, 10_000);
    // prices roll forward and plans expire even when nothing is pushed
    setInterval(() => void refreshPrices(), 15 * 60_000);
  }
  tickClock();
  route();
}

setupToken();
void boot();
