// Calls to the certctrl API with the session cookie. Every answer is {data} or {error: {code, key, what,
// params}}; failures are thrown as ApiError, whose message is words for people, never raw JSON.

export class ApiError extends Error {
  constructor(status, error) {
    super(describe(status, error));
    this.status = status;
    this.code = error && error.code;
    this.key = error && error.key;
    this.params = (error && error.params) || {};
    this.field = this.params.field || null;
  }
}

function describe(status, error) {
  if (error && typeof error.what === 'string' && error.what) return error.what;
  if (status === 0) return 'The server could not be reached. Check your connection and try again.';
  if (status === 401) return 'Your session has ended. Sign in again.';
  if (status === 403) return 'You are not allowed to do this.';
  if (status === 404) return 'Not found: it may have been deleted.';
  if (status === 429) return 'Too many requests: wait a moment and try again.';
  if (status >= 500) return 'The server had a problem (' + status + '). Try again later.';
  return 'The request failed (' + status + ').';
}

let session = null;  // {id, email, name}
const listeners = new Set();

export function currentUser() { return session; }
export function onSessionEnd(fn) { listeners.add(fn); }

/// One request. `body` (an object) is sent as JSON. Resolves to the whole answer ({data, meta, pagination}).
export async function call(method, path, body) {
  const init = {method, credentials: 'same-origin', headers: {Accept: 'application/json'}};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, null);
  }
  let parsed = null;
  if (res.status !== 204) {
    parsed = await res.json().catch(() => null);
  }
  if (!res.ok || (parsed && parsed.error && res.status !== 200)) {
    const err = new ApiError(res.status, parsed && parsed.error);
    if (res.status === 401 && session) {
      session = null;
      for (const fn of listeners) fn();
    }
    throw err;
  }
  return parsed || {};
}

/// The signed-in user's path prefix: /apiv1/users/<id>.
export function mine(path) {
  return '/apiv1/users/' + session.id + path;
}

export async function get(path) { return (await call('GET', mine(path))).data; }
export async function post(path, body) { return (await call('POST', mine(path), body === undefined ? {} : body)).data; }
export async function put(path, body) { return (await call('PUT', mine(path), body)).data; }
export async function del(path) { return (await call('DELETE', mine(path))).data; }

/// A page of a list: {items, cursor, hasMore, total}.
export async function list(path, {limit = 25, cursor = null, total = false, params = {}} = {}) {
  const q = new URLSearchParams({limit: String(limit), ...params});
  if (cursor) q.set('cursor', cursor);
  if (total) q.set('total', 'true');
  const r = await call('GET', mine(path) + (path.includes('?') ? '&' : '?') + q);
  const p = r.pagination || {};
  return {items: r.data || [], cursor: p.cursor || null, hasMore: !!p.has_more,
          total: r.meta && typeof r.meta.total === 'number' ? r.meta.total : null};
}

/// Every item of a (small) list, following the cursor.
export async function all(path, limit = 200) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < 50; i++) {
    const page = await list(path, {limit, cursor});
    out.push(...page.items);
    if (!page.hasMore || !page.cursor) break;
    cursor = page.cursor;
  }
  return out;
}

/// The session: resolves to the user, or null when not signed in.
export async function status() {
  const r = await call('GET', '/auth/status');
  session = (r.data && r.data.user) || null;
  return session;
}

export async function login(email, password) {
  await call('POST', '/auth/general', {action: 'login', email, password});
  return status();
}

export async function logout() {
  try {
    await call('POST', '/auth/logout', {});
  } finally {
    session = null;
  }
}
