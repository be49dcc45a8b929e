#!/usr/bin/env node
// The scale run's random 64 KiB GET latency, two (or more) builds side by side: each build gets its
// own fresh data dir loaded with the same keys and values as `npm run bench -- --scale`, the files
// are read once so both sets sit in the page cache, then series of random GETs (one client, one at a
// time, the same key sequence for every build) alternate between the builds. Wall-clock latency on
// a shared machine swings; alternating series and taking medians puts both builds under the same
// swings, and the server CPU time per GET (/proc/PID/stat) moves much less than the latency does.
//
//   node bench/get-latency.mjs --builds DIR1,DIR2 [--gib 2] [--series 7] [--gets 5000] [--settle 15] [--idle 20]
//
// --builds: dist/src directories (a build of an older commit in another worktree works, as long as
// its node_modules resolve). --gib: data set size per build (each build needs that much disk, plus
// its WAL while loading). Prints, per build, the median over the series of p50, p99, p99.9 and of
// the server's CPU µs per GET, and each series' figures. --settle: seconds to wait after the loads
// before reading the files into the page cache; --idle: seconds every server then sits idle before
// the first series (see the comment at that pause).
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync, statfsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { command, median, pipelined, root, sleep, startBlobasaur } from './lib.mjs';
import { VALUE, keyName, randomGets, scaleValues } from './scale.mjs';

const { values } = parseArgs({
  options: {
    builds: { type: 'string', default: join(root, 'dist', 'src') },
    gib: { type: 'string', default: '2' },
    series: { type: 'string', default: '7' },
    gets: { type: 'string', default: '5000' },
    settle: { type: 'string', default: '15' },
    idle: { type: 'string', default: '20' },
  },
});
const builds = values.builds.split(',');
const gib = Number(values.gib);
const seriesCount = Number(values.series);
const gets = Number(values.gets);
const keys = Math.max(1, Math.round((gib * 2 ** 30) / VALUE));
/** A server using less CPU than this with no client is settled. */
const IDLE_CPU = 0.03;
const IDLE_WAIT_MS = 180_000;
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const log = (s) => process.stdout.write(`${s}\n`);
const f2 = (x) => x.toFixed(2);
const f3 = (x) => x.toFixed(3);
const load = () => loadavg().map(f2).join(' / ');

/** utime + stime of a process, or with `thread` of its main thread only (the event loop). */
function cpuSeconds(pid, thread = false) {
  const f = readFileSync(thread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / ticks; // utime, stime (fields 14, 15)
}

/** Reads every file under `dir` once, so the data set is in the page cache before the series. */
function warm(dir) {
  const buf = Buffer.allocUnsafe(4 << 20);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const fd = openSync(path, 'r');
    try {
      while (readSync(fd, buf, 0, buf.length, null) > 0);
    } finally {
      closeSync(fd);
    }
  }
}

/** A small seeded generator (mulberry32), so every build is asked for the same keys in a series. */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const need = builds.length * (keys * VALUE * 1.5) + 2 * 2 ** 30;
const st = statfsSync(tmpdir());
if (st.bavail * st.bsize < need) {
  process.stderr.write(`get-latency: about ${(need / 2 ** 30).toFixed(1)} GiB needed in ${tmpdir()}, ${((st.bavail * st.bsize) / 2 ** 30).toFixed(1)} GiB free. Nothing was written.\n`);
  process.exit(1);
}

log(`get-latency: ${keys} keys × 64 KiB per build, ${builds.length} builds, ${seriesCount} series of ${gets} GETs; load ${load()}`);
const valueOf = scaleValues();
const servers = [];
try {
  for (const b of builds) {
    const s = await startBlobasaur('', 'blobasaur-getlat-', { serverJs: join(b, 'main.js'), stdio: 'pipe' });
    servers.push({ build: b, server: s, runs: [] });
    const t0 = Date.now();
    await pipelined(s.port, keys, (i) => ['SET', keyName(i), valueOf(i)], { connections: 4, window: 8 });
    const dbsize = await command(s.port, ['DBSIZE']);
    if (dbsize !== keys) throw new Error(`${b}: DBSIZE ${dbsize} after ${keys} SETs`);
    log(`get-latency: ${b} loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s (pid ${s.pid}); load ${load()}`);
  }
  // Let the checkpoints and the kernel's write-back of the loads finish, then read the files.
  await sleep(Number(values.settle) * 1000);
  for (const t of servers) warm(t.server.dataDir);
  for (const t of servers) await randomGets(t.server.port, keys, 1000, seeded(1)); // JIT warm-up
  // A server still checkpointing what it just loaded (its maintenance thread) burns CPU that would
  // be charged to its GETs, and the last one loaded is the furthest behind: wait until every server
  // is idle (under IDLE_CPU over 2 s), at most IDLE_WAIT_MS.
  const idleSince = Date.now();
  let idle = '';
  for (;;) {
    const cpu0 = servers.map((t) => cpuSeconds(t.server.pid));
    await sleep(2000);
    const share = servers.map((t, k) => (cpuSeconds(t.server.pid) - cpu0[k]) / 2);
    idle = share.map((x) => `${(x * 100).toFixed(1)}%`).join(', ');
    if (share.every((x) => x < IDLE_CPU) || Date.now() - idleSince > IDLE_WAIT_MS) break;
  }
  log(`get-latency: settled and warmed after ${((Date.now() - idleSince) / 1000).toFixed(0)} s more; idle CPU over 2 s ${idle}; load ${load()}`);
  // A server that sat idle for ~10 s or more spends about twice the CPU per 64 KiB GET from then on
  // (V8 starts a mark-compact every few hundred GETs; docs/benchmarks.md, "The scale run"), and the
  // builds were loaded one after the other, so the first ones sat idle longest. An equal pause
  // after the warm-up puts every server in the same state; --idle 0 leaves them as loaded.
  await sleep(Number(values.idle) * 1000);
  for (let r = 0; r < seriesCount; r++) {
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    for (const t of order) {
      const cpu0 = cpuSeconds(t.server.pid);
      const loop0 = cpuSeconds(t.server.pid, true);
      const g = await randomGets(t.server.port, keys, gets, seeded(1000 + r));
      const cpuUs = ((cpuSeconds(t.server.pid) - cpu0) / gets) * 1e6;
      const loopUs = ((cpuSeconds(t.server.pid, true) - loop0) / gets) * 1e6;
      t.runs.push({ ...g, cpuUs, loopUs });
      log(`  series ${r + 1} ${t.build}: p50 ${f3(g.p50)} p99 ${f3(g.p99)} p99.9 ${f3(g.p999)} ms, CPU ${cpuUs.toFixed(1)} µs/GET (event loop ${loopUs.toFixed(1)}); load ${load()}`);
    }
  }
  log(`\nmedians of ${seriesCount} series (load at the end ${load()}):`);
  for (const t of servers) {
    const m = (k) => median(t.runs.map((x) => x[k]));
    log(`${t.build}  p50 ${f3(m('p50'))} ms  p99 ${f3(m('p99'))} ms  p99.9 ${f3(m('p999'))} ms  mean ${(m('mean') * 1000).toFixed(0)} µs  CPU ${m('cpuUs').toFixed(1)} µs/GET (event loop ${m('loopUs').toFixed(1)})`);
  }
} finally {
  for (const t of servers) t.server.stop();
}
