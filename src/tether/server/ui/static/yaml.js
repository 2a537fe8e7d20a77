// A Kubernetes object as YAML text, for reading (not for parsing back): keys in their
// order, strings quoted only when YAML would misread them.

const PLAIN = /^[A-Za-z0-9_./@:-][A-Za-z0-9 _./@:,=+-]*$/;
const WORDS = /^(true|false|yes|no|on|off|null|~|[-+]?[0-9.e]+)$/i;

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v !== 'string') return String(v);
  if (v.includes('\n')) return null; // a block
  return PLAIN.test(v) && !WORDS.test(v) && !v.endsWith(':') ? v : JSON.stringify(v);
}

function lines(value, indent, out) {
  const pad = '  '.repeat(indent);
  if (Array.isArray(value)) {
    if (!value.length) { out.push(`${pad}[]`); return; }
    for (const item of value) {
      if (item && typeof item === 'object' && Object.keys(item).length) {
        const sub = [];
        lines(item, indent + 1, sub);
        sub[0] = `${pad}- ${sub[0].trimStart()}`;
        out.push(...sub);
      } else {
        out.push(`${pad}- ${scalarOrEmpty(item)}`);
      }
    }
    return;
  }
  if (value && typeof value === 'object') {
    if (!Object.keys(value).length) { out.push(`${pad}{}`); return; }
    for (const [k, v] of Object.entries(value)) {
      const key = scalar(k) || JSON.stringify(k);
      if (v && typeof v === 'object' && Object.keys(v).length) {
        out.push(`${pad}${key}:`);
        lines(v, indent + 1, out);
      } else if (typeof v === 'string' && v.includes('\n')) {
        out.push(`${pad}${key}: |`);
        for (const l of v.replace(/\n$/, '').split('\n')) out.push(`${pad}  ${l}`);
      } else {
        out.push(`${pad}${key}: ${scalarOrEmpty(v)}`);
      }
    }
    return;
  }
  out.push(`${pad}${scalarOrEmpty(value)}`);
}

function scalarOrEmpty(v) {
  if (Array.isArray(v)) return '[]';
  if (v && typeof v === 'object') return '{}';
  return scalar(v) ?? JSON.stringify(v);
}

export function toYaml(value) {
  const out = [];
  lines(value, 0, out);
  return out.join('\n') + '\n';
}
