// Create a certificate: through an ACME account or a SELF_CA one (the account decides), with the DNS provider
// for dns-01; the API's validation messages are shown at their field.
import * as api from './api.js';
import {h, clear, field, input, select, showError, busy, notice} from './ui.js';

export async function render(view) {
  const [accounts, providers] = await Promise.all([api.all('/acme-accounts'), api.all('/dns-providers')]);
  const box = h('div', {});
  if (!accounts.length) {
    clear(view, h('h1', {}, 'New certificate'),
      h('p', {}, 'A certificate is issued through an account: ', h('a', {href: '#/accounts'}, 'create an ACME or SELF_CA account'), ' first.'));
    return;
  }
  const name = input('domain_name', {required: true, autocomplete: 'off', placeholder: 'www.example.com', spellcheck: false});
  const sans = input('sans', {autocomplete: 'off', placeholder: 'example.com, api.example.com', spellcheck: false});
  const acct = select('acct_id', accounts.map((a) => [String(a.id), a.name + ' (' + a.provider + ')']));
  const dns = select('dns_provider_id', [['', 'None (HTTP or TLS-ALPN through an agent, or delegated)'], ...providers.map((p) => [String(p.id), p.name + ' (' + p.kind + ')'])]);
  const challenge = select('challenge', [['auto', 'Automatic'], ['http-01-agent', 'http-01 served by an agent'],
    ['tls-alpn-01-agent', 'tls-alpn-01 served by an agent'], ['dns-01-delegated', 'dns-01 delegated by CNAME']]);
  const keyAlg = select('key_algorithm', [['ECDSA_P256', 'ECDSA P-256'], ['ECDSA_P384', 'ECDSA P-384'], ['RSA_2048', 'RSA 2048'],
    ['RSA_3072', 'RSA 3072'], ['RSA_4096', 'RSA 4096']]);
  const policy = select('policy', [['HYBRID', 'HYBRID: kept sealed here and sealed to each device'],
    ['MASTER_ONLY', 'MASTER_ONLY: kept sealed here only'], ['DEVICE_REQUIRED', 'DEVICE_REQUIRED: only devices ever hold the key']]);
  const exportable = input('server_decrypt_export', {type: 'checkbox'});
  const renew = input('auto_renew', {type: 'checkbox', checked: true});
  const acmeOnly = h('div', {}, field('DNS provider', dns, 'For dns-01 validation by this server.'),
    field('Challenge', challenge));
  const isSelf = () => {
    const a = accounts.find((x) => String(x.id) === acct.value);
    return a && a.provider === 'SELF_CA';
  };
  const sync = () => { acmeOnly.hidden = isSelf(); };
  acct.addEventListener('change', sync);
  sync();
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Create certificate');
  const form = h('form', {class: 'card', novalidate: true, 'aria-labelledby': 'new-title'},
    field('Domain name', name, 'The common name; wildcards like *.example.com need dns-01.'),
    field('Other names', sans, 'Optional, separated by commas or spaces.'),
    field('Account', acct, 'ACME accounts order from their CA; SELF_CA accounts sign with your CA at once.'),
    acmeOnly,
    field('Key', keyAlg),
    field('Key policy', policy),
    h('div', {class: 'checks'},
      h('label', {}, exportable, ' Allow exporting the private key'),
      h('label', {}, renew, ' Renew automatically')),
    box, submit);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = {
      domain_name: name.value.trim(),
      acct_id: Number(acct.value),
      key_algorithm: keyAlg.value,
      policy: policy.value,
      server_decrypt_export: exportable.checked,
      auto_renew: renew.checked,
    };
    const extra = sans.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
    if (extra.length) body.sans = extra;
    if (!isSelf()) {
      if (dns.value) body.dns_provider_id = Number(dns.value);
      if (challenge.value !== 'auto') body.challenge = challenge.value;
    }
    if (!body.domain_name) {
      showError(form, box, {field: 'domain_name', message: 'Enter the domain name.'});
      return;
    }
    busy(submit, async () => {
      try {
        const c = await api.post('/certificates', body);
        notice(box, 'Created.', 'ok');
        location.hash = '#/certificates/' + c.id;
      } catch (err) {
        showError(form, box, err);
      }
    });
  });
  clear(view, h('p', {class: 'crumbs'}, h('a', {href: '#/certificates'}, '← Certificates')),
    h('h1', {id: 'new-title'}, 'New certificate'), form);
}
