// The login page: a token the cluster trusts (a ServiceAccount token or an OIDC id-token)
// is exchanged for a session cookie; the token itself is not kept by the page.

import { login } from './api.js';
import { announce, h } from './dom.js';

export function renderLogin(main, { onLoggedIn, message }) {
  document.title = 'Log in · tether';
  const error = h('p', { class: 'error', role: 'alert', id: 'login-error' }, message || '');
  const token = h('textarea', {
    id: 'token', name: 'token', rows: '5', required: true, autocomplete: 'off',
    spellcheck: 'false', 'aria-describedby': 'token-help',
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: async (ev) => {
        ev.preventDefault();
        submit.disabled = true;
        error.textContent = '';
        try {
          const session = await login(token.value.trim());
          token.value = '';
          announce(`Logged in as ${session.username}`);
          onLoggedIn(session);
        } catch (e) {
          error.textContent = e.text || e.message;
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h1', {}, 'Log in to tether'),
    h('label', { for: 'token' }, 'Token'),
    token,
    h(
      'p',
      { id: 'token-help', class: 'muted' },
      'A token the cluster trusts: a ServiceAccount token (kubectl create token NAME) or ' +
        'your OIDC id-token. You see and change only what Kubernetes RBAC lets its identity.',
    ),
    error,
    submit,
  );
  main.replaceChildren(form);
  token.focus();
}
