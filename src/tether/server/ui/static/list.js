// The Application list: every app the caller may list, filtered and searched in the page,
// kept current by the stream. Rows are built into a DocumentFragment in one pass (no layout
// read per row), so a thousand apps render at once.

import { listAll } from './api.js';
import { announce, badge, clear, h, shortSha, time } from './dom.js';

const SYNC = ['Synced', 'OutOfSync', 'Unknown'];
const HEALTH = ['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown'];
// Kept while the tab lives: back from an app page shows the list as it was filtered.
const filters = { search: '', sync: '', health: '', namespace: '', project: '' };

export function keyOf(app) {
  return `${app.metadata.namespace}/${app.metadata.name}`;
}

/** What a row shows of an AppDoc. */
export function summary(app) {
  const st = app.status || {};
  const history = st.history || [];
  const op = st.operationState || {};
  return {
    name: app.metadata.name,
    namespace: app.metadata.namespace,
    project: (app.spec && app.spec.project) || 'default',
    sync: (st.sync && st.sync.status) || 'Unknown',
    health: (st.health && st.health.status) || 'Unknown',
    revision: (st.sync && st.sync.revision) || '',
    author: (history[0] && history[0].author) || '',
    lastSync: op.finishedAt || (history[0] && history[0].deployedAt) || '',
    operation: op.phase || '',
  };
}

function matches(s, app) {
  if (filters.sync && s.sync !== filters.sync) return false;
  if (filters.health && s.health !== filters.health) return false;
  if (filters.namespace && s.namespace !== filters.namespace) return false;
  if (filters.project && s.project !== filters.project) return false;
  if (!filters.search) return true;
  const needle = filters.search.toLowerCase();
  const src = (app.spec && app.spec.source) || {};
  return [s.name, s.namespace, src.repoURL || '', src.path || '']
    .some((t) => t.toLowerCase().includes(needle));
}

function row(app, s = summary(app)) {
  const href = `#/apps/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.name)}`;
  return h(
    'tr',
    { dataset: { key: keyOf(app), sync: s.sync, health: s.health } },
    h('th', { scope: 'row' }, h('a', { href }, s.name)),
    h('td', {}, s.namespace),
    h('td', {}, s.project),
    h('td', { class: 'c-sync' }, badge(s.sync, 'sync')),
    h('td', { class: 'c-health' }, badge(s.health, 'health')),
    h('td', { class: 'mono', title: s.revision }, shortSha(s.revision)),
    h('td', {}, s.author),
    h('td', {}, time(s.lastSync)),
  );
}

function select(id, label, values, key, onInput) {
  const el = h(
    'select',
    { id, onchange: (ev) => { filters[key] = ev.target.value; onInput(); } },
    h('option', { value: '' }, 'All'),
    values.map((v) => h('option', { value: v, selected: filters[key] === v }, v)),
  );
  return h('div', { class: 'field' }, h('label', { for: id }, label), el);
}

export class ListView {
  constructor(main, onReady = () => {}) {
    this.main = main;
    this.onReady = onReady;
    this.apps = new Map();
    this.rows = new Map();
    this.pending = false;
    this.loaded = false;
    this.stopped = false;
  }

  async start() {
    document.title = 'Applications · tether';
    delete document.documentElement.dataset.listRenderedAt;
    delete document.documentElement.dataset.listFetchedAt;
    this.count = h('p', { id: 'list-count', class: 'muted' }, 'Loading applications…');
    this.filterBar = h('div', { class: 'filters', role: 'search' });
    this.tbody = h('tbody', { id: 'app-rows' });
    const headers = ['Name', 'Namespace', 'Project', 'Sync', 'Health', 'Revision', 'Author',
      'Last sync'];
    this.table = h(
      'table',
      { class: 'apps', id: 'app-list' },
      h('caption', { class: 'sr-only' }, 'Applications'),
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      this.tbody,
    );
    this.main.replaceChildren(h('h1', {}, 'Applications'), this.filterBar, this.count, this.table);
    try {
      const items = await listAll((n, total) => {
        this.count.textContent = `Loading applications… ${n} of ${total}`;
      });
      if (this.stopped) return;
      document.documentElement.dataset.listFetchedAt = performance.now().toFixed(1);
      for (const app of items) this.apps.set(keyOf(app), app);
    } catch (e) {
      if (this.stopped) return;
      this.count.textContent = '';
      this.count.after(h('p', { class: 'error', role: 'alert' }, e.text || e.message));
      return;
    }
    this.loaded = true;
    this.renderFilters();
    this.render();
    document.documentElement.dataset.listRenderedAt = performance.now().toFixed(1);
    this.onReady();
  }

  stop() {
    this.stopped = true;
  }

  /** The whole list read again (after the stream was down: deletions sent no event). */
  async resync() {
    if (!this.loaded) return;
    try {
      const items = await listAll();
      if (this.stopped) return;
      this.apps = new Map(items.map((app) => [keyOf(app), app]));
      this.scheduleRender();
    } catch (e) {
      console.warn('reading the list again failed', e);
    }
  }

  renderFilters() {
    const values = (f) => [...new Set([...this.apps.values()].map((a) => summary(a)[f]))].sort();
    const again = () => this.render();
    const search = h('input', {
      id: 'search', type: 'search', value: filters.search, placeholder: 'name, repository, path',
      oninput: (ev) => { filters.search = ev.target.value; again(); },
    });
    this.filterBar.replaceChildren(
      h('div', { class: 'field grow' }, h('label', { for: 'search' }, 'Search'), search),
      select('f-sync', 'Sync', SYNC, 'sync', again),
      select('f-health', 'Health', HEALTH, 'health', again),
      select('f-namespace', 'Namespace', values('namespace'), 'namespace', again),
      select('f-project', 'Project', values('project'), 'project', again),
    );
  }

  /** Every row anew, in one fragment; sorted by namespace and name as the API sorts. */
  render() {
    this.pending = false;
    const frag = document.createDocumentFragment();
    this.rows = new Map();
    const keys = [...this.apps.keys()].sort();
    let shown = 0;
    for (const key of keys) {
      const app = this.apps.get(key);
      const s = summary(app);
      if (!matches(s, app)) continue;
      const tr = row(app, s);
      this.rows.set(key, tr);
      frag.appendChild(tr);
      shown += 1;
    }
    clear(this.tbody).appendChild(frag);
    const total = this.apps.size;
    this.count.textContent = shown === total
      ? `${total} application${total === 1 ? '' : 's'}`
      : `${shown} of ${total} applications shown`;
    if (total === 0) {
      this.tbody.appendChild(h('tr', {}, h('td', { colspan: '8', class: 'muted' },
        'No applications you may list.')));
    }
  }

  scheduleRender() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => this.render());
  }

  /** A change from the stream: the row is replaced in place when it can be. */
  onChange({ type, application }) {
    if (!this.loaded) return;
    const key = keyOf(application);
    const old = this.apps.get(key);
    if (type === 'DELETED') {
      if (this.apps.delete(key)) this.scheduleRender();
      return;
    }
    if (old && old.metadata.resourceVersion === application.metadata.resourceVersion) return;
    this.apps.set(key, application);
    const tr = this.rows.get(key);
    const s = summary(application);
    if (!old || !tr || !matches(s, application)) {
      this.scheduleRender();
      return;
    }
    const before = summary(old);
    const fresh = row(application, s);
    tr.replaceWith(fresh);
    this.rows.set(key, fresh);
    if (before.sync !== s.sync || before.health !== s.health) {
      announce(`${s.name}: ${s.sync}, ${s.health}`);
    }
  }
}
