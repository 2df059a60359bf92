// dashboard.mjs — the dashboard in a real browser: seeds a local store
// (xp_browser_seed), starts xp-dashboard on a free port, drives Debian's
// chromium through playwright-core and checks what the pages show. Saves a
// screenshot of each page. Exit 0 passed, 1 failed, 77 skipped.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { paths, loadPlaywright, tempDir, seed, startDashboard, launch } from './harness.mjs';

const EXP = 'browser_pj';
const CMD = 'commands_pj';
const HOSTILE = '<img src=x onerror=alert(1)>';
const WAIT = { timeout: 20000 };

const p = paths();
const pw = await loadPlaywright(p.nodeModules);
fs.mkdirSync(p.out, { recursive: true });

const work = tempDir('xp-browser-');
const store = path.join(work, 'store');
const failures = [];
const problems = []; // dialogs, page errors, CSP violations: fail the run
let server = null;
let browser = null;

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL - ${name}: ${e.message.split('\n').slice(0, 6).join('\n  ')}`);
  }
}

async function shot(page, name) {
  const file = path.join(p.out, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  console.log(`# screenshot ${file}`);
}

const rowIds = (page) => page.$$eval('#history .vt-rows .vt-row[data-trial]', (rows) => rows.map((r) => Number(r.dataset.trial)));
const noInjectedImages = async (page) => assert.equal(await page.locator('img').count(), 0, 'an <img> element was injected');

try {
  seed(p.seed, ['browser', '--backend', store, '--experiment', EXP]);
  seed(p.seed, ['commands', '--backend', store, '--experiment', CMD]);
  const args = ['--backend', store];
  if (p.webDir) args.push('--web-dir', p.webDir);
  server = await startDashboard(p.dashboard, args);
  console.log(`# ${server.url}`);

  const profile = path.join(work, 'profile');
  browser = await launch(pw, profile);
  const page = browser.pages()[0] || await browser.newPage();
  page.on('dialog', async (d) => { problems.push(`dialog: ${d.message()}`); await d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const go = (hash) => page.goto(server.url + hash);

  await check('experiments page lists the seeded experiment', async () => {
    await go('#/');
    await page.locator('#experiments').getByText(EXP, { exact: true }).waitFor(WAIT);
    await shot(page, 'experiments');
  });

  await check('history lists the six trials with their count, the failed one marked', async () => {
    await go(`#/e/${EXP}`);
    await page.waitForFunction(() => document.querySelectorAll('#history .vt-row[data-trial]').length === 6, null, WAIT);
    assert.equal(await page.locator('#count').textContent(), '6 trials');
    assert.deepEqual(await rowIds(page), [1, 2, 3, 4, 5, 6]);
    const cls = await page.locator('#history .vt-row[data-trial="4"]').getAttribute('class');
    assert.match(cls, /\bbad\b/, 'trial 4 (failed) is not marked');
    assert.match(cls, /\bst-failed\b/);
    for (const col of ['lr', 'layers', 'optimizer', 'result', 'status']) {
      assert.equal(await page.locator(`#history .vt-head [data-sort="${col === 'result' || col === 'status' ? col : `parameters.${col}`}"]`).count(), 1, `no column ${col}`);
    }
    await shot(page, 'history');
  });

  await check('the hostile parameter value shows as text', async () => {
    const cell = page.locator('#history .vt-row[data-trial="3"]').getByText(HOSTILE, { exact: true });
    assert.equal(await cell.count(), 1, 'the value is not shown as text');
    await noInjectedImages(page);
  });

  await check('clicking a header sorts by it, again reverses', async () => {
    // lr: 0.1, 0.01, 0.001, 0.05, 0.2, 0.02
    await page.locator('#history .vt-head [data-sort="parameters.lr"]').click();
    await page.waitForFunction(() => document.querySelector('#history .vt-row[data-trial]')?.dataset.trial === '3', null, WAIT);
    assert.deepEqual(await rowIds(page), [3, 2, 6, 4, 1, 5]);
    await page.locator('#history .vt-head [data-sort="parameters.lr"]').click();
    await page.waitForFunction(() => document.querySelector('#history .vt-row[data-trial]')?.dataset.trial === '5', null, WAIT);
    assert.deepEqual(await rowIds(page), [5, 1, 4, 6, 2, 3]);
    assert.match(await page.locator('#history .vt-head [data-sort="parameters.lr"]').textContent(), /▼/);
  });

  await check('a filter shows the matching trials and their count', async () => {
    await page.locator('#filter').fill('lr > 0.015');
    await page.locator('#filter').press('Enter');
    await page.waitForFunction(() => document.querySelector('#count')?.textContent === '4 of 6 trials', null, WAIT);
    await page.waitForFunction(() => document.querySelectorAll('#history .vt-row[data-trial]').length === 4, null, WAIT);
    assert.deepEqual(await rowIds(page), [5, 1, 4, 6]);
    await page.locator('#filter').fill('status == "failed"');
    await page.locator('#filter').press('Enter');
    await page.waitForFunction(() => document.querySelector('#count')?.textContent === '1 of 6 trials', null, WAIT);
    // The count updates before the rows redraw: wait for the rows too.
    await page.waitForFunction(() => {
      const rows = document.querySelectorAll('#history .vt-row[data-trial]');
      return rows.length === 1 && rows[0].dataset.trial === '4';
    }, null, WAIT);
    assert.deepEqual(await rowIds(page), [4]);
    await shot(page, 'history-filtered');
  });

  await check('a bad filter shows the server error under the box', async () => {
    await page.locator('#filter').fill('lr >');
    await page.locator('#filter').press('Enter');
    const box = page.locator('#filter-error');
    await box.waitFor({ state: 'visible', ...WAIT });
    const text = await box.locator('.message').textContent();
    assert.match(text, /column/, `the message does not give a column: ${text}`);
    await shot(page, 'history-filter-error');
    await page.locator('#filter').fill('');
    await page.locator('#filter').press('Enter');
    await page.waitForFunction(() => document.querySelector('#count')?.textContent === '6 trials', null, WAIT);
    assert.equal(await box.isVisible(), false, 'the error stays after a good filter');
  });

  await check('new trials appear without a reload', async () => {
    seed(p.seed, ['browser', '--backend', store, '--experiment', EXP]);
    await page.waitForFunction(() => document.querySelector('#count')?.textContent === '12 trials', null, WAIT);
    await page.waitForFunction(() => document.querySelectorAll('#history .vt-row[data-trial]').length === 12, null, WAIT);
  });

  await check('parallel coordinates draw the trials', async () => {
    await page.locator('#parcoords-button').click();
    await page.waitForFunction(() => /^12 trials/.test(document.querySelector('#parcoords-info')?.textContent || ''), null, WAIT);
    const drawn = await page.$eval('#parcoords canvas', (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let ink = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ink++;
      return ink;
    });
    assert.ok(drawn > 1000, `the canvas is almost empty (${drawn} pixels)`);
    await shot(page, 'history-parcoords');
    await page.locator('#parcoords-button').click();
  });

  await check('the trial page shows code, environment, persisted values and metrics', async () => {
    await go(`#/e/${EXP}/t/1`);
    await page.locator('#code pre').waitFor(WAIT);
    const code = await page.locator('#code pre').textContent();
    assert.match(code, /train/, 'the code does not show the train step');
    await page.locator('#environment details').first().waitFor(WAIT);
    assert.ok(await page.locator('#environment details[data-category="platform"]').count() === 1, 'no platform category');
    await page.waitForFunction(() => document.querySelectorAll('#metrics .chart canvas').length === 2, null, WAIT);
    assert.deepEqual(await page.$$eval('#metrics .chart', (c) => c.map((x) => x.dataset.metric).sort()), ['accuracy', 'loss']);
    await page.locator('#persisted button[data-step="prepare_data"]').click();
    await page.locator('#persisted pre').waitFor({ state: 'visible', ...WAIT });
    assert.match(await page.locator('#persisted pre').textContent(), /"layers": 2/);
    await shot(page, 'trial');
  });

  await check('zooming into a downsampled metric loads that window', async () => {
    const chart = page.locator('#metrics .chart[data-metric="loss"]');
    const note = chart.locator('.chart-note');
    assert.match(await note.textContent(), /of 3,000 points/, 'the 3000-point metric is not downsampled');
    const over = chart.locator('.u-over');
    const b = await over.boundingBox();
    await page.mouse.move(b.x + b.width * 0.40, b.y + b.height / 2);
    await page.mouse.down();
    await page.mouse.move(b.x + b.width * 0.45, b.y + b.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction((el) => /^epochs \d+–\d+: \d+ points/.test(el.textContent), await note.elementHandle(), WAIT);
  });

  await check('the trial page shows each command step\'s log as text', async () => {
    await go(`#/e/${CMD}/t/1`);
    const greet = page.locator('#logs details.log[data-step="greet"]');
    await greet.waitFor(WAIT);
    assert.match(await greet.locator('summary').textContent(), /greet: exit status 0/);
    await greet.locator('summary').click(); // a step that succeeded starts closed
    const out = greet.locator('.log-stream[data-stream="stdout"] pre');
    await out.waitFor({ state: 'visible', ...WAIT });
    assert.equal(await out.textContent(), `${HOSTILE}\n`);
    assert.equal(await greet.locator('.log-stream[data-stream="stderr"] pre').textContent(), 'warned\n');
    const count = page.locator('#logs details.log[data-step="count"]');
    assert.equal(await count.getAttribute('open'), '', 'the failed step\'s log is not open');
    assert.match(await count.locator('summary').textContent(), /count: exit status 4/);
    assert.match(await count.locator('.log-stream[data-stream="stderr"] pre').textContent(), /n is negative/);
    await noInjectedImages(page);
    await shot(page, 'trial-logs');
  });

  await check('a re-run trial links to the trial it reproduces', async () => {
    await go(`#/e/${CMD}/t/2`);
    const link = page.locator('table.summary a#reproduces');
    await link.waitFor(WAIT);
    assert.equal(await link.textContent(), 'trial 1');
    await link.click();
    await page.waitForFunction(() => location.hash.endsWith('/t/1'), null, WAIT);
  });

  await check('a trial whose pure step was reused says from which trial', async () => {
    await go(`#/e/${CMD}/t/3`);
    const cell = page.locator('table.summary').getByText('reused from trial 1', { exact: true });
    await cell.waitFor(WAIT);
    assert.match(await page.locator('table.summary').textContent(), /step greet/);
    await noInjectedImages(page);
  });

  await check('a trial of C steps says it has no command logs', async () => {
    await go(`#/e/${EXP}/t/1`);
    await page.locator('#logs p.muted').getByText('No command step logs.', { exact: true }).waitFor(WAIT);
  });

  await check('the failed trial shows its description', async () => {
    await go(`#/e/${EXP}/t/4`);
    await page.locator('table.summary').waitFor(WAIT);
    assert.match(await page.locator('table.summary').textContent(), /layers must be positive/);
  });

  await check('compare: one chart per metric with a series per trial, differences highlighted', async () => {
    await go(`#/e/${EXP}/compare/1,2`);
    const chart = page.locator('#metrics .chart[data-metric="loss"]');
    await chart.locator('canvas').waitFor(WAIT);
    const labels = await chart.locator('.u-legend .u-series .u-label').allTextContents();
    assert.deepEqual(labels.filter((l) => /^trial/.test(l)), ['trial 1', 'trial 2']);
    assert.equal(await page.locator('#metrics .chart[data-metric="loss"]').count(), 1);
    for (const row of ['lr', 'layers', 'optimizer', 'result']) {
      assert.equal(await page.locator(`#compare-params tr.differs[data-row="${row}"]`).count(), 1, `${row} not highlighted`);
    }
    assert.equal(await page.locator('#compare-params tr.same[data-row="status"]').count(), 1, 'status (equal) is highlighted');
    await page.locator('#only-differences').check();
    assert.equal(await page.locator('#compare-params tr[data-row="status"]').isVisible(), false);
    await page.locator('#diffs details[data-part="parameters"] .d-add').first().waitFor(WAIT);
    await shot(page, 'compare');
  });

  await check('compare with the hostile value shows it as text', async () => {
    await go(`#/e/${EXP}/compare/1,3`);
    await page.locator('#compare-params tr[data-row="optimizer"]').waitFor(WAIT);
    assert.equal(await page.locator('#compare-params').getByText(HOSTILE, { exact: true }).count(), 1);
    await page.locator('#diffs details[data-part="parameters"]').waitFor(WAIT);
    await noInjectedImages(page);
  });

  await check('the graph shows parameters and steps', async () => {
    await go(`#/e/${EXP}/graph`);
    await page.locator('#graph-svg').waitFor(WAIT);
    const steps = await page.$$eval('#graph-svg g.node.step', (g) => g.map((x) => x.dataset.name).sort());
    assert.deepEqual(steps, ['prepare_data', 'score', 'train']);
    assert.equal(await page.locator('#graph-svg g.node.param ellipse').count(), 3);
    assert.equal(await page.locator('#graph-svg g.node.persisted[data-name="prepare_data"] rect.inner').count(), 1);
    assert.equal(await page.locator('#graph-svg g.node.result[data-name="score"]').count(), 1);
    assert.equal(await page.locator('#graph-svg path.edge').count(), 5);
    await shot(page, 'graph');
  });

  await check('the graph of the failed trial colours its steps by status', async () => {
    await go(`#/e/${EXP}/graph/4`);
    await page.locator('#graph-svg').waitFor(WAIT);
    assert.equal(await page.locator('#graph-svg g.node.st-failed[data-name="train"]').count(), 1);
    assert.equal(await page.locator('#graph-svg g.node.st-succeeded[data-name="prepare_data"]').count(), 1);
    const title = await page.locator('#graph-svg g.node[data-name="train"] > title').textContent();
    assert.match(title, /status: failed/);
    await shot(page, 'graph-trial');
  });

  await check('no dialog, page error or CSP violation anywhere', async () => {
    assert.deepEqual(problems, []);
  });
} catch (e) {
  failures.push(`setup: ${e.message}`);
  console.log(`FAIL - setup: ${e.stack || e.message}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) {
    const code = await server.stop();
    if (code !== 0) console.log(`# xp-dashboard exited ${code}; stderr:\n${server.stderr()}`);
  }
  fs.rmSync(work, { recursive: true, force: true });
}

console.log(failures.length ? `${failures.length} check(s) failed` : 'all checks passed');
process.exit(failures.length ? 1 : 0);
