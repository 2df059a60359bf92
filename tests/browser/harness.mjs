// harness.mjs — what the dashboard's browser test and benchmark share:
// finding playwright-core and chromium (or exiting 77, meson's skip code),
// seeding a store, starting xp-dashboard on a free port, launching chromium
// with a fresh profile.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const SKIP = 77;
export const CHROMIUM = process.env.XP_CHROMIUM || '/usr/bin/chromium';

export function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(SKIP);
}

// The programs and directories from the environment meson sets; a missing one
// skips with the reason.
export function paths() {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const src = path.resolve(here, '..', '..');
  const build = process.env.MESON_BUILD_ROOT || path.join(src, 'build');
  const p = {
    dashboard: process.env.XP_DASHBOARD || path.join(build, 'dashboard', 'xp-dashboard'),
    seed: process.env.XP_BROWSER_SEED || path.join(build, 'tests', 'browser', 'xp_browser_seed'),
    nodeModules: process.env.XP_NODE_MODULES || path.join(src, 'dashboard', 'node_modules'),
    out: process.env.XP_BROWSER_OUT || path.join(build, 'tests', 'browser', 'screenshots'),
    webDir: process.env.XP_WEB_DIR || '',
  };
  if (!fs.existsSync(p.dashboard)) skip(`xp-dashboard is not built (${p.dashboard})`);
  if (!fs.existsSync(p.seed)) skip(`the seeding program is not built (${p.seed})`);
  if (!fs.existsSync(path.join(p.nodeModules, 'playwright-core'))) {
    skip(`playwright-core is not installed (${p.nodeModules}; run npm ci in dashboard/)`);
  }
  if (!fs.existsSync(CHROMIUM)) skip(`no chromium at ${CHROMIUM}`);
  return p;
}

export async function loadPlaywright(nodeModules) {
  const entry = path.join(nodeModules, 'playwright-core', 'index.mjs');
  try {
    return await import(pathToFileURL(entry).href);
  } catch (e) {
    skip(`cannot load playwright-core (${e.message})`);
  }
  return null;
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), prefix));
}

// Runs the seeding program; throws with its stderr on failure.
export function seed(seedProgram, args) {
  const r = spawnSync(seedProgram, args, { encoding: 'utf8', env: { ...process.env, XP_BACKEND: '' } });
  if (r.status !== 0) throw new Error(`${path.basename(seedProgram)} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
}

// Starts xp-dashboard on a free port; resolves {url, proc, stop()} once it
// printed its URL.
export function startDashboard(program, args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(program, [...args, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGTERM');
      reject(new Error(`xp-dashboard printed no URL within 30 s; stderr: ${err}`));
    }, 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /xp dashboard: (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1].endsWith('/') ? m[1] : `${m[1]}/`,
          proc,
          stderr: () => err,
          stop: () => new Promise((done) => {
            if (proc.exitCode !== null) { done(proc.exitCode); return; }
            proc.once('exit', (code) => done(code));
            proc.kill('SIGTERM');
          }),
        });
      }
    });
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`xp-dashboard exited (${code}) before listening: ${err}`));
    });
  });
}

export async function launch(pw, profileDir) {
  return pw.chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
}
