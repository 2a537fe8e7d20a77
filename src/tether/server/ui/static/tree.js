// An app's resource tree as nested lists: what the app manages at the top, what those
// objects own (ReplicaSet, Pod, Job...) below them, hooks and pruned objects marked. Each
// node is a button that opens the resource's live manifest and diff.

import { badge, h } from './dom.js';

export function nodeKey(n) {
  return `${n.group}/${n.kind}/${n.namespace}/${n.name}`;
}

function label(n, onSelect) {
  const marks = [];
  if (n.hook) marks.push(h('span', { class: 'mark hook' }, 'hook'));
  if (n.pruned) marks.push(h('span', { class: 'mark pruned' }, 'pruned'));
  if (!n.managed && !n.hook && !n.pruned) marks.push(h('span', { class: 'mark owned' }, 'owned'));
  return h(
    'button',
    {
      type: 'button',
      class: 'node',
      dataset: { kind: n.kind, name: n.name },
      'aria-label': `${n.kind} ${n.name}`,
      onclick: () => onSelect(n),
    },
    h('span', { class: 'kind' }, n.kind),
    h('span', { class: 'name' }, n.name),
    n.status ? badge(n.status, 'sync') : null,
    n.health ? badge(n.health.status, 'health') : null,
    marks,
  );
}

/** ``nodes`` as a tree; a node with several parents shows under the first one found. */
export function renderTree(nodes, onSelect) {
  const byUid = new Map();
  for (const n of nodes) if (n.uid) byUid.set(n.uid, n);
  const children = new Map();
  const roots = [];
  for (const n of nodes) {
    const parent = (n.parents || []).find((p) => byUid.has(p));
    if (parent) {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(n);
    } else {
      roots.push(n);
    }
  }
  const item = (n) => {
    const kids = n.uid ? children.get(n.uid) || [] : [];
    return h(
      'li',
      { class: `tree-node${n.pruned ? ' is-pruned' : ''}${n.hook ? ' is-hook' : ''}` },
      label(n, onSelect),
      kids.length ? h('ul', {}, kids.map(item)) : null,
    );
  };
  if (!roots.length) return h('p', { class: 'muted' }, 'No resources yet.');
  return h('ul', { class: 'tree', 'aria-label': 'Resources' }, roots.map(item));
}

/** A unified diff, one line per element, coloured by its first character (+, -, @). */
export function renderDiff(text) {
  if (!text) return h('p', { class: 'muted' }, 'No difference with Git.');
  const lines = text.split('\n').map((line) => {
    const c = line[0];
    const cls = c === '+' ? 'add' : c === '-' ? 'del' : c === '@' ? 'hunk' : '';
    return h('span', { class: `line ${cls}` }, `${line}\n`);
  });
  return h('pre', { class: 'diff', tabindex: '0' }, lines);
}
