// The audit log: logins, key releases, denials and changes, newest first.
import * as api from './api.js';
import {h, clear, table, fmtTime, badge, pager} from './ui.js';

function detailText(d) {
  if (d === null || d === undefined || d === '') return '';
  if (typeof d === 'string') return d;
  return Object.entries(d).map(([k, v]) => k + ': ' + (typeof v === 'object' ? JSON.stringify(v) : v)).join(', ');
}

export async function render(view) {
  const listEl = h('div', {});
  const PAGE = 50;
  const pages = pager((items) => clear(listEl, table('Audit log', [
    {label: 'When', cell: (e) => fmtTime(e.created_at)},
    {label: 'Action', cell: (e) => h('code', {}, e.action)},
    {label: 'Outcome', cell: (e) => badge(e.outcome, e.outcome === 'success' || e.outcome === 'ok' ? 'ok' : e.outcome === 'denied' || e.outcome === 'failure' ? 'bad' : 'muted')},
    {label: 'From', cls: 'wide', cell: (e) => e.ip || '—'},
    {label: 'Detail', cell: (e) => detailText(e.detail)},
  ], items, 'Nothing recorded yet.')), (cursor) => api.list('/audit', {limit: PAGE, cursor}), PAGE);
  await pages.first();
  clear(view, h('h1', {}, 'Audit log'), listEl, pages.nav);
}
