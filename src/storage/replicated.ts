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

/**
 * A batch as the stream carries it: a fixed-width header naming each chunked value's blob (u32
 * count, then per value its write's index as u32, blob id and stored bytes as f64), then the
 * writes without those fields (v8 serialization). Fixed width, because a replica keeps the batches
 * it applied in its own backlog with the ids of its own copies of the blobs (withBlobRefs): the
 * bytes differ, the length — hence every later offset — does not, so a promoted replica's stream
 * continues the old primary's offsets (PSYNC2-style resume).
 */
const REF_BYTES = 20;

function headerBytes(refs: number): number {
  return 4 + refs * REF_BYTES;
}

function writeRefs(head: Buffer, writes: readonly ShardWrite[], indices: readonly number[]): void {
  head.writeUInt32LE(indices.length, 0);
  indices.forEach((i, k) => {
    const w = writes[i];
    if (w.kind !== 'set' || w.blobId == null) throw new Error(`write ${i} of a replicated batch is not a chunked value`);
    head.writeUInt32LE(i, 4 + k * REF_BYTES);
    head.writeDoubleLE(w.blobId, 8 + k * REF_BYTES);
    head.writeDoubleLE(w.blobStored ?? 0, 16 + k * REF_BYTES);
  });
}

export function encodeBatch(b: ReplicatedBatch): Buffer {
  const indices: number[] = [];
  const writes = b.writes.map((w, i) => {
    if (w.kind !== 'set' || w.blobId == null) return w;
    indices.push(i);
    const { blobId: _id, blobStored: _stored, ...inline } = w;
    return inline;
  });
  const head = Buffer.alloc(headerBytes(indices.length));
  writeRefs(head, b.writes, indices);
  return Buffer.concat([head, serialize({ shard: b.shard, writes })]);
}

/** Batch `data` with the blob ids and stored sizes of `b` (its decoded, re-pointed writes): same length. */
export function withBlobRefs(data: Buffer, b: ReplicatedBatch): Buffer {
  const n = data.readUInt32LE(0);
  const out = Buffer.from(data);
  const indices: number[] = [];
  for (let k = 0; k < n; k++) indices.push(data.readUInt32LE(4 + k * REF_BYTES));
  writeRefs(out, b.writes, indices);
  return out;
}

const asBuffer = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array));
const asMaybe = (v: unknown): Buffer | null => (v === null || v === undefined ? null : asBuffer(v));

/** Decodes a batch and checks its shape (v8 turns Buffers into Uint8Arrays on the way). */
export function decodeBatch(data: Buffer): ReplicatedBatch {
  if (data.length < 4 || data.length < headerBytes(data.readUInt32LE(0))) throw new Error('malformed replicated batch');
  const refs = data.readUInt32LE(0);
  const raw = deserialize(data.subarray(headerBytes(refs))) as { shard: unknown; writes: unknown };
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
  // A chunked value: the primary's blob, whose chunks the replica fetches (stageReplicatedBlob).
  for (let k = 0; k < refs; k++) {
    const i = data.readUInt32LE(4 + k * REF_BYTES);
    const w = writes[i];
    if (w === undefined || w.kind !== 'set') throw new Error('malformed replicated batch: a blob reference names no value');
    writes[i] = { ...w, blobId: data.readDoubleLE(8 + k * REF_BYTES), blobStored: data.readDoubleLE(16 + k * REF_BYTES) };
  }
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
 * Chunks of a value the replica already has: seq → that seq of its own blob `id` (the key's
 * previous value), because the primary derived the new value from the previous one there.
 */
export interface ReusedChunks {
  id: number;
  /** Its logical size. */
  size: number;
  /** Seq → stored bytes of the chunk reused. */
  seqs: ReadonlyMap<number, number>;
}

/**
 * Stores a chunked value a replicated batch refers to (the primary's blob `size` bytes long) as a
 * new blob of this node's shard `shard`: the chunks in `reuse` are mapped from this node's own
 * blob (no bytes move), the others fetched in order a few at a time; those are stored as sent
 * (no decode or recompression), their CRC-32 checked on arrival. Returns the blob's id here, its
 * stored bytes and the stored bytes fetched. A failure leaves the blob to the reclaimer.
 */
export async function stageReplicatedBlob(
  store: Store,
  shard: number,
  size: number,
  fetch: (seq: number) => Promise<SentChunk[]>,
  reuse?: ReusedChunks,
): Promise<{ id: number; stored: number; fetched: number }> {
  const file = store.chunkFiles[shard];
  const id = file.allocate();
  let stored = 0;
  let fetched = 0;
  const reused = (seq: number): boolean => reuse !== undefined && reuse.seqs.has(seq);
  if (reuse !== undefined) file.pin(reuse.id);
  try {
    file.open(id, size);
    const n = chunkCount(size);
    for (let seq = 0; seq < n; ) {
      if (reused(seq)) {
        let end = seq;
        for (; end < n && reused(end); end++) stored += reuse!.seqs.get(end)!;
        file.mapFrom(id, reuse!.id, seq, end);
        seq = end;
        continue;
      }
      let got = await fetch(seq);
      if (got.length === 0) throw new Error(`the primary sent no chunk ${seq} of a ${size}-byte value`);
      // A full copy may have replaced the file meanwhile: the blob would be in the old one.
      if (store.chunkFiles[shard] !== file) throw new Error('the chunk file was replaced while a value was being copied');
      for (const c of got) {
        if (crc32(c.data) !== c.crc) throw new Error(`chunk ${seq} of a replicated value fails its CRC-32 check`);
      }
      // Up to the next chunk this node has already.
      const upTo = got.findIndex((_, i) => reused(seq + i));
      if (upTo > 0) got = got.slice(0, upTo);
      for (let i = 0; i < got.length; i += CHUNKS_PER_STEP) {
        const part = got.slice(i, i + CHUNKS_PER_STEP);
        const bytes = file.putChunks(id, seq + i, part.map((c) => ({ encoded: { codec: c.codec, payload: c.data }, size: c.size })));
        stored += bytes;
        fetched += bytes;
      }
      seq += got.length;
    }
  } catch (err) {
    if (store.chunkFiles[shard] === file) store.blobMayBeUnreferenced(shard, id);
    throw err;
  } finally {
    if (reuse !== undefined) file.unpin(reuse.id);
  }
  // Should this node be promoted, its replicas get the same small delta from it.
  if (reuse !== undefined && reuse.seqs.size > 0) file.noteDerivation(id, { from: reuse.id, fromSize: reuse.size, kept: ranges([...reuse.seqs.keys()]) });
  return { id, stored, fetched };
}

/** Sorted seqs as [a, b) ranges. */
function ranges(seqs: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const s of seqs.sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === s) last[1] = s + 1;
    else out.push([s, s + 1]);
  }
  return out;
}
