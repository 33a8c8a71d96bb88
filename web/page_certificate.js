// One certificate: its details, issuance history with live status while an order runs, issue/renew/cancel,
// export (JSON or a password-protected zip) where its key policy allows, and the devices it is assigned to.
import * as api from './api.js';
import {h, clear, table, badge, fmtTime, notice, busy, confirmDialog, select, field} from './ui.js';
import {daysCell} from './page_certificates.js';

const RUNNING = new Set(['PENDING', 'PROCESSING', 'RUNNING']);

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', {href: url, download: name, hidden: true});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

export async function render(view, [id], alive) {
  const base = '/certificates/' + id;
  let cert = await api.get(base);
  const account = await api.get('/acme-accounts/' + cert.acct_id).catch(() => null);
  const box = h('div', {'aria-live': 'polite'});
  const details = h('div', {});
  const historyEl = h('div', {});
  const devicesEl = h('div', {});
  const actions = h('div', {class: 'actions'});
  const exportEl = h('div', {});
  let timer = null;

  function drawDetails() {
    const names = [cert.domain_name, ...(cert.sans || []).filter((s) => s !== cert.domain_name)];
    const rows = [
      ['Status', badge(cert.status)],
      ['Names', names.join(', ')],
      ['Serial', cert.serial_number || '—'],
      ['Valid from', fmtTime(cert.not_before)],
      ['Expires', fmtTime(cert.not_after)],
      ['Days left', daysCell(cert)],
      ['Key', cert.key_algorithm || '—'],
      ['Key policy', cert.key_dist_policy + (cert.server_decrypt_export ? ', export allowed' : ', no export')],
      ['Renewal', cert.auto_renew ? 'automatic' : 'manual'],
      ['Challenge', cert.challenge || 'auto'],
      ['Account', account ? h('a', {href: '#/accounts'}, account.name + ' (' + account.provider + ')') : '#' + cert.acct_id],
    ];
    clear(details, h('dl', {class: 'details'}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  }

  async function drawHistory() {
    const page = await api.list(base + '/issues', {limit: 10});
    const running = page.items.some((r) => RUNNING.has(r.status));
    clear(historyEl, table('Issuance history', [
      {label: 'Started', cell: (r) => fmtTime(r.created_at)},
      {label: 'Kind', cls: 'wide', cell: (r) => r.kind || 'issue'},
      {label: 'Status', cell: (r) => h('span', {class: 'history-status'}, badge(r.status))},
      {label: 'Finished', cls: 'wide', cell: (r) => fmtTime(r.completed_at)},
      {label: 'Message', cell: (r) => r.error_message || (r.retry_at ? 'retrying at ' + fmtTime(r.retry_at) : '')},
      {label: '', cell: (r) => (RUNNING.has(r.status) && !r.cancel_requested
        ? h('button', {type: 'button', onclick: (e) => busy(e.target, async () => {
          try {
            await api.post(base + '/issues/' + r.id + '/cancel');
            notice(box, 'Cancellation requested.', 'info');
            await refresh();
          } catch (err) { notice(box, err.message, 'error'); }
        })}, 'Cancel') : '')},
    ], page.items, 'Never issued yet.'));
    return running;
  }

  async function drawDevices() {
    const assigned = await api.all(base + '/devices');
    const devices = await api.all('/devices');
    const free = devices.filter((d) => !assigned.some((a) => (a.device_id || a.id) === d.id));
    const pick = select('device_id', free.map((d) => [String(d.id), (d.name || d.device_public_id) + ' (' + d.status + ')']));
    const assign = h('button', {type: 'submit', disabled: !free.length}, 'Assign');
    const form = h('form', {class: 'inline'}, field('Device', pick), assign);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(assign, async () => {
        try {
          await api.post(base + '/assign', {device_id: Number(pick.value)});
          notice(box, 'Assigned: the device is told at its next poll.', 'ok');
          await drawDevices();
        } catch (err) { notice(box, err.message, 'error'); }
      });
    });
    clear(devicesEl, table('Assigned devices', [
      {label: 'Device', cell: (a) => h('a', {href: '#/devices/' + (a.device_id || a.id)}, a.name || a.device_public_id || String(a.device_id))},
      {label: 'Status', cell: (a) => badge(a.status || a.wrap_status || '—')},
      {label: '', cell: (a) => h('button', {type: 'button', onclick: (e) => busy(e.target, async () => {
        try {
          await api.del('/devices/' + (a.device_id || a.id) + '/certificates/' + id);
          notice(box, 'Unassigned.', 'ok');
          await drawDevices();
        } catch (err) { notice(box, err.message, 'error'); }
      })}, 'Unassign')},
    ], assigned, 'Not assigned to any device.'), free.length ? form : h('p', {class: 'muted'}, devices.length ? 'Every device has it.' : 'No devices registered yet.'));
  }

  function drawExport() {
    const issued = cert.status !== 'pending';
    if (!issued) {
      clear(exportEl, h('p', {class: 'muted'}, 'Issue the certificate to export it.'));
      return;
    }
    if (cert.key_dist_policy === 'DEVICE_REQUIRED' || !cert.server_decrypt_export) {
      clear(exportEl, h('p', {class: 'muted'}, 'Its key policy does not allow exporting the private key: it reaches assigned devices only.'));
      return;
    }
    const out = h('div', {'aria-live': 'polite'});
    const get = (format) => (e) => busy(e.target, async () => {
      try {
        const res = await fetch(api.mine(base + '/export?format=' + format), {credentials: 'same-origin'});
        if (!res.ok) {
          const body = await res.json().catch(() => null);
          throw new api.ApiError(res.status, body && body.error);
        }
        if (format === 'zip') {
          const password = res.headers.get('X-Export-Password');
          download(await res.blob(), 'cert-' + id + '.zip');
          clear(out, h('p', {class: 'notice ok', role: 'status'}, 'Downloaded cert-' + id + '.zip. Its password: ',
            h('code', {class: 'secret'}, password || '(none)')));
        } else {
          download(new Blob([await res.text()], {type: 'application/json'}), 'cert-' + id + '.json');
          clear(out, h('p', {class: 'notice ok', role: 'status'}, 'Downloaded cert-' + id + '.json (it holds the private key).'));
        }
      } catch (err) { clear(out, h('p', {class: 'notice error', role: 'alert'}, err.message)); }
    });
    clear(exportEl, h('p', {}, 'The export holds the private key; each one is written to the audit log.'),
      h('div', {class: 'actions'},
        h('button', {type: 'button', onclick: get('json')}, 'Download JSON'),
        h('button', {type: 'button', onclick: get('zip')}, 'Download zip')), out);
  }

  // While an order runs, its row is read again every 2 s (the record too once it ends): a few requests a
  // minute against the user's API budget.
  async function refresh() {
    cert = await api.get(base);
    drawDetails();
    drawExport();
    await follow();
  }
  async function follow() {
    const running = await drawHistory();
    clearTimeout(timer);
    if (running && alive()) {
      timer = setTimeout(() => {
        if (!alive()) return;
        follow().then(async (still) => { if (!still) await refresh(); })
          .catch((err) => notice(box, err.message, 'error'));
      }, 2000);
    }
    return running;
  }

  const start = (path, label) => (e) => busy(e.target, async () => {
    try {
      const r = await api.post(base + path);
      notice(box, label + ': ' + (r && r.status ? r.status : 'requested') + (r && r.error_message ? ' — ' + r.error_message : ''),
        r && r.status === 'FAILED' ? 'error' : 'info');
      await refresh();
    } catch (err) { notice(box, err.message, 'error'); }
  });
  clear(actions,
    h('button', {type: 'button', class: 'primary', onclick: start('/issues', 'Issuance')}, 'Issue now'),
    h('button', {type: 'button', onclick: start('/renew', 'Renewal')}, 'Renew'),
    h('button', {type: 'button', class: 'danger', onclick: async (e) => {
      if (!(await confirmDialog('Delete the certificate ' + cert.domain_name + ' and its keys?'))) return;
      busy(e.target, async () => {
        try {
          await api.del(base);
          location.hash = '#/certificates';
        } catch (err) { notice(box, err.message, 'error'); }
      });
    }}, 'Delete'));

  drawDetails();
  drawExport();
  await Promise.all([follow(), drawDevices()]);
  clear(view,
    h('p', {class: 'crumbs'}, h('a', {href: '#/certificates'}, '← Certificates')),
    h('h1', {}, cert.domain_name),
    actions, box,
    h('section', {'aria-labelledby': 'sec-details'}, h('h2', {id: 'sec-details'}, 'Details'), details),
    h('section', {'aria-labelledby': 'sec-history'}, h('h2', {id: 'sec-history'}, 'Issuance'), historyEl),
    h('section', {'aria-labelledby': 'sec-export'}, h('h2', {id: 'sec-export'}, 'Export'), exportEl),
    h('section', {'aria-labelledby': 'sec-devices'}, h('h2', {id: 'sec-devices'}, 'Devices'), devicesEl));
}
