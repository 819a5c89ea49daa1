// Control: the EV's target and leave time, charge now, pause a device, a socket's hours and the
// comfort band. Every change is an API call; the hub re-plans before it answers, and this view
// says what the new plan does differently.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { deviceKind, KIND_LABEL } from '../model.js';
import { planFor, planSentence } from './now.js';
import { apiProblem, badge, empty } from '../widgets.js';

const path = (id, what) => `/devices/${encodeURIComponent(id)}/${what}`;

/** The run-time control endpoints of the hub (src/control/routes.ts), in one place. */
export const controls = {
  get: (id) => api.get(path(id, 'control')),
  target: (id, body) => api.put(path(id, 'target'), body),
  schedule: (id, body) => api.put(path(id, 'schedule'), body),
  comfort: (id, body) => api.put(path(id, 'comfort'), body),
  pause: (id, paused) => api.put(path(id, 'pause'), { paused }),
  /** Drops a run-time change: the site file's value applies again. */
  reset: (id, what) => api.del(path(id, what)),
};

const CONTROLLABLE = ['ev', 'socket', 'hvac', 'battery'];


const field = (label, input, hint) => h('label', { class: 'field' }, h('span', null, label), input, hint ? h('small', null, hint) : null);
const numberInput = (attrs) => h('input', { type: 'number', inputmode: 'decimal', ...attrs });
const timeInput = (value, name) => h('input', { type: 'time', value: value && /^\d\d:\d\d$/.test(value) ? value : '', required: true, name });

/** Shows the API's error under the form, naming the field it names. */
function showError(box, err) {
  const named = err.field && !err.message.startsWith(`${err.field}:`);
  replace(box, h('p', { class: 'form-error', role: 'alert' }, named ? `${err.field}: ` : '', err.message));
}

/** A form whose submit runs `send`, reports its error in place, and hands the answer on. */
function form(app, what, fields, button, send, done) {
  const errors = h('div');
  return h(
    'form',
    {
      class: 'control-form',
      onsubmit: async (e) => {
        e.preventDefault();
        replace(errors);
        // the plan as it was before: its successor may arrive over the event stream before the answer
        const before = app.plan.value;
        try {
          done(await app.write(what, send), before);
        } catch (err) {
          if (err.message !== 'no token') showError(errors, err);
        }
      },
    },
    h('div', { class: 'form-row' }, fields),
    h('div', { class: 'form-row' }, h('button', { type: 'submit', class: 'primary' }, button)),
    errors,
  );
}

/** "Changed here" and a way back to the site file, for a setting overridden through the API. */
function overridden(app, d, ctl, what, done) {
  if (!ctl?.overridden?.includes(what)) return null;
  return h(
    'p',
    { class: 'override' },
    badge('set here', 'info', 'Changed through the dashboard or the API; the site file says otherwise'),
    h(
      'button',
      {
        type: 'button',
        class: 'link',
        onclick: async () => {
          const before = app.plan.value;
          done(await app.write(`${d.name}: back to the site file`, () => controls.reset(d.id, what)).catch(() => undefined), before);
        },
      },
      'use the site file again',
    ),
  );
}

function evForm(app, d, ctl, done) {
  const target = ctl?.target ?? d.config?.target ?? {};
  const bySoc = target.soc_pct !== undefined;
  const mode = h('select', { name: 'kind', 'aria-label': 'Target kind' }, h('option', { value: 'energy', selected: !bySoc }, 'Add energy (kWh)'), h('option', { value: 'soc', selected: bySoc }, 'Charge to (%)'));
  const amount = numberInput({ name: 'amount', min: 0, step: 'any', required: true, value: bySoc ? target.soc_pct : target.energy_wh !== undefined ? target.energy_wh / 1000 : '' });
  const leave = timeInput(target.leave_time ?? d.config?.leave, 'leave_time');
  return form(
    app,
    `Target for ${d.name} saved`,
    [field('Target', mode), field('Amount', amount), field('Leaves at', leave)],
    'Set target',
    () => controls.target(d.id, { leave_time: leave.value, ...(mode.value === 'soc' ? { soc_pct: Number(amount.value) } : { energy_wh: Math.round(Number(amount.value) * 1000) }) }),
    done,
  );
}

function scheduleForm(app, d, ctl, done) {
  const s = ctl?.schedule ?? d.config?.schedule ?? {};
  const hours = numberInput({ name: 'hours', min: 0, max: 24, step: 0.25, required: true, value: typeof s.hours === 'number' ? s.hours : '' });
  const from = timeInput(s.window?.from, 'from');
  const to = timeInput(s.window?.to, 'to');
  return form(app, `Hours for ${d.name} saved`, [field('Run for (h)', hours), field('Between', from), field('and', to)], 'Set hours', () => controls.schedule(d.id, { hours: Number(hours.value), window: { from: from.value, to: to.value } }), done);
}

function comfortForm(app, d, ctl, done) {
  const band = ctl?.comfort ?? d.state?.thermostat?.band ?? {};
  const min = numberInput({ name: 'min_c', step: 0.5, required: true, value: band.min_c ?? '' });
  const max = numberInput({ name: 'max_c', step: 0.5, required: true, value: band.max_c ?? '' });
  return form(app, `Comfort band for ${d.name} saved`, [field('Lowest °C', min), field('Highest °C', max)], 'Set comfort band', () => controls.comfort(d.id, { min_c: Number(min.value), max_c: Number(max.value) }), done);
}

function quickActions(app, d, ctl, done) {
  const kind = deviceKind(d);
  const paused = Boolean(ctl?.paused);
  const chargingNow = Boolean(ctl?.target?.charge_now);
  const errors = h('div');
  const act = (label, what, fn, cls) =>
    h(
      'button',
      {
        type: 'button',
        class: cls,
        onclick: async () => {
          replace(errors);
          const before = app.plan.value;
          try {
            done(await app.write(what, fn), before);
          } catch (err) {
            if (err.message !== 'no token') showError(errors, err);
          }
        },
      },
      label,
    );
  return h(
    'div',
    { class: 'quick' },
    kind === 'ev'
      ? chargingNow
        ? act('Stop charging now', `${d.name}: back to the plan`, () => controls.target(d.id, { charge_now: false }))
        : act('Charge now', `${d.name}: charging now at full power`, () => controls.target(d.id, { charge_now: true }))
      : null,
    paused ? act('Resume', `${d.name} resumed`, () => controls.pause(d.id, false), 'primary') : act('Pause', `${d.name} paused`, () => controls.pause(d.id, true)),
    errors,
  );
}

/** One device's card: forms built once per load (typing is never interrupted), a live line updated in place. */
function deviceControl(app, d, ctl, ctlError, done) {
  const kind = deviceKind(d);
  const badges = h('span', { class: 'badges' });
  const planned = h('p', { class: 'muted planned' });
  const sections = [];
  if (kind === 'ev') sections.push(evForm(app, d, ctl, done), overridden(app, d, ctl, 'target', done));
  if (kind === 'socket') sections.push(scheduleForm(app, d, ctl, done), overridden(app, d, ctl, 'schedule', done));
  if (kind === 'hvac') sections.push(comfortForm(app, d, ctl, done), overridden(app, d, ctl, 'comfort', done));
  const el = h(
    'article',
    { class: ['card', 'control', `kind-${kind}`], dataset: { device: d.id } },
    h('header', null, h('span', { class: 'kind-dot' }), h('h2', { class: 'device-name' }, d.name), h('span', { class: 'muted' }, KIND_LABEL[kind]), badges),
    planned,
    ctlError ? apiProblem('Settings', ctlError) : null,
    sections,
    quickActions(app, d, ctl, done),
  );
  const update = (dev) => {
    replace(badges, ctl?.paused ? badge('paused', 'info') : null, ctl?.target?.charge_now ? badge('charging now', 'good') : null, dev.available ? null : badge('unavailable', 'bad'));
    const p = app.plan.value ? planFor(app.plan.value, dev.id, app.now()) : undefined;
    replace(planned, p?.powerW === undefined ? '' : `Plan: ${planSentence(kind, p)}`);
  };
  update(d);
  return { el, update };
}

/** What the re-plan changed for the device: expected cost of the plan and the device's planned energy. */
function replanSummary(before, after, deviceId, name) {
  const energy = (p) => p?.devices.find((x) => x.id === deviceId)?.energyWh;
  const parts = [`Re-planned at ${fmt.time(after.createdAt)}: expected cost ${fmt.money(before?.cost)} → ${fmt.money(after.cost)}`];
  const [e0, e1] = [energy(before), energy(after)];
  if (e1 !== undefined) parts.push(`${name} ${e0 !== undefined ? `${fmt.energy(e0)} → ` : ''}${fmt.energy(e1)} planned`);
  return parts.join('; ') + '.';
}

export function controlView(root, app) {
  const status = h('div', { class: 'replan', role: 'status' });
  const list = h('div', { class: 'control-grid' });
  replace(root, status, list);
  const settings = new Map();
  const cards = new Map();
  let alive = true;

  const devices = () => [...app.devices.values()].filter((d) => CONTROLLABLE.includes(deviceKind(d)));
  const render = () => {
    cards.clear();
    const shown = devices();
    for (const d of shown) {
      const ctl = settings.get(d.id);
      cards.set(d.id, deviceControl(app, d, ctl?.value, ctl?.error, (answer, before) => onChanged(d, answer, before)));
    }
    replace(list, shown.length ? [...cards.values()].map((c) => c.el) : empty('Nothing to control', 'No EV charger, socket, battery or thermostat in the site file.'));
  };
  const refresh = () => {
    for (const d of devices()) cards.get(d.id)?.update(d);
  };
  const load = async () => {
    await Promise.all(
      devices().map((d) =>
        controls.get(d.id).then(
          (value) => settings.set(d.id, { value }),
          (error) => settings.set(d.id, { error }),
        ),
      ),
    );
    if (alive) render();
  };

  /** The hub answers a change after re-planning; fetch that plan and say what it changed. */
  const onChanged = async (d, answer, before) => {
    if (!answer) return void load();
    settings.set(d.id, { value: answer });
    if (answer.plan_id && answer.plan_id !== app.plan.value?.id) await app.refreshPlan();
    const after = app.plan.value;
    if (!alive) return;
    if (after && after.id !== before?.id) replace(status, h('p', { class: 'replanned' }, replanSummary(before, after, d.id, d.name)));
    else replace(status, h('p', { class: 'pending' }, 'Saved; the plan did not change.'));
    render();
  };

  // the forms appear once the hub's settings are in, so nothing typed is overwritten by their arrival
  replace(list, h('p', { class: 'loading' }, 'Loading…'));
  void load();
  const offs = [app.on('target', () => void load()), app.on('plan', refresh), app.on('devices', refresh)];
  return {
    destroy: () => {
      alive = false;
      offs.forEach((off) => off());
    },
  };
}
