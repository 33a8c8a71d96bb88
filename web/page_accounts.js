// ACME accounts (Let's Encrypt, ZeroSSL, any RFC 8555 CA) and SELF_CA accounts that sign with one of your CAs.
import * as api from './api.js';
import {h, field, input, select, fmtTime} from './ui.js';
import {crudPage} from './crud.js';

export async function render(view) {
  const cas = await api.all('/cas');
  await crudPage(view, {
    title: 'ACME accounts',
    path: '/acme-accounts',
    intro: 'Certificates are ordered through an account: an ACME CA, or SELF_CA to sign with a CA of yours.',
    empty: 'No accounts yet.',
    nameOf: (a) => a.name,
    columns: [
      {label: 'Name', cell: (a) => a.name},
      {label: 'Provider', cell: (a) => a.provider},
      {label: 'Email', cls: 'wide', cell: (a) => a.email || '—'},
      {label: 'CA', cls: 'wide', cell: (a) => (a.provider === 'SELF_CA' ? (cas.find((c) => c.id === a.ca_id) || {name: '#' + a.ca_id}).name || '#' + a.ca_id : a.directory_url || '—')},
      {label: 'Created', cls: 'wide', cell: (a) => fmtTime(a.created_at)},
    ],
    form: () => {
      const provider = select('provider', [['letsencrypt', "Let's Encrypt"], ['letsencrypt-staging', "Let's Encrypt (staging)"],
        ['zerossl', 'ZeroSSL'], ['google', 'Google Trust Services'], ['custom', 'Another ACME CA (directory URL)'], ['SELF_CA', 'SELF_CA: one of your CAs']]);
      const name = input('name', {required: true, autocomplete: 'off'});
      const email = input('email', {type: 'email', autocomplete: 'email'});
      const dir = input('directory_url', {type: 'url', placeholder: 'https://acme.example.com/directory'});
      const eabKid = input('eab_kid', {autocomplete: 'off'});
      const eabKey = input('eab_hmac_key', {type: 'password', autocomplete: 'off'});
      const ca = select('ca_id', cas.map((c) => [String(c.id), c.name || c.common_name]));
      const days = input('cert_valid_seconds', {type: 'number', min: '3600', placeholder: '7776000'});
      const acme = h('div', {}, field('Email', email, 'The CA writes here about expiring certificates.'),
        field('Directory URL', dir, 'Only for another ACME CA.'),
        field('EAB key id', eabKid, 'External account binding, when the CA asks for it (ZeroSSL, Google).'),
        field('EAB HMAC key', eabKey));
      const self = h('div', {}, cas.length ? field('CA', ca) : h('p', {class: 'notice info'}, 'Create a CA first (CAs page).'),
        field('Certificate lifetime (seconds)', days, 'Optional; 90 days when empty.'));
      const sync = () => { const s = provider.value === 'SELF_CA'; acme.hidden = s; self.hidden = !s; };
      provider.addEventListener('change', sync);
      sync();
      return {
        controls: [field('Name', name), field('Provider', provider), acme, self],
        reset: sync,
        body: () => {
          const b = {name: name.value.trim(), provider: provider.value};
          if (provider.value === 'SELF_CA') {
            if (ca.value) b.ca_id = Number(ca.value);
            if (days.value) b.cert_valid_seconds = Number(days.value);
          } else {
            if (email.value.trim()) b.email = email.value.trim();
            if (dir.value.trim()) b.directory_url = dir.value.trim();
            if (eabKid.value.trim()) b.eab_kid = eabKid.value.trim();
            if (eabKey.value) b.eab_hmac_key = eabKey.value;
          }
          return b;
        },
      };
    },
  });
}
