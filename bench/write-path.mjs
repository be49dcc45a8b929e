#!/usr/bin/env node
// Write-path benchmark: Blobasaur's SET throughput and latency in four write configurations,
// measured against redis-server (AOF, appendfsync everysec) in the same run.
//
//   node bench/write-path.mjs            # N = 50,000 SETs per run, 3 rounds (a few minutes)
//   node bench/write-path.mjs --quick    # N = 10,000
//   options: --n N  --rounds R  --out FILE (default docs/benchmarks-write-path.md; "-" = don't write)
//
// Needs a built server (dist/src/main.js: `npm ci` builds it, or `npx tsc -p .`), and
// redis-server + redis-benchmark on PATH (Debian: redis-server, redis-tools).
// Everything listens on 127.0.0.1 only, every load is a fixed number of requests, and every
// server started here is stopped (also on error and Ctrl-C); temp dirs are removed.

import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SERVER_JS = path.join(ROOT, 'dist', 'src', 'main.js');
let serverJs = SERVER_JS; // replaced by a snapshot of dist/src at start
const HOST = '127.0.0.1';
const CLIENTS = 50;
const VALUE_BYTES = 1024;
const KEYSPACE = 100000;

// ---- options -----------------------------------------------------------------------------------

function parseOptions(argv) {
  const opts = { n: 50000, rounds: 3, out: path.join(ROOT, 'docs', 'benchmarks-write-path.md'), quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') {
      opts.quick = true;
      opts.n = 10000;
    } else if (a === '--n') opts.n = positiveInt(a, next());
    else if (a === '--rounds') opts.rounds = positiveInt(a, next());
    else if (a === '--out') {
      const v = next();
      opts.out = v === '-' ? null : path.resolve(v);
    } else if (a === '-h' || a === '--help') usage(null);
    else usage(`unknown option ${a}`);
  }
  return opts;
}

function positiveInt(flag, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`${flag} needs a positive integer, got "${v}"`);
  return n;
}

function usage(error) {
  const text = 'usage: node bench/write-path.mjs [--quick] [--n N] [--rounds R] [--out FILE|-]\n';
  if (error) {
    process.stderr.write(`write-path: ${error}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

// ---- configurations ----------------------------------------------------------------------------

const CONFIGS = [
  { id: 'sync-b1', label: 'sync, batch_size 1, batch_timeout_ms 0 (defaults)', toml: { async_write: false, batch_size: 1, batch_timeout_ms: 0 } },
  { id: 'sync-b50', label: 'sync, batch_size 50, batch_timeout_ms 0', toml: { async_write: false, batch_size: 50, batch_timeout_ms: 0 } },
  { id: 'async-b1', label: 'async_write, batch_size 1, batch_timeout_ms 0', toml: { async_write: true, batch_size: 1, batch_timeout_ms: 0 } },
  { id: 'async-b50', label: 'async_write, batch_size 50, batch_timeout_ms 10', toml: { async_write: true, batch_size: 50, batch_timeout_ms: 10 } },
];

function configToml(cfg) {
  const lines = Object.entries(cfg.toml).map(([k, v]) => `${k} = ${v}`);
  lines.push('num_shards = 4', 'log_level = "silent"');
  return `${lines.join('\n')}\n`;
}

// ---- process and temp-dir bookkeeping (cleanup on every exit path) -----------------------------

const children = new Set(); // live child processes
let tmpRoot = null;

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAllNow() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function removeTmp() {
  if (tmpRoot) {
    try {
      rmSync(tmpRoot, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
    tmpRoot = null;
  }
}

process.on('exit', () => {
  killAllNow();
  removeTmp();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nwrite-path: ${sig}: stopping servers and removing temp dirs\n`);
    killAllNow();
    removeTmp();
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Keep the last `max` characters a stream wrote (for error messages). */
function tail(stream, max = 4000) {
  const box = { text: '' };
  stream?.on('data', (d) => {
    box.text = (box.text + d.toString()).slice(-max);
  });
  return box;
}

// ---- a tiny RESP client (PING for readiness, DBSIZE as a sanity check) -------------------------

function respCommand(port, args, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: HOST, port });
    let buf = '';
    const done = (err, val) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(val);
    };
    const timer = setTimeout(() => done(new Error('timeout')), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (d) => {
      buf += d.toString();
      const eol = buf.indexOf('\r\n');
      if (eol >= 0) done(null, buf.slice(0, eol));
    });
  });
}

async function waitReady(port, child, errTail, what) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited during start (code ${child.exitCode}, signal ${child.signalCode}): ${errTail.text.trim()}`);
    }
    try {
      if ((await respCommand(port, ['PING'], 1000)) === '+PONG') return;
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  throw new Error(`${what} did not answer PING within 30 s: ${errTail.text.trim()}`);
}

async function stopServer(child, graceMs = 20000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const winner = await Promise.race([exited.then(() => 'exited'), sleep(graceMs).then(() => 'timeout')]);
  if (winner === 'timeout') {
    process.stderr.write(`write-path: pid ${child.pid} ignored SIGTERM for ${graceMs / 1000} s; killing it\n`);
    child.kill('SIGKILL');
    await exited;
  }
}

// ---- servers -----------------------------------------------------------------------------------

function redisArgs(port, dir) {
  return ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir];
}

async function startRedis(dir) {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const child = track(spawn('redis-server', redisArgs(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = tail(child.stdout);
  tail(child.stderr);
  await waitReady(port, child, out, 'redis-server');
  return { port, child };
}

async function startBlobasaur(cfg, dir) {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'config.toml');
  writeFileSync(configFile, configToml(cfg));
  const args = [serverJs, '--addr', `${HOST}:${port}`, '--data-dir', path.join(dir, 'data'), '--config', configFile];
  const child = track(spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }));
  tail(child.stdout);
  const err = tail(child.stderr);
  await waitReady(port, child, err, 'blobasaur');
  return { port, child, err };
}

// ---- redis-benchmark ---------------------------------------------------------------------------

function benchArgs(port, n) {
  return ['-h', HOST, '-p', String(port), '-t', 'set', '-n', String(n), '-c', String(CLIENTS), '-d', String(VALUE_BYTES), '-r', String(KEYSPACE), '--csv'];
}

function parseCsvLine(line) {
  return line
    .trim()
    .split(',')
    .map((f) => f.replace(/^"|"$/g, ''));
}

/** redis-benchmark 7 --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",... */
function parseBenchCsv(stdout) {
  const lines = stdout.split(/\r?\n/).filter((l) => l.trim() !== '');
  const headerIdx = lines.findIndex((l) => parseCsvLine(l)[0] === 'test');
  if (headerIdx < 0) throw new Error(`no CSV header in redis-benchmark output: ${stdout.trim().slice(0, 500)}`);
  const header = parseCsvLine(lines[headerIdx]);
  const col = (name) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`redis-benchmark CSV has no "${name}" column (header: ${header.join(',')})`);
    return i;
  };
  const cols = { rps: col('rps'), p50: col('p50_latency_ms'), p99: col('p99_latency_ms'), avg: col('avg_latency_ms') };
  const row = lines.slice(headerIdx + 1).map(parseCsvLine).find((f) => f[0] === 'SET');
  if (!row) throw new Error(`no SET row in redis-benchmark output: ${stdout.trim().slice(0, 500)}`);
  const num = (i, name) => {
    const v = Number(row[i]);
    if (!Number.isFinite(v)) throw new Error(`redis-benchmark ${name} is not a number: "${row[i]}"`);
    return v;
  };
  return { rps: num(cols.rps, 'rps'), p50: num(cols.p50, 'p50'), p99: num(cols.p99, 'p99'), avg: num(cols.avg, 'avg') };
}

function runBenchmark(port, n) {
  // Bounded twice: a fixed -n, and a watchdog in case a server stops answering.
  const limitMs = (120 + Math.ceil(n / 100)) * 1000;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = track(spawn('redis-benchmark', benchArgs(port, n), { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d.toString()));
    const err = tail(child.stderr);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - started) / 1000;
      if (timedOut) return reject(new Error(`redis-benchmark did not finish within ${limitMs / 1000} s`));
      if (code !== 0) return reject(new Error(`redis-benchmark exited with ${code ?? signal}: ${err.text.trim()} ${stdout.trim()}`));
      try {
        resolve({ ...parseBenchCsv(stdout), seconds, warnings: err.text.trim() });
      } catch (e) {
        reject(e);
      }
    });
  });
}

async function dbsize(port) {
  try {
    const line = await respCommand(port, ['DBSIZE'], 5000);
    return line.startsWith(':') ? Number(line.slice(1)) : null;
  } catch {
    return null;
  }
}

// ---- one measured run --------------------------------------------------------------------------

async function measure(target, n, runDir) {
  let server;
  try {
    server = target.kind === 'redis' ? await startRedis(runDir) : await startBlobasaur(target.cfg, runDir);
    const result = await runBenchmark(server.port, n);
    result.keys = await dbsize(server.port);
    if (server.child.exitCode !== null || server.child.signalCode !== null) throw new Error('server exited during the run');
    return { ok: true, ...result };
  } catch (e) {
    const extra = server?.err?.text?.trim();
    return { ok: false, error: `${e instanceof Error ? e.message : String(e)}${extra ? ` | server stderr: ${extra}` : ''}` };
  } finally {
    if (server) await stopServer(server.child);
    rmSync(runDir, { recursive: true, force: true });
  }
}

// ---- statistics and formatting -----------------------------------------------------------------

function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const fmtMs = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function shellQuote(a) {
  return a === '' ? '""' : /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

function machineInfo() {
  let cpu = 'unknown';
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1].trim();
  } catch {
    /* not Linux */
  }
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']);
  return {
    nproc: sh('nproc', []),
    cpu,
    os: `${os.type()} ${os.release()}`,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    redis: sh('redis-server', ['--version']),
    redisBenchmark: sh('redis-benchmark', ['--version']),
    commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    srcDirty: dirty !== '' && dirty !== 'unknown' ? dirty.split('\n').length : 0,
  };
}

/**
 * Other people may rebuild dist/ while this runs; copy dist/src once so every run uses one build.
 * node_modules is linked, package.json copied (the server reads its version from it).
 */
function snapshotServer(into) {
  mkdirSync(into, { recursive: true });
  cpSync(path.join(ROOT, 'dist', 'src'), path.join(into, 'dist', 'src'), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(into, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(into, 'node_modules'), 'dir');
  return path.join(into, 'dist', 'src', 'main.js');
}

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

// ---- main --------------------------------------------------------------------------------------

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (!existsSync(SERVER_JS)) {
    process.stderr.write(`write-path: ${path.relative(ROOT, SERVER_JS)} not found; build first: npx tsc -p .\n`);
    process.exit(1);
  }
  for (const tool of ['redis-server', 'redis-benchmark']) {
    if (sh(tool, ['--version']) === 'unknown') {
      process.stderr.write(`write-path: ${tool} not found on PATH (Debian: apt-get install redis-server redis-tools)\n`);
      process.exit(1);
    }
  }

  const machine = machineInfo();
  const startedAt = new Date();
  const log = (s) => process.stderr.write(`${s}\n`);
  machine.distBuilt = new Date(statSync(SERVER_JS).mtimeMs);
  machine.srcNewest = new Date(newestMtime(path.join(ROOT, 'src')));
  if (machine.srcNewest > machine.distBuilt) {
    log(`write-path: warning: src/ has files newer than dist/src/main.js; run npx tsc -p . to measure the current code`);
  }
  tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'blobasaur-bench-'));
  serverJs = snapshotServer(path.join(tmpRoot, 'server'));
  log(`write-path: N=${opts.n}, ${opts.rounds} round(s), ${CONFIGS.length} configurations vs redis-server; temp dir ${tmpRoot}`);

  // Every run: redis-server, then one Blobasaur configuration, alternating; the order of the
  // configurations rotates by one each round so no configuration always runs first or last.
  const runs = [];
  let seq = 0;
  for (let round = 1; round <= opts.rounds; round++) {
    for (let k = 0; k < CONFIGS.length; k++) {
      const cfg = CONFIGS[(k + round - 1) % CONFIGS.length];
      for (const target of [{ kind: 'redis', id: 'redis' }, { kind: 'blobasaur', id: cfg.id, cfg }]) {
        seq++;
        const r = await measure(target, opts.n, path.join(tmpRoot, `run-${seq}-${target.id}`));
        const rec = { round, target: target.id, pairedWith: target.kind === 'redis' ? cfg.id : null, ...r };
        runs.push(rec);
        log(
          r.ok
            ? `  round ${round}  ${target.id.padEnd(9)}  ${fmtInt(r.rps).padStart(7)} SET/s  p50 ${fmtMs(r.p50)} ms  p99 ${fmtMs(r.p99)} ms  keys ${r.keys ?? '?'}  (${r.seconds.toFixed(1)} s)`
            : `  round ${round}  ${target.id.padEnd(9)}  FAILED: ${r.error}`,
        );
      }
    }
  }
  removeTmp();

  // Summaries.
  const summarize = (id) => {
    const ok = runs.filter((r) => r.target === id && r.ok);
    const failed = runs.filter((r) => r.target === id && !r.ok);
    return { id, n: ok.length, failed, rps: median(ok.map((r) => r.rps)), p50: median(ok.map((r) => r.p50)), p99: median(ok.map((r) => r.p99)) };
  };
  const redis = summarize('redis');
  const rows = CONFIGS.map((cfg) => {
    const s = summarize(cfg.id);
    // Paired ratio: each Blobasaur run against the redis-server run just before it.
    const paired = [];
    for (let i = 1; i < runs.length; i++) {
      const a = runs[i - 1];
      const b = runs[i];
      if (b.target === cfg.id && a.target === 'redis' && a.ok && b.ok) paired.push(b.rps / a.rps);
    }
    return { cfg, ...s, ratio: s.rps / redis.rps, pairedRatios: paired };
  });

  const md = renderMarkdown({ opts, machine, startedAt, redis, rows, runs });
  process.stdout.write(md);
  if (opts.out) {
    mkdirSync(path.dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, md);
    log(`write-path: wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
  }
  const anyFailed = runs.some((r) => !r.ok);
  return anyFailed ? 1 : 0;
}

function renderMarkdown({ opts, machine, startedAt, redis, rows, runs }) {
  const benchCmd = ['redis-benchmark', ...benchArgs(0, opts.n)].map(shellQuote).join(' ').replace(' -p 0 ', ' -p PORT ');
  const redisCmd = ['redis-server', ...redisArgs(0, '/tmp/…')].map(shellQuote).join(' ').replace('--port 0', '--port PORT').replace("'/tmp/…'", 'TMPDIR');
  const ourCmd = 'node dist/src/main.js --addr 127.0.0.1:PORT --data-dir TMPDIR/data --config TMPDIR/config.toml';
  const invocation = ['node', 'bench/write-path.mjs', ...process.argv.slice(2)].map(shellQuote).join(' ');

  const table = [
    '| configuration | SET/s | p50 ms | p99 ms | ratio to redis-server SET/s |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| redis-server ${machine.redis.match(/v=(\S+)/)?.[1] ?? ''} (AOF, appendfsync everysec) | ${fmtInt(redis.rps)} | ${fmtMs(redis.p50)} | ${fmtMs(redis.p99)} | 1.00× |`,
    ...rows.map(
      (r) =>
        `| Blobasaur: ${r.cfg.label} | ${fmtInt(r.rps)} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtRatio(r.ratio)}${r.failed.length ? ` (${r.failed.length} of ${r.failed.length + r.n} runs failed)` : ''} |`,
    ),
  ].join('\n');

  const rawRows = runs.map((r) => {
    const prev = runs[runs.indexOf(r) - 1];
    const paired = r.target !== 'redis' && prev?.target === 'redis' && prev.ok && r.ok ? fmtRatio(r.rps / prev.rps) : '';
    return r.ok
      ? `| ${r.round} | ${r.target} | ${fmtInt(r.rps)} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${r.keys ?? '?'} | ${r.seconds.toFixed(1)} | ${paired} |`
      : `| ${r.round} | ${r.target} | failed: ${r.error.replace(/\|/g, '\\|').replace(/\s+/g, ' ').slice(0, 300)} | | | | | |`;
  });

  const reading = readResult(redis, rows);
  const expectedKeys = Math.round(KEYSPACE * (1 - Math.exp(-opts.n / KEYSPACE)));
  const warned = runs.some((r) => r.ok && r.target !== 'redis' && /CONFIG/.test(r.warnings ?? ''));

  return `# Write-path benchmark: Blobasaur vs redis-server

Generated by \`${invocation}\` on ${startedAt.toISOString()} (git ${machine.commit}${machine.srcDirty ? `, plus uncommitted changes in ${machine.srcDirty} file(s) under src/` : ''}).
Rerun with \`node bench/write-path.mjs\` (\`--quick\` for N = 10,000); it rewrites this file.

The machine is shared, so absolute numbers are noise: read the **ratio** to redis-server, measured in
the same run with the same client, alternating with Blobasaur.

## Machine

- CPUs (\`nproc\`): ${machine.nproc}; CPU model: ${machine.cpu}; memory ${machine.memGiB} GiB; ${machine.os}
- Node ${machine.node}; ${machine.redis}; ${machine.redisBenchmark}
- redis-benchmark, the server under test and its disk all share these ${machine.nproc} CPUs.
- Blobasaur build: \`dist/src\` as of ${machine.distBuilt.toISOString()} (copied once at start so every run uses the same build)${machine.srcNewest > machine.distBuilt ? `; **src/ had newer edits (${machine.srcNewest.toISOString()}) that this build does not include**` : ''}.

## Method

Each run starts a fresh server on a fresh temp dir, runs one fixed-size load, reads \`DBSIZE\`, then
stops the server (SIGTERM) and deletes the dir. Per round: redis-server, Blobasaur config A,
redis-server, config B, … (the order of A–D rotates each round); ${opts.rounds} round(s), so each
Blobasaur configuration runs ${opts.rounds} time(s) and redis-server ${opts.rounds * CONFIGS.length} times. The table shows the
median SET/s and the medians of the per-run p50 and p99 latencies; the ratio is Blobasaur's median
SET/s ÷ redis-server's median SET/s.

\`\`\`sh
# reference
${redisCmd}
# Blobasaur (one config.toml per configuration, below)
${ourCmd}
# load, identical for both (N = ${opts.n}, 50 connections, 1 KiB values, random keys in 100,000)
${benchCmd}
\`\`\`

config.toml per configuration (num_shards 4 is the default, other keys default):

${CONFIGS.map((c) => `- ${c.label}: \`${configToml(c).trim().split('\n').join('; ')}\``).join('\n')}

## Result

${table}

${reading}

## Every run

\`keys\` is \`DBSIZE\` after the run (about ${fmtInt(expectedKeys)} distinct keys are expected from ${fmtInt(opts.n)} random SETs over 100,000).
\`paired\` is that run's SET/s ÷ the redis-server run just before it.

| round | target | SET/s | p50 ms | p99 ms | keys | seconds | paired |
| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |
${rawRows.join('\n')}
${warned ? '\nredis-benchmark prints "WARNING: Could not fetch server CONFIG" against Blobasaur (it has no CONFIG command); the load is unaffected.\n' : ''}`;
}

function readResult(redis, rows) {
  const ok = rows.filter((r) => Number.isFinite(r.ratio));
  if (!Number.isFinite(redis.rps) || ok.length === 0) return 'Reading: not enough successful runs to compare.';
  const best = ok.reduce((a, b) => (b.ratio > a.ratio ? b : a));
  const worst = ok.reduce((a, b) => (b.ratio < a.ratio ? b : a));
  const byId = Object.fromEntries(rows.map((r) => [r.cfg.id, r]));
  const x = (a, b) => (Number.isFinite(byId[a]?.rps) && Number.isFinite(byId[b]?.rps) ? `${(byId[a].rps / byId[b].rps).toFixed(2)}×` : 'n/a');
  const failed = rows.filter((r) => r.failed.length);
  return [
    `Reading: Blobasaur reaches ${fmtRatio(worst.ratio)}–${fmtRatio(best.ratio)} of redis-server's SET throughput; best is "${best.cfg.label}" (p99 ${fmtMs(best.p99)} ms vs redis-server ${fmtMs(redis.p99)} ms), worst is "${worst.cfg.label}".`,
    `batch_size 50 vs 1 changes sync-mode throughput by ${x('sync-b50', 'sync-b1')} and async-mode by ${x('async-b50', 'async-b1')}; async_write vs sync at batch_size 1 gives ${x('async-b1', 'sync-b1')}.${failed.length ? ` Failed runs: ${failed.map((r) => `${r.cfg.id} ${r.failed.length}`).join(', ')} (see below).` : ''}`,
  ].join('\n\n');
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`write-path: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
