/**
 * The slot map of a managed cluster, as it is stored in etcd (one JSON value under
 * `<prefix>/map`): which primary serves which slots, and which replicas follow it. Every change
 * makes a new map with `epoch + 1` and is written by a compare-and-swap on the key's revision, so
 * two writers can never both succeed from the same map. Pure functions only: etcd is elsewhere.
 */
import { countSlots, SLOT_COUNT, type SlotRange } from './slots.js';
import { NODE_NAME } from './state.js';

export interface ShardEntry {
  /** Node name (`[cluster] node_id`) of the primary. */
  primary: string;
  /** Node names of its replicas, in the order they were added. */
  replicas: string[];
  /** Inclusive slot ranges the primary serves, ascending, not overlapping. */
  slots: SlotRange[];
}

export interface ClusterMap {
  /** Bumped by every change (Redis' currentEpoch): the newest map wins everywhere. */
  epoch: number;
  shards: ShardEntry[];
}

/** What a node publishes about itself under `<prefix>/members/<name>` (kept after it stops). */
export interface MemberRecord {
  name: string;
  host: string;
  port: number;
}

export class MapError extends Error {}

function isRange(v: unknown): v is [number, number] {
  return (
    Array.isArray(v) &&
    v.length === 2 &&
    v.every((n) => Number.isInteger(n) && (n as number) >= 0 && (n as number) < SLOT_COUNT) &&
    (v[0] as number) <= (v[1] as number)
  );
}

/** Parses and checks a stored map: names valid, every node in one role once, no slot served twice. */
export function parseMap(text: string): ClusterMap {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MapError('slot map is not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw new MapError('slot map is not an object');
  const { epoch, shards } = raw as { epoch?: unknown; shards?: unknown };
  if (!Number.isSafeInteger(epoch) || (epoch as number) < 0) throw new MapError('slot map epoch is not a non-negative integer');
  if (!Array.isArray(shards)) throw new MapError('slot map shards is not a list');
  const map: ClusterMap = { epoch: epoch as number, shards: [] };
  for (const s of shards as unknown[]) {
    const e = s as { primary?: unknown; replicas?: unknown; slots?: unknown };
    if (typeof e?.primary !== 'string' || !NODE_NAME.test(e.primary)) throw new MapError('shard primary is not a node name');
    if (!Array.isArray(e.replicas) || !e.replicas.every((r) => typeof r === 'string' && NODE_NAME.test(r))) throw new MapError('shard replicas are not node names');
    if (!Array.isArray(e.slots) || !e.slots.every(isRange)) throw new MapError('shard slots are not ranges');
    map.shards.push({ primary: e.primary, replicas: [...(e.replicas as string[])], slots: (e.slots as [number, number][]).map(([a, b]) => [a, b] as const) });
  }
  checkMap(map);
  return map;
}

export function checkMap(map: ClusterMap): void {
  const seen = new Set<string>();
  const served = new Uint8Array(SLOT_COUNT);
  for (const s of map.shards) {
    for (const name of [s.primary, ...s.replicas]) {
      if (seen.has(name)) throw new MapError(`node ${name} appears twice in the slot map`);
      seen.add(name);
    }
    for (const [a, b] of s.slots) {
      for (let i = a; i <= b; i++) {
        if (served[i] === 1) throw new MapError(`slot ${i} is served by two shards`);
        served[i] = 1;
      }
    }
  }
}

/** The map's JSON form, as stored: normalized ranges so equal maps are equal text. */
export function formatMap(map: ClusterMap): string {
  return JSON.stringify({ epoch: map.epoch, shards: map.shards.map((s) => ({ primary: s.primary, replicas: s.replicas, slots: normalize(s.slots) })) });
}

/** Sorted, merged ranges. */
export function normalize(ranges: readonly SlotRange[]): SlotRange[] {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** The shard a node belongs to (as primary or replica), or null. */
export function shardOf(map: ClusterMap, name: string): ShardEntry | null {
  return map.shards.find((s) => s.primary === name || s.replicas.includes(name)) ?? null;
}

/**
 * A new map for `primaries` (with `replicasPer` replicas each, taken in order from `replicas`):
 * the 16384 slots split into contiguous ranges as `redis-cli --cluster create` splits them.
 */
export function initialMap(primaries: readonly string[], replicas: readonly string[] = []): ClusterMap {
  if (primaries.length === 0) throw new MapError('a cluster needs at least one primary');
  // redis-cli's split (clusterManagerCommandCreate): cumulative float cursor, rounded ends.
  const per = SLOT_COUNT / primaries.length;
  let first = 0;
  const shards: ShardEntry[] = primaries.map((p, i) => {
    let last = i === primaries.length - 1 ? SLOT_COUNT - 1 : Math.round(i * per + per - 1);
    if (last < first) last = first;
    const range: SlotRange = [first, last];
    first = last + 1;
    return { primary: p, replicas: [], slots: [range] };
  });
  replicas.forEach((r, i) => shards[i % shards.length].replicas.push(r));
  const map = { epoch: 1, shards };
  checkMap(map);
  return map;
}

function clone(map: ClusterMap): ClusterMap {
  return { epoch: map.epoch, shards: map.shards.map((s) => ({ primary: s.primary, replicas: [...s.replicas], slots: [...s.slots] })) };
}

/** Adds a primary with no slots (or a replica of `replicaOf`); the node must not be in the map. */
export function addNode(map: ClusterMap, name: string, replicaOf: string | null): ClusterMap {
  if (shardOf(map, name) !== null) throw new MapError(`node ${name} is already in the cluster`);
  const next = clone(map);
  next.epoch++;
  if (replicaOf === null) next.shards.push({ primary: name, replicas: [], slots: [] });
  else {
    const shard = next.shards.find((s) => s.primary === replicaOf);
    if (shard === undefined) throw new MapError(`${replicaOf} is not a primary`);
    shard.replicas.push(name);
  }
  return next;
}

/** Removes a node. A primary that still serves slots cannot be removed: move them away first. */
export function removeNode(map: ClusterMap, name: string): ClusterMap {
  const next = clone(map);
  const shard = shardOf(next, name);
  if (shard === null) throw new MapError(`node ${name} is not in the cluster`);
  next.epoch++;
  if (shard.primary === name) {
    if (countSlots(shard.slots) > 0) throw new MapError(`node ${name} still serves slots; move them first`);
    if (shard.replicas.length > 0) throw new MapError(`node ${name} still has replicas; remove or move them first`);
    next.shards = next.shards.filter((s) => s !== shard);
  } else {
    shard.replicas = shard.replicas.filter((r) => r !== name);
  }
  return next;
}

/**
 * Makes replica `name` the primary of its shard; the old primary becomes one of its replicas (it
 * will follow the new one when it comes back).
 */
export function promote(map: ClusterMap, name: string): ClusterMap {
  const next = clone(map);
  const shard = shardOf(next, name);
  if (shard === null) throw new MapError(`node ${name} is not in the cluster`);
  if (shard.primary === name) throw new MapError(`node ${name} is already a primary`);
  next.epoch++;
  shard.replicas = [shard.primary, ...shard.replicas.filter((r) => r !== name)];
  shard.primary = name;
  return next;
}

/** Moves slots [a, b] from whichever shards hold them to primary `to`. */
export function assignSlots(map: ClusterMap, a: number, b: number, to: string): ClusterMap {
  const next = clone(map);
  const target = next.shards.find((s) => s.primary === to);
  if (target === undefined) throw new MapError(`${to} is not a primary`);
  next.epoch++;
  for (const s of next.shards) {
    const kept: SlotRange[] = [];
    for (const [x, y] of s.slots) {
      if (y < a || x > b) kept.push([x, y]);
      else {
        if (x < a) kept.push([x, a - 1]);
        if (y > b) kept.push([b + 1, y]);
      }
    }
    s.slots = kept;
  }
  target.slots = normalize([...target.slots, [a, b]]);
  return next;
}

/** Owner name of every slot ('' for none). */
export function slotOwners(map: ClusterMap): string[] {
  const owners = new Array<string>(SLOT_COUNT).fill('');
  for (const s of map.shards) for (const [a, b] of s.slots) for (let i = a; i <= b; i++) owners[i] = s.primary;
  return owners;
}
