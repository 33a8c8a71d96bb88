#!/usr/bin/env python3
"""Drives the certctrl dashboard in a real headless Chromium (Debian's chromium + chromium-driver, Selenium).

Run by tests/browser/dashboard_test.cpp against a real server: sign in, create a CA, a SELF_CA account and a
certificate (with a validation error shown at its field first), issue it and see SUCCESS, download its JSON
and zip exports, create an API key (its token shown once, working) and revoke it (refused after), approve a
device code on /device, keyboard navigation, the phone layout, sign out. Any error in the browser console
fails the run (the one expected 400 of the validation step excepted, by URL). With --screenshots DIR it
saves the main pages at desktop and phone width, light and dark.

Exit code 0 when every check passed; the first failure is printed and exits 1.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common import utils
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = os.environ.get('CERTCTRL_CHROMIUM', '/usr/bin/chromium')
DRIVER = os.environ.get('CERTCTRL_CHROMEDRIVER', '/usr/bin/chromedriver')


# The visible text elements whose contrast with their effective background is under 4.5:1 (WCAG AA).
CONTRAST_JS = r"""
const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
  .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
const bg = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
  }
  return rgb(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
};
const out = [];
for (const el of document.querySelectorAll('h1, h2, p, a, button, label, th, td, dt, dd, span, code, summary, li')) {
  if (!el.offsetParent || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
  if (el.disabled) continue;
  const st = getComputedStyle(el);
  const [a, b] = [lum(rgb(st.color).slice(0, 3)), lum(bg(el))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) out.push(el.tagName + '.' + el.className + ' "' + el.textContent.trim().slice(0, 20) + '" ' + ratio.toFixed(2));
}
return out;
"""


class Check(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Check(what)
    print('ok -', what, flush=True)


class LoopbackService(Service):
    """chromedriver reached at 127.0.0.1: Selenium says "localhost", which a fresh root without /etc/hosts does
    not resolve."""

    @property
    def service_url(self):
        return 'http://127.0.0.1:%d' % self.port

    def is_connectable(self):
        return utils.is_connectable(self.port, '127.0.0.1')


class Dashboard:
    def __init__(self, url, downloads, profile):
        self.url = url.rstrip('/')
        self.downloads = downloads
        # Chromium is started here and chromedriver attaches to it at 127.0.0.1: left to itself, chromedriver
        # reaches the browser it starts at "localhost", which a fresh root without /etc/hosts does not resolve.
        # As root on a machine without outside network: no sandbox, no background connections.
        self.browser = subprocess.Popen(
            [CHROMIUM, '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--disable-dev-shm-usage', '--disable-features=Translate,OptimizationHints,MediaRouter',
             '--window-size=1280,900', '--user-data-dir=' + profile, '--remote-debugging-address=127.0.0.1',
             '--remote-debugging-port=0', 'about:blank'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = os.path.join(profile, 'DevToolsActivePort')
        end = time.time() + 30
        while not os.path.exists(active) or not open(active).read().strip():
            if time.time() > end or self.browser.poll() is not None:
                raise Check('chromium did not start (DevToolsActivePort missing)')
            time.sleep(0.1)
        opts = webdriver.ChromeOptions()
        opts.debugger_address = '127.0.0.1:' + open(active).read().split()[0]
        opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        try:
            self.d = webdriver.Chrome(service=LoopbackService(DRIVER), options=opts)
        except Exception:
            self.browser.kill()
            raise
        self.d.execute_cdp_cmd('Page.setDownloadBehavior', {'behavior': 'allow', 'downloadPath': downloads})
        self.wait = WebDriverWait(self.d, 20)

    def quit(self):
        self.d.quit()  # ends chromedriver; the browser it attached to is ours to stop
        self.browser.terminate()
        try:
            self.browser.wait(10)
        except subprocess.TimeoutExpired:
            self.browser.kill()

    # --- console -------------------------------------------------------------------------------------------
    def console_clean(self, allowed=()):
        """Fails on any console message of level SEVERE (errors, CSP violations, failed loads), except
        failed loads of the URLs containing one of `allowed`."""
        bad = []
        expected = 0
        for e in self.d.get_log('browser'):
            if e.get('level') != 'SEVERE':
                continue
            msg = e.get('message', '')
            if any(a in msg for a in allowed) and 'Failed to load resource' in msg:
                expected += 1
                continue
            bad.append(msg)
        check(not bad, 'no console errors' + (': ' + ' | '.join(bad) if bad else ''))
        return expected

    # --- helpers -------------------------------------------------------------------------------------------
    def go(self, hash_):
        target = self.url + '/' + hash_
        if self.d.current_url == target:
            self.d.refresh()  # the same URL again is no navigation at all
        else:
            self.d.get(target)
        self.ready(hash_)

    def ready(self, hash_=None):
        """Waits until the route (`hash_`, else the URL's) is drawn: the app marks main with it."""
        try:
            self.wait.until(lambda d: d.execute_script(
                "const m = document.querySelector('main'); return !!(document.querySelector('header.top') && m && "
                "m.dataset.route && m.dataset.route === (arguments[0] || location.hash));", hash_))
        except TimeoutException:
            raise Check('the page %s was not drawn (at %s)' % (hash_ or 'of the URL', self.d.current_url))

    def h1(self):
        return self.d.execute_script("const h = document.querySelector('main h1'); return h ? h.innerText : '';")

    def wait_h1(self, text):
        try:
            self.wait.until(lambda d: self.h1() == text and not d.find_elements(By.CSS_SELECTOR, 'main .loading'))
        except TimeoutException:
            raise Check('the page "%s" did not open (at "%s")' % (text, self.h1()))

    def field(self, name):
        return self.d.find_element(By.CSS_SELECTOR, 'main [name="%s"]' % name)

    def fill(self, name, value):
        el = self.field(name)
        el.clear()
        el.send_keys(value)

    def click_text(self, text, tag='button', timeout=5):
        # A part of the page may be redrawn between finding its elements and reading them (the certificate
        # page follows a running issuance): a stale element means look again, until `timeout`.
        until = time.monotonic() + timeout
        while True:
            try:
                for el in self.d.find_elements(By.CSS_SELECTOR, 'main ' + tag):
                    if el.text.strip() == text and el.is_displayed() and el.is_enabled():
                        el.click()
                        return el
                raise Check('no %s "%s" to click' % (tag, text))
            except StaleElementReferenceException:
                if time.monotonic() > until:
                    raise Check('%s "%s" kept being redrawn' % (tag, text))
                time.sleep(0.1)

    def open_create(self):
        self.d.find_element(By.CSS_SELECTOR, 'main details.create > summary').click()

    def wait_text(self, css, text, timeout=20):
        try:
            # Read in one script: the page redraws its parts, so element handles go stale.
            WebDriverWait(self.d, timeout).until(lambda d: any(text in t for t in d.execute_script(
                'return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText)', css)))
        except TimeoutException:
            raise Check('"%s" did not appear in %s' % (text, css))

    def labelled(self):
        """Every visible form control has a label (a <label for>, an enclosing label or aria-label)."""
        missing = self.d.execute_script("""
            return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter((c) => c.offsetParent !== null)
              .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute('aria-label'))
              .map((c) => c.name || c.outerHTML.slice(0, 60));""")
        check(not missing, 'every control of %s has a label%s' % (self.h1(), ': missing ' + str(missing) if missing else ''))

    def shot(self, directory, name):
        if directory:
            os.makedirs(directory, exist_ok=True)
            self.d.save_screenshot(os.path.join(directory, name + '.png'))

    def wait_download(self, name, timeout=20):
        path = os.path.join(self.downloads, name)
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(path) and not os.path.exists(path + '.crdownload') and os.path.getsize(path) > 0:
                return path
            time.sleep(0.1)
        raise Check('no download ' + name + ' (have: %s)' % os.listdir(self.downloads))


def http(url, method='GET', body=None, token=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header('Content-Type', 'application/json')
    if token:
        req.add_header('Authorization', 'Bearer ' + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b'{}')
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b'{}')


def run(args):
    work = tempfile.mkdtemp(prefix='certctrl-browser-')
    downloads = os.path.join(work, 'downloads')
    os.makedirs(downloads)
    b = Dashboard(args.url, downloads, os.path.join(work, 'profile'))
    d = b.d
    shots = args.screenshots
    try:
        # Signed out: the login form, no API calls failing in the console.
        d.get(b.url + '/')
        b.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'form input[name="email"]')))
        check(d.title.startswith('Sign in'), 'signed out, the dashboard shows the sign-in form')
        b.shot(shots, 'login-desktop')
        d.find_element(By.NAME, 'email').send_keys(args.email)
        d.find_element(By.NAME, 'password').send_keys('not the password')
        d.find_element(By.CSS_SELECTOR, 'form button[type=submit]').click()
        b.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '.notice.error, .field-error:not([hidden])'))
        err = d.find_element(By.CSS_SELECTOR, '.notice.error, .field-error:not([hidden])').text
        check(err and '{' not in err, 'a wrong password is refused in words: ' + err)
        b.console_clean(allowed=('/auth/general',))
        pw = d.find_element(By.NAME, 'password')
        pw.clear()
        pw.send_keys(args.password + Keys.ENTER)
        b.ready()
        check(b.h1() == 'Certificates', 'signed in, the certificates page shows')
        check(args.email in d.find_element(By.CSS_SELECTOR, 'header .who').text, 'the header names the user')
        b.labelled()

        # A CA, then a SELF_CA account that signs with it.
        b.go('#/cas')
        b.open_create()
        b.fill('common_name', 'Dashboard Test Root')
        b.fill('name', 'dash-root <b>bold</b>')
        b.click_text('Create')
        b.wait_text('main table', 'dash-root <b>bold</b>')
        check(not d.find_elements(By.CSS_SELECTOR, 'main table b'),
              'a CA is created from the CAs page; markup in its name shows as text')
        b.labelled()
        b.shot(shots, 'cas-desktop')
        b.go('#/accounts')
        b.open_create()
        b.fill('name', 'self-signed')
        Select(b.field('provider')).select_by_value('SELF_CA')
        check(b.field('ca_id').is_displayed() and not b.field('email').is_displayed(),
              'choosing SELF_CA shows the CA choice instead of the ACME fields')
        b.click_text('Create')
        b.wait_text('main table', 'self-signed')
        check(True, 'a SELF_CA account is created from the accounts page')
        b.labelled()

        # A DNS provider: a missing credential named at its field; the token is never shown back.
        b.go('#/dns')
        b.open_create()
        b.fill('name', 'cf')
        b.click_text('Create')
        b.wait.until(lambda d: b.field('api_token').get_attribute('aria-invalid') == 'true')
        check(True, 'a DNS provider without its API token is refused at the token field: ' +
              d.find_element(By.ID, b.field('api_token').get_attribute('id') + '-err').text)
        b.console_clean(allowed=('/dns-providers',))
        b.fill('api_token', 'cf-secret-token-0123456789')
        b.click_text('Create')
        b.wait_text('main table', 'cloudflare')
        b.go('#/dns')
        check('cf-secret-token' not in d.page_source, 'the DNS credential is not shown back')
        b.labelled()

        # A certificate: the API's validation message at its field, then created.
        b.go('#/certificates/new')
        b.labelled()
        b.fill('domain_name', 'not a name!')
        b.field('server_decrypt_export').click()
        b.click_text('Create certificate')
        b.wait.until(lambda d: b.field('domain_name').get_attribute('aria-invalid') == 'true')
        msg = d.find_element(By.ID, b.field('domain_name').get_attribute('id') + '-err').text
        check(msg and '{' not in msg, 'the API\'s validation message is shown at the domain field: ' + msg)
        # The console is really read: the refused request is in it.
        check(b.console_clean(allowed=('/certificates',)) >= 1, 'the console shows the refused request (400)')
        b.shot(shots, 'new-certificate-desktop')
        b.fill('domain_name', 'www.dash.test')
        b.fill('sans', 'dash.test')
        b.click_text('Create certificate')
        b.wait.until(lambda d: '#/certificates/' in d.current_url and not d.current_url.endswith('/new'))
        b.ready()
        check(b.h1() == 'www.dash.test', 'the new certificate\'s page shows')
        cert_id = d.current_url.rsplit('/', 1)[1]

        # Issue it and watch SUCCESS appear in its history.
        b.click_text('Issue now')
        b.wait_text('main .history-status', 'SUCCESS')
        b.wait_text('main dl.details', 'active')
        check(True, 'issuing shows SUCCESS in the history and the certificate active')
        b.shot(shots, 'certificate-desktop')

        # Exports: JSON (the key inside) and the zip with its password.
        b.click_text('Download JSON')
        path = b.wait_download('cert-%s.json' % cert_id)
        with open(path) as f:
            exported = json.load(f)
        check('BEGIN CERTIFICATE' in exported['data']['cert'] and exported['data']['privkey'],
              'the JSON export downloads with the certificate and key')
        b.click_text('Download zip')
        path = b.wait_download('cert-%s.zip' % cert_id)
        check(zipfile.is_zipfile(path), 'the zip export downloads')
        b.wait_text('main .notice.ok', 'password')
        b.console_clean()

        # The list: status, names, days left; filters.
        b.go('#/certificates')
        b.wait_text('main table', 'www.dash.test')
        row = d.find_element(By.CSS_SELECTOR, 'main tbody tr').text
        check('active' in row and 'dash.test' in row and ' d' in row, 'the list shows status, names and days left: ' + row.replace('\n', ' | '))
        Select(b.field('status')).select_by_value('pending')
        b.click_text('Filter')
        b.wait_text('main', 'No certificate matches these filters.')
        b.fill('q', 'dash')
        Select(b.field('status')).select_by_value('active')
        b.click_text('Filter')
        b.wait_text('main table', 'www.dash.test')
        check(True, 'the status and name filters ask the server')
        b.shot(shots, 'certificates-desktop')

        # An API key: the token once, working; then revoked.
        b.go('#/apikeys')
        b.open_create()
        b.labelled()
        b.fill('name', 'browser-made')
        b.click_text('Add a scope')
        second = d.find_elements(By.CSS_SELECTOR, 'main fieldset.scope')[1]
        check(second.find_element(By.TAG_NAME, 'legend').text == 'Scope 2', 'a second scope is added')
        Select(second.find_element(By.NAME, 'obtype')).select_by_value('devices')
        second.find_element(By.CSS_SELECTOR, 'input[value="write"]').click()
        b.click_text('Create key')
        b.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'main code.secret')))
        token = d.find_element(By.CSS_SELECTOR, 'main code.secret').text.strip()
        check(token.startswith('ak_'), 'the new key\'s token is shown')
        check(any(b2.text == 'Copy' for b2 in d.find_elements(By.CSS_SELECTOR, 'main .secret-box button')),
              'with a copy button')
        status, _ = http(b.url + '/apiv1/me/certificates', token=token)
        check(status == 200, 'the token works (GET /apiv1/me/certificates: %d)' % status)
        b.shot(shots, 'apikeys-desktop')
        b.go('#/apikeys')
        b.wait_text('main table', 'browser-made')
        b.wait_text('main table', 'devices:*[read,write]')
        b.wait_text('main table', 'certificates:*[read]')
        check(True, 'the key holds the two scopes picked')
        check(token not in d.page_source and token.split('.')[-1] not in d.page_source,
              'the token is not shown again')
        d.find_element(By.CSS_SELECTOR, 'main button[aria-label="Revoke browser-made"]').click()
        b.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'dialog[open]')))
        d.find_element(By.CSS_SELECTOR, 'dialog[open] button.danger').click()
        b.wait_text('main .notice', 'Revoked browser-made')
        status, _ = http(b.url + '/apiv1/me/certificates', token=token)
        check(status == 401, 'the revoked token is refused (%d)' % status)

        # A device code, approved on /device (linked from the navigation).
        status, grant = http(b.url + '/auth/device', 'POST', {'action': 'device_start'})
        check(status == 200, 'a device grant starts')
        b.go('#/devices')
        link = d.find_element(By.CSS_SELECTOR, 'nav a[href="/device"]')
        link.click()
        b.wait.until(EC.presence_of_element_located((By.ID, 'code')))
        d.find_element(By.ID, 'code').send_keys(grant['data']['user_code'])
        d.find_element(By.ID, 'approve').click()
        b.wait_text('#msg', 'Approved')
        status, polled = http(b.url + '/auth/device', 'POST',
                              {'action': 'device_poll', 'device_code': grant['data']['device_code']})
        check(polled.get('data', {}).get('status') == 'ready', 'the device\'s poll says ready after approval')
        b.console_clean()
        # The agent registers with its code (as the contract's agent does); the dashboard then manages it.
        status, reg = http(b.url + '/apiv1/device/registration', 'POST', {
            'device_public_id': str(uuid.uuid4()), 'platform': 'linux', 'model': 'x86_64', 'app_version': '1.0',
            'name': 'edge-1', 'ip': 'unknown', 'user_agent': 'dashboard-test',
            'dev_pk': base64.b64encode(os.urandom(32)).decode(), 'user_id': polled['data']['user_id'],
            'registration_code': polled['data']['registration_code']})
        check(status in (200, 201), 'the approved device registers (%d)' % status)
        device_token = reg['data']['session']['access_token']
        device_id = reg['data']['device']['id']

        # Assign the certificate to it from the certificate's page.
        b.go('#/certificates/' + cert_id)
        Select(b.field('device_id')).select_by_visible_text('edge-1 (ACTIVE)')
        b.click_text('Assign')
        b.wait_text('main .notice.ok', 'Assigned')
        b.wait_text('main section:last-of-type table', 'edge-1')
        check(True, 'the certificate is assigned to the device from its page')
        b.click_text('Unassign')
        b.wait_text('main section:last-of-type', 'Not assigned to any device.')
        check(True, 'and unassigned')
        Select(b.field('device_id')).select_by_visible_text('edge-1 (ACTIVE)')
        b.click_text('Assign')
        b.wait_text('main section:last-of-type table', 'edge-1')
        # The device: last seen, its certificate, install config (a JSON mistake shown at the field), revoke.
        b.go('#/devices')
        b.wait_text('main table', 'edge-1')
        b.shot(shots, 'devices-desktop')
        b.go('#/devices/%d' % device_id)
        b.wait_text('main section table', 'www.dash.test')
        b.labelled()
        installs = b.field('installs')
        installs.clear()
        installs.send_keys('[{"id": "web", ')
        b.click_text('Save install config')
        b.wait.until(lambda d: b.field('installs').get_attribute('aria-invalid') == 'true')
        check('Not valid JSON' in d.find_element(By.ID, b.field('installs').get_attribute('id') + '-err').text,
              'a JSON mistake in the install config is shown at its field')
        installs = b.field('installs')
        installs.clear()
        installs.send_keys(json.dumps([{'id': 'web', 'type': 'copy', 'ob_type': 'cert', 'ob_id': int(cert_id),
                                        'from': ['fullchain.pem', 'private.key'],
                                        'to': ['/etc/ssl/dash.pem', '/etc/ssl/dash.key']}]))
        b.fill('change_note', 'from the dashboard')
        b.click_text('Save install config')
        b.wait_text('main .notice.ok', 'Install config saved')
        check('/etc/ssl/dash.pem' in b.field('installs').get_attribute('value'),
              'the install config is saved and shown as stored')
        b.shot(shots, 'device-desktop')
        b.click_text('Revoke')
        b.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'dialog[open]')))
        d.find_element(By.CSS_SELECTOR, 'dialog[open] button.danger').click()
        b.wait_text('main dl.details', 'REVOKED')
        status, _ = http(b.url + '/apiv1/devices/self/install-config', token=device_token)
        check(status in (401, 403), 'the revoked device\'s token is refused (%d)' % status)
        b.console_clean()

        # An order that runs for a while: the page follows it without a reload, PENDING (retrying) to FAILED.
        b.go('#/accounts')
        b.open_create()
        b.fill('name', 'unreachable')
        Select(b.field('provider')).select_by_value('custom')
        b.fill('directory_url', 'https://127.0.0.1:1/directory')
        b.click_text('Create')
        b.wait_text('main table', 'unreachable')
        b.go('#/certificates/new')
        b.fill('domain_name', 'live.dash.test')
        Select(b.field('acct_id')).select_by_visible_text('unreachable (custom)')
        b.click_text('Create certificate')
        b.wait.until(lambda d: '#/certificates/' in d.current_url and not d.current_url.endswith('/new'))
        b.ready()
        d.execute_script('window.certctrlMark = 1')
        b.click_text('Issue now')
        b.wait_text('main .history-status', 'PENDING')
        b.shot(shots, 'certificate-pending-desktop')
        b.wait_text('main .history-status', 'FAILED', timeout=40)
        check(d.execute_script('return window.certctrlMark') == 1, 'the running order went from PENDING to FAILED '
              'on the page without a reload')
        b.wait_text('main table', '127.0.0.1')
        check(True, 'with the reason in words')
        # Again, and cancelled from the page while it runs.
        b.click_text('Issue now')
        b.wait_text('main .history-status', 'PENDING')
        b.click_text('Cancel')
        b.wait_text('main .notice', 'Cancellation requested')
        b.wait_text('main .history-status', 'CANCELLED', timeout=30)
        check(True, 'a running order is cancelled from the page')
        b.console_clean()

        # Keyboard: from the page's heading (where a page puts the focus), Shift+Tab reaches the navigation
        # and Enter follows a link.
        b.go('#/certificates')
        check(d.switch_to.active_element.tag_name == 'h1', 'a page puts the focus on its heading')
        reached = False
        for _ in range(15):
            active = d.switch_to.active_element
            if (active.get_attribute('href') or '').endswith('#/audit'):
                active.send_keys(Keys.ENTER)
                reached = True
                break
            active.send_keys(Keys.SHIFT, Keys.TAB)
        check(reached, 'Shift+Tab reaches the Audit log link')
        b.wait_h1('Audit log')
        check(b.h1() == 'Audit log' and d.switch_to.active_element.tag_name == 'h1',
              'Enter opens the audit log and focus moves to its heading')
        b.wait_text('main table', 'apikey')
        b.shot(shots, 'audit-desktop')

        # Readable: text against its background meets WCAG AA (4.5:1) in both themes.
        for theme in ('light', 'dark'):
            d.execute_cdp_cmd('Emulation.setEmulatedMedia',
                              {'features': [{'name': 'prefers-color-scheme', 'value': theme}]})
            b.go('#/certificates/' + cert_id)
            low = d.execute_script(CONTRAST_JS)
            check(not low, 'every text meets 4.5:1 contrast in the %s theme%s' % (theme, ': ' + str(low) if low else ''))
        d.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': []})

        # Phone width: one column, no sideways scrolling, the menu opens the navigation.
        d.set_window_size(360, 740)
        for page in ('#/certificates', '#/certificates/' + cert_id, '#/apikeys', '#/certificates/new'):
            b.go(page)
            width = d.execute_script('return [document.documentElement.scrollWidth, window.innerWidth]')
            check(width[0] <= width[1], '%s fits 360 px (%d <= %d)' % (page, width[0], width[1]))
        b.go('#/certificates')
        b.shot(shots, 'certificates-phone')
        menu = d.find_element(By.CSS_SELECTOR, 'button.menu')
        check(menu.is_displayed() and not d.find_element(By.CSS_SELECTOR, 'nav#nav a').is_displayed(),
              'on a phone the navigation is behind the menu button')
        menu.click()
        check(d.find_element(By.CSS_SELECTOR, 'nav#nav a').is_displayed() and menu.get_attribute('aria-expanded') == 'true',
              'the menu button opens it')
        b.shot(shots, 'menu-phone')
        b.go('#/certificates/' + cert_id)
        b.shot(shots, 'certificate-phone')
        # Dark theme (the system's preference).
        d.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': [{'name': 'prefers-color-scheme', 'value': 'dark'}]})
        bg = d.execute_script('return getComputedStyle(document.documentElement).backgroundColor')
        check(bg != 'rgb(246, 247, 249)', 'the dark theme follows the system (%s)' % bg)
        b.shot(shots, 'certificate-phone-dark')
        d.set_window_size(1280, 900)
        b.go('#/certificates')
        b.shot(shots, 'certificates-desktop-dark')
        d.execute_cdp_cmd('Emulation.setEmulatedMedia', {'features': []})
        b.console_clean()

        # Sign out: the session ends; a reload shows the sign-in form.
        d.find_element(By.ID, 'logout').click()
        b.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'form input[name="email"]')))
        d.get(b.url + '/#/certificates')
        b.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'form input[name="email"]')))
        check(True, 'signed out, a reload asks to sign in again')
        b.console_clean()
        return 0
    except Exception as e:  # a failed check, or a wait that timed out
        import traceback
        print('FAIL -', e if isinstance(e, Check) else traceback.format_exc(), flush=True)
        try:
            b.shot(work, 'failure')
            print('screenshot:', os.path.join(work, 'failure.png'), 'url:', d.current_url, flush=True)
            print('console:', d.get_log('browser'), flush=True)
        except Exception:
            pass
        return 1
    finally:
        b.quit()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--url', required=True)
    p.add_argument('--email', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--screenshots', help='save screenshots of the main pages here')
    sys.exit(run(p.parse_args()))


if __name__ == '__main__':
    main()
