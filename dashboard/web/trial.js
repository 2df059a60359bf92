// trial.js — one trial: summary, parameters, where its steps ran, metric
// charts, persisted values (loaded on click), command step logs, captured
// code, environment by category and the git state with its diff.

import { h, clear, fmtValue, fmtDate, fmtSeconds, flatten, jsonText, showError } from './dom.js';
import { api, href } from './api.js';
import { metricChart } from './charts.js';
import { diffBlock, diffLines } from './diff.js';

function kvTable(pairs, cls) {
  return h('table', { class: ['kv', cls] }, h('tbody', null, pairs.map(([k, v, opts]) => h('tr', null,
    h('th', null, k),
    h('td', { class: [opts && opts.num ? 'num' : '', opts && opts.mono ? 'mono' : ''], title: opts && opts.title ? opts.title : null },
      v instanceof Node ? v : fmtValue(v))))));
}

function statusBadge(status) {
  return h('span', { class: ['badge', `st-${status}`] }, status);
}

function section(title, ...content) {
  return h('section', { class: 'block' }, h('h2', null, title), ...content);
}

function summary(t, id) {
  const rows = [
    ['status', statusBadge(t.status)],
    ['result', t.result, { num: typeof t.result === 'number', mono: true }],
    ['result type', t.result_type],
    ['success', t.success],
    ['started', fmtDate(t.started), { title: fmtValue(t.started) }],
    ['finished', fmtDate(t.finished), { title: fmtValue(t.finished) }],
    ['process time', fmtSeconds(t.process_time), { num: true }],
    ['seed', t.seed, { num: true, mono: true }],
    ['host', t.host],
    ['pid', t.pid, { num: true }],
  ];
  if (t.description) rows.push(['description', h('span', { class: t.success ? '' : 'bad-text' }, t.description)]);
  if (t.scheduler) rows.push(['scheduler', t.scheduler]);
  if (Number.isInteger(t.reproduces)) {
    rows.push(['reproduces', h('a', { href: href.trial(id, t.reproduces), id: 'reproduces' }, `trial ${t.reproduces}`)]);
  }
  if (Array.isArray(t.purity_warnings) && t.purity_warnings.length) rows.push(['purity warnings', t.purity_warnings.join(', ')]);
  if (t.reused && typeof t.reused === 'object') {
    for (const [step, from] of Object.entries(t.reused)) rows.push([`step ${step}`, `reused from trial ${from}`]);
  }
  if (t.memo && t.memo !== 'use') rows.push(['memo', t.memo]);
  rows.push(['code', t.code_hash, { mono: true }], ['environment', t.environment_hash, { mono: true }]);
  return kvTable(rows, 'summary');
}

function stepsTable(steps) {
  const names = Object.keys(steps || {});
  if (names.length === 0) return h('p', { class: 'muted' }, 'Run in this process (no per-step placement recorded).');
  return h('table', { class: 'grid', id: 'steps' },
    h('thead', null, h('tr', null, ['step', 'host', 'worker', 'attempt', 'elapsed'].map((x) => h('th', { class: x === 'attempt' || x === 'elapsed' ? 'num' : '' }, x)))),
    h('tbody', null, names.map((n) => {
      const s = steps[n] || {};
      return h('tr', null, h('td', null, n), h('td', null, fmtValue(s.host)), h('td', null, fmtValue(s.worker)),
        h('td', { class: 'num' }, fmtValue(s.attempt)), h('td', { class: 'num' }, fmtSeconds(s.elapsed)));
    })));
}

function environmentView(env) {
  const box = h('div', { class: 'env' });
  const order = ['platform', 'cpu', 'runtime', 'libraries', 'git', 'gpu'];
  const cats = [...order.filter((c) => c in env), ...Object.keys(env).filter((c) => !order.includes(c))];
  for (const c of cats) {
    const v = env[c];
    const det = h('details', { class: 'env-cat', open: c === 'platform' || c === 'git', dataset: { category: c } },
      h('summary', null, c));
    if (c === 'git' && v && typeof v === 'object') {
      const { diff, ...rest } = v;
      det.append(kvTable(flatten(rest).map(([k, x]) => [k, x, { mono: true }])));
      if (diff !== undefined && diff !== null && diff !== '') {
        det.append(h('div', { class: 'sub' }, 'diff'), diffBlock(Array.isArray(diff) ? diff : diffLines(diff)));
      }
    } else if (v && typeof v === 'object') {
      det.append(kvTable(flatten(v).map(([k, x]) => [k, x, { mono: true }])));
    } else {
      det.append(h('div', { class: 'mono' }, fmtValue(v)));
    }
    box.append(det);
  }
  if (cats.length === 0) box.append(h('p', { class: 'muted' }, 'No environment recorded.'));
  return box;
}

function persistedView(expId, n, steps, ctx) {
  if (!steps || steps.length === 0) return h('p', { class: 'muted' }, 'No persisted steps.');
  const out = h('pre', { class: 'code persisted-value', hidden: true });
  const label = h('div', { class: 'sub', hidden: true });
  const buttons = steps.map((s) => h('button', {
    class: 'chip', dataset: { step: s },
    onclick: async (ev) => {
      for (const b of buttons) b.classList.toggle('on', b === ev.currentTarget);
      label.hidden = false; label.textContent = `${s}: loading…`;
      out.hidden = true;
      try {
        const body = await api.persisted(expId, n, s, ctx.signal);
        label.textContent = s;
        out.textContent = jsonText(body.value);
        out.hidden = false;
      } catch (e) {
        if (e.name !== 'AbortError') label.textContent = `${s}: ${e.message}`;
      }
    },
  }, s));
  return h('div', { id: 'persisted' }, h('div', { class: 'chips' }, buttons), label, out);
}

// How a command step ended, in the words of `xp log`.
function logStatus(log) {
  if (log.timed_out) return 'timed out';
  if (typeof log.status === 'number') return `exit status ${log.status}`;
  return `killed by signal ${fmtValue(log.signal)}`;
}

// Each command step's log: how it ended, then the kept end of stdout and
// stderr. Every stored string goes in as text.
function logsView(logs) {
  if (!Array.isArray(logs) || logs.length === 0) return h('p', { class: 'muted' }, 'No command step logs.');
  return h('div', { class: 'logs' }, logs.map(({ step, log }) => {
    const l = log || {};
    const ok = !l.timed_out && l.status === 0;
    const streams = ['stdout', 'stderr'].map((name) => {
      const text = typeof l[name] === 'string' ? l[name] : '';
      const total = l[`${name}_bytes`];
      const cut = typeof total === 'number' && total > new TextEncoder().encode(text).length;
      return h('div', { class: 'log-stream', dataset: { stream: name } },
        h('div', { class: 'sub' }, `${name}${cut ? ` (its end; ${total} bytes in all)` : ''}`),
        text ? h('pre', { class: 'code log-text' }, text) : h('p', { class: 'muted' }, 'empty'));
    });
    return h('details', { class: 'log', open: !ok, dataset: { step } },
      h('summary', null, h('span', { class: 'log-step' }, step), ': ',
        h('span', { class: ok ? '' : 'bad-text' }, logStatus(l)), `, ${fmtSeconds(l.elapsed)}`),
      Array.isArray(l.argv) ? h('div', { class: 'mono log-argv' }, l.argv.map(String).join(' ')) : null,
      streams);
  }));
}

export async function trialPage(el, route, ctx) {
  const { id, trial: n } = route;
  const t = await api.trial(id, n, ctx.signal);
  const nav = h('span', { class: 'nav' },
    n > 1 ? h('a', { href: href.trial(id, n - 1), title: 'previous trial' }, '← ', String(n - 1)) : null,
    h('a', { href: href.trial(id, n + 1), title: 'next trial' }, String(n + 1), ' →'));
  el.append(h('div', { class: 'toolbar' },
    h('h1', null, `Trial ${n}`), statusBadge(t.status), nav, h('span', { class: 'spacer' }),
    n > 1 ? h('a', { class: 'button', href: href.compare(id, [n - 1, n]) }, `Compare with ${n - 1}`) : null,
    h('a', { class: 'button', href: href.graph(id, n), id: 'trial-graph' }, 'Graph')));

  const params = Object.entries(t.parameters || {});
  el.append(h('div', { class: 'trial-top' },
    section('Summary', summary(t, id)),
    section('Parameters', params.length
      ? kvTable(params.map(([k, v]) => [k, v, { num: typeof v === 'number', mono: true }]), 'params')
      : h('p', { class: 'muted' }, 'No parameters.'))));
  el.append(section('Steps', stepsTable(t.steps)));

  const charts = h('div', { class: 'charts', id: 'metrics' });
  const metrics = Array.isArray(t.metrics) ? t.metrics : [];
  el.append(section('Metrics', metrics.length ? charts : h('p', { class: 'muted' }, 'No metrics.')));
  el.append(section('Persisted values', persistedView(id, n, t.persisted, ctx)));

  const logsBox = h('div', { id: 'logs' }, h('p', { class: 'muted' }, 'loading…'));
  el.append(section('Command logs', logsBox));

  const codeBox = h('div', { id: 'code' }, h('p', { class: 'muted' }, 'loading…'));
  const envBox = h('div', { id: 'environment' }, h('p', { class: 'muted' }, 'loading…'));
  el.append(section('Code', codeBox), section('Environment', envBox));

  const jobs = [];
  for (const m of metrics) {
    jobs.push(metricChart(charts, id, m, [n], ctx).catch((e) => showError(charts, e)));
  }
  jobs.push(api.logs(id, n, ctx.signal).then((body) => {
    clear(logsBox).append(logsView(body && body.logs));
  }, (e) => { clear(logsBox); showError(logsBox, e); }));
  jobs.push(api.code(id, n, ctx.signal).then((c) => {
    clear(codeBox).append(h('pre', { class: 'code' }, typeof c.text === 'string' ? c.text : jsonText(c.code)));
  }, (e) => { clear(codeBox); showError(codeBox, e); }));
  jobs.push(api.environment(id, n, ctx.signal).then((env) => {
    clear(envBox).append(environmentView(env || {}));
  }, (e) => { clear(envBox); showError(envBox, e); }));
  await Promise.all(jobs);
}
