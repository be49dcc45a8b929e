/**
 * `blobasaur cluster reshard|rebalance`: moves slots between primaries of a managed cluster while
 * clients read and write, the way redis-cli --cluster reshard moves them, slot by slot:
 *   target: CLUSTER SETSLOT s IMPORTING source    source: CLUSTER SETSLOT s MIGRATING target
 *   source: CLUSTER GETKEYSINSLOT s batch + MIGRATE … REPLACE KEYS …, until the slot is empty
 *   target, then source: CLUSTER SETSLOT s NODE target (the first is one CAS of the map in etcd)
 * During the move the source serves the keys it still has and sends the others to the target
 * with -ASK, so a key written meanwhile ends up on the target once.
 */
import type { Etcd3 } from 'etcd3';
import { RespClient, RespError, type RespValue } from '../protocol/client.js';
import { readMap } from '../cluster/etcd.js';
import { MapError, type ClusterMap } from '../cluster/map.js';
import { countSlots } from '../cluster/slots.js';
import { nodeIdFor } from '../cluster/state.js';
import type { Progress } from './progress.js';

export interface ReshardOptions {
  /** Keys per GETKEYSINSLOT + MIGRATE round (redis-cli's --cluster-pipeline, default 10 there). */
  batch: number;
  /** MIGRATE's timeout, ms. */
  timeoutMs: number;
  password?: string;
}

export interface Move {
  from: string;
  to: string;
  slots: number;
}

interface Endpoint {
  name: string;
  host: string;
  port: number;
}

async function endpoint(client: Etcd3, prefix: string, name: string): Promise<Endpoint> {
  const raw = await client.get(`${prefix}/members/${name}`).string();
  if (raw === null) throw new MapError(`node ${name} has never registered (no ${prefix}/members/${name} in etcd)`);
  const m = JSON.parse(raw) as { host: string; port: number };
  return { name, host: m.host, port: m.port };
}

async function call(c: RespClient, args: (string | Buffer)[]): Promise<RespValue> {
  const reply = await c.send(args);
  if (reply instanceof RespError) throw new Error(`${args.slice(0, 4).map(String).join(' ')}: ${reply.message}`);
  return reply;
}

async function open(e: Endpoint, opts: ReshardOptions): Promise<RespClient> {
  const c = await RespClient.connect({ host: e.host, port: e.port, timeoutMs: Math.max(5000, opts.timeoutMs * 2), maxReplyBytes: 64 << 20 });
  if (opts.password !== undefined) await call(c, ['AUTH', opts.password]);
  return c;
}

/** The first `n` slots `from` serves, ascending. */
function pickSlots(map: ClusterMap, from: string, n: number): number[] {
  const shard = map.shards.find((s) => s.primary === from);
  if (shard === undefined) throw new MapError(`${from} is not a primary`);
  const out: number[] = [];
  for (const [a, b] of shard.slots) for (let s = a; s <= b && out.length < n; s++) out.push(s);
  if (out.length < n) throw new MapError(`${from} serves ${out.length} slots, fewer than ${n}`);
  return out;
}

/** Moves one slot; returns the number of keys moved. */
async function moveSlot(slot: number, src: RespClient, dst: RespClient, from: Endpoint, to: Endpoint, opts: ReshardOptions): Promise<number> {
  const s = String(slot);
  await call(dst, ['CLUSTER', 'SETSLOT', s, 'IMPORTING', nodeIdFor(from.name)]);
  await call(src, ['CLUSTER', 'SETSLOT', s, 'MIGRATING', nodeIdFor(to.name)]);
  let moved = 0;
  for (;;) {
    const keys = (await call(src, ['CLUSTER', 'GETKEYSINSLOT', s, String(opts.batch)])) as Buffer[];
    if (keys.length === 0) break;
    const auth = opts.password === undefined ? [] : ['AUTH', opts.password];
    await call(src, ['MIGRATE', to.host, String(to.port), '', '0', String(opts.timeoutMs), 'REPLACE', ...auth, 'KEYS', ...keys]);
    moved += keys.length;
  }
  await call(dst, ['CLUSTER', 'SETSLOT', s, 'NODE', nodeIdFor(to.name)]);
  await call(src, ['CLUSTER', 'SETSLOT', s, 'NODE', nodeIdFor(to.name)]);
  return moved;
}

/** Moves `move.slots` slots from one primary to another; returns the keys moved. */
export async function reshard(client: Etcd3, prefix: string, move: Move, opts: ReshardOptions, bar: Progress | null): Promise<{ slots: number; keys: number }> {
  const { map } = await readMap(client, prefix);
  if (map === null) throw new MapError('this cluster has no slot map yet: run `blobasaur cluster create` first');
  if (!map.shards.some((s) => s.primary === move.to)) throw new MapError(`${move.to} is not a primary`);
  if (move.from === move.to) throw new MapError('--from and --to must differ');
  const slots = pickSlots(map, move.from, move.slots);
  const [from, to] = [await endpoint(client, prefix, move.from), await endpoint(client, prefix, move.to)];
  const src = await open(from, opts);
  const dst = await open(to, opts);
  let keys = 0;
  try {
    for (let i = 0; i < slots.length; i++) {
      bar?.update(i, slots.length, `slot ${slots[i]} ${move.from} -> ${move.to}, ${keys} keys moved`);
      keys += await moveSlot(slots[i], src, dst, from, to, opts);
    }
    bar?.update(slots.length, slots.length, `${keys} keys moved`);
  } finally {
    src.close();
    dst.close();
  }
  return { slots: slots.length, keys };
}

/**
 * The moves that leave every primary within one slot of an even share (redis-cli --cluster
 * rebalance without weights): the most loaded give to the least loaded.
 */
export function rebalancePlan(map: ClusterMap): Move[] {
  const load = map.shards.map((s) => ({ name: s.primary, slots: countSlots(s.slots) }));
  if (load.length === 0) return [];
  const total = load.reduce((n, l) => n + l.slots, 0);
  const base = Math.floor(total / load.length);
  let extra = total - base * load.length;
  // Lower names keep the extra slots, so the plan is the same on every run.
  const want = new Map([...load].sort((a, b) => (a.name < b.name ? -1 : 1)).map((l) => [l.name, base + (extra-- > 0 ? 1 : 0)]));
  const givers = load.filter((l) => l.slots > want.get(l.name)!).map((l) => ({ name: l.name, spare: l.slots - want.get(l.name)! }));
  const takers = load.filter((l) => l.slots < want.get(l.name)!).map((l) => ({ name: l.name, need: want.get(l.name)! - l.slots }));
  const moves: Move[] = [];
  for (const t of takers) {
    for (const g of givers) {
      const n = Math.min(t.need, g.spare);
      if (n <= 0) continue;
      moves.push({ from: g.name, to: t.name, slots: n });
      t.need -= n;
      g.spare -= n;
    }
  }
  return moves;
}
