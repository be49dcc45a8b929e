#!/usr/bin/env node
// Whole-namespace and whole-dataset commands against the event loop (issue 17 point 4). A probe
// client does small GETs, one at a time, while a second client runs:
//   HGETALL / HKEYS / HVALS of a namespace of --fields fields (default 200,000, 100-byte values)
//   HRANDFIELD of it (repeats, distinct, WITHVALUES), then DEL of it and the background purge
//   (until no tombstone is left in the shard files)
//   FLUSHALL of --keys plain keys (default 300,000), then the background purge of their rows
//   KEYS * over --keys keys, against redis-server with the same keys (the same run)
// and reports the probe's p50/p99/max and each command's own time. Prints a Markdown table.
//
//   node bench/bounded-work.mjs [--fields N] [--keys N] [--server-js path] [--no-redis] [--only namespace]
// --only namespace: the namespace's rows alone (HGETALL to the purge after DEL), no KEYS/FLUSHALL/redis.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { pipelined, startBlobasaur, startRedis, sleep } from './lib.mjs';

const { values: opts } = parseArgs({
  options: {
    fields: { type: 'string', default: '200000' },
    keys: { type: 'string', default: '300000' },
    'server-js': { type: 'string' },
    'no-redis': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const FIELDS = Number(opts.fields);
const KEYS = Number(opts.keys);
if (opts.only !== undefined && opts.only !== 'namespace') throw new Error(`--only namespace is the one choice, not ${opts.only}`);
const rows = [];
const ms = (x) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 0) : '—');
const probeText = (p) => `p50 ${ms(p.p50)} / p99 ${ms(p.p99)} / max ${ms(p.max)} ms (${p.n} GETs)`;

const server = await startBlobasaur('log_level = "warn"\n', 'blobasaur-bounded-', { serverJs: opts['server-js'], stdio: 'pipe' });
const probe = new Redis({ port: server.port, host: '127.0.0.1' });
const main = new Redis({ port: server.port, host: '127.0.0.1' });
const probeKeys = Array.from({ length: 100 }, (_, i) => `probe:${i}`);

/** Tombstones of DELs of namespaces not yet purged, over the shard files (read beside the server). */
function tombstones(dataDir) {
  let n = 0;
  for (const file of readdirSync(dataDir).filter((f) => /^shard-\d+\.db$/.test(f))) {
    const db = new Database(join(dataDir, file), { readonly: true });
    try {
      n += db.prepare('SELECT count(*) FROM ns_tombstones').pluck().get();
    } finally {
      db.close();
    }
  }
  return n;
}

/** Runs `work` while a probe client on its own thread times small GETs against `port`. */
async function underProbe(port, work) {
  const worker = new Worker(new URL('./probe-worker.mjs', import.meta.url), { workerData: { port, keys: probeKeys } });
  const messages = [];
  let wake = null;
  worker.on('message', (m) => {
    messages.push(m);
    wake?.();
  });
  const message = async () => {
    while (messages.length === 0) await new Promise((r) => (wake = r));
    return messages.shift();
  };
  await message(); // ready
  await sleep(50);
  const t = performance.now();
  const result = await work();
  const own = performance.now() - t;
  worker.postMessage('stop');
  const probe = await message();
  await worker.terminate();
  return { result, own, probe };
}

try {
  for (const k of probeKeys) await probe.set(k, 'x'.repeat(100));
  await pipelined(server.port, FIELDS, (i) => ['HSET', 'big', `field:${i}`, 'v'.repeat(100)], { window: 256 });
  console.error(`loaded ${FIELDS} fields`);
  for (const [name, cmd] of [
    ['HGETALL', 'hgetall'],
    ['HKEYS', 'hkeys'],
    ['HVALS', 'hvals'],
  ]) {
    const r = await underProbe(server.port, () => main.call(cmd, 'big'));
    const n = Array.isArray(r.result) ? r.result.length : Object.keys(r.result).length * 2;
    rows.push([`${name} of ${FIELDS.toLocaleString('en')} fields (${n.toLocaleString('en')} elements)`, probeText(r.probe), `${ms(r.own)} ms`]);
  }
  const hlen = await underProbe(server.port, async () => {
    for (let i = 0; i < 100; i++) await main.hlen('big');
  });
  rows.push([`HLEN ×100 at ${FIELDS.toLocaleString('en')} fields`, probeText(hlen.probe), `${ms(hlen.own / 100)} ms each`]);
  // Repeated for a second at least, so that the probe times enough GETs however fast each one is.
  for (const [label, args, least] of [
    ['HRANDFIELD big -100', [-100], 20],
    ['HRANDFIELD big 1000 WITHVALUES', [1000, 'WITHVALUES'], 5],
  ]) {
    const r = await underProbe(server.port, async () => {
      let times = 0;
      for (const t = performance.now(); times < least || performance.now() - t < 1000; times++) await main.call('hrandfield', 'big', ...args);
      return times;
    });
    rows.push([`${label} ×${r.result} at ${FIELDS.toLocaleString('en')} fields`, probeText(r.probe), `${ms(r.own / r.result)} ms each`]);
  }
  const del = await underProbe(server.port, async () => {
    if ((await main.del('big')) !== 1) throw new Error('DEL big did not delete it');
    if ((await main.exists('big')) !== 0 || (await main.dbsize()) !== 100) throw new Error('big still counted after DEL');
  });
  rows.push([`DEL of a namespace of ${FIELDS.toLocaleString('en')} fields (reply, EXISTS, DBSIZE)`, probeText(del.probe), `${ms(del.own)} ms`]);
  // The purge runs after the reply: probe until the shard files hold no tombstone (its end).
  const delPurge = await underProbe(server.port, async () => {
    for (const t = Date.now(); tombstones(server.dataDir) > 0; await sleep(50)) {
      if (Date.now() - t > 300_000) throw new Error('the purge after DEL did not end in 5 minutes');
    }
  });
  rows.push(['the purge after DEL, until its tombstones are gone', probeText(delPurge.probe), `${ms(delPurge.own)} ms`]);

  if (opts.only === undefined) await wholeDataset();
} finally {
  probe.disconnect();
  main.disconnect();
  server.stop();
}

/** KEYS and FLUSHALL over --keys plain keys, then redis-server's same commands (unless --no-redis). */
async function wholeDataset() {
  await main.flushall();
  for (const k of probeKeys) await probe.set(k, 'x'.repeat(100));
  await pipelined(server.port, KEYS, (i) => ['SET', `key:${i}`, 'v'.repeat(100)], { window: 256 });
  console.error(`loaded ${KEYS} keys`);

  const keys = await underProbe(server.port, () => main.keys('*'));
  rows.push([`KEYS * over ${KEYS.toLocaleString('en')} keys`, probeText(keys.probe), `${ms(keys.own)} ms`]);

  const flush = await underProbe(server.port, async () => {
    await main.flushall();
    const acked = performance.now();
    const dbsize = await main.dbsize();
    if (dbsize !== 0) throw new Error(`DBSIZE ${dbsize} right after FLUSHALL`);
    return acked;
  });
  rows.push([`FLUSHALL of ${KEYS.toLocaleString('en')} keys (reply)`, probeText(flush.probe), `${ms(flush.own)} ms`]);
  // The purge runs after the reply: probe until the shard files hold no flushed table.
  for (const k of probeKeys) await probe.set(k, 'x'.repeat(100));
  const purge = await underProbe(server.port, async () => {
    const t = Date.now();
    await sleep(3000);
    return Date.now() - t;
  });
  rows.push(['the 3 s after FLUSHALL (background purge of its rows)', probeText(purge.probe), '—']);

  if (!opts['no-redis']) {
    const redis = await startRedis('redis-bounded-');
    try {
      const rc = new Redis({ port: redis.port, host: '127.0.0.1' });
      const rprobe = new Redis({ port: redis.port, host: '127.0.0.1' });
      for (const k of probeKeys) await rprobe.set(k, 'x'.repeat(100));
      await pipelined(redis.port, KEYS, (i) => ['SET', `key:${i}`, 'v'.repeat(100)], { window: 256 });
      const rk = await underProbe(redis.port, () => rc.keys('*'));
      rows.push([`redis-server: KEYS * over ${KEYS.toLocaleString('en')} keys`, probeText(rk.probe), `${ms(rk.own)} ms`]);
      await pipelined(redis.port, FIELDS, (i) => ['HSET', 'big', `field:${i}`, 'v'.repeat(100)], { window: 256 });
      const rh = await underProbe(redis.port, () => rc.hgetall('big'));
      rows.push([`redis-server: HGETALL of ${FIELDS.toLocaleString('en')} fields`, probeText(rh.probe), `${ms(rh.own)} ms`]);
      const rf = await underProbe(redis.port, () => rc.flushall());
      rows.push([`redis-server: FLUSHALL of ${(KEYS + 1).toLocaleString('en')} keys (SYNC)`, probeText(rf.probe), `${ms(rf.own)} ms`]);
      rc.disconnect();
      rprobe.disconnect();
    } finally {
      redis.stop();
    }
  }
}

console.log('| what | probe client\'s small GETs meanwhile | the command itself |');
console.log('| --- | --- | --- |');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
