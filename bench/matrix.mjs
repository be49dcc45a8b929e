// The throughput matrix of issue #9: redis-benchmark against redis-server (AOF, fsync every second)
// and against our server in its default and its high-throughput mode, alternating targets round by
// round, medians and ratios ours ÷ redis-server against the issue's targets.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import os from 'node:os';
import { ratioChartSvg } from './chart.mjs';
import { HOST, RespClient, RespError, command, median, onCleanup, pipelined, readIfExists, redisArgs, root, sleep, snapshotServer, startBlobasaur, startNodeCeiling, startRedis, watchServerLog } from './lib.mjs';
import {
  DOC_PATH,
  SVG_PATH,
  fmt1,
  fmt2,
  fmtInt,
  machineInfo,
  machineMarkdown,
  mdTable,
  readDocParts,
  shellQuote,
  textTable,
  verdict,
  writeDoc,
} from './report.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;
const ASYNC_TOML = 'async_write = true\nbatch_size = 50\nbatch_timeout_ms = 10\n';

const TARGETS = [
  { id: 'redis', label: 'redis-server', kind: 'redis' },
  // The default mode is literally an empty config file: every key at its default.
  { id: 'default', label: 'ours, default', kind: 'ours', toml: '' },
  { id: 'async', label: 'ours, async', kind: 'ours', toml: ASYNC_TOML },
  // The Node.js yardstick (bench/node-ceiling.mjs): what a bare RESP loop over a Map does on this
  // machine in this run. Small-value cases only.
  { id: 'node', label: 'node ceiling', kind: 'ceiling' },
];

// Targets: issue 20's goals for the 1 KiB cases (ours ÷ redis-server), issue 17's for 1 MiB
// (SET ≥ 2.0, GET ≥ 1.0; issue 9 had asked SET ≥ 1.0).
// n is per run (one target, one round). Chosen so that on a 2-core machine our slower mode takes
// 2–5 s per run and redis-server at least ~0.5 s (redis-benchmark's clock has ms resolution), and
// the full run (3 targets × 6 cases × 5 rounds) takes 5–10 minutes.
const CASES = [
  { id: 'set-1k-p1', op: 'set', size: KiB, clients: 50, pipeline: 1, target: 0.6, n: { full: 50_000, quick: 20_000 } },
  { id: 'get-1k-p1', op: 'get', size: KiB, clients: 50, pipeline: 1, target: 0.8, n: { full: 60_000, quick: 30_000 } },
  { id: 'set-1k-p16', op: 'set', size: KiB, clients: 50, pipeline: 16, target: 0.4, n: { full: 120_000, quick: 60_000 } },
  { id: 'get-1k-p16', op: 'get', size: KiB, clients: 50, pipeline: 16, target: 0.4, n: { full: 250_000, quick: 150_000 } },
  // The same GETs over the first HOT_KEYS keys only: a working set that fits the default
  // value_cache_mb. Full runs only (the quick keyspace is that small anyway).
  { id: 'get-1k-p1-hot', op: 'get', size: KiB, clients: 50, pipeline: 1, target: 0.8, hot: true, n: { full: 60_000 } },
  { id: 'get-1k-p16-hot', op: 'get', size: KiB, clients: 50, pipeline: 16, target: 0.4, hot: true, n: { full: 250_000 } },
  { id: 'set-1m', op: 'set', size: MiB, clients: 10, pipeline: 1, target: 2.0, mbps: true, n: { full: 400, quick: 150 } },
  { id: 'get-1m', op: 'get', size: MiB, clients: 10, pipeline: 1, target: 1.0, mbps: true, n: { full: 1000, quick: 300 } },
];

// Every GET must hit: each phase first writes every key of its keyspace with values of its size,
// and redis-benchmark's -r N draws keys key:000000000000 … key:(N-1) — the same names. The 1 KiB
// and 1 MiB phases run one after the other because both use redis-benchmark's fixed key names.
const KEYSPACE = { full: { [KiB]: 100_000, [MiB]: 100 }, quick: { [KiB]: 20_000, [MiB]: 20 } };
/** Keys of the "working set fits" cases: 20,000 × 1 KiB ≈ 24 MiB with the cache's per-entry overhead. */
const HOT_KEYS = 20_000;

const SETTLE_MS = 250; // lets a server finish background work (commits, AOF) before the next run

const caseName = (c) => `${c.op.toUpperCase()} ${c.size === KiB ? '1 KiB' : '1 MiB'}, P${c.pipeline}${c.hot ? `, ${HOT_KEYS / 1000}k keys` : ''}`;
const caseSub = (c) => `P${c.pipeline}, ${c.clients} clients${c.mbps ? ', MB/s' : ''}`;
const keyName = (i) => `key:${String(i).padStart(12, '0')}`;
const log = (s) => process.stdout.write(`${s}\n`);

export function benchArgs(port, c, n, keyspace) {
  const args = ['-h', HOST, '-p', String(port), '-t', c.op, '-n', String(n), '-c', String(c.clients), '-P', String(c.pipeline)];
  if (c.op === 'set') args.push('-d', String(c.size));
  args.push('-r', String(keyspace), '--csv');
  return args;
}

// ---- redis-benchmark ---------------------------------------------------------------------------

const unquote = (line) => line.trim().split(',').map((f) => f.replace(/^"|"$/g, ''));

/** redis-benchmark 7 --csv: a header row ("test","rps",…,"p50_latency_ms",…) and one row per test. */
export function parseCsv(text, op) {
  const lines = text.split(/\r?\n/).filter((l) => l.trim().startsWith('"'));
  const header = lines.map(unquote).find((f) => f[0] === 'test');
  const row = lines.map(unquote).find((f) => f[0].toUpperCase() === op.toUpperCase());
  if (!header || !row) throw new Error(`no CSV result for ${op.toUpperCase()} in redis-benchmark output: ${text.trim().slice(0, 400)}`);
  const num = (name) => {
    const i = header.indexOf(name);
    const v = i < 0 ? NaN : Number(row[i]);
    if (!Number.isFinite(v)) throw new Error(`redis-benchmark CSV: column ${name} missing or not a number (${header.join(',')} / ${row.join(',')})`);
    return v;
  };
  return { rps: num('rps'), p50: num('p50_latency_ms'), p99: num('p99_latency_ms') };
}

/** Runs redis-benchmark once; resolves { rps, p50, p99, seconds, notes } or rejects with its output. */
function runBenchmark(args, limitMs) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const unregister = onCleanup(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      unregister();
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      unregister();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // "WARNING: Could not fetch server CONFIG" is redis-benchmark noting that CONFIG GET failed.
      const notes = `${err}\n${out}`.split('\n').filter((l) => /warning|error/i.test(l)).map((l) => l.trim());
      if (signal === 'SIGKILL') return reject(new Error(`redis-benchmark did not finish within ${limitMs / 1000} s (server stalled?)`));
      if (code !== 0) return reject(new Error(`redis-benchmark exited ${code ?? signal}: ${`${err} ${out}`.replace(/\s+/g, ' ').trim().slice(0, 500)}`));
      try {
        resolve({ ...parseCsv(out, args[args.indexOf('-t') + 1]), seconds, notes });
      } catch (e) {
        reject(e);
      }
    });
  });
}

// ---- targets -----------------------------------------------------------------------------------

async function startTarget(t, serverJs) {
  t.server = t.kind === 'redis' ? await startRedis() : t.kind === 'ceiling' ? await startNodeCeiling() : await startBlobasaur(t.toml, `blobasaur-${t.id}-`, { serverJs, stdio: 'pipe' });
  if (t.kind === 'ours') t.logIssues = watchServerLog(t.server.child);
  t.dead = null;
}

/** Writes every key of the keyspace with a value of `size` bytes of 'x' (what redis-benchmark sends). */
async function prefill(t, size, keyspace) {
  const value = Buffer.alloc(size, 'x');
  const started = Date.now();
  await pipelined(t.server.port, keyspace, (i) => ['SET', keyName(i), value], { connections: 4, window: size >= MiB ? 2 : 128 });
  return (Date.now() - started) / 1000;
}

/** GETs the first, the last and random keys of the keyspace: every one must exist with `size` bytes. */
async function verifyValues(t, size, keyspace, samples = 40) {
  const c = await RespClient.connect(t.server.port);
  try {
    const picks = [0, keyspace - 1, ...Array.from({ length: samples }, () => Math.floor(Math.random() * keyspace))];
    for (const i of picks) {
      const v = await c.send(['GET', keyName(i)]);
      const got = v instanceof RespError ? `error ${v.message}` : v === null ? 'nil' : `${v.length} bytes`;
      if (!Buffer.isBuffer(v) || v.length !== size) throw new Error(`${t.label}: GET ${keyName(i)} gave ${got}, expected ${size} bytes`);
    }
    return picks.length;
  } finally {
    c.close();
  }
}

async function infoField(port, section, field) {
  const info = await command(port, ['INFO', section]);
  return Buffer.isBuffer(info) ? new RegExp(`^${field}:(.*)$`, 'm').exec(info.toString())?.[1]?.trim() : undefined;
}

/**
 * After a prefill, lets background work triggered by it finish before anything is measured:
 * redis-server's AOF rewrite (the prefill alone passes the 64 MB rewrite threshold), our commits
 * and checkpoints (no direct signal: a pause).
 */
async function quiesce(targets) {
  const deadline = Date.now() + 60_000;
  for (const t of targets.filter((x) => x.kind === 'redis')) {
    while (Date.now() < deadline) {
      const busy = (await infoField(t.server.port, 'persistence', 'aof_rewrite_in_progress')) === '1' || (await infoField(t.server.port, 'persistence', 'aof_rewrite_scheduled')) === '1';
      if (!busy) break;
      await sleep(200);
    }
  }
  await sleep(1000);
}

/**
 * GETs keys 0 … keyspace-1, pipelined, WARM_PASSES times over (the warm-up of the "fits" cases):
 * our value cache, when full, admits a value read from SQLite on its key's second miss.
 */
const WARM_PASSES = 3;
function warmUp(t, keyspace) {
  return pipelined(t.server.port, keyspace * WARM_PASSES, (i) => ['GET', keyName(i % keyspace)], { connections: 4, window: 128 });
}

async function runOne(t, c, n, keyspace, round) {
  const base = { round, caseId: c.id, target: t.id };
  if (t.dead) return { ...base, error: `skipped: ${t.dead}` };
  const args = benchArgs(t.server.port, c, n, keyspace);
  // Generous watchdog: 20× the time our server needed in the probe runs, at least 2 minutes.
  const limitMs = Math.max(120_000, (n / (c.mbps ? 20 : 500)) * 1000);
  // For redis-server, note whether an AOF rewrite (a fork writing the whole data set) overlapped
  // the run: it explains most of the spread of its SET figures.
  const aof = async () => (t.kind === 'redis' ? `${await infoField(t.server.port, 'persistence', 'aof_rewrites')}/${await infoField(t.server.port, 'persistence', 'aof_rewrite_in_progress')}` : '');
  const aofBefore = await aof().catch(() => '');
  // A working set that fits is one that has been read: every target first GETs each of its keys
  // a few times, not measured. Without it our value cache starts each such run cold (the SET and 100k
  // runs before it replaced its entries), and a third of a 60,000-GET run went to SQLite.
  let result;
  try {
    if (c.hot) await warmUp(t, keyspace);
    result = { ...base, ...(await runBenchmark(args, limitMs)) };
  } catch (e) {
    result = { ...base, error: e.message };
  }
  if (t.kind === 'redis') {
    const aofAfter = await aof().catch(() => '');
    result.aofRewrite = aofBefore !== aofAfter || aofBefore.endsWith('/1');
  }
  if (!t.server.alive()) {
    t.dead = `server exited (code ${t.server.child.exitCode}, signal ${t.server.child.signalCode}) during ${caseName(c)} round ${round}`;
    result.error = `${result.error ? `${result.error}; ` : ''}${t.dead}. Last output: ${t.server.output.text.trim().slice(-1500)}`;
  }
  return result;
}

// ---- the run -----------------------------------------------------------------------------------

/**
 * opts: { quick, rounds, write } — quick: one round, 1 KiB cases plus a small 1 MiB case, default
 * mode and redis-server only, prints the table and does not touch docs/.
 */
export async function runMatrix(opts) {
  const mode = opts.quick ? 'quick' : 'full';
  const rounds = opts.rounds ?? (opts.quick ? 1 : 5);
  const startedAt = Date.now();
  const mi = machineInfo();
  const { serverJs } = snapshotServer();
  const targets = TARGETS.filter((t) => !opts.quick || t.id !== 'async').map((t) => ({ ...t }));
  const keyspace = KEYSPACE[mode];
  const phases = [KiB, MiB].map((size) => ({
    size,
    keyspace: keyspace[size],
    cases: CASES.filter((c) => c.size === size && c.n[mode] !== undefined),
    // The Node.js yardstick holds everything in a Map: small values only.
    targets: targets.filter((t) => t.kind !== 'ceiling' || size === KiB),
  }));

  log(`bench: ${mode} matrix, ${rounds} round(s), targets: ${targets.map((t) => t.label).join(', ')}`);
  for (const t of targets) await startTarget(t, serverJs);
  log(`bench: started ${targets.map((t) => `${t.label} on :${t.server.port} (pid ${t.server.pid})`).join(', ')}`);

  const results = [];
  const checks = [];
  let verified = 0; // spot-check GETs that returned a value of exactly the benchmarked size
  for (const phase of phases) {
    for (const t of phase.targets) {
      const s = await prefill(t, phase.size, phase.keyspace);
      log(`bench: ${t.label}: wrote ${fmtInt(phase.keyspace)} keys of ${phase.size} bytes in ${s.toFixed(1)} s`);
      verified += await verifyValues(t, phase.size, phase.keyspace);
    }
    await quiesce(targets);
    for (let r = 1; r <= rounds; r++) {
      for (const [ci, c] of phase.cases.entries()) {
        // Rotate the order per round and case so no target always runs right after another.
        const pt = phase.targets;
        const order = pt.map((_, i) => pt[(i + r + ci) % pt.length]);
        for (const t of order) {
          const res = await runOne(t, c, c.n[mode], c.hot ? HOT_KEYS : phase.keyspace, r);
          results.push(res);
          const what = res.error ? `ERROR ${res.error.slice(0, 300)}` : `${fmtInt(res.rps)} req/s${c.mbps ? ` = ${fmt1((res.rps * c.size) / 1e6)} MB/s` : ''}, p50 ${res.p50} ms, p99 ${res.p99} ms (${res.seconds.toFixed(1)} s)`;
          log(`  round ${r}/${rounds}  ${caseName(c).padEnd(15)} ${t.label.padEnd(14)} ${what}`);
          await sleep(SETTLE_MS);
        }
      }
    }
    // The SET runs in between wrote the same keys with the same size: check again.
    for (const t of phase.targets.filter((x) => !x.dead)) {
      verified += await verifyValues(t, phase.size, phase.keyspace);
    }
    // The yardstick has done its part; it would only hold memory during the large-value cases.
    for (const t of phase.targets) if (t.kind === 'ceiling' && phase.size === KiB) t.server.stop();
  }

  checks.push(`${verified} spot-check GETs (the first, the last and 40 random keys, on every server, after each prefill and again after each size's cases) all returned a value of exactly the benchmarked size`);
  const redis = targets.find((t) => t.id === 'redis');
  const misses = await infoField(redis.server.port, 'stats', 'keyspace_misses');
  checks.push(`redis-server keyspace_misses after all GET runs: ${misses} (0 means every GET found its key)`);
  // redis-server runs with auto-aof-rewrite-percentage 0, so it should never rewrite its AOF here;
  // a run that overlapped a rewrite anyway is marked. Delayed fsyncs mean the disk was slower than
  // the write rate.
  const rewrites = await infoField(redis.server.port, 'persistence', 'aof_rewrites');
  const delayed = await infoField(redis.server.port, 'persistence', 'aof_delayed_fsync');
  const redisSets = results.filter((r) => r.target === 'redis' && CASES.find((c) => c.id === r.caseId).op === 'set');
  checks.push(
    `redis-server ran with auto-aof-rewrite-percentage 0 (no automatic AOF rewrites, so no SET ratio rests on a rewrite's stall): it rewrote its AOF ${rewrites} time(s); ` +
      `${redisSets.filter((r) => r.aofRewrite).length} of its ${redisSets.length} SET runs overlapped a rewrite; aof_delayed_fsync ${delayed}`,
  );
  const oddities = [];
  for (const t of targets.filter((x) => x.kind === 'ours' && !x.dead)) {
    const errors = await command(t.server.port, ['INFO', 'errorstats']);
    const lines = Buffer.isBuffer(errors) ? errors.toString().split('\r\n').filter((l) => l.startsWith('errorstat_')) : [];
    // redis-benchmark asks CONFIG GET save and CONFIG GET appendonly at the start of every run; we
    // have no CONFIG command, so 2 ERR replies per run are expected and harmless. Anything else is odd.
    const runs = results.filter((r) => r.target === t.id).length;
    const expected = `errorstat_ERR:count=${2 * runs}`;
    if (lines.length === 1 && lines[0] === expected) {
      checks.push(`${t.label}: INFO errorstats ${lines[0]} = 2 per redis-benchmark run (its CONFIG GET save/appendonly; we have no CONFIG), no other error replies`);
    } else if (lines.length) oddities.push(`${t.label}: INFO errorstats at the end: ${lines.join(', ')} (${runs} runs would explain ${expected} from CONFIG GET)`);
  }
  // Our servers stop gracefully (commit, checkpoint): a non-zero exit is worth reporting.
  for (const t of targets) {
    if (t.kind === 'ours' && !t.dead) {
      const { code, signal, ms } = await t.server.terminate();
      if (code !== 0) oddities.push(`${t.label}: exit code ${code ?? signal} after SIGTERM (${ms} ms)`);
    }
    t.server.stop();
    if (t.logIssues?.length) oddities.push(`${t.label}: ${t.logIssues.length} log line(s) at warn or above, e.g. ${t.logIssues.slice(0, 3).join(' | ')}`);
    if (t.dead) oddities.push(`${t.label}: ${t.dead}`);
  }
  for (const r of results) if (r.error) oddities.push(`round ${r.round} ${r.caseId} ${r.target}: ${r.error}`);
  // redis-benchmark prints "WARNING: Could not fetch server CONFIG" against a server without CONFIG
  // (ours): expected, explained once in the method; any other warning or error is a note.
  const expectedNote = (n) => /Could not fetch server CONFIG/i.test(n);
  if (results.some((r) => r.target !== 'redis' && r.notes?.some(expectedNote))) {
    checks.push('redis-benchmark warns "Could not fetch server CONFIG" against our servers (it reads `save` and `appendonly` for its banner); harmless');
  }
  const notes = [...new Set(results.flatMap((r) => (r.notes ?? []).filter((n) => !expectedNote(n)).map((n) => `${r.target}: ${n}`)))];

  const summary = summarize(targets, results, mode);
  const elapsed = (Date.now() - startedAt) / 1000;
  const loadEnd = os.loadavg();
  printSummary(summary, targets, mode, elapsed, oddities, notes);
  if (mode === 'quick') saveQuickLast(summary, mi);
  if (opts.write) {
    const svg = chartFor(summary, rounds);
    writeFileSync(SVG_PATH, svg);
    const parts = readDocParts();
    parts.matrix = matrixMarkdown({ summary, targets, results, rounds, mode, mi, loadEnd, elapsed, checks, oddities, notes, keyspace, serverJs });
    writeDoc(parts);
    log(`bench: wrote ${DOC_PATH} and ${SVG_PATH}`);
  }
  return { summary, oddities };
}

// ---- summary -----------------------------------------------------------------------------------

function summarize(targets, results, mode) {
  return CASES.filter((c) => results.some((r) => r.caseId === c.id)).map((c) => {
    const med = {};
    for (const t of targets) med[t.id] = median(results.filter((r) => r.caseId === c.id && r.target === t.id && !r.error).map((r) => r.rps));
    const ratio = {};
    const toNode = {};
    for (const t of targets) {
      if (t.kind === 'redis') continue;
      ratio[t.id] = med[t.id] / med.redis;
      if (t.kind === 'ours') toNode[t.id] = med[t.id] / med.node;
    }
    return { c, n: c.n[mode], med, ratio, toNode };
  });
}

const throughput = (c, rps) => (c.mbps ? `${fmt1((rps * c.size) / 1e6)} MB/s` : `${fmtInt(rps)}/s`);

// --quick remembers its last result here (node_modules/ is git-ignored) so that a developer sees
// the change a hot-path edit made: run it before and after. A quick run is only comparable with
// another quick run (smaller keyspace, fewer requests, no AOF rewrites in Redis).
const QUICK_LAST = join(root, 'node_modules', '.cache', 'blobasaur-bench', 'quick-last.json');

function readQuickLast() {
  try {
    return JSON.parse(readIfExists(QUICK_LAST) ?? 'null');
  } catch {
    return null;
  }
}

function saveQuickLast(summary, mi) {
  const data = { date: mi.date, commit: mi.commit, cases: Object.fromEntries(summary.map((s) => [s.c.id, { ours: s.med.default, ratio: s.ratio.default }])) };
  mkdirSync(dirname(QUICK_LAST), { recursive: true });
  writeFileSync(QUICK_LAST, `${JSON.stringify(data, null, 1)}\n`);
}

const pct = (now, before) => (Number.isFinite(now / before) ? `${now >= before ? '+' : ''}${Math.round((now / before - 1) * 100)}%` : 'n/a');

function summaryRows(summary, targets, { withVerdict = true, last = null } = {}) {
  const ours = targets.filter((t) => t.kind === 'ours');
  const node = targets.some((t) => t.kind === 'ceiling');
  const header = [
    'case',
    ...targets.map((t) => t.label),
    ...ours.map((t) => `${t.id} ÷ redis`),
    ...(node ? [...ours.map((t) => `${t.id} ÷ node`), 'node ÷ redis'] : []),
    'target (÷ redis)',
    ...(withVerdict ? ours.map((t) => `${t.id}: target`) : []),
  ];
  if (last) header.push('previous quick: ÷ redis', 'ours now vs then');
  const rows = summary.map(({ c, med, ratio, toNode }) => {
    const row = [
      caseName(c),
      ...targets.map((t) => (c.size === KiB || t.kind !== 'ceiling' ? throughput(c, med[t.id]) : '—')),
      ...ours.map((t) => fmt2(ratio[t.id])),
      ...(node ? [...ours.map((t) => (c.size === KiB ? fmt2(toNode[t.id]) : '—')), c.size === KiB ? fmt2(ratio.node) : '—'] : []),
      `≥ ${c.target.toFixed(1)}`,
    ];
    if (withVerdict) row.push(...ours.map((t) => verdict(ratio[t.id], c.target)));
    if (last) row.push(fmt2(last.cases?.[c.id]?.ratio), pct(med.default, last.cases?.[c.id]?.ours));
    return row;
  });
  const numeric = 1 + targets.length + ours.length + (node ? ours.length + 1 : 0);
  const align = header.map((_, i) => (i === 0 || i >= numeric + 1 ? 'l' : 'r'));
  return { header, rows, align };
}

function printSummary(summary, targets, mode, elapsed, oddities, notes) {
  const last = mode === 'quick' ? readQuickLast() : null;
  const { header, rows, align } = summaryRows(summary, targets, { last });
  log(`\nMedian throughput (1 MiB cases in MB/s = req/s × 1,048,576 / 10^6); ours ÷ redis-server and ours ÷ the Node.js ceiling (bench/node-ceiling.mjs):\n`);
  log(textTable(header, rows, align));
  if (mode === 'quick') {
    log(
      `\nQuick run: one round, fewer requests, a smaller keyspace. On a busy machine single runs move by tens of percent: repeat before trusting a change, and compare only with another quick run` +
        `${last ? ` (previous: ${last.date}, git ${last.commit}).` : ' (none recorded yet; this one is kept for the next).'} Full numbers: docs/benchmarks.md.`,
    );
  }
  if (notes.length) log(`\nredis-benchmark notes: ${notes.join(' | ')}`);
  if (oddities.length) log(`\nOdd things seen:\n- ${oddities.join('\n- ')}`);
  log(`\nbench: ${mode} run took ${Math.round(elapsed)} s`);
}

function chartFor(summary, rounds) {
  const groups = summary.map(({ c }) => ({ label: `${c.op.toUpperCase()} ${c.size === KiB ? '1 KiB' : '1 MiB'}`, sublabel: caseSub(c), target: c.target }));
  const series = [
    { label: 'ours, default mode', color: '#4e79a7', values: summary.map((s) => s.ratio.default) },
    { label: 'ours, async_write + batch 50 / 10 ms', color: '#f28e2b', values: summary.map((s) => s.ratio.async) },
    { label: 'bare Node.js RESP loop (the ceiling)', color: '#bab0ac', values: summary.map((s) => (s.c.size === KiB ? s.ratio.node : NaN)) },
  ];
  return ratioChartSvg({
    title: 'Blobasaur ÷ redis-server throughput, higher is better',
    subtitle: `median of ${rounds} rounds, redis-benchmark, same machine and run; dashed red = target (${new Date().toISOString().slice(0, 10)})`,
    groups,
    series,
  });
}

// ---- markdown ----------------------------------------------------------------------------------

function matrixMarkdown({ summary, targets, results, rounds, mode, mi, loadEnd, elapsed, checks, oddities, notes, keyspace }) {
  const { header, rows, align } = summaryRows(summary, targets);
  const ours = targets.filter((t) => t.kind === 'ours');
  const misses = summary
    .filter(({ c, ratio }) => ours.some((t) => !(ratio[t.id] >= c.target)))
    .map(({ c, ratio }) => `${caseName(c)} (${ours.map((t) => `${t.id} ${fmt2(ratio[t.id])}`).join(', ')} of ≥ ${c.target.toFixed(1)})`);
  const cmd = (c) => ['redis-benchmark', ...benchArgs('PORT', c, c.n[mode], keyspace[c.size])].map(shellQuote).join(' ');
  const detailRows = results.map((r) => {
    const c = CASES.find((x) => x.id === r.caseId);
    const paired = results.find((x) => x.round === r.round && x.caseId === r.caseId && x.target === 'redis');
    return [
      r.round,
      caseName(c),
      targets.find((t) => t.id === r.target).label,
      r.error ? `error: ${r.error.replace(/\s+/g, ' ').replace(/\|/g, '\\|').slice(0, 200)}` : throughput(c, r.rps),
      r.error ? '' : fmtInt(r.rps),
      r.error ? '' : r.p50.toFixed(3),
      r.error ? '' : r.p99.toFixed(3),
      r.error ? '' : r.seconds.toFixed(1),
      r.target !== 'redis' && !r.error && paired && !paired.error ? fmt2(r.rps / paired.rps) : '',
      r.aofRewrite ? 'AOF rewrite during the run' : '',
    ];
  });
  return `# Benchmarks: Blobasaur vs redis-server

<!-- Generated by \`npm run bench\` (bench/run.mjs). Everything above the scale-run section is rewritten
     by each full run; the "Scale run" and "Analysis" sections below are kept. -->

Generated by \`npm run bench\` on ${mi.date.slice(0, 10)} (${Math.round(elapsed / 60)} min). Throughput of
\`redis-benchmark\` against our server, against a bare Node.js RESP loop (the ceiling) and against \`redis-server\` with append-only file and
\`appendfsync everysec\` — the same durability class as SQLite WAL with \`synchronous = NORMAL\` —
on the same machine in the same run, alternating targets, ${rounds} rounds, medians. The machine is
shared and small, so absolute numbers move from run to run: read the **ratio** ours ÷ redis-server.

## Result

${mdTable(header, rows, align)}

Throughput is the median over ${rounds} rounds of requests per second; the 1 MiB cases are shown in
MB/s (req/s × 1,048,576 bytes / 10^6). "÷ redis" = our median ÷ redis-server's median in this run;
"÷ node" = our median ÷ the Node.js ceiling's; "node ÷ redis" is how close the bare runtime gets.
Targets are issue 20's goals for the 1 KiB cases and issue 17's for 1 MiB.
${misses.length ? `\nTargets not met (in at least one mode): ${misses.join('; ')}. The "Analysis" section below says why and what is left.` : '\nEvery target is met in both modes.'}

${mi.loadavg[0] > mi.cores || (loadEnd?.[0] ?? 0) > mi.cores ? `**Busy machine:** load average ${mi.loadavg[0].toFixed(1)} at start and ${loadEnd?.[0]?.toFixed(1) ?? '?'} at the end on ${mi.cores} cores — other work shared the cores with this run, so single rounds swing widely; read the medians with care, and CPU per request (\`bench/cpu-per-request.mjs\`) for small changes.\n` : ''}
![ours ÷ redis-server per case](benchmarks-ratios.svg)

## Machine

${machineMarkdown(mi, loadEnd)}

## What runs

Four servers are started once, each on 127.0.0.1 with a fresh temp directory, and run side by side:
redis-server with AOF rewrites off (\`auto-aof-rewrite-percentage 0\`: a rewrite forks and copies the
data set, and earlier runs showed SET ratios that depended on whether one was running), our server
in two modes, and \`bench/node-ceiling.mjs\`, the Node.js yardstick: a \`Map\` behind a minimal RESP
loop of the same style as our parser, no storage, no limits, no metrics — what the runtime itself
costs per request on this machine in this run (small-value cases only).

\`\`\`sh
redis-server ${redisArgs('PORT', 'TMPDIR').map(shellQuote).join(' ')}
node dist/src/main.js --config TMPDIR/config.toml --addr 127.0.0.1:PORT --data-dir TMPDIR/data   # ours, default: config.toml is empty
node dist/src/main.js --config TMPDIR/config.toml --addr 127.0.0.1:PORT --data-dir TMPDIR/data   # ours, async: config.toml below
node bench/node-ceiling.mjs --port PORT --host 127.0.0.1                                           # the ceiling
\`\`\`

\`\`\`toml
# ours, async (the seed's high-throughput mode)
${ASYNC_TOML.trim()}
\`\`\`

Before the 1 KiB cases every server gets ${fmtInt(keyspace[KiB])} keys \`key:000000000000\` … of 1,024 bytes, before
the 1 MiB cases ${fmtInt(keyspace[MiB])} keys of 1 MiB (pipelined SETs, not measured; then a 1 s pause). The
"${HOT_KEYS / 1000}k keys" cases GET only the first ${fmtInt(HOT_KEYS)} keys: a working set that fits our
default \`value_cache_mb\`, read ${WARM_PASSES} times over (every key, pipelined, not measured) by each target right
before each such run (a full value cache admits a key read from SQLite on its second miss), so that it is the working set and not a cold cache that is measured; the other GET cases draw from all ${fmtInt(keyspace[KiB])}, which does not. \`-r N\` makes
redis-benchmark pick random keys from exactly those names, so every GET finds a value of the
benchmarked size; the SET runs overwrite the same keys with values of the same size. Then, per round,
per case, each target in turn (the order rotates), one redis-benchmark run each:

\`\`\`sh
${summary.map(({ c }) => cmd(c)).join('\n')}
\`\`\`

What this run checked on the way:

${checks.map((x) => `- ${x}`).join('\n')}

${oddities.length || notes.length ? `## Odd things seen in this run\n\n${[...notes.map((n) => `redis-benchmark said: ${n}`), ...oddities].map((x) => `- ${x.replace(/\n/g, ' ')}`).join('\n')}\n` : '## Odd things seen in this run\n\nNone: no errors, no crashes, no warnings in our servers\' logs.\n'}
## Every run

"paired" is that run's req/s ÷ redis-server's in the same round and case. "AOF rewrite during the run"
marks a redis-server run that overlapped one of its background AOF rewrites.

${mdTable(['round', 'case', 'target', 'throughput', 'req/s', 'p50 ms', 'p99 ms', 'seconds', 'paired', 'note'], detailRows, ['r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'])}

## Rerun

Needs \`redis-server\` and \`redis-benchmark\` on PATH (Debian/Ubuntu: \`apt-get install redis-server redis-tools\`)
and \`npm ci\`. Then:

\`\`\`sh
npm run bench                     # this file and docs/benchmarks-ratios.svg (5–10 min on 2 cores)
npm run bench -- --rounds 3       # fewer rounds
npm run bench -- --quick          # < 1 min, default mode only: prints the table and the change since the previous quick run
npm run bench -- --scale --gib 1  # the scale run below (default --gib 10); needs that much free disk in TMPDIR
\`\`\`
`;
}
