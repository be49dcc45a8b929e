// Shared by the bench scripts: start our server (dist/) or a redis-server as a child on a free
// 127.0.0.1 port with a fresh data directory, wait until it answers, talk RESP to it, and clean up
// (kill children, remove temp dirs) on every way out: normal exit, an exception, Ctrl-C, SIGTERM.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

export const root = new URL('..', import.meta.url).pathname;
export const HOST = '127.0.0.1';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- clean-up registry -------------------------------------------------------------------------
// Synchronous functions only: they also run from process 'exit', where nothing async completes.

const cleanups = new Set();
let handlersInstalled = false;

function runCleanups() {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      /* best effort: keep cleaning the rest */
    }
  }
}

/** Registers `fn` to run once on exit or on a fatal signal; returns a function that unregisters it. */
export function onCleanup(fn) {
  if (!handlersInstalled) {
    handlersInstalled = true;
    process.on('exit', runCleanups);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.on(sig, () => {
        process.stderr.write(`\nbench: ${sig}: stopping servers, removing temp dirs\n`);
        runCleanups();
        process.exit(128 + (constants.signals[sig] ?? 1));
      });
    }
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** A fresh temp dir that is removed on exit (or earlier by calling the returned remove()). */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const unregister = onCleanup(remove);
  return {
    dir,
    remove: () => {
      unregister();
      remove();
    },
  };
}

// ---- ports and readiness -----------------------------------------------------------------------

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

export async function waitForPort(port, tries = 100, child = null) {
  for (let i = 0; ; i++) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`server exited during start (code ${child.exitCode}, signal ${child.signalCode})`);
    }
    const up = await new Promise((resolve) => {
      const s = createConnection(port, HOST, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) return;
    if (i > tries) throw new Error(`nothing listening on ${port}`);
    await sleep(100);
  }
}

// ---- child processes ---------------------------------------------------------------------------

/** Keeps the last `max` characters a stream wrote, for error messages. */
function tailOf(stream, max = 8000) {
  const box = { text: '' };
  stream?.on('data', (d) => {
    box.text = (box.text + d.toString()).slice(-max);
  });
  return box;
}

/**
 * Spawns a long-running child, registers it for clean-up and returns helpers around it.
 * stdio 'pipe' keeps the tail of its output (server logs, crash messages) in `output.text`.
 */
function spawnTracked(cmd, args, { stdio = 'inherit', cwd } = {}) {
  const child = spawn(cmd, args, { stdio: stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : stdio, cwd });
  const output = { text: '' };
  if (stdio === 'pipe') {
    // One box for both streams so the order of lines is roughly kept.
    const append = (d) => (output.text = (output.text + d.toString()).slice(-64_000));
    child.stdout.on('data', append);
    child.stderr.on('data', append);
  }
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const unregister = onCleanup(kill);
  exited.then(unregister);
  const alive = () => child.exitCode === null && child.signalCode === null;
  /** SIGTERM, wait for the exit (SIGKILL after graceMs); resolves to { code, signal, ms }. */
  const terminate = async (graceMs = 60_000) => {
    const started = Date.now();
    if (alive()) {
      child.kill('SIGTERM');
      let timer;
      const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(null), graceMs)));
      const r = await Promise.race([exited, timeout]);
      clearTimeout(timer); // an armed timer would keep the process alive after the run
      if (r === null) {
        process.stderr.write(`bench: pid ${child.pid} ignored SIGTERM for ${graceMs / 1000} s; killing it\n`);
        kill();
      }
    }
    const { code, signal } = await exited;
    return { code, signal, ms: Date.now() - started };
  };
  return { child, pid: child.pid, output, exited, kill, alive, terminate };
}

/**
 * Other people may rebuild dist/ while a long benchmark runs; copy dist/src once so every server
 * of a run is the same build. node_modules is linked, package.json copied (the server reads its
 * version from it). Returns { serverJs, builtAt }.
 */
export function snapshotServer() {
  const src = join(root, 'dist', 'src');
  if (!existsSync(join(src, 'main.js'))) throw new Error('dist/src/main.js is missing: run `npm run build` first');
  const { dir } = tempDir('blobasaur-build-');
  cpSync(src, join(dir, 'dist', 'src'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { serverJs: join(dir, 'dist', 'src', 'main.js') };
}

/** Node flags our server is started with, as its shebang and the Dockerfile start it (src/main.ts says why). */
export const SERVER_NODE_FLAGS = ['--initial-old-space-size=64'];

/**
 * The Node flags a bench starts our server with: SERVER_NODE_FLAGS, or BENCH_SERVER_NODE_FLAGS
 * (space-separated) to compare V8 flags that NODE_OPTIONS refuses, e.g.
 * `--builds 'dist/src,dist/src@BENCH_SERVER_NODE_FLAGS=--initial-old-space-size=64 --single-threaded-gc'`.
 */
function serverNodeFlags() {
  const override = process.env.BENCH_SERVER_NODE_FLAGS;
  return override === undefined ? SERVER_NODE_FLAGS : override.split(' ').filter(Boolean);
}

/** The command line that starts our server; exported so reports can print it. */
export function blobasaurArgs(serverJs, configFile, port, dataDir) {
  return [...serverNodeFlags(), serverJs, '--config', configFile, '--addr', `${HOST}:${port}`, '--data-dir', dataDir];
}

/**
 * Starts blobasaur with `configToml`; resolves to { port, dataDir, dir, pid, child, output, stop,
 * terminate, remove, alive }.
 *   stop()       SIGKILL and remove the temp dir (what the older bench scripts use)
 *   terminate()  graceful SIGTERM, waits for the exit, keeps the dir (to restart on the same data)
 * Options: serverJs (default dist/src/main.js), dir (reuse this directory and its data instead of a
 * fresh one; it is then not removed by stop()), stdio ('inherit' or 'pipe'), port.
 */
export async function startBlobasaur(configToml, prefix = 'blobasaur-bench-', opts = {}) {
  const serverJs = opts.serverJs ?? join(root, 'dist/src/main.js');
  const own = opts.dir ? null : tempDir(prefix);
  const dir = opts.dir ?? own.dir;
  const dataDir = join(dir, 'data');
  const configFile = join(dir, 'config.toml');
  writeFileSync(configFile, configToml);
  const port = opts.port ?? (await freePort());
  const proc = spawnTracked(process.execPath, blobasaurArgs(serverJs, configFile, port, dataDir), { stdio: opts.stdio ?? 'inherit' });
  const remove = () => own?.remove();
  const stop = () => {
    proc.kill();
    remove();
  };
  try {
    await waitForPort(port, 100, proc.child);
  } catch (err) {
    stop();
    throw new Error(`${err.message}${proc.output.text ? `\n${proc.output.text.trim()}` : ''}`);
  }
  return { port, dataDir, dir, configFile, pid: proc.pid, child: proc.child, output: proc.output, alive: proc.alive, stop, terminate: proc.terminate, remove };
}

/**
 * Spawns blobasaur on an existing directory without waiting for it (for timing a restart).
 * Returns the same helpers as spawnTracked plus port.
 */
export async function spawnBlobasaur(dir, { serverJs = join(root, 'dist/src/main.js'), stdio = 'pipe', port } = {}) {
  const p = port ?? (await freePort());
  const proc = spawnTracked(process.execPath, blobasaurArgs(serverJs, join(dir, 'config.toml'), p, join(dir, 'data')), { stdio });
  return { ...proc, port: p };
}

/**
 * The redis-server arguments of the reference: AOF with fsync every second, no RDB snapshots, and
 * no automatic AOF rewrites (auto-aof-rewrite-percentage 0): a rewrite forks and copies the whole
 * data set, and a ratio should not rest on whether Redis happened to be rewriting during a run.
 */
export function redisArgs(port, dir) {
  return ['--port', String(port), '--bind', HOST, '--appendonly', 'yes', '--appendfsync', 'everysec', '--auto-aof-rewrite-percentage', '0', '--save', '', '--dir', dir];
}

/** Starts redis-server (AOF, everysec) with a fresh dir; same helpers as startBlobasaur. */
export async function startRedis(prefix = 'redis-bench-') {
  const own = tempDir(prefix);
  const port = await freePort();
  const proc = spawnTracked('redis-server', redisArgs(port, own.dir), { stdio: 'pipe' });
  const stop = () => {
    proc.kill();
    own.remove();
  };
  try {
    await waitForPort(port, 100, proc.child);
  } catch (err) {
    stop();
    throw new Error(`redis-server: ${err.message}\n${proc.output.text.trim()}`);
  }
  return { port, dir: own.dir, pid: proc.pid, child: proc.child, output: proc.output, alive: proc.alive, stop, terminate: proc.terminate };
}

/**
 * Starts bench/node-ceiling.mjs (a Map behind a minimal RESP loop: the Node.js yardstick); same
 * helpers as startRedis.
 */
export async function startNodeCeiling() {
  const port = await freePort();
  const proc = spawnTracked(process.execPath, [join(root, 'bench', 'node-ceiling.mjs'), '--port', String(port), '--host', HOST], { stdio: 'pipe' });
  const stop = () => proc.kill();
  try {
    await waitForPort(port, 100, proc.child);
  } catch (err) {
    stop();
    throw new Error(`node-ceiling: ${err.message}\n${proc.output.text.trim()}`);
  }
  return { port, pid: proc.pid, child: proc.child, output: proc.output, alive: proc.alive, stop, terminate: proc.terminate };
}

/**
 * Collects a server's log lines at warn or above (pino JSON level ≥ 40) and any line that is not
 * JSON (a crash, a stack trace) into the returned array (at most `max`), as they arrive.
 */
export function watchServerLog(child, max = 50) {
  const issues = [];
  let partial = '';
  const onData = (d) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      if (!line.trim()) continue;
      const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 100);
      if (level >= 40 && issues.length < max) issues.push(line.slice(0, 400));
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return issues;
}

/** Resident set size and its peak (KiB → bytes) of a process, from /proc (Linux only). */
export function processMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

// ---- a small RESP client -----------------------------------------------------------------------
// Enough for loaders, checks and latency probes: pipelining with a promise per command, bulk
// replies as Buffers (no string conversion), error replies as RespError values (not thrown).

export class RespError extends Error {}

/**
 * Parses one reply at `off`. Returns [value, nextOffset], or [undefined, needed] where `needed`
 * is the smallest buffer length that could complete it (so big bulks are not re-scanned per chunk).
 */
function parseReply(buf, off) {
  const eol = buf.indexOf('\r\n', off);
  if (eol < 0) return [undefined, buf.length + 1];
  const type = buf[off];
  const line = () => buf.toString('latin1', off + 1, eol);
  switch (type) {
    case 0x2b: // +
      return [line(), eol + 2];
    case 0x2d: // -
      return [new RespError(line()), eol + 2];
    case 0x3a: // :
      return [Number(line()), eol + 2];
    case 0x24: {
      // $
      const n = Number(line());
      if (n < 0) return [null, eol + 2];
      const end = eol + 2 + n;
      if (buf.length < end + 2) return [undefined, end + 2];
      return [buf.subarray(eol + 2, end), end + 2];
    }
    case 0x2a: {
      // *
      const n = Number(line());
      if (n < 0) return [null, eol + 2];
      const items = [];
      let at = eol + 2;
      for (let i = 0; i < n; i++) {
        const [v, next] = parseReply(buf, at);
        if (v === undefined) return [undefined, next];
        items.push(v);
        at = next;
      }
      return [items, at];
    }
    default:
      throw new Error(`RESP: unexpected reply type byte ${type} (${JSON.stringify(buf.toString('latin1', off, Math.min(off + 40, buf.length)))})`);
  }
}

/**
 * Encodes a command as few buffers: string arguments go into one header buffer, Buffer arguments
 * (values) are passed through uncopied.
 */
export function encodeCommand(args) {
  const parts = [];
  let text = `*${args.length}\r\n`;
  for (const a of args) {
    if (Buffer.isBuffer(a)) {
      parts.push(Buffer.from(`${text}$${a.length}\r\n`), a);
      text = '\r\n';
    } else {
      const s = String(a);
      text += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
    }
  }
  parts.push(Buffer.from(text));
  return parts;
}

export class RespClient {
  /** Connects to 127.0.0.1:port; rejects on connection error. */
  static connect(port, host = HOST) {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ port, host, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RespClient(socket));
      });
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.waiting = []; // resolvers in command order
    this.head = 0;
    this.chunks = [];
    this.length = 0;
    this.needed = 1;
    this.failure = null;
    socket.on('data', (chunk) => this.onData(chunk));
    const fail = (err) => {
      this.failure = err ?? new Error('connection closed');
      for (let i = this.head; i < this.waiting.length; i++) this.waiting[i].reject(this.failure);
      this.waiting = [];
      this.head = 0;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(this.failure ?? new Error('connection closed by the server')));
  }

  onData(chunk) {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length < this.needed) return; // a large bulk is still arriving: don't concat yet
    let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
    let off = 0;
    for (;;) {
      if (off === buf.length) break;
      const [value, next] = parseReply(buf, off);
      if (value === undefined) {
        this.needed = next - off;
        break;
      }
      off = next;
      const w = this.waiting[this.head++];
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      w?.resolve(value);
    }
    buf = off === buf.length ? null : buf.subarray(off);
    this.chunks = buf ? [buf] : [];
    this.length = buf ? buf.length : 0;
    if (!buf) this.needed = 1;
  }

  /** Sends one command; resolves to its reply (a RespError value for an error reply). */
  send(args) {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      // Cork until the end of this tick so a pipelined burst leaves in one writev, not one
      // syscall per buffer.
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(() => {
          this.corked = false;
          this.socket.uncork();
        });
      }
      for (const part of encodeCommand(args)) this.socket.write(part);
    });
  }

  /** Commands sent but not answered yet. */
  get inflight() {
    return this.waiting.length - this.head;
  }

  close() {
    this.socket.destroy();
  }
}

/** Runs one command on a fresh connection (PING, DBSIZE, INFO) and closes it. */
export async function command(port, args) {
  const c = await RespClient.connect(port);
  try {
    return await c.send(args);
  } finally {
    c.close();
  }
}

/**
 * Sends `count` commands from makeArgs(i) over `connections` connections, at most `window`
 * unanswered per connection (bounded memory, no unbounded pipeline). Throws on an error reply.
 * onProgress(done) is called about every 1% of the work.
 */
export async function pipelined(port, count, makeArgs, { connections = 4, window = 64, onProgress } = {}) {
  const clients = await Promise.all(Array.from({ length: connections }, () => RespClient.connect(port)));
  let next = 0;
  let done = 0;
  let failure = null; // the first error; later ones are dropped (never left as unhandled rejections)
  const step = Math.max(1, Math.floor(count / 100));
  const worker = async (client) => {
    const pending = new Set();
    while (next < count && !failure) {
      const i = next++;
      const p = client
        .send(makeArgs(i))
        .then(
          (reply) => {
            if (reply instanceof RespError) throw new Error(`command ${i} (${String(makeArgs(i)[0])}) failed: ${reply.message}`);
            if (++done % step === 0) onProgress?.(done);
          },
        )
        .catch((err) => {
          failure ??= err;
        })
        .finally(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= window) await Promise.race(pending);
    }
    await Promise.all(pending);
  };
  try {
    await Promise.all(clients.map(worker));
  } finally {
    for (const c of clients) c.close();
  }
  if (failure) throw failure;
}

// ---- small statistics --------------------------------------------------------------------------

export function median(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The q-quantile (0..1) of an already sorted array, nearest-rank. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/**
 * Times one request at a time from `client` (`ioredis`-like: get(key)) for `ms` milliseconds or
 * until `until()` says so, cycling through `keys`; returns count, p50, p99 and max in milliseconds.
 */
export async function timeGets(client, keys, ms, until = () => false) {
  const lat = [];
  const end = Date.now() + ms;
  let i = 0;
  while (Date.now() < end && !until()) {
    const t = process.hrtime.bigint();
    await client.get(keys[i++ % keys.length]);
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  lat.sort((a, b) => a - b);
  const q = (x) => lat[Math.min(lat.length - 1, Math.floor(x * lat.length))];
  return { n: lat.length, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] };
}

/** Reads a file if it exists, else returns null. */
export function readIfExists(path) {
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
}

