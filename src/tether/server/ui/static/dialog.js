// One confirmation dialog for every action: a native <dialog> (focus moves into it, Escape
// closes it), the action runs on Confirm and its error stays in the dialog to be read.

import { clear, h } from './dom.js';

/**
 * Asks to confirm ``title``; ``body`` is a node (e.g. checkboxes). On Confirm,
 * ``action()`` runs; its result is returned. The dialog stays open with the error if it
 * throws; Cancel or Escape returns null.
 */
export function confirmAction({ title, body, confirmLabel = 'Confirm', action, focus }) {
  const dialog = document.getElementById('confirm');
  const form = document.getElementById('confirm-form');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  const error = document.getElementById('confirm-error');
  document.getElementById('confirm-title').textContent = title;
  clear(document.getElementById('confirm-body')).appendChild(body || h('p', {}, 'Are you sure?'));
  error.textContent = '';
  ok.textContent = confirmLabel;
  ok.disabled = false;

  return new Promise((resolve) => {
    const finish = (value) => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onSubmit = async (ev) => {
      ev.preventDefault();
      ok.disabled = true;
      error.textContent = '';
      try {
        finish(await action());
      } catch (e) {
        error.textContent = e.text || e.message || String(e);
        ok.disabled = false;
      }
    };
    const onCancel = () => finish(null);
    const onClose = () => finish(null); // Escape
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    (focus ? dialog.querySelector(focus) : cancel).focus();
  });
}
