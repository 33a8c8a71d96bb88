// The dashboard: signs in with the session cookie (POST /auth/general), then routes on the URL's hash
// (#/certificates, #/certificates/12, ...). Each page is a module exporting render(main, params).
import * as api from './api.js';
import {h, clear, notice, field, input, showError, busy} from './ui.js';

const routes = [
  [/^#\/certificates\/new$/, () => import('./page_new_certificate.js'), 'Certificates'],
  [/^#\/certificates\/(\d+)$/, () => import('./page_certificate.js'), 'Certificates'],
  [/^#\/certificates$/, () => import('./page_certificates.js'), 'Certificates'],
  [/^#\/accounts$/, () => import('./page_accounts.js'), 'ACME accounts'],
  [/^#\/cas$/, () => import('./page_cas.js'), 'CAs'],
  [/^#\/dns$/, () => import('./page_dns.js'), 'DNS providers'],
  [/^#\/devices\/(\d+)$/, () => import('./page_device.js'), 'Devices'],
  [/^#\/devices$/, () => import('./page_devices.js'), 'Devices'],
  [/^#\/apikeys$/, () => import('./page_apikeys.js'), 'API keys'],
  [/^#\/audit$/, () => import('./page_audit.js'), 'Audit log'],
];
const nav = [['#/certificates', 'Certificates'], ['#/accounts', 'ACME accounts'], ['#/cas', 'CAs'],
  ['#/dns', 'DNS providers'], ['#/devices', 'Devices'], ['#/apikeys', 'API keys'], ['#/audit', 'Audit log']];

const root = document.getElementById('app');
let main = null;
let navList = null;
let generation = 0;  // a page still loading when the route changes must not draw over the new one

function loginView(message) {
  document.title = 'Sign in · certctrl';
  const box = h('div', {});
  const email = input('email', {type: 'email', autocomplete: 'username', required: true});
  const password = input('password', {type: 'password', autocomplete: 'current-password', required: true});
  const button = h('button', {type: 'submit', class: 'primary'}, 'Sign in');
  const form = h('form', {class: 'card narrow', 'aria-labelledby': 'login-title', novalidate: true},
    h('h1', {id: 'login-title'}, 'Sign in to certctrl'),
    field('Email', email), field('Password', password), box, button);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!email.value || !password.value) {
      notice(box, 'Enter your email and password.', 'error');
      return;
    }
    busy(button, async () => {
      try {
        await api.login(email.value.trim(), password.value);
        shell();
      } catch (err) {
        showError(form, box, err);
      }
    });
  });
  clear(root, h('main', {id: 'main', class: 'login'}, form));
  root.removeAttribute('aria-busy');
  if (message) notice(box, message, 'info');
  email.focus();
}

function shell() {
  const user = api.currentUser();
  navList = h('ul', {}, nav.map(([href, label]) => h('li', {}, h('a', {href}, label))),
    h('li', {}, h('a', {href: '/device'}, 'Approve a device')));
  const menu = h('button', {type: 'button', class: 'menu', 'aria-expanded': 'false', 'aria-controls': 'nav'}, 'Menu');
  const navEl = h('nav', {id: 'nav', 'aria-label': 'Main'}, navList);
  menu.addEventListener('click', () => {
    const open = menu.getAttribute('aria-expanded') !== 'true';
    menu.setAttribute('aria-expanded', String(open));
    navEl.classList.toggle('open', open);
  });
  navEl.addEventListener('click', (e) => {
    if (e.target.closest('a')) {
      menu.setAttribute('aria-expanded', 'false');
      navEl.classList.remove('open');
    }
  });
  const out = h('button', {type: 'button', class: 'link', id: 'logout'}, 'Sign out');
  out.addEventListener('click', async () => {
    await api.logout().catch(() => {});
    location.hash = '';
    loginView('You are signed out.');
  });
  main = h('main', {id: 'main', tabindex: '-1'});
  clear(root,
    h('header', {class: 'top'},
      h('a', {class: 'brand', href: '#/certificates'}, 'certctrl'),
      menu,
      h('div', {class: 'who'}, h('span', {class: 'muted'}, user.email), ' ', out)),
    h('div', {class: 'layout'}, navEl, main));
  root.removeAttribute('aria-busy');
  if (!location.hash.startsWith('#/')) location.hash = '#/certificates';
  else route();
}

async function route() {
  if (!main || !api.currentUser()) return;
  const hash = location.hash;
  if (!hash.startsWith('#/')) return;  // "#main" (the skip link) is not a route
  const found = routes.find(([re]) => re.test(hash));
  const mine = ++generation;
  const menuButton = root.querySelector('button.menu');
  if (menuButton) {  // a new page closes the phone menu, however it was reached
    menuButton.setAttribute('aria-expanded', 'false');
    root.querySelector('nav#nav').classList.remove('open');
  }
  for (const a of navList.querySelectorAll('a')) {
    if (a.getAttribute('href') === '#/' + hash.slice(2).split('/')[0]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  delete main.dataset.route;  // set again once this route is drawn (tests wait for it)
  clear(main, h('p', {class: 'loading', role: 'status'}, 'Loading…'));
  if (!found) {
    clear(main, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', h('a', {href: '#/certificates'}, 'Go to certificates')));
    main.dataset.route = hash;
    return;
  }
  const [re, load, title] = found;
  const params = hash.match(re).slice(1);
  try {
    const page = await load();
    if (mine !== generation) return;
    const view = h('div', {});
    await page.render(view, params, () => mine === generation);
    if (mine !== generation) return;
    clear(main, view);
    main.dataset.route = hash;
    document.title = title + ' · certctrl';
    const heading = main.querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({preventScroll: true});
    }
  } catch (err) {
    if (mine !== generation) return;
    const box = h('div', {});
    clear(main, h('h1', {}, title), box);
    notice(box, err.message || String(err), 'error');
    main.dataset.route = hash;
  }
}

window.addEventListener('hashchange', route);
api.onSessionEnd(() => loginView('Your session has ended. Sign in again.'));

api.status().then((user) => (user ? shell() : loginView()))
  .catch((err) => loginView(err.message));
