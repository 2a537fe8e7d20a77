// The page's router and shared state: who is logged in, the one stream of Application
// changes, and which view (login, list, app) is shown for the URL's #fragment.

import { LOGGED_OUT, currentSession, logout, watchApplications } from './api.js';
import { announce, clear, h } from './dom.js';
import { renderLogin } from './login.js';
import { ListView } from './list.js';
import { AppView } from './app-page.js';

const state = {
  session: null,
  stopStream: null,
  view: null, // the shown view: gets onChange(event) from the stream, stop() when left
  streamState: '',
};

function main() {
  return document.getElementById('main');
}

function renderWho() {
  const who = clear(document.getElementById('who'));
  if (!state.session) return;
  who.append(
    h('span', { class: 'stream', id: 'stream-state', title: 'live updates' },
      state.streamState === 'live' ? '● live' : '○ reconnecting'),
    h('span', { class: 'user' }, state.session.username),
    h('button', { type: 'button', id: 'logout', onclick: onLogout }, 'Log out'),
  );
}

function startStream() {
  if (state.stopStream) return;
  state.stopStream = watchApplications(
    (event) => { if (state.view && state.view.onChange) state.view.onChange(event); },
    (s) => {
      // Back after a dropped connection: what was deleted meanwhile sent no event.
      if (s === 'live' && state.streamState === 'reconnecting' && state.view && state.view.resync) {
        state.view.resync();
      }
      state.streamState = s;
      const el = document.getElementById('stream-state');
      if (el) el.textContent = s === 'live' ? '● live' : '○ reconnecting';
    },
  );
}

function stopStream() {
  if (state.stopStream) state.stopStream();
  state.stopStream = null;
}

function showLogin(message) {
  stopStream();
  if (state.view && state.view.stop) state.view.stop();
  state.view = null;
  state.session = null;
  renderWho();
  renderLogin(main(), {
    message,
    onLoggedIn: (session) => {
      state.session = session;
      renderWho();
      route();
    },
  });
}

async function onLogout() {
  try {
    await logout();
  } catch (e) {
    console.warn('logout failed', e);
  }
  announce('Logged out');
  showLogin('');
}

/** #/ -> the list; #/apps/NS/NAME -> an app; anything else -> the list. */
function route() {
  if (!state.session) return;
  if (state.view && state.view.stop) state.view.stop();
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  // The stream opens once the first view has its data: its snapshot of every app would
  // otherwise compete with the view's own first request.
  const ready = () => startStream();
  if (parts[0] === 'apps' && parts.length >= 3) {
    state.view = new AppView(main(), parts[1], parts[2], ready);
  } else {
    state.view = new ListView(main(), ready);
  }
  state.view.start();
}

async function boot() {
  window.addEventListener(LOGGED_OUT, (ev) => {
    if (state.session) showLogin(`You were logged out: ${ev.detail}. Log in again.`);
  });
  window.addEventListener('hashchange', () => {
    route();
    main().focus({ preventScroll: true });
  });
  let session = null;
  try {
    session = await currentSession();
  } catch (e) {
    main().replaceChildren(h('p', { class: 'error', role: 'alert' }, e.text || e.message));
    return;
  }
  if (!session) {
    showLogin('');
    return;
  }
  state.session = session;
  renderWho();
  route();
}

boot();
