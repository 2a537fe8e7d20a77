// One Application: its summary, the actions on it (each confirmed in a dialog), its
// resource tree with each resource's manifest and diff, and its history, drift and events.
// The summary follows the stream; the tree and history are read again when the app changes.

import { api, appPath } from './api.js';
import { announce, badge, extLink, h, shortSha, table, time } from './dom.js';
import { confirmAction } from './dialog.js';
import { nodeKey, renderDiff, renderTree } from './tree.js';
import { toYaml } from './yaml.js';
import { keyOf } from './list.js';

const RELOAD_DELAY = 1000; // ms: a burst of changes reads the tree (and history) once

function section(id, title, ...content) {
  return h('section', { id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, title),
    ...content);
}

function pair(term, ...value) {
  return [h('dt', {}, term), h('dd', {}, ...value)];
}

const LINK_PREFIXES = ['link.tether.dev/', 'link.argocd.argoproj.io/'];

/** [title, url] of the app's link annotations (Argo CD's ``link.argocd.argoproj.io/<title>``
 * too, so ported manifests keep theirs); extLink shows a non-http(s) one as text. */
function links(app) {
  const annotations = (app.metadata && app.metadata.annotations) || {};
  return Object.entries(annotations).flatMap(([key, url]) => {
    const prefix = LINK_PREFIXES.find((p) => key.startsWith(p));
    return prefix ? [[key.slice(prefix.length), url]] : [];
  });
}

function failed(e) {
  return h('p', { class: 'error', role: 'alert' }, e.text || e.message);
}

export class AppView {
  constructor(main, namespace, name, onReady = () => {}) {
    this.main = main;
    this.onReady = onReady;
    this.namespace = namespace;
    this.name = name;
    this.app = null;
    this.history = [];
    this.timer = null;
    this.selected = null;
    this.stopped = false;
  }

  path(sub) {
    return appPath(this.namespace, this.name, sub);
  }

  async start() {
    document.title = `${this.name} · tether`;
    this.summaryEl = h('div', { id: 'summary' });
    this.actionsEl = h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Actions' });
    this.resultEl = h('div', { id: 'result', class: 'result' });
    this.treeEl = h('div', { id: 'tree' }, h('p', { class: 'muted' }, 'Loading…'));
    this.panelEl = h('div', { id: 'panel', class: 'panel', hidden: true });
    this.historyEl = h('div', { id: 'history' });
    this.driftEl = h('div', { id: 'drift' });
    this.eventsEl = h('div', { id: 'events' });
    this.main.replaceChildren(
      h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Applications'),
        ` / ${this.namespace} / `),
      h('h1', {}, this.name),
      this.actionsEl,
      this.resultEl,
      this.summaryEl,
      section('resources', 'Resources', h('div', { class: 'split' }, this.treeEl, this.panelEl)),
      section('history-s', 'History', this.historyEl),
      section('drift-s', 'Drift timeline', this.driftEl),
      section('events-s', 'Events', this.eventsEl),
    );
    try {
      this.app = await api('GET', this.path());
    } catch (e) {
      if (this.stopped) return; // logged out meanwhile: the login page is shown
      this.main.replaceChildren(h('h1', {}, this.name), failed(e),
        h('p', {}, h('a', { href: '#/' }, 'Back to the applications')));
      return;
    }
    this.renderActions();
    this.renderSummary();
    this.onReady();
    await this.loadDetails();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The app read again (after the stream was down). */
  async resync() {
    if (!this.app) return;
    try {
      const app = await api('GET', this.path());
      this.onChange({ type: 'MODIFIED', application: app });
    } catch (e) {
      this.resultEl.replaceChildren(failed(e));
    }
  }

  onChange({ type, application }) {
    if (keyOf(application) !== `${this.namespace}/${this.name}` || !this.app) return;
    if (type === 'DELETED') {
      this.resultEl.replaceChildren(h('p', { class: 'error', role: 'alert' },
        'This application was deleted.'));
      return;
    }
    if (application.metadata.resourceVersion === this.app.metadata.resourceVersion) return;
    const before = this.status();
    this.app = application;
    this.renderSummary();
    this.renderActions();
    const after = this.status();
    if (before !== after) announce(`${this.name}: ${after}`);
    if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = null; this.loadDetails(); }, RELOAD_DELAY);
    }
  }

  status() {
    const st = this.app.status || {};
    const op = st.operationState || {};
    return [(st.sync || {}).status || 'Unknown', (st.health || {}).status || 'Unknown',
      op.phase ? `operation ${op.phase}` : ''].filter(Boolean).join(', ');
  }

  async loadDetails() {
    if (this.stopped) return;
    const [tree, history, drift, events] = await Promise.allSettled([
      api('GET', this.path('tree')),
      api('GET', this.path('history')),
      api('GET', this.path('drift')),
      api('GET', this.path('events')),
    ]);
    if (this.stopped) return;
    this.treeEl.replaceChildren(tree.status === 'fulfilled'
      ? renderTree(tree.value.nodes, (n) => this.openResource(n)) : failed(tree.reason));
    if (history.status === 'fulfilled') {
      this.history = history.value.items;
      this.historyEl.replaceChildren(this.historyTable());
      this.renderSummary(); // the commit link comes from the history
    } else {
      this.historyEl.replaceChildren(failed(history.reason));
    }
    this.driftEl.replaceChildren(drift.status === 'fulfilled'
      ? this.driftTable(drift.value.items) : failed(drift.reason));
    this.eventsEl.replaceChildren(events.status === 'fulfilled'
      ? this.eventsTable(events.value.items) : failed(events.reason));
    if (this.selected) this.openResource(this.selected, false);
  }

  renderSummary() {
    const app = this.app;
    const spec = app.spec || {};
    const st = app.status || {};
    const sources = spec.sources && spec.sources.length ? spec.sources : [spec.source || {}];
    const dest = spec.destination || {};
    const revision = (st.sync || {}).revision || '';
    const entry = this.history.find((e) => e.revision === revision && e.commitURL);
    const op = st.operationState || {};
    const dl = h('dl', { class: 'summary' },
      sources.map((s, i) => [
        pair(sources.length > 1 ? `Repository ${i + 1}` : 'Repository',
          extLink(s.repoURL || '', s.repoURL || '—')),
        pair('Path', s.path || s.chart || '.'),
        pair('Target', s.targetRevision || 'HEAD'),
      ]),
      pair('Destination', `${dest.server || dest.name || 'in-cluster'} / ${dest.namespace || '—'}`),
      pair('Project', spec.project || 'default'),
      pair('Sync', badge((st.sync || {}).status, 'sync')),
      pair('Health', badge((st.health || {}).status, 'health'),
        (st.health || {}).message ? ` ${st.health.message}` : ''),
      pair('Revision', entry ? extLink(entry.commitURL, shortSha(revision))
        : h('span', { class: 'mono', title: revision }, shortSha(revision) || '—')),
      pair('Operation', op.phase ? badge(op.phase, 'operation') : '—',
        op.message ? ` ${op.message}` : '', op.finishedAt ? [' (', time(op.finishedAt), ')'] : ''),
      links(app).length ? pair('Links', links(app).map(([title, url], i) =>
        [i ? ' · ' : '', extLink(url, title)])) : null,
      spec.pin ? pair('Pinned', `${(spec.pin.revisions || []).map(shortSha).join(', ')} by ` +
        `${spec.pin.by || '?'}${spec.pin.reason ? `: ${spec.pin.reason}` : ''}`) : null,
    );
    const conditions = st.conditions || [];
    const listed = conditions.length ? [h('ul', { class: 'conditions', 'aria-label': 'Conditions' },
      conditions.map((c) => h('li', {}, h('strong', {}, c.type), `: ${c.message || ''}`)))] : [];
    this.summaryEl.replaceChildren(dl, ...listed);
  }

  renderActions() {
    const button = (label, onclick, attrs = {}) =>
      h('button', { type: 'button', onclick, ...attrs }, label);
    const running = ['Running', 'Terminating'].includes(
      ((this.app.status || {}).operationState || {}).phase) || Boolean(this.app.operation);
    this.actionsEl.replaceChildren(
      button('Sync', () => this.sync(), { id: 'act-sync', class: 'primary' }),
      button('Refresh', () => this.refresh(), { id: 'act-refresh' }),
      button('Terminate', () => this.terminate(), { id: 'act-terminate', disabled: !running }),
      button('Roll back', () => this.rollback(), { id: 'act-rollback' }),
      (this.app.spec || {}).pin
        ? button('Unpin', () => this.unpin(), { id: 'act-unpin' })
        : button('Pin', () => this.pin(), { id: 'act-pin' }),
    );
  }

  /** Shows the outcome of an action and says it to screen readers. */
  done(message, detail) {
    const more = detail ? [h('pre', { class: 'manifest' }, detail)] : [];
    this.resultEl.replaceChildren(h('p', { class: 'ok' }, message), ...more);
    announce(message);
  }

  async sync() {
    const prune = h('input', { type: 'checkbox', id: 'sync-prune' });
    const dry = h('input', { type: 'checkbox', id: 'sync-dry-run' });
    const body = h('div', {},
      h('p', {}, `Sync ${this.namespace}/${this.name} to the revision Git holds now?`),
      h('div', { class: 'check' }, prune, h('label', { for: 'sync-prune' },
        'Prune: delete objects that are no longer in Git')),
      h('div', { class: 'check' }, dry, h('label', { for: 'sync-dry-run' },
        'Dry run: show what would change, change nothing')));
    const answer = await confirmAction({
      title: 'Sync', body, confirmLabel: 'Sync', focus: '#sync-prune',
      action: () => api('POST', this.path('sync'), { prune: prune.checked, dryRun: dry.checked }),
    });
    if (!answer) return;
    if (answer.outcome) {
      this.done('Dry run: nothing was changed.', toYaml(answer.outcome));
    } else {
      const notices = (answer.notices || []).join(' ');
      this.done(`Sync requested (operation ${answer.operation.id}).${notices ? ` ${notices}` : ''}`);
    }
  }

  async refresh() {
    const answer = await confirmAction({
      title: 'Refresh', confirmLabel: 'Refresh',
      body: h('p', {}, 'Read Git again and compare now? Nothing in the cluster changes.'),
      action: () => api('POST', this.path('refresh')),
    });
    if (answer) this.done('Refresh requested.');
  }

  async terminate() {
    const answer = await confirmAction({
      title: 'Terminate', confirmLabel: 'Terminate',
      body: h('p', {}, 'Stop the running operation? What it applied stays applied.'),
      action: () => api('DELETE', this.path('operation')),
    });
    if (answer) this.done(`Operation ${answer.operationState.phase}.`);
  }

  async rollback() {
    const to = h('input', { id: 'rollback-to', type: 'text', autocomplete: 'off' });
    const body = h('div', {},
      h('p', {}, 'Write a commit to Git that restores an earlier revision, then sync it.'),
      h('label', { for: 'rollback-to' }, 'History ID or commit (empty: the previous sync)'), to);
    const answer = await confirmAction({
      title: 'Roll back', confirmLabel: 'Roll back', focus: '#rollback-to',
      action: () => api('POST', this.path('rollback'), to.value.trim() ? { to: to.value.trim() } : {}),
    });
    if (answer) this.done('Rolled back.', toYaml(answer));
  }

  async pin() {
    const rev = h('input', { id: 'pin-revision', type: 'text', required: true, autocomplete: 'off' });
    const reason = h('input', { id: 'pin-reason', type: 'text', autocomplete: 'off' });
    const body = h('div', {},
      h('p', {}, 'Hold the app at a revision, whatever Git’s branch says, until unpinned.'),
      h('label', { for: 'pin-revision' }, 'Revision (commit, tag, branch or history ID)'), rev,
      h('label', { for: 'pin-reason' }, 'Reason'), reason);
    const answer = await confirmAction({
      title: 'Pin', confirmLabel: 'Pin', focus: '#pin-revision',
      action: () => api('POST', this.path('pin'), { revision: rev.value.trim(), reason: reason.value }),
    });
    if (answer) this.done(`Pinned at ${(answer.pin.revisions || []).map(shortSha).join(', ')}.`);
  }

  async unpin() {
    const answer = await confirmAction({
      title: 'Unpin', confirmLabel: 'Unpin',
      body: h('p', {}, 'Let the app follow its target revision again?'),
      action: () => api('DELETE', this.path('pin')),
    });
    if (answer) this.done('Unpinned.');
  }

  async openResource(n, focus = true) {
    this.selected = n;
    const q = new URLSearchParams({ group: n.group, version: n.version, kind: n.kind,
      namespace: n.namespace, name: n.name });
    const heading = h('h3', { id: 'panel-h', tabindex: '-1' }, `${n.kind} ${n.name}`);
    const close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close',
      onclick: () => { this.selected = null; this.panelEl.hidden = true; } }, '×');
    this.panelEl.hidden = false;
    if (focus) this.panelEl.replaceChildren(close, heading, h('p', { class: 'muted' }, 'Loading…'));
    let doc;
    try {
      doc = await api('GET', `${this.path('resource')}?${q}`);
    } catch (e) {
      this.panelEl.replaceChildren(close, heading, failed(e));
      return;
    }
    if (this.stopped || !this.selected || nodeKey(this.selected) !== nodeKey(n)) return;
    this.panelEl.replaceChildren(
      close, heading,
      h('h4', {}, 'Diff with Git'), n.managed ? renderDiff(doc.diff)
        : h('p', { class: 'muted' }, 'Not in Git: created by the cluster for an object above.'),
      h('h4', {}, 'Live manifest'),
      doc.live ? h('pre', { class: 'manifest', tabindex: '0' }, toYaml(doc.live))
        : h('p', { class: 'muted' }, 'Not in the cluster.'),
    );
    if (focus) heading.focus();
  }

  historyTable() {
    if (!this.history.length) return h('p', { class: 'muted' }, 'No syncs yet.');
    return table('History', ['ID', 'Revision', 'Deployed', 'Result', 'Trigger', 'Author',
      'By', 'Message'], this.history.map((e) => [
      String(e.id ?? ''),
      e.commitURL ? extLink(e.commitURL, shortSha(e.revision))
        : h('span', { class: 'mono' }, shortSha(e.revision)),
      time(e.deployedAt), badge(e.result, 'result'), e.trigger || '', e.author || '',
      e.initiatedBy || '', e.message || '',
    ]), { class: 'history' });
  }

  driftTable(items) {
    if (!items.length) return h('p', { class: 'muted' }, 'No drift recorded.');
    return table('Drift timeline', ['When', 'Object', 'Fields', 'Changed by', 'Put back'],
      items.map((d) => {
        const o = d.object || {};
        return [
          time(d.time), `${o.kind || '?'} ${o.namespace ? `${o.namespace}/` : ''}${o.name || ''}`,
          (d.fields || []).join(', '), d.manager || '',
          d.corrected ? [time(d.corrected), d.correctedBy ? ` by ${d.correctedBy}` : '']
            : d.selfHealStopped ? 'self-heal stopped' : 'not yet',
        ];
      }), { class: 'drift' });
  }

  eventsTable(items) {
    if (!items.length) return h('p', { class: 'muted' }, 'No events.');
    return table('Events', ['Type', 'Reason', 'Object', 'Message', 'Count', 'Last seen'],
      items.map((e) => [
        badge(e.type === 'Warning' ? 'Warning' : 'Normal', 'type'), e.reason || '',
        `${(e.object || {}).kind || ''} ${(e.object || {}).name || ''}`, e.message || '',
        String(e.count ?? ''), time(e.lastTimestamp || e.firstTimestamp),
      ]), { class: 'events' });
  }
}
