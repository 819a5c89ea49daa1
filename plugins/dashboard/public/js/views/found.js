/* global document */
// Devices the hub found that the site file does not configure (GET /discovered): a charger dialling
// in with an unknown identity, a socket or thermostat announcing itself on the broker. "Add" writes
// the device into the site file (comments kept) and starts it without a restart.
import { api } from '../api.js';
import { facts, h, replace } from '../dom.js';
import { badge } from '../widgets.js';

const SOURCE = { ocpp: 'OCPP charger', tasmota: 'Tasmota', shelly: 'Shelly', zigbee2mqtt: 'Zigbee2MQTT', sunspec: 'SunSpec inverter' };
const POLL_MS = 5000;

function detailRows(d) {
  return Object.entries(d.details ?? {})
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => [k.replace(/_/g, ' '), Array.isArray(v) ? v.join(', ') : String(v)]);
}

export function foundSection(app) {
  const list = h('div', { class: 'found-list' });
  const note = h('div', { class: 'found-note', role: 'status' });
  const count = h('span');
  const el = h('section', { class: 'card found', 'aria-labelledby': 'found-title', hidden: true }, h('h2', { id: 'found-title' }, 'Found, not configured ', count), note, list);
  let timer;
  let destroyed = false;

  const item = (d) => {
    const fieldId = `found-id-${d.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const input = h('input', { id: fieldId, type: 'text', name: 'id', value: d.suggested_id, required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]*', maxlength: 64, spellcheck: 'false', autocomplete: 'off' });
    const button = h('button', { type: 'submit', class: 'primary' }, 'Add');
    const onsubmit = async (e) => {
      e.preventDefault();
      const id = input.value.trim();
      button.disabled = true;
      try {
        const res = await app.write(`Added ${id} to the site file`, () => api.post(`/discovered/${encodeURIComponent(d.id)}/add`, { id, name: d.name !== d.key ? d.name : undefined }));
        const pw = res?.credentials?.password;
        replace(
          note,
          pw
            ? h('p', null, `${id} was added. Set this password in the charger (user ${d.key}); it is shown only now: `, h('code', { class: 'secret' }, pw))
            : h('p', null, `${id} was added to ${res?.file ?? 'the site file'} and started.`),
        );
        await app.refreshDevices?.();
        await load(false, true);
      } catch {
        button.disabled = false; // app.write said why
      }
    };
    return h(
      'form',
      { class: 'found-item', dataset: { found: d.id }, onsubmit, 'aria-label': `${SOURCE[d.source] ?? d.source} ${d.name}` },
      h('div', null, h('strong', null, d.name), ' ', badge(SOURCE[d.source] ?? d.source, 'info'), ' ', h('span', { class: 'muted' }, `seen ${d.seen}×`)),
      facts(detailRows(d)),
      h('div', { class: 'found-add' }, h('label', { for: fieldId }, 'Device id'), input, button),
    );
  };

  const render = (items, max) => {
    el.hidden = !items.length && !note.textContent;
    replace(count, items.length ? `(${items.length}${items.length >= max ? `, the ${max} last seen` : ''})` : '');
    replace(list, items.length ? items.map(item) : h('p', { class: 'muted' }, 'Nothing else found.'));
  };

  const load = async (again = true, force = false) => {
    clearTimeout(timer);
    try {
      const r = await api.get('/discovered');
      // a form being filled in is not replaced under the user's hands
      if (force || !list.contains(document.activeElement)) render(r.data ?? [], r.max ?? 50);
    } catch {
      // the list is a hint: an error here leaves the view as it was
    }
    if (again && !destroyed) timer = setTimeout(load, POLL_MS);
  };
  void load();
  return {
    el,
    destroy: () => {
      destroyed = true;
      clearTimeout(timer);
    },
  };
}
