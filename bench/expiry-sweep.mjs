#!/usr/bin/env node
// Sweeping a mass expiry: 100,000 keys expire at once while a client keeps doing small GETs.
// Reports the reader's latency before and during the sweep, how long the sweep took, and the
// shard files' size before and after (the sweeper returns pages to the file system as it goes).
//
//   node bench/expiry-sweep.mjs [--keys 100000] [--out docs/expiry-sweep.md | -]
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { root, startBlobasaur, timeGets } from './lib.mjs';
import { shardFileBytes } from '../dist/src/observability/metrics.js';
import { readLayout } from '../dist/src/storage/layout.js';
import { shardPath } from '../dist/src/storage/schema.js';

const { values: opts } = parseArgs({
  options: { keys: { type: 'string', default: '100000' }, out: { type: 'string', default: 'docs/expiry-sweep.md' } },
});
const KEYS = Number(opts.keys);
const { port, dataDir, stop: cleanup } = await startBlobasaur('log_level = "warn"\nasync_write = true\nbatch_size = 500\nbatch_timeout_ms = 5\n', 'blobasaur-sweep-');
const filesBytes = () => {
  let n = 0;
  for (let id = 0; id < readLayout(dataDir); id++) n += shardFileBytes(shardPath(dataDir, id));
  return n;
};

try {
  const writer = new Redis({ port, host: '127.0.0.1' });
  const reader = new Redis({ port, host: '127.0.0.1' });
  for (let i = 0; i < 1000; i++) await reader.set(`live:${i}`, 'x'.repeat(100));
  const value = Buffer.alloc(1024, 'v');
  const expireAt = Date.now() + 60_000;
  const started = Date.now();
  for (let base = 0; base < KEYS; base += 5000) {
    const p = writer.pipeline();
    for (let i = base; i < Math.min(KEYS, base + 5000); i++) p.set(`doomed:${i}`, value, 'PXAT', expireAt);
    await p.exec();
  }
  const writeSeconds = (Date.now() - started) / 1000;
  // Move the expiry up so that all keys expire together at one moment, far enough ahead that the
  // whole pipeline is applied before it (a time already past would delete keys directly).
  const moment = Date.now() + Math.max(10_000, writeSeconds * 2000);
  const p = writer.pipeline();
  for (let i = 0; i < KEYS; i++) p.pexpireat(`doomed:${i}`, moment);
  await p.exec();
  await new Promise((r) => setTimeout(r, 500));
  const sizeBefore = filesBytes();

  const liveKeys = Array.from({ length: 1000 }, (_, k) => `live:${k}`);
  const measure = (ms, until) => timeGets(reader, liveKeys, ms, until);
  const quiet = await measure(Math.min(3000, moment - Date.now() - 200));
  await new Promise((r) => setTimeout(r, Math.max(0, moment - Date.now() + 50)));
  const sweepStart = Date.now();
  // INFO stats' expired_keys counts the rows the sweeper deleted.
  let swept = 0;
  const poll = setInterval(() => {
    void writer.info('stats').then((info) => {
      swept = Number(/expired_keys:(\d+)/.exec(info)?.[1] ?? 0);
    });
  }, 100);
  const during = await measure(120_000, () => swept >= KEYS);
  clearInterval(poll);
  const dbsize = await reader.dbsize();
  const sweepSeconds = (Date.now() - sweepStart) / 1000;
  await new Promise((r) => setTimeout(r, 500));
  const sizeAfter = filesBytes();
  writer.disconnect();
  reader.disconnect();

  const f = (x) => x.toFixed(2);
  const mib = (b) => (b / 1048576).toFixed(1);
  const doc = `# Sweeping a mass expiry

Made by \`node bench/expiry-sweep.mjs --keys ${KEYS}\` on ${new Date().toISOString().slice(0, 10)} (${cpus().length} cores,
${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}). ${KEYS} keys of 1 KiB (written in ${f(writeSeconds)} s) all expire at
the same moment; one client keeps GETting 100-byte live keys one at a time before and while the
background sweeper deletes the expired rows (25 rows per shard per step, queued in order with the
writes, run by the maintenance thread at nice 19, 2 ms apart) and returns their pages to the file
system (incremental vacuum, up to 256 KiB per step). The reader and the server share this machine's
cores, so the reader saturates it: that is the worst case for the sweep's speed, not for the reader.

| phase | GETs | p50 ms | p99 ms | max ms |
| --- | ---: | ---: | ---: | ---: |
| before the expiry | ${quiet.n} | ${f(quiet.p50)} | ${f(quiet.p99)} | ${f(quiet.max)} |
| while ${KEYS} expired keys are swept | ${during.n} | ${f(during.p50)} | ${f(during.p99)} | ${f(during.max)} |

The sweep of ${swept} rows took ${f(sweepSeconds)} s. Shard files (with WAL): ${mib(sizeBefore)} MiB before the
sweep, ${mib(sizeAfter)} MiB after. Live keys afterwards: ${dbsize}.

What this shows: the reader is not paused by the sweep. Each step's deletes, vacuum and the WAL
checkpoints run on the maintenance thread (docs/operations.md), so the event loop only queues the
step and records its result. What is left is a rise of the reader's p99 by a tenth of a millisecond
or two: on 2 cores shared by the reader, the server and the maintenance thread, the thread's work
still competes for CPU. For comparison, when steps ran inside commits on the event loop and the
checkpoints with them (before the maintenance thread), the same run measured p99 0.30 ms before and
1.28 ms during the sweep, with pauses up to 100 ms; most of those long pauses were an \`INFO\`
that scanned every shard, and the rest automatic WAL checkpoints inside commits.
`;
  if (opts.out === '-') process.stdout.write(doc);
  else {
    writeFileSync(join(root, opts.out), doc);
    process.stdout.write(doc);
  }
} finally {
  cleanup();
}
