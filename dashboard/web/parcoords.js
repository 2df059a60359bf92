// parcoords.js — parallel coordinates of the filtered trials on a canvas:
// one vertical axis per parameter and one for the result (numbers linear,
// anything else categorical), one line per trial coloured by its result;
// dragging along an axis brushes a range, and lines outside every brush fade.

import { h, clear, fmtValue, fmtResult, fmtInt, cssVar, showError } from './dom.js';
import { api } from './api.js';

const HEIGHT = 300;
const TOP = 34;
const BOTTOM = 40; // room for the min label and the row of missing values
const SIDE = 70;
const MISSING = -1; // normalised position of a missing value (drawn below the axis)
const LIMIT = 10000;
const BUCKETS = 24; // colour buckets: one canvas path per bucket

// Viridis-like ramp, low results dark blue, high yellow.
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

function rampColor(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const c = RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function compareCats(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return fmtValue(a) < fmtValue(b) ? -1 : fmtValue(a) > fmtValue(b) ? 1 : 0;
}

// An axis over values: {name, kind, min, max, cats, pos(v) -> 0..1 or MISSING}.
function makeAxis(name, values) {
  const present = values.filter((v) => v !== null && v !== undefined);
  const numeric = present.length > 0 && present.every((v) => typeof v === 'number');
  if (numeric) {
    let min = Infinity;
    let max = -Infinity;
    for (const v of present) { if (v < min) min = v; if (v > max) max = v; }
    const span = max - min;
    return {
      name, kind: 'num', min, max,
      pos: (v) => (typeof v !== 'number' ? MISSING : span === 0 ? 0.5 : (v - min) / span),
    };
  }
  const distinct = new Map();
  for (const v of present) {
    const k = typeof v === 'object' ? JSON.stringify(v) : `${typeof v}:${v}`;
    if (!distinct.has(k)) distinct.set(k, v);
  }
  const cats = [...distinct.entries()].sort((a, b) => compareCats(a[1], b[1]));
  const index = new Map(cats.map(([k], i) => [k, i]));
  const n = cats.length;
  return {
    name, kind: 'cat', cats: cats.map((c) => c[1]),
    pos: (v) => {
      if (v === null || v === undefined) return MISSING;
      const k = typeof v === 'object' ? JSON.stringify(v) : `${typeof v}:${v}`;
      return n === 1 ? 0.5 : index.get(k) / (n - 1);
    },
  };
}

export function parallelCoordinates(panel, id, ctx, getParams, onSelect) {
  const canvas = h('canvas', { class: 'pc-canvas', height: HEIGHT });
  const info = h('span', { class: 'pc-info', id: 'parcoords-info' }, '');
  const selectBtn = h('button', { disabled: true, title: 'add the brushed trials (at most 50) to the selection' }, 'Select brushed');
  const clearBtn = h('button', { disabled: true }, 'Clear brushes');
  const msg = h('div');
  panel.append(h('div', { class: 'pc-bar' }, info, h('span', { class: 'spacer' }), selectBtn, clearBtn), msg, canvas);

  let data = null; // {axes, rows: [{id, pos: Float32Array, color}]}
  const brushes = new Map(); // axis index -> [lo, hi] (normalised, lo < hi)
  let drag = null;
  let gen = 0;

  function axisX(i, n, w) {
    return n === 1 ? w / 2 : SIDE + (i * (w - 2 * SIDE)) / (n - 1);
  }
  const yOf = (p, plotH) => (p === MISSING ? TOP + plotH + 22 : TOP + (1 - p) * plotH);

  function inBrushes(r) {
    for (const [a, [lo, hi]] of brushes) {
      const p = r.pos[a];
      if (p === MISSING || p < lo || p > hi) return false;
    }
    return true;
  }

  function draw() {
    const w = panel.clientWidth || 1000;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(HEIGHT * dpr);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${HEIGHT}px`;
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, HEIGHT);
    if (!data) return;
    const { axes, rows } = data;
    const n = axes.length;
    const plotH = HEIGHT - TOP - BOTTOM;
    const xs = axes.map((_, i) => axisX(i, n, w));
    const fg = cssVar('--fg') || '#222';
    const muted = cssVar('--muted') || '#888';

    // lines: faded ones first, then the brushed ones by colour bucket
    const buckets = new Map();
    const faded = [];
    let kept = 0;
    for (const r of rows) {
      if (brushes.size && !inBrushes(r)) { faded.push(r); continue; }
      kept++;
      if (!buckets.has(r.color)) buckets.set(r.color, []);
      buckets.get(r.color).push(r);
    }
    const path = (list) => {
      g.beginPath();
      for (const r of list) {
        for (let i = 0; i < n; i++) {
          const y = yOf(r.pos[i], plotH);
          if (i === 0) g.moveTo(xs[i], y); else g.lineTo(xs[i], y);
        }
      }
      g.stroke();
    };
    g.lineWidth = 1;
    const alpha = rows.length > 2000 ? 0.25 : rows.length > 300 ? 0.5 : 0.85;
    if (faded.length) { g.globalAlpha = 0.12; g.strokeStyle = muted; path(faded); }
    g.globalAlpha = alpha;
    for (const [color, list] of buckets) { g.strokeStyle = color; path(list); }
    g.globalAlpha = 1;

    // axes, labels, brushes
    g.font = '12px system-ui, sans-serif';
    g.textAlign = 'center';
    for (let i = 0; i < n; i++) {
      const a = axes[i];
      const x = xs[i];
      g.strokeStyle = fg;
      g.beginPath(); g.moveTo(x, TOP); g.lineTo(x, TOP + plotH); g.stroke();
      g.fillStyle = fg;
      g.font = a.name === 'result' ? 'bold 12px system-ui, sans-serif' : '12px system-ui, sans-serif';
      g.fillText(a.name.length > 18 ? a.name.slice(0, 17) + '…' : a.name, x, 14);
      g.font = '11px system-ui, sans-serif';
      g.fillStyle = muted;
      if (a.kind === 'num') {
        g.fillText(fmtResult(a.max), x, TOP - 6);
        g.fillText(fmtResult(a.min), x, TOP + plotH + 13);
      } else if (a.cats.length <= 24) {
        g.textAlign = 'left';
        for (const c of a.cats) {
          const y = yOf(a.pos(c), plotH);
          let t = fmtValue(c);
          if (t.length > 14) t = t.slice(0, 13) + '…';
          g.fillText(t, x + 5, y + 4);
        }
        g.textAlign = 'center';
      } else {
        g.fillText(`${a.cats.length} values`, x, TOP + plotH + 13);
      }
      const b = brushes.get(i);
      if (b) {
        g.fillStyle = 'rgba(120,120,255,0.25)';
        g.strokeStyle = 'rgba(80,80,220,0.9)';
        const y0 = yOf(b[1], plotH);
        const y1 = yOf(b[0], plotH);
        g.fillRect(x - 8, y0, 16, y1 - y0);
        g.strokeRect(x - 8, y0, 16, y1 - y0);
      }
    }
    info.textContent = brushes.size
      ? `${fmtInt.format(kept)} of ${fmtInt.format(rows.length)} trials in the brushes`
      : `${fmtInt.format(rows.length)} trials${data.capped ? ` (the first ${fmtInt.format(LIMIT)})` : ''}; drag along an axis to brush`;
    selectBtn.disabled = !(brushes.size && kept > 0 && kept <= 50);
    clearBtn.disabled = brushes.size === 0;
  }

  function prepare(trials, params) {
    const names = [...params];
    for (const t of trials) for (const k of Object.keys(t.parameters || {})) if (!names.includes(k)) names.push(k);
    const cols = names.map((p) => trials.map((t) => (t.parameters ? t.parameters[p] : undefined)));
    cols.push(trials.map((t) => t.result));
    names.push('result');
    const axes = names.map((name, i) => makeAxis(name, cols[i]));
    const res = axes[axes.length - 1];
    const rows = trials.map((t, j) => {
      const pos = new Float32Array(axes.length);
      for (let i = 0; i < axes.length; i++) pos[i] = axes[i].pos(cols[i][j]);
      const rp = pos[axes.length - 1];
      const color = rp === MISSING ? '#999999'
        : rampColor(Math.round(rp * (BUCKETS - 1)) / (BUCKETS - 1));
      return { id: t.trial_id, pos, color };
    });
    return { axes, rows, res };
  }

  async function load(filter) {
    const my = ++gen;
    clear(msg);
    info.textContent = 'loading…';
    try {
      const body = await api.history(id, { filter, fields: 'parameters,result,status', limit: LIMIT }, ctx.signal);
      if (my !== gen) return;
      brushes.clear();
      data = prepare(body.trials, getParams());
      data.capped = body.matched > body.trials.length;
      draw();
    } catch (e) {
      if (my !== gen) return;
      data = null;
      draw();
      info.textContent = '';
      showError(msg, e);
    }
  }

  function axisAt(x) {
    if (!data) return -1;
    const w = panel.clientWidth;
    const n = data.axes.length;
    for (let i = 0; i < n; i++) if (Math.abs(axisX(i, n, w) - x) < 14) return i;
    return -1;
  }
  const norm = (y) => Math.min(1, Math.max(0, 1 - (y - TOP) / (HEIGHT - TOP - BOTTOM)));

  canvas.addEventListener('mousedown', (ev) => {
    const r = canvas.getBoundingClientRect();
    const a = axisAt(ev.clientX - r.left);
    if (a < 0) return;
    drag = { axis: a, y0: ev.clientY - r.top, moved: false };
    ev.preventDefault();
  });
  const onMove = (ev) => {
    if (!drag) return;
    const r = canvas.getBoundingClientRect();
    const y = ev.clientY - r.top;
    if (Math.abs(y - drag.y0) < 3 && !drag.moved) return;
    drag.moved = true;
    const a = norm(drag.y0);
    const b = norm(y);
    brushes.set(drag.axis, [Math.min(a, b), Math.max(a, b)]);
    draw();
  };
  const onUp = () => {
    if (!drag) return;
    if (!drag.moved) brushes.delete(drag.axis);
    drag = null;
    draw();
  };
  window.addEventListener('mousemove', onMove);
  window.addEventListener('mouseup', onUp);
  window.addEventListener('resize', draw);
  ctx.onCleanup(() => {
    window.removeEventListener('mousemove', onMove);
    window.removeEventListener('mouseup', onUp);
    window.removeEventListener('resize', draw);
  });
  clearBtn.addEventListener('click', () => { brushes.clear(); draw(); });
  selectBtn.addEventListener('click', () => {
    if (data) onSelect(data.rows.filter(inBrushes).map((r) => r.id));
  });

  return { load };
}
