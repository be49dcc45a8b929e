#!/usr/bin/env node
// How long the other replica of a primary takes to follow a new primary after a failover. One
// primary holds --mib MiB (256 KiB values; with --chunked, 4 MiB values stored in chunks); two
// replicas follow it. The first replica is promoted (REPLICAOF NO ONE), then the second is pointed
// at it (REPLICAOF); timed from that REPLICAOF to the second replica serving a key written on the
// new primary right after it, with equal offsets. Reported: that time, whether a copy was taken
// (full_syncs / partial_syncs of the second replica), and for comparison the time a node with no
// history (a fresh server) takes to follow the new primary: a full copy of the same data.
// With --server-js pointing at a build without resume, the second replica takes a full copy.
// Then: the bytes of chunks that replica fetches for a SET of 20 MiB, an APPEND of 3 bytes to it
// and a SETRANGE of 6 bytes in its middle (INFO replication repl_blob_bytes_fetched).
//
//   node bench/failover-resume.mjs [--mib N] [--chunked] [--server-js path]
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
const MIB = Number(opts.mib);
const config = 'log_level = "warn"\n[replication]\nbacklog_mb = 64\n';
const start = (name) => startBlobasaur(config, `blobasaur-failover-${name}-`, { serverJs: opts['server-js'], stdio: 'pipe' });
const servers = [];
const clients = [];
const connect = (s) => {
  const c = new Redis({ port: s.port, host: '127.0.0.1' });
  clients.push(c);
  return c;
};
const field = (info, name) => (new RegExp(`^${name}:(.*)\\r$`, 'm').exec(info) ?? [])[1] ?? '';

async function caughtUp(p, r, marker) {
  const [pi, ri] = [await p.info('replication'), await r.info('replication')];
  if (field(ri, 'master_link_status') !== 'up' || field(pi, 'master_repl_offset') !== field(ri, 'slave_repl_offset')) return false;
  return (await r.get(marker)) === 'yes';
}

async function until(what, cond, timeoutMs = 600_000) {
  const t = Date.now();
  while (!(await cond())) {
    if (Date.now() - t > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Time for `follower` to follow `primary` after REPLICAOF, to a key written just after it. */
async function follow(primary, primaryServer, follower, marker) {
  const t = performance.now();
  await follower.replicaof('127.0.0.1', String(primaryServer.port));
  await primary.set(marker, 'yes');
  await until(marker, () => caughtUp(primary, follower, marker));
  return performance.now() - t;
}

try {
  const [ps, s1, s2, s3] = [await start('p'), await start('r1'), await start('r2'), await start('fresh')];
  servers.push(ps, s1, s2, s3);
  const [p, r1, r2, fresh] = [connect(ps), connect(s1), connect(s2), connect(s3)];
  const size = opts.chunked ? 4 * MiB : 256 * 1024;
  const n = Math.ceil((MIB * MiB) / size);
  for (let i = 0; i < n; i += 8) {
    const batch = p.pipeline();
    for (let j = i; j < Math.min(n, i + 8); j++) batch.set(`v:${j}`, randomBytes(size));
    await batch.exec();
  }
  for (const r of [r1, r2]) await r.replicaof('127.0.0.1', String(ps.port));
  await p.set('m0', 'yes');
  await until('replicas', async () => (await caughtUp(p, r1, 'm0')) && (await caughtUp(p, r2, 'm0')));
  // Writes after the copies, in both replicas' stream.
  for (let i = 0; i < 1000; i++) await p.set(`late:${i}`, `x${i}`);
  await p.wait(2, 60_000);

  await r1.replicaof('NO', 'ONE');
  const resumeMs = await follow(r1, s1, r2, 'm1');
  const info2 = await r2.info('replication');
  const freshMs = await follow(r1, s1, fresh, 'm2');
  const infoF = await fresh.info('replication');
  const row = (what, ms, info) => `| ${what} | ${MIB} MiB${opts.chunked ? ' (4 MiB chunked values)' : ' (256 KiB values)'} | ${(ms / 1000).toFixed(2)} s | ${field(info, 'full_syncs')} / ${field(info, 'partial_syncs') || '—'} |`;
  console.log('| Follower of the new primary | Data | REPLICAOF → serving a write of the new primary | full_syncs / partial_syncs |');
  console.log('|---|---|---|---|');
  console.log(row('the other replica of the old primary', resumeMs, info2));
  console.log(row('a node with no history (full copy)', freshMs, infoF));

  // A small change to a large chunked value: bytes of chunks the replica fetched for it.
  const fetched = async () => Number(field(await r2.info('replication'), 'repl_blob_bytes_fetched') || NaN);
  if (Number.isNaN(await fetched())) throw new Error('this build does not count the bytes of chunks a replica fetches');
  const step = async (what, write) => {
    const before = await fetched();
    await write();
    await r1.wait(1, 60_000);
    return `| ${what} | ${(await fetched()) - before} |`;
  };
  const rows = [
    await step('SET of a 20 MiB value', () => r1.set('big', randomBytes(20 * MiB))),
    await step('APPEND of 3 bytes to it', () => r1.append('big', 'xyz')),
    await step('SETRANGE of 6 bytes in its middle', () => r1.setrange('big', 10 * MiB + 17, 'middle')),
  ];
  console.log('\n| Write on the primary | Bytes of chunks the replica fetched |');
  console.log('|---|---|');
  for (const r of rows) console.log(r);
} finally {
  for (const c of clients) c.disconnect();
  for (const s of servers) s.stop();
}
