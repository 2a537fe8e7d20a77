// Talking to /api/v1: JSON with the session cookie (sent by the browser, same origin), the
// CSRF token on every change, errors as the API words them, and the stream of app changes.

let csrfToken = ''; // in memory only: never in localStorage, gone with the tab

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the server answered ${status}`);
    this.status = status;
    this.reason = (body && body.reason) || '';
    this.hint = (body && body.hint) || '';
  }

  /** The message and what to do, for a person. */
  get text() {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

/** Fired on window when the API says the session is gone (401). */
export const LOGGED_OUT = 'tether:logged-out';

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: `cannot reach the tether server: ${e.message}` });
  }
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (resp.status === 401 && path !== '/api/v1/session') {
      window.dispatchEvent(new CustomEvent(LOGGED_OUT, { detail: err.message }));
    }
    throw err;
  }
  return data;
}

export function appPath(namespace, name, sub = '') {
  const base = `/api/v1/applications/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  return sub ? `${base}/${sub}` : base;
}

export async function login(token) {
  const session = await api('POST', '/api/v1/session', { token });
  csrfToken = session.csrfToken || '';
  return session;
}

/** The session of this browser (a reloaded page), or null when there is none. */
export async function currentSession() {
  try {
    const session = await api('GET', '/api/v1/session');
    csrfToken = session.csrfToken || '';
    return session;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function logout() {
  try {
    await api('DELETE', '/api/v1/session');
  } finally {
    csrfToken = '';
  }
}

/** Every Application the caller may list, page by page (``continue``). */
export async function listAll(onPage) {
  const items = [];
  let token = '';
  do {
    const q = new URLSearchParams({ limit: '5000' }); // the most a page holds: fewer round trips
    if (token) q.set('continue', token);
    const page = await api('GET', `/api/v1/applications?${q}`);
    items.push(...page.items);
    if (onPage) onPage(items.length, page.total);
    token = page.continue || '';
  } while (token);
  return items;
}

/**
 * The stream of Application changes: ``onChange({type, application})`` for each;
 * ``onState('live' | 'reconnecting' | 'ended')``. EventSource reconnects by itself after a
 * dropped connection; when it gives up (an answer other than 200, e.g. 401), we check the
 * session and open a new one after a pause, unless the session is gone.
 */
export function watchApplications(onChange, onState) {
  let source = null;
  let stopped = false;
  let delay = 1000;
  const open = () => {
    if (stopped) return;
    source = new EventSource('/api/v1/stream/applications', { withCredentials: true });
    source.addEventListener('open', () => { delay = 1000; onState('live'); });
    source.addEventListener('application', (ev) => {
      try {
        onChange(JSON.parse(ev.data));
      } catch (e) {
        console.warn('unreadable stream event', e);
      }
    });
    source.addEventListener('end', () => {
      source.close();
      onState('ended');
      window.dispatchEvent(new CustomEvent(LOGGED_OUT, { detail: 'the session ended' }));
    });
    source.addEventListener('error', () => {
      onState('reconnecting');
      if (source.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      setTimeout(async () => {
        if (stopped) return;
        const session = await currentSession().catch(() => undefined);
        if (session === null) {
          window.dispatchEvent(new CustomEvent(LOGGED_OUT, { detail: 'the session ended' }));
          return;
        }
        open();
      }, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  open();
  return () => { stopped = true; if (source) source.close(); };
}
