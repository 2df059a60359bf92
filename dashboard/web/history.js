// history.js — the history page: one row per trial in a virtual table (only
// the visible rows exist; pages of rows are fetched by offset/limit and
// cached), sorted and filtered by the server, polled every 2 s.

import { h, clear, fmtInt, fmtValue, fmtResult, fmtDate, fmtSeconds, showError } from './dom.js';
import { api, href } from './api.js';
import { parallelCoordinates } from './parcoords.js';

const ROW = 24; // px; the fixed row height (app.css .vt-row)
const HEAD = 26; // px; the header row (app.css .vt-head)
const PAGE = 200; // trials per request
const CHUNK = 8; // rows are rebuilt when the view moves by this many
const OVERSCAN = 6;
const POLL_MS = 2000;
const MAX_PAGES = 100; // cached pages kept (the farthest are dropped)
const MAX_INFLIGHT = 3;
const FIELDS = 'parameters,result,status,success,finished,process_time,description,seed,host';

// The fixed columns after the parameters.
const FIELD_COLUMNS = [
  { key: 'result', label: 'result', sortKey: 'result', width: 110, get: (t) => t.result, fmt: fmtResult, auto: true },
  { key: 'status', label: 'status', sortKey: 'status', width: 88, get: (t) => t.status, fmt: fmtValue },
  { key: 'success', label: 'success', sortKey: 'success', width: 72, get: (t) => t.success, fmt: fmtValue },
  { key: 'finished', label: 'finished', sortKey: 'finished', width: 162, get: (t) => t.finished, fmt: fmtDate, title: fmtValue },
  { key: 'process_time', label: 'process time', sortKey: 'process_time', width: 112, num: true, get: (t) => t.process_time, fmt: fmtSeconds },
  { key: 'description', label: 'description', sortKey: 'description', width: 220, get: (t) => t.description, fmt: fmtValue },
  { key: 'seed', label: 'seed', sortKey: 'seed', width: 170, num: true, get: (t) => t.seed, fmt: fmtValue },
  { key: 'host', label: 'host', sortKey: 'host', width: 110, get: (t) => t.host, fmt: fmtValue },
];

function paramColumn(name, numeric) {
  return {
    key: `p:${name}`, label: name, param: true, sortKey: `parameters.${name}`, num: numeric,
    width: Math.min(200, Math.max(70, name.length * 7 + 30)),
    get: (t) => (t.parameters ? t.parameters[name] : undefined), fmt: fmtValue, auto: true,
  };
}

function storageKey(id, what) {
  return `xp.dashboard.${what}.${id}`;
}

function loadJson(store, key, dflt) {
  try {
    const v = JSON.parse(store.getItem(key));
    return v === null ? dflt : v;
  } catch {
    return dflt;
  }
}

function saveJson(store, key, v) {
  try { store.setItem(key, JSON.stringify(v)); } catch { /* storage full or denied: not essential */ }
}

export async function historyPage(el, route, ctx) {
  const id = route.id;
  const exp = await api.experiment(id, ctx.signal);
  const saved = loadJson(sessionStorage, storageKey(id, 'view'), {});
  const st = {
    filter: typeof saved.filter === 'string' ? saved.filter : '',
    sort: Array.isArray(saved.sort) ? saved.sort : [],
    matched: 0, total: 0, last: exp.last_trial_id,
    pages: new Map(), inflight: new Map(), gen: 0, loaded: false,
    selected: new Set(), lastClicked: null,
    hidden: new Set(loadJson(localStorage, storageKey(id, 'hidden-columns'), [])),
    params: [...exp.parameters], columns: [], renderedFirst: -1, renderQueued: false,
    numeric: new Map(), // column -> every value seen is a number (right-aligned header)
  };

  // ---- page skeleton
  const filterInput = h('input', {
    type: 'search', id: 'filter', class: 'filter', spellcheck: 'false', autocomplete: 'off',
    placeholder: 'filter, e.g. a > 1 and status == "failed"  (Enter)', value: st.filter,
    'aria-label': 'filter',
  });
  const filterError = h('div', { class: 'filter-error', id: 'filter-error', hidden: true });
  const countEl = h('span', { class: 'count', id: 'count' }, '');
  const compareBtn = h('button', { id: 'compare', disabled: true, title: 'compare the selected trials' }, 'Compare');
  const clearSelBtn = h('button', { id: 'clear-selection', disabled: true, title: 'clear the selection' }, 'Clear');
  const colsBtn = h('button', { id: 'columns-button', 'aria-expanded': 'false' }, 'Columns');
  const pcBtn = h('button', { id: 'parcoords-button', 'aria-pressed': 'false' }, 'Parallel coordinates');
  const colsPanel = h('div', { class: 'popover', id: 'columns-panel', hidden: true });
  const pcPanel = h('div', { class: 'parcoords-panel', id: 'parcoords', hidden: true });
  const scroller = h('div', { class: 'vt', id: 'history', tabindex: '0' });
  const inner = h('div', { class: 'vt-inner' });
  const head = h('div', { class: 'vt-head vt-row' });
  const rowsEl = h('div', { class: 'vt-rows' });
  const emptyEl = h('div', { class: 'vt-empty', hidden: true }, '');
  inner.append(head, rowsEl);
  scroller.append(inner, emptyEl);

  el.append(
    h('div', { class: 'toolbar' },
      h('h1', null, id),
      h('div', { class: 'filter-box' }, filterInput, filterError),
      countEl,
      h('span', { class: 'spacer' }),
      compareBtn, clearSelBtn,
      h('span', { class: 'popover-anchor' }, colsBtn, colsPanel),
      pcBtn,
      h('a', { class: 'button', href: href.graph(id) }, 'Graph')),
    pcPanel,
    scroller);

  // ---- columns
  function buildColumns() {
    const cols = [{ key: 'sel', label: '', width: 28, fixed: true },
      { key: 'trial_id', label: 'trial', sortKey: 'trial_id', width: 64, num: true, fixed: true, get: (t) => t.trial_id, fmt: String }];
    for (const p of st.params) cols.push(paramColumn(p, st.numeric.get(p) === true));
    cols.push(...FIELD_COLUMNS.map((c) => (c.key === 'result' ? { ...c, num: st.numeric.get(' result') === true } : c)));
    st.allColumns = cols;
    st.columns = cols.filter((c) => c.fixed || !st.hidden.has(c.key));
    const widths = st.columns.map((c) => `${c.width}px`).join(' ');
    inner.style.setProperty('--cols', widths);
    inner.style.width = `${st.columns.reduce((a, c) => a + c.width, 0)}px`;
  }

  // Parameters the shown trials have but the last trial's code does not, and
  // which columns hold numbers only.
  function learnParams(trials) {
    let added = false;
    const seen = (k, v) => {
      if (v === null || v === undefined) return;
      const was = st.numeric.get(k);
      const now = typeof v === 'number' && was !== false;
      if (was !== now) { st.numeric.set(k, now); added = true; }
    };
    for (const t of trials) {
      for (const [k, v] of Object.entries(t.parameters || {})) {
        if (!st.params.includes(k)) { st.params.push(k); added = true; }
        seen(k, v);
      }
      seen(' result', t.result);
    }
    if (added) { buildColumns(); renderHead(); buildColumnsPanel(); st.renderedFirst = -1; }
  }

  function sortParam() {
    return st.sort.map((k) => (k.desc ? '-' : '') + k.key).join(',');
  }

  function renderHead() {
    clear(head);
    for (const c of st.columns) {
      if (c.key === 'sel') {
        head.append(h('div', { class: 'c sel' }, ''));
        continue;
      }
      const i = st.sort.findIndex((k) => k.key === c.sortKey);
      const mark = i < 0 ? '' : (st.sort[i].desc ? '▼' : '▲') + (st.sort.length > 1 ? String(i + 1) : '');
      head.append(h('div', {
        class: ['c', 'sortable', c.num ? 'num' : '', c.param ? 'param' : '', i >= 0 ? 'sorted' : ''],
        title: `${c.label}: click to sort, shift-click to add a secondary key`,
        dataset: { sort: c.sortKey },
        role: 'columnheader',
      }, h('span', { class: 'label' }, c.label), h('span', { class: 'mark' }, mark)));
    }
  }

  head.addEventListener('click', (ev) => {
    const cell = ev.target.closest('[data-sort]');
    if (!cell) return;
    const key = cell.dataset.sort;
    const i = st.sort.findIndex((k) => k.key === key);
    if (ev.shiftKey) {
      if (i < 0) st.sort.push({ key, desc: false });
      else if (!st.sort[i].desc) st.sort[i].desc = true;
      else st.sort.splice(i, 1);
    } else if (i === 0 && st.sort.length === 1) {
      if (!st.sort[0].desc) st.sort[0].desc = true;
      else st.sort = [];
    } else {
      st.sort = [{ key, desc: false }];
    }
    renderHead();
    reset(false);
  });

  function buildColumnsPanel() {
    clear(colsPanel);
    colsPanel.append(h('div', { class: 'popover-title' }, 'Columns'));
    for (const c of st.allColumns) {
      if (c.fixed) continue;
      const box = h('input', { type: 'checkbox', checked: !st.hidden.has(c.key), dataset: { key: c.key } });
      colsPanel.append(h('label', { class: c.param ? 'param' : '' }, box, ' ', c.label));
    }
    colsPanel.append(h('div', { class: 'popover-actions' },
      h('button', { onclick: () => setHidden([]) }, 'all'),
      h('button', { onclick: () => setHidden(st.allColumns.filter((c) => !c.fixed && !c.param && c.key !== 'result').map((c) => c.key)) }, 'parameters + result')));
  }

  function setHidden(keys) {
    st.hidden = new Set(keys);
    saveJson(localStorage, storageKey(id, 'hidden-columns'), [...st.hidden]);
    buildColumns(); buildColumnsPanel(); renderHead();
    st.renderedFirst = -1; scheduleRender();
  }

  colsPanel.addEventListener('change', (ev) => {
    const key = ev.target.dataset && ev.target.dataset.key;
    if (!key) return;
    if (ev.target.checked) st.hidden.delete(key); else st.hidden.add(key);
    setHidden([...st.hidden]);
  });
  colsBtn.addEventListener('click', () => {
    colsPanel.hidden = !colsPanel.hidden;
    colsBtn.setAttribute('aria-expanded', String(!colsPanel.hidden));
  });
  const closePanel = (ev) => {
    if (!colsPanel.hidden && !colsPanel.contains(ev.target) && ev.target !== colsBtn) {
      colsPanel.hidden = true; colsBtn.setAttribute('aria-expanded', 'false');
    }
  };
  document.addEventListener('mousedown', closePanel);
  ctx.onCleanup(() => document.removeEventListener('mousedown', closePanel));

  // ---- data
  function query(page) {
    return { filter: st.filter, sort: sortParam(), offset: page * PAGE, limit: PAGE, fields: FIELDS };
  }

  function visibleRange() {
    const top = Math.max(0, scroller.scrollTop - HEAD);
    const first = Math.floor(top / ROW);
    const last = Math.min(st.matched, Math.ceil((top + scroller.clientHeight) / ROW));
    return [first, last];
  }

  function visiblePages() {
    const [first, last] = visibleRange();
    const out = [];
    for (let p = Math.floor(first / PAGE); p <= Math.floor(Math.max(first, last - 1) / PAGE); p++) out.push(p);
    return out;
  }

  function setCounts(body) {
    st.matched = body.matched;
    st.last = body.last_trial_id;
    if (!st.filter) st.total = body.matched;
    countEl.textContent = st.filter
      ? `${fmtInt.format(st.matched)} of ${fmtInt.format(st.total)} trials`
      : `${fmtInt.format(st.matched)} trials`;
    inner.style.height = `${HEAD + st.matched * ROW}px`;
    emptyEl.hidden = st.matched > 0;
    emptyEl.textContent = st.filter ? 'No trial matches the filter.' : 'No trials yet.';
  }

  function showFilterError(e) {
    clear(filterError);
    if (!e) { filterError.hidden = true; filterInput.classList.remove('bad'); return; }
    filterError.hidden = false;
    filterInput.classList.add('bad');
    filterError.append(h('div', { class: 'message' }, e.message));
    const m = /column (\d+)/.exec(e.message);
    if (m && /^filter/.test(e.message) && st.filter) {
      const col = Math.max(1, Number(m[1]));
      filterError.append(h('pre', { class: 'caret' }, st.filter, '\n', ' '.repeat(Math.min(col - 1, st.filter.length)), '^'));
    }
  }

  async function fetchPage(p, gen) {
    const body = await api.history(id, query(p), ctx.signal);
    if (gen !== st.gen) return null;
    if (body.last_trial_id !== st.last || body.matched !== st.matched) {
      // new or changed trials: every other cached page may be stale
      st.pages = new Map();
    }
    st.pages.set(p, body.trials);
    setCounts(body);
    learnParams(body.trials);
    st.loaded = true;
    return body;
  }

  // A refused filter or sort: no rows, the message under the box, no retries
  // until the query changes.
  function failed(e) {
    st.failedGen = st.gen;
    st.pages = new Map();
    setCounts({ matched: 0, last_trial_id: st.last });
    countEl.textContent = '';
    emptyEl.textContent = e.status === 400 ? 'The server refused this query.' : e.message;
    showFilterError(e);
    st.renderedFirst = -1;
    scheduleRender();
  }

  function ensurePage(p) {
    if (st.failedGen === st.gen) return;
    if (st.pages.has(p) || st.inflight.has(p) || st.inflight.size >= MAX_INFLIGHT) return;
    const gen = st.gen;
    const pr = fetchPage(p, gen).then(() => {
      if (gen === st.gen) { showFilterError(null); st.renderedFirst = -1; scheduleRender(); }
    }, (e) => {
      if (e.name === 'AbortError' || gen !== st.gen) return;
      failed(e);
    }).finally(() => {
      if (gen === st.gen) { st.inflight.delete(p); scheduleRender(); }
    });
    st.inflight.set(p, pr);
  }

  function evict() {
    if (st.pages.size <= MAX_PAGES) return;
    const [first] = visibleRange();
    const here = Math.floor(first / PAGE);
    const far = [...st.pages.keys()].sort((a, b) => Math.abs(b - here) - Math.abs(a - here));
    for (const p of far.slice(0, st.pages.size - MAX_PAGES)) st.pages.delete(p);
  }

  async function loadTotal(gen) {
    if (!st.filter) return;
    const body = await api.history(id, { limit: 1, fields: 'trial_id' }, ctx.signal);
    if (gen !== st.gen) return;
    st.total = body.matched;
    setCounts({ matched: st.matched, last_trial_id: st.last });
  }

  // New filter or sort: drop the cache, go to the top, fetch the first page.
  function reset(keepScroll) {
    st.gen++;
    st.pages = new Map();
    st.inflight = new Map();
    st.renderedFirst = -1;
    saveJson(sessionStorage, storageKey(id, 'view'), { filter: st.filter, sort: st.sort, scroll: 0 });
    if (!keepScroll) scroller.scrollTop = 0;
    const gen = st.gen;
    ensurePage(0);
    loadTotal(gen).catch(() => {});
    if (!pcPanel.hidden) pc.load(st.filter);
  }

  // ---- rendering (only the visible rows, rebuilt when the view moves a chunk)
  function cellFor(c, t) {
    if (c.key === 'sel') {
      return h('div', { class: 'c sel' }, h('input', {
        type: 'checkbox', checked: st.selected.has(t.trial_id), dataset: { trial: t.trial_id },
        'aria-label': `select trial ${t.trial_id}`,
      }));
    }
    if (c.key === 'trial_id') {
      return h('div', { class: 'c num' }, h('a', { href: href.trial(id, t.trial_id) }, String(t.trial_id)));
    }
    const v = c.get(t);
    const text = c.fmt(v);
    const num = c.num || (c.auto && typeof v === 'number');
    return h('div', { class: ['c', num ? 'num' : '', v === null || v === undefined ? 'null' : ''], title: c.title ? c.title(v) : text }, text);
  }

  function rowFor(i) {
    const page = st.pages.get(Math.floor(i / PAGE));
    const t = page ? page[i % PAGE] : undefined;
    if (!t) return h('div', { class: 'vt-row loading' }, h('div', { class: 'c' }, ''), h('div', { class: 'c muted' }, '…'));
    const cls = ['vt-row', `st-${t.status}`, st.selected.has(t.trial_id) ? 'selected' : '',
      t.status === 'failed' || t.status === 'interrupted' || t.status === 'damaged' ? 'bad' : ''];
    const row = h('div', { class: cls, dataset: { trial: t.trial_id, index: i } });
    for (const c of st.columns) row.append(cellFor(c, t));
    return row;
  }

  function render() {
    st.renderQueued = false;
    const top = Math.max(0, scroller.scrollTop - HEAD);
    const firstVisible = Math.floor(top / ROW);
    const first = Math.max(0, Math.floor(firstVisible / CHUNK) * CHUNK - OVERSCAN);
    const last = Math.min(st.matched, first + Math.ceil(scroller.clientHeight / ROW) + 2 * OVERSCAN + CHUNK);
    for (const p of visiblePages()) ensurePage(p);
    if (first === st.renderedFirst && rowsEl.childElementCount === Math.max(0, last - first)) return;
    st.renderedFirst = first;
    rowsEl.style.transform = `translateY(${first * ROW}px)`;
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.append(rowFor(i));
    rowsEl.replaceChildren(frag);
    if (!st.marked && st.pages.size) {
      st.marked = true;
      performance.mark('xp:history-rows'); // the table is usable (bench/browser.mjs)
    }
    evict();
  }

  function scheduleRender() {
    if (st.renderQueued) return;
    st.renderQueued = true;
    requestAnimationFrame(render);
  }

  let scrollSave = 0;
  scroller.addEventListener('scroll', () => {
    scheduleRender();
    clearTimeout(scrollSave);
    scrollSave = setTimeout(() => saveJson(sessionStorage, storageKey(id, 'view'),
      { filter: st.filter, sort: st.sort, scroll: scroller.scrollTop }), 200);
  }, { passive: true });
  const onResize = () => { st.renderedFirst = -1; scheduleRender(); };
  window.addEventListener('resize', onResize);
  ctx.onCleanup(() => window.removeEventListener('resize', onResize));

  // ---- selection and navigation
  function updateSelection() {
    const n = st.selected.size;
    compareBtn.disabled = n < 2;
    clearSelBtn.disabled = n === 0;
    compareBtn.textContent = n ? `Compare (${n})` : 'Compare';
  }

  function trialAt(i) {
    const page = st.pages.get(Math.floor(i / PAGE));
    return page ? page[i % PAGE] : undefined;
  }

  rowsEl.addEventListener('click', (ev) => {
    const row = ev.target.closest('.vt-row');
    if (!row || !row.dataset.trial) return;
    const n = Number(row.dataset.trial);
    const index = Number(row.dataset.index);
    if (ev.target.matches('input[type=checkbox]')) {
      const on = ev.target.checked;
      if (ev.shiftKey && st.lastClicked !== null) {
        const [a, b] = [Math.min(st.lastClicked, index), Math.max(st.lastClicked, index)];
        for (let i = a; i <= b; i++) {
          const t = trialAt(i);
          if (t) { if (on) st.selected.add(t.trial_id); else st.selected.delete(t.trial_id); }
        }
      } else if (on) st.selected.add(n); else st.selected.delete(n);
      st.lastClicked = index;
      st.renderedFirst = -1;
      scheduleRender();
      updateSelection();
      return;
    }
    if (ev.target.closest('a') || ev.target.closest('.sel')) return;
    if (String(window.getSelection())) return; // the user is selecting text
    location.hash = href.trial(id, n);
  });

  compareBtn.addEventListener('click', () => {
    const ids = [...st.selected].sort((a, b) => a - b);
    if (ids.length >= 2) location.hash = href.compare(id, ids);
  });
  clearSelBtn.addEventListener('click', () => {
    st.selected.clear(); st.renderedFirst = -1; scheduleRender(); updateSelection();
  });

  filterInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      st.filter = filterInput.value.trim();
      reset(false);
    } else if (ev.key === 'Escape') {
      filterInput.value = '';
      if (st.filter) { st.filter = ''; reset(false); }
    }
  });
  filterInput.addEventListener('search', () => { // the clear button of type=search
    if (filterInput.value === '' && st.filter) { st.filter = ''; reset(false); }
  });

  // ---- parallel coordinates
  const pc = parallelCoordinates(pcPanel, id, ctx, () => st.params, (ids) => {
    for (const n of ids) st.selected.add(n);
    st.renderedFirst = -1; scheduleRender(); updateSelection();
  });
  pcBtn.addEventListener('click', () => {
    pcPanel.hidden = !pcPanel.hidden;
    pcBtn.setAttribute('aria-pressed', String(!pcPanel.hidden));
    if (!pcPanel.hidden) pc.load(st.filter);
  });

  // ---- polling: the visible pages again, and the count
  async function poll() {
    if (document.hidden || !st.loaded || st.failedGen === st.gen) return;
    const gen = st.gen;
    const pages = visiblePages();
    try {
      for (const p of pages.length ? pages : [0]) await fetchPage(p, gen);
      if (st.filter) await loadTotal(gen);
      if (gen === st.gen) { st.renderedFirst = -1; scheduleRender(); }
    } catch (e) {
      if (e.name !== 'AbortError' && gen === st.gen && e.status !== 400) countEl.textContent = e.message;
    }
  }
  let polling = false;
  const timer = setInterval(async () => {
    if (polling) return;
    polling = true;
    try { await poll(); } finally { polling = false; }
  }, POLL_MS);
  ctx.onCleanup(() => clearInterval(timer));

  // ---- start
  buildColumns();
  buildColumnsPanel();
  renderHead();
  updateSelection();
  st.gen++;
  const gen = st.gen;
  try {
    const first = fetchPage(0, gen);
    st.inflight.set(0, first);
    await first;
    st.inflight.delete(0);
    showFilterError(null);
  } catch (e) {
    if (e.name === 'AbortError') return;
    failed(e);
  }
  loadTotal(gen).catch(() => {});
  if (saved.scroll) scroller.scrollTop = saved.scroll;
  render();
}
