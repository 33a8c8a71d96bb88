// Your own certificate authorities: SELF_CA accounts sign with them; devices can be given their bundles.
import {h, field, input, select, fmtTime, badge} from './ui.js';
import {crudPage} from './crud.js';

export async function render(view) {
  await crudPage(view, {
    title: 'CAs',
    path: '/cas',
    intro: 'A CA of yours signs certificates through a SELF_CA account. Its private key never leaves this server.',
    empty: 'No CAs yet.',
    nameOf: (c) => c.name || c.common_name,
    columns: [
      {label: 'Name', cell: (c) => c.name || c.common_name},
      {label: 'Subject', cls: 'wide', cell: (c) => c.subject || c.common_name},
      {label: 'Key', cls: 'wide', cell: (c) => c.key_algorithm || c.algorithm},
      {label: 'Status', cell: (c) => badge(c.status || 'active')},
      {label: 'Expires', cell: (c) => fmtTime(c.not_after)},
      {label: 'Issued', cls: 'wide', cell: (c) => String(c.issued_cert_count || 0)},
    ],
    form: () => {
      const name = input('name', {autocomplete: 'off'});
      const cn = input('common_name', {required: true, autocomplete: 'off', placeholder: 'Example Internal Root'});
      const org = input('organization', {autocomplete: 'organization'});
      const alg = select('algorithm', [['ECDSA', 'ECDSA'], ['RSA', 'RSA']]);
      const days = input('valid_days', {type: 'number', min: '1', value: '3650'});
      return {
        controls: [field('Common name', cn), field('Name', name, 'Optional; shown in lists.'), field('Organization', org),
          field('Key algorithm', alg), field('Valid for (days)', days)],
        body: () => {
          const b = {common_name: cn.value.trim(), algorithm: alg.value, valid_days: Number(days.value || 3650)};
          if (name.value.trim()) b.name = name.value.trim();
          if (org.value.trim()) b.organization = org.value.trim();
          return b;
        },
      };
    },
  });
}
