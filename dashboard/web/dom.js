// dom.js — building DOM nodes without markup strings, and formatting values.
// Every stored string reaches the page through createTextNode or an attribute
// setter, never through HTML parsing (no innerHTML anywhere in the app).

const SVG_NS = 'http://www.w3.org/2000/svg';

function s_apply(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the CSP
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) { if (typeof v === 'function') el.addEventListener(k.slice(2), v); }
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'open') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function s_append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) s_append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h('td', {class: 'num'}, 'text', child...): an HTML element.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  s_apply(el, attrs);
  s_append(el, children);
  return el;
}

// s('rect', {x: 1}): an SVG element.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  s_apply(el, attrs);
  s_append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const fmtInt = new Intl.NumberFormat('en-US');

// A value as one line of text, for table cells. Numbers keep their exact
// spelling (parameters are what the user typed); results may be shortened
// with fmtResult.
export function fmtValue(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'object' && '$blob' in v) return `<blob ${v.$blob} bytes>`;
  if (typeof v === 'object' && '$binary' in v) return '<blob>';
  return JSON.stringify(v);
}

export function fmtResult(v) {
  if (typeof v === 'number' && !Number.isInteger(v)) {
    const p = Number(v.toPrecision(6));
    return String(p);
  }
  return fmtValue(v);
}

const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

export function fmtDate(v) {
  if (typeof v !== 'string' || !ISO_RE.test(v)) return fmtValue(v);
  const d = new Date(v);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtSeconds(v) {
  if (typeof v !== 'number') return fmtValue(v);
  if (v < 1) return `${(v * 1000).toPrecision(3)} ms`;
  if (v < 600) return `${v.toFixed(3)} s`;
  return `${(v / 60).toFixed(1)} min`;
}

export function isNumeric(v) {
  return typeof v === 'number';
}

// Plain JSON text of a value, for <pre> blocks.
export function jsonText(v) {
  return JSON.stringify(v, null, 2);
}

// Flattens a document into [key.path, value] pairs (arrays of scalars stay whole).
export function flatten(v, prefix = '', out = []) {
  if (v && typeof v === 'object' && !Array.isArray(v) && !('$blob' in v) && !('$binary' in v)) {
    const keys = Object.keys(v);
    if (keys.length === 0 && prefix) out.push([prefix, '{}']);
    for (const k of keys) flatten(v[k], prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, v]);
  }
  return out;
}

// Series colours (Tableau 10), readable on light and dark backgrounds.
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
  '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// An error line in container (aborted requests are not errors).
export function showError(container, e) {
  if (e && e.name === 'AbortError') return null;
  const el = h('div', { class: 'error' }, e && e.message ? e.message : String(e));
  container.append(el);
  return el;
}
