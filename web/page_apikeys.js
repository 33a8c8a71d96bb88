// API keys: created with a scope picker, the token shown once with a copy button, revoked by deletion.
import * as api from './api.js';
import {h, clear, table, fmtTime, notice, busy, confirmDialog, field, input, select, showError, secretBox, pager} from './ui.js';

const OBTYPES = ['certificates', 'acme_accounts', 'cas', 'dns_providers', 'devices', 'webhooks', 'apikeys', 'audit', 'domains',
  'ForDeviceAuthenticate', 'ForInstallConfigUpdate'];
const ACTIONS = ['read', 'write', 'issue', 'export', 'assign', 'revoke', 'delete', 'update', 'authenticate', 'validate', 'exec'];
const EXPIRY = [['2592000', '30 days'], ['7776000', '90 days'], ['31536000', '1 year'], ['86400', '1 day']];

export function scopeText(p) {
  return p.obtype + ':' + p.obid + '[' + (p.actions || []).join(',') + ']';
}

let rowSeq = 0;  // ids only; the legends are numbered by position (renumber)
function renumber(scopes) {
  [...scopes.children].forEach((g, i) => {
    g.querySelector('legend').textContent = 'Scope ' + (i + 1);
    g.querySelector('.checks').setAttribute('aria-label', 'Actions of scope ' + (i + 1));
    g.querySelector('.scope-head button').setAttribute('aria-label', 'Remove scope ' + (i + 1));
  });
}
function scopeRow(onRemove) {
  const n = ++rowSeq;
  const obtype = select('obtype', OBTYPES.map((o) => [o, o]), {id: 'scope-type-' + n});
  const obid = input('obid', {value: '*', size: '6', autocomplete: 'off', id: 'scope-id-' + n});
  const boxes = ACTIONS.map((a) => {
    const c = input('action', {type: 'checkbox', value: a, checked: a === 'read'});
    return [a, c];
  });
  const group = h('fieldset', {class: 'scope'},
    h('legend', {}, 'Scope ' + n),
    h('div', {class: 'scope-head'},
      field('Object type', obtype), field('Object id (* for all)', obid),
      h('button', {type: 'button', class: 'small', 'aria-label': 'Remove scope ' + n, onclick: () => onRemove(group)}, 'Remove')),
    h('div', {class: 'checks', role: 'group', 'aria-label': 'Actions of scope ' + n},
      boxes.map(([a, c]) => h('label', {}, c, ' ' + a))));
  group.value = () => ({
    obtype: obtype.value,
    obid: obid.value.trim() === '*' || !obid.value.trim() ? '*' : Number(obid.value.trim()),
    actions: boxes.filter(([, c]) => c.checked).map(([a]) => a),
  });
  return group;
}

export async function render(view) {
  const box = h('div', {'aria-live': 'polite'});
  const tokenEl = h('div', {});
  const listEl = h('div', {});
  const PAGE = 25;
  const pages = pager((items) => clear(listEl, table('API keys', [
    {label: 'Name', cell: (k) => k.name},
    {label: 'Key id', cls: 'wide', cell: (k) => h('code', {}, k.key_id)},
    {label: 'Scopes', cell: (k) => h('ul', {class: 'plain'}, (k.permissions || []).map((p) => h('li', {}, h('code', {}, scopeText(p)))))},
    {label: 'Expires', cell: (k) => (k.expired ? 'expired ' : '') + fmtTime(k.expires_at)},
    {label: '', cell: (k) => h('button', {type: 'button', class: 'danger small', 'aria-label': 'Revoke ' + k.name, onclick: async (e) => {
      if (!(await confirmDialog('Revoke the key ' + k.name + '? Scripts using it stop working at once.', 'Revoke'))) return;
      busy(e.target, async () => {
        try {
          await api.del('/apikeys/' + k.id);
          clear(tokenEl);
          notice(box, 'Revoked ' + k.name + '.', 'ok');
          await pages.reload();
        } catch (err) { notice(box, err.message, 'error'); }
      });
    }}, 'Revoke')},
  ], items, 'No API keys yet.')), (cursor) => api.list('/apikeys', {limit: PAGE, cursor}), PAGE);

  const name = input('name', {required: true, autocomplete: 'off', placeholder: 'deploy script'});
  const expiry = select('expires_in_seconds', EXPIRY);
  const scopes = h('div', {class: 'scopes'});
  const remove = (g) => { if (scopes.children.length > 1) g.remove(); renumber(scopes); };
  const add = () => { scopes.append(scopeRow(remove)); renumber(scopes); };
  add();
  const formBox = h('div', {});
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Create key');
  const form = h('form', {class: 'card', novalidate: true, 'aria-label': 'Create an API key'},
    field('Name', name), field('Expires in', expiry),
    h('div', {class: 'field', dataset: {name: 'permissions'}}, h('p', {class: 'label'}, 'Scopes'), scopes,
      h('input', {type: 'hidden', name: 'permissions', id: 'permissions'}),
      h('p', {class: 'field-error', id: 'permissions-err', hidden: true})),
    h('button', {type: 'button', onclick: add}, 'Add a scope'),
    formBox, submit);
  const create = h('details', {class: 'create'}, h('summary', {}, 'Create an API key'), form);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      try {
        const key = await api.post('/apikeys', {name: name.value.trim(), expires_in_seconds: Number(expiry.value),
          permissions: [...scopes.children].map((g) => g.value())});
        form.reset();
        clear(scopes);
        add();
        notice(formBox, '', 'info');
        clear(tokenEl, secretBox('The token of ' + key.name + '.', key.token));
        create.open = false;
        await pages.first();
        tokenEl.querySelector('button').focus();  // the token is in view, its copy button under the keyboard
      } catch (err) { showError(form, formBox, err); }
    });
  });
  await pages.first();
  clear(view, h('h1', {}, 'API keys'),
    h('p', {class: 'muted'}, 'Scripts and the certctrl CLI send a key as Authorization: Bearer. A key holds only the scopes given here.'),
    tokenEl, create, box, listEl, pages.nav);
}
