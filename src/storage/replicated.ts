/**
 * The storage side of replication: committed write batches as bytes (what a primary streams) and
 * their application on a replica, plus loading a primary's shard copy. A replica takes no writes
 * of its own, so its overlay is empty; what it must keep right is its value cache, invalidated for
 * every key a replicated batch touches (and refilled with the batch's uncompressed values).
 */
import { deserialize, serialize } from 'node:v8';
import type { ShardWrite } from './shard.js';
import type { Store } from './store.js';

/** One committed batch of one shard, as the stream carries it. */
export interface ReplicatedBatch {
  shard: number;
  writes: ShardWrite[];
}

/**
 * Writes a replica replays. Expiry sweeps and purges of flushed rows are left out: they only
 * delete rows every read already treats as absent, and the replica's own sweeper and purger
 * delete the same rows by the same rule.
 */
export function replicable(writes: readonly ShardWrite[]): ShardWrite[] {
  return writes.filter((w) => w.kind !== 'sweep' && w.kind !== 'swept' && w.kind !== 'reclaimed' && w.kind !== 'purge');
}

export function encodeBatch(b: ReplicatedBatch): Buffer {
  return serialize(b);
}

const asBuffer = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array));
const asMaybe = (v: unknown): Buffer | null => (v === null || v === undefined ? null : asBuffer(v));

/** Decodes a batch and checks its shape (v8 turns Buffers into Uint8Arrays on the way). */
export function decodeBatch(data: Buffer): ReplicatedBatch {
  const raw = deserialize(data) as { shard: unknown; writes: unknown };
  if (!Number.isInteger(raw.shard) || !Array.isArray(raw.writes)) throw new Error('malformed replicated batch');
  const writes = (raw.writes as Record<string, unknown>[]).map((w): ShardWrite => {
    switch (w.kind) {
      case 'set':
        return {
          kind: 'set',
          ns: asMaybe(w.ns),
          key: asBuffer(w.key),
          data: asBuffer(w.data),
          codec: Number(w.codec),
          size: Number(w.size),
          now: Number(w.now),
          expiresAt: w.expiresAt === null ? null : Number(w.expiresAt),
        };
      case 'del':
        return { kind: 'del', ns: asMaybe(w.ns), key: asBuffer(w.key) };
      case 'delns':
        return { kind: 'delns', ns: asBuffer(w.ns) };
      case 'expire':
        return { kind: 'expire', ns: asMaybe(w.ns), key: asBuffer(w.key), expiresAt: w.expiresAt === null ? null : Number(w.expiresAt) };
      case 'flush':
        return { kind: 'flush' };
      default:
        throw new Error(`replicated batch has a write of kind ${String(w.kind)}`);
    }
  });
  return { shard: raw.shard as number, writes };
}

/**
 * Applies a primary's batch to the same shard here, after whatever this shard has queued (its
 * own expiry sweeps), in one transaction, then forgets cached values of the keys it touched.
 */
export async function applyBatch(store: Store, b: ReplicatedBatch): Promise<void> {
  const q = store.queues[b.shard];
  if (q === undefined) throw new Error(`replicated batch for shard ${b.shard}; this node has ${store.numShards}`);
  if (b.writes.length === 0) return;
  await q.drain();
  const [err] = q.shard.applyGroups([b.writes]);
  // In the same synchronous step as the commit, so no read sees the cache behind the rows. An
  // uncompressed value is kept as it was written (fill on write, as on a primary); nothing is
  // kept if the batch failed, or if this node has writes of its own pending (it was promoted).
  const keep = err === null && q.overlay.empty;
  for (const w of b.writes) {
    if (w.kind === 'flush') q.cache.clear();
    else if (w.kind === 'delns') q.cache.invalidateNamespace(w.ns);
    else if (w.kind === 'set' || w.kind === 'del' || w.kind === 'expire') {
      q.cache.invalidate(w.ns, w.key);
      if (keep && w.kind === 'set' && w.codec === 0) q.cache.put(w.ns, w.key, w.data, w.expiresAt);
    }
  }
  if (err !== null) throw err;
}

/** Replaces shard `shard`'s rows with those of a primary's copy. */
export async function loadShardCopy(store: Store, shard: number, file: string): Promise<void> {
  const q = store.queues[shard];
  await q.drain();
  q.shard.replaceContents(file);
  q.cache.clear();
}

/**
 * Takes a consistent copy of each shard into `dir` (SQLite's backup API while the store serves),
 * calling `copied(shard)` as each completes: the caller notes the replication offset right then,
 * and the copy holds every batch of that shard committed up to it.
 */
export async function copyShards(store: Store, dir: string, fileName: (shard: number) => string, copied: (shard: number) => void): Promise<string[]> {
  const files: string[] = [];
  for (const q of store.queues) {
    const file = `${dir}/${fileName(q.shard.id)}`;
    await q.shard.backup(file);
    copied(q.shard.id);
    files.push(file);
  }
  return files;
}
