/** Cluster test helpers: nodes of our server in this process or as child processes, and probes. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** Polls until `cond` holds; returns the milliseconds it took. */
export async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000, everyMs = 20): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
