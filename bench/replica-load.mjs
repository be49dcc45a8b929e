#!/usr/bin/env node
// How long a replica's other clients wait while it loads a full copy of its primary (the copy is
// downloaded, then each shard is put in place). A primary holds --mib MiB of 256 KiB values (and
// with --chunked, as many MiB again in 4 MiB values stored in chunks); the replica holds as much of
// its own. A probe client on the replica does small GETs, one at a time, from REPLICAOF until the
// link is up; reported: its p50/p99/max (and the same probe's idle figures just before, the noise
// of the machine) and the time to the link up. Prints a Markdown table.
//
//   node bench/replica-load.mjs [--mib N] [--chunked] [--server-js path]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startBlobasaur, sleep } from './lib.mjs';

const { values: opts } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    chunked: { type: 'boolean', default: false },
    'server-js': { type: 'string' },
  },
});
const MiB = 1024 * 1024;
const config = 'log_level = "warn"\n[replication]\nbacklog_mb = 64\n';
const primary = await startBlobasaur(config, 'blobasaur-replica-load-p-', { serverJs: opts['server-js'], stdio: 'pipe' });
const replica = await startBlobasaur(config, 'blobasaur-replica-load-r-', { serverJs: opts['server-js'], stdio: process.env.BENCH_STDIO ?? 'pipe' });
const p = new Redis({ port: primary.port, host: '127.0.0.1' });
const r = new Redis({ port: replica.port, host: '127.0.0.1' });
const probe = new Redis({ port: replica.port, host: '127.0.0.1' });

async function fill(c, prefix) {
  const value = randomBytes(256 * 1024);
  const n = Math.round((Number(opts.mib) * MiB) / value.length);
  for (let i = 0; i < n; i += 16) {
    const pipe = c.pipeline();
    for (let j = i; j < Math.min(n, i + 16); j++) pipe.set(`${prefix}:${j}`, value);
    await pipe.exec();
  }
  if (opts.chunked) {
    const big = randomBytes(4 * MiB);
    for (let j = 0; j < Number(opts.mib) / 4; j++) await c.set(`${prefix}:big:${j}`, big);
  }
  for (let j = 0; j < 100; j++) await c.set(`probe:${j}`, 'x'.repeat(100));
}

try {
  await fill(p, 'p');
  await fill(r, 'r');
  await sleep(500);
  const stats = (lat) => {
    lat.sort((a, b) => a - b);
    const q = (x) => lat[Math.min(lat.length - 1, Math.floor(x * lat.length))];
    const f = (x) => x.toFixed(x < 10 ? 2 : 0);
    return `${f(q(0.5))} / ${f(q(0.99))} / ${f(lat[lat.length - 1])} ms (${lat.length} GETs)`;
  };
  // The same probe with nothing else going on: the machine's own noise.
  const idle = [];
  for (const end = Date.now() + 3000; Date.now() < end; ) {
    const t = process.hrtime.bigint();
    await probe.get('probe:0');
    idle.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const lat = [];
  let up = false;
  const started = Date.now();
  await r.replicaof('127.0.0.1', String(primary.port));
  const watch = (async () => {
    while (!up && Date.now() - started < 300_000) {
      const info = await r.info('replication');
      up = /master_link_status:up/.test(info);
      if (!up) await sleep(20);
    }
  })();
  for (let i = 0; !up && Date.now() - started < 300_000; i++) {
    const t = process.hrtime.bigint();
    await probe.get(`probe:${i % 100}`);
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  await watch;
  const took = Date.now() - started;
  console.log('| data on each side | probe GETs on the replica during the copy: p50 / p99 / max | same, idle (3 s before) | REPLICAOF to link up |');
  console.log('| --- | --- | --- | --- |');
  console.log(`| ${opts.mib} MiB inline${opts.chunked ? ` + ${opts.mib} MiB chunked` : ''} | ${stats(lat)} | ${stats(idle)} | ${took} ms |`);
} finally {
  p.disconnect();
  r.disconnect();
  probe.disconnect();
  primary.stop();
  replica.stop();
}
