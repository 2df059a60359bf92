// charts.js — metric charts with uPlot: one chart per metric, one series per
// trial. The server downsamples (min/max buckets); selecting a range with the
// mouse asks it again for that epoch window so the zoomed detail is real, and
// a double click goes back to the whole series.

import { h, fmtInt, PALETTE, cssVar } from './dom.js';
import { api } from './api.js';

const HEIGHT = 220;

function points(width) {
  // about two points per pixel, within the server's default
  return Math.max(200, Math.min(2000, Math.round(width * 2)));
}

function toNumbers(values) {
  const out = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = typeof v === 'number' ? v : null; // "NaN", "Infinity": gaps
  }
  return out;
}

async function fetchSeries(expId, trials, name, q, signal) {
  return Promise.all(trials.map((n) => api.metric(expId, n, name, q, signal).catch((e) => {
    if (e.status === 404) return null; // this trial did not save the metric
    throw e;
  })));
}

function alignedData(series) {
  const tables = series.filter(Boolean).map((s) => [s.epochs, toNumbers(s.values)]);
  if (tables.length === 0) return [[]];
  if (tables.length === 1) return tables[0];
  return window.uPlot.join(tables);
}

function describe(series, trials) {
  const parts = [];
  series.forEach((s, i) => {
    if (!s) { parts.push(`trial ${trials[i]}: none`); return; }
    parts.push((trials.length > 1 ? `trial ${trials[i]}: ` : '') +
      (s.downsampled ? `${fmtInt.format(s.values.length)} of ${fmtInt.format(s.total)} points` : `${fmtInt.format(s.total)} points`));
  });
  return parts.join(' · ');
}

// Appends a chart of metric `name` for `trials` to container; resolves when
// drawn. box.dataset.fetchMs / drawMs record the first load's times.
export async function metricChart(container, expId, name, trials, ctx) {
  if (!window.uPlot) throw new Error('uPlot did not load (/uPlot.iife.min.js)');
  const note = h('span', { class: 'chart-note' }, 'loading…');
  const plotEl = h('div', { class: 'chart-plot' });
  const box = h('div', { class: 'chart', dataset: { metric: name } },
    h('div', { class: 'chart-title' }, h('span', { class: 'chart-name' }, name), note), plotEl);
  container.append(box);
  const width = Math.max(300, (plotEl.clientWidth || container.clientWidth || 800));

  const t0 = performance.now();
  const overview = await fetchSeries(expId, trials, name, { points: points(width) }, ctx.signal);
  const t1 = performance.now();
  const shown = trials.filter((_, i) => overview[i]);
  const present = overview.filter(Boolean);
  if (present.length === 0) { note.textContent = 'no points'; return box; }

  const fg = cssVar('--fg') || '#222';
  const grid = cssVar('--grid') || '#e5e5e5';
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  let zoomGen = 0;
  let zoomed = false;
  const opts = {
    width, height: HEIGHT,
    scales: { x: { time: false } },
    series: [{ label: 'epoch' }, ...shown.map((n) => {
      const color = PALETTE[trials.indexOf(n) % PALETTE.length];
      return { label: `trial ${n}`, stroke: color, width: 1.25, spanGaps: true, points: { show: false } };
    })],
    axes: [{ ...axis }, { ...axis, size: 60 }],
    legend: { live: true },
    cursor: {
      drag: { x: true, y: false, setScale: false },
      bind: { dblclick: () => () => { resetZoom(); return null; } },
    },
    hooks: { setSelect: [(u) => { if (u.select.width > 2) zoom(u); }] },
  };
  const u = new window.uPlot(opts, alignedData(present), plotEl);
  const t2 = performance.now();
  box.dataset.fetchMs = (t1 - t0).toFixed(1);
  box.dataset.drawMs = (t2 - t1).toFixed(1);
  box.dataset.points = String(present.reduce((a, s) => a + s.values.length, 0));
  note.textContent = describe(overview, trials);

  async function zoom(plot) {
    const min = plot.posToVal(plot.select.left, 'x');
    const max = plot.posToVal(plot.select.left + plot.select.width, 'x');
    plot.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    const my = ++zoomGen;
    zoomed = true;
    if (present.some((s) => s.downsampled)) {
      note.textContent = 'loading the window…';
      try {
        const detail = await fetchSeries(expId, shown, name,
          { points: points(width), from: Math.floor(min), to: Math.ceil(max) }, ctx.signal);
        if (my !== zoomGen) return;
        plot.setData(alignedData(detail), false);
        note.textContent = `epochs ${Math.floor(min)}–${Math.ceil(max)}: ${describe(detail, shown)} (double-click: all)`;
      } catch (e) {
        if (e.name !== 'AbortError') note.textContent = e.message;
        return;
      }
    } else {
      note.textContent = `epochs ${Math.floor(min)}–${Math.ceil(max)} (double-click: all)`;
    }
    plot.setScale('x', { min, max });
  }

  function resetZoom() {
    zoomGen++;
    if (zoomed) {
      zoomed = false;
      u.setData(alignedData(present), true);
      note.textContent = describe(overview, trials);
    }
  }

  const onResize = () => {
    const w = Math.max(300, plotEl.clientWidth);
    if (w !== u.width) u.setSize({ width: w, height: HEIGHT });
  };
  window.addEventListener('resize', onResize);
  ctx.onCleanup(() => { window.removeEventListener('resize', onResize); u.destroy(); });
  return box;
}
