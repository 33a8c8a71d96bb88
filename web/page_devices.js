// Devices (agents on web servers): status, last seen, and the way to enrol one (the device flow).
import * as api from './api.js';
import {h, clear, table, badge, fmtTime, pager} from './ui.js';

export function ago(unix) {
  if (!unix) return 'never';
  const s = Math.max(0, Math.floor(Date.now() / 1000) - unix);
  if (s < 90) return s + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  if (s < 129600) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' days ago';
}

export async function render(view) {
  const listEl = h('div', {});
  const PAGE = 25;
  const pages = pager((items) => clear(listEl, table('Devices', [
    {label: 'Device', cell: (d) => h('a', {href: '#/devices/' + d.id}, d.name || d.device_public_id)},
    {label: 'Status', cell: (d) => badge(d.status)},
    {label: 'Last seen', cell: (d) => h('span', {title: fmtTime(d.last_seen_at)}, ago(d.last_seen_at))},
    {label: 'Platform', cls: 'wide', cell: (d) => [d.platform, d.agent_version].filter(Boolean).join(' · ') || '—'},
    {label: 'Address', cls: 'wide', cell: (d) => d.ip || '—'},
  ], items, 'No devices yet.')), (cursor) => api.list('/devices', {limit: PAGE, cursor}), PAGE);
  await pages.first();
  clear(view, h('h1', {}, 'Devices'),
    h('p', {class: 'muted'}, 'An agent enrols with the device flow: it shows a code, which you approve on ',
      h('a', {href: '/device'}, 'the device approval page'), '.'),
    listEl, pages.nav);
}
