#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time and
// the call paths with the most inclusive time, as percentages of the whole profile. For a flame
// graph, open the same file in Chrome DevTools (Performance tab) or https://www.speedscope.app.
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/src/main.js --addr 127.0.0.1:7000 --data-dir /tmp/d &
//   redis-benchmark -p 7000 -t get -d 1024 -r 20000 -n 300000 -c 50 -P 16 -q; redis-cli -p 7000 shutdown
//   node bench/cpu-profile.mjs /tmp/prof/CPU.*.0.001.cpuprofile [top]     (the .0.001 file is the main thread)
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node bench/cpu-profile.mjs FILE.cpuprofile [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per sampled node: each sample lasts until the next one.
const time = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  time.set(id, (time.get(id) ?? 0) + dt);
  total += dt;
});

const label = (n) => {
  const f = n.callFrame;
  const where = f.url === '' ? '' : ` ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  return `${f.functionName || '(anonymous)'}${where}`;
};
const self = new Map();
const inclusive = new Map();
for (const [id, t] of time) {
  const own = label(nodes.get(id));
  self.set(own, (self.get(own) ?? 0) + t);
  // A recursive function counts once per sample.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(nodes.get(cur));
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + t);
  }
}
const show = (title, m) => {
  process.stdout.write(`${title}\n`);
  for (const [l, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((100 * t) / total).toFixed(1).padStart(6)}%  ${l}\n`);
  }
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n\n`);
show('self time', self);
process.stdout.write('\n');
show('inclusive time', inclusive);
