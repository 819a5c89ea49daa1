// Control: the EV's target and leave time, charge now, pause a device, a socket's hours and the
// comfort band. Every change is an API call; the hub re-plans at once and the new plan arrives
// over the event stream, which this view reports.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { deviceKind, KIND_LABEL } from '../model.js';
import { planFor } from './now.js';
import { apiProblem, badge, empty } from '../widgets.js';

/** The run-time control endpoints (issue 5's contract), in one place. */
export const controls = {
  target: (id, body) => api.put(`/devices/${encodeURIComponent(id)}/target`, body),
  schedule: (id, body) => api.put(`/devices/${encodeURIComponent(id)}/schedule`, body),
  comfort: (id, body) => api.put(`/devices/${encodeURIComponent(id)}/comfort`, body),
  pause: (id, paused) => api.put(`/devices/${encodeURIComponent(id)}/pause`, { paused }),
};

const field = (label, input, hint) => h('label', { class: 'field' }, h('span', null, label), input, hint ? h('small', null, hint) : null);
const numberInput = (attrs) => h('input', { type: 'number', inputmode: 'decimal', ...attrs });
const timeInput = (value) => h('input', { type: 'time', value: value ?? '', required: true });

/** Shows the API's error beside the form, naming the field it gives. */
function showError(box, err) {
  replace(box, h('p', { class: 'form-error' }, err.field ? `${err.field}: ` : '', err.message));
}

function evForm(app, d, onDone) {
  const target = d.config?.target ?? {};
  const bySoc = target.soc_pct !== undefined;
  const mode = h('select', { 'aria-label': 'Target kind' }, h('option', { value: 'energy', selected: !bySoc }, 'Add energy (kWh)'), h('option', { value: 'soc', selected: bySoc }, 'Charge to (%)'));
  const amount = numberInput({ min: 0, step: 'any', required: true, value: bySoc ? target.soc_pct : target.energy_wh !== undefined ? target.energy_wh / 1000 : '' });
  const leave = timeInput(target.leave_time ?? d.config?.leave);
  const errors = h('div');
  const form = h(
    'form',
    {
      class: 'control-form',
      onsubmit: async (e) => {
        e.preventDefault();
        replace(errors);
        const value = Number(amount.value);
        const body = { leave_time: leave.value, ...(mode.value === 'soc' ? { soc_pct: value } : { energy_wh: Math.round(value * 1000) }) };
        try {
          await app.write(`Target for ${d.name} saved`, () => controls.target(d.id, body));
          onDone();
        } catch (err) {
          showError(errors, err);
        }
      },
    },
    h('div', { class: 'form-row' }, field('Target', mode), field('Amount', amount), field('Leaves at', leave)),
    h('div', { class: 'form-row' }, h('button', { type: 'submit', class: 'primary' }, 'Set target')),
    errors,
  );
  return form;
}

function scheduleForm(app, d, onDone) {
  const s = d.config?.schedule ?? {};
  const hours = numberInput({ min: 0, max: 24, step: 0.25, required: true, value: s.hours ?? '' });
  const from = timeInput(s.window?.from);
  const to = timeInput(s.window?.to);
  const errors = h('div');
  return h(
    'form',
    {
      class: 'control-form',
      onsubmit: async (e) => {
        e.preventDefault();
        replace(errors);
        try {
          await app.write(`Hours for ${d.name} saved`, () => controls.schedule(d.id, { hours: Number(hours.value), window: { from: from.value, to: to.value } }));
          onDone();
        } catch (err) {
          showError(errors, err);
        }
      },
    },
    h('div', { class: 'form-row' }, field('Run for (h)', hours), field('Between', from), field('and', to)),
    h('div', { class: 'form-row' }, h('button', { type: 'submit', class: 'primary' }, 'Set hours')),
    errors,
  );
}

function comfortForm(app, d, onDone) {
  const band = d.state?.thermostat?.band ?? {};
  const min = numberInput({ step: 0.5, required: true, value: band.min_c ?? '' });
  const max = numberInput({ step: 0.5, required: true, value: band.max_c ?? '' });
  const errors = h('div');
  return h(
    'form',
    {
      class: 'control-form',
      onsubmit: async (e) => {
        e.preventDefault();
        replace(errors);
        try {
          await app.write(`Comfort band for ${d.name} saved`, () => controls.comfort(d.id, { min_c: Number(min.value), max_c: Number(max.value) }));
          onDone();
        } catch (err) {
          showError(errors, err);
        }
      },
    },
    h('div', { class: 'form-row' }, field('Lowest °C', min), field('Highest °C', max)),
    h('div', { class: 'form-row' }, h('button', { type: 'submit', class: 'primary' }, 'Set comfort band')),
    errors,
  );
}

function quickActions(app, d, onDone) {
  const kind = deviceKind(d);
  const paused = Boolean(d.control?.paused ?? d.paused);
  const errors = h('div');
  const act = (label, what, fn) =>
    h(
      'button',
      {
        type: 'button',
        onclick: async () => {
          replace(errors);
          try {
            await app.write(what, fn);
            onDone();
          } catch (err) {
            showError(errors, err);
          }
        },
      },
      label,
    );
  return h(
    'div',
    { class: 'quick' },
    kind === 'ev' ? act('Charge now', `${d.name}: charging now at full power`, () => controls.target(d.id, { charge_now: true })) : null,
    paused ? act('Resume', `${d.name} resumed`, () => controls.pause(d.id, false)) : act('Pause', `${d.name} paused`, () => controls.pause(d.id, true)),
    errors,
  );
}

function deviceControl(app, d, onDone) {
  const kind = deviceKind(d);
  const forms = [];
  if (kind === 'ev') forms.push(evForm(app, d, onDone));
  if (kind === 'socket') forms.push(scheduleForm(app, d, onDone));
  if (kind === 'hvac') forms.push(comfortForm(app, d, onDone));
  const plan = app.plan.value ? planFor(app.plan.value, d.id, app.now()) : undefined;
  return h(
    'article',
    { class: ['card', 'control', `kind-${kind}`], dataset: { device: d.id } },
    h('header', null, h('span', { class: 'kind-dot' }), h('h3', { class: 'device-name' }, d.name), h('span', { class: 'muted' }, KIND_LABEL[kind]), d.available ? null : badge('unavailable', 'bad')),
    plan?.powerW !== undefined ? h('p', { class: 'muted' }, `Planned now: ${Math.abs(plan.powerW) < 10 ? 'off' : fmt.power(plan.powerW)}`) : null,
    forms,
    quickActions(app, d, onDone),
  );
}

export function controlView(root, app) {
  const status = h('div', { class: 'replan', role: 'status' });
  const list = h('div', { class: 'control-grid' });
  replace(root, status, list);
  let waiting;
  let timer;
  const costBefore = () => app.plan.value?.cost;

  /** After a change: wait for the re-plan and say what it did to the expected cost. */
  const onDone = () => {
    waiting = { before: costBefore(), planId: app.plan.value?.id, since: Date.now() };
    replace(status, h('p', { class: 'pending' }, 'Re-planning…'));
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (waiting) replace(status, h('p', { class: 'problem error' }, 'No new plan arrived within 15 s; the change was saved.'));
      waiting = undefined;
    }, 15_000);
  };
  const render = () => {
    const devices = [...app.devices.values()].filter((d) => ['ev', 'socket', 'hvac', 'battery'].includes(deviceKind(d)));
    replace(list, devices.length ? devices.map((d) => deviceControl(app, d, onDone)) : empty('Nothing to control', 'No EV charger, socket, battery or thermostat in the site file.'));
  };
  render();
  const offs = [
    app.on('plan', () => {
      if (app.plan.error) return replace(status, apiProblem('Plan', app.plan.error));
      if (!waiting || app.plan.value?.id === waiting.planId) return;
      const after = app.plan.value?.cost;
      clearTimeout(timer);
      replace(status, h('p', { class: 'replanned' }, `Re-planned at ${fmt.time(app.plan.value?.createdAt ?? app.now())}: expected cost ${fmt.money(waiting.before)} → ${fmt.money(after)}.`));
      waiting = undefined;
      render();
    }),
    app.on('target', render),
  ];
  return {
    destroy: () => {
      offs.forEach((off) => off());
      clearTimeout(timer);
    },
  };
}
