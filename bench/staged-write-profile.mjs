#!/usr/bin/env node
// Where the event loop goes during a streamed SET (issue 17 stage C): an in-process server, a
// value of --mib MiB sent by redis-cli (another process), every chunk-file call over 20 ms with the
// main thread's CPU and run-queue time (/proc/self/task/PID/schedstat) — the rest of the call was
// spent blocked in the kernel (I/O) — and the event-loop gaps over 40 ms.
//
// With --get, the value is then read back by redis-cli and the gaps during the GET are shown too.
//
//   npm run build && node bench/staged-write-profile.mjs [--mib 500] [--no-autocheckpoint] [--get]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startOurs, tempDir } from '../dist/test/helpers/servers.js';
import { ChunkFile } from '../dist/src/storage/chunks.js';

const { values: opts } = parseArgs({ options: { mib: { type: 'string', default: '500' }, 'no-autocheckpoint': { type: 'boolean', default: false }, get: { type: 'boolean', default: false } } });
const size = Number(opts.mib) * 1024 * 1024;
const file = join(tempDir('blobasaur-profile-'), 'value.bin');
writeFileSync(file, randomBytes(size));

const s = await startOurs({ proto_max_bulk_len: 536870912 });
if (opts['no-autocheckpoint']) for (const c of s.store.chunkFiles) c.setAutoCheckpoint(0);
const sched = () => readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
const slow = [];
for (const name of ['putChunks', 'open', 'reclaimStep']) {
  const orig = ChunkFile.prototype[name];
  ChunkFile.prototype[name] = function (...a) {
    const t = performance.now();
    const s0 = sched();
    try {
      return orig.apply(this, a);
    } finally {
      const wall = performance.now() - t;
      if (wall > 20) {
        const s1 = sched();
        const cpu = (s1[0] - s0[0]) / 1e6;
        const queued = (s1[1] - s0[1]) / 1e6;
        slow.push({ name, wall, cpu, queued, blocked: Math.max(0, wall - cpu - queued) });
      }
    }
  };
}
// Event-loop gaps over 40 ms, with the main thread's CPU and run-queue time inside each: a gap
// spent mostly in the run queue is the machine's other load, not work of ours on the loop.
let last = performance.now();
let lastSched = sched();
let phase = 'SET';
const gaps = [];
const timer = setInterval(() => {
  const now = performance.now();
  const sc = sched();
  if (now - last > 40) gaps.push({ phase, wall: now - last, cpu: (sc[0] - lastSched[0]) / 1e6, queued: (sc[1] - lastSched[1]) / 1e6 });
  last = now;
  lastSched = sc;
}, 5);

const t0 = performance.now();
const child = spawn('sh', ['-c', `redis-cli -p ${s.port} -x SET big < ${file}`], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d) => (out += d));
await new Promise((r) => child.on('exit', r));
const took = performance.now() - t0;
await new Promise((r) => setTimeout(r, 500));
let tookGet = NaN;
if (opts.get) {
  phase = 'GET';
  const g0 = performance.now();
  const getter = spawn('sh', ['-c', `redis-cli -p ${s.port} --no-raw GET big > /dev/null`], { stdio: ['ignore', 'ignore', 'inherit'] });
  await new Promise((r) => getter.on('exit', r));
  tookGet = performance.now() - g0;
  await new Promise((r) => setTimeout(r, 500));
}
clearInterval(timer);
await s.close();

const f = (x) => x.toFixed(1);
console.log(`SET ${opts.mib} MiB: ${out.trim()} in ${Math.round(took)} ms${opts.get ? `; GET in ${Math.round(tookGet)} ms` : ''}; event-loop gaps over 40 ms: ${gaps.length}`);
console.log('| event-loop gap during | wall ms | main thread CPU ms | run queue ms |');
console.log('| --- | --- | --- | --- |');
for (const g of gaps.sort((a, b) => b.wall - a.wall).slice(0, 12)) console.log(`| ${g.phase} | ${f(g.wall)} | ${f(g.cpu)} | ${f(g.queued)} |`);
console.log('| chunk-file call over 20 ms | wall ms | CPU ms | run queue ms | blocked ms |');
console.log('| --- | --- | --- | --- | --- |');
for (const c of slow.sort((a, b) => b.wall - a.wall).slice(0, 12)) console.log(`| ${c.name} | ${f(c.wall)} | ${f(c.cpu)} | ${f(c.queued)} | ${f(c.blocked)} |`);
