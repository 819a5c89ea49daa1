// Devices: availability, the adapter's status, the last reading of each meter channel, errors, and
// the YAML that configures each device (secrets redacted by the hub).
import { facts, h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { deviceKind, KIND_LABEL } from '../model.js';
import { badge, empty } from '../widgets.js';
import { foundSection } from './found.js';

function readings(app, d) {
  const meter = d.state?.meter;
  if (!meter || !Object.keys(meter).length) return h('p', { class: 'muted' }, 'No meter');
  return h(
    'table',
    { class: 'compact' },
    h('thead', null, h('tr', null, h('th', null, 'Channel'), h('th', null, 'Power'), h('th', null, 'Imported'), h('th', null, 'Exported'), h('th', null, 'Read'))),
    h(
      'tbody',
      null,
      Object.entries(meter).map(([ch, r]) =>
        h(
          'tr',
          null,
          h('td', null, ch),
          h('td', { class: 'num' }, r ? fmt.power(r.power_w) : '—'),
          h('td', { class: 'num' }, r ? fmt.energy(r.import_wh, 2) : '—'),
          h('td', { class: 'num' }, r ? fmt.energy(r.export_wh, 2) : '—'),
          h('td', null, r?.time ? fmt.relative(r.time, app.now()) : 'never'),
        ),
      ),
    ),
  );
}

function statusBadge(d) {
  if (!d.available) return badge('unavailable', 'bad');
  if (d.adapter_status === 'failed') return badge('adapter failed', 'bad');
  if (d.adapter_status && d.adapter_status !== 'running') return badge(d.adapter_status, 'info');
  return badge('available', 'good');
}

/** One device's section; `update` refreshes its live parts in place so an open section and a text selection survive. */
function deviceSection(app, d) {
  const yaml = app.yaml.get(d.id);
  const kind = deviceKind(d);
  const status = h('span');
  const live = h('span', { class: 'summary-power' });
  const info = h('div');
  const table = h('div');
  const el = h(
    'details',
    { class: ['card', 'device-detail', `kind-${kind}`], open: !d.available, dataset: { device: d.id } },
    h('summary', null, h('span', { class: 'kind-dot' }), h('span', { class: 'device-name' }, d.name), status, h('span', { class: 'muted summary-id' }, d.id), live),
    h(
      'div',
      { class: 'detail-body' },
      h('div', null, info, h('h2', { class: 'sub' }, 'Last readings'), table),
      h('div', null, h('h2', { class: 'sub' }, 'Configuration'), yaml ? h('pre', { class: 'yaml' }, h('code', null, yaml)) : h('p', { class: 'muted' }, 'Not configured by the site file (found at run time).')),
    ),
  );
  const update = (dev) => {
    replace(status, statusBadge(dev));
    replace(
      info,
      facts([
        ['Kind', KIND_LABEL[kind]],
        ['Adapter', `${dev.adapter}${dev.adapter_status ? ` (${dev.adapter_status})` : ''}`],
        ['Capabilities', dev.capabilities.join(', ') || 'none'],
        ['Circuit', dev.circuit ?? 'grid connection'],
        ['Error', dev.error ? h('span', { class: 'error-text' }, dev.error) : 'none'],
      ]),
    );
    replace(table, readings(app, dev));
    const reading = dev.state?.meter?.device ?? Object.values(dev.state?.meter ?? {}).find(Boolean);
    replace(live, reading ? `${fmt.power(reading.power_w)} · ${fmt.relative(reading.time, app.now())}` : '');
  };
  update(d);
  return { el, update };
}

export function devicesView(root, app) {
  const summary = h('div', { class: 'stats bar' });
  const list = h('div', { class: 'device-list' });
  const found = foundSection(app);
  replace(root, summary, list, found.el);
  const sections = new Map();
  const render = () => {
    const devices = [...app.devices.values()];
    const up = devices.filter((d) => d.available).length;
    const failed = devices.filter((d) => d.adapter_status === 'failed').length;
    replace(
      summary,
      badge(`${up} of ${devices.length} available`, up === devices.length ? 'good' : 'bad'),
      failed ? badge(`${failed} adapter${failed > 1 ? 's' : ''} failed`, 'bad') : null,
    );
    for (const [id, sec] of sections) {
      if (app.devices.has(id)) continue;
      sec.el.remove();
      sections.delete(id);
    }
    for (const d of devices) {
      let sec = sections.get(d.id);
      if (!sec) sections.set(d.id, (sec = deviceSection(app, d)));
      else sec.update(d);
      if (sec.el.parentNode !== list) list.append(sec.el);
    }
    if (!devices.length) replace(list, empty('No devices', 'Add devices to the site file.'));
  };
  render();
  const offs = [app.on('devices', render), app.on('meter', render)];
  return { destroy: () => (offs.forEach((off) => off()), found.destroy()) };
}
