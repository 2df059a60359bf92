// diff.js — unified diff lines as a coloured block: added lines green,
// removed red, hunk headers blue, and long runs of unchanged lines collapsed
// behind a button that shows them.

import { h } from './dom.js';

const KEEP = 3; // unchanged lines kept at either side of a change
const MIN_FOLD = 8; // runs shorter than this are not worth folding

function lineClass(line) {
  if (line.startsWith('+++') || line.startsWith('---')) return 'd-file';
  if (line.startsWith('+')) return 'd-add';
  if (line.startsWith('-')) return 'd-del';
  if (line.startsWith('@@')) return 'd-hunk';
  return 'd-ctx';
}

function lineEl(line) {
  return h('div', { class: ['d-line', lineClass(line)] }, line === '' ? ' ' : line);
}

// A <div class="diff"> of lines (strings); empty lines list: "identical".
export function diffBlock(lines, emptyText = 'identical') {
  const box = h('div', { class: 'diff' });
  if (!lines || lines.length === 0) {
    box.append(h('div', { class: 'd-same muted' }, emptyText));
    return box;
  }
  let i = 0;
  while (i < lines.length) {
    if (lineClass(lines[i]) !== 'd-ctx') { box.append(lineEl(lines[i])); i++; continue; }
    let j = i;
    while (j < lines.length && lineClass(lines[j]) === 'd-ctx') j++;
    const run = lines.slice(i, j);
    const head = i === 0 ? 0 : KEEP;
    const tail = j === lines.length ? 0 : KEEP;
    if (run.length - head - tail >= MIN_FOLD) {
      for (const l of run.slice(0, head)) box.append(lineEl(l));
      const hidden = run.slice(head, run.length - tail);
      const fold = h('button', { class: 'd-fold', title: 'show the unchanged lines' }, `⋯ ${hidden.length} unchanged lines`);
      fold.addEventListener('click', () => {
        const frag = document.createDocumentFragment();
        for (const l of hidden) frag.append(lineEl(l));
        fold.replaceWith(frag);
      });
      box.append(fold);
      for (const l of run.slice(run.length - tail)) box.append(lineEl(l));
    } else {
      for (const l of run) box.append(lineEl(l));
    }
    i = j;
  }
  return box;
}

// Splits a unified diff text into lines.
export function diffLines(text) {
  if (!text) return [];
  const lines = String(text).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
