/**
 * The write path of one shard: a queue of executed-but-uncommitted writes, their overlay, and the
 * group commit that drains them.
 *
 * Every write that arrives during one turn of the event loop (from any connection) is committed by
 * one SQLite COMMIT at the end of that turn (setImmediate runs after the poll phase that delivered
 * the socket data). Inside that transaction, writes are grouped `batchSize` at a time into
 * savepoints: a group is the unit that succeeds or fails together. With `batchTimeoutMs` > 0, a
 * queue shorter than `batchSize` waits up to that long for company before committing.
 *
 * Writes pushed while `atomicGroup` is set (a transaction's, EXEC) are never split: they go into
 * one COMMIT whatever its size caps, and into one savepoint of their own whatever `batchSize`.
 */
import type { Encoded } from './codecs.js';
import { BlobRef, KEEP, Overlay, type HeldValue, type OverlayEntry } from './overlay.js';
import { CHUNKED_CODEC } from './schema.js';
import type { Shard, ShardWrite } from './shard.js';
import type { SweepResult } from './sweep.js';
import { ReadCache } from './read-cache.js';
import type { ValueBuffers } from './value-buffers.js';

export type PendingWrite =
  | {
      kind: 'set';
      ns: Buffer | null;
      key: Buffer;
      /** A promise when the value is computed from another value still being decoded. */
      value: HeldValue;
      /** For a promised value, the encoding carries the logical size too; a chunked value its blob. */
      encoded: Encoded | Promise<Encoded> | Promise<SizedEncoded> | SizedEncoded;
      now: number;
      expiresAt: number | null;
    }
  | {
      kind: 'del';
      ns: Buffer | null;
      key: Buffer;
      /** Commit only after this settles, and fail if it rejects (RENAME: the copy lands first). */
      after?: Promise<void>;
    }
  | { kind: 'delns'; ns: Buffer }
  /** A new expiry for an existing key; the value stays as it is (pending or committed). */
  | { kind: 'expire'; ns: Buffer | null; key: Buffer; expiresAt: number | null; now: number }
  /**
   * Deletes up to `limit` rows expired at `now`: queued, so it commits in order with the writes
   * around it. With `offload`, the step runs in the maintenance worker when it reaches the head of
   * the queue, and the queue commits nothing else until it is done.
   */
  | { kind: 'sweep'; now: number; limit: number; offload?: () => Promise<SweepResult> }
  | { kind: 'flush' }
  /** One bounded step of deleting rows a flush set aside (shard.ts purgeStep). */
  | { kind: 'purge'; limit: number }
  /** Dead blobs whose chunks have been reclaimed: forget them (shard.ts 'reclaimed'). */
  | { kind: 'reclaimed'; ids: number[] };

/** What a queued write waits for before it can be committed, if anything. */
function awaited(q: Queued): Promise<unknown> | undefined {
  const w = q.write;
  if (w.kind === 'set') return w.encoded instanceof Promise ? w.encoded : undefined;
  if (w.kind === 'del') return w.after;
  // Started only now, at the head of the queue: every write before it has committed.
  if (w.kind === 'sweep' && w.offload !== undefined) return (q.offloaded ??= w.offload());
  return undefined;
}

/** What a batch member resolved to before its commit: an encoding, an offloaded sweep's result, or a failure. */
type Prepared = Encoded | SweepResult | Error | null;

export interface SizedEncoded extends Encoded {
  size: number;
  /** The value was stored in the chunk file: codec is CHUNKED_CODEC, payload empty. */
  blob?: BlobRef;
  /** Called once the write has committed or failed (a chunk copy keeps its source pinned until then). */
  settled?: () => void;
}

/** Settles a writer waiting for its commit (sync mode); absent in async mode. */
type Settle = (err: Error | null) => void;

interface Queued {
  seq: number;
  write: PendingWrite;
  bytes: number;
  settle: Settle | undefined;
  /** An offloaded sweep step, once started. */
  offloaded?: Promise<SweepResult>;
  /** The transaction (Store.atomically) this write belongs to: committed whole, in one savepoint. */
  group?: number;
  /** A set whose value's receive buffer this write claimed (value-buffers.ts), with its overlay entry. */
  claimed?: OverlayEntry;
}

/** Store-wide bound on writes executed and not yet committed (inflight_capacity). */
export class InflightBudget {
  ops = 0;
  bytes = 0;
  private waiters: (() => void)[] = [];

  constructor(
    readonly maxOps: number,
    readonly maxBytes: number,
  ) {}

  get hasRoom(): boolean {
    // One write is always admitted when nothing is in flight, however big it is.
    return this.ops === 0 || (this.ops < this.maxOps && this.bytes < this.maxBytes);
  }

  /** Resolves when there is room: at once if there is some now (a waiter on an idle budget would never wake). */
  waitForRoom(): Promise<void> {
    if (this.hasRoom) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  take(bytes: number): void {
    this.ops++;
    this.bytes += bytes;
  }

  release(ops: number, bytes: number): void {
    this.ops -= ops;
    this.bytes -= bytes;
    while (this.waiters.length > 0 && this.hasRoom) this.waiters.shift()!();
  }
}

export interface WriteQueueOptions {
  batchSize: number;
  batchTimeoutMs: number;
  /** Called for every write that failed to commit; in async mode nobody else hears of it. */
  onFailure: (err: Error, write: PendingWrite) => void;
  /** Bytes of large committed values kept in memory for reads (0: none). */
  readCacheBytes?: number;
  /** Bytes of small committed values kept in memory, filled by reads and commits (0: none). */
  valueCacheBytes?: number;
  /** Called after every commit attempt, for metrics. */
  onCommit?: (ops: number, millis: number, ok: boolean) => void;
  /** Called with the writes of every group that committed, in commit order (replication). */
  onCommitted?: (writes: readonly ShardWrite[]) => void;
  /** A write that referenced a blob failed: the blob may now be referenced by nothing. */
  onBlobDropped?: (id: number) => void;
  /** Receive buffers of values: one a set claimed goes back after its commit if no read took it. */
  valueBuffers?: ValueBuffers;
}

/** Caps one COMMIT so a burst cannot stall the event loop for long. */
const MAX_OPS_PER_COMMIT = 4096;
const MAX_BYTES_PER_COMMIT = 64 * 1024 * 1024;

export class WriteQueue {
  readonly overlay = new Overlay();
  readonly cache: ReadCache;
  private queue: Queued[] = [];
  private head = 0;
  private seq = 0;
  /** Every write up to this seq has committed or failed (batches commit in seq order). */
  private settledSeq = 0;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  /** drain() callers, in call order and so by nondecreasing target seq. */
  private drainWaiters: { upTo: number; resolve: () => void }[] = [];
  commits = 0;
  committedOps = 0;
  failedOps = 0;
  /** Set by Store.atomically() while a transaction queues its writes: they commit as one group. */
  atomicGroup: number | undefined = undefined;

  constructor(
    /** Replaced only by Store.replaceShardFiles(), with the queue drained. */
    public shard: Shard,
    private readonly budget: InflightBudget,
    private readonly opts: WriteQueueOptions,
  ) {
    this.cache = new ReadCache(opts.readCacheBytes ?? 0, opts.valueCacheBytes ?? 0);
  }

  /** Writes executed and not yet committed, including a batch waiting for its encodings. */
  get depth(): number {
    return this.seq - this.settledSeq;
  }

  /** Writes queued and not yet taken into a commit. */
  private get queued(): number {
    return this.queue.length - this.head;
  }

  /**
   * Executes a write: the overlay shows it to every read from now on, and it is queued for commit.
   * With `wantAck`, returns a promise settled by its commit; otherwise undefined.
   */
  push(write: PendingWrite, wantAck: boolean): Promise<void> | undefined {
    const seq = ++this.seq;
    let entry: OverlayEntry | undefined;
    if (write.kind === 'sweep' || write.kind === 'reclaimed' || write.kind === 'purge') {
      // Touches only rows every read already treats as absent: nothing to show or forget.
    } else if (write.kind === 'flush') {
      this.overlay.putBarrier(seq);
      this.cache.clear();
    } else if (write.kind === 'delns') {
      this.overlay.putNamespaceBarrier(write.ns, seq);
      this.cache.invalidateNamespace(write.ns);
    } else {
      // The overlay answers for the key until the commit, which settles the key's cache entry.
      this.cache.written();
      if (write.kind === 'set') {
        entry = this.overlay.put(write.ns, write.key, write.value, write.expiresAt, seq);
        if (!(write.value instanceof Buffer) || this.opts.valueBuffers?.claim(write.value) !== true) entry = undefined;
      } else if (write.kind === 'expire') {
        const before = this.overlay.lookup(write.ns, write.key, write.now);
        this.overlay.put(write.ns, write.key, before?.value ?? KEEP, write.expiresAt, seq);
      } else this.overlay.put(write.ns, write.key, null, null, seq);
    }
    // A promised value is not in memory yet; its source row is counted when it arrives.
    const bytes = write.kind === 'set' ? (write.value instanceof Promise || write.value instanceof BlobRef ? 0 : write.value.length) + write.key.length : 0;
    this.budget.take(bytes);
    const item: Queued = { seq, write, bytes, settle: undefined };
    if (this.atomicGroup !== undefined) item.group = this.atomicGroup;
    if (entry !== undefined) item.claimed = entry;
    let ack: Promise<void> | undefined;
    if (wantAck) {
      ack = new Promise<void>((resolve, reject) => {
        item.settle = (err) => (err === null ? resolve() : reject(err));
      });
    }
    this.queue.push(item);
    this.schedule();
    return ack;
  }

  /** Resolves once everything queued so far has been committed or has failed. */
  drain(): Promise<void> {
    // Waits for the writes pushed so far only: under steady load the queue may never be empty.
    const upTo = this.seq;
    if (this.settledSeq >= upTo) return Promise.resolve();
    // Whoever drains (shutdown, DBSIZE) should not sit out a long batch_timeout_ms.
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return new Promise((resolve) => this.drainWaiters.push({ upTo, resolve }));
  }

  private schedule(): void {
    if (this.scheduled || this.busy) return;
    if (this.opts.batchTimeoutMs === 0 || this.queued >= this.opts.batchSize) {
      if (this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      this.scheduled = true;
      setImmediate(this.flush);
    } else if (this.timer === null) {
      this.timer = setTimeout(this.flush, this.opts.batchTimeoutMs);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.busy || this.queued === 0) return;
    const batch = this.take();
    const pending = batch.filter((q) => awaited(q) !== undefined);
    if (pending.length === 0) {
      this.commit(batch, new Map());
      this.afterCommit();
      return;
    }
    // Large values are still being compressed off-thread (or a delete waits for the copy it
    // follows); commit once they all are, keeping order.
    this.busy = true;
    const encodings = new Map<Queued, Prepared>();
    void Promise.all(
      pending.map(async (q) => {
        try {
          const done = await awaited(q);
          encodings.set(q, q.write.kind === 'set' ? (done as Encoded) : q.write.kind === 'sweep' ? (done as SweepResult) : null);
        } catch (err) {
          encodings.set(q, err instanceof Error ? err : new Error(String(err)));
        }
      }),
    ).then(() => {
      this.busy = false;
      this.commit(batch, encodings);
      this.afterCommit();
    });
  };

  private take(): Queued[] {
    let end = this.head;
    let bytes = 0;
    while (end < this.queue.length) {
      const item = this.queue[end];
      // The rest of a transaction's group comes along, whatever the caps: it commits whole.
      const inGroup = item.group !== undefined && end > this.head && this.queue[end - 1].group === item.group;
      if (inGroup) {
        bytes += item.bytes;
        end++;
        continue;
      }
      if (end - this.head >= MAX_OPS_PER_COMMIT || bytes >= MAX_BYTES_PER_COMMIT) break;
      // A write that waits for another shard's commit (RENAME's delete) starts a batch of its own:
      // what is queued before it commits without waiting, so two shards can never wait on each other.
      if (end > this.head && this.queue[end].write.kind === 'del' && (this.queue[end].write as { after?: unknown }).after) break;
      // An offloaded sweep step also starts a batch: the worker's transaction must not overlap one
      // of ours, and what was queued before it must be committed before it looks at the rows.
      if (end > this.head && this.queue[end].write.kind === 'sweep' && (this.queue[end].write as { offload?: unknown }).offload) break;
      bytes += this.queue[end].bytes;
      end++;
    }
    const batch = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  private commit(batch: Queued[], encodings: Map<Queued, Prepared>): void {
    const errors = new Array<Error | null>(batch.length).fill(null);
    const groups: ShardWrite[][] = [];
    const groupMembers: number[][] = [];
    /** The transaction each savepoint group belongs to (undefined: ordinary writes). */
    const groupTx: (number | undefined)[] = [];
    for (let i = 0; i < batch.length; i++) {
      const q = batch[i];
      const write = toShardWrite(q, encodings.get(q));
      if (write instanceof Error) {
        // A write that could not be prepared fails alone, as a command inside EXEC does in Redis.
        errors[i] = write;
        continue;
      }
      const last = groups.length - 1;
      const fits = last >= 0 && groupTx[last] === q.group && (q.group !== undefined || groups[last].length < this.opts.batchSize);
      if (!fits) {
        groups.push([write]);
        groupMembers.push([i]);
        groupTx.push(q.group);
      } else {
        groups[last].push(write);
        groupMembers[last].push(i);
      }
    }
    const started = performance.now();
    let ok = true;
    try {
      const results = groups.length > 0 ? this.shard.applyGroups(groups) : [];
      results.forEach((err, g) => {
        if (err !== null) for (const i of groupMembers[g]) errors[i] = err;
      });
      if (this.opts.onCommitted !== undefined) this.opts.onCommitted(groups.filter((_, g) => results[g] === null).flat());
    } catch (err) {
      ok = false;
      const e = err instanceof Error ? err : new Error(String(err));
      for (const members of groupMembers) for (const i of members) errors[i] = e;
    }
    this.commits++;
    this.opts.onCommit?.(batch.length, performance.now() - started, ok);
    let bytes = 0;
    for (let i = 0; i < batch.length; i++) {
      const q = batch[i];
      const w = q.write;
      if (w.kind === 'set') {
        const enc = encodings.get(q) ?? w.encoded;
        if (enc !== null && !(enc instanceof Promise) && !(enc instanceof Error) && 'codec' in enc) {
          const sized = enc as SizedEncoded;
          sized.settled?.();
          if (errors[i] !== null && sized.blob !== undefined) this.opts.onBlobDropped?.(sized.blob.id);
        }
      }
      if (w.kind === 'sweep' || w.kind === 'reclaimed' || w.kind === 'purge') {
        // nothing in the overlay to release
      } else if (w.kind === 'flush') this.overlay.releaseBarrier(q.seq);
      else if (w.kind === 'delns') this.overlay.releaseNamespaceBarrier(w.ns, q.seq);
      else if (this.overlay.release(w.ns, w.key, q.seq)) {
        // No newer write to the key is pending: from now on reads look at the cache, so it must
        // hold what is committed — this value, or nothing.
        if (w.kind === 'set' && errors[i] === null && w.value instanceof Buffer && this.cache.wants(w.value.length)) this.cache.put(w.ns, w.key, w.value, w.expiresAt);
        else this.cache.invalidate(w.ns, w.key);
      }
      bytes += q.bytes;
      const err = errors[i];
      if (err === null) {
        this.committedOps++;
      } else {
        this.failedOps++;
        this.opts.onFailure(err, w);
      }
      q.settle?.(err);
      // Last: SQLite, replication and the cache have copied or dropped the value by now.
      if (err === null && q.claimed !== undefined && !q.claimed.lent && w.kind === 'set' && w.value instanceof Buffer) this.opts.valueBuffers?.recycle(w.value);
    }
    if (batch.length > 0) this.settledSeq = batch[batch.length - 1].seq;
    this.budget.release(batch.length, bytes);
  }

  private afterCommit(): void {
    if (this.queued > 0) this.schedule();
    let n = 0;
    while (n < this.drainWaiters.length && this.drainWaiters[n].upTo <= this.settledSeq) n++;
    if (n > 0) for (const w of this.drainWaiters.splice(0, n)) w.resolve();
  }
}

function toShardWrite(q: Queued, encoding: Prepared | undefined): ShardWrite | Error {
  const w = q.write;
  if (encoding instanceof Error) return encoding;
  if (w.kind === 'del') return { kind: 'del', ns: w.ns, key: w.key };
  if (w.kind === 'sweep') {
    if (w.offload === undefined) return { kind: 'sweep', now: w.now, limit: w.limit };
    return { kind: 'swept', result: encoding as SweepResult };
  }
  if (w.kind !== 'set') return w;
  const enc = (encoding ?? w.encoded) as SizedEncoded;
  if (enc.blob !== undefined) {
    return { kind: 'set', ns: w.ns, key: w.key, data: EMPTY, codec: CHUNKED_CODEC, size: enc.blob.size, now: w.now, expiresAt: w.expiresAt, blobId: enc.blob.id, blobStored: enc.blob.stored };
  }
  return {
    kind: 'set',
    ns: w.ns,
    key: w.key,
    data: enc.payload,
    codec: enc.codec,
    size: w.value instanceof Promise || w.value instanceof BlobRef ? enc.size : w.value.length,
    now: w.now,
    expiresAt: w.expiresAt,
  };
}

const EMPTY = Buffer.alloc(0);
