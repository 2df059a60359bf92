// api.js — the JSON API of xp-dashboard (docs: spec of the dashboard API).
// Every path segment and query value is encoded with encodeURIComponent.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const E = encodeURIComponent;

// URL of an API route: segments are encoded one by one, params skip
// undefined/null/'' values.
export function apiUrl(segments, params) {
  let url = 'api/' + segments.map((x) => E(String(x))).join('/');
  const q = [];
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    q.push(`${E(k)}=${E(String(v))}`);
  }
  if (q.length) url += '?' + q.join('&');
  return url;
}

export async function getJson(segments, params, signal) {
  let r;
  try {
    r = await fetch(apiUrl(segments, params), { signal, headers: { Accept: 'application/json' } });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach the dashboard server (${e.message})`);
  }
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    if (r.ok) throw new ApiError(r.status, 'the server sent a response that is not JSON');
  }
  if (!r.ok) throw new ApiError(r.status, (body && typeof body.error === 'string') ? body.error : `HTTP ${r.status}`);
  return body;
}

// Routes of the spec, each returning a promise of the parsed body.
export const api = {
  experiments: (signal) => getJson(['experiments'], null, signal),
  experiment: (id, signal) => getJson(['experiments', id], null, signal),
  history: (id, q, signal) => getJson(['experiments', id, 'history'], q, signal),
  trial: (id, n, signal) => getJson(['experiments', id, 'trials', n], null, signal),
  code: (id, n, signal) => getJson(['experiments', id, 'trials', n, 'code'], null, signal),
  environment: (id, n, signal) => getJson(['experiments', id, 'trials', n, 'environment'], null, signal),
  persisted: (id, n, step, signal) => getJson(['experiments', id, 'trials', n, 'persisted', step], null, signal),
  logs: (id, n, signal) => getJson(['experiments', id, 'trials', n, 'logs'], null, signal),
  metric: (id, n, name, q, signal) => getJson(['experiments', id, 'trials', n, 'metrics', name], q, signal),
  graph: (id, n, signal) => (n ? getJson(['experiments', id, 'trials', n, 'graph'], null, signal)
    : getJson(['experiments', id, 'graph'], null, signal)),
  diff: (id, a, b, signal) => getJson(['experiments', id, 'diff'], { a, b }, signal),
};

// Hash routes of the app.
export const href = {
  experiments: () => '#/',
  history: (id) => `#/e/${E(id)}`,
  trial: (id, n) => `#/e/${E(id)}/t/${E(String(n))}`,
  compare: (id, ns) => `#/e/${E(id)}/compare/${ns.map((n) => E(String(n))).join(',')}`,
  graph: (id, n) => (n ? `#/e/${E(id)}/graph/${E(String(n))}` : `#/e/${E(id)}/graph`),
};
