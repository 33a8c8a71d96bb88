// Small DOM helpers: elements, tables, forms whose errors are shown at the field, notices, dates.

/// h('button', {type: 'button', onclick: fn}, 'Save'): attributes (on* are listeners), then children.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtTime(unix) {
  if (!unix) return '—';
  const d = new Date(unix * 1000);
  return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

export function daysLeft(notAfter) {
  if (!notAfter) return null;
  return Math.floor((notAfter * 1000 - Date.now()) / 86400000);
}

/// A status as a badge with words (never colour alone).
export function badge(text, kind) {
  const k = kind || ({SUCCESS: 'ok', ISSUED: 'ok', ACTIVE: 'ok', APPROVED: 'ok', PENDING: 'wait', PROCESSING: 'wait',
    RUNNING: 'wait', FAILED: 'bad', CANCELLED: 'muted', REVOKED: 'bad', EXPIRED: 'bad', DISABLED: 'muted'})[String(text).toUpperCase()] || 'muted';
  return h('span', {class: 'badge ' + k}, String(text || '—'));
}

/// A table: columns [{label, cell(row) -> node|text, cls}]; an empty list shows `empty`.
export function table(caption, columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', {class: 'empty'}, empty);
  return h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption},
    h('table', {},
      h('caption', {class: 'sr-only'}, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {scope: 'col', class: c.cls}, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', {class: c.cls, 'data-label': c.label}, c.cell(r))))))));
}

/// A status line that screen readers announce. kind: 'ok' | 'error' | 'info'.
export function notice(el, text, kind = 'info') {
  clear(el, text ? h('p', {class: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status'}, text) : null);
}

let fieldSeq = 0;
/// A labelled input; returns the wrapper. `input` attributes go to the control; `hint` is described-by.
export function field(label, control, hint) {
  const id = control.id || ('f' + (++fieldSeq));
  control.id = id;
  const err = h('p', {class: 'field-error', id: id + '-err', hidden: true});
  const parts = [h('label', {for: id}, label), control];
  const described = [err.id];
  if (hint) {
    parts.push(h('p', {class: 'hint', id: id + '-hint'}, hint));
    described.push(id + '-hint');
  }
  control.setAttribute('aria-describedby', described.join(' '));
  return h('div', {class: 'field', dataset: {name: control.name || ''}}, parts, err);
}

export function input(name, attrs = {}) { return h('input', {name, ...attrs}); }
export function select(name, options, attrs = {}) {
  return h('select', {name, ...attrs}, options.map(([value, text]) => h('option', {value}, text)));
}

/// Shows an API error: at its field when the form has one by that name, else in `box`.
export function showError(form, box, err) {
  for (const f of form.querySelectorAll('.field-error')) { f.hidden = true; f.textContent = ''; }
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  const name = err && err.field;
  const control = name ? form.querySelector('[name="' + CSS.escape(name) + '"]') : null;
  if (control) {
    const e = document.getElementById(control.id + '-err');
    e.textContent = err.message;
    e.hidden = false;
    control.setAttribute('aria-invalid', 'true');
    control.focus();
    notice(box, 'Please correct the marked field.', 'error');
  } else {
    notice(box, err ? err.message : '', 'error');
  }
}

/// Runs `fn` with the button disabled; errors go to showError.
export async function busy(button, fn) {
  button.disabled = true;
  try { return await fn(); } finally { button.disabled = false; }
}

/// Previous/next over a cursor-paginated list. load(cursor) -> {items, cursor, hasMore}.
export function pager(render, load, limit) {
  const stack = [null];
  let page = 0;
  const nav = h('nav', {class: 'pager', 'aria-label': 'Pages'});
  const failed = h('div', {});
  // From the buttons: a failure is shown beside them (the first page's failure goes to the caller).
  const step = (to) => go(to).catch((err) => notice(failed, err.message, 'error'));
  async function go(to) {
    const result = await load(stack[to]);
    notice(failed, '');
    page = to;
    if (result.hasMore && result.cursor) stack[page + 1] = result.cursor;
    else stack.length = page + 1;
    render(result.items);
    clear(nav,
      h('button', {type: 'button', disabled: page === 0, onclick: () => step(page - 1)}, '← Previous'),
      h('span', {class: 'muted'}, 'Page ' + (page + 1) + (result.items.length ? ' · ' + (page * limit + 1) + '–' + (page * limit + result.items.length) : '')),
      h('button', {type: 'button', disabled: !(result.hasMore && result.cursor), onclick: () => step(page + 1)}, 'Next →'),
      failed);
  }
  return {nav, reload: () => go(page), first: () => go(0)};
}

/// Asks before a destructive action, with an accessible dialog.
export function confirmDialog(question, action = 'Delete') {
  return new Promise((resolve) => {
    const dlg = h('dialog', {class: 'confirm', 'aria-label': question});
    const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    const cancel = h('button', {type: 'button', autofocus: true, onclick: () => done(false)}, 'Cancel');
    dlg.append(h('p', {}, question),
      h('div', {class: 'actions'},
        h('button', {type: 'button', class: 'danger', onclick: () => done(true)}, action), cancel));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/// A secret shown once, with a copy button.
export function secretBox(label, value) {
  const code = h('code', {class: 'secret', tabindex: '0'}, value);
  const status = h('span', {role: 'status', class: 'muted'});
  return h('div', {class: 'secret-box'},
    h('p', {}, h('strong', {}, label), ' It is shown only now: store it somewhere safe.'),
    code,
    h('p', {}, h('button', {type: 'button', onclick: async () => {
      try {
        await navigator.clipboard.writeText(value);
        status.textContent = 'Copied.';
      } catch (e) {
        const r = document.createRange();
        r.selectNodeContents(code);
        getSelection().removeAllRanges();
        getSelection().addRange(r);
        status.textContent = 'Selected: press Ctrl+C to copy.';
      }
    }}, 'Copy'), ' ', status));
}
