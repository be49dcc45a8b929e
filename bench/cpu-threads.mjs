#!/usr/bin/env node
// Server CPU per request by thread: the event loop (main), the maintenance thread (WAL checkpoints
// and sweeps; the one at nice 19) and the rest (V8's helper threads: concurrent and parallel garbage
// collection, compilation; libuv's pool). bench/cpu-per-request.mjs gives the process total; this
// says where it goes. utime + stime of each /proc/PID/task/TID/stat around one redis-benchmark run,
// plus 1.5 s after it for the checkpoint of what it wrote.
//
//   node bench/cpu-threads.mjs [--build dist/src] [--keys 20000]
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HOST, pipelined, root, sleep, startBlobasaur } from './lib.mjs';

const { values } = parseArgs({ options: { build: { type: 'string' }, keys: { type: 'string', default: '20000' } } });
const build = values.build ?? join(root, 'dist', 'src');
const keys = Number(values.keys);
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const CASES = [
  ['set', 16, 200_000],
  ['set', 1, 40_000],
  ['get', 16, 300_000],
  ['get', 1, 60_000],
];

const s = await startBlobasaur('', 'blobasaur-threads-', { serverJs: join(build, 'main.js'), stdio: 'pipe' });
try {
  const value = Buffer.alloc(1024, 'x');
  await pipelined(s.port, keys, (i) => ['SET', `key:${String(i).padStart(12, '0')}`, value], { connections: 4, window: 128 });
  /** CPU seconds per thread, labelled main, maintenance or other. */
  const snapshot = () => {
    const out = new Map();
    for (const tid of readdirSync(`/proc/${s.pid}/task`)) {
      let stat;
      try {
        stat = readFileSync(`/proc/${s.pid}/task/${tid}/stat`, 'utf8');
      } catch {
        continue; // the thread ended meanwhile
      }
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const label = Number(tid) === s.pid ? 'main' : Number(f[16]) === 19 ? 'maintenance' : 'other';
      out.set(label, (out.get(label) ?? 0) + (Number(f[11]) + Number(f[12])) / ticks);
    }
    return out;
  };
  for (const [op, pipeline, n] of CASES) {
    const before = snapshot();
    spawnSync('redis-benchmark', ['-h', HOST, '-p', String(s.port), '-t', op, '-n', String(n), '-c', '50', '-P', String(pipeline), '-d', '1024', '-r', String(keys), '--csv'], { encoding: 'utf8' });
    await sleep(1500);
    const after = snapshot();
    const us = (label) => (((after.get(label) ?? 0) - (before.get(label) ?? 0)) / n) * 1e6;
    const total = us('main') + us('maintenance') + us('other');
    process.stdout.write(`${op.toUpperCase()} P${pipeline}: main ${us('main').toFixed(2)}, maintenance ${us('maintenance').toFixed(2)}, other threads ${us('other').toFixed(2)}; total ${total.toFixed(2)} µs/request\n`);
  }
} finally {
  s.stop();
}
