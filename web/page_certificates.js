// Certificates: status, names, expiry, days left and key policy; filtered by account on the server;
// pages follow the API's cursor, so a list of a million rows costs one page at a time.
import * as api from './api.js';
import {h, clear, table, badge, fmtTime, daysLeft, pager, field, select, notice} from './ui.js';

const PAGE = 25;

export function daysCell(c) {
  const d = daysLeft(c.not_after);
  if (d === null) return '—';
  const cls = d < 0 ? 'bad' : d <= 14 ? 'warn' : '';
  return h('span', {class: cls}, d < 0 ? 'expired ' + (-d) + ' d ago' : d + ' d');
}

export async function render(view) {
  const accounts = await api.all('/acme-accounts');
  const box = h('div', {});
  const listEl = h('div', {});
  const acct = select('acct_id', [['', 'All accounts'], ...accounts.map((a) => [String(a.id), a.name + ' (' + a.provider + ')'])]);
  const status = select('status', [['', 'Any status'], ['active', 'Active'], ['pending', 'Pending (never issued)'],
    ['expired', 'Expired'], ['expiring', 'Expiring within 30 days']]);
  const q = h('input', {name: 'q', type: 'search', autocomplete: 'off', placeholder: 'example.com'});
  const filters = h('form', {class: 'filters', role: 'search', 'aria-label': 'Filter certificates'},
    field('Account', acct), field('Status', status), field('Name contains', q),
    h('button', {type: 'submit'}, 'Filter'));
  const names = (c) => [c.domain_name, ...(c.sans || []).filter((s) => s !== c.domain_name)];
  const columns = [
    {label: 'Name', cell: (c) => h('a', {href: '#/certificates/' + c.id}, c.domain_name)},
    {label: 'Other names', cls: 'wide', cell: (c) => names(c).slice(1).join(', ') || '—'},
    {label: 'Status', cell: (c) => badge(c.status)},
    {label: 'Expires', cls: 'wide', cell: (c) => fmtTime(c.not_after)},
    {label: 'Days left', cell: daysCell},
    {label: 'Key policy', cls: 'wide', cell: (c) => c.key_dist_policy || '—'},
    {label: 'Renews', cls: 'wide', cell: (c) => (c.auto_renew ? 'auto' : 'manual')},
  ];
  const params = () => {
    const p = {};
    if (acct.value) p.acct_id = acct.value;
    if (status.value) p.status = status.value;
    if (q.value.trim()) p.q = q.value.trim();
    return p;
  };
  let active = {};  // the filters of the pages shown: what the form said when Filter was pressed
  const pages = pager((items) => clear(listEl, table('Certificates', columns, items,
    Object.keys(active).length ? 'No certificate matches these filters.' : 'No certificates yet. Create one to start.')),
  (cursor) => api.list('/certificates', {limit: PAGE, cursor, params: active}), PAGE);
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    active = params();
    notice(box, '');
    pages.first().catch((err) => notice(box, err.message, 'error'));
  });
  await pages.first();
  clear(view,
    h('div', {class: 'title-row'}, h('h1', {}, 'Certificates'),
      h('a', {class: 'button primary', href: '#/certificates/new'}, 'New certificate')),
    filters, box, listEl, pages.nav);
}
