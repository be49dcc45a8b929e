/**
 * A replica's link to its primary: authenticate, take a copy of every shard when there is no
 * usable offset, then pull committed batches from the offset and apply them in order. After a
 * disconnect it resumes from its offset; when the primary's backlog no longer has it (or the
 * primary started a new history), it takes a new copy.
 *
 * The link starts from this node's own history (its ReplicationSource: the id and offset it last
 * followed, or wrote as a primary), so a node that follows a new primary after a failover — a
 * sibling replica, or the old primary itself — continues from its offset when the new primary's
 * history includes it, and keeps what it applies in its own backlog for replicas of its own.
 *
 * A chunked value derived from the key's previous value (APPEND, SETRANGE on the primary) is built
 * from this node's own chunks of the previous value for the chunks the primary kept, checked by
 * size, codec and CRC-32; only the other chunks are fetched.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../observability/log.js';
import { applyBatch, decodeBatch, loadShardCopy, stageReplicatedBlob, withBlobRefs, type ReplicatedBatch, type ReusedChunks, type SentChunk } from '../storage/replicated.js';
import { chunkFileName, shardFileName } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import { RespClient, RespError, type RespValue } from './resp-client.js';
import type { ReplicationSource } from './source.js';

export interface LinkOptions {
  host: string;
  port: number;
  /** AUTH password for the primary (masterauth / requirepass). */
  password?: string;
  /** The cluster secret, presented with BLOBREPL AUTH when set. */
  secret?: string;
  /** This replica's name, as the primary lists it. */
  name: string;
  /** Address clients reach this replica at, for the primary's INFO. */
  addr: string;
  /** Long-poll timeout of one STREAM call. */
  pollMs?: number;
}

export type LinkState = 'connect' | 'sync' | 'connected';

class ResyncNeeded extends Error {}

/** Where a full copy is downloaded, inside the data directory (removed before and after each copy). */
const SYNC_DIR = 'replica-sync.tmp';

function expect(v: RespValue, what: string): RespValue {
  if (v instanceof RespError) {
    if (v.message.startsWith('RESYNC')) throw new ResyncNeeded(v.message);
    throw new Error(`${what}: ${v.message}`);
  }
  return v;
}

/** What links of this node have done, over every primary it followed (INFO replication). */
export class LinkCounters {
  /** Full copies taken, and connections that continued from the offset without one. */
  fullSyncs = 0;
  partialSyncs = 0;
  /** Stored bytes of chunked values fetched, and chunks reused from this node's own copies. */
  blobBytesFetched = 0;
  chunksReused = 0;
}

export class ReplicaLink {
  state: LinkState = 'connect';
  /** Offset of the primary's stream this replica has applied, in history `replid`. */
  offset = -1;
  replid = '';
  /** The primary's offset as last seen. */
  primaryOffset = 0;
  lastIo = 0;
  private client: RespClient | null = null;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly store: Store,
    readonly opts: LinkOptions,
    private readonly log: Logger,
    /** This node's history: where the link starts, and the backlog it keeps of what it applies. */
    private readonly history: ReplicationSource,
    private readonly counters: LinkCounters,
    /** Told of every applied offset (INFO, etcd publication). */
    private readonly onOffset: (offset: number) => void = () => {},
  ) {
    if (history.active) {
      this.replid = history.replid;
      this.offset = history.offset;
    }
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        this.state = 'connect';
        const c = await RespClient.connect(this.opts.host, this.opts.port);
        this.client = c;
        if (this.stopped) break;
        if (this.opts.password !== undefined) expect(await c.call('AUTH', this.opts.password), 'AUTH');
        if (this.opts.secret !== undefined) expect(await c.call('BLOBREPL', 'AUTH', this.opts.secret), 'BLOBREPL AUTH');
        const copied = this.offset < 0;
        if (copied) await this.fullSync(c);
        this.state = 'connected';
        await this.stream(c, copied);
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof ResyncNeeded) {
          this.log.warn({ primary: `${this.opts.host}:${this.opts.port}`, offset: this.offset }, 'primary no longer has this offset: taking a new copy');
          this.offset = -1;
        } else {
          this.log.warn({ primary: `${this.opts.host}:${this.opts.port}`, err: (err as Error).message }, 'replication link down; retrying');
          await new Promise((r) => setTimeout(r, 200));
        }
      } finally {
        this.client?.close();
        this.client = null;
      }
    }
  }

  private async fullSync(c: RespClient): Promise<void> {
    this.state = 'sync';
    // From here until the copy is loaded this node's data is of no history anyone can resume.
    this.history.forget();
    const snap = expect(await c.call('BLOBREPL', 'SNAPSHOT', this.store.numShards), 'BLOBREPL SNAPSHOT') as RespValue[];
    const [id, replid, startOffset, shardOffsets, sizes, chunkSizes] = [
      String(snap[0]),
      String(snap[1]),
      Number(snap[2]),
      (snap[3] as number[]).map(Number),
      (snap[4] as number[]).map(Number),
      ((snap[5] ?? []) as number[]).map(Number),
    ];
    if (chunkSizes.length !== sizes.length) throw new Error('the primary sent no chunk files with its copy (an older version?)');
    // On the data directory's file system, so the copies are renamed into place, not copied again.
    const dir = join(this.store.dataDir, SYNC_DIR);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o700 });
    const n = sizes.length;
    let bytes = 0;
    try {
      // Files 0..n-1 are the shard files, n..2n-1 their chunk files.
      const names = [...sizes.map((_, i) => shardFileName(i)), ...chunkSizes.map((_, i) => chunkFileName(i))];
      const all = [...sizes, ...chunkSizes];
      for (let f = 0; f < all.length; f++) {
        await this.download(c, id, f, all[f], join(dir, names[f]));
        bytes += all[f];
      }
      for (let shard = 0; shard < n; shard++) await loadShardCopy(this.store, shard, join(dir, names[shard]), join(dir, names[n + shard]));
      await c.call('BLOBREPL', 'DONE', id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    this.replid = replid;
    this.offset = startOffset;
    this.skipBefore = shardOffsets;
    this.history.adopt(replid, startOffset);
    this.counters.fullSyncs++;
    this.onOffset(this.offset);
    this.log.info({ primary: `${this.opts.host}:${this.opts.port}`, offset: startOffset, bytes }, 'replica: copy of the primary loaded');
  }

  /** Copies file `f` of copy `id` (`size` bytes) from the primary into `file`, 1 MiB per request. */
  private async download(c: RespClient, id: string, f: number, size: number, file: string): Promise<void> {
    const h = await open(file, 'w', 0o600);
    try {
      for (let pos = 0; pos < size; ) {
        const chunk = expect(await c.call('BLOBREPL', 'CHUNK', id, f, pos), 'BLOBREPL CHUNK');
        if (!Buffer.isBuffer(chunk) || chunk.length === 0) throw new Error('short copy from the primary');
        await h.write(chunk, 0, chunk.length, pos);
        pos += chunk.length;
      }
    } finally {
      await h.close();
    }
  }

  /**
   * The chunked values a batch sets are fetched from the primary (BLOBREPL BLOB, 1 MiB per reply)
   * into this node's chunk file first; the batch then refers to them by their ids here. A value
   * the primary derived from the key's previous one reuses this node's chunks of that value.
   */
  private async fetchBlobs(c: RespClient, batch: ReplicatedBatch): Promise<void> {
    // The key's value as of each write: earlier writes of the same batch are not applied yet.
    const earlier = new Map<string, { id: number; size: number } | null>();
    let unknown = false;
    for (let i = 0; i < batch.writes.length; i++) {
      const w = batch.writes[i];
      if (w.kind === 'flush' || w.kind === 'delns') unknown = true;
      if (w.kind === 'del') earlier.set(keyOf(w.ns, w.key), null);
      if (w.kind !== 'set') continue;
      const k = keyOf(w.ns, w.key);
      if (w.blobId == null) {
        earlier.set(k, null);
        continue;
      }
      const theirs = w.blobId;
      const base = unknown ? null : earlier.has(k) ? earlier.get(k)! : this.currentBlob(batch.shard, w.ns, w.key);
      const reuse = base === null ? undefined : await this.reusable(c, batch.shard, theirs, base);
      const staged = await stageReplicatedBlob(
        this.store,
        batch.shard,
        w.size,
        async (seq) => {
          const reply = expect(await c.call('BLOBREPL', 'BLOB', this.opts.name, batch.shard, theirs, seq), 'BLOBREPL BLOB') as RespValue[];
          const out: SentChunk[] = [];
          for (let k = 0; k + 3 < reply.length; k += 4) {
            out.push({ codec: Number(reply[k]), crc: Number(reply[k + 1]), size: Number(reply[k + 2]), data: reply[k + 3] as Buffer });
          }
          return out;
        },
        reuse,
      );
      this.counters.blobBytesFetched += staged.fetched;
      this.counters.chunksReused += reuse?.seqs.size ?? 0;
      batch.writes[i] = { ...w, blobId: staged.id, blobStored: staged.stored };
      earlier.set(k, { id: staged.id, size: w.size });
    }
  }

  /** The blob of this node's current value of a key, if it is chunked. */
  private currentBlob(shard: number, ns: Buffer | null, key: Buffer): { id: number; size: number } | null {
    const b = this.store.queues[shard]?.shard.blobOf(ns, key);
    return b === undefined ? null : { id: b.blob_id, size: b.size };
  }

  /**
   * The chunks of the primary's blob `theirs` that this node's blob `base` already holds: those
   * the primary kept from the value it derived `theirs` from, when that value had base's size and
   * base's chunk at the same seq has the same codec, size and CRC-32.
   */
  private async reusable(c: RespClient, shard: number, theirs: number, base: { id: number; size: number }): Promise<ReusedChunks | undefined> {
    const reply = expect(await c.call('BLOBREPL', 'LAYOUT', this.opts.name, shard, theirs), 'BLOBREPL LAYOUT') as RespValue[];
    if (Number(reply[0]) !== base.size) return undefined;
    const file = this.store.chunkFiles[shard];
    const mine = file.layout(base.id);
    const seqs = new Map<number, number>();
    for (let k = 1, seq = 0; k + 3 < reply.length; k += 4, seq++) {
      const m = mine[seq];
      if (Number(reply[k + 3]) !== 1 || m === undefined || m.seq !== seq) continue;
      if (m.codec === Number(reply[k]) && m.crc === Number(reply[k + 1]) && m.size === Number(reply[k + 2])) seqs.set(seq, m.stored);
    }
    return seqs.size === 0 ? undefined : { id: base.id, size: base.size, seqs };
  }

  /** Per shard, batches starting before this offset are already in the copy. */
  private skipBefore: number[] = [];

  private async stream(c: RespClient, copied: boolean): Promise<void> {
    let first = true;
    while (!this.stopped) {
      const reply = expect(
        await c.call('BLOBREPL', 'STREAM', this.opts.name, this.opts.addr, this.replid, this.offset, 4 * 1024 * 1024, this.opts.pollMs ?? 1000),
        'BLOBREPL STREAM',
      ) as RespValue[];
      this.lastIo = Date.now();
      this.primaryOffset = Number(reply[0]);
      const replid = String(reply[1]);
      if (first) {
        first = false;
        if (!copied) {
          this.counters.partialSyncs++;
          this.log.info({ primary: `${this.opts.host}:${this.opts.port}`, offset: this.offset, replid }, 'replica: continuing from its offset (no copy)');
        }
      }
      // The primary continues this node's history under its own id (it was promoted).
      if (replid !== this.replid) {
        this.history.continueAs(replid);
        this.replid = replid;
      }
      for (let i = 2; i < reply.length; i += 2) {
        const start = Number(reply[i]);
        const data = reply[i + 1] as Buffer;
        if (start !== this.offset) throw new ResyncNeeded('RESYNC gap in the stream');
        const batch = decodeBatch(data);
        if (!(start < (this.skipBefore[batch.shard] ?? 0))) {
          await this.fetchBlobs(c, batch);
          await applyBatch(this.store, batch);
          // Kept only once no shard skips batches any more: the backlog has no holes.
          this.history.record(start, withBlobRefs(data, batch), this.skipBefore.some((o) => start < o) ? null : batch);
        } else {
          this.history.record(start, data, null);
        }
        this.offset = start + data.length;
      }
      if (reply.length > 1) this.onOffset(this.offset);
    }
  }

  /** Link down for this long: INFO's master_link_down_since_seconds. */
  get lag(): number {
    return Math.max(0, this.primaryOffset - this.offset);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.client?.close();
    await this.loop;
  }
}

function keyOf(ns: Buffer | null, key: Buffer): string {
  return ns === null ? `k:${key.toString('hex')}` : `n:${ns.toString('hex')}:${key.toString('hex')}`;
}

export function replicaName(): string {
  return randomBytes(8).toString('hex');
}
