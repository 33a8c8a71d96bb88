// DNS providers for dns-01: their credentials are write-only (sealed here, never shown back).
import {h, field, input, select, fmtTime} from './ui.js';
import {crudPage} from './crud.js';

const kinds = {
  cloudflare: [['api_token', 'API token', 'password'], ['zone_id', 'Zone id (optional)', 'text']],
  rfc2136: [['server', 'Server', 'text'], ['port', 'Port', 'number'], ['zone', 'Zone', 'text'], ['tsig_key_name', 'TSIG key name', 'text'],
    ['tsig_algorithm', 'TSIG algorithm (e.g. hmac-sha256)', 'text'], ['tsig_secret', 'TSIG secret (base64)', 'password']],
  webhook: [['url', 'URL', 'url'], ['hmac_secret', 'HMAC secret', 'password']],
  manual: [],
};

export async function render(view) {
  await crudPage(view, {
    title: 'DNS providers',
    path: '/dns-providers',
    intro: 'Credentials are stored sealed and are never shown again; to change them, create the provider anew.',
    empty: 'No DNS providers yet.',
    nameOf: (p) => p.name,
    columns: [
      {label: 'Name', cell: (p) => p.name},
      {label: 'Kind', cell: (p) => p.kind},
      {label: 'Zone', cls: 'wide', cell: (p) => p.zone || p.zone_id || '—'},
      {label: 'Created', cls: 'wide', cell: (p) => fmtTime(p.created_at)},
    ],
    form: () => {
      const name = input('name', {required: true, autocomplete: 'off'});
      const kind = select('kind', [['cloudflare', 'Cloudflare'], ['rfc2136', 'RFC 2136 (dynamic DNS update)'], ['webhook', 'Webhook'], ['manual', 'Manual']]);
      const groups = {};
      for (const [k, fields] of Object.entries(kinds)) {
        groups[k] = {el: h('div', {}), inputs: fields.map(([n, label, type]) => {
          const i = input(n, {type, autocomplete: 'off'});
          return [n, type, i, label];
        })};
        for (const [, , i, label] of groups[k].inputs) groups[k].el.append(field(label, i));
      }
      const sync = () => { for (const [k, g] of Object.entries(groups)) g.el.hidden = k !== kind.value; };
      kind.addEventListener('change', sync);
      sync();
      return {
        controls: [field('Name', name), field('Kind', kind), Object.values(groups).map((g) => g.el)],
        reset: sync,
        body: () => {
          const b = {name: name.value.trim(), kind: kind.value};
          for (const [n, type, i] of groups[kind.value].inputs) {
            if (i.value.trim()) b[n] = type === 'number' ? Number(i.value) : i.value.trim();
          }
          return b;
        },
      };
    },
  });
}
