// Building the page: elements with text set as text (never parsed as HTML), links only for
// http(s) URLs, the status badges and the polite announcements a screen reader reads.

/** h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, [more]) -> the element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'href') {
      el.setAttribute('href', value); // callers pass '#/...' routes or safeHref() results only
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** The URL if it is an absolute http: or https: URL, else null: repository URLs and
 * annotations come from users, and a javascript: or data: URL must never become a link. */
export function safeHref(url) {
  if (typeof url !== 'string' || !url) return null;
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
}

/** A link to an outside page when the URL is http(s), else the text alone. */
export function extLink(url, text) {
  const href = safeHref(url);
  const label = text === undefined ? String(url || '') : text;
  if (!href) return h('span', { class: 'nolink' }, label);
  return h('a', { href, rel: 'noopener noreferrer', target: '_blank' }, label);
}

const SYMBOLS = {
  Synced: '✓', OutOfSync: '↻', Healthy: '♥', Progressing: '◔', Degraded: '✕',
  Suspended: '⏸', Missing: '?', Unknown: '?', Succeeded: '✓', Failed: '✕', Error: '✕',
  Running: '◔', Terminating: '◔',
};

/** A status as a word with a symbol and a colour: never colour alone. */
export function badge(value, what = '') {
  const text = value || 'Unknown';
  return h(
    'span',
    { class: `badge st-${text.replace(/[^A-Za-z]/g, '')}`, title: what ? `${what}: ${text}` : null },
    h('span', { 'aria-hidden': 'true' }, (SYMBOLS[text] || '•') + ' '),
    text,
  );
}

export function shortSha(rev) {
  return /^[0-9a-f]{40}$/.test(rev || '') ? rev.slice(0, 7) : rev || '';
}

// One formatter for every time shown: creating one per call (toLocaleString) is slow.
const LOCAL_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** An ISO time as the browser's local time, short; the ISO text stays in the element. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, iso);
  return h('time', { datetime: iso, title: iso }, LOCAL_TIME.format(d));
}

/** Says ``message`` to screen readers (the polite live region) without moving focus. */
export function announce(message) {
  const region = document.getElementById('status');
  if (!region) return;
  region.textContent = '';
  // A new text node after a tick is read even when the message repeats.
  setTimeout(() => { region.textContent = message; }, 30);
}

/** A table with a header row (th scope=col) and a body; ``rows`` are arrays of cells. */
export function table(caption, headers, rows, attrs = {}) {
  return h(
    'table',
    attrs,
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))),
  );
}
