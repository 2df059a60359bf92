// graph.js — the experiment's graph as SVG, laid out left to right: layers
// by longest path (parameters pulled next to their first consumer), long
// edges split by dummy nodes, each layer ordered by barycentres over a few
// down/up sweeps (the ordering with fewest crossings kept), then vertical
// positions relaxed toward the neighbours' mean.

import { h, s, fmtValue, fmtSeconds } from './dom.js';
import { api, href } from './api.js';

const NODE_H = 30;
const V_GAP = 16;
const H_GAP = 70;
const PAD = 20;
const SWEEPS = 8;
const FONT = '13px system-ui, sans-serif';

let measureCtx = null;
function textWidth(text, bold) {
  if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d');
  measureCtx.font = bold ? `bold ${FONT}` : FONT;
  return measureCtx.measureText(text).width;
}

// Nodes {name, kind, inputs, doc} from the graph document.
function nodesOf(doc) {
  const nodes = new Map();
  for (const p of doc.parameters || []) nodes.set(p.name, { name: p.name, kind: 'param', inputs: [], doc: p });
  for (const st of doc.steps || []) nodes.set(st.name, { name: st.name, kind: 'step', inputs: [], doc: st });
  for (const st of doc.steps || []) {
    nodes.get(st.name).inputs = (st.inputs || []).filter((n) => nodes.has(n) && n !== st.name);
  }
  return nodes;
}

function assignLayers(nodes) {
  const layer = new Map();
  const visiting = new Set();
  const visit = (n) => {
    if (layer.has(n)) return layer.get(n);
    if (visiting.has(n)) return 0; // a cycle (a damaged document): cut it here
    visiting.add(n);
    let l = 0;
    for (const i of nodes.get(n).inputs) l = Math.max(l, visit(i) + 1);
    visiting.delete(n);
    layer.set(n, l);
    return l;
  };
  for (const n of nodes.keys()) visit(n);
  // sources sit just before their nearest consumer, so their edges stay short
  const consumers = new Map([...nodes.keys()].map((n) => [n, []]));
  for (const [n, node] of nodes) for (const i of node.inputs) consumers.get(i).push(n);
  for (const [n, node] of nodes) {
    if (node.inputs.length === 0 && consumers.get(n).length) {
      layer.set(n, Math.max(0, Math.min(...consumers.get(n).map((c) => layer.get(c))) - 1));
    }
  }
  return layer;
}

// Layered graph with dummies: {layers: [[vertex]], edges: [{chain: [vertex]}]}.
function buildLayered(nodes, layer) {
  const depth = Math.max(0, ...layer.values()) + 1;
  const layers = Array.from({ length: depth }, () => []);
  const vertex = new Map();
  for (const [n, node] of nodes) {
    const v = { id: n, node, layer: layer.get(n), preds: [], succs: [] };
    vertex.set(n, v);
    layers[v.layer].push(v);
  }
  const edges = [];
  let dummies = 0;
  for (const [n, node] of nodes) {
    for (const i of node.inputs) {
      const chain = [vertex.get(i)];
      for (let l = vertex.get(i).layer + 1; l < vertex.get(n).layer; l++) {
        const d = { id: `~${dummies++}`, dummy: true, layer: l, preds: [], succs: [] };
        layers[l].push(d);
        chain.push(d);
      }
      chain.push(vertex.get(n));
      for (let k = 0; k + 1 < chain.length; k++) {
        chain[k].succs.push(chain[k + 1]);
        chain[k + 1].preds.push(chain[k]);
      }
      edges.push({ from: i, to: n, chain });
    }
  }
  return { layers, edges };
}

function crossings(layers) {
  let total = 0;
  for (let l = 0; l + 1 < layers.length; l++) {
    const pos = new Map(layers[l + 1].map((v, i) => [v, i]));
    const segs = [];
    layers[l].forEach((v, i) => { for (const w of v.succs) segs.push([i, pos.get(w)]); });
    for (let a = 0; a < segs.length; a++) {
      for (let b = a + 1; b < segs.length; b++) {
        if ((segs[a][0] - segs[b][0]) * (segs[a][1] - segs[b][1]) < 0) total++;
      }
    }
  }
  return total;
}

function orderLayers(layers) {
  let best = layers.map((l) => [...l]);
  let bestCross = crossings(layers);
  for (let sweep = 0; sweep < SWEEPS && bestCross > 0; sweep++) {
    const down = sweep % 2 === 0;
    const range = down ? [...layers.keys()].slice(1) : [...layers.keys()].reverse().slice(1);
    for (const l of range) {
      const ref = layers[down ? l - 1 : l + 1];
      const pos = new Map(ref.map((v, i) => [v, i]));
      const bary = new Map(layers[l].map((v, i) => {
        const nb = down ? v.preds : v.succs;
        return [v, nb.length ? nb.reduce((a, w) => a + pos.get(w), 0) / nb.length : i];
      }));
      layers[l].sort((a, b) => bary.get(a) - bary.get(b));
    }
    const c = crossings(layers);
    if (c < bestCross) { bestCross = c; best = layers.map((x) => [...x]); }
  }
  return best;
}

function place(layers) {
  for (const layer of layers) {
    for (const v of layer) {
      if (v.dummy) { v.w = 0; continue; }
      const bold = v.node.doc.result;
      v.w = Math.ceil(textWidth(v.node.name, bold)) + (v.node.kind === 'param' ? 36 : 26);
    }
  }
  let x = PAD;
  for (const layer of layers) {
    const w = Math.max(0, ...layer.map((v) => v.w));
    for (const v of layer) { v.cx = x + w / 2; }
    x += w + H_GAP;
  }
  const step = NODE_H + V_GAP;
  const tallest = Math.max(...layers.map((l) => l.length));
  for (const layer of layers) {
    const off = ((tallest - layer.length) * step) / 2;
    layer.forEach((v, i) => { v.cy = PAD + NODE_H / 2 + off + i * step; });
  }
  // relax: move each vertex toward its neighbours' mean, keeping order and spacing
  for (let it = 0; it < 6; it++) {
    for (const layer of layers) {
      const want = layer.map((v) => {
        const nb = [...v.preds, ...v.succs];
        return nb.length ? nb.reduce((a, w) => a + w.cy, 0) / nb.length : v.cy;
      });
      for (let i = layer.length - 1; i >= 0; i--) {
        const limit = i + 1 < layer.length ? want[i + 1] - (layer[i].dummy || layer[i + 1].dummy ? step / 2 : step) : Infinity;
        want[i] = Math.min(want[i], limit);
      }
      for (let i = 0; i < layer.length; i++) {
        const limit = i > 0 ? want[i - 1] + (layer[i].dummy || layer[i - 1].dummy ? step / 2 : step) : -Infinity;
        want[i] = Math.max(want[i], limit);
      }
      layer.forEach((v, i) => { v.cy = want[i]; });
    }
  }
  const minY = Math.min(...layers.flat().map((v) => v.cy)) - NODE_H / 2 - PAD;
  for (const v of layers.flat()) v.cy -= minY;
  const maxY = Math.max(...layers.flat().map((v) => v.cy)) + NODE_H / 2 + PAD;
  return { width: x - H_GAP + PAD, height: maxY };
}

function edgePath(chain) {
  const pts = chain.map((v, k) => {
    if (v.dummy) return [v.cx, v.cy];
    return k === 0 ? [v.cx + v.w / 2, v.cy] : [v.cx - v.w / 2, v.cy];
  });
  let d = `M${pts[0][0].toFixed(1)},${pts[0][1].toFixed(1)}`;
  for (let k = 1; k < pts.length; k++) {
    const [x0, y0] = pts[k - 1];
    const [x1, y1] = pts[k];
    const dx = (x1 - x0) / 2;
    d += ` C${(x0 + dx).toFixed(1)},${y0.toFixed(1)} ${(x1 - dx).toFixed(1)},${y1.toFixed(1)} ${x1.toFixed(1)},${y1.toFixed(1)}`;
  }
  return d;
}

function tooltip(node, trial) {
  const d = node.doc;
  const lines = [node.name];
  if (node.kind === 'param') {
    lines.push('parameter');
    if ('default' in d) lines.push(`default: ${fmtValue(d.default)}`);
    return lines.join('\n');
  }
  if (d.result) lines.push('result');
  if (d.persisted) lines.push('persisted');
  if (node.inputs.length) lines.push(`inputs: ${node.inputs.join(', ')}`);
  if (trial) {
    lines.push(`status: ${fmtValue(d.status)}`);
    for (const k of ['host', 'worker', 'attempt']) if (d[k] !== undefined && d[k] !== null) lines.push(`${k}: ${fmtValue(d[k])}`);
    if (typeof d.elapsed === 'number') lines.push(`elapsed: ${fmtSeconds(d.elapsed)}`);
  }
  return lines.join('\n');
}

function nodeElement(v, trial) {
  const { node } = v;
  const d = node.doc;
  const x = v.cx - v.w / 2;
  const y = v.cy - NODE_H / 2;
  const status = trial && node.kind === 'step' ? String(d.status || 'not run').replace(/[^a-z]+/gi, '-') : null;
  const g = s('g', {
    class: ['node', node.kind, d.result ? 'result' : '', d.persisted ? 'persisted' : '', status ? `st-${status}` : ''],
    dataset: { name: node.name },
  });
  g.append(s('title', null, tooltip(node, trial)));
  if (node.kind === 'param') {
    g.append(s('ellipse', { class: 'shape', cx: v.cx, cy: v.cy, rx: v.w / 2, ry: NODE_H / 2 }));
  } else {
    g.append(s('rect', { class: 'shape', x, y, width: v.w, height: NODE_H, rx: 3 }));
    if (d.persisted) g.append(s('rect', { class: 'inner', x: x + 3, y: y + 3, width: v.w - 6, height: NODE_H - 6, rx: 2 }));
  }
  g.append(s('text', { x: v.cx, y: v.cy, 'text-anchor': 'middle', 'dominant-baseline': 'central' }, node.name));
  return g;
}

export function graphSvg(doc, trial) {
  const nodes = nodesOf(doc);
  if (nodes.size === 0) return h('p', { class: 'muted' }, 'The graph is empty.');
  const layer = assignLayers(nodes);
  const { layers, edges } = buildLayered(nodes, layer);
  const ordered = orderLayers(layers);
  const size = place(ordered);
  const svg = s('svg', {
    class: 'graph', id: 'graph-svg', viewBox: `0 0 ${Math.ceil(size.width)} ${Math.ceil(size.height)}`,
    width: Math.ceil(size.width), height: Math.ceil(size.height), role: 'img',
  });
  svg.append(s('defs', null, s('marker', {
    id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto',
  }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))));
  const eg = s('g', { class: 'edges' });
  for (const e of edges) {
    eg.append(s('path', { class: 'edge', d: edgePath(e.chain), 'marker-end': 'url(#arrow)', dataset: { from: e.from, to: e.to } }));
  }
  const ng = s('g', { class: 'nodes' });
  for (const v of ordered.flat()) if (!v.dummy) ng.append(nodeElement(v, trial));
  svg.append(eg, ng);
  return svg;
}

export async function graphPage(el, route, ctx) {
  const { id, trial } = route;
  const doc = await api.graph(id, trial, ctx.signal);
  const legend = trial
    ? h('span', { class: 'legend' }, ['succeeded', 'failed', 'running', 'not run'].map((st) => h('span', { class: 'legend-item' },
      h('span', { class: ['swatch', `st-${st.replace(' ', '-')}`] }), st)))
    : null;
  el.append(h('div', { class: 'toolbar' },
    h('h1', null, trial ? `Graph of trial ${trial}` : 'Graph'),
    legend, h('span', { class: 'spacer' }),
    trial ? h('a', { class: 'button', href: href.trial(id, trial) }, `Trial ${trial}`) : null,
    trial ? h('a', { class: 'button', href: href.graph(id) }, 'Experiment graph') : null,
    h('a', { class: 'button', href: `api/experiments/${encodeURIComponent(id)}${trial ? `/trials/${trial}` : ''}/graph?format=dot` }, 'DOT')));
  el.append(h('div', { class: 'graph-box' }, graphSvg(doc, trial)),
    h('p', { class: 'muted hint' }, 'Ellipses are parameters, boxes steps; a double border marks a persisted step, bold the result. Hover a node for details.'));
}
