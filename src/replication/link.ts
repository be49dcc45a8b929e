/**
 * A replica's link to its primary: authenticate, take a copy of every shard when there is no
 * usable offset, then pull committed batches from the offset and apply them in order. After a
 * disconnect it resumes from its offset; when the primary's backlog no longer has it (or the
 * primary started a new history), it takes a new copy.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../observability/log.js';
import { applyBatch, decodeBatch, loadShardCopy, stageReplicatedBlob, type ReplicatedBatch, type SentChunk } from '../storage/replicated.js';
import { chunkFileName, shardFileName } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import { RespClient, RespError, type RespValue } from './resp-client.js';

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

export class ReplicaLink {
  state: LinkState = 'connect';
  /** Offset of the primary's stream this replica has applied, in history `replid`. */
  offset = -1;
  replid = '';
  /** The primary's offset as last seen. */
  primaryOffset = 0;
  lastIo = 0;
  syncs = 0;
  private client: RespClient | null = null;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly store: Store,
    readonly opts: LinkOptions,
    private readonly log: Logger,
    /** Told of every applied offset (INFO, etcd publication). */
    private readonly onOffset: (offset: number) => void = () => {},
  ) {
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
        if (this.offset < 0) await this.fullSync(c);
        this.state = 'connected';
        await this.stream(c);
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
    this.syncs++;
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
   * into this node's chunk file first; the batch then refers to them by their ids here.
   */
  private async fetchBlobs(c: RespClient, batch: ReplicatedBatch): Promise<void> {
    for (let i = 0; i < batch.writes.length; i++) {
      const w = batch.writes[i];
      if (w.kind !== 'set' || w.blobId == null) continue;
      const theirs = w.blobId;
      const staged = await stageReplicatedBlob(this.store, batch.shard, w.size, async (seq) => {
        const reply = expect(await c.call('BLOBREPL', 'BLOB', this.opts.name, batch.shard, theirs, seq), 'BLOBREPL BLOB') as RespValue[];
        const out: SentChunk[] = [];
        for (let k = 0; k + 3 < reply.length; k += 4) {
          out.push({ codec: Number(reply[k]), crc: Number(reply[k + 1]), size: Number(reply[k + 2]), data: reply[k + 3] as Buffer });
        }
        return out;
      });
      batch.writes[i] = { ...w, blobId: staged.id, blobStored: staged.stored };
    }
  }

  /** Per shard, batches starting before this offset are already in the copy. */
  private skipBefore: number[] = [];

  private async stream(c: RespClient): Promise<void> {
    while (!this.stopped) {
      const reply = expect(
        await c.call('BLOBREPL', 'STREAM', this.opts.name, this.opts.addr, this.replid, this.offset, 4 * 1024 * 1024, this.opts.pollMs ?? 1000),
        'BLOBREPL STREAM',
      ) as RespValue[];
      this.lastIo = Date.now();
      this.primaryOffset = Number(reply[0]);
      for (let i = 1; i < reply.length; i += 2) {
        const start = Number(reply[i]);
        const data = reply[i + 1] as Buffer;
        if (start !== this.offset) throw new ResyncNeeded('RESYNC gap in the stream');
        const batch = decodeBatch(data);
        if (!(start < (this.skipBefore[batch.shard] ?? 0))) {
          await this.fetchBlobs(c, batch);
          await applyBatch(this.store, batch);
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

export function replicaName(): string {
  return randomBytes(8).toString('hex');
}
