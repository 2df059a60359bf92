// browser.mjs — how fast the dashboard is in a real browser. Seeds a local
// store (build/tests/browser/xp_browser_seed) with 100,000 trials x 10
// parameters, 1,000 trials x 10 parameters and one trial with a
// 1,000,000-point metric, starts xp-dashboard, and measures in chromium:
//   - history usable: navigation start -> first rows in the virtual table
//     (the page's performance mark 'xp:history-rows');
//   - jump to the middle of 100,000 rows -> those rows shown; the median
//     frame time while scrolling 4 and 20 rows a frame;
//   - the 1,000,000-point chart: response (fetch) and draw (uPlot
//     construction) times, measured by the page around each.
// Medians of RUNS (default 7) runs. Prints figures; asserts nothing.
// Run: node bench/browser.mjs   (env as tests/browser/harness.mjs: XP_DASHBOARD,
// XP_BROWSER_SEED, XP_NODE_MODULES, MESON_BUILD_ROOT; XP_BENCH_STORE=DIR keeps
// and reuses the seeded store; XP_BENCH_RUNS=N)

import fs from 'node:fs';
import path from 'node:path';
import { paths, loadPlaywright, tempDir, seed, startDashboard, launch } from '../tests/browser/harness.mjs';

const RUNS = Math.max(5, Number(process.env.XP_BENCH_RUNS) || 7);
const BIG = 'bench_history_100k';
const SMALL = 'bench_history_1k';
const METRIC = 'bench_metric_1m';

const p = paths();
const pw = await loadPlaywright(p.nodeModules);
const keep = process.env.XP_BENCH_STORE;
const work = tempDir('xp-bench-browser-');
const store = keep || path.join(work, 'store');

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const fmt = (xs) => `${median(xs).toFixed(1)} ms (${Math.min(...xs).toFixed(1)} – ${Math.max(...xs).toFixed(1)})`;

function seedIfMissing(id, args) {
  if (fs.existsSync(path.join(store, id))) return;
  const t0 = Date.now();
  seed(p.seed, [...args, '--backend', store, '--experiment', id]);
  console.log(`# seeded ${id} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

let server = null;
let browser = null;
try {
  seedIfMissing(BIG, ['wide', '--trials', '100000', '--params', '10']);
  seedIfMissing(SMALL, ['wide', '--trials', '1000', '--params', '10']);
  seedIfMissing(METRIC, ['metric', '--points', '1000000']);
  const args = ['--backend', store];
  if (p.webDir) args.push('--web-dir', p.webDir);
  server = await startDashboard(p.dashboard, args);
  browser = await launch(pw, path.join(work, 'profile'));
  const page = browser.pages()[0] || await browser.newPage();
  const wait = { timeout: 60000 };

  async function historyUsable(id) {
    await page.goto('about:blank');
    await page.goto(`${server.url}#/e/${id}`);
    await page.waitForFunction(() => performance.getEntriesByName('xp:history-rows').length > 0, null, wait);
    return page.evaluate(() => performance.getEntriesByName('xp:history-rows')[0].startTime);
  }

  // After the history of BIG is shown: jump to the middle, then scroll at
  // `speed` rows a frame for 120 frames, timing each frame.
  async function jumpAndScroll(speeds) {
    return page.evaluate(async (rowsPerFrame) => {
      const sc = document.querySelector('#history');
      const frame = () => new Promise((r) => requestAnimationFrame(r));
      const t0 = performance.now();
      sc.scrollTop = sc.scrollHeight / 2;
      const want = Math.floor((sc.scrollTop - 26) / 24) + 5;
      for (;;) {
        await frame();
        if (document.querySelector(`#history .vt-row[data-index="${want}"][data-trial]`)) break;
        if (performance.now() - t0 > 30000) return { jump: NaN, frames: [] };
      }
      const jump = performance.now() - t0;
      const frames = [];
      for (const speed of rowsPerFrame) {
        const f = [];
        let last = performance.now();
        for (let i = 0; i < 120; i++) {
          sc.scrollTop += speed * 24;
          await frame();
          const now = performance.now();
          f.push(now - last);
          last = now;
        }
        frames.push(f);
      }
      return { jump, frames };
    }, speeds);
  }

  async function chart() {
    await page.goto('about:blank');
    await page.goto(`${server.url}#/e/${METRIC}/t/1`);
    const el = page.locator('.chart[data-metric="loss"][data-draw-ms]');
    await el.waitFor(wait);
    return {
      fetch: Number(await el.getAttribute('data-fetch-ms')),
      draw: Number(await el.getAttribute('data-draw-ms')),
      points: Number(await el.getAttribute('data-points')),
    };
  }

  // one warm-up of each, not counted
  await historyUsable(SMALL);
  await historyUsable(BIG);
  await chart();

  const SPEEDS = [4, 20]; // rows a frame: a brisk wheel, a fling
  const res = { small: [], big: [], jump: [], frames: SPEEDS.map(() => []), fetch: [], draw: [], points: 0 };
  for (let i = 0; i < RUNS; i++) {
    res.small.push(await historyUsable(SMALL));
    res.big.push(await historyUsable(BIG));
    const s = await jumpAndScroll(SPEEDS);
    res.jump.push(s.jump);
    s.frames.forEach((f, k) => res.frames[k].push(median(f)));
    const c = await chart();
    res.fetch.push(c.fetch);
    res.draw.push(c.draw);
    res.points = c.points;
  }
  console.log(`dashboard in chromium, 1280x800, medians of ${RUNS} runs (min – max)`);
  console.log(`history usable, 1,000 trials x 10 parameters:    ${fmt(res.small)}`);
  console.log(`history usable, 100,000 trials x 10 parameters:  ${fmt(res.big)}`);
  console.log(`  jump to row 50,000 -> rows shown:               ${fmt(res.jump)}`);
  SPEEDS.forEach((sp, k) => console.log(`  scrolling ${String(sp).padStart(2)} rows a frame, median frame:      ${fmt(res.frames[k])}`));
  console.log(`chart of a 1,000,000-point metric (${res.points} points sent):`);
  console.log(`  response (fetch + JSON):                       ${fmt(res.fetch)}`);
  console.log(`  draw (uPlot construction):                     ${fmt(res.draw)}`);
  console.log(`  total:                                         ${fmt(res.fetch.map((f, i) => f + res.draw[i]))}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) await server.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
