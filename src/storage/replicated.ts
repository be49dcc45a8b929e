/**
 * The storage side of replication: committed write batches as bytes (what a primary streams) and
 * their application on a replica, plus loading a primary's shard copy. A replica takes no writes
 * of its own, so its overlay is empty; what it must keep right is its value cache, invalidated for
 * every key a replicated batch touches (and refilled with the batch's uncompressed values).
 */
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { crc32 } from 'node:zlib';
import { chunkCount, CHUNKS_PER_STEP } from './chunks.js';
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
          // A chunked value: the primary's blob, whose chunks the replica fetches (stageReplicatedBlob).
          ...(w.blobId === null || w.blobId === undefined ? {} : { blobId: Number(w.blobId), blobStored: Number(w.blobStored) }),
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
  let err: Error | null;
  try {
    [err] = q.shard.applyGroups([b.writes]);
  } catch (e) {
    err = e instanceof Error ? e : new Error(String(e));
  }
  // In the same synchronous step as the commit, so no read sees the cache behind the rows. An
  // uncompressed value is kept as it was written (fill on write, as on a primary); nothing is
  // kept if the batch failed, or if this node has writes of its own pending (it was promoted).
  const keep = err === null && q.overlay.empty;
  if (err !== null) for (const w of b.writes) if (w.kind === 'set' && w.blobId != null) store.blobMayBeUnreferenced(b.shard, w.blobId);
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

/**
 * Puts a primary's copy of shard `shard` (its shard file and chunk file, downloaded onto this
 * data directory's file system) in place of this node's: see Store.replaceShardFiles.
 */
export async function loadShardCopy(store: Store, shard: number, shardFile: string, chunkFile: string): Promise<void> {
  await store.replaceShardFiles(shard, shardFile, chunkFile);
}

/**
 * Takes a consistent copy of each shard into `dir` (SQLite's backup API while the store serves),
 * calling `copied(shard)` as each shard file's copy completes: the caller notes the replication
 * offset right then, and the copy holds every batch of that shard committed up to it. The shard's
 * chunk file is copied next, with reclamation held back from before the shard copy to after the
 * chunk copy: blobs never change, so every blob a row of the shard copy references is in the chunk
 * copy (blobs written after the shard copy are referenced by nothing there; the replica reclaims them).
 */
export async function copyShards(
  store: Store,
  dir: string,
  fileName: (shard: number) => string,
  chunkFileName: (shard: number) => string,
  copied: (shard: number) => void,
): Promise<{ shards: string[]; chunks: string[] }> {
  const shards: string[] = [];
  const chunks: string[] = [];
  const release = store.holdReclamation();
  try {
    for (const q of store.queues) {
      const id = q.shard.id;
      const file = join(dir, fileName(id));
      await q.shard.backup(file);
      copied(id);
      shards.push(file);
      const chunkFile = join(dir, chunkFileName(id));
      await store.chunkFiles[id].backup(chunkFile);
      chunks.push(chunkFile);
    }
  } finally {
    release();
  }
  return { shards, chunks };
}

/** A chunk as a primary sends it: stored bytes (maybe compressed) with their codec, CRC-32 and logical size. */
export interface SentChunk {
  codec: number;
  crc: number;
  size: number;
  data: Buffer;
}

/**
 * Stores a chunked value a replicated batch refers to (the primary's blob `size` bytes long) as a
 * new blob of this node's shard `shard`, fetching its chunks in order a few at a time; the
 * chunks are stored as sent (no decode or recompression), their CRC-32 checked on arrival.
 * Returns the blob's id here and its stored bytes. A failure leaves the blob to the reclaimer.
 */
export async function stageReplicatedBlob(
  store: Store,
  shard: number,
  size: number,
  fetch: (seq: number) => Promise<SentChunk[]>,
): Promise<{ id: number; stored: number }> {
  const file = store.chunkFiles[shard];
  const id = file.allocate();
  let stored = 0;
  try {
    file.open(id, size);
    const n = chunkCount(size);
    for (let seq = 0; seq < n; ) {
      const got = await fetch(seq);
      if (got.length === 0) throw new Error(`the primary sent no chunk ${seq} of a ${size}-byte value`);
      // A full copy may have replaced the file meanwhile: the blob would be in the old one.
      if (store.chunkFiles[shard] !== file) throw new Error('the chunk file was replaced while a value was being copied');
      for (const c of got) {
        if (crc32(c.data) !== c.crc) throw new Error(`chunk ${seq} of a replicated value fails its CRC-32 check`);
      }
      for (let i = 0; i < got.length; i += CHUNKS_PER_STEP) {
        const part = got.slice(i, i + CHUNKS_PER_STEP);
        stored += file.putChunks(id, seq + i, part.map((c) => ({ encoded: { codec: c.codec, payload: c.data }, size: c.size })));
      }
      seq += got.length;
    }
  } catch (err) {
    if (store.chunkFiles[shard] === file) store.blobMayBeUnreferenced(shard, id);
    throw err;
  }
  return { id, stored };
}
