// app.js — entry of the dashboard: the hash router and the experiments page.
// Each page is a function (main, route, ctx) that builds its DOM into main and
// may register cleanups on ctx (timers, listeners) run when the route changes;
// ctx.signal aborts its pending requests.

import { h, clear, fmtInt, showError } from './dom.js';
import { api, href } from './api.js';
import { historyPage } from './history.js';
import { trialPage } from './trial.js';
import { comparePage } from './compare.js';
import { graphPage } from './graph.js';

const main = document.getElementById('main');
const crumbs = document.getElementById('crumbs');
const backendEl = document.getElementById('backend');
let current = null; // {controller, cleanups}

function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter((p) => p !== '');
  const dec = (p) => { try { return decodeURIComponent(p); } catch { return p; } };
  if (parts.length === 0) return { page: 'experiments' };
  if (parts[0] !== 'e' || parts.length < 2) return { page: 'notfound' };
  const id = dec(parts[1]);
  const num = (p) => (/^\d+$/.test(p) ? Number(p) : NaN);
  if (parts.length === 2) return { page: 'history', id };
  if (parts[2] === 't' && parts.length === 4 && num(parts[3]) > 0) return { page: 'trial', id, trial: num(parts[3]) };
  if (parts[2] === 'compare' && parts.length === 4) {
    const trials = dec(parts[3]).split(',').map(num);
    if (trials.length >= 1 && trials.every((n) => n > 0)) return { page: 'compare', id, trials };
  }
  if (parts[2] === 'graph' && parts.length === 3) return { page: 'graph', id, trial: 0 };
  if (parts[2] === 'graph' && parts.length === 4 && num(parts[3]) > 0) return { page: 'graph', id, trial: num(parts[3]) };
  return { page: 'notfound' };
}

function setCrumbs(route) {
  clear(crumbs);
  const items = [];
  if (route.id !== undefined) items.push(h('a', { href: href.history(route.id) }, route.id));
  if (route.page === 'trial') items.push(h('span', null, `trial ${route.trial}`));
  if (route.page === 'compare') items.push(h('span', null, `compare ${route.trials.join(', ')}`));
  if (route.page === 'graph') {
    if (route.trial) items.push(h('a', { href: href.trial(route.id, route.trial) }, `trial ${route.trial}`));
    items.push(h('span', null, 'graph'));
  }
  for (const it of items) crumbs.append(h('span', { class: 'sep' }, '/'), it);
  document.title = ['xp', route.id, route.page === 'trial' ? `trial ${route.trial}` : null].filter(Boolean).join(' · ');
}

async function experimentsPage(el, route, ctx) {
  const body = await api.experiments(ctx.signal);
  backendEl.textContent = body.backend || '';
  const rows = body.experiments.map((x) => h('tr', null,
    h('td', null, h('a', { href: href.history(x.id) }, x.id)),
    h('td', { class: 'num' }, fmtInt.format(x.last_trial_id)),
    h('td', null, h('a', { href: href.history(x.id) }, 'history'), ' · ',
      h('a', { href: href.graph(x.id) }, 'graph'), ' · ',
      x.last_trial_id > 0 ? h('a', { href: href.trial(x.id, x.last_trial_id) }, 'last trial') : null)));
  el.append(h('h1', null, 'Experiments'),
    rows.length === 0 ? h('p', { class: 'muted' }, 'No experiments in this backend.')
      : h('table', { class: 'grid', id: 'experiments' },
        h('thead', null, h('tr', null, h('th', null, 'experiment'), h('th', { class: 'num' }, 'last trial'), h('th', null, ''))),
        h('tbody', null, rows)));
}

const PAGES = {
  experiments: experimentsPage,
  history: historyPage,
  trial: trialPage,
  compare: comparePage,
  graph: graphPage,
  notfound: async (el) => { el.append(h('h1', null, 'Not found'), h('p', null, h('a', { href: '#/' }, 'experiments'))); },
};

async function navigate() {
  if (current) {
    current.controller.abort();
    for (const fn of current.cleanups) try { fn(); } catch (e) { console.error(e); }
  }
  const route = parseRoute(location.hash);
  const controller = new AbortController();
  const ctx = { signal: controller.signal, cleanups: [], onCleanup(fn) { this.cleanups.push(fn); } };
  current = { controller, cleanups: ctx.cleanups };
  clear(main);
  main.className = `page-${route.page}`;
  setCrumbs(route);
  const page = h('div', { class: 'page' });
  main.append(page);
  try {
    await PAGES[route.page](page, route, ctx);
  } catch (e) {
    if (!ctx.signal.aborted) showError(page, e);
  }
}

window.addEventListener('hashchange', navigate);
navigate();
