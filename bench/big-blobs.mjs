#!/usr/bin/env node
// Big values and whole-store counts against the event loop (issue 17's budget). A probe — a second
// client in a process of its own (bench/probe-gets.mjs) — does small GETs, one at a time, while the
// first client:
//   counts  DBSIZE / INFO keyspace / INFO blobasaur at --keys keys (default 300,000)
//   big     SETs a --mib MiB value (default 500), GETs it back, GETRANGE 16 bytes, APPEND 3 bytes
//           (ioredis), then round-trips the value through redis-cli and redis-py (--clients)
//   ratio   SET and GET of 1 MiB values, redis-benchmark (10 clients, P1, 100 keys, as in
//           `npm run bench`) against blobasaur and redis-server alternately, --rounds times
// and reports the probe's p50/p99/max, the server's RSS growth (VmRSS sampled every 20 ms, and
// VmHWM before and after) and each command's own latency. Prints a Markdown table. `big` also says
// whether the server's RSS came back to baseline after the DEL: within BASELINE_SLACK (8 MiB) of
// its RSS before the SET, at most SETTLE_MS (5 s) after the DEL returned.
//
//   node bench/big-blobs.mjs [--part counts|big|ratio|all] [--keys N] [--mib N] [--clients] [--rounds N] [--server-js path]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createInterface } from 'node:readline';
import { pipelined, processMemory, startBlobasaur, startRedis, tempDir } from './lib.mjs';
import { benchArgs, parseCsv } from './matrix.mjs';

const { values: opts } = parseArgs({
  options: {
    part: { type: 'string', default: 'all' },
    keys: { type: 'string', default: '300000' },
    mib: { type: 'string', default: '500' },
    clients: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    'server-js': { type: 'string' },
  },
});
const MiB = 1024 * 1024;
const rows = [];
const row = (what, probe, own, note = '') => rows.push({ what, probe, own, note });
const ms = (x) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 0) : '—');
const probeText = (p) => `p50 ${ms(p.p50)} / p99 ${ms(p.p99)} / max ${ms(p.max)} ms (${p.n} GETs)`;

const config = 'log_level = "warn"\nproto_max_bulk_len = 536870912\nclient_query_buffer_limit = 1073741824\n';
const server = await startBlobasaur(config, 'blobasaur-big-', { serverJs: opts['server-js'], stdio: 'pipe' });
const main = new Redis({ port: server.port, host: '127.0.0.1' });

/** The probe process: "start"/"stop" on its stdin, one JSON line of figures per "stop". */
const probeProc = spawn(process.execPath, [new URL('./probe-gets.mjs', import.meta.url).pathname, String(server.port)], { stdio: ['pipe', 'pipe', 'inherit'] });
const probeLines = createInterface({ input: probeProc.stdout })[Symbol.asyncIterator]();
const probeLine = async () => (await probeLines.next()).value;
if ((await probeLine()) !== 'ready') throw new Error('probe process did not start');

/** Runs `work` while the probe process times small GETs; returns the work's result, its ms and the probe's figures. */
async function underProbe(work) {
  probeProc.stdin.write('start\n');
  // Let the probe's first GETs go out before the work starts.
  await new Promise((r) => setTimeout(r, 50));
  const t = performance.now();
  const result = await work();
  const own = performance.now() - t;
  probeProc.stdin.write('stop\n');
  return { result, own, probe: JSON.parse(await probeLine()) };
}

/** The probe alone for `ms`. */
async function quietProbe(ms) {
  return (await underProbe(() => new Promise((r) => setTimeout(r, ms)))).probe;
}

/** Samples the server's RSS every 20 ms while `work` runs; returns the work's result and the peak growth. */
async function watchRss(work) {
  const base = processMemory(server.pid).rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, processMemory(server.pid).rss)), 20);
  try {
    const result = await work();
    return { result, growth: peak - base, base };
  } finally {
    clearInterval(timer);
  }
}

/** How far over its RSS before a big SET the server may stay once the value is deleted, and how soon. */
const BASELINE_SLACK = 8 * MiB;
const SETTLE_MS = 5000;
const signedMib = (bytes) => `${bytes < 0 ? '−' : '+'}${Math.abs(bytes / MiB).toFixed(1)} MiB`;

/** Samples the server's RSS until it is within BASELINE_SLACK of `base`, at most SETTLE_MS (2 s at least, for the 2 s figure). */
async function settleRss(base) {
  const start = performance.now();
  let ms = null;
  let at2s = null;
  let last = processMemory(server.pid).rss;
  let lastMs = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    last = processMemory(server.pid).rss;
    lastMs = performance.now() - start;
    if (ms === null && last <= base + BASELINE_SLACK) ms = lastMs;
    if (at2s === null && lastMs >= 2000) at2s = last;
    if ((ms !== null && at2s !== null) || lastMs >= SETTLE_MS) return { ms, at2s: at2s ?? last, last, lastMs };
  }
}

try {
  if (opts.part === 'all' || opts.part === 'counts') {
    const keys = Number(opts.keys);
    await pipelined(server.port, keys, (i) => (i % 10 === 0 ? ['HSET', `h:${i % 1000}`, `f:${i}`, 'v'.repeat(50)] : ['SET', `k:${i}`, 'v'.repeat(100), ...(i % 3 === 0 ? ['EX', '3600'] : [])]));
    for (const [name, args] of [
      ['DBSIZE', ['dbsize']],
      ['INFO keyspace', ['info', 'keyspace']],
      ['INFO blobasaur', ['info', 'blobasaur']],
    ]) {
      // Ten in a row, so the probe sees each of them.
      const r = await underProbe(async () => {
        for (let i = 0; i < 10; i++) await main.call(...args);
      });
      row(`${name} ×10 at ${keys.toLocaleString('en')} keys`, probeText(r.probe), `${ms(r.own / 10)} ms each`);
    }
  }

  if (opts.part === 'all' || opts.part === 'big') {
    const size = Number(opts.mib) * MiB;
    const value = randomBytes(size);
    const digest = createHash('sha256').update(value).digest('hex');
    const quiet = await quietProbe(2000);
    row('nothing else running', probeText(quiet), '—');
    const mibOf = (bytes) => `${Math.round(bytes / MiB)} MiB`;

    const hwmBeforeSet = processMemory(server.pid).hwm;
    const set = await watchRss(() => underProbe(() => main.set('big', value)));
    const hwmAfterSet = processMemory(server.pid).hwm;
    row(`SET ${opts.mib} MiB (ioredis)`, probeText(set.result.probe), `${ms(set.result.own)} ms`, `RSS +${mibOf(set.growth)} (VmHWM +${mibOf(hwmAfterSet - hwmBeforeSet)})`);
    await new Promise((r) => setTimeout(r, 1000));
    const get = await watchRss(() => underProbe(() => main.getBuffer('big')));
    const same = createHash('sha256').update(get.result.result).digest('hex') === digest;
    row(`GET ${opts.mib} MiB (ioredis)`, probeText(get.result.probe), `${ms(get.result.own)} ms`, `RSS +${mibOf(get.growth)} (VmHWM +${mibOf(processMemory(server.pid).hwm - hwmAfterSet)}); ${same ? 'bytes equal' : 'BYTES DIFFER'}`);
    get.result.result = null;

    const range = await underProbe(() => main.getrangeBuffer('big', 1000, 1015));
    row('GETRANGE big 1000 1015', probeText(range.probe), `${ms(range.own)} ms`, range.result.equals(value.subarray(1000, 1016)) ? 'bytes equal' : 'WRONG BYTES');
    // At proto_max_bulk_len (512 MiB) APPEND is refused, as in Redis: the error is the note.
    const append = await underProbe(() => main.append('big', 'abc').catch((err) => err));
    row('APPEND big abc', probeText(append.probe), `${ms(append.own)} ms`, append.result instanceof Error ? append.result.message : append.result === size + 3 ? '' : `length ${append.result}`);
    const del = await underProbe(() => main.del('big'));
    row('DEL big', probeText(del.probe), `${ms(del.own)} ms`);
    // Back to baseline: RSS within BASELINE_SLACK of its value before the SET, once the server has
    // been idle for at most SETTLE_MS (sampled every 250 ms; the first sample in the slack wins).
    const settle = await settleRss(set.base);
    row('2 s after DEL: server RSS', '—', mibOf(settle.at2s), `${mibOf(set.base)} before the SET: ${signedMib(settle.at2s - set.base)}`);
    row(
      `RSS back to baseline (≤ +${BASELINE_SLACK / MiB} MiB within ${SETTLE_MS / 1000} s of the DEL)`,
      '—',
      settle.ms === null ? `not within ${SETTLE_MS / 1000} s` : `after ${(settle.ms / 1000).toFixed(2)} s`,
      `${settle.ms === null ? '**NOT MET**' : '**MET**'}: ${signedMib(settle.last - set.base)} at ${(settle.lastMs / 1000).toFixed(1)} s`,
    );

    // What the idle clean-up after chunk traffic (a scavenge on the loop, malloc_trim on the chunk
    // I/O thread, 1 s after the last chunk: docs/operations.md) costs the others. Measured apart
    // from the settle above, which must be idle.
    await main.set('small-big', value.subarray(0, 32 * MiB));
    await main.getBuffer('small-big');
    const idle = await underProbe(() => new Promise((r) => setTimeout(r, 2500)));
    row('2.5 s idle after a 32 MiB GET', probeText(idle.probe), '—', 'the clean-up after chunk traffic lands here');
    await main.del('small-big');

    if (opts.clients) {
      const { dir } = tempDir('blobasaur-big-clients-');
      const file = join(dir, 'value.bin');
      writeFileSync(file, value);
      // redis-cli -x takes the last argument from stdin; GET's bulk goes to stdout raw (plus a newline).
      let t = performance.now();
      execFileSync('redis-cli', ['-p', String(server.port), '-x', 'SET', 'cli'], { input: value, maxBuffer: 16 * MiB });
      const out = spawnSync('redis-cli', ['-p', String(server.port), '--raw', 'GET', 'cli'], { maxBuffer: size + MiB });
      const cliOk = out.stdout.length === size + 1 && createHash('sha256').update(out.stdout.subarray(0, size)).digest('hex') === digest;
      row(`redis-cli SET+GET ${opts.mib} MiB`, '—', `${ms(performance.now() - t)} ms`, cliOk ? 'bytes equal' : `BYTES DIFFER (got ${out.stdout.length} bytes, status ${out.status}, ${out.error?.message ?? ''} ${out.stderr.toString().slice(0, 200)})`);
      t = performance.now();
      // Debian's python3-redis (a pyenv python3 first on PATH may not have it).
      const py = spawnSync('/usr/bin/python3', ['-c', `
import hashlib, redis, sys
r = redis.Redis(port=${server.port})
v = open(sys.argv[1], 'rb').read()
r.set('py', v)
print(hashlib.sha256(r.get('py')).hexdigest())
`, file], { encoding: 'utf8' });
      row(`redis-py SET+GET ${opts.mib} MiB`, '—', `${ms(performance.now() - t)} ms`, py.stdout.trim() === digest ? 'bytes equal' : `BYTES DIFFER ${py.stderr.slice(0, 200)}`);
    }
    row('server RSS peak (VmHWM)', '—', `${Math.round(processMemory(server.pid).hwm / MiB)} MiB`);
  }

  if (opts.part === 'all' || opts.part === 'ratio') {
    const redis = await startRedis('redis-big-ratio-');
    try {
      // Loaded first, as `npm run bench` does: GET reads existing keys.
      const oneMiB = randomBytes(MiB);
      for (const port of [server.port, redis.port]) await pipelined(port, 100, (i) => ['SET', `key:${String(i).padStart(12, '0')}`, oneMiB], { connections: 2, window: 2 });
      for (const [op, n] of [['set', 400], ['get', 1000]]) {
        const c = { op, size: MiB, clients: 10, pipeline: 1 };
        const ours = [];
        const theirs = [];
        for (let round = 0; round < Number(opts.rounds); round++) {
          ours.push(parseCsv(execFileSync('redis-benchmark', benchArgs(server.port, c, n, 100), { encoding: 'utf8' }), op).rps);
          theirs.push(parseCsv(execFileSync('redis-benchmark', benchArgs(redis.port, c, n, 100), { encoding: 'utf8' }), op).rps);
        }
        const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
        row(`${op.toUpperCase()} 1 MiB, 10 clients (redis-benchmark, ${opts.rounds} rounds alternating)`, '—', `${Math.round(med(ours))} vs ${Math.round(med(theirs))} req/s`, `ratio ${(med(ours) / med(theirs)).toFixed(2)} (median rounds; ours ${ours.map(Math.round).join(', ')}; redis ${theirs.map(Math.round).join(', ')})`);
      }
    } finally {
      await redis.stop();
    }
  }
} finally {
  probeProc.stdin.end('quit\n');
  main.disconnect();
  server.stop();
}

console.log('| what the first client does | second client, small GETs | the command itself | note |');
console.log('| --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.what} | ${r.probe} | ${r.own} | ${r.note} |`);
