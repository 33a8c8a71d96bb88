// One device: details, its certificates, revoke, and its install config (what the agent writes where).
import * as api from './api.js';
import {h, clear, table, badge, fmtTime, notice, busy, confirmDialog, field, showError} from './ui.js';
import {ago} from './page_devices.js';

export async function render(view, [id]) {
  const base = '/devices/' + id;
  let dev = await api.get(base);
  const box = h('div', {'aria-live': 'polite'});
  const detailsEl = h('div', {});
  const certsEl = h('div', {});
  const configEl = h('div', {});

  function drawDetails() {
    clear(detailsEl, h('dl', {class: 'details'}, [
      ['Status', badge(dev.status)], ['Public id', h('code', {}, dev.device_public_id)], ['Last seen', ago(dev.last_seen_at) + ' (' + fmtTime(dev.last_seen_at) + ')'],
      ['Platform', [dev.platform, dev.model].filter(Boolean).join(' · ') || '—'], ['Agent', dev.agent_version || dev.app_version || '—'],
      ['Address', dev.ip || '—'], ['Key for sealed delivery', dev.has_public_key ? 'registered' : 'none'], ['Enrolled', fmtTime(dev.created_at)],
    ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  }

  async function drawCerts() {
    const certs = await api.all(base + '/certificates');
    clear(certsEl, table('Certificates of the device', [
      {label: 'Certificate', cell: (c) => h('a', {href: '#/certificates/' + (c.cert_id || c.id)}, c.domain_name || String(c.cert_id || c.id))},
      {label: 'Status', cell: (c) => badge(c.status || c.wrap_status || '—')},
      {label: 'Expires', cls: 'wide', cell: (c) => fmtTime(c.not_after)},
    ], certs, 'No certificates assigned: assign them from a certificate\'s page.'));
  }

  async function drawConfig() {
    const cfg = await api.get(base + '/install-config');
    const text = h('textarea', {name: 'installs', rows: '10', spellcheck: false, class: 'code'});
    text.value = JSON.stringify(cfg.installs || [], null, 2);
    const note = h('input', {name: 'change_note', autocomplete: 'off'});
    const formBox = h('div', {});
    const save = h('button', {type: 'submit'}, 'Save install config');
    const form = h('form', {class: 'card', novalidate: true, 'aria-label': 'Install config'},
      h('p', {class: 'muted'}, 'Version ' + (cfg.version || 0) + (cfg.updated_at ? ', changed ' + fmtTime(cfg.updated_at) : '') +
        '. The agent applies it at its next poll.'),
      field('Installs (JSON array)', text, 'Items of type copy, exec or import_ca; see the API reference.'),
      field('Change note', note), formBox, save);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      let installs;
      try {
        installs = JSON.parse(text.value);
      } catch (err) {
        showError(form, formBox, {field: 'installs', message: 'Not valid JSON: ' + err.message});
        return;
      }
      busy(save, async () => {
        try {
          const body = {installs};
          if (note.value.trim()) body.change_note = note.value.trim();
          await api.put(base + '/install-config', body);
          notice(box, 'Install config saved.', 'ok');
          await drawConfig();
        } catch (err) { showError(form, formBox, err); }
      });
    });
    clear(configEl, form);
  }

  const revoke = h('button', {type: 'button', class: 'danger', onclick: async (e) => {
    if (!(await confirmDialog('Revoke ' + (dev.name || dev.device_public_id) + '? Its tokens stop working at once.', 'Revoke'))) return;
    busy(e.target, async () => {
      try {
        await api.put(base, {status: 'REVOKED'});
        dev = await api.get(base);
        notice(box, 'Revoked.', 'ok');
        drawDetails();
      } catch (err) { notice(box, err.message, 'error'); }
    });
  }}, 'Revoke');

  drawDetails();
  await Promise.all([drawCerts(), drawConfig()]);
  clear(view, h('p', {class: 'crumbs'}, h('a', {href: '#/devices'}, '← Devices')),
    h('h1', {}, dev.name || dev.device_public_id), h('div', {class: 'actions'}, revoke), box,
    h('section', {'aria-labelledby': 'sec-d'}, h('h2', {id: 'sec-d'}, 'Details'), detailsEl),
    h('section', {'aria-labelledby': 'sec-c'}, h('h2', {id: 'sec-c'}, 'Certificates'), certsEl),
    h('section', {'aria-labelledby': 'sec-i'}, h('h2', {id: 'sec-i'}, 'Install config'), configEl));
}
