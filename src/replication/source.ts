/**
 * The primary's side of replication: every committed write batch gets an offset (bytes of the
 * stream so far, as Redis counts master_repl_offset) and goes into a bounded backlog; replicas
 * take a copy of each shard (shard file and chunk file), then pull the backlog from their offset
 * (BLOBREPL STREAM, a long poll that doubles as their acknowledgement, which WAIT counts).
 *
 * A chunked value (over 1 MiB) is not put in the stream: the batch names its blob, and the replica
 * fetches the blob's chunks with BLOBREPL BLOB, four at a time: the memory a replica costs here
 * stays at most one reply (a few MiB of batches, or 1 MiB of chunks). The blob is pinned (never
 * reclaimed, even if the key is overwritten or deleted) while its batch is in the backlog, until
 * the pinned values pass backlog_mb and every connected replica has acknowledged the batch: a
 * replica busy fetching a value never loses it, and a dead value is not held for long on disk. A
 * replica that comes back for a value already let go takes a new copy (RESYNC).
 *
 * Histories, as Redis' PSYNC2: the stream has a replication id, and a replica keeps the batches it
 * applied in a backlog of its own (with its own blob ids: see withBlobRefs), under its primary's
 * id and offsets. When it is promoted it takes a new id and keeps the old one as `replid2` up to
 * the offset where it was promoted (`secondOffset`): a replica of the old primary at or behind
 * that offset continues from its offset here, without a copy; one ahead of it (an old primary
 * with writes nobody else got) has a history of its own and takes a copy.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../observability/log.js';
import type { ChunkFile, ChunkMeta } from '../storage/chunks.js';
import { copyShards, encodeBatch, replicable, type ReplicatedBatch, type SentChunk } from '../storage/replicated.js';
import { chunkFileName, shardFileName } from '../storage/schema.js';
import type { ShardWrite } from '../storage/shard.js';
import type { Store } from '../storage/store.js';
import { CHUNK_BYTES as CHUNK_BYTES_OF_VALUES } from '../storage/chunks.js';

/** Bytes one BLOBREPL CHUNK returns at most. */
export const CHUNK_BYTES = 1024 * 1024;
/** A copy nobody has read from for this long is deleted. */
const SNAPSHOT_IDLE_MS = 60_000;
/** A replica that has not polled for this long is no longer counted as connected. */
const REPLICA_GONE_MS = 10_000;

interface Entry {
  start: number;
  data: Buffer;
}

/** The chunked values one batch refers to, pinned in their chunk files (see PINS below). */
interface Pin {
  /** Offset just past the batch. */
  end: number;
  bytes: number;
  blobs: { shard: number; file: ChunkFile; id: number }[];
}

/** Chunks one BLOBREPL BLOB reply carries at most: 1 MiB of a value. */
export const BLOB_CHUNKS_PER_REPLY = 4;

export interface SnapshotInfo {
  id: string;
  replid: string;
  /** Stream offset when the copy began: the replica streams from here. */
  startOffset: number;
  /** Per shard: offset when its copy completed; batches of that shard starting before it are in the copy. */
  shardOffsets: number[];
  sizes: number[];
  /** Per shard: size of the chunk file's copy (BLOBREPL CHUNK reads it as file numShards + shard). */
  chunkSizes: number[];
}

export interface ReplicaInfo {
  id: string;
  addr: string;
  ackOffset: number;
  lastSeen: number;
}

export const NO_REPLID = '0000000000000000000000000000000000000000';

function newReplid(): string {
  return randomBytes(20).toString('hex');
}

export class ReplicationSource {
  replid = newReplid();
  /** The history this one continues, up to `secondOffset` (-1: none). */
  replid2 = NO_REPLID;
  secondOffset = -1;
  offset = 0;
  /** Copies taken by replicas (INFO stats sync_full). */
  fullSyncs = 0;
  /**
   * As in Redis, the backlog exists (and the offset counts) from the first replica on: a server
   * nobody replicates keeps nothing (INFO: repl_backlog_active:0, master_repl_offset:0).
   */
  active = false;
  private entries: Entry[] = [];
  private head = 0;
  private backlogBytes = 0;
  /** Blobs pinned for replicas, oldest batch first; `held` counts them by `shard:id`. */
  private pins: Pin[] = [];
  private pinnedBytes = 0;
  /** Start offsets of copies being taken. */
  private readonly copying = new Set<number>();
  private readonly held = new Map<string, number>();
  private readonly pollers = new Set<() => void>();
  readonly replicas = new Map<string, ReplicaInfo>();
  private readonly snapshots = new Map<string, { dir: string; files: string[]; timer: NodeJS.Timeout; startOffset: number }>();
  private ackWaiters: { offset: number; n: number; resolve: (count: number) => void }[] = [];

  constructor(
    private readonly store: Store,
    private readonly maxBacklogBytes: number,
    private readonly log: Logger,
  ) {}

  attach(): void {
    this.store.replicationHook = (shard, writes) => this.append(shard, writes);
  }

  detach(): void {
    this.store.replicationHook = null;
    for (const wake of this.pollers) wake();
  }

  /**
   * A replica becomes a primary: a new history that continues the one it followed, whose
   * replicas resume here from their offsets up to this one (Redis' shiftReplicationId).
   */
  shiftHistory(): void {
    this.replid2 = this.replid;
    this.secondOffset = this.offset;
    this.replid = newReplid();
    this.active = true;
  }

  /** A replica's primary continued it under the primary's new history (after a failover there). */
  continueAs(replid: string): void {
    if (replid === this.replid) return;
    this.replid2 = this.replid;
    this.secondOffset = this.offset;
    this.replid = replid;
  }

  /** A replica loaded a primary's copy taken at `offset` of history `replid`: its backlog starts there. */
  adopt(replid: string, offset: number): void {
    this.dropEntries();
    this.replid = replid;
    this.replid2 = NO_REPLID;
    this.secondOffset = -1;
    this.offset = offset;
    this.active = true;
  }

  /** This node's data no longer matches any history (a copy being loaded): nobody may resume from it. */
  forget(): void {
    this.dropEntries();
    this.replid = newReplid();
    this.replid2 = NO_REPLID;
    this.secondOffset = -1;
    this.offset = 0;
    this.active = false;
  }

  /**
   * A replica applied the batch at `start` (its blob ids rewritten to this node's copies); null
   * when it could not be kept (a batch the copy already held): the backlog starts after it.
   */
  record(start: number, data: Buffer, batch: ReplicatedBatch | null): void {
    if (batch === null || start !== this.offset) {
      this.dropEntries();
      this.offset = start + (batch === null ? data.length : 0);
      if (batch === null) return;
    }
    this.push(batch.shard, data, batch.writes);
  }

  get backlogFirstOffset(): number {
    return this.head < this.entries.length ? this.entries[this.head].start : this.offset;
  }

  get backlogLength(): number {
    return this.offset - this.backlogFirstOffset;
  }

  private append(shard: number, writes: readonly ShardWrite[]): void {
    if (!this.active) return;
    const kept = replicable(writes);
    if (kept.length === 0) return;
    this.push(shard, encodeBatch({ shard, writes: kept }), kept);
  }

  /** Adds a batch to the backlog, pinning the chunked values it names. */
  private push(shard: number, data: Buffer, kept: readonly ShardWrite[]): void {
    const pin: Pin = { end: this.offset + data.length, bytes: 0, blobs: [] };
    const file = this.store.chunkFiles[shard];
    for (const w of kept) {
      if (w.kind !== 'set' || w.blobId == null) continue;
      // Pinned now, in the commit's synchronous step: the reclaimer cannot have run in between.
      file.pin(w.blobId);
      pin.blobs.push({ shard, file, id: w.blobId });
      const k = `${shard}:${w.blobId}`;
      this.held.set(k, (this.held.get(k) ?? 0) + 1);
      pin.bytes += w.size;
    }
    if (pin.blobs.length > 0) {
      this.pins.push(pin);
      this.pinnedBytes += pin.bytes;
    }
    this.entries.push({ start: this.offset, data });
    this.offset += data.length;
    this.backlogBytes += data.length;
    // Keep at least the newest batch, whatever its size.
    while (this.backlogBytes > this.maxBacklogBytes && this.entries.length - this.head > 1) {
      this.backlogBytes -= this.entries[this.head].data.length;
      this.head++;
    }
    this.releasePins();
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    for (const wake of [...this.pollers]) wake();
  }

  /**
   * Lets go of the oldest pins: those whose batch has left the backlog (no replica can resume
   * before it), then, while the pinned values pass backlog_mb, those every connected replica has
   * acknowledged.
   */
  private releasePins(): void {
    if (this.pins.length === 0) return;
    const first = this.backlogFirstOffset;
    let acked = Infinity;
    if (this.pinnedBytes > this.maxBacklogBytes) {
      for (const r of this.connected()) acked = Math.min(acked, r.ackOffset);
      // A replica still downloading a copy streams from the copy's offset next.
      for (const c of this.snapshots.values()) acked = Math.min(acked, c.startOffset);
      for (const o of this.copying) acked = Math.min(acked, o);
    }
    let n = 0;
    while (n < this.pins.length && (this.pins[n].end <= first || (this.pinnedBytes > this.maxBacklogBytes && this.pins[n].end <= acked))) {
      this.unpin(this.pins[n]);
      n++;
    }
    if (n > 0) this.pins = this.pins.slice(n);
  }

  private unpin(p: Pin): void {
    this.pinnedBytes -= p.bytes;
    for (const b of p.blobs) {
      b.file.unpin(b.id);
      const k = `${b.shard}:${b.id}`;
      const n = (this.held.get(k) ?? 0) - 1;
      if (n <= 0) this.held.delete(k);
      else this.held.set(k, n);
    }
  }

  private dropEntries(): void {
    for (const p of this.pins) this.unpin(p);
    this.pins = [];
    this.entries = [];
    this.head = 0;
    this.backlogBytes = 0;
  }

  /**
   * How blob `id` of shard `shard` is made, for a replica that may have most of it already: the
   * blob it was derived from (APPEND, SETRANGE) with that blob's size and the seqs it shares, -1
   * when not known; then every chunk's codec, CRC-32, size and whether it is shared. 'resync' as
   * for blobChunks.
   */
  blobLayout(replica: string, shard: number, id: number): { fromSize: number; chunks: (ChunkMeta & { kept: boolean })[] } | 'resync' {
    if (!this.held.has(`${shard}:${id}`) || shard >= this.store.numShards) return 'resync';
    const r = this.replicas.get(replica);
    if (r !== undefined) r.lastSeen = Date.now();
    const file = this.store.chunkFiles[shard];
    const d = file.derivation(id);
    const kept = (seq: number): boolean => d !== undefined && d.kept.some(([a, b]) => seq >= a && seq < b);
    return { fromSize: d?.fromSize ?? -1, chunks: file.layout(id).map((c) => ({ ...c, kept: kept(c.seq) })) };
  }

  /**
   * Up to BLOB_CHUNKS_PER_REPLY stored chunks of blob `id` of shard `shard` from `seq` on, as they
   * are stored; 'resync' when the blob is no longer pinned for replicas (it may have been reclaimed).
   */
  blobChunks(replica: string, shard: number, id: number, seq: number): SentChunk[] | 'resync' {
    if (!this.held.has(`${shard}:${id}`) || shard >= this.store.numShards) return 'resync';
    // A replica fetching a large value is busy, not gone.
    const r = this.replicas.get(replica);
    if (r !== undefined) r.lastSeen = Date.now();
    const file = this.store.chunkFiles[shard];
    const out: SentChunk[] = [];
    for (let s = seq; out.length < BLOB_CHUNKS_PER_REPLY; s++) {
      let c: SentChunk;
      try {
        c = file.readStored(id, s);
      } catch (err) {
        // Past the last chunk; anything else (a chunk that fails its check) is the replica's error.
        if (out.length > 0 || s > seq) break;
        throw err;
      }
      out.push(c);
      if (c.size < CHUNK_BYTES_OF_VALUES) break;
    }
    return out;
  }

  /** Consistent copies of every shard and its chunk file, with the offsets that say where the stream resumes. */
  async snapshot(): Promise<SnapshotInfo> {
    this.active = true;
    this.fullSyncs++;
    const dir = mkdtempSync(join(tmpdir(), 'blobasaur-repl-'));
    const startOffset = this.offset;
    const shardOffsets: number[] = [];
    this.copying.add(startOffset);
    try {
      const copies = await copyShards(this.store, dir, shardFileName, chunkFileName, () => shardOffsets.push(this.offset)).finally(() => this.copying.delete(startOffset));
      const files = [...copies.shards, ...copies.chunks];
      const sizes: number[] = [];
      for (const f of files) {
        const h = await open(f, 'r');
        sizes.push((await h.stat()).size);
        await h.close();
      }
      const id = randomBytes(8).toString('hex');
      this.snapshots.set(id, { dir, files, timer: this.expireTimer(id), startOffset });
      const n = copies.shards.length;
      return { id, replid: this.replid, startOffset, shardOffsets, sizes: sizes.slice(0, n), chunkSizes: sizes.slice(n) };
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private expireTimer(id: string): NodeJS.Timeout {
    const t = setTimeout(() => this.dropSnapshot(id), SNAPSHOT_IDLE_MS);
    t.unref();
    return t;
  }

  async chunk(id: string, shard: number, pos: number): Promise<Buffer | null> {
    const s = this.snapshots.get(id);
    if (s === undefined || shard < 0 || shard >= s.files.length) return null;
    clearTimeout(s.timer);
    s.timer = this.expireTimer(id);
    const h = await open(s.files[shard], 'r');
    try {
      const buf = Buffer.alloc(CHUNK_BYTES);
      const { bytesRead } = await h.read(buf, 0, CHUNK_BYTES, pos);
      return buf.subarray(0, bytesRead);
    } finally {
      await h.close();
    }
  }

  dropSnapshot(id: string): void {
    const s = this.snapshots.get(id);
    if (s === undefined) return;
    clearTimeout(s.timer);
    this.snapshots.delete(id);
    rmSync(s.dir, { recursive: true, force: true });
  }

  /**
   * A replica asks for the batches from `from` (all it has applied). Returns them (up to about
   * `maxBytes`, at least one), waiting up to `timeoutMs` when there are none yet; 'resync' when
   * the backlog no longer has `from` or `from` is not of this history (nor of the one this
   * continues, up to where it was left).
   */
  async stream(replica: string, addr: string, replid: string, from: number, maxBytes: number, timeoutMs: number): Promise<Entry[] | 'resync'> {
    if (!this.knows(replid, from) || from < this.backlogFirstOffset) return 'resync';
    this.ack(replica, addr, from);
    if (from === this.offset && timeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.pollers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, timeoutMs);
        this.pollers.add(wake);
      });
      if (from < this.backlogFirstOffset) return 'resync';
    }
    let i = this.indexOf(from);
    if (i < 0) return from === this.offset ? [] : 'resync';
    const out: Entry[] = [];
    let bytes = 0;
    for (; i < this.entries.length && (out.length === 0 || bytes < maxBytes); i++) {
      out.push(this.entries[i]);
      bytes += this.entries[i].data.length;
    }
    return out;
  }

  /** Whether offset `from` of history `replid` is a point of this node's history. */
  knows(replid: string, from: number): boolean {
    if (from > this.offset) return false;
    return replid === this.replid || (replid === this.replid2 && replid !== NO_REPLID && from <= this.secondOffset);
  }

  private indexOf(offset: number): number {
    let lo = this.head;
    let hi = this.entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.entries[mid].start;
      if (s === offset) return mid;
      if (s < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private ack(id: string, addr: string, offset: number): void {
    const r = this.replicas.get(id);
    if (r === undefined) {
      this.replicas.set(id, { id, addr, ackOffset: offset, lastSeen: Date.now() });
      this.log.info({ replica: id, addr }, 'replica connected');
    } else {
      r.ackOffset = Math.max(r.ackOffset, offset);
      r.lastSeen = Date.now();
      r.addr = addr;
    }
    this.releasePins();
    if (this.ackWaiters.length > 0) {
      this.ackWaiters = this.ackWaiters.filter((w) => {
        const n = this.acked(w.offset);
        if (n < w.n) return true;
        w.resolve(n);
        return false;
      });
    }
  }

  /** Replicas seen recently. */
  connected(now = Date.now()): ReplicaInfo[] {
    for (const [id, r] of this.replicas) if (now - r.lastSeen > REPLICA_GONE_MS) this.replicas.delete(id);
    return [...this.replicas.values()];
  }

  /** Replicas that have acknowledged `offset`. */
  acked(offset: number): number {
    return this.connected().filter((r) => r.ackOffset >= offset).length;
  }

  /** WAIT: resolves with the number of replicas that acknowledged everything written so far. */
  wait(n: number, timeoutMs: number): Promise<number> {
    const target = this.offset;
    const now = this.acked(target);
    if (now >= n || n <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const w = { offset: target, n, resolve };
      this.ackWaiters.push(w);
      if (timeoutMs > 0) {
        setTimeout(() => {
          if (!this.ackWaiters.includes(w)) return;
          this.ackWaiters = this.ackWaiters.filter((x) => x !== w);
          resolve(this.acked(target));
        }, timeoutMs);
      }
    });
  }

  close(): void {
    this.detach();
    this.dropEntries();
    for (const id of [...this.snapshots.keys()]) this.dropSnapshot(id);
    for (const w of this.ackWaiters) w.resolve(this.acked(w.offset));
    this.ackWaiters = [];
  }
}
