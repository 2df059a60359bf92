// compare.js — several trials side by side: metrics overlaid (one chart per
// metric, one series per trial), a parameter table marking the rows that
// differ, and the code/environment diffs of the first trial against each other.

import { h, fmtValue, fmtResult, fmtDate, fmtSeconds, PALETTE, showError } from './dom.js';
import { api, href } from './api.js';
import { metricChart } from './charts.js';
import { diffBlock } from './diff.js';

function changed(lines) {
  const n = lines.filter((l) => /^[+-](?![+-]{2} )/.test(l)).length;
  return n === 1 ? '1 changed line' : `${n} changed lines`;
}

function same(values) {
  const k = values.map((v) => JSON.stringify(v === undefined ? null : v));
  return k.every((x) => x === k[0]);
}

function compareTable(trials, onlyDiff) {
  const names = [];
  for (const t of trials) for (const k of Object.keys(t.parameters || {})) if (!names.includes(k)) names.push(k);
  const row = (label, values, fmt, cls) => {
    const differs = !same(values);
    return h('tr', { class: [differs ? 'differs' : 'same', cls], dataset: { row: label } },
      h('th', null, label),
      values.map((v) => h('td', { class: [typeof v === 'number' ? 'num' : '', 'mono'], title: fmtValue(v) }, fmt(v))));
  };
  const body = h('tbody', null,
    names.map((p) => row(p, trials.map((t) => (t.parameters || {})[p]), fmtValue, 'param')),
    h('tr', { class: 'group' }, h('th', { colspan: String(trials.length + 1) }, 'outcome')),
    row('result', trials.map((t) => t.result), fmtResult, 'field'),
    row('status', trials.map((t) => t.status), fmtValue, 'field'),
    row('process time', trials.map((t) => t.process_time), fmtSeconds, 'field'),
    row('finished', trials.map((t) => t.finished), fmtDate, 'field'),
    row('seed', trials.map((t) => t.seed), fmtValue, 'field'),
    row('host', trials.map((t) => t.host), fmtValue, 'field'),
    row('code', trials.map((t) => t.code_hash), fmtValue, 'field'),
    row('environment', trials.map((t) => t.environment_hash), fmtValue, 'field'));
  return h('table', { class: ['grid', 'compare', onlyDiff ? 'only-diff' : ''], id: 'compare-params' },
    h('thead', null, h('tr', null, h('th', null, 'parameter'), trials.map((t, i) => h('th', { class: 'num' },
      h('span', { class: 'swatch', style: { background: PALETTE[i % PALETTE.length] } }),
      h('a', { href: href.trial(t.experiment || '', t.trial_id) }, `trial ${t.trial_id}`))))),
    body);
}

export async function comparePage(el, route, ctx) {
  const { id } = route;
  const ids = [...new Set(route.trials)];
  const trials = await Promise.all(ids.map((n) => api.trial(id, n, ctx.signal)));
  for (const t of trials) t.experiment = id;

  const onlyBox = h('input', { type: 'checkbox', id: 'only-differences' });
  el.append(h('div', { class: 'toolbar' },
    h('h1', null, `Compare ${ids.length} trials`),
    h('span', { class: 'legend' }, ids.map((n, i) => h('a', { class: 'legend-item', href: href.trial(id, n) },
      h('span', { class: 'swatch', style: { background: PALETTE[i % PALETTE.length] } }), `trial ${n}`))),
    h('span', { class: 'spacer' }),
    h('label', { class: 'toggle' }, onlyBox, ' only differences')));

  const table = compareTable(trials, false);
  const tableBox = h('div', { class: 'compare-table' }, table);
  onlyBox.addEventListener('change', () => table.classList.toggle('only-diff', onlyBox.checked));

  const metricNames = [];
  for (const t of trials) for (const m of t.metrics || []) if (!metricNames.includes(m)) metricNames.push(m);
  const charts = h('div', { class: 'charts', id: 'metrics' });
  el.append(h('section', { class: 'block' }, h('h2', null, 'Metrics'),
    metricNames.length ? charts : h('p', { class: 'muted' }, 'None of these trials saved metrics.')));
  el.append(h('section', { class: 'block' }, h('h2', null, 'Parameters and outcome'), tableBox));
  const diffs = h('div', { id: 'diffs' });
  el.append(h('section', { class: 'block' }, h('h2', null, `Differences from trial ${ids[0]}`), diffs));

  const jobs = metricNames.map((m) => metricChart(charts, id, m, ids, ctx).catch((e) => showError(charts, e)));
  for (const b of ids.slice(1)) {
    const box = h('div', { class: 'diff-pair' }, h('h3', null, `trial ${ids[0]} → trial ${b}`));
    diffs.append(box);
    jobs.push(api.diff(id, ids[0], b, ctx.signal).then((d) => {
      for (const part of ['parameters', 'code', 'environment']) {
        const lines = Array.isArray(d[part]) ? d[part] : [];
        box.append(h('details', { class: 'diff-part', open: lines.length > 0, dataset: { part } },
          h('summary', null, part, h('span', { class: 'muted' }, lines.length ? ` (${changed(lines)})` : ' (identical)')),
          diffBlock(lines)));
      }
    }, (e) => showError(box, e)));
  }
  if (ids.length < 2) diffs.append(h('p', { class: 'muted' }, 'Select two trials or more to see differences.'));
  await Promise.all(jobs);
}
