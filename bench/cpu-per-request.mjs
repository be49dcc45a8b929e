#!/usr/bin/env node
// Server CPU time per request: a measure for before/after decisions on a busy machine, where
// throughput swings with what others run but the CPU a request costs our process moves much less.
// Reads utime + stime of the server from /proc/PID/stat around one redis-benchmark run.
//
//   node bench/cpu-per-request.mjs [--builds DIR1,DIR2] [--rounds 5] [--cases get-p16,set-p1] [--keys 20000] [--toml 'k = v']
//                                  [--size 1024] [--clients 50] [--requests N]
//
// --size: value bytes (the keys are loaded with values of that size, SETs write it); --requests
// overrides each case's request count. The 1 MiB cases of `npm run bench`:
//   --size 1048576 --keys 100 --clients 10 --cases set-p1,get-p1 --requests 400
// A build may carry environment variables for its server after `@`, joined by `+`, to compare
// launch settings of one build: `--builds dist/src,dist/src@NODE_OPTIONS=--v8-pool-size=1,
// dist/src@MALLOC_MMAP_THRESHOLD_=131072`.
//
// --builds: dist/src directories (or copies of them) to compare, alternating round by round
// (default: this checkout's dist/src); the word `ceiling` among them stands for
// bench/node-ceiling.mjs, the Node.js yardstick (a Map behind a minimal RESP loop), and `redis` for
// redis-server as `npm run bench` runs it (AOF, fsync every second), so the CPU the runtime itself
// and the reference need per request are measured in the same rounds. Prints, per build and case, the
// median µs of server CPU per request and the median req/s.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HOST, median, pipelined, root, startBlobasaur, startNodeCeiling, startRedis } from './lib.mjs';

const { values } = parseArgs({
  options: {
    builds: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    cases: { type: 'string', default: 'get-p1,get-p16,set-p1,set-p16' },
    keys: { type: 'string', default: '20000' },
    toml: { type: 'string', default: '' },
    size: { type: 'string', default: '1024' },
    clients: { type: 'string', default: '50' },
    requests: { type: 'string' },
  },
});
const builds = (values.builds ?? join(root, 'dist', 'src')).split(',');
const rounds = Number(values.rounds);
const keys = Number(values.keys);
const CASES = {
  'get-p1': { op: 'get', pipeline: 1, n: 40_000 },
  'get-p16': { op: 'get', pipeline: 16, n: 200_000 },
  'set-p1': { op: 'set', pipeline: 1, n: 30_000 },
  'set-p16': { op: 'set', pipeline: 16, n: 100_000 },
};
const size = Number(values.size);
const cases = values.cases.split(',').map((id) => ({ id, ...CASES[id], ...(values.requests === undefined ? {} : { n: Number(values.requests) }) }));
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / ticks; // utime, stime (fields 14, 15)
}

/** Runs `start` with `assignments` ("NAME=value+NAME2=value2") in this process's environment, which the server inherits. */
async function withEnv(assignments, start) {
  const saved = new Map();
  for (const a of assignments === '' ? [] : assignments.split('+')) {
    const eq = a.indexOf('=');
    const name = a.slice(0, eq);
    saved.set(name, process.env[name]);
    process.env[name] = a.slice(eq + 1);
  }
  try {
    return await start();
  } finally {
    for (const [name, v] of saved) {
      if (v === undefined) delete process.env[name];
      else process.env[name] = v;
    }
  }
}

const servers = [];
for (const b of builds) {
  const at = b.indexOf('@');
  const dir = at < 0 ? b : b.slice(0, at);
  const s =
    b === 'ceiling'
      ? await startNodeCeiling()
      : b === 'redis'
        ? await startRedis()
        : await withEnv(at < 0 ? '' : b.slice(at + 1), () => startBlobasaur(values.toml.replace(/\\n/g, '\n'), 'blobasaur-cpu-', { serverJs: join(dir, 'main.js'), stdio: 'pipe' }));
  const value = Buffer.alloc(size, 'x');
  await pipelined(s.port, keys, (i) => ['SET', `key:${String(i).padStart(12, '0')}`, value], { connections: 4, window: size > 65536 ? 2 : 128 });
  servers.push({ build: b, server: s, res: Object.fromEntries(cases.map((c) => [c.id, { us: [], rps: [] }])) });
}
for (let r = 0; r < rounds; r++) {
  for (const c of cases) {
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    for (const t of order) {
      const args = ['-h', HOST, '-p', String(t.server.port), '-t', c.op, '-n', String(c.n), '-c', values.clients, '-P', String(c.pipeline), '-d', String(size), '-r', String(keys), '--csv'];
      const before = cpuSeconds(t.server.pid);
      const out = spawnSync('redis-benchmark', args, { encoding: 'utf8' });
      const after = cpuSeconds(t.server.pid);
      const row = out.stdout.split('\n').find((l) => l.startsWith(`"${c.op.toUpperCase()}"`));
      const rps = Number(row?.split(',')[1]?.replace(/"/g, ''));
      t.res[c.id].us.push(((after - before) / c.n) * 1e6);
      t.res[c.id].rps.push(rps);
    }
  }
}
for (const t of servers) {
  for (const c of cases) {
    const { us, rps } = t.res[c.id];
    process.stdout.write(`${t.build}  ${c.id.padEnd(8)} CPU ${median(us).toFixed(2)} µs/request (${us.map((x) => x.toFixed(1)).join(' ')})  ${Math.round(median(rps))} req/s\n`);
  }
  t.server.stop();
}
