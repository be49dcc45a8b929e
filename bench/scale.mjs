// The scale run of issue #9: store N GiB (default 10) of 64 KiB values in our server (default
// mode, fresh data dir), then measure what holding it costs — server RSS, bytes on disk per GiB —
// how fast a random GET over the whole set is, and how long a restart takes until the first GET
// is answered. Redis cannot hold this in RAM; we must hold it in little.
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { readdirSync, statSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RespClient,
  RespError,
  command,
  freePort,
  median,
  pipelined,
  processMemory,
  quantile,
  sleep,
  snapshotServer,
  spawnBlobasaur,
  startBlobasaur,
  watchServerLog,
} from './lib.mjs';
import { DOC_PATH, SCALE_BEGIN, SCALE_END, fmt1, fmt2, fmtGiB, fmtInt, fmtMiB, machineInfo, mdTable, readDocParts, textTable, writeDoc } from './report.mjs';

const KiB = 1024;
const GiB = 2 ** 30;
export const VALUE = 64 * KiB;
const RSS_TARGET = 250 * 2 ** 20;
const RESTART_TARGET_MS = 1000;
const RESTARTS = 3;
/**
 * Pause before the second series of GETs. The first series starts right after the load, while the
 * server checkpoints its WAL (maintenance thread) and the kernel writes back gigabytes of dirty
 * pages; the second shows the same GETs once that has settled, so the two can be told apart.
 */
const SETTLE_MS = 15_000;

const log = (s) => process.stdout.write(`${s}\n`);
export const keyName = (i) => `scale:${String(i).padStart(9, '0')}`;

/**
 * The scale run's values: random, incompressible bytes; value i is a different 64 KiB window of a
 * 2 MiB pool, so neither compression (if configured) nor any deduplication could make a run look
 * better. Returns valueOf(i).
 */
export function scaleValues() {
  const pool = randomBytes(2 * 2 ** 20 + VALUE);
  return (i) => {
    const off = (i * 4099) % (2 * 2 ** 20);
    return pool.subarray(off, off + VALUE);
  };
}

/** Apparent size and allocated bytes of the shard files (and anything else) in the data dir. */
function dirBytes(dir) {
  let size = 0;
  let allocated = 0;
  const files = [];
  for (const name of readdirSync(dir)) {
    const st = statSync(join(dir, name));
    if (!st.isFile()) continue;
    size += st.size;
    allocated += st.blocks * 512;
    files.push(name);
  }
  return { size, allocated, files };
}

/** Free bytes for an unprivileged writer on the file system holding `path` (what df shows as Avail). */
function freeBytes(path) {
  const st = statfsSync(path);
  return st.bavail * st.bsize;
}

/**
 * Spawns the server on the existing directory and polls (connect + GET) every 2 ms until a GET of
 * `key` returns `size` bytes. Returns { listenMs, firstGetMs, server } measured from just before spawn.
 */
async function timeRestart(dir, serverJs, key, size) {
  const port = await freePort();
  const t0 = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
  const server = await spawnBlobasaur(dir, { serverJs, port, stdio: 'pipe' });
  let listenMs = null;
  for (;;) {
    if (!server.alive()) throw new Error(`server exited during restart: ${server.output.text.trim().slice(-1500)}`);
    if (ms() > 120_000) throw new Error('no answered GET within 120 s of the restart');
    let client = null;
    try {
      client = await RespClient.connect(port);
      listenMs ??= ms();
      const v = await client.send(['GET', key]);
      if (Buffer.isBuffer(v) && v.length === size) return { listenMs, firstGetMs: ms(), server };
      if (!(v instanceof RespError)) throw new Error(`GET ${key} after restart gave ${v === null ? 'nil' : typeof v}, expected ${size} bytes`);
      // An error reply (e.g. still loading) means: not ready yet, poll again.
    } catch (e) {
      if (/after restart gave/.test(e.message)) throw e;
    } finally {
      client?.close();
    }
    await sleep(2);
  }
}

/**
 * One client, `count` GETs of uniformly random keys, each timed client-side. `random` (a function
 * like Math.random) lets two servers be asked for the same keys in the same order.
 */
export async function randomGets(port, keys, count, random = Math.random) {
  const c = await RespClient.connect(port);
  const lat = new Float64Array(count);
  const started = process.hrtime.bigint();
  try {
    for (let n = 0; n < count; n++) {
      const i = Math.floor(random() * keys);
      const t = process.hrtime.bigint();
      const v = await c.send(['GET', keyName(i)]);
      lat[n] = Number(process.hrtime.bigint() - t) / 1e6;
      if (!Buffer.isBuffer(v) || v.length !== VALUE) throw new Error(`GET ${keyName(i)} gave ${v instanceof RespError ? v.message : v === null ? 'nil' : 'a wrong value'}`);
    }
  } finally {
    c.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / count;
  return { count, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), p999: quantile(sorted, 0.999), max: sorted[count - 1], mean, seconds };
}

export async function runScale({ gib = 10, gets = 20_000, write = true }) {
  const keys = Math.max(1, Math.round((gib * GiB) / VALUE));
  const stored = keys * VALUE;
  // SQLite pages hold a 64 KiB value in overflow pages with little waste, but the WAL can grow to
  // a good part of the data before a checkpoint: ask for 1.5× plus 2 GiB of room for everyone else.
  const need = stored * 1.5 + 2 * GiB;
  const where = tmpdir();
  const free = freeBytes(where);
  log(`scale: ${fmtInt(keys)} keys × 64 KiB = ${fmtGiB(stored)}; ${fmtGiB(free)} free in ${where}, need about ${fmtGiB(need)}`);
  if (free < need) {
    process.stderr.write(
      `scale: not enough free disk space in ${where}: ${fmtGiB(free)} available, about ${fmtGiB(need)} needed for --gib ${gib}.\n` +
        `Run a smaller size (--gib 1) or point TMPDIR at a file system with more room. Nothing was written.\n`,
    );
    process.exitCode = 1;
    return null;
  }

  const startedAt = Date.now();
  const mi = machineInfo();
  const loadStartAvg = loadavg();
  const { serverJs } = snapshotServer();
  // Default mode: an empty config file, every key at its default.
  const server = await startBlobasaur('', 'blobasaur-scale-', { serverJs, stdio: 'pipe' });
  const logIssues = watchServerLog(server.child);
  const r = { gib, keys, stored, gets };
  let restarted = null;
  try {
    r.memIdle = processMemory(server.pid);
    log(`scale: server pid ${server.pid} on :${server.port}, data in ${server.dataDir}, RSS ${fmtMiB(r.memIdle.rss)} before the load`);
    const valueOf = scaleValues();
    const loadStart = Date.now();
    let lastPct = 0;
    await pipelined(server.port, keys, (i) => ['SET', keyName(i), valueOf(i)], {
      connections: 4,
      window: 8, // 4 × 8 × 64 KiB = 2 MiB in flight at most
      onProgress: (done) => {
        const pct = Math.floor((done / keys) * 100);
        if (pct >= lastPct + 5) {
          lastPct = pct;
          const s = (Date.now() - loadStart) / 1000;
          log(`scale: ${pct}%  ${fmtGiB(done * VALUE)} in ${s.toFixed(0)} s, ${fmt1((done * VALUE) / 1e6 / s)} MB/s, server RSS ${fmtMiB(processMemory(server.pid).rss)}`);
        }
      },
    });
    r.loadSeconds = (Date.now() - loadStart) / 1000;
    r.loadMBps = stored / 1e6 / r.loadSeconds;
    r.memAfterLoad = processMemory(server.pid);
    r.dbsize = await command(server.port, ['DBSIZE']);
    if (r.dbsize !== keys) throw new Error(`DBSIZE is ${r.dbsize} after writing ${keys} keys`);
    r.diskRunning = dirBytes(server.dataDir);
    log(`scale: loaded in ${r.loadSeconds.toFixed(1)} s (${fmt1(r.loadMBps)} MB/s); RSS ${fmtMiB(r.memAfterLoad.rss)}; files ${fmtGiB(r.diskRunning.size)}`);

    const cacheInfo = async () => {
      const info = (await command(server.port, ['INFO', 'blobasaur'])).toString();
      const field = (name) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1]);
      return { hits: field('value_cache_hits'), misses: field('value_cache_misses'), bytes: field('value_cache_bytes') };
    };
    const cacheBefore = await cacheInfo();
    r.get = await randomGets(server.port, keys, gets);
    await sleep(SETTLE_MS);
    r.getSettled = await randomGets(server.port, keys, gets);
    r.memAfterGets = processMemory(server.pid);
    const cacheAfter = await cacheInfo();
    r.valueCache = { hits: cacheAfter.hits - cacheBefore.hits, misses: cacheAfter.misses - cacheBefore.misses, bytes: cacheAfter.bytes };
    log(`scale: ${fmtInt(gets)} random GETs: p50 ${fmt2(r.get.p50)} ms, p99 ${fmt2(r.get.p99)} ms; after ${SETTLE_MS / 1000} s: p50 ${fmt2(r.getSettled.p50)} ms, p99 ${fmt2(r.getSettled.p99)} ms; RSS ${fmtMiB(r.memAfterGets.rss)}`);

    r.shutdown = await server.terminate(300_000);
    r.diskStopped = dirBytes(server.dataDir);
    log(`scale: SIGTERM → exit ${r.shutdown.code ?? r.shutdown.signal} in ${r.shutdown.ms} ms; files after shutdown ${fmtGiB(r.diskStopped.size)}`);

    r.restarts = [];
    for (let k = 0; k < RESTARTS; k++) {
      // A key from the middle of the set, different each time, so no restart is helped by the last.
      const key = keyName(Math.floor(((k + 0.5) / RESTARTS) * keys));
      const t = await timeRestart(server.dir, serverJs, key, VALUE);
      restarted = t.server;
      const mem = processMemory(t.server.pid);
      const stop = await t.server.terminate(300_000);
      r.restarts.push({ listenMs: t.listenMs, firstGetMs: t.firstGetMs, rss: mem.rss, exit: stop.code ?? stop.signal });
      log(`scale: restart ${k + 1}: listening after ${fmt1(t.listenMs)} ms, first GET answered after ${fmt1(t.firstGetMs)} ms`);
    }
  } finally {
    restarted?.kill();
    server.stop(); // kills (if still running) and removes the temp dir with the data
  }
  r.logIssues = logIssues;
  r.loadavg = { start: loadStartAvg, end: loadavg() };
  r.elapsed = (Date.now() - startedAt) / 1000;
  const section = scaleMarkdown(r, mi);
  log(`\n${scaleText(r)}\n\nscale: run took ${Math.round(r.elapsed)} s`);
  if (write) {
    const parts = readDocParts();
    parts.scale = section;
    writeDoc(parts);
    log(`scale: updated the "Scale run" section of ${DOC_PATH}`);
  }
  return r;
}

function rows(r) {
  // The budget holds for the peak too, not only for the moments sampled.
  const rss = Math.max(r.memAfterLoad.rss, r.memAfterGets.rss, r.memAfterGets.hwm);
  const perGiB = (b) => `${fmtGiB(b.allocated)} allocated, ${fmtGiB(b.size)} apparent → ${fmt2(b.allocated / (r.stored / GiB) / GiB)} GiB per GiB stored`;
  const first = r.restarts[0]?.firstGetMs;
  const med = median(r.restarts.map((x) => x.firstGetMs));
  return [
    ['stored', `${fmtInt(r.keys)} keys × 64 KiB = ${fmtGiB(r.stored)} (loaded in ${r.loadSeconds.toFixed(0)} s, ${fmt1(r.loadMBps)} MB/s)`, '', ''],
    ['server RSS (VmRSS) empty / after load / after the GETs', `${fmtMiB(r.memIdle.rss)} / ${fmtMiB(r.memAfterLoad.rss)} / ${fmtMiB(r.memAfterGets.rss)} (peak VmHWM ${fmtMiB(r.memAfterGets.hwm)})`, '≤ 250 MiB', rss <= RSS_TARGET ? 'met' : `not met (+${fmtMiB(rss - RSS_TARGET)})`],
    ['data dir while running (WAL included)', perGiB(r.diskRunning), '', ''],
    ['data dir after graceful shutdown', perGiB(r.diskStopped), '', ''],
    [`random GET, one client, ${fmtInt(r.get.count)} GETs over all keys, right after the load`, getText(r.get), '', ''],
    [`the same, ${SETTLE_MS / 1000} s later (checkpoints and write-back settled)`, getText(r.getSettled), '', ''],
    [
      'value cache during those GETs (value_cache_mb default: values up to 16 KiB only)',
      `${fmtInt(r.valueCache.hits)} hits, ${fmtInt(r.valueCache.misses)} misses counted; ${fmtMiB(r.valueCache.bytes)} held (64 KiB values are read from SQLite every time)`,
      '',
      '',
    ],
    ['SIGTERM to exit (commit, checkpoint)', `${fmtInt(r.shutdown.ms)} ms, exit ${r.shutdown.code ?? r.shutdown.signal}`, '', ''],
    ['restart: spawn to first answered GET', `${fmt1(first)} ms first, median ${fmt1(med)} ms of ${r.restarts.length} (${r.restarts.map((x) => fmt1(x.firstGetMs)).join(', ')}); listening after ${fmt1(r.restarts[0]?.listenMs)} ms`, '≤ 1 s', Math.max(first, med) <= RESTART_TARGET_MS ? 'met' : 'not met'],
    ['RSS right after a restart', fmtMiB(r.restarts[0]?.rss), '', ''],
  ];
}

function getText(g) {
  return `p50 ${fmt2(g.p50)} ms, p99 ${fmt2(g.p99)} ms, p99.9 ${fmt2(g.p999)} ms, max ${fmt2(g.max)} ms (${fmt1((g.count * VALUE) / 1e6 / g.seconds)} MB/s)`;
}

function scaleText(r) {
  return textTable(['metric', 'value', 'target', 'verdict'], rows(r));
}

function scaleMarkdown(r, mi) {
  const sizeNote =
    r.gib === 10
      ? 'This is the full 10 GiB run of the issue.'
      : `**This run stored ${fmtGiB(r.stored)}, not the issue's 10 GiB** (\`--gib ${r.gib}\`); RSS and restart time should be re-measured at 10 GiB before the targets are called met.`;
  const issues = r.logIssues.length ? `\nOur server logged ${r.logIssues.length} line(s) at warn or above, e.g.: \`${r.logIssues[0].replace(/`/g, "'")}\`\n` : '';
  return `${SCALE_BEGIN}
## Scale run

Made by \`npm run bench -- --scale --gib ${r.gib}\` on ${mi.date.slice(0, 10)} (${Math.round(r.elapsed)} s; ${mi.cpu}, ${mi.cores} cores,
${mi.ramGiB.toFixed(1)} GiB RAM, Node ${mi.node}, git ${mi.commit}${mi.srcChanges ? ' with uncommitted src/ changes' : ''}; load average
${r.loadavg.start.map(fmt2).join(' / ')} at the start, ${r.loadavg.end.map(fmt2).join(' / ')} at the end). ${sizeNote}

Our server in its default mode (empty config) on a fresh data dir gets ${fmtInt(r.keys)} SETs of 64 KiB of random
bytes from 4 pipelined connections (at most 8 unanswered each). RSS is read from \`/proc/PID/status\`.
The GETs come from one connection, one at a time, timed in the client with \`process.hrtime\`; the
files were just written, so they are largely in the OS page cache (the machine has
${mi.ramGiB.toFixed(0)} GiB): these are warm-cache latencies. The restart is timed from \`spawn()\` to the
first GET of an existing key answered with its 64 KiB, polling connect + GET every 2 ms, after a
graceful SIGTERM stop; it is repeated ${r.restarts.length} times with different keys. The RSS verdict takes
the largest of the samples and the peak (VmHWM).

${mdTable(['metric', 'value', 'target', 'verdict'], rows(r))}
${issues}${SCALE_END}`;
}
