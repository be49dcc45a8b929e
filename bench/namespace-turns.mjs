#!/usr/bin/env node
// CPU time per turn of the event loop while HRANDFIELD, DEL of a large namespace and its purge run
// (issue 17 point 4), in-process: a store of 4 shards with the server's SQLite defaults, the
// commands through the dispatcher. A probe client's GET waits for at most one turn, so the longest
// turns bound what bench/bounded-work.mjs's probe sees. CPU time rather than wall time, so that a
// busy machine (other processes taking the cores) does not inflate the figures; it is the whole
// process's (Node 20 has no per-thread figure), so the maintenance thread's checkpoints and the
// garbage collector's threads may add to a turn's, never take from it. Turns under 0.1 ms (the
// loop spinning between steps) are left out.
//
//   npm run build && node bench/namespace-turns.mjs [--fields 200000] [--dist dist]
//
// --dist: another build's output directory (e.g. a copy of main's dist), for A/B runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    fields: { type: 'string', default: '200000' },
    dist: { type: 'string', default: 'dist' },
  },
});
const FIELDS = Number(opts.fields);
const dist = (path) => pathToFileURL(resolve(opts.dist, path)).href;
const { Harness } = await import(dist('test/helpers/harness.js'));
const { Store } = await import(dist('src/storage/store.js'));

const dir = mkdtempSync(join(tmpdir(), 'blobasaur-ns-turns-'));
const store = Store.open({
  dataDir: dir,
  numShards: 4,
  asyncWrite: false,
  batchSize: 1,
  batchTimeoutMs: 0,
  inflightCapacity: 10_000,
  inflightMaxBytes: 1 << 28,
  valueCacheBytes: 32 * 1024 * 1024,
  compression: null,
  sqlite: { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 5000, mmap_size_mb: 0 },
  onWriteFailure: (err) => console.error(err),
});
// The harness's constructor is private in TypeScript only: the store is the one opened here.
const h = new Harness(store, dir, []);
/** The process's CPU time so far, in ms. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const WORKING_TURN_MS = 0.1;
const fmt = (x) => x.toFixed(2);

/** Runs `work`, recording the CPU time of every turn of the loop meanwhile (an immediate per turn). */
async function turns(work) {
  const all = [];
  let on = true;
  let mark = cpuMs();
  const link = () => {
    const now = cpuMs();
    all.push(now - mark);
    mark = now;
    if (on) setImmediate(link);
  };
  setImmediate(link);
  const t = performance.now();
  const result = await work();
  const wall = performance.now() - t;
  on = false;
  await new Promise((r) => setImmediate(r));
  const out = all.filter((ms) => ms >= WORKING_TURN_MS).sort((a, b) => a - b);
  const q = (x) => out[Math.min(out.length - 1, Math.floor(x * out.length))] ?? 0;
  return { result, wall, n: out.length, p50: q(0.5), p99: q(0.99), max: out[out.length - 1] ?? 0, total: all.reduce((a, b) => a + b, 0) };
}

const rows = [];
const row = (what, r, own) => rows.push([what, `${r.n}`, `${fmt(r.p50)} / ${fmt(r.p99)} / ${fmt(r.max)}`, own]);
try {
  for (let i = 0; i < FIELDS; i += 1000) {
    const args = ['HSET', 'big'];
    for (let j = i; j < Math.min(FIELDS, i + 1000); j++) args.push(`field:${j}`, 'v'.repeat(100));
    await h.run(...args);
  }
  console.error(`loaded ${FIELDS} fields (${opts.dist})`);
  h.now = Date.now();
  for (const [label, args, times] of [
    ['HRANDFIELD big', [], 50],
    ['HRANDFIELD big -100', [-100], 50],
    ['HRANDFIELD big 1000 WITHVALUES', [1000, 'WITHVALUES'], 10],
  ]) {
    const r = await turns(async () => {
      for (let i = 0; i < times; i++) await h.run('HRANDFIELD', 'big', ...args);
    });
    row(`${label} ×${times}`, r, `${fmt(r.total / times)} ms CPU each`);
  }
  const del = await turns(() => h.run('DEL', 'big'));
  if (del.result !== 1) throw new Error(`DEL big answered ${del.result}`);
  row(`DEL of ${FIELDS.toLocaleString('en')} fields`, del, `${fmt(del.total)} ms CPU`);
  const purge = await turns(async () => {
    for (const t = Date.now(); store.hasPurgeWork(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() - t > 300_000) throw new Error('the purge did not end in 5 minutes');
    }
  });
  row('the purge after DEL', purge, `${fmt(purge.wall)} ms until done`);
  // A mid-size namespace: ~950 fields a shard, deleted at once below DROP_AT_ONCE_FIELDS.
  for (let i = 0; i < 3800; i += 950) {
    const args = ['HSET', 'mid'];
    for (let j = i; j < i + 950; j++) args.push(`field:${j}`, 'v'.repeat(100));
    await h.run(...args);
  }
  const mid = await turns(() => h.run('DEL', 'mid'));
  if (mid.result !== 1) throw new Error(`DEL mid answered ${mid.result}`);
  row('DEL of 3,800 fields', mid, `${fmt(mid.total)} ms CPU`);
} finally {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
}

console.log('| what | turns of 0.1 ms or more | CPU per turn p50 / p99 / max, ms | the command |');
console.log('| --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
