// A list page with a create form and delete buttons, shared by accounts, CAs and DNS providers.
import * as api from './api.js';
import {h, clear, table, notice, showError, busy, confirmDialog, pager} from './ui.js';

/// spec: {title, path, columns, form: () => {controls: [nodes], body: () => object, reset?}, created(item, box)?,
///        intro?, nameOf(item)}
export async function crudPage(view, spec) {
  const box = h('div', {'aria-live': 'polite'});
  const listEl = h('div', {});
  const PAGE = 25;
  const columns = [...spec.columns, {label: '', cell: (item) => h('button', {type: 'button', class: 'danger small',
    'aria-label': 'Delete ' + spec.nameOf(item), onclick: async (e) => {
      if (!(await confirmDialog('Delete ' + spec.nameOf(item) + '?'))) return;
      busy(e.target, async () => {
        try {
          await api.del(spec.path + '/' + item.id);
          notice(box, 'Deleted ' + spec.nameOf(item) + '.', 'ok');
          await pages.reload();
        } catch (err) { notice(box, err.message, 'error'); }
      });
    }}, 'Delete')}];
  const pages = pager((items) => clear(listEl, table(spec.title, columns, items, spec.empty)),
    (cursor) => api.list(spec.path, {limit: PAGE, cursor}), PAGE);
  const f = spec.form();
  const formBox = h('div', {});
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Create');
  const form = h('form', {class: 'card', novalidate: true, 'aria-label': 'Create'}, f.controls, formBox, submit);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      try {
        const item = await api.post(spec.path, f.body());
        notice(formBox, '', 'info');
        form.reset();
        if (f.reset) f.reset();
        if (spec.created) spec.created(item, box);
        else notice(box, 'Created ' + spec.nameOf(item) + '.', 'ok');
        await pages.first();
      } catch (err) { showError(form, formBox, err); }
    });
  });
  await pages.first();
  const details = h('details', {class: 'create'}, h('summary', {}, 'Create'), form);
  clear(view, h('h1', {}, spec.title), spec.intro ? h('p', {class: 'muted'}, spec.intro) : null,
    details, box, listEl, pages.nav);
}
