/** Cluster test helpers: nodes of our server in this process or as child processes, and probes. */
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { nodeIdFor } from '../../src/cluster/state.js';
import { RawClient, resp } from './raw.js';
import { freePort, spawnOurs, startOurs, tempDir, type Child, type TestServer } from './servers.js';

export interface NodeSpec {
  name: string;
  slots: [number, number][];
  busPort: number;
  seeds: number[];
  /** Client port; 0 picks one. Reuse it to restart a node where clients expect it. */
  port?: number;
  dataDir?: string;
  cluster?: Record<string, unknown>;
}

export interface Timing {
  intervalMs: number;
  timeoutMs: number;
}

function clusterTable(spec: NodeSpec, t: Timing): Record<string, unknown> {
  return {
    enabled: true,
    node_id: spec.name,
    port: spec.busPort,
    seeds: spec.seeds.map((p) => `127.0.0.1:${p}`),
    gossip_interval_ms: t.intervalMs,
    node_timeout_ms: t.timeoutMs,
    slot_ranges: spec.slots.map(([start, end]) => ({ start, end })),
    ...spec.cluster,
  };
}

/** Starts one node of our server in this process. */
export async function startNode(spec: NodeSpec, t: Timing): Promise<TestServer> {
  return startOurs({
    addr: `127.0.0.1:${spec.port ?? 0}`,
    ...(spec.dataDir === undefined ? {} : { data_dir: spec.dataDir }),
    cluster: clusterTable(spec, t),
  });
}

/** Starts one node as a child process from a TOML config file, as an operator would. */
export async function spawnNode(spec: NodeSpec, t: Timing, dir = tempDir('blobasaur-node-')): Promise<Child & { dir: string }> {
  const port = spec.port ?? (await freePort());
  const c = clusterTable(spec, t);
  const toml = [
    `addr = "127.0.0.1:${port}"`,
    `data_dir = "${join(dir, 'data')}"`,
    'log_level = "warn"',
    '[cluster]',
    `enabled = true`,
    `node_id = "${spec.name}"`,
    `port = ${spec.busPort}`,
    `seeds = [${(c.seeds as string[]).map((s) => `"${s}"`).join(', ')}]`,
    `gossip_interval_ms = ${t.intervalMs}`,
    `node_timeout_ms = ${t.timeoutMs}`,
    // Scalar extras (secret, config_epoch, …) as TOML; JSON's quoting of these is TOML's too.
    ...Object.entries(spec.cluster ?? {}).map(([k, v]) => `${k} = ${JSON.stringify(v)}`),
    ...spec.slots.flatMap(([a, b]) => ['[[cluster.slot_ranges]]', `start = ${a}`, `end = ${b}`]),
  ].join('\n');
  const file = join(dir, 'config.toml');
  writeFileSync(file, `${toml}\n`);
  const child = await spawnOurs(['--config', file], port, dir);
  return Object.assign(child, { dir });
}

/** Sends one command; returns the raw reply, or the payload of a bulk/verbatim one. */
export async function command(port: number, ...args: string[]): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    c.write(resp(...args));
    const raw = await c.reply();
    const m = /^[$=](\d+)\r\n/.exec(raw);
    return m === null ? raw : raw.slice(m[0].length, m[0].length + Number(m[1]));
  } finally {
    c.destroy();
  }
}

export interface NodeLine {
  id: string;
  addr: string;
  name: string;
  flags: string[];
  link: string;
  slots: string;
}

export function parseNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split(' ');
      const [addr, name] = f[1].split(',');
      return { id: f[0], addr, name, flags: f[2].split(','), link: f[7], slots: f.slice(8).join(' ') };
    });
}

export async function nodes(port: number): Promise<NodeLine[]> {
  return parseNodes(await command(port, 'CLUSTER', 'NODES'));
}

export async function clusterState(port: number): Promise<string> {
  return /cluster_state:(\w+)/.exec(await command(port, 'CLUSTER', 'INFO'))?.[1] ?? '?';
}

/**
 * Polls until `cond` holds; returns the milliseconds it took. `cond` may answer a string instead
 * of false: what is not met yet, shown in the time-out error (the last one seen).
 */
export async function waitFor(what: string, cond: () => Promise<boolean | string>, timeoutMs = 10_000, everyMs = 20): Promise<number> {
  const start = Date.now();
  for (;;) {
    const met = await cond();
    if (met === true) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${typeof met === 'string' ? `: ${met}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ---- forging gossip, as an attacker on the bus would -------------------------------------------

export interface ForgedRecord {
  id: string;
  name: string;
  host: string;
  port: number;
  busHost: string;
  busPort: number;
  slots: [number, number][];
  inc: number;
  ver: number;
  epoch: number;
}

/** A node record as gossip carries it; the id is derived from the name as the server derives it. */
export function forgedRecord(name: string, fields: Partial<Omit<ForgedRecord, 'id' | 'name'>> = {}): ForgedRecord {
  return {
    id: nodeIdFor(name),
    name,
    host: '127.0.0.1',
    port: 1,
    busHost: '',
    busPort: 1,
    slots: [[0, 16383]],
    inc: Date.now(),
    ver: 0,
    epoch: 1_000_000,
    ...fields,
  };
}

/** One gossip line: `<mac> <json>\n`, signed with `secret` when given, else `-`. */
export function gossipLine(msg: Record<string, unknown>, secret?: string): string {
  const json = JSON.stringify({ to: '', ts: Date.now(), nonce: randomBytes(16).toString('hex'), ...msg });
  const mac = secret === undefined ? '-' : createHmac('sha256', secret).update(json).digest('hex');
  return `${mac} ${json}\n`;
}

/**
 * Connects to a bus port, writes `data`, and collects what comes back until the server closes the
 * connection or `waitMs` passes.
 */
export async function busExchange(port: number, data: string | Buffer, waitMs = 300): Promise<{ reply: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = new Socket();
    let reply = '';
    let closedByServer = false;
    const timer = setTimeout(() => s.destroy(), waitMs);
    s.on('data', (d: Buffer) => (reply += d.toString()));
    s.on('error', () => {});
    s.on('end', () => (closedByServer = true));
    s.on('close', (hadError) => {
      clearTimeout(timer);
      resolve({ reply, closedByServer: closedByServer || hadError });
    });
    s.connect(port, '127.0.0.1', () => s.write(data));
  });
}

/** A numeric field of INFO gossip. */
export async function gossipField(port: number, field: string): Promise<number> {
  const m = new RegExp(`${field}:(\\d+)`).exec(await command(port, 'INFO', 'gossip'));
  if (m === null) throw new Error(`no ${field} in INFO gossip`);
  return Number(m[1]);
}

/**
 * A TCP relay in front of a bus port that keeps every line the dialling side sends: what an
 * attacker on the path between two nodes captures.
 */
export async function capturingRelay(target: number): Promise<{ port: number; lines: string[]; close(): Promise<void> }> {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = new Socket();
    sockets.add(inbound).add(outbound);
    let buf = '';
    // A socket queues writes made while it is still connecting, so nothing is lost.
    outbound.on('data', (d: Buffer) => inbound.write(d));
    inbound.on('data', (d: Buffer) => {
      outbound.write(d);
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        lines.push(buf.slice(0, nl + 1));
        buf = buf.slice(nl + 1);
      }
    });
    for (const s of [inbound, outbound]) {
      s.on('error', () => {});
      s.on('close', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    outbound.connect(target, '127.0.0.1');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    lines,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- managed clusters (etcd) --------------------------------------------------------------------

export interface ManagedSpec {
  name: string;
  etcd: string[];
  clusterName: string;
  leaseTtlS?: number;
  /** Client port; 0 picks one. Reuse it to restart a node where clients expect it. */
  port?: number;
  /** Further top-level TOML lines (requirepass = "…"). */
  top?: string[];
  /** Further `[cluster]` scalars. */
  cluster?: Record<string, unknown>;
  /** The node's log_level; BLOBASAUR_TEST_LOG_LEVEL overrides the default "warn" for every node. */
  logLevel?: string;
}

function managedToml(spec: ManagedSpec, port: number, dir: string): string {
  return [
    `addr = "127.0.0.1:${port}"`,
    `data_dir = "${join(dir, 'data')}"`,
    `log_level = "${spec.logLevel ?? process.env.BLOBASAUR_TEST_LOG_LEVEL ?? 'warn'}"`,
    ...(spec.top ?? []),
    '[cluster]',
    'enabled = true',
    `node_id = "${spec.name}"`,
    `etcd = [${spec.etcd.map((e) => JSON.stringify(e)).join(', ')}]`,
    `cluster_name = "${spec.clusterName}"`,
    `lease_ttl_s = ${spec.leaseTtlS ?? 2}`,
    ...Object.entries(spec.cluster ?? {}).map(([k, v]) => `${k} = ${JSON.stringify(v)}`),
  ].join('\n');
}

/** Starts one node of a managed cluster as a child process from a TOML file. */
export async function spawnManaged(spec: ManagedSpec, dir = tempDir('blobasaur-managed-')): Promise<Child & { dir: string }> {
  const port = spec.port ?? (await freePort());
  const file = join(dir, 'config.toml');
  writeFileSync(file, `${managedToml(spec, port, dir)}\n`);
  const child = await spawnOurs(['--config', file], port, dir);
  return Object.assign(child, { dir });
}

/** Starts one node of a managed cluster in this process. */
export async function startManaged(spec: ManagedSpec): Promise<TestServer> {
  return startOurs({
    addr: `127.0.0.1:${spec.port ?? 0}`,
    cluster: { enabled: true, node_id: spec.name, etcd: spec.etcd, cluster_name: spec.clusterName, lease_ttl_s: spec.leaseTtlS ?? 2, ...spec.cluster },
  });
}

/**
 * Whether a managed cluster has started: `cluster_state:ok` on every node and
 * `master_link_status:up` on every replica. true, or what is not yet so on which node, with that
 * node's INFO replication and CLUSTER NODES and the end of its log (`output`), for a time-out.
 */
export async function managedStarted(
  nodes: { name: string; port: number; output?: () => string }[],
  replicas: string[],
): Promise<true | string> {
  const reply = (port: number, ...args: string[]): Promise<string> => command(port, ...args).catch((err: Error) => `<${err.message}>`);
  for (const n of nodes) {
    const checks: [string, string[], RegExp][] = [['cluster_state:ok', ['CLUSTER', 'INFO'], /cluster_state:ok/]];
    if (replicas.includes(n.name)) checks.push(['master_link_status:up', ['INFO', 'replication'], /master_link_status:up/]);
    for (const [want, args, re] of checks) {
      if (re.test(await reply(n.port, ...args))) continue;
      const log = n.output?.().split('\n').slice(-30).join('\n') ?? '';
      return (
        `${n.name} (port ${n.port}) has no ${want}\n-- INFO replication:\n${await reply(n.port, 'INFO', 'replication')}` +
        `\n-- CLUSTER NODES:\n${await reply(n.port, 'CLUSTER', 'NODES')}\n-- log (last 30 lines):\n${log}`
      );
    }
  }
  return true;
}

/** cluster_current_epoch of CLUSTER INFO. */
export async function clusterEpoch(port: number): Promise<number> {
  return Number(/cluster_current_epoch:(\d+)/.exec(await command(port, 'CLUSTER', 'INFO'))?.[1] ?? -1);
}

// ---- load from the three cluster clients (managed-cluster scenarios) ----------------------------

/** What one client's writer/reader did: its acknowledged last value per key, errors with times. */
export interface LoadResult {
  client: 'ioredis' | 'node-redis' | 'redis-py';
  writes: number;
  reads: number;
  /** Errors that reached the application (redirections the client followed are not errors). */
  errors: { at: number; message: string }[];
  /** Epoch ms of every acknowledged write, in order (for "first write after …"). */
  okTimes: number[];
  last: Map<string, string>;
}

export interface ClusterLoad {
  /** Stops every client and returns what each did. */
  stop(): Promise<LoadResult[]>;
}

/**
 * A writer and a reader per client — ioredis Cluster, node-redis createCluster, redis-py
 * RedisCluster (a child process) — each overwriting its own keys (`keys(prefix)`) in turn and
 * reading them back, until stopped or `maxMs` passes. Errors pause a client 50 ms (no busy loop
 * while a slot is down). Reads must return the value last acknowledged for that key.
 */
export async function startClusterLoad(seedPort: number, keys: (prefix: string) => string[], maxMs = 120_000): Promise<ClusterLoad> {
  const { Cluster } = await import('ioredis');
  const { createCluster } = await import('redis');
  const { spawn } = await import('node:child_process');
  let stopped = false;
  const deadline = Date.now() + maxMs;
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
  async function loop(r: LoadResult, set: (k: string, v: string) => Promise<unknown>, get: (k: string) => Promise<string | null>, ks: string[]): Promise<LoadResult> {
    for (let i = 0; !stopped && Date.now() < deadline; i++) {
      const k = ks[i % ks.length];
      try {
        await set(k, String(i));
        r.last.set(k, String(i));
        r.okTimes.push(Date.now());
        r.writes++;
        const j = ks[(i * 7) % ks.length];
        const v = await get(j);
        if (v !== (r.last.get(j) ?? null)) r.errors.push({ at: Date.now(), message: `read ${j}: ${v} after ${r.last.get(j)}` });
        r.reads++;
      } catch (err) {
        r.errors.push({ at: Date.now(), message: (err as Error).message });
        await pause();
      }
    }
    return r;
  }
  const io = new Cluster([{ host: '127.0.0.1', port: seedPort }], { maxRedirections: 64, retryDelayOnMoved: 0, retryDelayOnTryAgain: 20, slotsRefreshTimeout: 2000 });
  io.on('error', () => {}); // counted where a command fails
  const ioRun = loop(
    { client: 'ioredis', writes: 0, reads: 0, errors: [], okTimes: [], last: new Map() },
    (k, v) => io.set(k, v),
    (k) => io.get(k),
    keys('io:'),
  );
  const nr = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${seedPort}` }], maxCommandRedirections: 64 });
  nr.on('error', () => {});
  await nr.connect();
  const nrRun = loop(
    { client: 'node-redis', writes: 0, reads: 0, errors: [], okTimes: [], last: new Map() },
    (k, v) => nr.set(k, v),
    (k) => nr.get(k),
    keys('nr:'),
  );
  const dir = tempDir('blobasaur-load-py-');
  const stopFile = join(dir, 'stop');
  writeFileSync(join(dir, 'keys.txt'), keys('py:').join('\n'));
  const py = spawn(
    '/usr/bin/python3',
    [
      '-c',
      `
import os, time, json
from redis.cluster import RedisCluster
keys = open(${JSON.stringify(join(dir, 'keys.txt'))}).read().split('\\n')
last, errors, ok, writes, reads, i = {}, [], [], 0, 0, 0
def connect():
    try:
        return RedisCluster(host='127.0.0.1', port=${seedPort}, cluster_error_retry_attempts=10)
    except Exception as e:
        errors.append([int(time.time() * 1000), repr(e)])
        return None
rc = connect()
end = time.time() + ${Math.ceil(maxMs / 1000)}
while not os.path.exists(${JSON.stringify(stopFile)}) and time.time() < end:
    k = keys[i % len(keys)]
    if rc is None:
        time.sleep(0.05)
        rc = connect()
        continue
    try:
        rc.set(k, str(i)); last[k] = str(i); writes += 1; ok.append(int(time.time() * 1000))
        j = keys[(i * 7) % len(keys)]
        v = rc.get(j)
        want = last.get(j)
        if (v.decode() if v is not None else None) != want: errors.append([int(time.time() * 1000), 'read %s: %r after %r' % (j, v, want)])
        reads += 1
    except Exception as e:
        errors.append([int(time.time() * 1000), repr(e)])
        # redis-py 4.3 (Debian 12) cannot rebuild its slot map once a node it knew is dead: it
        # deep-copies a connection argument that holds a lock (redis-py issue 2480). A new
        # client from a live seed is the way out an application has too.
        if 'cannot pickle' in repr(e):
            rc = None
        time.sleep(0.05)
    i += 1
print(json.dumps({'writes': writes, 'reads': reads, 'errors': errors[:200], 'ok': ok, 'last': last}))
`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let pyOut = '';
  let pyErr = '';
  py.stdout!.on('data', (d: Buffer) => (pyOut += d.toString()));
  py.stderr!.on('data', (d: Buffer) => (pyErr += d.toString()));
  const pyDone = new Promise<void>((r) => py.once('exit', () => r()));
  return {
    async stop(): Promise<LoadResult[]> {
      stopped = true;
      writeFileSync(stopFile, '');
      const [a, b] = await Promise.all([ioRun, nrRun, pyDone]);
      io.disconnect();
      await nr.close().catch(() => {});
      let p: { writes: number; reads: number; errors: [number, string][]; ok: number[]; last: Record<string, string> };
      try {
        p = JSON.parse(pyOut) as typeof p;
      } catch {
        throw new Error(`redis-py load did not report: ${pyErr.slice(-2000)}`);
      }
      const c: LoadResult = {
        client: 'redis-py',
        writes: p.writes,
        reads: p.reads,
        errors: p.errors.map(([at, message]) => ({ at, message })),
        okTimes: p.ok,
        last: new Map(Object.entries(p.last)),
      };
      return [a, b, c];
    },
  };
}

/** One line per client for a test's figures. */
export function loadSummary(results: LoadResult[]): string {
  return results.map((r) => `${r.client} ${r.writes} writes/${r.reads} reads, ${r.errors.length} errors`).join('; ');
}
